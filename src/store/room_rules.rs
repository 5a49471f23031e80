//! Per-video posting rules set at runtime: slow mode and the flood rule. The trait and
//! its SQLite engine (PostgreSQL: `store/postgres/room_rules.rs`).
//!
//! Like every moderation write (`store::moderation`), setting or clearing a rule takes
//! the [`NewAudit`] row describing it and appends it in the same transaction, only when
//! something changed. The offence count that escalates automatic mutes is not stored
//! apart: it is read from the audit log ([`RoomRulesStore::count_audit`]), which already
//! holds every `auto_muted` row, on every node of a cluster.

use async_trait::async_trait;
use rusqlite::{Row, params};

use super::{
    StoreError,
    moderation::{Action, NewAudit, insert_audit},
    sqlite::{SqliteStore, unavailable},
};
use crate::model::Role;

/// Slow mode in one video: posters of `roles` wait `seconds` between two comments there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowMode {
    pub video: String,
    /// 1 to 3600.
    pub seconds: u32,
    /// The roles slowed, in role order, once each (never admin).
    pub roles: Vec<Role>,
    /// Unix milliseconds; `None`: until cleared. Applies while `now < until`.
    pub until: Option<u64>,
    /// Who set it (the actor's sub).
    pub by: String,
    /// Unix milliseconds.
    pub set_at: u64,
}

impl SlowMode {
    /// Whether it applies at `now` (no job expires it: compared at each check).
    pub fn in_force(&self, now: u64) -> bool {
        self.until.is_none_or(|u| now < u)
    }
}

/// A flood rule: more than `max_comments` accepted comments within `window_s` mutes the
/// poster in the video, for `mute_s` the first time, then for each `escalation` value
/// in turn (the last one repeating).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodRule {
    pub max_comments: u32,
    pub window_s: u32,
    pub mute_s: u32,
    /// Mute seconds of the 2nd, 3rd, … offence.
    pub escalation: Vec<u32>,
}

impl FloodRule {
    /// The mute of the `offence`-th offence (1-based): `mute_s`, then `escalation` in
    /// turn, the last value repeating.
    pub fn mute_for(&self, offence: u64) -> u32 {
        if offence <= 1 {
            return self.mute_s;
        }
        let i = (offence - 2).min(usize::MAX as u64) as usize;
        self.escalation
            .get(i)
            .or(self.escalation.last())
            .copied()
            .unwrap_or(self.mute_s)
    }
}

/// A video's own flood rule, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFloodRule {
    pub video: String,
    pub rule: FloodRule,
    pub by: String,
    /// Unix milliseconds.
    pub set_at: u64,
}

/// The stored spelling of a role list: `free,member`.
pub fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a stored role list back (unknown names are corrupt data).
pub fn parse_roles(text: &str) -> Result<Vec<Role>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "guest" => Ok(Role::Guest),
            other => Role::parse_token_role(other).ok_or_else(|| format!("bad role {s:?}")),
        })
        .collect()
}

/// The stored spelling of an escalation: a JSON array of seconds.
pub fn escalation_text(e: &[u32]) -> String {
    serde_json::to_string(e).unwrap_or_else(|_| "[]".into())
}

/// Reads a stored escalation back.
pub fn parse_escalation(text: &str) -> Result<Vec<u32>, String> {
    serde_json::from_str(text).map_err(|e| format!("bad escalation {text:?}: {e}"))
}

/// Storage for slow modes and flood rules.
#[async_trait]
pub trait RoomRulesStore: Send + Sync {
    /// Sets (or replaces) the slow mode of `s.video`, with its audit row.
    async fn put_slow_mode(&self, s: SlowMode, audit: NewAudit) -> Result<(), StoreError>;
    /// Clears the slow mode of `video` if one is in force at `now`. Returns whether one
    /// was; the audit row only then.
    async fn clear_slow_mode(
        &self,
        video: &str,
        now: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError>;
    /// Slow modes in force at `now`, by video.
    async fn list_slow_modes(&self, now: u64) -> Result<Vec<SlowMode>, StoreError>;
    /// Sets (or replaces) the flood rule of `r.video`, with its audit row.
    async fn put_flood_rule(&self, r: StoredFloodRule, audit: NewAudit) -> Result<(), StoreError>;
    /// Removes the flood rule of `video`. Returns whether one existed; the audit row only
    /// then.
    async fn delete_flood_rule(&self, video: &str, audit: NewAudit) -> Result<bool, StoreError>;
    /// Every video's own flood rule, by video.
    async fn list_flood_rules(&self) -> Result<Vec<StoredFloodRule>, StoreError>;
    /// How many audit rows of `action` on `target` in `video` are at or after `since`
    /// (the offences that escalate an automatic mute).
    async fn count_audit(
        &self,
        video: &str,
        target: &str,
        action: Action,
        since: u64,
    ) -> Result<u64, StoreError>;
}

/// Decodes `video, seconds, roles, until_ms, by_sub, set_at`.
fn slow_row(r: &Row<'_>) -> rusqlite::Result<SlowMode> {
    let roles: String = r.get(2)?;
    Ok(SlowMode {
        video: r.get(0)?,
        seconds: r.get::<_, i64>(1)? as u32,
        roles: parse_roles(&roles).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
        })?,
        until: r.get::<_, Option<i64>>(3)?.map(|u| u as u64),
        by: r.get(4)?,
        set_at: r.get::<_, i64>(5)? as u64,
    })
}

