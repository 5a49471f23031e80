//! Block rules, hold rules and reviews on PostgreSQL: writes through the writer as one
//! [`Write::Review`] each (applied by [`apply`] in the writer's savepoint, with the audit
//! row), reads straight from the pool.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, PgConnection};

use super::{
    PgStore,
    danmaku::{COLUMNS, danmaku_row},
    moderation::col,
    unavailable,
    writer::{Done, Write, insert_audit},
};
use crate::store::{
    StoreError,
    danmaku::StoredDanmaku,
    moderation::{NewAudit, scope_of},
    review::{
        HeldQuery, HoldRule, MAX_REASONS, Reported, ReportedDanmaku, ReviewStore, RuleSet, Verdict,
        parse_rules, rules_text, video_of_scope,
    },
    room_rules::{parse_roles, roles_text},
};

/// A review-facet write, as data for the writer task.
#[derive(Debug)]
pub(super) enum ReviewWrite {
    PutBlockRules(RuleSet, NewAudit),
    /// Stored only if the scope was never set; no audit row.
    SeedBlockRules(RuleSet),
    /// Scope (`None`: global), audit.
    DeleteBlockRules(Option<String>, NewAudit),
    PutHoldRule(HoldRule, NewAudit),
    /// Video, audit.
    ClearHoldRule(String, NewAudit),
    /// Comment id, verdict, at, audit.
    Review(i64, Verdict, u64, NewAudit),
    /// Comment id, reporter, reason, at, threshold, audit (answers `Done::Report`).
    Report(i64, String, Option<String>, u64, u32, NewAudit),
}

/// Applies one review write inside the batch transaction (the writer's savepoint).
pub(super) async fn apply(c: &mut PgConnection, w: &ReviewWrite) -> Result<Done, sqlx::Error> {
    Ok(match w {
        ReviewWrite::PutBlockRules(set, audit) => {
            put_rules(c, set, false).await?;
            insert_audit(c, audit).await?;
            Done::Unit
        }
        ReviewWrite::SeedBlockRules(set) => Done::Flag(put_rules(c, set, true).await?),
        ReviewWrite::DeleteBlockRules(video, audit) => {
            let gone = sqlx::query("DELETE FROM block_rules WHERE scope = $1")
                .bind(scope_of(video.as_deref()))
                .execute(&mut *c)
                .await?
                .rows_affected()
                > 0;
            if gone {
                insert_audit(c, audit).await?;
            }
            Done::Flag(gone)
        }
        ReviewWrite::PutHoldRule(r, audit) => {
            sqlx::query(
                "INSERT INTO hold_rules (video, roles, by_sub, set_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (video) DO UPDATE SET roles = excluded.roles,
                   by_sub = excluded.by_sub, set_at = excluded.set_at",
            )
            .bind(&r.video)
            .bind(roles_text(&r.roles))
            .bind(&r.by)
            .bind(r.set_at as i64)
            .execute(&mut *c)
            .await?;
            insert_audit(c, audit).await?;
            Done::Unit
        }
        ReviewWrite::ClearHoldRule(video, audit) => {
            let gone = sqlx::query("DELETE FROM hold_rules WHERE video = $1")
                .bind(video)
                .execute(&mut *c)
                .await?
                .rows_affected()
                > 0;
            if gone {
                insert_audit(c, audit).await?;
            }
            Done::Flag(gone)
        }
        ReviewWrite::Review(id, verdict, at, audit) => {
            let q = match verdict {
                Verdict::Approve => sqlx::query(
                    "UPDATE danmaku SET state = 'visible', reports = 0
                     WHERE id = $1 AND state = 'held' AND deleted_at IS NULL",
                )
                .bind(id),
                Verdict::Reject => sqlx::query(
                    "UPDATE danmaku SET deleted_at = $2
                     WHERE id = $1 AND state = 'held' AND deleted_at IS NULL",
                )
                .bind(id)
                .bind(*at as i64),
            };
            let done = q.execute(&mut *c).await?.rows_affected() > 0;
            if done {
                insert_audit(c, audit).await?;
            }
            Done::Flag(done)
        }
        ReviewWrite::Report(id, sub, reason, at, threshold, audit) => {
            let live: Option<(i32, String)> = sqlx::query_as(
                "SELECT reports, state FROM danmaku WHERE id = $1 AND deleted_at IS NULL
                 FOR UPDATE",
            )
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
            let Some((mut reports, state)) = live else {
                return Ok(Done::Report(None));
            };
            let new = sqlx::query(
                "INSERT INTO danmaku_reports (danmaku_id, sub, reason, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(sub)
            .bind(reason)
            .bind(*at as i64)
            .execute(&mut *c)
            .await?
            .rows_affected()
                > 0;
            let mut hidden = false;
            if new {
                reports += 1;
                sqlx::query("UPDATE danmaku SET reports = $2 WHERE id = $1")
                    .bind(id)
                    .bind(reports)
                    .execute(&mut *c)
                    .await?;
                if *threshold > 0
                    && i64::from(reports) >= i64::from(*threshold)
                    && state == "visible"
                {
                    sqlx::query("UPDATE danmaku SET state = 'held' WHERE id = $1")
                        .bind(id)
                        .execute(&mut *c)
                        .await?;
                    insert_audit(c, audit).await?;
                    hidden = true;
                }
            }
            Done::Report(Some(Reported {
                reports: reports.max(0) as u32,
                new,
                hidden,
            }))
        }
    })
}

/// Upserts a rule set (or, for a seed, inserts it only if the scope is new). Returns
/// whether a row was written.
async fn put_rules(c: &mut PgConnection, set: &RuleSet, seed: bool) -> Result<bool, sqlx::Error> {
    let conflict = if seed {
        "DO NOTHING"
    } else {
        "DO UPDATE SET rules = excluded.rules, by_sub = excluded.by_sub, set_at = excluded.set_at"
    };
    Ok(sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO block_rules (scope, rules, by_sub, set_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope) {conflict}"
    )))
    .bind(scope_of(set.video.as_deref()))
    .bind(rules_text(&set.rules))
    .bind(&set.by)
    .bind(set.set_at as i64)
    .execute(&mut *c)
    .await?
    .rows_affected()
        > 0)
}

