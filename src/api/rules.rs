//! Runtime rules over comments: block rules (`/api/moderation/rules`), shadow bans
//! (`/api/moderation/shadow-bans`) and hold rules (`/api/videos/{id}/hold`). Thin: every
//! rule is in [`crate::moderation`] (`block`, `mutes`, `review`).
//!
//! Refusals: 401 without credentials; 403 `not_moderator` outside the caller's videos
//! (and for the global rule set unless an admin); 404 `unknown_video`, `unknown_rules`,
//! `unknown_shadow_ban`, `unknown_hold_rule`; 413 `too_many_rules`; 422
//! `invalid_pattern`, `invalid_roles`, `invalid_user`, `invalid_video`,
//! `invalid_seconds`, `invalid_reason`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::Example,
};

use super::{
    ApiTags,
    auth::Authed,
    error::ApiError,
    moderation::{MuteInfo, Removed, example_sub, example_video},
    videos::poster,
};
use crate::{
    model::Role,
    moderation::{
        BlockAction, BlockRule, HoldRule, PatternKind, Restraint, RuleSet, mutes::MuteRequest,
    },
    state::State,
};

/// Block rule, shadow ban and hold rule endpoints.
pub struct RulesApi;

/// One block rule.
#[derive(Debug, Clone, Object)]
pub struct RuleItem {
    /// `word`: found anywhere in the text, case and width folded (`ＳＰＡＭ` = `spam`);
    /// `regex`: a regular expression (Rust `regex` syntax: no look-around, no
    /// back-references; linear time), case-insensitive, over the folded text.
    pub kind: PatternKind,
    /// 1 to 200 characters.
    pub pattern: String,
    /// `refuse`: 422 `blocked`, nothing stored; `hold`: stored held for review;
    /// `shadow`: stored shadowed (its author sees it, nobody else does). When several
    /// rules match, refuse beats hold beats shadow.
    pub action: BlockAction,
}

impl From<RuleItem> for BlockRule {
    fn from(r: RuleItem) -> Self {
        BlockRule {
            kind: r.kind,
            pattern: r.pattern,
            action: r.action,
        }
    }
}

impl From<BlockRule> for RuleItem {
    fn from(r: BlockRule) -> Self {
        RuleItem {
            kind: r.kind,
            pattern: r.pattern,
            action: r.action,
        }
    }
}

/// Body of `PUT /api/moderation/rules`: replaces the scope's whole set.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PutRules {
    /// The video whose own rules these are; `null` or absent: the global set, which
    /// applies in every video (admins only).
    #[oai(nullable)]
    pub video: Option<String>,
    /// At most 1000 (413 `too_many_rules`). An empty list keeps the scope set but empty
    /// (the configured `block_words` never come back).
    pub rules: Vec<RuleItem>,
    /// Why (at most 200 characters), for the audit log.
    #[oai(nullable)]
    pub reason: Option<String>,
}

impl Example for PutRules {
    fn example() -> Self {
        PutRules {
            video: Some(example_video()),
            rules: vec![
                RuleItem {
                    kind: PatternKind::Word,
                    pattern: "spoiler".into(),
                    action: BlockAction::Refuse,
                },
                RuleItem {
                    kind: PatternKind::Regex,
                    pattern: r"buy\s+now|t\.me/".into(),
                    action: BlockAction::Hold,
                },
            ],
            reason: Some("premiere night".into()),
        }
    }
}

/// A scope's block rules.
#[derive(Debug, Object)]
pub struct RulesInfo {
    /// `null`: the global set.
    #[oai(nullable)]
    pub video: Option<String>,
    pub rules: Vec<RuleItem>,
    /// Who set it (`config` for the set seeded from `block_words`; empty when never set).
    pub set_by: String,
    /// Unix milliseconds (0 when never set).
    pub set_at: u64,
}

impl From<RuleSet> for RulesInfo {
    fn from(s: RuleSet) -> Self {
        RulesInfo {
            video: s.video,
            rules: s.rules.into_iter().map(Into::into).collect(),
            set_by: s.by,
            set_at: s.set_at,
        }
    }
}

