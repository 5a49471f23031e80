//! Likes and density on PostgreSQL: likes go through the writer (so a like is committed
//! before it is answered, in order with the comment it likes); density is read from the
//! table the migration's trigger keeps.

use async_trait::async_trait;
use sqlx::Row;

use super::{
    PgStore, shape, unavailable,
    writer::{Done, Write},
};
use crate::store::{
    StoreError,
    engagement::{DensityRow, EngagementStore, audience_of},
};

#[async_trait]
impl EngagementStore for PgStore {
    async fn set_like(
        &self,
        id: i64,
        sub: &str,
        liked: bool,
        at: u64,
    ) -> Result<Option<u32>, StoreError> {
        match self
            .write(Write::SetLike(id, sub.to_string(), liked, at))
            .await?
        {
            Done::Count(n) => Ok(Some(n.min(u32::MAX as usize) as u32)),
            Done::Unit => Ok(None),
            _ => Err(shape()),
        }
    }

    async fn liked_by(&self, sub: &str, video: &str) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT l.danmaku_id FROM danmaku_likes l JOIN danmaku d ON d.id = l.danmaku_id
             WHERE l.sub = $1 AND d.video = $2",
        )
        .bind(sub)
        .bind(video)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    async fn density(&self, video: &str) -> Result<Vec<DensityRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT second, audience, n FROM danmaku_density WHERE video = $1 AND n > 0",
        )
        .bind(video)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
                Ok(DensityRow {
                    second: r.try_get::<i32, _>(0).map_err(corrupt)?.max(0) as u32,
                    audience: audience_of(r.try_get::<&str, _>(1).map_err(corrupt)?),
                    count: r.try_get::<i32, _>(2).map_err(corrupt)?.max(0) as u32,
                })
            })
            .collect()
    }
}
