//! Posting: the checks of a new comment in the mandated order, its visibility, storing
//! it durably, and what to publish once the caller acknowledged it (see the module
//! docs above and docs/ARCHITECTURE.md, "The path of a comment"). Cooldowns and slow
//! mode's per-room waits live here too.

use std::sync::Arc;

use moka::ops::compute::{CompResult, Op};

use super::{
    Accepted, Ack, Announcement, Service, View, announce,
    announce::{comment_event, marked_events},
    rules::{self, Draft},
};
use crate::{
    access::Directory,
    model::{Identity, Refusal, Role, Visibility, role_bit, time::now_millis},
    store::{
        danmaku::{Deferred, NewDanmaku},
        review::BlockAction,
    },
};

/// A poster's last comment in a video in slow mode, and the interval then in force.
#[derive(Debug, Clone, Copy)]
pub(super) struct SlowEntry {
    /// Unix milliseconds.
    at: u64,
    /// Milliseconds.
    interval: u64,
}

/// Forgets a [`SlowEntry`] once its interval has passed: it can refuse nothing more.
pub(super) struct SlowExpiry;

impl moka::Expiry<(Arc<str>, Arc<str>), SlowEntry> for SlowExpiry {
    fn expire_after_create(
        &self,
        _key: &(Arc<str>, Arc<str>),
        value: &SlowEntry,
        _created_at: std::time::Instant,
    ) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_millis(value.interval))
    }

    fn expire_after_update(
        &self,
        _key: &(Arc<str>, Arc<str>),
        value: &SlowEntry,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_millis(value.interval))
    }
}

/// 429 `cooldown`: the wait, and whether slow mode imposes it.
fn slowed_down(wait_ms: u64, slow_s: Option<u32>) -> Refusal {
    let secs = wait_ms as f64 / 1000.0;
    Refusal::rate_limited(
        "cooldown",
        match slow_s {
            Some(s) => format!("slow mode ({s} s in this video): next comment in {secs:.1} s"),
            None => format!("slow down: next comment in {secs:.1} s"),
        },
        wait_ms,
    )
}

impl Service {
    /// Validates and stores a post. Publishing is left to the caller, after it has
    /// acknowledged: see [`Service::publish`].
    pub async fn post(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
        draft: &Draft,
    ) -> Result<Accepted, Refusal> {
        self.post_then(dir, who, video, draft, None).await
    }

    /// [`Service::post`], with `ack` called with the stored comment's view the moment it
    /// is durable, on the thread that committed it (the WebSocket op acknowledges from
    /// there, ahead of everything still queued on the runtime).
    pub async fn post_then(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
        draft: &Draft,
        ack: Option<Ack>,
    ) -> Result<Accepted, Refusal> {
        let valid = rules::validate(draft, who.role, &self.policy)?;
        let screened = self.moderation.screen(video, &valid.text);
        if screened == Some(BlockAction::Refuse) {
            return Err(Refusal::invalid(
                "blocked",
                "the comment contains a blocked word",
            ));
        }
        let tier = self.video_tier(dir, video)?;
        Self::check_read(tier, who.role)?;
        let now = now_millis();
        self.moderation.check_post(&who.sub, video, now)?;
        let slow_s = self.moderation.slow_mode_for(video, who.role, now);
        self.take_cooldown(who, video, slow_s, now).await?;
        self.moderation.count_post(who, video, now).await?;
        let hooked = self
            .moderation
            .consult_hook(
                &crate::moderation::hook::HookRequest {
                    kind: "danmaku.screen",
                    video,
                    text: &valid.text,
                    time: valid.time_ms as f64 / 1000.0,
                    mode: valid.mode.as_str(),
                    audience: valid.audience.as_str(),
                    user: crate::moderation::hook::HookUser {
                        sub: &who.sub,
                        name: &who.name,
                        role: who.role.as_str(),
                    },
                    sent_at: now,
                },
                who.role,
            )
            .await;
        if hooked == Some(BlockAction::Refuse) {
            return Err(Refusal::invalid(
                "blocked",
                "the comment was refused by moderation",
            ));
        }
        let screened = screened.max(hooked);
        let state = self.visibility(who, video, screened, now);
        let new = NewDanmaku {
            video: video.to_string(),
            time_ms: valid.time_ms,
            text: valid.text,
            mode: valid.mode,
            color: valid.color,
            size: valid.size,
            audience: valid.audience,
            sub: who.sub.to_string(),
            name: who.name.to_string(),
            created_at: now,
            state,
        };
        let inserted = match ack {
            Some(ack) => {
                self.store
                    .insert_danmaku_then(
                        new,
                        Box::new(move |s| {
                            let mut view = View::for_author(s);
                            view.slow_mode_s = slow_s;
                            ack(&view)
                        }),
                    )
                    .await
            }
            None => self.store.insert_danmaku(new).await,
        };
        let stored = match inserted {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(error = %e, "danmaku insert failed");
                self.moderation.uncount_post(who, video, now).await;
                return Err(Refusal::unavailable(
                    "store_unavailable",
                    "the comment was not stored; retry",
                ));
            }
        };
        self.metrics
            .danmaku_posted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut view = View::for_author(&stored);
        view.slow_mode_s = slow_s;
        if state != Visibility::Visible {
            tracing::info!(id = stored.id, video, sub = %who.sub, state = state.as_str(), "danmaku stored hidden");
            let marked = marked_events(
                &stored,
                tier,
                self.moderation.stored_moderators(video),
                "danmaku",
                serde_json::to_value(View::marked(&stored)).unwrap_or_default(),
                false,
            );
            let hook = match state {
                Visibility::Held => "danmaku.held",
                _ => "danmaku.posted",
            };
            return Ok(Accepted {
                event: Announcement {
                    event: None,
                    change: Deferred::Posted,
                    id: stored.id,
                    marked,
                    webhook: Some((hook, announce::hook_data(&stored, serde_json::json!({})))),
                },
                stored,
                view,
            });
        }
        self.invalidate(video).await;
        self.heatmaps
            .record(video, stored.d.time_ms, stored.d.audience, 1)
            .await;
        if let Some(first) = self
            .folds
            .fold(
                video,
                &stored.d.text,
                stored.d.audience,
                tier,
                who.role,
                stored.id,
            )
            .await
        {
            tracing::debug!(id = stored.id, first, video, "danmaku folded");
            return Ok(Accepted {
                event: Announcement {
                    event: None,
                    change: Deferred::Posted,
                    id: stored.id,
                    marked: Vec::new(),
                    webhook: Some((
                        "danmaku.posted",
                        announce::hook_data(&stored, serde_json::json!({"folded_into": first})),
                    )),
                },
                stored,
                view,
            });
        }
        let mut event = comment_event(&stored, tier);
        let free_groups = role_bit(Role::Guest) | role_bit(Role::Free);
        if event.target.mask & free_groups != 0
            && !self
                .feed
                .admit(video, now, self.likes.weight(video, who).await)
        {
            event.target.mask &= !free_groups;
            self.metrics
                .sampled_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::debug!(id = stored.id, video, sub = %who.sub, "danmaku stored");
        Ok(Accepted {
            event: Announcement {
                webhook: Some((
                    "danmaku.posted",
                    announce::hook_data(&stored, serde_json::json!({})),
                )),
                event: Some(event),
                change: Deferred::Posted,
                id: stored.id,
                marked: Vec::new(),
            },
            stored,
            view,
        })
    }

