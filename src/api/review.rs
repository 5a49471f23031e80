//! Reports and review: viewer reports (`/api/danmaku/{id}/report`), the reports queue
//! (`/api/moderation/reports`), the review queue (`/api/moderation/queue`) and reviews
//! (`/api/danmaku/{id}/approve|reject`). Thin: the rules are in [`crate::moderation`]
//! (`review`) and [`crate::danmaku`] (`reports`, and the announcing of a review).
//!
//! Refusals: 401 without credentials; 403 `not_moderator` outside the caller's videos
//! (and for the queues of every video unless an admin), `forbidden` and `own_comment`
//! for reports; 404 `unknown_danmaku`; 409 `not_held`; 422 `invalid_reason`,
//! `invalid_limit`; 429 `report_rate`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::{ApiTags, auth::Authed, error::ApiError, videos::poster};
use crate::{danmaku::View, moderation::Verdict, state::State};

/// Report, queue and review endpoints.
pub struct ReviewApi;

/// Body of `POST /api/danmaku/{id}/report`.
#[derive(Debug, Object, Default)]
pub struct ReportBody {
    /// Why (at most 200 characters), shown to moderators.
    #[oai(nullable)]
    pub reason: Option<String>,
}

/// A reported comment in the reports queue.
#[derive(Debug, Object)]
pub struct ReportedItem {
    /// The comment as moderators see it (`state: held` once hidden by reports).
    pub danmaku: View,
    pub author: String,
    /// Distinct reporters since it was last approved.
    pub reports: u32,
    /// The latest reasons given, newest first (at most 5).
    pub reasons: Vec<String>,
}

/// A held comment in the review queue.
#[derive(Debug, Object)]
pub struct QueueItem {
    /// The comment as moderators see it (`state: held`).
    pub danmaku: View,
    /// Its author's user id, to mute or shadow-ban them.
    pub author: String,
}

/// A page of the review queue, oldest first.
#[derive(Debug, Object)]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    /// Pass as `after_id` for the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_after_id: Option<i64>,
}

/// Reply of a review.
#[derive(Debug, Object)]
pub struct Reviewed {
    pub id: i64,
    /// `visible` (approved, now published) or `rejected` (gone for everyone).
    pub state: String,
}

#[OpenApi(tag = "ApiTags::Moderation")]
impl ReviewApi {
    /// Report a comment (free users and members, on comments they can see and did not
    /// write): once per user per comment (again: `new: false`, nothing counted), at most
    /// `moderation.report_rate_per_min` a minute (429 `report_rate`). When
    /// `moderation.report_threshold` distinct users reported it, it is hidden pending
    /// review: pages remove it live, as with a delete, and it joins the review queue.
    #[oai(path = "/danmaku/:id/report", method = "post")]
    async fn report(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        id: Path<i64>,
        body: Json<ReportBody>,
    ) -> Result<Json<crate::danmaku::reports::ReportState>, ApiError> {
        let (reply, hidden) = state
            .danmaku
            .report(
                &state.directory,
                &poster(&auth.0),
                id.0,
                body.0.reason.as_deref(),
            )
            .await?;
        if let Some(a) = hidden {
            state.danmaku.publish(state.bus.as_ref(), a).await;
        }
        Ok(Json(reply))
    }

    /// Reported comments, most reported first (then oldest): one video's (admins and its
    /// moderators) or every video's (admins, without `video`).
    #[oai(path = "/moderation/reports", method = "get")]
    async fn reports(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        /// Only this video's (required unless the caller is an admin).
        video: Query<Option<String>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<ReportedItem>>, ApiError> {
        let rows = state
            .danmaku
            .reported(
                &poster(&auth.0),
                video.0.as_deref(),
                limit.0.map(|l| l as usize),
            )
            .await?;
        Ok(Json(
            rows.into_iter()
                .map(|r| ReportedItem {
                    danmaku: View::marked(&r.d),
                    author: r.d.d.sub.clone(),
                    reports: r.reports,
                    reasons: r.reasons,
                })
                .collect(),
        ))
    }

    /// The review queue: held comments, oldest first; one video's (admins and its
    /// moderators) or every video's (admins, without `video`).
    #[oai(path = "/moderation/queue", method = "get")]
    async fn queue(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        /// Only this video's (required unless the caller is an admin).
        video: Query<Option<String>>,
        /// Only comments with a greater id (the previous page's `next_after_id`).
        after_id: Query<Option<i64>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<QueuePage>, ApiError> {
        let limit = limit.0.map(|l| l as usize);
        let rows = state
            .moderation
            .queue(&poster(&auth.0), video.0.as_deref(), after_id.0, limit)
            .await?;
        let full = rows.len() == limit.unwrap_or(crate::moderation::review::DEFAULT_LIMIT);
        let next_after_id = full.then(|| rows.last().map(|r| r.id)).flatten();
        Ok(Json(QueuePage {
            items: rows
                .iter()
                .map(|r| QueueItem {
                    danmaku: View::marked(r),
                    author: r.d.sub.clone(),
                })
                .collect(),
            next_after_id,
        }))
    }

    /// Approve a held comment: it is published live to its audience and appears in
    /// history at its video time (admins and the video's moderators). 409 `not_held`
    /// when it is not waiting for review.
    #[oai(path = "/danmaku/:id/approve", method = "post")]
    async fn approve(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        id: Path<i64>,
        /// Why (at most 200 characters), for the audit log.
        reason: Query<Option<String>>,
    ) -> Result<Json<Reviewed>, ApiError> {
        review(&state, &auth, id.0, Verdict::Approve, reason.0).await
    }

    /// Reject a held comment: gone for everyone (its author's pages drop it); the audit
    /// log keeps what it said.
    #[oai(path = "/danmaku/:id/reject", method = "post")]
    async fn reject(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        id: Path<i64>,
        /// Why (at most 200 characters), for the audit log.
        reason: Query<Option<String>>,
    ) -> Result<Json<Reviewed>, ApiError> {
        review(&state, &auth, id.0, Verdict::Reject, reason.0).await
    }
}

/// Reviews and publishes.
async fn review(
    state: &State,
    auth: &Authed,
    id: i64,
    verdict: Verdict,
    reason: Option<String>,
) -> Result<Json<Reviewed>, ApiError> {
    let announcement = state
        .danmaku
        .review(
            &state.directory,
            &poster(&auth.0),
            id,
            verdict,
            reason.as_deref(),
        )
        .await?;
    state
        .danmaku
        .publish(state.bus.as_ref(), announcement)
        .await;
    Ok(Json(Reviewed {
        id,
        state: match verdict {
            Verdict::Approve => "visible",
            Verdict::Reject => "rejected",
        }
        .into(),
    }))
}
