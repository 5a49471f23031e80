//! `/api/videos/{id}/moderators` and `/api/moderation/*`: room moderators, scoped mutes
//! and the audit log. Thin: every rule (who may, in which scope, what is checked first)
//! is in [`crate::moderation`]; this module maps bodies and replies.
//!
//! Refusals: 401 without credentials; 403 `forbidden` for the admin-only endpoints
//! (granting and removing moderators), 403 `not_moderator` for a caller acting on a
//! video they do not moderate (or on every video without being an admin); 404
//! `unknown_video`, `unknown_moderator`, `unknown_mute`; 422 `invalid_user`,
//! `invalid_video`, `invalid_seconds`, `invalid_reason`, `invalid_limit`.

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
    auth::{Admin, Authed},
    error::ApiError,
    videos::poster,
};
use crate::{
    moderation::{AuditEntry, Grant, Mute, mutes::MuteRequest},
    state::State,
};

/// Moderator, mute and audit endpoints.
pub struct ModerationApi;

/// A stored room-moderator grant.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ModeratorInfo {
    pub video: String,
    pub sub: String,
    /// The admin who granted it (`system` for API keys).
    pub by: String,
    /// Unix milliseconds.
    pub granted_at: u64,
}

impl Example for ModeratorInfo {
    fn example() -> Self {
        ModeratorInfo {
            video: example_video(),
            sub: example_sub(),
            by: "root".into(),
            granted_at: 1_767_225_600_000,
        }
    }
}

impl From<Grant> for ModeratorInfo {
    fn from(g: Grant) -> Self {
        ModeratorInfo {
            video: g.video,
            sub: g.sub,
            by: g.by,
            granted_at: g.at,
        }
    }
}

/// Reply of `PUT /api/videos/{id}/moderators/{sub}`.
#[derive(ApiResponse)]
pub enum PutModeratorReply {
    /// Granted; the user moderates the video on every node within a second.
    #[oai(status = 201)]
    Created(Json<ModeratorInfo>),
    /// Already granted: the earlier grant, unchanged (not audited again).
    #[oai(status = 200)]
    Already(Json<ModeratorInfo>),
}

/// Reply of the DELETE endpoints.
#[derive(ApiResponse)]
pub enum Removed {
    /// Done (and recorded in the audit log).
    #[oai(status = 204)]
    Removed,
}

/// Body of `PUT /api/moderation/mutes`.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PutMute {
    /// The user to mute (1 to 128 bytes).
    pub sub: String,
    /// The video the mute applies to; `null` or absent: everywhere (admins only).
    #[oai(nullable)]
    pub video: Option<String>,
    /// How long, 1 to 31536000 (one year).
    #[oai(validator(minimum(value = "1"), maximum(value = "31536000")))]
    pub seconds: u64,
    /// Why (at most 200 characters); shown to the user when a post is refused.
    #[oai(nullable)]
    pub reason: Option<String>,
}

impl Example for PutMute {
    fn example() -> Self {
        PutMute {
            sub: example_sub(),
            video: Some(example_video()),
            seconds: 600,
            reason: Some("flooding the room".into()),
        }
    }
}

/// A mute in force.
#[derive(Debug, Object)]
#[oai(example)]
pub struct MuteInfo {
    pub sub: String,
    /// `null`: everywhere.
    #[oai(nullable)]
    pub video: Option<String>,
    /// Unix milliseconds; the mute stops applying then (nothing needs to lift it).
    pub until: u64,
    #[oai(nullable)]
    pub reason: Option<String>,
    /// Who muted (their sub; `system` for API keys and automatic mutes).
    pub by: String,
    /// Unix milliseconds.
    pub created_at: u64,
}

impl Example for MuteInfo {
    fn example() -> Self {
        MuteInfo {
            sub: example_sub(),
            video: Some(example_video()),
            until: 1_767_226_200_000,
            reason: Some("flooding the room".into()),
            by: "mod-ann".into(),
            created_at: 1_767_225_600_000,
        }
    }
}

