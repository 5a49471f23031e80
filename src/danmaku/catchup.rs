//! Catch-up after a bus outage: when to publish the changes recorded while the bus was
//! away.
//!
//! While Redis is away a node delivers its own new comments (and deletions) to its own
//! sockets at once, without a `seq`, and records each change in the store
//! ([`Service::publish`](super::Service::publish)). Once the bus is back, some node takes
//! the records and publishes them numbered, to every node
//! ([`Service::catch_up`](super::Service::catch_up)). The records live in the store, not
//! in a node's memory, so they survive the recording node and any node may publish them;
//! taking is exclusive, so each is published once.
//!
//! The [`Pacer`] decides when: not before the bus has been ready for [`SETTLE`] (the
//! Redis bus turns ready only 2 s after a reconnect, once every other node listens
//! again), then at once when this node recorded something, and every [`IDLE_CHECK`]
//! otherwise (records left by a node that died during the outage).

use std::{
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

use super::{
    Service,
    announce::{comment_event, deletion_event, once_name, parse_once},
};
use crate::{
    access::Directory,
    bus::{Bus, BusError},
    model::{Tier, Visibility},
    store::danmaku::{Deferred, StoredDanmaku},
};

/// Records taken per store round trip.
pub const BATCH: usize = 500;

/// How long the bus must have been ready before recorded changes go out. The Redis bus
/// already holds its publishes for 2 s after a reconnect (until every node listens
/// again); this adds a margin for a node whose reconnect took one more attempt.
pub const SETTLE: Duration = Duration::from_millis(1_000);

/// How often a node looks for records it did not make.
pub const IDLE_CHECK: Duration = Duration::from_secs(5);

/// How often the loop looks at the bus and the flag.
pub const TICK: Duration = Duration::from_millis(250);

/// Decides, tick by tick, whether to run a catch-up now.
#[derive(Debug, Default)]
pub struct Pacer {
    /// Since when the bus has been ready without a break, as last seen.
    ready_since: Option<Instant>,
    /// The last catch-up run.
    last_run: Option<Instant>,
}

impl Pacer {
    /// Whether to catch up at `now`, given whether the bus is ready and whether this
    /// node recorded a change since its last run.
    pub fn due(&mut self, now: Instant, ready: bool, recorded: bool) -> bool {
        if !ready {
            self.ready_since = None;
            return false;
        }
        let since = *self.ready_since.get_or_insert(now);
        if now.duration_since(since) < SETTLE {
            return false;
        }
        let idle = self
            .last_run
            .is_none_or(|at| now.duration_since(at) >= IDLE_CHECK);
        if recorded || idle {
            self.last_run = Some(now);
            return true;
        }
        false
    }
}

impl Service {
    /// Publishes the changes recorded while the bus was away, oldest first, through the
    /// bus (numbered, to every node), [`BATCH`] at a time. A record that cannot be
    /// published is recorded again. Returns how many were handled.
    pub async fn catch_up(&self, bus: &dyn Bus, dir: &Directory) -> Result<usize, BusError> {
        self.catch_up_due.store(false, Relaxed);
        let mut published = 0;
        loop {
            let batch = self
                .store
                .take_deferred(BATCH)
                .await
                .map_err(|e| BusError::Unavailable(format!("catch-up read: {e}")))?;
            for (i, (change, stored)) in batch.iter().enumerate() {
                // A hidden comment has no public event: never recorded, and never
                // published from a record either.
                if *change == Deferred::Posted
                    && (stored.deleted_at.is_some() || stored.d.state != Visibility::Visible)
                {
                    continue;
                }
                let tier = dir.video_tier(&stored.d.video).unwrap_or(Tier::Free);
                let event = match change {
                    Deferred::Posted => comment_event(stored, tier),
                    Deferred::Deleted => deletion_event(stored, tier),
                };
                if let Err(e) = bus
                    .publish_once(event, &once_name(*change, stored.id))
                    .await
                {
                    self.redefer(&batch[i..]).await;
                    return Err(e);
                }
                published += 1;
                self.metrics.caught_up.fetch_add(1, Relaxed);
            }
            if batch.len() < BATCH {
                return Ok(published);
            }
        }
    }

    /// Records again what a catch-up took but could not publish.
    async fn redefer(&self, rest: &[(Deferred, StoredDanmaku)]) {
        for (change, stored) in rest {
            if let Err(e) = self.record(*change, stored.id).await {
                tracing::error!(id = stored.id, error = %e, "catch-up record lost");
            }
        }
    }

    /// Records for catch-up the changes the bus published but could not confirm (it
    /// broke before this node got them back): Redis may have died with them unsent.
    pub async fn record_unconfirmed(&self, bus: &dyn Bus) {
        for once in bus.take_unconfirmed() {
            let Some((change, id)) = parse_once(&once) else {
                tracing::warn!(once, "unconfirmed publish with an unknown name ignored");
                continue;
            };
            if let Err(e) = self.record(change, id).await {
                tracing::error!(id, error = %e, "unconfirmed publish not recorded");
            }
        }
    }

    /// Whether this node recorded a change since its last catch-up.
    pub fn catch_up_due(&self) -> bool {
        self.catch_up_due.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_bus_to_settle_then_runs_when_recorded_or_idle() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Pacer::default();
        assert!(!p.due(at(0), false, true), "bus away");
        assert!(!p.due(at(100), true, true), "just back");
        assert!(!p.due(at(1_000), true, true), "still settling");
        assert!(p.due(at(1_200), true, true), "settled, recorded");
        assert!(
            !p.due(at(1_450), true, false),
            "nothing recorded, checked lately"
        );
        assert!(p.due(at(1_700), true, true), "recorded again");
        assert!(p.due(at(6_800), true, false), "idle check");
        // An outage restarts the settling time.
        assert!(!p.due(at(8_000), false, true));
        assert!(!p.due(at(8_100), true, true));
        assert!(!p.due(at(9_000), true, true), "settling again");
        assert!(p.due(at(9_200), true, true));
    }
}
