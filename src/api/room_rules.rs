//! `/api/videos/{id}/slow-mode` and `/api/videos/{id}/flood-rule`: per-video posting
//! rules set at runtime. Thin: the rules (who may, what is checked first, how they apply
//! to posts) are in [`crate::moderation::slow_mode`] and [`crate::moderation::flood`].
//!
//! Refusals: 401 without credentials; 403 `not_moderator` for a caller who does not
//! moderate the video, 403 `member_only` (reading the slow mode of a member video); 404
//! `unknown_video`, `no_slow_mode`, `no_flood_rule`; 422 `invalid_video`,
//! `invalid_seconds`, `invalid_roles`, `invalid_until`, `invalid_max_comments`,
//! `invalid_window`, `invalid_mute`, `invalid_escalation`. Values are checked by the
//! server (422 with a code), not by the schema, so out-of-range numbers are not 400.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Path, payload::Json, types::Example};

use super::{
    ApiTags,
    auth::{Authed, MaybeAuthed},
    error::ApiError,
    moderation::{Removed, example_video},
    videos::poster,
};
use crate::{
    model::{Identity, Refusal, Role},
    moderation::{
        FloodRule, SlowMode, StoredFloodRule, flood::InForce, slow_mode::SlowModeRequest,
    },
    state::State,
};

/// Slow-mode and flood-rule endpoints.
pub struct RoomRulesApi;

/// Body of `PUT /api/videos/{id}/slow-mode`.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PutSlowMode {
    /// Seconds a slowed poster waits between two comments in this video, 1 to 3600. It
    /// replaces the role's cooldown there when longer: the wait is max(role cooldown,
    /// seconds).
    pub seconds: u32,
    /// The roles slowed: `guest`, `free`, `member` (admins are never slowed; `admin` is
    /// 422 `invalid_roles`). Absent or `null`: `["free", "member"]`.
    #[oai(nullable)]
    pub roles: Option<Vec<String>>,
    /// When slow mode ends by itself, unix milliseconds (in the future, at most a year
    /// ahead). Absent or `null`: until cleared with `DELETE`.
    #[oai(nullable)]
    pub until: Option<u64>,
}

impl Example for PutSlowMode {
    fn example() -> Self {
        PutSlowMode {
            seconds: 30,
            roles: Some(vec!["free".into(), "member".into()]),
            until: Some(1_767_229_200_000),
        }
    }
}

/// The slow mode in force in a video.
#[derive(Debug, Object)]
#[oai(example)]
pub struct SlowModeInfo {
    pub video: String,
    /// Seconds between two comments of a slowed poster.
    pub seconds: u32,
    /// The roles slowed, in role order.
    pub roles: Vec<Role>,
    /// Unix milliseconds when it ends by itself; `null`: until cleared.
    #[oai(nullable)]
    pub until: Option<u64>,
    /// Who set it (their sub; `system` for API keys).
    pub by: String,
    /// Unix milliseconds.
    pub set_at: u64,
}

impl Example for SlowModeInfo {
    fn example() -> Self {
        SlowModeInfo {
            video: example_video(),
            seconds: 30,
            roles: vec![Role::Free, Role::Member],
            until: Some(1_767_229_200_000),
            by: "mod-ann".into(),
            set_at: 1_767_225_600_000,
        }
    }
}

impl From<&SlowMode> for SlowModeInfo {
    fn from(s: &SlowMode) -> Self {
        SlowModeInfo {
            video: s.video.clone(),
            seconds: s.seconds,
            roles: s.roles.clone(),
            until: s.until,
            by: s.by.clone(),
            set_at: s.set_at,
        }
    }
}