    /// Who may see a comment about to be stored (see `moderation`'s module docs for the
    /// order): shadowed by a ban or a rule, else held by a rule or the video's hold rule
    /// (which never holds the video's moderators), else visible.
    fn visibility(
        &self,
        who: &Identity,
        video: &str,
        screened: Option<BlockAction>,
        now: u64,
    ) -> Visibility {
        if screened == Some(BlockAction::Shadow)
            || self.moderation.shadow_banned(&who.sub, video, now)
        {
            Visibility::Shadow
        } else if screened == Some(BlockAction::Hold)
            || (self.moderation.holds(video, who.role)
                && self.moderation.authority(who, video).is_none())
        {
            Visibility::Held
        } else {
            Visibility::Visible
        }
    }

    /// Atomically checks and records the poster's cooldown: the role's, everywhere,
    /// and in a video in slow mode for the poster's role (`slow_s`), max(role
    /// cooldown, slow-mode interval) since their last comment in that video. Nothing is
    /// recorded for a refused post: the room's wait is only read before the role's
    /// cooldown is taken, and taken after it (a concurrent post of the same user in the
    /// same room that passed the read is then refused by whichever take comes second).
    async fn take_cooldown(
        &self,
        who: &Identity,
        video: &str,
        slow_s: Option<u32>,
        now: u64,
    ) -> Result<(), Refusal> {
        let cooldown = self.policy.of(who.role).map(|p| p.cooldown_ms).unwrap_or(0);
        let room = slow_s.map(|s| {
            (
                (Arc::<str>::from(video), who.sub.clone()),
                (s as u64 * 1000).max(cooldown),
            )
        });
        if let Some((key, interval)) = &room
            && let Some(last) = self.slowed.get(key).await
        {
            let since = now.saturating_sub(last.at);
            if since < *interval {
                return Err(slowed_down(*interval - since, slow_s));
            }
        }
        if cooldown > 0 {
            let result = self
                .cooldowns
                .entry(who.sub.clone())
                .and_compute_with(|entry| {
                    let op = match entry {
                        Some(e) if now.saturating_sub(*e.value()) < cooldown => Op::Nop,
                        _ => Op::Put(now),
                    };
                    std::future::ready(op)
                })
                .await;
            if let CompResult::Unchanged(e) = result {
                let wait = cooldown - now.saturating_sub(*e.value());
                return Err(slowed_down(wait, None));
            }
        }
        let Some((key, interval)) = room else {
            return Ok(());
        };
        let result = self
            .slowed
            .entry(key)
            .and_compute_with(|entry| {
                let op = match entry {
                    Some(e) if now.saturating_sub(e.value().at) < interval => Op::Nop,
                    _ => Op::Put(SlowEntry { at: now, interval }),
                };
                std::future::ready(op)
            })
            .await;
        match result {
            CompResult::Unchanged(e) => Err(slowed_down(
                interval - now.saturating_sub(e.value().at),
                slow_s,
            )),
            _ => Ok(()),
        }
    }
}
