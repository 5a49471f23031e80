//! Hold for review: per video, the comments of the listed roles are stored held (their
//! author sees them pending, nobody else but the video's moderators and admins sees them)
//! until a moderator approves (published) or rejects (gone for everyone but the audit
//! log). Block rules with the `hold` action hold comments the same way, in any video.
//!
//! This module keeps the hold rules (stored, audited, mirrored, synced like slow mode),
//! lists the queue and records a review with its audit row in one store write; the
//! comment's live events are built and published by `danmaku`, which calls
//! [`Service::review`] and announces what it returns.
//!
//! Who may: set, clear and read a hold rule, review, and list a video's queue, an admin
//! or a moderator of the video (403 `not_moderator`); the queue of every video, admins.

use std::sync::Arc;

use super::{Service, audit, slow_mode::require_catalog, unavailable};
use crate::{
    access::Directory,
    model::{Identity, Refusal, Role, Visibility, time::now_millis},
    store::{
        danmaku::StoredDanmaku,
        moderation::Action,
        review::{HeldQuery, HoldRule, Verdict},
    },
};

/// The roles held when a request names none.
pub const DEFAULT_ROLES: [Role; 1] = [Role::Free];

/// Default queue page.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest queue page.
pub const MAX_LIMIT: usize = 200;

/// The hold rules per video, read on every post (lock-free; values replaced whole).
#[derive(Debug, Default)]
pub(super) struct Mirror {
    by_video: papaya::HashMap<String, Arc<HoldRule>>,
}

impl Mirror {
    /// Records a rule already stored.
    fn set(&self, r: HoldRule) {
        self.by_video.pin().insert(r.video.clone(), Arc::new(r));
    }

    /// Forgets a video's rule, already cleared in the store.
    fn clear(&self, video: &str) {
        self.by_video.pin().remove(video);
    }

    /// Replaces the mirror with what the store holds (upserts first, then removals).
    pub(super) fn replace(&self, all: Vec<HoldRule>) {
        let map = self.by_video.pin();
        let keep: std::collections::HashSet<String> = all.iter().map(|r| r.video.clone()).collect();
        for r in all {
            if map.get(&r.video).is_none_or(|o| **o != r) {
                map.insert(r.video.clone(), Arc::new(r));
            }
        }
        map.retain(|v, _| keep.contains(v));
    }
}

/// Validates the roles of a hold rule: some of guest, free and member, once each, sorted.
fn check_roles(roles: Option<Vec<Role>>) -> Result<Vec<Role>, Refusal> {
    let mut roles = roles.unwrap_or_else(|| DEFAULT_ROLES.to_vec());
    if roles.is_empty() || roles.contains(&Role::Admin) || roles.contains(&Role::Guest) {
        return Err(Refusal::invalid(
            "invalid_roles",
            "a hold rule names some of free and member (admins are never held; guests cannot post)",
        ));
    }
    roles.sort_by_key(|r| r.index());
    roles.dedup();
    Ok(roles)
}

impl Service {
    /// Whether a comment by a poster of `role` in `video` is held by the video's rule.
    pub fn holds(&self, video: &str, role: Role) -> bool {
        self.holds
            .by_video
            .pin()
            .get(video)
            .is_some_and(|r| r.roles.contains(&role))
    }

    /// Sets (replaces) the hold rule of a video.
    pub async fn set_hold_rule(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
        roles: Option<Vec<Role>>,
        reason: Option<&str>,
    ) -> Result<HoldRule, Refusal> {
        let reason = super::check_reason(reason)?;
        let roles = check_roles(roles)?;
        let authority = self.require(who, video)?;
        require_catalog(dir, video)?;
        let now = now_millis();
        let rule = HoldRule {
            video: video.to_string(),
            roles,
            by: who.sub.to_string(),
            set_at: now,
        };
        let entry = audit::entry(
            who,
            authority,
            Action::HoldRuleSet,
            Some(video),
            video.to_string(),
            reason,
            serde_json::json!({"roles": rule.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()}),
            now,
        );
        self.store
            .put_hold_rule(rule.clone(), entry)
            .await
            .map_err(unavailable("hold rule"))?;
        self.apply_local(|s| s.holds.set(rule.clone()));
        tracing::info!(video, roles = ?rule.roles, by = %who.sub, "hold rule set");
        Ok(rule)
    }

