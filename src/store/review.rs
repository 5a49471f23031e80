//! What decides a comment's visibility at runtime, and the review of held comments: block
//! rule sets per scope, hold rules per video, viewer reports (one per user per comment;
//! enough of them hide a comment pending review), the queues of held and of reported
//! comments and the review itself. The trait and its SQLite engine (PostgreSQL: `store/postgres/review.rs`).
//!
//! Like every moderation write (`store::moderation`), each write here takes the
//! [`NewAudit`] row describing it and appends it in the same transaction, only when
//! something changed. A block rule set is stored whole, as JSON, one row per scope (`''`
//! for the global set, else a video id): a set replaces the previous one atomically, and
//! "a scope whose set was emptied" differs from "a scope never set" (which is what lets
//! the configured `block_words` seed the global set once, and never again after an admin
//! changed it).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{
    StoreError,
    danmaku::StoredDanmaku,
    moderation::{NewAudit, insert_audit, scope_of},
    room_rules::{parse_roles, roles_text},
    sqlite::{SqliteStore, unavailable},
};
use crate::model::Role;

/// How a block rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum PatternKind {
    /// A word or phrase, found anywhere in the folded text (case and width folded).
    Word,
    /// A regular expression (the `regex` crate: linear time) over the folded text.
    Regex,
}

/// What a matching block rule does to a comment.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    poem_openapi::Enum,
)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum BlockAction {
    /// Stored shadowed: its author sees it as usual, nobody else does.
    Shadow,
    /// Stored held for review.
    Hold,
    /// Refused (422 `blocked`); nothing is stored.
    Refuse,
}

impl BlockAction {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockAction::Shadow => "shadow",
            BlockAction::Hold => "hold",
            BlockAction::Refuse => "refuse",
        }
    }
}

/// One block rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRule {
    pub kind: PatternKind,
    pub pattern: String,
    pub action: BlockAction,
}

/// The block rules of one scope, stored whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// `None`: the global set, which applies in every video.
    pub video: Option<String>,
    pub rules: Vec<BlockRule>,
    /// Who set it (`config` for the set seeded from `block_words`).
    pub by: String,
    /// Unix milliseconds.
    pub set_at: u64,
}

/// A hold rule: in `video`, comments by posters of `roles` wait for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRule {
    pub video: String,
    /// In role order, once each (never admin).
    pub roles: Vec<Role>,
    pub by: String,
    /// Unix milliseconds.
    pub set_at: u64,
}

/// A review's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Held → visible: published.
    Approve,
    /// Held → tombstoned: gone for everyone (the audit log keeps the decision).
    Reject,
}

/// A page of the review queue: oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldQuery {
    /// Only this video's held comments.
    pub video: Option<String>,
    /// Only comments with a greater id (the previous page's last).
    pub after_id: Option<i64>,
    pub limit: usize,
}

/// What a viewer's report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    /// Distinct reporters of the comment since it was last approved.
    pub reports: u32,
    /// Whether this report was new (a user's second report of a comment is not).
    pub new: bool,
    /// Whether this report hid the comment (it reached the threshold).
    pub hidden: bool,
}

/// A reported comment in the reports queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedDanmaku {
    pub d: StoredDanmaku,
    pub reports: u32,
    /// The latest reasons given (at most [`MAX_REASONS`]), newest first.
    pub reasons: Vec<String>,
}

/// Reasons listed per reported comment.
pub const MAX_REASONS: usize = 5;