/// Body of `PUT /api/videos/{id}/flood-rule`.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PutFloodRule {
    /// A user who posts more than this many comments in the video within `window_s` is
    /// muted there; 2 to 1000.
    pub max_comments: u32,
    /// The sliding window, 1 to 3600 seconds.
    pub window_s: u32,
    /// The first offence's mute, 1 to 86400 seconds.
    pub mute_s: u32,
    /// The mutes of the 2nd, 3rd, … offence within `[moderation] flood_offence_window_s`
    /// (default a day), in seconds; the last one repeats. At most 10 values of 1 to
    /// 31536000. Absent: every offence mutes for `mute_s`.
    #[oai(default)]
    pub escalation: Vec<u32>,
}

impl Example for PutFloodRule {
    fn example() -> Self {
        PutFloodRule {
            max_comments: 10,
            window_s: 20,
            mute_s: 300,
            escalation: vec![1800, 86_400],
        }
    }
}

/// The flood rule in force in a video.
#[derive(Debug, Object)]
#[oai(example)]
pub struct FloodRuleInfo {
    pub video: String,
    pub max_comments: u32,
    pub window_s: u32,
    pub mute_s: u32,
    pub escalation: Vec<u32>,
    /// `video`: the video's own rule; `default`: the configured one (`[moderation]`).
    pub source: String,
    /// Who set the video's own rule; `null` for the default.
    #[oai(nullable)]
    pub by: Option<String>,
    /// Unix milliseconds; `null` for the default.
    #[oai(nullable)]
    pub set_at: Option<u64>,
}

impl Example for FloodRuleInfo {
    fn example() -> Self {
        FloodRuleInfo {
            video: example_video(),
            max_comments: 5,
            window_s: 10,
            mute_s: 600,
            escalation: vec![3600],
            source: "video".into(),
            by: Some("mod-ann".into()),
            set_at: Some(1_767_225_600_000),
        }
    }
}

impl FloodRuleInfo {
    fn of(video: &str, r: &FloodRule, own: Option<&StoredFloodRule>) -> Self {
        FloodRuleInfo {
            video: video.to_string(),
            max_comments: r.max_comments,
            window_s: r.window_s,
            mute_s: r.mute_s,
            escalation: r.escalation.clone(),
            source: if own.is_some() { "video" } else { "default" }.into(),
            by: own.map(|o| o.by.clone()),
            set_at: own.map(|o| o.set_at),
        }
    }
}

