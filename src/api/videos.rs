//! `/api/videos`, `/api/danmaku` and `/api/users/{sub}/mute`: the catalog, posting,
//! history, deletion, the admin's global mute and bilibili XML import/export (room
//! moderators, scoped mutes and the audit log: `api::moderation`).

use std::sync::Arc;

use poem::{Request, RequestBody, Response, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::{Json, Payload},
    registry::{MetaSchemaRef, Registry},
    types::Type,
};

use super::{
    ApiTags,
    auth::{Admin, Authed, Caller, MaybeAuthed},
    error::ApiError,
};
use crate::{
    danmaku::{
        DEFAULT_LIMIT, View,
        formats::{bilibili_xml, parse_bilibili},
        rules::{Draft, check_video_id},
    },
    model::{Identity, Role, Tier, time::now_millis},
    state::State,
    store::danmaku::{HistoryQuery, Video},
};

/// Largest accepted import file.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// Catalog, comment and moderation endpoints.
pub struct VideosApi;

/// An XML document as a request or response body (`application/xml`).
pub struct XmlText(pub String);

impl Payload for XmlText {
    const CONTENT_TYPE: &'static str = "application/xml; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        let ct = content_type.split(';').next().unwrap_or("").trim();
        ct.eq_ignore_ascii_case("application/xml") || ct.eq_ignore_ascii_case("text/xml")
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }
}

impl poem_openapi::payload::ParsePayload for XmlText {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        use poem::FromRequest;
        let bytes = bytes::Bytes::from_request(request, body).await?;
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err(ApiError::unprocessable(
                "too_large",
                format!("import files are at most {MAX_IMPORT_BYTES} bytes"),
            )
            .into());
        }
        String::from_utf8(bytes.to_vec())
            .map(XmlText)
            .map_err(|_| ApiError::unprocessable("malformed_xml", "the file is not UTF-8").into())
    }
}

impl poem::IntoResponse for XmlText {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .body(self.0)
    }
}