/// Storage for block rules, hold rules, reports and reviews.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Sets (replaces) the block rules of `set.video`'s scope, with its audit row.
    async fn put_block_rules(&self, set: RuleSet, audit: NewAudit) -> Result<(), StoreError>;
    /// Stores `set` only if its scope was never set (the configured seed). No audit row:
    /// nobody acted. Returns whether it was stored.
    async fn seed_block_rules(&self, set: RuleSet) -> Result<bool, StoreError>;
    /// Removes the block rules of a scope. Returns whether there were; the audit row
    /// only then.
    async fn delete_block_rules(
        &self,
        video: Option<&str>,
        audit: NewAudit,
    ) -> Result<bool, StoreError>;
    /// Every scope's set, global first, then by video.
    async fn list_block_rules(&self) -> Result<Vec<RuleSet>, StoreError>;
    /// Sets (replaces) the hold rule of `r.video`, with its audit row.
    async fn put_hold_rule(&self, r: HoldRule, audit: NewAudit) -> Result<(), StoreError>;
    /// Clears the hold rule of a video. Returns whether there was one; the audit row only
    /// then.
    async fn clear_hold_rule(&self, video: &str, audit: NewAudit) -> Result<bool, StoreError>;
    /// Every hold rule, by video.
    async fn list_hold_rules(&self) -> Result<Vec<HoldRule>, StoreError>;
    /// Held comments not deleted, oldest first.
    async fn held_page(&self, q: HeldQuery) -> Result<Vec<StoredDanmaku>, StoreError>;
    /// Records `sub`'s report of comment `id` (live, not deleted), once per user; when it
    /// brings the distinct reporters to `threshold` (0: never) and the comment is
    /// visible, holds it, appending `audit` in the same write. `None`: no such comment.
    async fn report_danmaku(
        &self,
        id: i64,
        sub: &str,
        reason: Option<String>,
        at: u64,
        threshold: u32,
        audit: NewAudit,
    ) -> Result<Option<Reported>, StoreError>;
    /// Live comments with reports, most reported first (then by id), for one video or all.
    async fn reported_page(
        &self,
        video: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReportedDanmaku>, StoreError>;
    /// Reviews comment `id` if it is held and not deleted: approve makes it visible (and
    /// starts its report count again), reject tombstones it at `at`. Returns whether it
    /// was held; the audit row only then.
    async fn review_danmaku(
        &self,
        id: i64,
        verdict: Verdict,
        at: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError>;
}

/// The stored spelling of a rule list.
pub fn rules_text(rules: &[BlockRule]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".into())
}

/// Reads a stored rule list back.
pub fn parse_rules(text: &str) -> Result<Vec<BlockRule>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("bad block rules: {e}")))
}

/// Reads a stored scope back.
pub fn video_of_scope(scope: String) -> Option<String> {
    (!scope.is_empty()).then_some(scope)
}

#[async_trait]
impl ReviewStore for SqliteStore {
    async fn put_block_rules(&self, set: RuleSet, audit: NewAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO block_rules (scope, rules, by_sub, set_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (scope) DO UPDATE SET rules = excluded.rules,
                   by_sub = excluded.by_sub, set_at = excluded.set_at",
                params![
                    scope_of(set.video.as_deref()),
                    rules_text(&set.rules),
                    set.by,
                    set.set_at as i64
                ],
            )
            .map_err(unavailable)?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn seed_block_rules(&self, set: RuleSet) -> Result<bool, StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO block_rules (scope, rules, by_sub, set_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    scope_of(set.video.as_deref()),
                    rules_text(&set.rules),
                    set.by,
                    set.set_at as i64
                ],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }

    async fn delete_block_rules(
        &self,
        video: Option<&str>,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        let scope = scope_of(video).to_string();
        self.write(move |c| {
            let gone = c
                .execute("DELETE FROM block_rules WHERE scope = ?1", [&scope])
                .map_err(unavailable)?
                > 0;
            if gone {
                insert_audit(c, &audit)?;
            }
            Ok(gone)
        })
        .await
    }

