//! Room moderators, scoped mutes and the moderation audit log: the trait and its SQLite
//! engine (PostgreSQL: `store/postgres/moderation.rs`).
//!
//! Every write that changes moderation state takes the [`NewAudit`] row describing it
//! and appends it **in the same transaction** (both engines: SQLite in the write's
//! closure, PostgreSQL in the writer's savepoint for that write), and only when the state
//! did change: re-granting a moderator, lifting a mute not in force or tombstoning a
//! deleted comment appends nothing. An action is therefore never recorded without having
//! happened, nor done without its record.
//!
//! A mute's scope is stored as text: `''` for everywhere, else the video id (video ids
//! are never empty), so `(sub, scope)` is the primary key with no NULL in it.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    StoreError,
    sqlite::{SqliteStore, unavailable},
};

/// A stored room-moderator grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub video: String,
    pub sub: String,
    /// Who granted it (an admin's sub, or `system` for API keys).
    pub by: String,
    /// Unix milliseconds.
    pub at: u64,
}

/// A mute: `sub` may not post in `video` (or anywhere, `None`) until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    pub sub: String,
    /// `None`: everywhere.
    pub video: Option<String>,
    /// Unix milliseconds; the mute applies while `now < until` (no job expires it).
    pub until: u64,
    pub reason: Option<String>,
    /// Who muted (the actor's sub).
    pub by: String,
    /// Unix milliseconds.
    pub created_at: u64,
}

/// What a [`Mute`]-shaped row restrains: posting (a mute) or being seen (a shadow
/// ban: the user's comments are stored shadowed). One table each, the same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Restraint {
    Mute,
    ShadowBan,
}

impl Restraint {
    /// Its table (a fixed name, never input).
    pub fn table(self) -> &'static str {
        match self {
            Restraint::Mute => "mutes",
            Restraint::ShadowBan => "shadow_bans",
        }
    }
}

/// The stored spelling of a mute scope.
pub fn scope_of(video: Option<&str>) -> &str {
    video.unwrap_or("")
}

/// Reads a stored scope back.
fn video_of(scope: String) -> Option<String> {
    (!scope.is_empty()).then_some(scope)
}

/// What a moderation action was, as stored and listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ModeratorAdded,
    ModeratorRemoved,
    /// A comment deleted by a moderator or an admin (an author's own recall is not one).
    CommentDeleted,
    UserMuted,
    UserUnmuted,
    /// A user muted by the server itself: the video's flood rule tripped (actor
    /// `system`, role `system`).
    AutoMuted,
    /// Slow mode set (or replaced) in a video.
    SlowModeSet,
    /// Slow mode cleared in a video.
    SlowModeCleared,
    /// A video's own flood rule set (or replaced).
    FloodRuleSet,
    /// A video's own flood rule removed: the configured default applies again.
    FloodRuleCleared,
    /// A user shadow-banned in a video or everywhere.
    UserShadowBanned,
    /// A shadow ban lifted.
    UserShadowUnbanned,
    /// A scope's block rules set (replaced whole).
    BlockRulesSet,
    /// A scope's block rules removed.
    BlockRulesCleared,
    /// A video's hold rule set: comments of the listed roles wait for review.
    HoldRuleSet,
    /// A video's hold rule cleared.
    HoldRuleCleared,
    /// A held comment approved: published.
    CommentApproved,
    /// A held comment rejected: gone for everyone.
    CommentRejected,
    /// A comment hidden pending review because enough viewers reported it (actor
    /// `system`).
    HiddenByReports,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 19] = [
        Action::ModeratorAdded,
        Action::ModeratorRemoved,
        Action::CommentDeleted,
        Action::UserMuted,
        Action::UserUnmuted,
        Action::AutoMuted,
        Action::SlowModeSet,
        Action::SlowModeCleared,
        Action::FloodRuleSet,
        Action::FloodRuleCleared,
        Action::UserShadowBanned,
        Action::UserShadowUnbanned,
        Action::BlockRulesSet,
        Action::BlockRulesCleared,
        Action::HoldRuleSet,
        Action::HoldRuleCleared,
        Action::CommentApproved,
        Action::CommentRejected,
        Action::HiddenByReports,
    ];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ModeratorAdded => "moderator_added",
            Action::ModeratorRemoved => "moderator_removed",
            Action::CommentDeleted => "comment_deleted",
            Action::UserMuted => "user_muted",
            Action::UserUnmuted => "user_unmuted",
            Action::AutoMuted => "auto_muted",
            Action::SlowModeSet => "slow_mode_set",
            Action::SlowModeCleared => "slow_mode_cleared",
            Action::FloodRuleSet => "flood_rule_set",
            Action::FloodRuleCleared => "flood_rule_cleared",
            Action::UserShadowBanned => "user_shadow_banned",
            Action::UserShadowUnbanned => "user_shadow_unbanned",
            Action::BlockRulesSet => "block_rules_set",
            Action::BlockRulesCleared => "block_rules_cleared",
            Action::HoldRuleSet => "hold_rule_set",
            Action::HoldRuleCleared => "hold_rule_cleared",
            Action::CommentApproved => "comment_approved",
            Action::CommentRejected => "comment_rejected",
            Action::HiddenByReports => "hidden_by_reports",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An audit row to append with an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// Unix milliseconds.
    pub at: u64,
    /// The actor's sub (`system` for API keys).
    pub actor: String,
    /// `admin` or `moderator`: the power the actor used; `system` for what the server
    /// did by itself (an automatic mute).
    pub actor_role: String,
    pub action: Action,
    /// The video concerned; `None` for an action everywhere (a global mute).
    pub video: Option<String>,
    /// A user's sub, or a comment id as a string.
    pub target: String,
    pub reason: Option<String>,
    /// JSON text (an object) with what else is worth keeping.
    pub detail: String,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Store-assigned, increasing.
    pub id: i64,
    pub entry: NewAudit,
}

