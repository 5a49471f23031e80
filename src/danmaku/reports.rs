//! Viewer reports: `POST /api/danmaku/{id}/report {reason}` by free users and members, on
//! comments they can see and did not write, once per user per comment (a second report
//! is answered like the first and counts nothing), at most
//! `moderation.report_rate_per_min` a minute per user (429 `report_rate`).
//!
//! When `moderation.report_threshold` distinct users have reported a visible comment it
//! is held pending review, in the same store write as the report that tipped it (and
//! its audit row, `hidden_by_reports`, actor `system`): its audience is told
//! `danmaku_deleted` (pages remove it, as with a delete), the video's moderators and
//! admins get it marked `held`, and it waits in the review queue. An approval publishes
//! it again and starts its count afresh. Moderators list reported comments, most
//! reported first, with `GET /api/moderation/reports`.

use std::sync::Arc;

use moka::{future::Cache, ops::compute::Op};

use super::{
    Announcement, Service, View,
    announce::{deletion_event, hook_data, marked_events},
};
use crate::{
    access::Directory,
    model::{Identity, Refusal, Role, Visibility, time::now_millis},
    store::{
        danmaku::Deferred,
        moderation::{Action, NewAudit},
        review::{Reported, ReportedDanmaku},
    },
};

/// Longest report reason, in characters.
pub const MAX_REASON: usize = 200;

/// Default and largest page of the reports queue.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page of the reports queue.
pub const MAX_LIMIT: usize = 200;

/// The reporting settings, from `[moderation]`.
#[derive(Debug, Clone, Copy)]
pub struct ReportSettings {
    /// Distinct reporters that hide a comment; 0: never.
    pub threshold: u32,
    /// Reports per user per minute.
    pub per_min: u32,
}

/// How long a report counts against its author's allowance.
const RATE_WINDOW_MS: u64 = 60_000;

/// Each user's recent reports, for the per-user rate limit.
pub(super) struct Reports {
    settings: ReportSettings,
    /// (sub) → the times of their reports within the last minute, oldest first (at most
    /// `per_min` of them).
    recent: Cache<Arc<str>, Arc<[u64]>>,
}

impl Reports {
    /// Built from the settings.
    pub(super) fn new(settings: ReportSettings) -> Reports {
        Reports {
            settings,
            recent: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(std::time::Duration::from_millis(2 * RATE_WINDOW_MS))
                .build(),
        }
    }

    /// Takes one report from `sub`'s allowance, or refuses. The window slides: at most
    /// `per_min` reports in any 60 s, so no burst at the turn of a clock minute.
    async fn take(&self, sub: &Arc<str>, now: u64) -> Result<(), Refusal> {
        let limit = self.settings.per_min as usize;
        let since = now.saturating_sub(RATE_WINDOW_MS);
        let mut oldest = None;
        self.recent
            .entry(sub.clone())
            .and_compute_with(|e| {
                let kept: Vec<u64> = e
                    .map(|e| {
                        e.into_value()
                            .iter()
                            .copied()
                            .filter(|t| *t > since)
                            .collect()
                    })
                    .unwrap_or_default();
                let op = if kept.len() >= limit {
                    oldest = kept.first().copied();
                    Op::Put(kept.into())
                } else {
                    Op::Put(kept.into_iter().chain([now]).collect())
                };
                std::future::ready(op)
            })
            .await;
        if limit == 0 || oldest.is_some() {
            let wait = oldest.map_or(RATE_WINDOW_MS, |t| t + RATE_WINDOW_MS - now);
            return Err(Refusal::rate_limited(
                "report_rate",
                format!(
                    "at most {limit} reports a minute; next in {} s",
                    wait.div_ceil(1000)
                ),
                wait,
            ));
        }
        Ok(())
    }
}

/// The reply to a report.
#[derive(Debug, Clone, serde::Serialize, poem_openapi::Object)]
pub struct ReportState {
    pub id: i64,
    /// Whether this call recorded a report (false: the caller had reported it already).
    pub new: bool,
}

