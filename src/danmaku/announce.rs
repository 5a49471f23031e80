//! Announcing stored changes: the live event of a new or deleted comment, and its
//! publish, which falls back to this node's own sockets and a catch-up record when the
//! bus is away ([`super::catchup`] publishes the records once it is back).

use std::sync::{Arc, atomic::Ordering::Relaxed};

use super::{Service, View, room};
use crate::{
    bus::{Bus, LocalOnly},
    hub::event::{Publish, Target},
    model::{Tier, time::now_millis},
    store::{
        StoreError,
        danmaku::{Deferred, StoredDanmaku},
    },
};

/// The live event of a stored change, with the change it announces: what
/// [`Service::publish`] records for catch-up when the bus cannot carry it.
#[derive(Debug)]
pub struct Announcement {
    pub event: Publish,
    pub change: Deferred,
    /// The comment changed.
    pub id: i64,
}

/// The event announcing a stored comment to everyone in its audience who may read a
/// video of `tier`, except its author (who has the acknowledgement).
pub(super) fn comment_event(stored: &StoredDanmaku, tier: Tier) -> Publish {
    let mut target = Target::audience(stored.d.audience);
    target.mask &= tier.mask();
    target.except = Some(Arc::from(stored.d.sub.as_str()));
    Publish {
        channel: room(&stored.d.video),
        event: "danmaku".into(),
        data: serde_json::to_value(View::of(stored)).unwrap_or_default(),
        target,
    }
}

/// The event telling everyone who could see a comment that it is deleted.
pub(super) fn deletion_event(stored: &StoredDanmaku, tier: Tier) -> Publish {
    let mut target = Target::audience(stored.d.audience);
    target.mask &= tier.mask();
    Publish {
        channel: room(&stored.d.video),
        event: "danmaku_deleted".into(),
        data: serde_json::json!({"id": stored.id, "video": stored.d.video}),
        target,
    }
}

/// The bus's once-only name of a stored change (`posted:42`): unique per change, so a
/// second publish of it is recognised.
pub(super) fn once_name(change: Deferred, id: i64) -> String {
    format!("{}:{id}", change.as_str())
}

/// Reads a [`once_name`] back.
pub(super) fn parse_once(once: &str) -> Option<(Deferred, i64)> {
    let (kind, id) = once.split_once(':')?;
    Some((Deferred::parse(kind)?, id.parse().ok()?))
}

impl Service {
    /// Publishes the event of a stored change (after the caller acknowledged it). When
    /// the bus is away the event has reached this node's sockets only; the change is
    /// recorded in the store, and [`Service::catch_up`] publishes it once the bus is back.
    pub async fn publish(&self, bus: &dyn Bus, a: Announcement) {
        let Err(LocalOnly {
            error,
            delivered_here,
        }) = bus
            .publish_stored(a.event, &once_name(a.change, a.id))
            .await
        else {
            return;
        };
        let change = a.change.as_str();
        match self.record(a.change, a.id).await {
            Ok(()) => tracing::warn!(id = a.id, change, delivered_here, error = %error,
                "bus away: delivered on this node only; recorded for catch-up"),
            // The change is stored; other nodes' viewers find it in history only.
            Err(e) => tracing::error!(id = a.id, change, delivered_here, bus = %error,
                error = %e, "bus away and the catch-up record failed"),
        }
    }

    /// Records a change the bus did not (surely) carry, and asks for a catch-up.
    pub(super) async fn record(&self, change: Deferred, id: i64) -> Result<(), StoreError> {
        self.metrics.publish_deferred.fetch_add(1, Relaxed);
        self.store.defer_publish(change, id, now_millis()).await?;
        self.catch_up_due.store(true, Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_names_read_back() {
        let name = once_name(Deferred::Deleted, 42);
        assert_eq!(name, "deleted:42");
        assert_eq!(parse_once(&name), Some((Deferred::Deleted, 42)));
        assert_eq!(parse_once("posted:x"), None);
        assert_eq!(parse_once("liked:1"), None);
    }
}