/// A page of the audit log: newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this video's entries.
    pub video: Option<String>,
    /// Only entries with a smaller id (the previous page's last).
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// Storage for moderators, mutes and the audit log.
#[async_trait]
pub trait ModerationStore: Send + Sync {
    /// Grants `g.sub` moderation of `g.video`. Returns the stored grant (the earlier one
    /// when it existed) and whether it was created; the audit row only when created.
    async fn put_moderator(&self, g: Grant, audit: NewAudit) -> Result<(Grant, bool), StoreError>;
    /// Removes a stored grant. Returns whether it existed; the audit row only then.
    async fn delete_moderator(
        &self,
        video: &str,
        sub: &str,
        audit: NewAudit,
    ) -> Result<bool, StoreError>;
    /// Stored grants of one video, or of every video (`None`), by video then sub.
    async fn list_moderators(&self, video: Option<&str>) -> Result<Vec<Grant>, StoreError>;
    /// Sets (or replaces) the mute (or shadow ban, by `kind`) of `(m.sub, m.video)`,
    /// with its audit row.
    async fn put_mute(&self, kind: Restraint, m: Mute, audit: NewAudit) -> Result<(), StoreError>;
    /// Lifts the mute (or shadow ban) of `(sub, video)` if one is in force at `now`.
    /// Returns whether one was; the audit row only then.
    async fn lift_mute(
        &self,
        kind: Restraint,
        sub: &str,
        video: Option<&str>,
        now: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError>;
    /// Mutes (or shadow bans) in force at `now` (expired ones are never listed), by sub
    /// then scope.
    async fn list_mutes(&self, kind: Restraint, now: u64) -> Result<Vec<Mute>, StoreError>;
    /// Tombstones a comment on a moderator's or an admin's behalf, with the audit row.
    /// Returns false (and appends nothing) when it was missing or already deleted.
    async fn tombstone_audited(
        &self,
        id: i64,
        at: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError>;
    /// A page of the audit log, newest first.
    async fn audit_page(&self, q: AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
}

/// The audit columns read back, in [`audit_row`] order.
const AUDIT_COLUMNS: &str = "id, at, actor, actor_role, action, video, target, reason, detail";

/// Appends one audit row on `c` (inside the action's transaction).
pub(super) fn insert_audit(c: &Connection, a: &NewAudit) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO moderation_audit (at, actor, actor_role, action, video, target, reason, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut st| {
        st.execute(params![
            a.at as i64,
            a.actor,
            a.actor_role,
            a.action.as_str(),
            a.video,
            a.target,
            a.reason,
            a.detail,
        ])
    })
    .map(|_| ())
    .map_err(unavailable)
}

/// Decodes a row selected with [`AUDIT_COLUMNS`].
fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let action: String = r.get(4)?;
    Ok(AuditEntry {
        id: r.get(0)?,
        entry: NewAudit {
            at: r.get::<_, i64>(1)? as u64,
            actor: r.get(2)?,
            actor_role: r.get(3)?,
            action: Action::parse(&action).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    4,
                    rusqlite::types::Type::Text,
                    format!("bad audit action {action:?}").into(),
                )
            })?,
            video: r.get(5)?,
            target: r.get(6)?,
            reason: r.get(7)?,
            detail: r.get(8)?,
        },
    })
}

/// Reads one grant.
fn grant_of(c: &Connection, video: &str, sub: &str) -> Result<Option<Grant>, StoreError> {
    c.query_row(
        "SELECT video, sub, granted_by, granted_at FROM moderators WHERE video = ?1 AND sub = ?2",
        params![video, sub],
        grant_row,
    )
    .optional()
    .map_err(unavailable)
}

