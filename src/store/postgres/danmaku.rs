//! Comment and catalog reads (writes go through the writer), and the
//! [`DanmakuStore`] glue.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row, postgres::PgRow};

use super::{
    PgStore, shape, unavailable,
    writer::{Done, Write},
};
use crate::{
    model::{Audience, Mode, Size, Tier, Visibility},
    store::{
        StoreError,
        danmaku::{DanmakuStore, Deferred, HistoryQuery, NewDanmaku, StoredDanmaku, Video},
    },
};

/// The comment columns read back, in [`danmaku_row`] order.
pub(super) const COLUMNS: &str = "id, video, time_ms, text, mode, color, size, audience, sub, name, created_at, deleted_at, likes, state";

/// Decodes a row selected with [`COLUMNS`].
pub(super) fn danmaku_row(r: &PgRow) -> Result<StoredDanmaku, StoreError> {
    danmaku_row_at(r, 0)
}

/// Decodes the [`COLUMNS`] of a row that starts them at column `o`.
fn danmaku_row_at(r: &PgRow, o: usize) -> Result<StoredDanmaku, StoreError> {
    let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let mode: String = r.try_get(o + 4).map_err(corrupt)?;
    let size: String = r.try_get(o + 6).map_err(corrupt)?;
    let audience: String = r.try_get(o + 7).map_err(corrupt)?;
    let state: String = r.try_get(o + 13).map_err(corrupt)?;
    Ok(StoredDanmaku {
        id: r.try_get(o).map_err(corrupt)?,
        d: NewDanmaku {
            video: r.try_get(o + 1).map_err(corrupt)?,
            time_ms: r.try_get::<i64, _>(o + 2).map_err(corrupt)? as u64,
            text: r.try_get(o + 3).map_err(corrupt)?,
            mode: Mode::parse(&mode)
                .ok_or_else(|| StoreError::Corrupt(format!("bad mode {mode:?}")))?,
            color: r.try_get::<i64, _>(o + 5).map_err(corrupt)? as u32,
            size: Size::parse(&size)
                .ok_or_else(|| StoreError::Corrupt(format!("bad size {size:?}")))?,
            audience: match audience.as_str() {
                "members" => Audience::Members,
                "free" => Audience::Free,
                _ => Audience::Everyone,
            },
            sub: r.try_get(o + 8).map_err(corrupt)?,
            name: r.try_get(o + 9).map_err(corrupt)?,
            created_at: r.try_get::<i64, _>(o + 10).map_err(corrupt)? as u64,
            state: Visibility::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("bad state {state:?}")))?,
        },
        deleted_at: r
            .try_get::<Option<i64>, _>(o + 11)
            .map_err(corrupt)?
            .map(|v| v as u64),
        likes: r.try_get::<i32, _>(o + 12).map_err(corrupt)?.max(0) as u32,
    })
}

/// Reads straight from the pool; writes through the writer, so ids follow commit order.
#[async_trait]
impl DanmakuStore for PgStore {
    async fn insert_danmaku(&self, d: NewDanmaku) -> Result<StoredDanmaku, StoreError> {
        match self.write(Write::InsertDanmaku(d.clone())).await? {
            Done::Id(id) => Ok(StoredDanmaku {
                id,
                d,
                deleted_at: None,
                likes: 0,
            }),
            _ => Err(shape()),
        }
    }

    async fn insert_many(&self, ds: Vec<NewDanmaku>) -> Result<usize, StoreError> {
        match self.write(Write::InsertMany(ds)).await? {
            Done::Count(n) => Ok(n),
            _ => Err(shape()),
        }
    }

    async fn history(&self, q: HistoryQuery) -> Result<Vec<StoredDanmaku>, StoreError> {
        let order = if q.newest { "id DESC" } else { "time_ms, id" };
        let sql = format!(
            "SELECT {COLUMNS} FROM danmaku
             WHERE video = $1 AND deleted_at IS NULL
               AND time_ms >= $2 AND time_ms < $3 AND id > $4
               AND ($5 OR audience <> 'members')
               AND (state = 'visible' OR $7 OR sub = $8)
             ORDER BY {order} LIMIT $6"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(&q.video)
            .bind(q.from_ms.unwrap_or(0).min(i64::MAX as u64) as i64)
            .bind(
                q.to_ms
                    .map(|t| t.min(i64::MAX as u64) as i64)
                    .unwrap_or(i64::MAX),
            )
            .bind(q.after_id.unwrap_or(0))
            .bind(q.members)
            .bind(q.limit.min(i64::MAX as usize) as i64)
            .bind(q.every_state)
            .bind(&q.author)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut out = rows
            .iter()
            .map(danmaku_row)
            .collect::<Result<Vec<_>, _>>()?;
        if q.newest {
            out.sort_by_key(|d| (d.d.time_ms, d.id));
        }
        Ok(out)
    }

    async fn has_hidden(&self, video: &str, sub: &str) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM danmaku WHERE video = $1 AND sub = $2
               AND state <> 'visible' AND deleted_at IS NULL)",
        )
        .bind(video)
        .bind(sub)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)
    }

    async fn get_danmaku(&self, id: i64) -> Result<Option<StoredDanmaku>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM danmaku WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(danmaku_row).transpose()
    }

    async fn tombstone_danmaku(&self, id: i64, at: u64) -> Result<bool, StoreError> {
        self.write_flag(Write::Tombstone(id, at)).await
    }

    async fn put_video(&self, v: Video) -> Result<bool, StoreError> {
        self.write_flag(Write::PutVideo(v)).await
    }

    async fn list_videos(&self) -> Result<Vec<Video>, StoreError> {
        let rows = sqlx::query("SELECT id, title, tier, updated_at FROM videos ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(unavailable)?;
                let tier: String = r.try_get(2).map_err(unavailable)?;
                let tier = Tier::parse(&tier)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad tier {tier:?} for {id}")))?;
                Ok(Video {
                    title: r.try_get(1).map_err(unavailable)?,
                    updated_at: r.try_get::<i64, _>(3).map_err(unavailable)? as u64,
                    id,
                    tier,
                })
            })
            .collect()
    }

    /// Straight on the pool: the record is independent of the writer's id order.
    async fn defer_publish(&self, kind: Deferred, id: i64, at: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO danmaku_outbox (id, kind, deferred_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(at.min(i64::MAX as u64) as i64)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// One statement: the records are deleted and returned under `SKIP LOCKED`, so nodes
    /// taking at once split them and none is published twice.
    async fn take_deferred(
        &self,
        limit: usize,
    ) -> Result<Vec<(Deferred, StoredDanmaku)>, StoreError> {
        let columns = COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "WITH taken AS (
                 DELETE FROM danmaku_outbox WHERE (id, kind) IN (
                     SELECT id, kind FROM danmaku_outbox ORDER BY id, kind DESC
                     LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, kind)
             SELECT t.kind, {columns} FROM taken t JOIN danmaku d ON d.id = t.id
             ORDER BY t.id, t.kind DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r
                .try_get(0)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let kind = Deferred::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("bad outbox kind {kind:?}")))?;
            out.push((kind, danmaku_row_at(r, 1)?));
        }
        Ok(out)
    }
}