impl From<Mute> for MuteInfo {
    fn from(m: Mute) -> Self {
        MuteInfo {
            sub: m.sub,
            video: m.video,
            until: m.until,
            reason: m.reason,
            by: m.by,
            created_at: m.created_at,
        }
    }
}

/// One audit log entry.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AuditItem {
    /// Increasing; page with `before_id`.
    pub id: i64,
    /// Unix milliseconds.
    pub at: u64,
    /// The actor's sub (`system` for API keys and for what the server did by itself).
    pub actor: String,
    /// `admin` or `moderator`: the power the actor used; `system` for an automatic
    /// mute (a flood rule tripped).
    pub actor_role: String,
    /// `moderator_added`, `moderator_removed`, `comment_deleted`, `user_muted`,
    /// `user_unmuted`, `auto_muted`, `slow_mode_set`, `slow_mode_cleared`,
    /// `flood_rule_set`, `flood_rule_cleared`.
    pub action: String,
    /// The video concerned; `null` for an action everywhere (a global mute).
    #[oai(nullable)]
    pub video: Option<String>,
    /// A user's sub, a comment id (as a string) for `comment_deleted`, or the video id
    /// for slow-mode and flood-rule changes.
    pub target: String,
    #[oai(nullable)]
    pub reason: Option<String>,
    /// More about the action: a deleted comment's `author`, `text`, `time`,
    /// `created_at`; a mute's `seconds` and `until` (an automatic one's also `offence`,
    /// `max_comments`, `window_s`); a slow mode's `seconds`, `roles`, `until`; a flood
    /// rule's `max_comments`, `window_s`, `mute_s`, `escalation`.
    pub detail: serde_json::Value,
}

impl Example for AuditItem {
    fn example() -> Self {
        AuditItem {
            id: 42,
            at: 1_767_225_600_000,
            actor: "mod-ann".into(),
            actor_role: "moderator".into(),
            action: "user_muted".into(),
            video: Some(example_video()),
            target: example_sub(),
            reason: Some("flooding the room".into()),
            detail: serde_json::json!({"seconds": 600, "until": 1_767_226_200_000u64}),
        }
    }
}

impl From<AuditEntry> for AuditItem {
    fn from(e: AuditEntry) -> Self {
        let detail = serde_json::from_str(&e.entry.detail)
            .unwrap_or(serde_json::Value::String(e.entry.detail.clone()));
        AuditItem {
            id: e.id,
            at: e.entry.at,
            actor: e.entry.actor,
            actor_role: e.entry.actor_role,
            action: e.entry.action.as_str().to_string(),
            video: e.entry.video,
            target: e.entry.target,
            reason: e.entry.reason,
            detail,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Object)]
pub struct AuditPage {
    pub items: Vec<AuditItem>,
    /// Pass as `before_id` for the next (older) page; `null` on the last page.
    #[oai(nullable)]
    pub next_before_id: Option<i64>,
}

/// The example video id shown in Swagger UI.
pub(super) fn example_video() -> String {
    "bbb-2008".into()
}

/// The example user id shown in Swagger UI.
pub(super) fn example_sub() -> String {
    "u-1029".into()
}

#[OpenApi(tag = "ApiTags::Moderation")]
impl ModerationApi {
    /// Make a user a moderator of a video (admin).
    ///
    /// The video must be in the catalog (404 `unknown_video`). A moderator may delete
    /// any comment of the video, mute and unmute users in it, and read its mutes, its
    /// moderators and its audit log. A JWT may also carry `mod: ["video-id", ...]`: a
    /// user moderates a video when this list (the store) OR their token names it.
    #[oai(path = "/videos/:id/moderators/:sub", method = "put")]
    async fn put_moderator(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        #[oai(example = "example_video")] id: Path<String>,
        #[oai(example = "example_sub")] sub: Path<String>,
    ) -> Result<PutModeratorReply, ApiError> {
        let (grant, created) = state
            .moderation
            .add_moderator(&state.directory, &poster(&auth.0), &id, &sub)
            .await?;
        Ok(if created {
            PutModeratorReply::Created(Json(grant.into()))
        } else {
            PutModeratorReply::Already(Json(grant.into()))
        })
    }