#[async_trait]
impl ReviewStore for PgStore {
    async fn put_block_rules(&self, set: RuleSet, audit: NewAudit) -> Result<(), StoreError> {
        self.write(Write::Review(ReviewWrite::PutBlockRules(set, audit)))
            .await
            .map(|_| ())
    }

    async fn seed_block_rules(&self, set: RuleSet) -> Result<bool, StoreError> {
        self.write_flag(Write::Review(ReviewWrite::SeedBlockRules(set)))
            .await
    }

    async fn delete_block_rules(
        &self,
        video: Option<&str>,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write_flag(Write::Review(ReviewWrite::DeleteBlockRules(
            video.map(str::to_string),
            audit,
        )))
        .await
    }

    async fn list_block_rules(&self) -> Result<Vec<RuleSet>, StoreError> {
        let rows =
            sqlx::query("SELECT scope, rules, by_sub, set_at FROM block_rules ORDER BY scope")
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let rules: String = col(r, 1)?;
                Ok(RuleSet {
                    video: video_of_scope(col(r, 0)?),
                    rules: parse_rules(&rules)?,
                    by: col(r, 2)?,
                    set_at: col::<i64>(r, 3)? as u64,
                })
            })
            .collect()
    }

    async fn put_hold_rule(&self, r: HoldRule, audit: NewAudit) -> Result<(), StoreError> {
        self.write(Write::Review(ReviewWrite::PutHoldRule(r, audit)))
            .await
            .map(|_| ())
    }

    async fn clear_hold_rule(&self, video: &str, audit: NewAudit) -> Result<bool, StoreError> {
        self.write_flag(Write::Review(ReviewWrite::ClearHoldRule(
            video.to_string(),
            audit,
        )))
        .await
    }

    async fn list_hold_rules(&self) -> Result<Vec<HoldRule>, StoreError> {
        let rows =
            sqlx::query("SELECT video, roles, by_sub, set_at FROM hold_rules ORDER BY video")
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let roles: String = col(r, 1)?;
                Ok(HoldRule {
                    video: col(r, 0)?,
                    roles: parse_roles(&roles).map_err(StoreError::Corrupt)?,
                    by: col(r, 2)?,
                    set_at: col::<i64>(r, 3)? as u64,
                })
            })
            .collect()
    }

    async fn held_page(&self, q: HeldQuery) -> Result<Vec<StoredDanmaku>, StoreError> {
        let filter = if q.video.is_some() {
            "video = $1"
        } else {
            "$1::text IS NULL"
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM danmaku
             WHERE {filter} AND state = 'held' AND deleted_at IS NULL AND id > $2
             ORDER BY id LIMIT $3"
        )))
        .bind(&q.video)
        .bind(q.after_id.unwrap_or(0))
        .bind(q.limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(danmaku_row).collect()
    }

    async fn report_danmaku(
        &self,
        id: i64,
        sub: &str,
        reason: Option<String>,
        at: u64,
        threshold: u32,
        audit: NewAudit,
    ) -> Result<Option<Reported>, StoreError> {
        match self
            .write(Write::Review(ReviewWrite::Report(
                id,
                sub.to_string(),
                reason,
                at,
                threshold,
                audit,
            )))
            .await?
        {
            Done::Report(r) => Ok(r),
            _ => Err(super::shape()),
        }
    }

    async fn reported_page(
        &self,
        video: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReportedDanmaku>, StoreError> {
        let filter = if video.is_some() {
            "video = $1"
        } else {
            "$1::text IS NULL"
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS}, reports FROM danmaku
             WHERE {filter} AND reports > 0 AND deleted_at IS NULL
             ORDER BY reports DESC, id LIMIT $2"
        )))
        .bind(video)
        .bind(limit.min(i64::MAX as usize) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let d = danmaku_row(r)?;
            let reasons: Vec<String> = sqlx::query_scalar(
                "SELECT reason FROM danmaku_reports WHERE danmaku_id = $1 AND reason IS NOT NULL
                 ORDER BY created_at DESC, sub LIMIT $2",
            )
            .bind(d.id)
            .bind(MAX_REASONS as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            out.push(ReportedDanmaku {
                reports: col::<i32>(r, 14)?.max(0) as u32,
                d,
                reasons,
            });
        }
        Ok(out)
    }

    async fn review_danmaku(
        &self,
        id: i64,
        verdict: Verdict,
        at: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write_flag(Write::Review(ReviewWrite::Review(id, verdict, at, audit)))
            .await
    }
}
