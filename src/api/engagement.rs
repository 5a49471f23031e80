//! `/api/danmaku/{id}/like` and `/api/videos/{id}/heatmap`: what viewers add to
//! comments, and the comment density the page draws over its seek bar.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::{
    ApiTags,
    auth::{Authed, MaybeAuthed},
    error::ApiError,
    videos::poster,
};
use crate::{
    danmaku::{heatmap::Peak, likes::LikeState},
    model::Role,
    state::State,
};

/// Like and heatmap endpoints.
pub struct EngagementApi;

/// A video's comment density.
#[derive(Debug, Object)]
pub struct Heatmap {
    pub video: String,
    /// The span counted, in seconds of video time.
    pub duration: f64,
    /// The width of each bucket, in seconds.
    pub bucket_seconds: f64,
    /// Comments per bucket, oldest video time first; as many as `buckets` asked for.
    pub counts: Vec<u64>,
    /// The sum of `counts`.
    pub total: u64,
    /// The highest local maxima (at most 5), highest first.
    pub peaks: Vec<Peak>,
}

#[OpenApi(tag = "ApiTags::Videos")]
impl EngagementApi {
    /// Like a comment (free users, members, admins); idempotent. A comment the caller
    /// cannot see is 404 `unknown_danmaku`, as if it did not exist. Open pages get the
    /// new count as a throttled `danmaku_likes` event.
    #[oai(path = "/danmaku/:id/like", method = "post")]
    async fn like(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        id: Path<i64>,
    ) -> Result<Json<LikeState>, ApiError> {
        let who = poster(&auth.0);
        let got = state
            .danmaku
            .like(&state.directory, &who, id.0, true)
            .await?;
        Ok(Json(got))
    }

    /// Take a like back; idempotent.
    #[oai(path = "/danmaku/:id/like", method = "delete")]
    async fn unlike(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        id: Path<i64>,
    ) -> Result<Json<LikeState>, ApiError> {
        let who = poster(&auth.0);
        let got = state
            .danmaku
            .like(&state.directory, &who, id.0, false)
            .await?;
        Ok(Json(got))
    }

    /// Comment counts per time bucket over a video, counted within the caller's audience
    /// (members-only comments count for members and admins only), with the top peaks.
    /// The resolution is one second; this node's comments are counted at once, other
    /// nodes' within 5 s.
    #[oai(path = "/videos/:id/heatmap", method = "get")]
    async fn heatmap(
        &self,
        state: Data<&Arc<State>>,
        auth: MaybeAuthed,
        id: Path<String>,
        /// Number of buckets, 1 to 1000 (default 100).
        buckets: Query<Option<u32>>,
        /// Seconds of video time to cover (default: up to the last comment).
        duration: Query<Option<f64>>,
    ) -> Result<Json<Heatmap>, ApiError> {
        let role = auth.0.as_ref().map(|c| c.role()).unwrap_or(Role::Guest);
        let r = state
            .danmaku
            .heatmap(
                &state.directory,
                role,
                &id,
                buckets.0.unwrap_or(100),
                duration.0,
            )
            .await?;
        Ok(Json(Heatmap {
            video: id.0,
            duration: r.duration,
            bucket_seconds: r.bucket_seconds,
            counts: r.counts,
            total: r.total,
            peaks: r.peaks,
        }))
    }
}
