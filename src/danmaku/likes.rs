//! Likes: one per user per comment, on comments the user can see, with the count sent
//! live as a throttled `danmaku_likes` event and kept on the comment's stored row.
//!
//! A like is stored first and answered with the stored count; the live event is left to
//! [`super::Service::flush_likes`], which the server runs every [`FLUSH_EVERY`]: however
//! fast a comment is liked, its room gets at most one event per flush with the latest
//! count. Likes also feed the poster's weight in the free-feed sampler
//! ([`Likes::weight`]).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use moka::future::Cache;
use serde::Serialize;

use super::{Service, room};
use crate::{
    access::Directory,
    bus::Bus,
    hub::event::{Publish, Target},
    model::{Audience, Identity, Refusal, Role, Tier, Visibility, time::now_millis},
    store::StoreError,
};

/// How often pending like counts go out: at most one event per comment per period.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How long the likes a poster received in a room count towards their weight.
const REPUTATION_TTL: Duration = Duration::from_secs(600);

/// The answer to a like or unlike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, poem_openapi::Object)]
pub struct LikeState {
    /// The comment.
    pub id: i64,
    /// Its like count after the change.
    pub likes: u32,
    /// Whether the caller now likes it.
    pub liked: bool,
}

/// A count waiting for the next flush.
#[derive(Debug, Clone)]
struct Pending {
    video: String,
    audience: Audience,
    tier: Tier,
    likes: u32,
    /// For a held or shadowed comment: its author, the only one of its audience who
    /// sees it (and so its count).
    only: Option<String>,
}

/// The likes side of the service: counts waiting to go out, and posters' reputations.
pub struct Likes {
    pending: Mutex<HashMap<i64, Pending>>,
    /// Likes received lately per (video, poster): the sampler's weight.
    received: Cache<(String, String), u32>,
}

impl std::fmt::Debug for Likes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Likes").finish_non_exhaustive()
    }
}

impl Default for Likes {
    fn default() -> Self {
        Likes {
            pending: Mutex::new(HashMap::new()),
            received: Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(REPUTATION_TTL)
                .build(),
        }
    }
}

impl Likes {
    /// The free-feed weight of a comment by `who` in `video`, from 1 (a free user nobody
    /// liked lately) to 4: one more for a member or admin, up to two more for the likes
    /// the poster received in this room in the last ten minutes (1, 3, 7, … likes).
    pub async fn weight(&self, video: &str, who: &Identity) -> f64 {
        let member = if who.role.is_member_or_admin() {
            1.0
        } else {
            0.0
        };
        let liked = self
            .received
            .get(&(video.to_string(), who.sub.to_string()))
            .await
            .unwrap_or(0);
        1.0 + member + (f64::from(liked) + 1.0).log2().min(2.0)
    }

    /// Takes the counts waiting to go out.
    fn take(&self) -> HashMap<i64, Pending> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The live event of a comment's like count, for everyone who may see the comment.
fn likes_event(id: i64, p: &Pending) -> Publish {
    let mut target = Target::audience(p.audience);
    target.mask &= p.tier.mask();
    if let Some(author) = &p.only {
        target = target.only_users([author.clone()]);
    }
    Publish {
        channel: room(&p.video),
        event: "danmaku_likes".into(),
        data: serde_json::json!({"id": id, "video": p.video, "likes": p.likes}),
        target,
    }
}

impl Service {
    /// Sets whether `who` likes comment `id`. Guests may not like; a comment that is
    /// unknown, deleted, or not visible to the caller is 404 `unknown_danmaku`, as if it
    /// did not exist. Idempotent: liking twice keeps one like.
    pub async fn like(
        &self,
        dir: &Directory,
        who: &Identity,
        id: i64,
        liked: bool,
    ) -> Result<LikeState, Refusal> {
        if who.role == Role::Guest {
            return Err(Refusal::forbidden("forbidden", "sign in to like comments"));
        }
        let unavailable = |e: StoreError| {
            tracing::error!(error = %e, "like failed");
            Refusal::unavailable("store_unavailable", "the like was not stored; retry")
        };
        let not_found = || Refusal::not_found("unknown_danmaku", format!("no comment {id}"));
        let stored = self
            .store
            .get_danmaku(id)
            .await
            .map_err(unavailable)?
            .filter(|s| s.deleted_at.is_none())
            .ok_or_else(not_found)?;
        let tier = dir.video_tier(&stored.d.video).ok_or_else(not_found)?;
        let hidden = stored.d.state != Visibility::Visible;
        let visible = super::audience_reads(tier, stored.d.audience, who.role)
            && (!hidden
                || *stored.d.sub == *who.sub
                || self.moderation.authority(who, &stored.d.video).is_some());
        if !visible {
            return Err(not_found());
        }
        let before = stored.likes;
        let likes = self
            .store
            .set_like(id, &who.sub, liked, now_millis())
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        if likes != before {
            self.invalidate(&stored.d.video).await;
            if liked && likes > before {
                let key = (stored.d.video.clone(), stored.d.sub.clone());
                let got = self.likes.received.get(&key).await.unwrap_or(0);
                self.likes.received.insert(key, got.saturating_add(1)).await;
            }
            self.likes
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    id,
                    Pending {
                        video: stored.d.video.clone(),
                        audience: stored.d.audience,
                        tier,
                        likes,
                        only: hidden.then(|| stored.d.sub.clone()),
                    },
                );
        }
        Ok(LikeState { id, likes, liked })
    }

    /// The ids of the comments of `video` that `sub` likes (to mark them in history).
    pub async fn liked_by(&self, sub: &str, video: &str) -> Result<Vec<i64>, Refusal> {
        self.store.liked_by(sub, video).await.map_err(|e| {
            tracing::error!(error = %e, "liked read failed");
            Refusal::unavailable("store_unavailable", "history is unavailable; retry")
        })
    }

    /// Publishes the fold counts changed since the last flush (see [`super::fold`]).
    pub async fn flush_folds(&self, bus: &dyn Bus) {
        self.folds.flush(bus).await;
    }

    /// Publishes the like counts changed since the last flush, one event per comment.
    /// A count the bus cannot carry is dropped: the next like, or a history read, has
    /// the stored count.
    pub async fn flush_likes(&self, bus: &dyn Bus) {
        for (id, p) in self.likes.take() {
            if let Err(e) = bus.publish(likes_event(id, &p)).await {
                tracing::debug!(id, error = %e, "like count not published");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn weight_grows_with_membership_and_received_likes_and_is_capped() {
        let likes = Likes::default();
        let mut free = Identity::guest(1);
        free.role = Role::Free;
        free.sub = std::sync::Arc::from("f");
        let mut member = free.clone();
        member.role = Role::Member;
        member.sub = std::sync::Arc::from("m");
        assert_eq!(likes.weight("v", &free).await, 1.0);
        assert_eq!(likes.weight("v", &member).await, 2.0);
        likes.received.insert(("v".into(), "f".into()), 3).await;
        assert_eq!(likes.weight("v", &free).await, 3.0);
        likes.received.insert(("v".into(), "f".into()), 1000).await;
        assert_eq!(
            likes.weight("v", &free).await,
            3.0,
            "received likes add at most 2"
        );
        assert_eq!(
            likes.weight("other", &free).await,
            1.0,
            "reputation is per room"
        );
    }
}