    /// Remove a stored moderator of a video (admin).
    ///
    /// 404 `unknown_moderator` when the store has no such grant. A grant carried by a
    /// token's `mod` claim cannot be removed here: it ends with the token.
    #[oai(path = "/videos/:id/moderators/:sub", method = "delete")]
    async fn delete_moderator(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        #[oai(example = "example_video")] id: Path<String>,
        #[oai(example = "example_sub")] sub: Path<String>,
    ) -> Result<Removed, ApiError> {
        state
            .moderation
            .remove_moderator(&poster(&auth.0), &id, &sub)
            .await?;
        Ok(Removed::Removed)
    }

    /// The stored moderators of a video (admins, and the video's moderators).
    #[oai(path = "/videos/:id/moderators", method = "get")]
    async fn list_moderators(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
    ) -> Result<Json<Vec<ModeratorInfo>>, ApiError> {
        let grants = state
            .moderation
            .moderators(&state.directory, &poster(&auth.0), &id)
            .await?;
        Ok(Json(grants.into_iter().map(Into::into).collect()))
    }

    /// Mute a user in one video or everywhere, for a time, with a reason.
    ///
    /// Admins mute in any scope; a video's moderators only in that video (`video: null`,
    /// everywhere, is admin-only). Sets or replaces the mute of that user in that scope.
    /// While it lasts, the user's posts there fail with 403 `muted`, the message saying
    /// until when and why; it applies on every node within a second and stops applying
    /// at `until` by itself.
    #[oai(path = "/moderation/mutes", method = "put")]
    async fn put_mute(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        body: Json<PutMute>,
    ) -> Result<Json<MuteInfo>, ApiError> {
        let b = body.0;
        let m = state
            .moderation
            .mute(
                &state.directory,
                &poster(&auth.0),
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

    /// The mutes in force: all (admins, without `video`) or one video's (admins and its
    /// moderators). Expired mutes are never listed.
    #[oai(path = "/moderation/mutes", method = "get")]
    async fn list_mutes(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        /// Only this video's mutes (required unless the caller is an admin).
        video: Query<Option<String>>,
    ) -> Result<Json<Vec<MuteInfo>>, ApiError> {
        let mutes = state
            .moderation
            .mutes(&poster(&auth.0), video.0.as_deref())
            .await?;
        Ok(Json(mutes.into_iter().map(Into::into).collect()))
    }

    /// Lift a user's mute in one video (`?video=`) or everywhere (no `video`: admins).
    ///
    /// 404 `unknown_mute` when no mute is in force in that scope.
    #[oai(path = "/moderation/mutes/:sub", method = "delete")]
    async fn delete_mute(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_sub")] sub: Path<String>,
        /// The mute's video; absent: the global mute.
        video: Query<Option<String>>,
        /// Why (at most 200 characters), for the audit log.
        reason: Query<Option<String>>,
    ) -> Result<Removed, ApiError> {
        state
            .moderation
            .unmute(
                &poster(&auth.0),
                &sub,
                video.0.as_deref(),
                reason.0.as_deref(),
            )
            .await?;
        Ok(Removed::Removed)
    }

    /// The audit log, newest first: every moderator added or removed, comment deleted by
    /// a moderator or an admin, user muted (by hand or automatically) or unmuted, slow
    /// mode and flood rule set or cleared, with who, when and why.
    ///
    /// Admins read everything or one video's (`video`); moderators must name a video
    /// they moderate. Page with `before_id` = the previous page's `next_before_id`.
    #[oai(path = "/moderation/audit", method = "get")]
    async fn audit(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        /// Only this video's entries (required unless the caller is an admin).
        video: Query<Option<String>>,
        /// Only entries older than this id.
        before_id: Query<Option<i64>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<AuditPage>, ApiError> {
        let page = state
            .moderation
            .audit(&poster(&auth.0), video.0.as_deref(), before_id.0, limit.0)
            .await?;
        Ok(Json(AuditPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next_before_id: page.next_before_id,
        }))
    }
}