/// Decodes `video, max_comments, window_s, mute_s, escalation, by_sub, set_at`.
fn flood_row(r: &Row<'_>) -> rusqlite::Result<StoredFloodRule> {
    let escalation: String = r.get(4)?;
    Ok(StoredFloodRule {
        video: r.get(0)?,
        rule: FloodRule {
            max_comments: r.get::<_, i64>(1)? as u32,
            window_s: r.get::<_, i64>(2)? as u32,
            mute_s: r.get::<_, i64>(3)? as u32,
            escalation: parse_escalation(&escalation).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
            })?,
        },
        by: r.get(5)?,
        set_at: r.get::<_, i64>(6)? as u64,
    })
}

#[async_trait]
impl RoomRulesStore for SqliteStore {
    async fn put_slow_mode(&self, s: SlowMode, audit: NewAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO slow_modes (video, seconds, roles, until_ms, by_sub, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (video) DO UPDATE SET seconds = excluded.seconds,
                   roles = excluded.roles, until_ms = excluded.until_ms,
                   by_sub = excluded.by_sub, set_at = excluded.set_at",
                params![
                    s.video,
                    s.seconds as i64,
                    roles_text(&s.roles),
                    s.until.map(|u| u as i64),
                    s.by,
                    s.set_at as i64
                ],
            )
            .map_err(unavailable)?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn clear_slow_mode(
        &self,
        video: &str,
        now: u64,
        audit: NewAudit,
    ) -> Result<bool, StoreError> {
        let video = video.to_string();
        self.write(move |c| {
            let cleared = c
                .execute(
                    "DELETE FROM slow_modes
                     WHERE video = ?1 AND (until_ms IS NULL OR until_ms > ?2)",
                    params![video, now as i64],
                )
                .map_err(unavailable)?
                > 0;
            if cleared {
                insert_audit(c, &audit)?;
            }
            Ok(cleared)
        })
        .await
    }

    async fn list_slow_modes(&self, now: u64) -> Result<Vec<SlowMode>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT video, seconds, roles, until_ms, by_sub, set_at FROM slow_modes
                     WHERE until_ms IS NULL OR until_ms > ?1 ORDER BY video",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map([now.min(i64::MAX as u64) as i64], slow_row)
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .await
    }

    async fn put_flood_rule(&self, r: StoredFloodRule, audit: NewAudit) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO flood_rules
                   (video, max_comments, window_s, mute_s, escalation, by_sub, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (video) DO UPDATE SET max_comments = excluded.max_comments,
                   window_s = excluded.window_s, mute_s = excluded.mute_s,
                   escalation = excluded.escalation, by_sub = excluded.by_sub,
                   set_at = excluded.set_at",
                params![
                    r.video,
                    r.rule.max_comments as i64,
                    r.rule.window_s as i64,
                    r.rule.mute_s as i64,
                    escalation_text(&r.rule.escalation),
                    r.by,
                    r.set_at as i64
                ],
            )
            .map_err(unavailable)?;
            insert_audit(c, &audit)
        })
        .await
    }

    async fn delete_flood_rule(&self, video: &str, audit: NewAudit) -> Result<bool, StoreError> {
        let video = video.to_string();
        self.write(move |c| {
            let gone = c
                .execute("DELETE FROM flood_rules WHERE video = ?1", [&video])
                .map_err(unavailable)?
                > 0;
            if gone {
                insert_audit(c, &audit)?;
            }
            Ok(gone)
        })
        .await
    }

    async fn list_flood_rules(&self) -> Result<Vec<StoredFloodRule>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT video, max_comments, window_s, mute_s, escalation, by_sub, set_at
                     FROM flood_rules ORDER BY video",
                )
                .map_err(unavailable)?;
            let rows = st.query_map([], flood_row).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .await
    }

    async fn count_audit(
        &self,
        video: &str,
        target: &str,
        action: Action,
        since: u64,
    ) -> Result<u64, StoreError> {
        let (video, target) = (video.to_string(), target.to_string());
        self.with(move |c| {
            c.prepare_cached(
                "SELECT COUNT(*) FROM moderation_audit
                 WHERE video = ?1 AND target = ?2 AND action = ?3 AND at >= ?4",
            )
            .and_then(|mut st| {
                st.query_row(
                    params![
                        video,
                        target,
                        action.as_str(),
                        since.min(i64::MAX as u64) as i64
                    ],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(|n| n.max(0) as u64)
            .map_err(unavailable)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_steps_then_repeats_its_last_value() {
        let r = FloodRule {
            max_comments: 10,
            window_s: 20,
            mute_s: 300,
            escalation: vec![1800, 86400],
        };
        let got: Vec<u32> = (1..=5).map(|n| r.mute_for(n)).collect();
        assert_eq!(got, [300, 1800, 86400, 86400, 86400]);
        let flat = FloodRule {
            escalation: vec![],
            ..r
        };
        assert_eq!(flat.mute_for(3), 300);
    }

    #[test]
    fn role_lists_round_trip() {
        let roles = vec![Role::Guest, Role::Free, Role::Member];
        assert_eq!(parse_roles(&roles_text(&roles)), Ok(roles));
        assert!(parse_roles("free,root").is_err());
        assert_eq!(parse_escalation(&escalation_text(&[1, 2])), Ok(vec![1, 2]));
    }
}
