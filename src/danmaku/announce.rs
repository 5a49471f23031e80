//! Announcing stored changes: the live event of a new or deleted comment, and its
//! publish, which falls back to this node's own sockets and a catch-up record when the
//! bus is away ([`super::catchup`] publishes the records once it is back).
//!
//! A held or shadowed comment has no public event: nobody but its author (who has the
//! acknowledgement), the video's moderators and admins may learn it exists. Those get
//! marked copies (`marked_events`: the comment with its `state`), published best
//! effort with no catch-up record (their history and the review queue hold the same).

use std::sync::{Arc, atomic::Ordering::Relaxed};

use super::{Service, View, room};
use crate::{
    bus::{Bus, LocalOnly},
    hub::event::{Publish, Target},
    model::{Role, Tier, Visibility, role_bit, time::now_millis},
    store::{
        StoreError,
        danmaku::{Deferred, StoredDanmaku},
    },
};

/// The live event of a stored change, with the change it announces: what
/// [`Service::publish`] records for catch-up when the bus cannot carry it.
#[derive(Debug)]
pub struct Announcement {
    /// The change's event for everyone in the comment's audience; `None` when the
    /// comment is hidden from them (held, shadowed, or rejected unseen).
    pub event: Option<Publish>,
    pub change: Deferred,
    /// The comment changed.
    pub id: i64,
    /// Copies for the video's moderators, admins and sometimes the author (see
    /// `marked_events`), published after `event`, best effort.
    pub marked: Vec<Publish>,
    /// The webhook event of the change (`crate::webhooks`), queued after the publish.
    pub webhook: Option<(&'static str, serde_json::Value)>,
}

/// The data of a `danmaku.posted` / `danmaku.held` webhook event: the comment as
/// moderators see it (with its state when not visible), its author, and `extra`'s fields.
pub(super) fn hook_data(stored: &StoredDanmaku, extra: serde_json::Value) -> serde_json::Value {
    let mut data = serde_json::json!({
        "danmaku": View::marked(stored),
        "author": stored.d.sub,
    });
    if let (Some(d), serde_json::Value::Object(more)) = (data.as_object_mut(), extra) {
        d.extend(more);
    }
    data
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

/// The event telling everyone who could see a comment that it is deleted. A hidden
/// comment was seen by its author only (of the audience): the event goes to them.
pub(super) fn deletion_event(stored: &StoredDanmaku, tier: Tier) -> Publish {
    let mut target = Target::audience(stored.d.audience);
    target.mask &= tier.mask();
    if stored.d.state != Visibility::Visible {
        target = target.only_users([stored.d.sub.clone()]);
    }
    Publish {
        channel: room(&stored.d.video),
        event: "danmaku_deleted".into(),
        data: deletion_data(stored),
        target,
    }
}

/// The body of a `danmaku_deleted` event.
pub(super) fn deletion_data(stored: &StoredDanmaku) -> serde_json::Value {
    serde_json::json!({"id": stored.id, "video": stored.d.video})
}

/// Events for the people who see what the audience does not: admins (by role) and the
/// video's moderators (the stored ones by user, those of a token's `mod` claim by their
/// socket: [`Target::claim_moderators`]), within the comment's audience and the video's
/// tier, and the author too when `author` is set (a review's outcome). Never the same
/// socket twice: the moderators' copy skips the admin group, which has its own, and a
/// socket passes it once whether it is listed, claims the video, or both.
pub(super) fn marked_events(
    stored: &StoredDanmaku,
    tier: Tier,
    moderators: Vec<String>,
    event: &str,
    data: serde_json::Value,
    author: bool,
) -> Vec<Publish> {
    let admin = role_bit(Role::Admin);
    let reach = stored.d.audience.mask() & tier.mask();
    let except = (!author).then(|| Arc::<str>::from(stored.d.sub.as_str()));
    let mut out = Vec::with_capacity(2);
    if reach & admin != 0 {
        out.push(Publish {
            channel: room(&stored.d.video),
            event: event.into(),
            data: data.clone(),
            target: Target {
                mask: admin,
                users: None,
                except: except.clone(),
                claim_moderators: false,
            },
        });
    }
    let mut users: Vec<String> = moderators
        .into_iter()
        .filter(|m| author || *m != stored.d.sub)
        .collect();
    if author {
        users.push(stored.d.sub.clone());
    }
    // Sent even with no stored moderator: moderators by `mod` claim are known only to
    // their sockets, on whichever node they are.
    if reach & !admin != 0 {
        let mut target = Target::audience(stored.d.audience).only_users(users);
        target.mask = reach & !admin;
        target.except = except;
        target.claim_moderators = true;
        out.push(Publish {
            channel: room(&stored.d.video),
            event: event.into(),
            data,
            target,
        });
    }
    out
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
        let Announcement {
            event,
            change,
            id,
            marked,
            webhook,
        } = a;
        if let Some(event) = event {
            self.publish_public(bus, event, change, id).await;
        }
        for p in marked {
            if let Err(e) = bus.publish(p).await {
                tracing::warn!(id, error = %e, "a moderators' copy was not published");
            }
        }
        if let Some((event, data)) = webhook {
            self.webhooks.emit(event, data).await;
        }
    }

    /// Publishes a change's public event, or records it for catch-up.
    async fn publish_public(&self, bus: &dyn Bus, event: Publish, change: Deferred, id: i64) {
        let Err(LocalOnly {
            error,
            delivered_here,
        }) = bus.publish_stored(event, &once_name(change, id)).await
        else {
            return;
        };
        let what = change.as_str();
        match self.record(change, id).await {
            Ok(()) => tracing::warn!(id, change = what, delivered_here, error = %error,
                "bus away: delivered on this node only; recorded for catch-up"),
            // The change is stored; other nodes' viewers find it in history only.
            Err(e) => tracing::error!(id, change = what, delivered_here, bus = %error,
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
