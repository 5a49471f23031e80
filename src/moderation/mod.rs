//! Moderation: who may moderate a video's room ([`moderators`]), scoped mutes and shadow
//! bans with an expiry and a reason ([`mutes`]), slow mode per video ([`slow_mode`]),
//! flood rules that mute automatically and escalate ([`flood`]), block rules at runtime
//! ([`block`]), hold rules and the review of held comments ([`review`]) and the audit log
//! of every moderation action ([`audit`]).
//!
//! **A comment's visibility** is decided when it is posted, by `danmaku` asking here:
//! refused when a block rule or the external classifier ([`hook`]) says `refuse`/`deny`;
//! else shadowed when the poster is shadow-banned there or a rule or the hook says
//! `shadow`; else held when a rule or the hook says `hold` or the video holds the
//! poster's role; else visible. Shadow before hold: a shadow-banned
//! poster must never learn it, and a held comment shows as pending to its author.
//!
//! A domain service beside `danmaku`, which asks it: whether a poster is muted where
//! they post ([`Service::check_post`]), the slow-mode interval that applies to them
//! there ([`Service::slow_mode_for`]), whether the post trips the flood rule
//! ([`Service::count_post`]) and whether a caller moderates the video of a comment they
//! delete ([`Service::authority`]). The arrow goes that way only:
//! `danmaku` → `moderation` → `store`/`access`/`model`. Moderation never imports
//! `danmaku` (it builds the audit row of a deletion from the stored comment, a store
//! type), so posting can consult mutes without a cycle, and the store facet
//! (`store::moderation`) stays the one place mutes and grants are durable.
//!
//! **Who may moderate video V** ([`Service::authority`]): an admin (any video, any time);
//! else a user whom the store lists as V's moderator (`PUT
//! /api/videos/{id}/moderators/{sub}`) **or** whose token's `mod` claim lists V. The two
//! sources are a union: neither overrides the other. `DELETE …/moderators/{sub}` removes
//! only the stored grant; a token's grant ends when the token does (or is replaced by one
//! without it). Everyone else gets 403 `not_moderator` for moderator actions, with no
//! side effect (every check runs before the store is written).
//!
//! **Mirrors.** Grants, mutes, shadow bans, slow modes, flood rules, block rules and hold
//! rules in force are mirrored in memory, so that posting checks them without a store
//! read. Local writes update the mirror right after their commit; on a cluster (a shared
//! PostgreSQL) every node re-reads them all from the store every [`SYNC_EVERY`] (`server::sync_moderation`),
//! so a change made through one node applies on the others within a second. Expiry
//! needs no job: a mute or a slow mode applies while `now < until`, compared at each
//! check.

pub mod audit;
pub mod block;
pub mod flood;
pub mod hook;
pub mod moderators;
pub mod mutes;
pub mod review;
pub mod slow_mode;

use std::{sync::Arc, time::Duration};

pub use self::flood::FloodSettings;
pub use crate::store::{
    moderation::{Action, AuditEntry, Grant, Mute, Restraint},
    review::{BlockAction, BlockRule, HoldRule, PatternKind, RuleSet, Verdict},
    room_rules::{FloodRule, SlowMode, StoredFloodRule},
};
use crate::{
    model::{Identity, Refusal, Role, channel::check_video_id},
    store::{Store, StoreError},
};

/// How often a cluster node re-reads grants, mutes, slow modes and flood rules from the
/// shared store: well under the one second in which a change made through another node
/// must apply here. Seven small reads per node per tick (a block rule set is recompiled
/// only when it changed).
pub const SYNC_EVERY: Duration = Duration::from_millis(250);

/// Longest user id (the JWT `sub` cap as well).
pub const MAX_SUB: usize = 128;

/// Longest reason, in characters.
pub const MAX_REASON: usize = 200;

/// The power a caller uses on a video: what the audit log records as `actor_role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// An admin role (JWT) or an API key.
    Admin,
    /// A room moderator of that video (stored grant or `mod` claim).
    Moderator,
}

impl Authority {
    /// The audit log's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::Admin => "admin",
            Authority::Moderator => "moderator",
        }
    }
}

/// Moderators, mutes, room rules and the audit log, shared by every transport.
pub struct Service {
    store: Arc<dyn Store>,
    grants: moderators::Grants,
    mutes: mutes::Mirror,
    shadow_bans: mutes::Mirror,
    blocks: block::Mirror,
    holds: review::Mirror,
    slow: slow_mode::Mirror,
    flood_rules: flood::Rules,
    flood: FloodSettings,
    counters: flood::Counters,
    /// The external classifier, when configured.
    hook: Option<hook::Hook>,
    /// Told of every mute (`user.muted`).
    webhooks: Arc<crate::webhooks::Service>,
    /// Serialises mirror updates and counts local ones: a store sync applies what it
    /// read only if no local write landed meanwhile (else it could drop a grant or a
    /// mute committed after its read; the next sync picks everything up).
    applied: std::sync::Mutex<u64>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("moderation::Service")
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Builds the service with the grants, mutes and room rules in force loaded from the
    /// store; `flood` is the default flood rule and its escalation memory.
    pub async fn new(
        store: Arc<dyn Store>,
        flood: FloodSettings,
        hook: Option<hook::Hook>,
        webhooks: Arc<crate::webhooks::Service>,
    ) -> Result<Service, String> {
        let svc = Service {
            store,
            grants: moderators::Grants::default(),
            mutes: mutes::Mirror::default(),
            shadow_bans: mutes::Mirror::default(),
            blocks: block::Mirror::default(),
            holds: review::Mirror::default(),
            slow: slow_mode::Mirror::default(),
            flood_rules: flood::Rules::default(),
            flood,
            counters: flood::Counters::default(),
            hook,
            webhooks,
            applied: std::sync::Mutex::new(0),
        };
        svc.sync().await.map_err(|e| e.to_string())?;
        Ok(svc)
    }

