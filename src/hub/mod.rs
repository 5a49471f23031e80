//! The hub: live sessions, channel memberships and fan-out on this node.
//!
//! Producers never reach sockets directly: they publish through the bus, and the bus calls
//! [`Hub::deliver`] on every node. The hub indexes connections by id and channels by name
//! in lock-free maps (papaya); each channel keeps one copy-on-write subscriber list per
//! role group ([`channel::Channel`]). A user's sockets are found through their personal
//! channel `user:{sub}`, which every authenticated socket joins on connect.

pub mod channel;
pub mod conn;
pub mod event;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use self::{
    channel::{Channel, FanOut},
    conn::Conn,
    event::Encoded,
};
use crate::{metrics::Metrics, model::Role};

/// Bounds applied to every new connection's outbox.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    pub max_msgs: usize,
    pub max_bytes: usize,
}

/// This node's sessions and channels.
#[derive(Debug)]
pub struct Hub {
    channels: papaya::HashMap<Arc<str>, Arc<Channel>>,
    conns: papaya::HashMap<u64, Arc<Conn>>,
    next_id: AtomicU64,
    limits: OutboxLimits,
    metrics: Arc<Metrics>,
}

impl Hub {
    /// An empty hub.
    pub fn new(limits: OutboxLimits, metrics: Arc<Metrics>) -> Self {
        Hub {
            channels: papaya::HashMap::new(),
            conns: papaya::HashMap::new(),
            next_id: AtomicU64::new(1),
            limits,
            metrics,
        }
    }

    /// Allocates a connection id (used before the identity is known, for guests).
    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a socket and returns its handle and outbox receiver.
    pub fn register(
        &self,
        id: u64,
        sub: Arc<str>,
        role: Role,
    ) -> (Arc<Conn>, mpsc::Receiver<Utf8Bytes>) {
        let (conn, rx) = Conn::new(id, sub, role, self.limits.max_msgs, self.limits.max_bytes);
        self.conns.pin().insert(id, conn.clone());
        self.metrics.conn_opened(role);
        (conn, rx)
    }

    /// Bytes queued in every outbox, summed at the moment of the call. Read by the
    /// metrics endpoint only: a shared counter on the push path would make every
    /// delivery contend on one cache line.
    pub fn queued_bytes(&self) -> usize {
        self.conns.pin().values().map(|c| c.queued_bytes()).sum()
    }

    /// Forgets a socket and its memberships. `channels` are the names it had joined.
    pub fn unregister(&self, conn: &Conn, channels: &[Arc<str>]) {
        let role = conn.role();
        for name in channels {
            self.unsubscribe(conn.id, name, role);
        }
        if self.conns.pin().remove(&conn.id).is_some() {
            self.metrics.conn_closed(role);
        }
    }

    /// Adds `conn` to `name` in `role`'s group.
    pub fn subscribe(&self, conn: &Arc<Conn>, name: &Arc<str>, role: Role) {
        loop {
            let channel = self
                .channels
                .pin()
                .get_or_insert_with(name.clone(), || Arc::new(Channel::new(name.clone())))
                .clone();
            if channel.add(conn, role) {
                return;
            }
            // The channel emptied and is being retired; drop it and retry with a new one.
            let _ = self
                .channels
                .pin()
                .remove_if(name, |_, v| Arc::ptr_eq(v, &channel));
        }
    }

    /// Removes connection `id` from `name`'s `role` group, retiring the channel if empty.
    pub fn unsubscribe(&self, id: u64, name: &Arc<str>, role: Role) {
        let channel = self.channels.pin().get(name).cloned();
        if let Some(channel) = channel
            && channel.remove(id, role)
        {
            let _ = self
                .channels
                .pin()
                .remove_if(name, |_, v| Arc::ptr_eq(v, &channel));
        }
    }

    /// Moves a socket between role groups after a refresh changed its role.
    pub fn change_group(&self, conn: &Arc<Conn>, name: &Arc<str>, from: Role, to: Role) {
        if from == to {
            return;
        }
        // Join the new group before leaving the old one so the channel never looks empty.
        self.subscribe(conn, name, to);
        self.unsubscribe(conn.id, name, from);
    }

    /// Queues an encoded event to this node's subscribers of its channel.
    pub fn deliver(&self, ev: &Encoded) -> FanOut {
        let channel = self.channels.pin().get(&ev.channel).cloned();
        let out = channel.map(|c| c.deliver(ev)).unwrap_or_default();
        self.metrics
            .delivered
            .fetch_add(out.delivered as u64, Ordering::Relaxed);
        if out.overflowed > 0 {
            self.metrics
                .slow_disconnects
                .fetch_add(out.overflowed as u64, Ordering::Relaxed);
            tracing::warn!(channel = %ev.channel, count = out.overflowed, "closing slow sockets");
        }
        out
    }

    /// Subscribers of a channel on this node, per role group.
    pub fn counts(&self, name: &str) -> [usize; 4] {
        self.channels
            .pin()
            .get(name)
            .map(|c| c.counts())
            .unwrap_or_default()
    }

    /// Distinct non-guest users subscribed to a channel on this node.
    pub fn users(&self, name: &str) -> Vec<Arc<str>> {
        self.channels
            .pin()
            .get(name)
            .map(|c| c.users())
            .unwrap_or_default()
    }

    /// The process metrics, shared with the bus.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Number of open sockets on this node.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Asks every socket to close with `code` (used at shutdown).
    pub fn close_all(&self, code: u16) {
        for conn in self.conns.pin().values() {
            conn.request_close(code);
        }
    }

    /// Subscribers per role group of every channel on this node (presence heartbeats).
    pub fn all_counts(&self) -> Vec<(Arc<str>, [usize; 4])> {
        self.channels
            .pin()
            .iter()
            .map(|(name, c)| (name.clone(), c.counts()))
            .collect()
    }

    /// Subscriber totals (all role groups) of this node's channels whose name starts
    /// with `prefix`, for presence events. Empty channels are retired, so never listed.
    pub fn channel_totals(&self, prefix: &str) -> Vec<(Arc<str>, usize)> {
        self.channels
            .pin()
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, c)| (name.clone(), c.counts().iter().sum()))
            .collect()
    }
}
