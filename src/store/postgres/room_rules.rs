//! Slow modes, flood rules and offence counts on PostgreSQL: writes through the writer
//! (with their audit row in the same savepoint), reads straight from the pool.

use async_trait::async_trait;

use super::{PgStore, moderation::col, unavailable, writer::Write};
use crate::store::{
    StoreError,
    moderation::{Action, NewAudit},
    room_rules::{
        FloodRule, RoomRulesStore, SlowMode, StoredFloodRule, parse_escalation, parse_roles,
    },
};

#[async_trait]
impl RoomRulesStore for PgStore {
    async fn put_slow_mode(&self, s: SlowMode, audit: NewAudit) -> Result<(), StoreError> {
        self.write(Write::PutSlowMode(s, audit)).await.map(|_| ())
    }

    async fn clear_slow_mode(
        &self,
        video: &str,
        now: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write_flag(Write::ClearSlowMode(video.to_string(), now, audit))
            .await
    }

    async fn list_slow_modes(&self, now: u64) -> Result<Vec<SlowMode>, StoreError> {
        let rows = sqlx::query(
            "SELECT video, seconds, roles, until_ms, by_sub, set_at FROM slow_modes
             WHERE until_ms IS NULL OR until_ms > $1 ORDER BY video",
        )
        .bind(now.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let roles: String = col(r, 2)?;
                Ok(SlowMode {
                    video: col(r, 0)?,
                    seconds: col::<i32>(r, 1)? as u32,
                    roles: parse_roles(&roles).map_err(StoreError::Corrupt)?,
                    until: col::<Option<i64>>(r, 3)?.map(|u| u as u64),
                    by: col(r, 4)?,
                    set_at: col::<i64>(r, 5)? as u64,
                })
            })
            .collect()
    }

    async fn put_flood_rule(&self, r: StoredFloodRule, audit: NewAudit) -> Result<(), StoreError> {
        self.write(Write::PutFloodRule(r, audit)).await.map(|_| ())
    }

    async fn delete_flood_rule(&self, video: &str, audit: NewAudit) -> Result<bool, StoreError> {
        self.write_flag(Write::DeleteFloodRule(video.to_string(), audit))
            .await
    }

    async fn list_flood_rules(&self) -> Result<Vec<StoredFloodRule>, StoreError> {
        let rows = sqlx::query(
            "SELECT video, max_comments, window_s, mute_s, escalation, by_sub, set_at
             FROM flood_rules ORDER BY video",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let escalation: String = col(r, 4)?;
                Ok(StoredFloodRule {
                    video: col(r, 0)?,
                    rule: FloodRule {
                        max_comments: col::<i32>(r, 1)? as u32,
                        window_s: col::<i32>(r, 2)? as u32,
                        mute_s: col::<i32>(r, 3)? as u32,
                        escalation: parse_escalation(&escalation).map_err(StoreError::Corrupt)?,
                    },
                    by: col(r, 5)?,
                    set_at: col::<i64>(r, 6)? as u64,
                })
            })
            .collect()
    }

    async fn count_audit(
        &self,
        video: &str,
        target: &str,
        action: Action,
        since: u64,
    ) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM moderation_audit
             WHERE video = $1 AND target = $2 AND action = $3 AND at >= $4",
        )
        .bind(video)
        .bind(target)
        .bind(action.as_str())
        .bind(since.min(i64::MAX as u64) as i64)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(n.max(0) as u64)
    }
}