    async fn list_block_rules(&self) -> Result<Vec<RuleSet>, StoreError> {
        self.with(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT scope, rules, by_sub, set_at FROM block_rules ORDER BY scope",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (scope, rules, by, at) = row.map_err(unavailable)?;
                out.push(RuleSet {
                    video: video_of_scope(scope),
                    rules: parse_rules(&rules)?,
                    by,
                    set_at: at as u64,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn put_hold_rule(&self, r: HoldRule, audit: NewAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO hold_rules (video, roles, by_sub, set_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (video) DO UPDATE SET roles = excluded.roles,
                   by_sub = excluded.by_sub, set_at = excluded.set_at",
                params![r.video, roles_text(&r.roles), r.by, r.set_at as i64],
            )
            .map_err(unavailable)?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn clear_hold_rule(&self, video: &str, audit: NewAudit) -> Result<bool, StoreError> {
        let video = video.to_string();
        self.write(move |c| {
            let gone = c
                .execute("DELETE FROM hold_rules WHERE video = ?1", [&video])
                .map_err(unavailable)?
                > 0;
            if gone {
                insert_audit(c, &audit)?;
            }
            Ok(gone)
        })
        .await
    }

    async fn list_hold_rules(&self) -> Result<Vec<HoldRule>, StoreError> {
        self.with(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT video, roles, by_sub, set_at FROM hold_rules ORDER BY video",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (video, roles, by, at) = row.map_err(unavailable)?;
                out.push(HoldRule {
                    video,
                    roles: parse_roles(&roles).map_err(StoreError::Corrupt)?,
                    by,
                    set_at: at as u64,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn held_page(&self, q: HeldQuery) -> Result<Vec<StoredDanmaku>, StoreError> {
        self.with(move |c| {
            // Two statements rather than `?1 IS NULL OR ...`, so a video's page walks the
            // partial (video, id) index of held comments.
            let filter = if q.video.is_some() {
                "video = ?1"
            } else {
                "?1 IS NULL"
            };
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {} FROM danmaku
                     WHERE {filter} AND state = 'held' AND deleted_at IS NULL AND id > ?2
                     ORDER BY id LIMIT ?3",
                    super::danmaku::COLUMNS
                ))
                .map_err(unavailable)?;
            let rows = st
                .query_map(
                    params![
                        q.video,
                        q.after_id.unwrap_or(0),
                        q.limit.min(i64::MAX as usize) as i64
                    ],
                    super::danmaku::row_to_danmaku,
                )
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .await
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
        let sub = sub.to_string();
        self.write(move |c| {
            let live: Option<(i64, String)> = c
                .query_row(
                    "SELECT reports, state FROM danmaku WHERE id = ?1 AND deleted_at IS NULL",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            let Some((mut reports, state)) = live else {
                return Ok(None);
            };
            let new = c
                .execute(
                    "INSERT OR IGNORE INTO danmaku_reports (danmaku_id, sub, reason, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![id, sub, reason, at as i64],
                )
                .map_err(unavailable)?
                > 0;
            let mut hidden = false;
            if new {
                reports += 1;
                c.execute(
                    "UPDATE danmaku SET reports = ?2 WHERE id = ?1",
                    params![id, reports],
                )
                .map_err(unavailable)?;
                if threshold > 0 && reports >= i64::from(threshold) && state == "visible" {
                    c.execute("UPDATE danmaku SET state = 'held' WHERE id = ?1", [id])
                        .map_err(unavailable)?;
                    insert_audit(c, &audit)?;
                    hidden = true;
                }
            }
            Ok(Some(Reported {
                reports: reports.clamp(0, i64::from(u32::MAX)) as u32,
                new,
                hidden,
            }))
        })
        .await
    }

    async fn reported_page(
        &self,
        video: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReportedDanmaku>, StoreError> {
        let video = video.map(str::to_string);
        self.with(move |c| {
            let filter = if video.is_some() {
                "video = ?1"
            } else {
                "?1 IS NULL"
            };
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {}, reports FROM danmaku
                     WHERE {filter} AND reports > 0 AND deleted_at IS NULL
                     ORDER BY reports DESC, id LIMIT ?2",
                    super::danmaku::COLUMNS
                ))
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![video, limit.min(i64::MAX as usize) as i64], |r| {
                    Ok((super::danmaku::row_to_danmaku(r)?, r.get::<_, i64>(14)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut reasons = c
                .prepare_cached(
                    "SELECT reason FROM danmaku_reports WHERE danmaku_id = ?1 AND reason IS NOT NULL
                     ORDER BY created_at DESC, sub LIMIT ?2",
                )
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(rows.len());
            for (d, n) in rows {
                let why = reasons
                    .query_map(params![d.id, MAX_REASONS as i64], |r| r.get::<_, String>(0))
                    .map_err(unavailable)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)?;
                out.push(ReportedDanmaku {
                    d,
                    reports: n.clamp(0, i64::from(u32::MAX)) as u32,
                    reasons: why,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn review_danmaku(
        &self,
        id: i64,
        verdict: Verdict,
        at: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write(move |c| {
            let done = match verdict {
                Verdict::Approve => c.execute(
                    "UPDATE danmaku SET state = 'visible', reports = 0
                     WHERE id = ?1 AND state = 'held' AND deleted_at IS NULL",
                    [id],
                ),
                Verdict::Reject => c.execute(
                    "UPDATE danmaku SET deleted_at = ?2
                     WHERE id = ?1 AND state = 'held' AND deleted_at IS NULL",
                    params![id, at as i64],
                ),
            }
            .map_err(unavailable)?
                > 0;
            if done {
                insert_audit(c, &audit)?;
            }
            Ok(done)
        })
        .await
    }
}