impl poem_openapi::ApiResponse for XmlText {
    fn meta() -> poem_openapi::registry::MetaResponses {
        poem_openapi::registry::MetaResponses {
            responses: vec![poem_openapi::registry::MetaResponse {
                description: "bilibili XML",
                status: Some(200),
                status_range: None,
                content: vec![poem_openapi::registry::MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}

impl<'a> poem_openapi::ApiExtractor<'a> for XmlText {
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<poem_openapi::registry::MetaRequest> {
        Some(poem_openapi::registry::MetaRequest {
            description: None,
            content: vec![poem_openapi::registry::MetaMediaType {
                content_type: <Self as Payload>::CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _opts: poem_openapi::ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let ct = request.content_type().unwrap_or_default();
        if !<Self as Payload>::check_content_type(ct) {
            return Err(ApiError::unprocessable(
                "unsupported_media_type",
                "send the file with content-type application/xml",
            )
            .into());
        }
        <Self as poem_openapi::payload::ParsePayload>::from_request(request, body).await
    }
}

/// A catalog entry.
#[derive(Debug, Object)]
pub struct VideoInfo {
    pub id: String,
    pub title: String,
    /// `member` videos (room, history, exports) are for members and admins.
    pub tier: Tier,
    /// Unix milliseconds.
    pub updated_at: u64,
}

/// Body of `PUT /api/videos/{id}`.
#[derive(Debug, Object)]
pub struct PutVideo {
    #[oai(validator(max_length = 200))]
    pub title: String,
    pub tier: Tier,
}

/// Reply of `PUT /api/videos/{id}`.
#[derive(ApiResponse)]
pub enum PutVideoReply {
    /// Added to the catalog.
    #[oai(status = 201)]
    Created(Json<VideoInfo>),
    /// Updated.
    #[oai(status = 200)]
    Updated(Json<VideoInfo>),
}

/// Body of `POST /api/videos/{id}/danmaku` (and of the WebSocket `danmaku` op).
#[derive(Debug, Object)]
pub struct PostDanmaku {
    /// 1 to max_len characters (30 free, 100 member); trimmed, NFC, no control characters.
    pub text: String,
    /// Video position in seconds (≥ 0).
    #[oai(default)]
    pub time: f64,
    /// `scroll` (default), `top`, `bottom` (members).
    pub mode: Option<String>,
    /// `#rrggbb`; non-white colours are for members. Default `#ffffff`.
    pub color: Option<String>,
    /// `small`, `normal` (default), `large`.
    pub size: Option<String>,
    /// `everyone` (default) or `members` (members may post members-only comments).
    pub audience: Option<String>,
}

impl PostDanmaku {
    /// The rules' view of the body.
    fn draft(self) -> Draft {
        Draft {
            text: self.text,
            time: self.time,
            mode: self.mode,
            color: self.color,
            size: self.size,
            audience: self.audience,
        }
    }
}

/// Reply of a post.
#[derive(ApiResponse)]
pub enum PostReply {
    /// Stored durably; the comment with its id. Other viewers get it live now.
    #[oai(status = 201)]
    Created(Json<View>),
}

/// A history page.
#[derive(Debug, Object)]
pub struct History {
    pub video: String,
    pub count: u64,
    /// Ordered by video time, then id.
    pub items: Vec<View>,
}

/// Body of `POST /api/users/{sub}/mute`.
#[derive(Debug, Object)]
pub struct MuteBody {
    /// How long; 0 lifts the mute.
    #[oai(validator(maximum(value = "31536000")))]
    pub seconds: u64,
}

/// Reply of a mute.
#[derive(Debug, Object)]
pub struct MuteReply {
    pub sub: String,
    /// Unix milliseconds; 0 when not muted.
    pub until: u64,
}

/// Reply of an import.
#[derive(Debug, Object)]
pub struct ImportReply {
    pub imported: u64,
    /// Entries skipped: advanced (7) and code (8) modes, bad fields, empty or long text.
    pub skipped: u64,
}

/// Reply of a deletion.
#[derive(ApiResponse)]
pub enum DeleteReply {
    /// Tombstoned; open pages are told with `danmaku_deleted`.
    #[oai(status = 204)]
    Deleted,
}

/// The identity a caller posts as: API keys post as the system user.
pub(super) fn poster(c: &Caller) -> Arc<Identity> {
    match c {
        Caller::User(id) => id.clone(),
        Caller::Service => Arc::new(Identity {
            sub: Arc::from("system"),
            name: Arc::from("system"),
            role: Role::Admin,
            exp: None,
            moderates: Arc::default(),
        }),
    }
}

/// Seconds → milliseconds for query bounds.
fn secs_to_ms(s: Option<f64>, what: &str) -> Result<Option<u64>, ApiError> {
    match s {
        None => Ok(None),
        Some(v) if v.is_finite() && v >= 0.0 => Ok(Some((v * 1000.0).round() as u64)),
        Some(_) => Err(ApiError::unprocessable(
            "invalid_range",
            format!("{what} is a video time in seconds (≥ 0)"),
        )),
    }
}

#[OpenApi(tag = "ApiTags::Videos")]
impl VideosApi {
    /// Add a video to the catalog or change its title/tier (admin).
    #[oai(path = "/videos/:id", method = "put")]
    async fn put_video(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        id: Path<String>,
        body: Json<PutVideo>,
    ) -> Result<PutVideoReply, ApiError> {
        check_video_id(&id)?;
        let v = Video {
            id: id.0.clone(),
            title: body.0.title,
            tier: body.0.tier,
            updated_at: now_millis(),
        };
        let created = state.store.put_video(v.clone()).await?;
        state.directory.set_video(&v.id, v.tier);
        tracing::info!(video = %v.id, tier = v.tier.as_str(), by = %auth.0.label(), "video saved");
        let info = VideoInfo {
            id: v.id,
            title: v.title,
            tier: v.tier,
            updated_at: v.updated_at,
        };
        Ok(if created {
            PutVideoReply::Created(Json(info))
        } else {
            PutVideoReply::Updated(Json(info))
        })
    }

    /// The video catalog (member-only videos included, marked by `tier`).
    #[oai(path = "/videos", method = "get")]
    async fn list_videos(
        &self,
        state: Data<&Arc<State>>,
        _auth: MaybeAuthed,
    ) -> Result<Json<Vec<VideoInfo>>, ApiError> {
        let videos = state.store.list_videos().await?;
        Ok(Json(
            videos
                .into_iter()
                .map(|v| VideoInfo {
                    id: v.id,
                    title: v.title,
                    tier: v.tier,
                    updated_at: v.updated_at,
                })
                .collect(),
        ))
    }

    /// Post a comment at a video time. Answered only once it is durably stored; then it
    /// is published live to the room (never echoed to the poster's own sockets).
    #[oai(path = "/videos/:id/danmaku", method = "post")]
    async fn post(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        id: Path<String>,
        body: Json<PostDanmaku>,
    ) -> Result<PostReply, ApiError> {
        let who = poster(&auth.0);
        let accepted = state
            .danmaku
            .post(&state.directory, &who, &id, &body.0.draft())
            .await?;
        tracing::info!(id = accepted.stored.id, video = %*id, sub = %who.sub, "danmaku posted (rest)");
        state
            .danmaku
            .publish(state.bus.as_ref(), accepted.event)
            .await;
        Ok(PostReply::Created(Json(accepted.view)))
    }

    /// Stored comments of a video, ordered by video time; members-only comments are
    /// returned to members and admins only.
    #[oai(path = "/videos/:id/danmaku", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn history(
        &self,
        state: Data<&Arc<State>>,
        auth: MaybeAuthed,
        id: Path<String>,
        /// Video time from (seconds, inclusive).
        from: Query<Option<f64>>,
        /// Video time to (seconds, exclusive).
        to: Query<Option<f64>>,
        /// Page size: default 1000, at most 10000.
        limit: Query<Option<u32>>,
        /// Only comments with a greater id.
        after_id: Query<Option<i64>>,
    ) -> Result<Json<History>, ApiError> {
        let reader = auth.0.as_ref().map(poster);
        let q = HistoryQuery {
            from_ms: secs_to_ms(from.0, "from")?,
            to_ms: secs_to_ms(to.0, "to")?,
            after_id: after_id.0,
            ..HistoryQuery::of(
                id.0.clone(),
                limit.0.map(|l| l as usize).unwrap_or(DEFAULT_LIMIT),
                false,
            )
        };
        let items = state
            .danmaku
            .history(&state.directory, reader.as_deref(), q)
            .await?;
        let mut items = items.as_ref().clone();
        if let Some(Caller::User(who)) = auth.0.as_ref()
            && !who.is_guest()
            && !items.is_empty()
        {
            let liked: std::collections::HashSet<i64> = state
                .danmaku
                .liked_by(&who.sub, &id)
                .await?
                .into_iter()
                .collect();
            for v in items.iter_mut().filter(|v| liked.contains(&v.id)) {
                v.liked = Some(true);
            }
        }
        Ok(Json(History {
            video: id.0,
            count: items.len() as u64,
            items,
        }))
    }

    /// Delete a comment: its author within 2 minutes (a recall), or a moderator of its
    /// video or an admin at any time (recorded in the audit log with `reason`). Leaves a
    /// tombstone and tells open pages with a `danmaku_deleted` event. Others get 403
    /// `not_moderator` (an author after 2 minutes: `recall_expired`).
    #[oai(path = "/danmaku/:id", method = "delete")]
    async fn delete(
        &self,
        state: Data<&Arc<State>>,
        auth: Authed,
        id: Path<i64>,
        /// Why (at most 200 characters), for the audit log; ignored for a recall.
        reason: Query<Option<String>>,
    ) -> Result<DeleteReply, ApiError> {
        let who = poster(&auth.0);
        let event = state
            .danmaku
            .delete(&state.directory, &who, id.0, reason.0.as_deref())
            .await?;
        state.danmaku.publish(state.bus.as_ref(), event).await;
        Ok(DeleteReply::Deleted)
    }

    /// Mute a user everywhere for a number of seconds (admin); 0 lifts the global mute.
    /// Their posts fail with 403 `muted`. The same as `PUT /api/moderation/mutes` with
    /// `video: null` (which also takes a reason), and audited the same way.
    #[oai(path = "/users/:sub/mute", method = "post")]
    async fn mute(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        sub: Path<String>,
        body: Json<MuteBody>,
    ) -> Result<Json<MuteReply>, ApiError> {
        let until = state
            .moderation
            .mute_everywhere(&state.directory, &poster(&auth.0), &sub, body.seconds)
            .await?;
        tracing::info!(sub = %*sub, seconds = body.seconds, by = %auth.0.label(), "user muted");
        Ok(Json(MuteReply { sub: sub.0, until }))
    }

    /// Export a video's comments as bilibili XML (8 `p` fields, hashed users, modes 1/4/5).
    #[oai(path = "/videos/:id/danmaku.xml", method = "get")]
    async fn export_xml(
        &self,
        state: Data<&Arc<State>>,
        auth: MaybeAuthed,
        id: Path<String>,
    ) -> Result<XmlText, ApiError> {
        let reader = auth.0.as_ref().map(poster);
        let rows = state
            .danmaku
            .history_rows(
                &state.directory,
                reader.as_deref(),
                HistoryQuery::of(id.0.clone(), crate::danmaku::MAX_LIMIT, false),
            )
            .await?;
        Ok(XmlText(bilibili_xml(&id, &rows)))
    }

    /// Import a bilibili XML file (admin). Modes 7 and 8 are skipped and counted.
    /// Malformed XML gives 422 and imports nothing.
    #[oai(path = "/videos/:id/danmaku.xml", method = "post")]
    async fn import_xml(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        id: Path<String>,
        body: XmlText,
    ) -> Result<Json<ImportReply>, ApiError> {
        check_video_id(&id)?;
        let max_len = state.danmaku.policy().admin.max_len.max(100);
        let parsed = parse_bilibili(&id, &body.0, max_len, now_millis())
            .map_err(|e| ApiError::unprocessable("malformed_xml", e))?;
        let imported = if parsed.items.is_empty() {
            0
        } else {
            state.store.insert_many(parsed.items).await?
        };
        state.danmaku.forget_cached(&id).await;
        tracing::info!(video = %*id, imported, skipped = parsed.skipped, by = %auth.0.label(), "bilibili import");
        Ok(Json(ImportReply {
            imported: imported as u64,
            skipped: parsed.skipped as u64,
        }))
    }
}