/// Decodes `video, sub, granted_by, granted_at`.
fn grant_row(r: &Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        video: r.get(0)?,
        sub: r.get(1)?,
        by: r.get(2)?,
        at: r.get::<_, i64>(3)? as u64,
    })
}

#[async_trait]
impl ModerationStore for SqliteStore {
    async fn put_moderator(&self, g: Grant, audit: NewAudit) -> Result<(Grant, bool), StoreError> {
        self.write(move |c| {
            if let Some(existing) = grant_of(c, &g.video, &g.sub)? {
                return Ok((existing, false));
            }
            c.execute(
                "INSERT INTO moderators (video, sub, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4)",
                params![g.video, g.sub, g.by, g.at as i64],
            )
            .map_err(unavailable)?;
            insert_audit(c, &audit)?;
            Ok((g, true))
        })
        .await
    }

    async fn delete_moderator(
        &self,
        video: &str,
        sub: &str,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        let (video, sub) = (video.to_string(), sub.to_string());
        self.write(move |c| {
            let gone = c
                .execute(
                    "DELETE FROM moderators WHERE video = ?1 AND sub = ?2",
                    params![video, sub],
                )
                .map_err(unavailable)?
                > 0;
            if gone {
                insert_audit(c, &audit)?;
            }
            Ok(gone)
        })
        .await
    }

    async fn list_moderators(&self, video: Option<&str>) -> Result<Vec<Grant>, StoreError> {
        let video = video.map(str::to_string);
        self.with(move |c| {
            // Two statements rather than `?1 IS NULL OR ...`, so one video's read uses the key.
            let filter = if video.is_some() {
                "video = ?1"
            } else {
                "?1 IS NULL"
            };
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT video, sub, granted_by, granted_at FROM moderators
                     WHERE {filter} ORDER BY video, sub"
                ))
                .map_err(unavailable)?;
            let rows = st.query_map([video], grant_row).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn put_mute(&self, kind: Restraint, m: Mute, audit: NewAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                &format!(
                    "INSERT INTO {} (sub, scope, until_ms, reason, by_sub, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (sub, scope) DO UPDATE SET until_ms = excluded.until_ms,
                       reason = excluded.reason, by_sub = excluded.by_sub,
                       created_at = excluded.created_at",
                    kind.table()
                ),
                params![
                    m.sub,
                    scope_of(m.video.as_deref()),
                    m.until as i64,
                    m.reason,
                    m.by,
                    m.created_at as i64
                ],
            )
            .map_err(unavailable)?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn lift_mute(
        &self,
        kind: Restraint,
        sub: &str,
        video: Option<&str>,
        now: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        let (sub, scope) = (sub.to_string(), scope_of(video).to_string());
        self.write(move |c| {
            let lifted = c
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE sub = ?1 AND scope = ?2 AND until_ms > ?3",
                        kind.table()
                    ),
                    params![sub, scope, now as i64],
                )
                .map_err(unavailable)?
                > 0;
            if lifted {
                insert_audit(c, &audit)?;
            }
            Ok(lifted)
        })
        .await
    }

    async fn list_mutes(&self, kind: Restraint, now: u64) -> Result<Vec<Mute>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT sub, scope, until_ms, reason, by_sub, created_at FROM {}
                     WHERE until_ms > ?1 ORDER BY sub, scope",
                    kind.table()
                ))
                .map_err(unavailable)?;
            let rows = st
                .query_map([now as i64], |r| {
                    Ok(Mute {
                        sub: r.get(0)?,
                        video: video_of(r.get(1)?),
                        until: r.get::<_, i64>(2)? as u64,
                        reason: r.get(3)?,
                        by: r.get(4)?,
                        created_at: r.get::<_, i64>(5)? as u64,
                    })
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn tombstone_audited(
        &self,
        id: i64,
        at: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        self.write(move |c| {
            let done = c
                .execute(
                    "UPDATE danmaku SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                    params![id, at as i64],
                )
                .map_err(unavailable)?
                > 0;
            if done {
                insert_audit(c, &audit)?;
            }
            Ok(done)
        })
        .await
    }

    async fn audit_page(&self, q: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(move |c| {
            // As above: a video's page walks the (video, id) index.
            let filter = if q.video.is_some() {
                "video = ?1"
            } else {
                "?1 IS NULL"
            };
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM moderation_audit
                     WHERE {filter} AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(unavailable)?;
            let rows = st
                .query_map(
                    params![
                        q.video,
                        q.before_id.unwrap_or(i64::MAX),
                        q.limit.min(i64::MAX as usize) as i64
                    ],
                    audit_row,
                )
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .await
    }
}
