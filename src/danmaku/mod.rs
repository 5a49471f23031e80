//! Danmaku: the comment rules and the posting, history and moderation flows.
//!
//! [`rules`] holds the pure checks. [`Service`] runs a post in the mandated order
//! ([`posting`]): validate → screen → store durably → acknowledge → publish, and the same
//! for deletions (here). REST, WebSocket and the DPlayer endpoint all go through it, so
//! one rule set applies. Reading is [`history`]; reviews, reports, folding, likes and
//! heatmaps have a file each.

pub mod announce;
pub mod catchup;
pub mod feed;
pub mod fold;
pub mod formats;
pub mod heatmap;
pub mod history;
pub mod likes;
pub mod posting;
pub mod reports;
pub mod review;
pub mod rules;

use std::sync::Arc;

use moka::future::Cache;
use serde::Serialize;

pub use self::announce::Announcement;
use self::{
    announce::{deletion_data, deletion_event, marked_events},
    feed::FreeFeed,
    posting::{SlowEntry, SlowExpiry},
    rules::{check_video_id, format_color},
};
use crate::{
    access::Directory,
    metrics::Metrics,
    model::{Audience, Identity, Policy, Refusal, Role, Tier, Visibility, time::now_millis},
    store::{
        Store,
        danmaku::{Deferred, StoredDanmaku},
    },
};

/// Default and maximum page sizes of the history API.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest history page.
pub const MAX_LIMIT: usize = 10_000;

/// How long an author may recall their own comment.
pub const RECALL_WINDOW_MS: u64 = 120_000;

/// The public view of a comment: what viewers receive. Never carries the author's `sub`.
#[derive(Debug, Clone, Serialize, poem_openapi::Object)]
pub struct View {
    /// Store-assigned id, strictly increasing.
    pub id: i64,
    pub video: String,
    /// Video position in seconds.
    pub time: f64,
    pub text: String,
    pub mode: crate::model::Mode,
    /// `#rrggbb`.
    pub color: String,
    pub size: crate::model::Size,
    pub audience: Audience,
    pub user: ViewUser,
    /// Unix milliseconds.
    pub created_at: u64,
    /// How many users like it (0 when posted; live changes come as `danmaku_likes`).
    pub likes: u32,
    /// Set (true) in history reads when the caller likes it; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub liked: Option<bool>,
    /// Only in the reply to a post (REST 201 body, WebSocket `danmaku` reply), when the
    /// video is in slow mode for the poster's role: the seconds they must now wait
    /// between two comments there, so the page can show it. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub slow_mode_s: Option<u32>,
    /// Present only where the reader may know a comment is not visible to everyone:
    /// `held` for its author (pending review) and for the video's moderators and admins,
    /// `shadow` for moderators and admins only (its author sees it as any comment).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub state: Option<Visibility>,
}

/// The author as viewers see them: a display name only.
#[derive(Debug, Clone, Serialize, poem_openapi::Object)]
pub struct ViewUser {
    pub name: String,
}

impl View {
    /// Builds the public view of a stored comment.
    pub fn of(s: &StoredDanmaku) -> View {
        View {
            id: s.id,
            video: s.d.video.clone(),
            time: s.d.time_ms as f64 / 1000.0,
            text: s.d.text.clone(),
            mode: s.d.mode,
            color: format_color(s.d.color),
            size: s.d.size,
            audience: s.d.audience,
            user: ViewUser {
                name: s.d.name.clone(),
            },
            created_at: s.d.created_at,
            likes: s.likes,
            liked: None,
            slow_mode_s: None,
            state: None,
        }
    }

    /// The view with its state marked when it is not visible (moderators, admins).
    pub fn marked(s: &StoredDanmaku) -> View {
        let mut v = View::of(s);
        v.state = (s.d.state != Visibility::Visible).then_some(s.d.state);
        v
    }

    /// The view its author gets: marked pending when held; a shadowed comment looks
    /// like any other.
    pub fn for_author(s: &StoredDanmaku) -> View {
        let mut v = View::of(s);
        v.state = (s.d.state == Visibility::Held).then_some(Visibility::Held);
        v
    }
}

/// The result of an accepted post: the stored comment, and the event to publish once the
/// caller has acknowledged it.
#[derive(Debug)]
pub struct Accepted {
    pub stored: StoredDanmaku,
    pub view: View,
    pub event: Announcement,
}