/// Body of `PUT /api/moderation/shadow-bans`.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PutShadowBan {
    /// The user (1 to 128 bytes).
    pub sub: String,
    /// The video it applies to; `null` or absent: everywhere (admins only).
    #[oai(nullable)]
    pub video: Option<String>,
    /// How long, 1 to 31536000 (one year).
    #[oai(validator(minimum(value = "1"), maximum(value = "31536000")))]
    pub seconds: u64,
    /// Why (at most 200 characters), for the audit log; never shown to the user.
    #[oai(nullable)]
    pub reason: Option<String>,
}

impl Example for PutShadowBan {
    fn example() -> Self {
        PutShadowBan {
            sub: example_sub(),
            video: Some(example_video()),
            seconds: 86_400,
            reason: Some("spam links".into()),
        }
    }
}

/// Body of `PUT /api/videos/{id}/hold`.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PutHold {
    /// The roles whose comments wait for review: some of `free`, `member` (default
    /// `["free"]`). Admins and the video's moderators are never held.
    pub roles: Option<Vec<Role>>,
    /// Why (at most 200 characters), for the audit log.
    #[oai(nullable)]
    pub reason: Option<String>,
}

impl Example for PutHold {
    fn example() -> Self {
        PutHold {
            roles: Some(vec![Role::Free]),
            reason: Some("members premiere".into()),
        }
    }
}

/// A video's hold rule.
#[derive(Debug, Object)]
pub struct HoldInfo {
    pub video: String,
    pub roles: Vec<Role>,
    pub set_by: String,
    /// Unix milliseconds.
    pub set_at: u64,
}

impl From<HoldRule> for HoldInfo {
    fn from(r: HoldRule) -> Self {
        HoldInfo {
            video: r.video,
            roles: r.roles,
            set_by: r.by,
            set_at: r.set_at,
        }
    }
}

/// Reply of `GET /api/videos/{id}/hold`.
#[derive(ApiResponse)]
pub enum HoldReply {
    /// The rule in force.
    #[oai(status = 200)]
    Set(Json<HoldInfo>),
    /// The video holds nothing.
    #[oai(status = 204)]
    None,
}

#[OpenApi(tag = "ApiTags::Moderation")]
impl RulesApi {
    /// The block rules of one video (`?video=`: admins and its moderators) or the global
    /// set (no `video`: admins). A scope never set reads as an empty set.
    #[oai(path = "/moderation/rules", method = "get")]
    async fn get_rules(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        /// The video; absent: the global set.
        video: Query<Option<String>>,
    ) -> Result<Json<RulesInfo>, ApiError> {
        let set = state
            .moderation
            .block_rules(&poster(&auth.0), video.0.as_deref())?;
        Ok(Json(set.into()))
    }

    /// Replace the block rules of one video (admins and its moderators) or the global
    /// set (admins). Every pattern is checked first (422 `invalid_pattern` names the
    /// rule); nothing is stored unless all are valid. Applies on every node within a
    /// second. Comments already stored are not re-screened.
    #[oai(path = "/moderation/rules", method = "put")]
    async fn put_rules(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        body: Json<PutRules>,
    ) -> Result<Json<RulesInfo>, ApiError> {
        let b = body.0;
        let set = state
            .moderation
            .set_block_rules(
                &state.directory,
                &poster(&auth.0),
                b.video.as_deref(),
                b.rules.into_iter().map(Into::into).collect(),
                b.reason.as_deref(),
            )
            .await?;
        Ok(Json(set.into()))
    }

    /// Remove the block rules of one video, or the global set (no `video`: admins).
    /// 404 `unknown_rules` when the scope has none.
    #[oai(path = "/moderation/rules", method = "delete")]
    async fn delete_rules(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        /// The video; absent: the global set.
        video: Query<Option<String>>,
        /// Why (at most 200 characters), for the audit log.
        reason: Query<Option<String>>,
    ) -> Result<Removed, ApiError> {
        state
            .moderation
            .clear_block_rules(&poster(&auth.0), video.0.as_deref(), reason.0.as_deref())
            .await?;
        Ok(Removed::Removed)
    }