impl Service {
    /// Records `who`'s report of comment `id`; returns the reply and, when the report hid
    /// the comment, what to publish.
    pub async fn report(
        &self,
        dir: &Directory,
        who: &Identity,
        id: i64,
        reason: Option<&str>,
    ) -> Result<(ReportState, Option<Announcement>), Refusal> {
        match who.role {
            Role::Guest => {
                return Err(Refusal::unauthorized(
                    "login_required",
                    "sign in to report comments",
                ));
            }
            Role::Admin => {
                return Err(Refusal::forbidden(
                    "forbidden",
                    "admins delete or hold comments instead of reporting them",
                ));
            }
            Role::Free | Role::Member => {}
        }
        let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) if r.chars().count() > MAX_REASON || r.chars().any(char::is_control) => {
                return Err(Refusal::invalid(
                    "invalid_reason",
                    format!("a reason has at most {MAX_REASON} characters, no control characters"),
                ));
            }
            r => r.map(str::to_string),
        };
        let unavailable = |e: crate::store::StoreError| {
            tracing::error!(error = %e, "report failed");
            Refusal::unavailable("store_unavailable", "the report was not stored; retry")
        };
        let not_found = || Refusal::not_found("unknown_danmaku", format!("no comment {id}"));
        let stored = self
            .store
            .get_danmaku(id)
            .await
            .map_err(unavailable)?
            .filter(|s| s.deleted_at.is_none() && s.d.state == Visibility::Visible)
            .ok_or_else(not_found)?;
        let tier = dir.video_tier(&stored.d.video).ok_or_else(not_found)?;
        if !super::audience_reads(tier, stored.d.audience, who.role) {
            return Err(not_found());
        }
        if *stored.d.sub == *who.sub {
            return Err(Refusal::forbidden(
                "own_comment",
                "recall your own comment instead of reporting it",
            ));
        }
        let now = now_millis();
        self.reports.take(&who.sub, now).await?;
        let audit = NewAudit {
            at: now,
            actor: "system".into(),
            actor_role: "system".into(),
            action: Action::HiddenByReports,
            video: Some(stored.d.video.clone()),
            target: id.to_string(),
            reason: Some(format!(
                "reported by {} users",
                self.reports.settings.threshold
            )),
            detail: serde_json::json!({
                "author": stored.d.sub,
                "text": stored.d.text,
                "time": stored.d.time_ms as f64 / 1000.0,
                "threshold": self.reports.settings.threshold,
            })
            .to_string(),
        };
        let Reported { new, hidden, .. } = self
            .store
            .report_danmaku(
                id,
                &who.sub,
                reason,
                now,
                self.reports.settings.threshold,
                audit,
            )
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        let reply = ReportState { id, new };
        if !hidden {
            return Ok((reply, None));
        }
        tracing::info!(id, video = %stored.d.video, "comment hidden by reports, pending review");
        let video = stored.d.video.clone();
        self.invalidate(&video).await;
        self.heatmaps
            .record(&video, stored.d.time_ms, stored.d.audience, -1)
            .await;
        let mut held = stored;
        // The audience drops it as deleted (the event is built from the visible comment);
        // moderators get it marked held, for the queue.
        let gone = deletion_event(&held, tier);
        held.d.state = Visibility::Held;
        let marked = marked_events(
            &held,
            tier,
            self.moderation.stored_moderators(&video),
            "danmaku",
            serde_json::to_value(View::marked(&held)).unwrap_or_default(),
            false,
        );
        Ok((
            reply,
            Some(Announcement {
                event: Some(gone),
                change: Deferred::Deleted,
                id,
                marked,
                webhook: Some((
                    "danmaku.held",
                    hook_data(
                        &held,
                        serde_json::json!({"reports": self.reports.settings.threshold}),
                    ),
                )),
            }),
        ))
    }

    /// Reported comments, most reported first: one video's (its moderators), or every
    /// video's (admins).
    pub async fn reported(
        &self,
        who: &Identity,
        video: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<ReportedDanmaku>, Refusal> {
        self.moderation.require_scope(who, video)?;
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Refusal::invalid(
                "invalid_limit",
                format!("limit is 1 to {MAX_LIMIT}"),
            ));
        }
        self.store.reported_page(video, limit).await.map_err(|e| {
            tracing::error!(error = %e, "reports read failed");
            Refusal::unavailable("store_unavailable", "reports are unavailable; retry")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_report_limit_slides_so_a_clock_minute_turning_gives_no_burst() {
        let reports = Reports::new(ReportSettings {
            threshold: 3,
            per_min: 4,
        });
        let (ann, bob): (Arc<str>, Arc<str>) = ("ann".into(), "bob".into());
        // Four reports just before a clock minute turns.
        for t in [58_000, 59_000, 59_500, 59_900] {
            reports.take(&ann, t).await.unwrap();
        }
        // After the turn the four still count: refused, told when the oldest expires.
        let refused = reports.take(&ann, 61_000).await.unwrap_err();
        assert_eq!(refused.code, "report_rate");
        assert_eq!(refused.retry_after_ms, Some(58_000 + 60_000 - 61_000));
        // Another user is not affected.
        reports.take(&bob, 61_000).await.unwrap();
        // Once the oldest is a minute old, one more is allowed, then refused again.
        reports.take(&ann, 118_001).await.unwrap();
        let refused = reports.take(&ann, 118_500).await.unwrap_err();
        assert_eq!(refused.retry_after_ms, Some(59_000 + 60_000 - 118_500));
        // A refused report took nothing: a minute after the last, all four are back.
        for t in [178_002, 178_003, 178_004, 178_005] {
            reports.take(&ann, t).await.unwrap();
        }
    }
}