/// Acknowledges a post with its stored view, the moment it is durable.
pub type Ack = Box<dyn FnOnce(&View) + Send>;

/// Posting, history and moderation, shared by every transport.
pub struct Service {
    policy: Policy,
    /// Last post time (unix ms) per user, for cooldowns.
    cooldowns: Cache<Arc<str>, u64>,
    /// Last post time (unix ms) per (video, user) in videos in slow mode, with the
    /// interval then in force (the entry expires after it).
    slowed: Cache<(Arc<str>, Arc<str>), SlowEntry>,
    /// Mutes and room moderators. Danmaku asks moderation (never the other way round):
    /// whether a poster is muted where they post, and whether a deleter moderates the
    /// comment's video; moderation knows nothing of posting.
    moderation: Arc<crate::moderation::Service>,
    /// Default history pages per (video, members view), invalidated on insert and delete.
    history_cache: Cache<(String, bool), Arc<Vec<View>>>,
    feed: FreeFeed,
    /// Like counts waiting to go out, and posters' received likes (the feed's weight).
    likes: likes::Likes,
    /// Cached comment density per video.
    heatmaps: heatmap::Heatmaps,
    /// Viewer reports: the threshold and each user's allowance.
    reports: reports::Reports,
    /// Spam-wave folding: open folds per room and the counts waiting to go out.
    folds: fold::Folds,
    /// Told of every stored change after it is acknowledged (see `Announcement`).
    webhooks: Arc<crate::webhooks::Service>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Set when this node recorded a change for catch-up, so it catches up at once.
    catch_up_due: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

/// Whether a reader of `role` may read a visible comment for `audience` in a video of
/// `tier` (the rule likes and reports share with history's store filter).
pub(crate) fn audience_reads(tier: Tier, audience: Audience, role: Role) -> bool {
    tier.admits(role) && (audience != Audience::Members || role.is_member_or_admin())
}

/// The channel of a video's room.
pub fn room(video: &str) -> Arc<str> {
    Arc::from(format!("video:{video}"))
}

/// What the service is configured with (from `[policy.*]`, `[danmaku]` and the
/// reporting part of `[moderation]`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    /// Comments per second per room reaching guests and free users in a flood.
    pub free_feed_rate: u32,
    pub reporting: reports::ReportSettings,
    /// Spam-wave folding's window (0: off), in milliseconds.
    pub fold_window_ms: u64,
    /// Whether members' comments fold.
    pub fold_members: bool,
}

/// The services `danmaku` asks or tells.
pub struct Peers {
    pub store: Arc<dyn Store>,
    pub moderation: Arc<crate::moderation::Service>,
    pub webhooks: Arc<crate::webhooks::Service>,
    pub metrics: Arc<Metrics>,
}

impl Service {
    /// Builds the service; mutes are checked through `moderation`.
    pub async fn new(settings: Settings, peers: Peers) -> Result<Service, String> {
        let Settings {
            policy,
            free_feed_rate,
            reporting,
            fold_window_ms,
            fold_members,
        } = settings;
        let Peers {
            store,
            moderation,
            webhooks,
            metrics,
        } = peers;
        let longest = [&policy.free, &policy.member, &policy.admin]
            .iter()
            .map(|p| p.cooldown_ms)
            .max()
            .unwrap_or(0)
            .max(1);
        let svc = Service {
            policy,
            cooldowns: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(std::time::Duration::from_millis(longest))
                .build(),
            slowed: Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(SlowExpiry)
                .build(),
            moderation,
            history_cache: Cache::builder()
                .max_capacity(1024)
                .time_to_live(std::time::Duration::from_secs(300))
                .build(),
            feed: FreeFeed::new(free_feed_rate),
            likes: likes::Likes::default(),
            heatmaps: heatmap::Heatmaps::new(),
            reports: reports::Reports::new(reporting),
            folds: fold::Folds::new(fold_window_ms, fold_members),
            webhooks,
            store,
            metrics,
            catch_up_due: std::sync::atomic::AtomicBool::new(true),
        };
        Ok(svc)
    }

    /// The tier of a video's room, or 404 when unknown videos are closed.
    pub fn video_tier(&self, dir: &Directory, video: &str) -> Result<Tier, Refusal> {
        check_video_id(video)?;
        dir.video_tier(video).ok_or_else(|| {
            Refusal::not_found(
                "unknown_video",
                format!("video {video} is not in the catalog"),
            )
        })
    }