/// Parses the roles of a slow mode (422 `invalid_roles` for anything else, admin
/// included).
fn parse_roles(roles: Option<Vec<String>>) -> Result<Option<Vec<Role>>, Refusal> {
    let Some(roles) = roles else {
        return Ok(None);
    };
    roles
        .iter()
        .map(|r| match r.as_str() {
            "guest" => Ok(Role::Guest),
            "free" => Ok(Role::Free),
            "member" => Ok(Role::Member),
            _ => Err(Refusal::invalid(
                "invalid_roles",
                "roles is a non-empty list of guest, free and member (admins are never slowed)",
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A guest's identity for reads without credentials.
fn reader(auth: &MaybeAuthed) -> Arc<Identity> {
    match &auth.0 {
        Some(c) => poster(c),
        None => Arc::new(Identity::guest(0)),
    }
}

#[OpenApi(tag = "ApiTags::Moderation")]
impl RoomRulesApi {
    /// Put a video in slow mode (admins and the video's moderators).
    ///
    /// Until it is cleared or `until` passes, a poster of one of `roles` waits
    /// max(their role's cooldown, `seconds`) between two comments in this video (other
    /// videos keep the role cooldowns); admins are never slowed. A post too soon is the
    /// usual 429 `cooldown` with `Retry-After` (WebSocket: `retry_after_ms`). Replies to
    /// accepted posts carry `slow_mode_s`, the interval, so a page can show it. Replaces
    /// an earlier slow mode of the video; audited as `slow_mode_set`; applies on every
    /// node within a second.
    #[oai(path = "/videos/:id/slow-mode", method = "put")]
    async fn put_slow_mode(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
        body: Json<PutSlowMode>,
    ) -> Result<Json<SlowModeInfo>, ApiError> {
        let b = body.0;
        let req = SlowModeRequest {
            seconds: b.seconds,
            roles: parse_roles(b.roles)?,
            until: b.until,
        };
        let s = state
            .moderation
            .set_slow_mode(&state.directory, &poster(&auth.0), &id, req)
            .await?;
        Ok(Json((&s).into()))
    }

    /// The slow mode in force in a video (anyone who may read the video).
    ///
    /// 404 `no_slow_mode` when the video is not in slow mode (or it ended).
    #[oai(path = "/videos/:id/slow-mode", method = "get")]
    async fn get_slow_mode(
        &self,
        state: Data<&Arc<State>>,
        auth: MaybeAuthed,
        #[oai(example = "example_video")] id: Path<String>,
    ) -> Result<Json<SlowModeInfo>, ApiError> {
        let s = state
            .moderation
            .slow_mode(&state.directory, &reader(&auth), &id)?;
        Ok(Json(s.as_ref().into()))
    }

    /// End a video's slow mode (admins and the video's moderators).
    ///
    /// The role cooldowns apply again at once. 404 `no_slow_mode` when none is in
    /// force. Audited as `slow_mode_cleared`.
    #[oai(path = "/videos/:id/slow-mode", method = "delete")]
    async fn delete_slow_mode(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
    ) -> Result<Removed, ApiError> {
        state
            .moderation
            .clear_slow_mode(&poster(&auth.0), &id)
            .await?;
        Ok(Removed::Removed)
    }

    /// Set a video's own flood rule (admins and the video's moderators).
    ///
    /// A user (not an admin) whose accepted comments in this video exceed
    /// `max_comments` within `window_s` is muted there: the comment that crosses the
    /// limit is refused with 403 `flood_muted` and not stored, the mute is listed under
    /// `GET /api/moderation/mutes` (by `system`, with the reason) and audited as
    /// `auto_muted` by actor `system`. Later offences within the offence window mute
    /// for each `escalation` value in turn. Comments are counted per node. Replaces the
    /// configured default (`[moderation] flood_*`) in this video; audited as
    /// `flood_rule_set`.
    #[oai(path = "/videos/:id/flood-rule", method = "put")]
    async fn put_flood_rule(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
        body: Json<PutFloodRule>,
    ) -> Result<Json<FloodRuleInfo>, ApiError> {
        let b = body.0;
        let rule = FloodRule {
            max_comments: b.max_comments,
            window_s: b.window_s,
            mute_s: b.mute_s,
            escalation: b.escalation,
        };
        let r = state
            .moderation
            .set_flood_rule(&state.directory, &poster(&auth.0), &id, rule)
            .await?;
        Ok(Json(FloodRuleInfo::of(&id, &r.rule, Some(&r))))
    }

    /// The flood rule in force in a video (admins and the video's moderators): its own
    /// (`source: video`) or the configured default (`source: default`).
    ///
    /// 404 `no_flood_rule` when it has none and the default is off (`flood_max = 0`).
    #[oai(path = "/videos/:id/flood-rule", method = "get")]
    async fn get_flood_rule(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
    ) -> Result<Json<FloodRuleInfo>, ApiError> {
        let got = state
            .moderation
            .flood_rule(&state.directory, &poster(&auth.0), &id)?;
        Ok(Json(match &got {
            InForce::Own(r) => FloodRuleInfo::of(&id, &r.rule, Some(r)),
            InForce::Default(r) => FloodRuleInfo::of(&id, r, None),
        }))
    }

    /// Remove a video's own flood rule (admins and the video's moderators): the
    /// configured default applies there again.
    ///
    /// 404 `no_flood_rule` when the video had none of its own. Audited as
    /// `flood_rule_cleared`.
    #[oai(path = "/videos/:id/flood-rule", method = "delete")]
    async fn delete_flood_rule(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        #[oai(example = "example_video")] id: Path<String>,
    ) -> Result<Removed, ApiError> {
        state
            .moderation
            .clear_flood_rule(&poster(&auth.0), &id)
            .await?;
        Ok(Removed::Removed)
    }
}
