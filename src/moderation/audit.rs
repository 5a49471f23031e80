//! The audit log: who did what to whom, where, when and why. Rows are built here and
//! appended by the store in the same transaction as their action
//! (`store::moderation`); this module also pages them for `GET /api/moderation/audit`.
//!
//! Recorded: moderator added and removed, comment deleted by a moderator or an admin (an
//! author's own recall is not moderation and is not recorded), user muted and unmuted
//! (with the scope as `video`, `null` for everywhere), user muted automatically by a
//! flood rule (actor and role `system`; these rows are also the offence count that
//! escalates the next automatic mute), slow mode and flood rule set and cleared (the
//! target is the video).

use super::{Authority, Service};
use crate::{
    model::{Identity, Refusal},
    store::{
        danmaku::StoredDanmaku,
        moderation::{Action, AuditEntry, AuditQuery, NewAudit},
    },
};

/// Default audit page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest audit page.
pub const MAX_LIMIT: u32 = 200;

/// Builds an audit row for an action by `who` using `authority`.
#[allow(clippy::too_many_arguments)]
pub fn entry(
    who: &Identity,
    authority: Authority,
    action: Action,
    video: Option<&str>,
    target: String,
    reason: Option<String>,
    detail: serde_json::Value,
    at: u64,
) -> NewAudit {
    NewAudit {
        at,
        actor: who.sub.to_string(),
        actor_role: authority.as_str().to_string(),
        action,
        video: video.map(str::to_string),
        target,
        reason,
        detail: detail.to_string(),
    }
}

/// The row of a comment deleted by a moderator or an admin: the target is the comment
/// id; the detail keeps what the comment said and who wrote it (it is gone for viewers).
pub fn comment_deleted(
    who: &Identity,
    authority: Authority,
    stored: &StoredDanmaku,
    reason: Option<String>,
    at: u64,
) -> NewAudit {
    entry(
        who,
        authority,
        Action::CommentDeleted,
        Some(&stored.d.video),
        stored.id.to_string(),
        reason,
        serde_json::json!({
            "author": stored.d.sub,
            "text": stored.d.text,
            "time": stored.d.time_ms as f64 / 1000.0,
            "created_at": stored.d.created_at,
        }),
        at,
    )
}

/// A page of the log, newest first, and where the next one starts.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// The `before_id` of the next (older) page; `None` when this is the last.
    pub next_before_id: Option<i64>,
}

impl Service {
    /// A page of the audit log: everything or one video's (admins), or one video's (its
    /// moderators). `limit` is 1 to [`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]).
    pub async fn audit(
        &self,
        who: &Identity,
        video: Option<&str>,
        before_id: Option<i64>,
        limit: Option<u32>,
    ) -> Result<AuditPage, Refusal> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Refusal::invalid(
                "invalid_limit",
                format!("limit is 1 to {MAX_LIMIT}"),
            ));
        }
        self.require_scope(who, video)?;
        // One more than asked: whether an older page exists, without a second query.
        let mut items = self
            .store
            .audit_page(AuditQuery {
                video: video.map(str::to_string),
                before_id,
                limit: limit as usize + 1,
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "audit read failed");
                Refusal::unavailable("store_unavailable", "the audit log is unavailable; retry")
            })?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_before_id = more.then(|| items.last().map(|e| e.id)).flatten();
        Ok(AuditPage {
            items,
            next_before_id,
        })
    }
}