    /// Clears the hold rule of a video (comments already held stay in the queue); 404
    /// `unknown_hold_rule` when it had none.
    pub async fn clear_hold_rule(
        &self,
        who: &Identity,
        video: &str,
        reason: Option<&str>,
    ) -> Result<(), Refusal> {
        let reason = super::check_reason(reason)?;
        let authority = self.require(who, video)?;
        let now = now_millis();
        let entry = audit::entry(
            who,
            authority,
            Action::HoldRuleCleared,
            Some(video),
            video.to_string(),
            reason,
            serde_json::json!({}),
            now,
        );
        let gone = self
            .store
            .clear_hold_rule(video, entry)
            .await
            .map_err(unavailable("hold rule"))?;
        self.apply_local(|s| s.holds.clear(video));
        if !gone {
            return Err(Refusal::not_found(
                "unknown_hold_rule",
                format!("video {video} holds no comments for review"),
            ));
        }
        tracing::info!(video, by = %who.sub, "hold rule cleared");
        Ok(())
    }

    /// The hold rule of a video, if any (its moderators and admins).
    pub fn hold_rule(&self, who: &Identity, video: &str) -> Result<Option<HoldRule>, Refusal> {
        self.require(who, video)?;
        Ok(self.holds.by_video.pin().get(video).map(|r| (**r).clone()))
    }

    /// A page of held comments, oldest first: one video's (its moderators), or every
    /// video's (admins).
    pub async fn queue(
        &self,
        who: &Identity,
        video: Option<&str>,
        after_id: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<StoredDanmaku>, Refusal> {
        self.require_scope(who, video)?;
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Refusal::invalid(
                "invalid_limit",
                format!("limit is 1 to {MAX_LIMIT}"),
            ));
        }
        self.store
            .held_page(HeldQuery {
                video: video.map(str::to_string),
                after_id,
                limit,
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "queue read failed");
                Refusal::unavailable(
                    "store_unavailable",
                    "the review queue is unavailable; retry",
                )
            })
    }

    /// Reviews a held comment: approve publishes it, reject removes it for everyone.
    /// 404 `unknown_danmaku` for no such live comment, 403 `not_moderator` outside the
    /// caller's videos, 409 `not_held` for a comment that is not waiting for review.
    /// Returns the comment as it now is, for `danmaku` to announce.
    pub async fn review(
        &self,
        who: &Identity,
        id: i64,
        verdict: Verdict,
        reason: Option<&str>,
    ) -> Result<StoredDanmaku, Refusal> {
        let reason = super::check_reason(reason)?;
        let not_found = || Refusal::not_found("unknown_danmaku", format!("no comment {id}"));
        let mut stored = self
            .store
            .get_danmaku(id)
            .await
            .map_err(unavailable("review"))?
            .filter(|s| s.deleted_at.is_none())
            .ok_or_else(not_found)?;
        let authority = self.require(who, &stored.d.video)?;
        if stored.d.state != Visibility::Held {
            return Err(Refusal::conflict(
                "not_held",
                format!("comment {id} is not waiting for review"),
            ));
        }
        let now = now_millis();
        let action = match verdict {
            Verdict::Approve => Action::CommentApproved,
            Verdict::Reject => Action::CommentRejected,
        };
        let entry = audit::entry(
            who,
            authority,
            action,
            Some(&stored.d.video),
            id.to_string(),
            reason,
            serde_json::json!({
                "author": stored.d.sub,
                "text": stored.d.text,
                "time": stored.d.time_ms as f64 / 1000.0,
                "created_at": stored.d.created_at,
            }),
            now,
        );
        let done = self
            .store
            .review_danmaku(id, verdict, now, entry)
            .await
            .map_err(unavailable("review"))?;
        if !done {
            // Reviewed or deleted meanwhile (another moderator, another node).
            return Err(Refusal::conflict(
                "not_held",
                format!("comment {id} is no longer waiting for review"),
            ));
        }
        match verdict {
            Verdict::Approve => stored.d.state = Visibility::Visible,
            Verdict::Reject => stored.deleted_at = Some(now),
        }
        tracing::info!(id, video = %stored.d.video, by = %who.sub, verdict = ?verdict, "comment reviewed");
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_roles_default_to_free_and_never_hold_admins() {
        assert_eq!(check_roles(None).unwrap(), vec![Role::Free]);
        assert_eq!(
            check_roles(Some(vec![Role::Member, Role::Free, Role::Free])).unwrap(),
            vec![Role::Free, Role::Member]
        );
        for bad in [vec![], vec![Role::Admin], vec![Role::Guest, Role::Free]] {
            assert_eq!(check_roles(Some(bad)).unwrap_err().code, "invalid_roles");
        }
    }

    #[test]
    fn the_mirror_holds_by_video_and_role() {
        let m = Mirror::default();
        m.replace(vec![HoldRule {
            video: "v".into(),
            roles: vec![Role::Free],
            by: "root".into(),
            set_at: 1,
        }]);
        let has = |v: &str, r: Role| {
            m.by_video
                .pin()
                .get(v)
                .is_some_and(|h| h.roles.contains(&r))
        };
        assert!(has("v", Role::Free));
        assert!(!has("v", Role::Member));
        assert!(!has("w", Role::Free));
        m.replace(vec![]);
        assert!(!has("v", Role::Free));
    }
}