    /// Shadow-ban a user in one video or everywhere, for a time.
    ///
    /// Their comments are accepted and acknowledged as usual and reach only their own
    /// sockets and history reads; nobody else sees them (live, history, DPlayer, XML,
    /// counts, heatmaps), except the video's moderators and admins, who see them marked
    /// `state: shadow`. Applies to comments posted while it lasts.
    #[oai(path = "/moderation/shadow-bans", method = "put")]
    async fn put_shadow_ban(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        body: Json<PutShadowBan>,
    ) -> Result<Json<MuteInfo>, ApiError> {
        let b = body.0;
        let m = state
            .moderation
            .restrain(
                &state.directory,
                &poster(&auth.0),
                Restraint::ShadowBan,
                MuteRequest {
                    sub: b.sub,
                    video: b.video,
                    seconds: b.seconds,
                    reason: b.reason,
                },
            )
            .await?;
        Ok(Json(m.into()))
    }

    /// The shadow bans in force: all (admins, without `video`) or one video's.
    #[oai(path = "/moderation/shadow-bans", method = "get")]
    async fn list_shadow_bans(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        /// Only this video's (required unless the caller is an admin).
        video: Query<Option<String>>,
    ) -> Result<Json<Vec<MuteInfo>>, ApiError> {
        let bans = state
            .moderation
            .restraints(&poster(&auth.0), Restraint::ShadowBan, video.0.as_deref())
            .await?;
        Ok(Json(bans.into_iter().map(Into::into).collect()))
    }

    /// Lift a shadow ban in one video (`?video=`) or everywhere (no `video`: admins).
    /// 404 `unknown_shadow_ban` when none is in force there. Comments posted during the
    /// ban stay shadowed.
    #[oai(path = "/moderation/shadow-bans/:sub", method = "delete")]
    async fn delete_shadow_ban(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_sub")] sub: Path<String>,
        /// The ban's video; absent: the global one.
        video: Query<Option<String>>,
        /// Why (at most 200 characters), for the audit log.
        reason: Query<Option<String>>,
    ) -> Result<Removed, ApiError> {
        state
            .moderation
            .unrestrain(
                &poster(&auth.0),
                Restraint::ShadowBan,
                &sub,
                video.0.as_deref(),
                reason.0.as_deref(),
            )
            .await?;
        Ok(Removed::Removed)
    }

    /// Hold a video's comments by posters of some roles for review (admins and its
    /// moderators). Held comments are stored pending: their author sees them marked
    /// `state: held` (reply and history), nobody else but moderators and admins.
    #[oai(path = "/videos/:id/hold", method = "put")]
    async fn put_hold(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
        body: Json<PutHold>,
    ) -> Result<Json<HoldInfo>, ApiError> {
        let b = body.0;
        let rule = state
            .moderation
            .set_hold_rule(
                &state.directory,
                &poster(&auth.0),
                &id,
                b.roles,
                b.reason.as_deref(),
            )
            .await?;
        Ok(Json(rule.into()))
    }

    /// A video's hold rule (admins and its moderators); 204 when it holds nothing.
    #[oai(path = "/videos/:id/hold", method = "get")]
    async fn get_hold(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
    ) -> Result<HoldReply, ApiError> {
        Ok(match state.moderation.hold_rule(&poster(&auth.0), &id)? {
            Some(r) => HoldReply::Set(Json(r.into())),
            None => HoldReply::None,
        })
    }

    /// Stop holding a video's comments (comments already held stay in the queue). 404
    /// `unknown_hold_rule` when it held none.
    #[oai(path = "/videos/:id/hold", method = "delete")]
    async fn delete_hold(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
        /// Why (at most 200 characters), for the audit log.
        reason: Query<Option<String>>,
    ) -> Result<Removed, ApiError> {
        state
            .moderation
            .clear_hold_rule(&poster(&auth.0), &id, reason.0.as_deref())
            .await?;
        Ok(Removed::Removed)
    }
}