    /// What the external classifier decides for a comment about to be stored, as a
    /// block-rule action (`None`: allow, or no hook, or an admin's comment, which is
    /// never sent).
    pub async fn consult_hook(
        &self,
        req: &hook::HookRequest<'_>,
        role: Role,
    ) -> Option<BlockAction> {
        match &self.hook {
            Some(h) if role != Role::Admin => h.decide(req).await.as_action(),
            _ => None,
        }
    }

    /// How `who` may moderate `video`, if at all (see the module docs for the rule).
    pub fn authority(&self, who: &Identity, video: &str) -> Option<Authority> {
        if who.is_guest() {
            None
        } else if who.role == Role::Admin {
            Some(Authority::Admin)
        } else if who.moderates_by_claim(video) || self.grants.has(video, &who.sub) {
            Some(Authority::Moderator)
        } else {
            None
        }
    }

    /// [`Service::authority`], refusing 403 `not_moderator` when there is none.
    pub fn require(&self, who: &Identity, video: &str) -> Result<Authority, Refusal> {
        self.authority(who, video)
            .ok_or_else(|| not_moderator(Some(video)))
    }

    /// For reads over many videos: admins may leave `video` out (everything); anyone
    /// else must name a video they moderate.
    pub fn require_scope(&self, who: &Identity, video: Option<&str>) -> Result<Authority, Refusal> {
        match video {
            Some(v) => {
                check_video_id(v)?;
                self.require(who, v)
            }
            None if !who.is_guest() && who.role == Role::Admin => Ok(Authority::Admin),
            None => Err(not_moderator(None)),
        }
    }

    /// Re-reads grants, mutes, shadow bans, slow modes, flood rules, block rules and
    /// hold rules in force from the store
    /// (startup; every [`SYNC_EVERY`] on a cluster node).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let before = *self.lock();
        let now = crate::model::time::now_millis();
        let grants = self.store.list_moderators(None).await?;
        let mutes = self.store.list_mutes(Restraint::Mute, now).await?;
        let shadow = self.store.list_mutes(Restraint::ShadowBan, now).await?;
        let slow = self.store.list_slow_modes(now).await?;
        let rules = self.store.list_flood_rules().await?;
        let blocks = self.store.list_block_rules().await?;
        let holds = self.store.list_hold_rules().await?;
        let applied = self.lock();
        if *applied == before {
            self.grants.replace(grants);
            self.mutes.replace(mutes);
            self.shadow_bans.replace(shadow);
            self.slow.replace(slow);
            self.flood_rules.replace(rules);
            self.blocks.replace(blocks);
            self.holds.replace(holds);
        }
        Ok(())
    }

    /// Applies a local change to the mirrors, after its commit (see `applied`).
    fn apply_local(&self, f: impl FnOnce(&Service)) {
        let mut applied = self.lock();
        *applied += 1;
        f(self);
    }

    /// The mirror lock; a panic elsewhere never leaves the counter unusable.
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// 403 `not_moderator`: the caller does not moderate the video (or, with no video, is
/// not an admin).
pub fn not_moderator(video: Option<&str>) -> Refusal {
    Refusal::forbidden(
        "not_moderator",
        match video {
            Some(v) => format!("you are not a moderator of video {v}"),
            None => "only admins act on every video; name a video you moderate".to_string(),
        },
    )
}

/// Validates a user id: 1 to [`MAX_SUB`] bytes, no control characters (422
/// `invalid_user`).
pub fn check_sub(sub: &str) -> Result<(), Refusal> {
    if sub.is_empty() || sub.len() > MAX_SUB || sub.chars().any(char::is_control) {
        return Err(Refusal::invalid(
            "invalid_user",
            format!("user ids are 1 to {MAX_SUB} bytes without control characters"),
        ));
    }
    Ok(())
}

/// Normalises a reason: trimmed, empty is none, at most [`MAX_REASON`] characters and
/// no control characters (422 `invalid_reason`).
pub fn check_reason(reason: Option<&str>) -> Result<Option<String>, Refusal> {
    let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if r.chars().count() > MAX_REASON || r.chars().any(char::is_control) {
        return Err(Refusal::invalid(
            "invalid_reason",
            format!("a reason is at most {MAX_REASON} characters, without control characters"),
        ));
    }
    Ok(Some(r.to_string()))
}

/// A store failure as the usual 503.
fn unavailable(what: &'static str) -> impl Fn(StoreError) -> Refusal {
    move |e| {
        tracing::error!(error = %e, what, "moderation store write failed");
        Refusal::unavailable(
            "store_unavailable",
            format!("the {what} was not stored; retry"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subs_and_reasons_are_checked() {
        assert!(check_sub("").is_err());
        assert!(check_sub(&"x".repeat(129)).is_err());
        assert!(check_sub("a\nb").is_err());
        assert!(check_sub(&"x".repeat(128)).is_ok());
        assert_eq!(check_reason(None), Ok(None));
        assert_eq!(check_reason(Some("  ")), Ok(None));
        assert_eq!(check_reason(Some(" spam ")), Ok(Some("spam".into())));
        assert_eq!(
            check_reason(Some(&"é".repeat(200))).map(|r| r.map(|r| r.chars().count())),
            Ok(Some(200))
        );
        assert_eq!(
            check_reason(Some(&"é".repeat(201))).unwrap_err().code,
            "invalid_reason"
        );
        assert!(check_reason(Some("a\u{7}b")).is_err());
    }
}
