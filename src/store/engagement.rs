//! What viewers add to comments, and what is counted over them: likes (one per user per
//! comment, with the count kept on the comment's row) and the per-second density the
//! heatmap reads. The trait and its SQLite engine.
//!
//! The density table is kept by triggers on `danmaku` (see the migrations of both
//! engines): an insert adds one to its (video, second, audience) row and a tombstone
//! takes one away, in the same transaction, so the counts can never drift from the
//! comments they count.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{
    StoreError,
    sqlite::{SqliteStore, unavailable},
};
use crate::model::Audience;

/// One row of a video's density: comments of `audience` at `second` of video time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DensityRow {
    pub second: u32,
    pub audience: Audience,
    pub count: u32,
}

/// Reads a stored audience spelling (the same mapping as comment rows).
pub(crate) fn audience_of(s: &str) -> Audience {
    match s {
        "members" => Audience::Members,
        "free" => Audience::Free,
        _ => Audience::Everyone,
    }
}

/// Likes and density.
#[async_trait]
pub trait EngagementStore: Send + Sync {
    /// Sets whether `sub` likes comment `id` (idempotent) and returns the comment's like
    /// count after the change, or `None` when no such comment is stored.
    async fn set_like(
        &self,
        id: i64,
        sub: &str,
        liked: bool,
        at: u64,
    ) -> Result<Option<u32>, StoreError>;
    /// The ids of the comments of `video` that `sub` likes.
    async fn liked_by(&self, sub: &str, video: &str) -> Result<Vec<i64>, StoreError>;
    /// The non-zero density rows of `video`.
    async fn density(&self, video: &str) -> Result<Vec<DensityRow>, StoreError>;
}

#[async_trait]
impl EngagementStore for SqliteStore {
    async fn set_like(
        &self,
        id: i64,
        sub: &str,
        liked: bool,
        at: u64,
    ) -> Result<Option<u32>, StoreError> {
        let sub = sub.to_string();
        self.write(move |c| {
            let exists = c
                .query_row("SELECT 1 FROM danmaku WHERE id = ?1", [id], |_| Ok(()))
                .optional()
                .map_err(unavailable)?
                .is_some();
            if !exists {
                return Ok(None);
            }
            let changed = if liked {
                c.prepare_cached(
                    "INSERT OR IGNORE INTO danmaku_likes (danmaku_id, sub, created_at)
                     VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut st| st.execute(params![id, sub, at as i64]))
            } else {
                c.prepare_cached("DELETE FROM danmaku_likes WHERE danmaku_id = ?1 AND sub = ?2")
                    .and_then(|mut st| st.execute(params![id, sub]))
            }
            .map_err(unavailable)?;
            if changed > 0 {
                let delta = if liked { 1 } else { -1 };
                c.prepare_cached("UPDATE danmaku SET likes = MAX(likes + ?2, 0) WHERE id = ?1")
                    .and_then(|mut st| st.execute(params![id, delta]))
                    .map_err(unavailable)?;
            }
            c.query_row("SELECT likes FROM danmaku WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| Some(n.clamp(0, i64::from(u32::MAX)) as u32))
            .map_err(unavailable)
        })
        .await
    }

    async fn liked_by(&self, sub: &str, video: &str) -> Result<Vec<i64>, StoreError> {
        let (sub, video) = (sub.to_string(), video.to_string());
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT l.danmaku_id FROM danmaku_likes l JOIN danmaku d ON d.id = l.danmaku_id
                     WHERE l.sub = ?1 AND d.video = ?2",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![sub, video], |r| r.get::<_, i64>(0))
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn density(&self, video: &str) -> Result<Vec<DensityRow>, StoreError> {
        let video = video.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT second, audience, n FROM danmaku_density WHERE video = ?1 AND n > 0",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map([video], |r| {
                    Ok(DensityRow {
                        second: r.get::<_, i64>(0)?.clamp(0, i64::from(u32::MAX)) as u32,
                        audience: audience_of(&r.get::<_, String>(1)?),
                        count: r.get::<_, i64>(2)?.clamp(0, i64::from(u32::MAX)) as u32,
                    })
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }
}
