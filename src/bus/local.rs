//! The in-process bus: one node, no network.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Bus, BusError, Published};
use crate::{
    auth::now_millis,
    hub::{
        Hub,
        event::{Encoded, Publish},
    },
};

/// Delivers straight into this process's hub.
///
/// Each channel has a sequencer: a tiny mutex held while the event is numbered and queued
/// to the channel's sockets, so that every socket sees `seq` strictly increasing even
/// with concurrent publishers. The lock covers one encode and the `try_send`s, none of
/// which ever waits; it is per channel, so different channels never contend.
#[derive(Debug)]
pub struct LocalBus {
    hub: Arc<Hub>,
    sequencers: papaya::HashMap<Arc<str>, Arc<Mutex<u64>>>,
}

impl LocalBus {
    /// A bus feeding `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        LocalBus {
            hub,
            sequencers: papaya::HashMap::new(),
        }
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, msg: Publish) -> Result<Published, BusError> {
        let sequencer = self
            .sequencers
            .pin()
            .get_or_insert_with(msg.channel.clone(), || Arc::new(Mutex::new(0)))
            .clone();
        let mut last = sequencer.lock().unwrap_or_else(|e| e.into_inner());
        let seq = *last + 1;
        *last = seq;
        let encoded = Encoded::encode(msg, seq, now_millis());
        let out = self.hub.deliver(&encoded);
        drop(last);
        self.hub
            .metrics()
            .published
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Published {
            seq,
            delivered: out.delivered,
        })
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
