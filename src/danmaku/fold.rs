//! Spam-wave folding: in a busy room, a wave of the same comment (`2333333`, `23333`,
//! `ＨＡＨＡ`, `haha`) is one comment and a count, not fifty flying copies.
//!
//! Within `danmaku.fold_window_ms` of a comment (the first), later comments in the same
//! room whose [`fold_key`] is the same and whose audience is the same are stored and
//! acknowledged as usual (history and exports keep every one), but are not published as
//! comments: the first's count grows, and every [`FLUSH_EVERY`](super::likes::FLUSH_EVERY)
//! the counts that changed go out as `danmaku_fold {id, video, count}` (`count`: how many
//! comments the first stands for, itself included), to the first's audience within the
//! video's tier, so a count reaches only sockets that could see every folded comment.
//! The window runs from the first comment; the next one after it opens a new fold.
//! Members' comments fold only with `danmaku.fold_members`; admins' never do. Held and
//! shadowed comments never fold (nobody else sees them anyway).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering::Relaxed},
    },
    time::Duration,
};

use moka::future::Cache;

use super::room;
use crate::{
    bus::Bus,
    hub::event::{Publish, Target},
    model::{Audience, Role, Tier, text::fold},
};

/// The key comments fold on: folded (case and width), without spaces, each run of one
/// character kept once (`2333333` → `23`, `哈哈哈` → `哈`).
pub fn fold_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = None;
    for c in fold(text).chars().filter(|c| !c.is_whitespace()) {
        if last != Some(c) {
            out.push(c);
            last = Some(c);
        }
    }
    out
}

/// An open fold: the first comment and how many it stands for.
#[derive(Debug)]
struct Open {
    first: i64,
    count: AtomicU32,
}

/// A count waiting to go out.
#[derive(Debug, Clone)]
struct Pending {
    video: String,
    audience: Audience,
    tier: Tier,
    count: u32,
}

/// What comments fold on: the room, the [`fold_key`] and the audience.
type FoldKey = (Arc<str>, String, Audience);

/// The open folds per (room, key, audience) and the counts waiting to go out.
pub(super) struct Folds {
    members: bool,
    /// Off when `None` (`fold_window_ms` 0).
    open: Option<Cache<FoldKey, Arc<Open>>>,
    pending: Mutex<HashMap<i64, Pending>>,
}

impl Folds {
    /// Built from `[danmaku]`: the window (0: off) and whether members fold.
    pub(super) fn new(window_ms: u64, members: bool) -> Folds {
        Folds {
            members,
            open: (window_ms > 0).then(|| {
                Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_millis(window_ms))
                    .build()
            }),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Folds comment `id` into an open fold of its room and returns the first's id, or
    /// opens a fold with it (and returns `None`: publish it as usual).
    pub(super) async fn fold(
        &self,
        video: &str,
        text: &str,
        audience: Audience,
        tier: Tier,
        role: Role,
        id: i64,
    ) -> Option<i64> {
        let open = self.open.as_ref()?;
        let folds = match role {
            Role::Admin | Role::Guest => false,
            Role::Member => self.members,
            Role::Free => true,
        };
        if !folds {
            return None;
        }
        let key = (Arc::<str>::from(video), fold_key(text), audience);
        let entry = open
            .entry(key)
            .or_insert_with(async {
                Arc::new(Open {
                    first: id,
                    count: AtomicU32::new(1),
                })
            })
            .await;
        if entry.is_fresh() {
            return None;
        }
        let f = entry.into_value();
        let count = f.count.fetch_add(1, Relaxed) + 1;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                f.first,
                Pending {
                    video: video.to_string(),
                    audience,
                    tier,
                    count,
                },
            );
        Some(f.first)
    }

    /// Publishes the counts that changed since the last flush, one event per fold.
    pub(super) async fn flush(&self, bus: &dyn Bus) {
        let due = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (first, p) in due {
            let mut target = Target::audience(p.audience);
            target.mask &= p.tier.mask();
            let event = Publish {
                channel: room(&p.video),
                event: "danmaku_fold".into(),
                data: serde_json::json!({"id": first, "video": p.video, "count": p.count}),
                target,
            };
            if let Err(e) = bus.publish(event).await {
                tracing::debug!(first, error = %e, "fold count not published");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_share_a_key() {
        assert_eq!(fold_key("2333333"), fold_key("23333"));
        assert_eq!(fold_key("2333333"), "23");
        assert_eq!(fold_key("ＨＡＨＡ  ha"), fold_key("haha ha"));
        assert_eq!(fold_key("哈哈哈哈"), "哈");
        assert_ne!(fold_key("233"), fold_key("322"));
    }

    #[tokio::test]
    async fn later_comments_fold_onto_the_first_within_the_window_and_audience() {
        let f = Folds::new(60_000, false);
        let fold = |text: &'static str, aud, role, id| f.fold("v", text, aud, Tier::Free, role, id);
        assert_eq!(
            fold("2333", Audience::Everyone, Role::Free, 1).await,
            None,
            "the first"
        );
        assert_eq!(
            fold("233333", Audience::Everyone, Role::Free, 2).await,
            Some(1)
        );
        assert_eq!(fold("23", Audience::Everyone, Role::Free, 3).await, Some(1));
        assert_eq!(
            fold("23", Audience::Members, Role::Free, 4).await,
            None,
            "another audience"
        );
        assert_eq!(
            fold("23", Audience::Everyone, Role::Member, 5).await,
            None,
            "members unfolded"
        );
        assert_eq!(fold("23", Audience::Everyone, Role::Admin, 6).await, None);
        let pending = f.pending.lock().unwrap().clone();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[&1].count, 3);
        assert!(
            Folds::new(0, true)
                .fold("v", "x", Audience::Everyone, Tier::Free, Role::Free, 1)
                .await
                .is_none()
        );
    }
}
