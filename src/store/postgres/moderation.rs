//! Moderators, mutes and the audit log on PostgreSQL: every write goes through the writer
//! (group commit; the audit row is appended in the same savepoint as its action, see
//! `writer.rs`), reads straight from the pool.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row, postgres::PgRow};

use super::{
    PgStore, shape, unavailable,
    writer::{Done, Write},
};
use crate::store::{
    StoreError,
    moderation::{
        Action, AuditEntry, AuditQuery, Grant, ModerationStore, Mute, NewAudit, Restraint,
    },
};

/// Reads a column, a decoding failure being corrupt data.
pub(super) fn col<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    r: &'r PgRow,
    i: usize,
) -> Result<T, StoreError> {
    r.try_get(i).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl ModerationStore for PgStore {
    async fn put_moderator(&self, g: Grant, audit: NewAudit) -> Result<(Grant, bool), StoreError> {
        match self.write(Write::PutModerator(g, audit)).await? {
            Done::Grant(g, created) => Ok((g, created)),
            _ => Err(shape()),
        }
    }

    async fn delete_moderator(
        &self,
        video: &str,
        sub: &str,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write_flag(Write::DeleteModerator(
            video.to_string(),
            sub.to_string(),
            audit,
        ))
        .await
    }

    async fn list_moderators(&self, video: Option<&str>) -> Result<Vec<Grant>, StoreError> {
        // Two statements rather than `$1 IS NULL OR ...`, so one video's read uses the key.
        let filter = if video.is_some() {
            "video = $1"
        } else {
            "$1::text IS NULL"
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT video, sub, granted_by, granted_at FROM moderators
             WHERE {filter} ORDER BY video, sub"
        )))
        .bind(video)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(Grant {
                    video: col(r, 0)?,
                    sub: col(r, 1)?,
                    by: col(r, 2)?,
                    at: col::<i64>(r, 3)? as u64,
                })
            })
            .collect()
    }

    async fn put_mute(&self, kind: Restraint, m: Mute, audit: NewAudit) -> Result<(), StoreError> {
        self.write(Write::PutMute(kind, m, audit)).await.map(|_| ())
    }

    async fn lift_mute(
        &self,
        kind: Restraint,
        sub: &str,
        video: Option<&str>,
        now: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write_flag(Write::LiftMute(
            kind,
            sub.to_string(),
            video.map(str::to_string),
            now,
            audit,
        ))
        .await
    }

    async fn list_mutes(&self, kind: Restraint, now: u64) -> Result<Vec<Mute>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT sub, scope, until_ms, reason, by_sub, created_at FROM {}
             WHERE until_ms > $1 ORDER BY sub, scope",
            kind.table()
        )))
        .bind(now.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let scope: String = col(r, 1)?;
                Ok(Mute {
                    sub: col(r, 0)?,
                    video: (!scope.is_empty()).then_some(scope),
                    until: col::<i64>(r, 2)? as u64,
                    reason: col(r, 3)?,
                    by: col(r, 4)?,
                    created_at: col::<i64>(r, 5)? as u64,
                })
            })
            .collect()
    }

    async fn tombstone_audited(
        &self,
        id: i64,
        at: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write_flag(Write::TombstoneAudited(id, at, audit))
            .await
    }

    async fn audit_page(&self, q: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let filter = if q.video.is_some() {
            "video = $1"
        } else {
            "$1::text IS NULL"
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, at, actor, actor_role, action, video, target, reason, detail
             FROM moderation_audit WHERE {filter} AND id < $2 ORDER BY id DESC LIMIT $3"
        )))
        .bind(&q.video)
        .bind(q.before_id.unwrap_or(i64::MAX))
        .bind(q.limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let action: String = col(r, 4)?;
                Ok(AuditEntry {
                    id: col(r, 0)?,
                    entry: NewAudit {
                        at: col::<i64>(r, 1)? as u64,
                        actor: col(r, 2)?,
                        actor_role: col(r, 3)?,
                        action: Action::parse(&action).ok_or_else(|| {
                            StoreError::Corrupt(format!("bad audit action {action:?}"))
                        })?,
                        video: col(r, 5)?,
                        target: col(r, 6)?,
                        reason: col(r, 7)?,
                        detail: col(r, 8)?,
                    },
                })
            })
            .collect()
    }
}
