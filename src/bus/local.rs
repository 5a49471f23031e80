//! The in-process bus: one node, no network.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;

use super::{Bus, BusError, Join, Joined, LocalOnly, Published};
use crate::{
    hub::{
        Hub,
        event::{Encoded, Publish},
    },
    model::time::now_millis,
};

/// Bounds of each channel's replay window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Most events kept per channel.
    pub events: usize,
    /// Oldest event kept, in milliseconds.
    pub max_age_ms: u64,
}

/// One channel's sequence and recent events.
#[derive(Debug)]
struct Log {
    /// Identifies this sequence: a log dropped when idle and created again restarts at
    /// seq 1 under a new epoch, so stale positions are never mistaken for recent ones.
    epoch: Arc<str>,
    last_seq: u64,
    /// Unix ms of the last publish or join.
    touched: u64,
    /// `(published at ms, event)`, oldest first.
    recent: VecDeque<(u64, Encoded)>,
    /// Set by [`LocalBus::sweep`] when the log leaves the map; users then fetch anew.
    retired: bool,
}

impl Log {
    /// Drops what the window no longer holds.
    fn trim(&mut self, w: Window, now: u64) {
        while self.recent.len() > w.events {
            self.recent.pop_front();
        }
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) > w.max_age_ms)
        {
            self.recent.pop_front();
        }
    }
}

/// Delivers straight into this process's hub.
///
/// Each channel has a log: a small mutex held while an event is numbered, kept in the
/// window and queued to the channel's sockets, so every socket sees `seq` strictly
/// increasing even with concurrent publishers. A join takes the same lock to replay and
/// go live atomically. The lock covers one encode and `try_send`s, none of which waits;
/// it is per channel, so different channels never contend.
#[derive(Debug)]
pub struct LocalBus {
    hub: Arc<Hub>,
    logs: papaya::HashMap<Arc<str>, Arc<Mutex<Log>>>,
    window: Window,
    /// Changes on every start: sequences restart at 1.
    epoch: String,
    /// Counts logs created, to give each its own epoch.
    generation: std::sync::atomic::AtomicU64,
}

impl LocalBus {
    /// A bus feeding `hub`, keeping `window` of each channel for recovery.
    pub fn new(hub: Arc<Hub>, window: Window) -> Self {
        LocalBus {
            hub,
            logs: papaya::HashMap::new(),
            window,
            epoch: format!("{:012x}", rand::random::<u64>() >> 16),
            generation: Default::default(),
        }
    }

    /// The log of a channel, created on first use.
    fn log(&self, channel: &Arc<str>) -> Arc<Mutex<Log>> {
        self.logs
            .pin()
            .get_or_insert_with(channel.clone(), || {
                let g = self
                    .generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Arc::new(Mutex::new(Log {
                    epoch: Arc::from(format!("{}-{g}", self.epoch)),
                    last_seq: 0,
                    touched: now_millis(),
                    recent: VecDeque::new(),
                    retired: false,
                }))
            })
            .clone()
    }

    /// The current log of a channel, skipping one retired by a concurrent sweep.
    fn live_log(&self, channel: &Arc<str>) -> Arc<Mutex<Log>> {
        loop {
            let log = self.log(channel);
            if !log.lock().unwrap_or_else(|e| e.into_inner()).retired {
                return log;
            }
        }
    }

    /// Forgets logs idle for longer than the window's age: their events have expired and
    /// a later publish starts a new epoch. Called periodically.
    pub fn sweep(&self) -> usize {
        let now = now_millis();
        let idle = self.window.max_age_ms.max(60_000);
        let map = self.logs.pin();
        let before = map.len();
        map.retain(|_, log| {
            let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
            let keep = now.saturating_sub(log.touched) <= idle;
            log.retired = !keep;
            keep
        });
        before - map.len()
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, msg: Publish) -> Result<Published, BusError> {
        Ok(self.publish_now(msg))
    }

    /// The in-process bus is never away, so nothing is published twice.
    async fn publish_stored(&self, msg: Publish, _once: &str) -> Result<Published, LocalOnly> {
        Ok(self.publish_now(msg))
    }

    async fn publish_once(&self, msg: Publish, _once: &str) -> Result<Published, BusError> {
        Ok(self.publish_now(msg))
    }

    async fn join(&self, join: Join<'_>) -> Result<Joined, BusError> {
        Ok(self.join_now(join))
    }

    fn name(&self) -> &'static str {
        "local"
    }

    async fn presence(&self, channel: &str) -> Result<[usize; 4], BusError> {
        Ok(self.hub.counts(channel))
    }

    async fn claim_run(
        &self,
        _id: &str,
        _planned_ms: u64,
        local_run: u64,
    ) -> Result<Option<u64>, BusError> {
        // One node: every run is this node's.
        Ok(Some(local_run))
    }
}

impl LocalBus {
    /// Numbers, records and delivers one event (never waits).
    fn publish_now(&self, msg: Publish) -> Published {
        let handle = self.live_log(&msg.channel);
        let mut log = handle.lock().unwrap_or_else(|e| e.into_inner());
        if log.retired {
            drop(log);
            return self.publish_now(msg);
        }
        let seq = log.last_seq + 1;
        log.last_seq = seq;
        let now = now_millis();
        log.touched = now;
        let encoded = Encoded::encode(msg, seq, now);
        let delivery = if self.window.events > 0 {
            let delivery = self.hub.deliver(encoded.clone());
            log.recent.push_back((now, encoded));
            log.trim(self.window, now);
            delivery
        } else {
            self.hub.deliver(encoded)
        };
        drop(log);
        // The room's pass runs outside the log lock: publishers of this channel queue
        // behind the pass's batch, never behind its writes.
        if let Some(room) = delivery.flush {
            self.hub.flush(room);
        }
        self.hub
            .metrics()
            .published
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Published {
            seq,
            delivered: delivery.count,
        }
    }

    /// Replays and subscribes atomically with respect to publishes (never waits).
    fn join_now(&self, join: Join<'_>) -> Joined {
        let handle = self.live_log(join.channel);
        let mut log = handle.lock().unwrap_or_else(|e| e.into_inner());
        if log.retired {
            drop(log);
            return self.join_now(join);
        }
        let now = now_millis();
        log.trim(self.window, now);
        log.touched = now;
        let mut joined = Joined {
            epoch: log.epoch.to_string(),
            seq: log.last_seq,
            recovered: None,
            replayed: 0,
        };
        let missed: Vec<&Encoded> = match &join.since {
            None => Vec::new(),
            Some(since) => {
                let oldest = log
                    .recent
                    .front()
                    .map(|(_, e)| e.seq)
                    .unwrap_or(log.last_seq + 1);
                // Recoverable when the epoch matches and nothing after `since` fell out
                // of the window (the next needed seq is still held, or nothing is missed).
                let reaches = since.seq >= log.last_seq || since.seq + 1 >= oldest;
                let ok = *since.epoch == *log.epoch && since.seq <= log.last_seq && reaches;
                joined.recovered = Some(ok);
                if ok {
                    log.recent
                        .iter()
                        .map(|(_, e)| e)
                        .filter(|e| e.seq > since.seq)
                        .collect()
                } else {
                    Vec::new()
                }
            }
        };
        let mut replay = Vec::with_capacity(missed.len());
        for e in missed {
            if e.target.admits(join.role, join.conn, join.channel) {
                replay.push(e.text.clone());
            }
        }
        // Live from here on: publishers wait on this lock, so nothing slips between.
        join.finish(&self.hub, &mut joined, &replay);
        drop(log);
        joined
    }
}