    /// Refuses a role that may not read a video of `tier`.
    pub fn check_read(tier: Tier, role: Role) -> Result<(), Refusal> {
        if tier.admits(role) {
            Ok(())
        } else {
            Err(Refusal::forbidden(
                "member_only",
                "this video is for members",
            ))
        }
    }

    /// Deletes a comment. Who may:
    ///
    /// - its author within [`RECALL_WINDOW_MS`]: a recall, whatever else they are; not a
    ///   moderation action, so not audited;
    /// - otherwise an admin, or a moderator of the comment's video (stored grant or `mod`
    ///   claim), at any time; tombstoned with its audit row in one store write;
    /// - the author after the window gets 403 `recall_expired`; anyone else 403
    ///   `not_moderator`. Every check runs before the store is written.
    ///
    /// `reason` (at most 200 characters) goes to the audit log. Returns the event
    /// announcing the deletion, for the caller to publish.
    pub async fn delete(
        &self,
        dir: &Directory,
        who: &Identity,
        id: i64,
        reason: Option<&str>,
    ) -> Result<Announcement, Refusal> {
        let reason = crate::moderation::check_reason(reason)?;
        let unavailable = |e: crate::store::StoreError| {
            tracing::error!(error = %e, "delete failed");
            Refusal::unavailable("store_unavailable", "the deletion was not stored; retry")
        };
        let not_found = || Refusal::not_found("unknown_danmaku", format!("no comment {id}"));
        let stored = self
            .store
            .get_danmaku(id)
            .await
            .map_err(unavailable)?
            .filter(|s| s.deleted_at.is_none())
            .ok_or_else(not_found)?;
        let now = now_millis();
        let is_author = !who.is_guest() && *who.sub == *stored.d.sub;
        let in_window = now.saturating_sub(stored.d.created_at) <= RECALL_WINDOW_MS;
        let done = if is_author && in_window {
            self.store.tombstone_danmaku(id, now).await
        } else {
            let Some(authority) = self.moderation.authority(who, &stored.d.video) else {
                return Err(if is_author {
                    Refusal::forbidden(
                        "recall_expired",
                        "authors may recall a comment within 2 minutes",
                    )
                } else {
                    crate::moderation::not_moderator(Some(&stored.d.video))
                });
            };
            let entry = crate::moderation::audit::comment_deleted(
                who,
                authority,
                &stored,
                reason.clone(),
                now,
            );
            self.store.tombstone_audited(id, now, entry).await
        };
        if !done.map_err(unavailable)? {
            return Err(not_found());
        }
        let tier = dir.video_tier(&stored.d.video).unwrap_or(Tier::Free);
        tracing::info!(id, video = %stored.d.video, by = %who.sub, role = %who.role, "danmaku deleted");
        let hook = Some((
            "danmaku.deleted",
            serde_json::json!({"id": id, "video": stored.d.video, "by": who.sub.as_ref(),
                "reason": reason, "state": stored.d.state}),
        ));
        if stored.d.state != Visibility::Visible {
            // Nobody of the audience saw it but its author: the deletion goes to them
            // (with a catch-up, as any deletion), and to those who saw it marked.
            return Ok(Announcement {
                event: Some(deletion_event(&stored, tier)),
                change: Deferred::Deleted,
                id,
                marked: marked_events(
                    &stored,
                    tier,
                    self.moderation.stored_moderators(&stored.d.video),
                    "danmaku_deleted",
                    deletion_data(&stored),
                    false,
                ),
                webhook: hook,
            });
        }
        self.invalidate(&stored.d.video).await;
        self.heatmaps
            .record(&stored.d.video, stored.d.time_ms, stored.d.audience, -1)
            .await;
        Ok(Announcement {
            event: Some(deletion_event(&stored, tier)),
            change: Deferred::Deleted,
            id,
            marked: Vec::new(),
            webhook: hook,
        })
    }

    /// Drops the cached pages of a video after a bulk change (imports).
    pub async fn forget_cached(&self, video: &str) {
        self.invalidate(video).await;
        self.heatmaps.forget(video).await;
    }

    /// Drops the cached default pages of a video.
    async fn invalidate(&self, video: &str) {
        for members in [false, true] {
            self.history_cache
                .invalidate(&(video.to_string(), members))
                .await;
        }
    }

    /// The policy in force (for docs and the page).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}
