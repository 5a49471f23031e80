//! DPlayer v3 compatibility at `/dplayer/v3/` (outside the OpenAPI surface, whose shapes
//! it cannot follow): `GET ?id=&max=` lists, `POST` posts with a bearer JWT.
//!
//! Replies are `{"code": 0, "data": ...}` or `{"code": 1, "msg": "..."}`; rule errors keep
//! their HTTP status. Text and author are HTML-escaped because DPlayer uses `innerHTML`.

use std::sync::Arc;

use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Json, Query},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::request_token;
use crate::{
    danmaku::{
        MAX_LIMIT,
        formats::{dplayer_draft, dplayer_row},
    },
    model::{Identity, Refusal},
    state::State,
    store::danmaku::HistoryQuery,
};

/// Query of `GET /dplayer/v3/`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    id: Option<String>,
    max: Option<usize>,
    /// Older backends read `limit` instead of `max`.
    limit: Option<usize>,
}

/// A DPlayer error reply with the given status.
fn fail(status: u16, msg: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(json!({"code": 1, "msg": msg.into()}).to_string())
}

/// A DPlayer success reply.
fn ok(data: Value) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(json!({"code": 0, "data": data}).to_string())
}

/// Maps a rule refusal, keeping its status.
fn reject(r: Refusal) -> Response {
    let status = super::error::status_of(r.kind).as_u16();
    let resp = fail(status, format!("{} ({})", r.message, r.code));
    match r.retry_after_ms {
        Some(ms) => {
            let mut resp = resp;
            if let Ok(v) = super::error::retry_after_s(Some(ms)).to_string().parse() {
                resp.headers_mut().insert("retry-after", v);
            }
            resp
        }
        None => resp,
    }
}

/// Resolves the optional caller; a bad token is an error, none is a guest.
async fn caller(state: &State, req: &Request) -> Result<Option<Arc<Identity>>, Response> {
    match request_token(req) {
        Err(e) => Err(fail(401, e.to_string())),
        Ok(None) => Ok(None),
        Ok(Some(t)) => match state.verifier.verify(&t).await {
            Ok(id) => Ok(Some(id)),
            Err(e) => {
                state.metrics.auth_failure(e);
                Err(fail(401, e.to_string()))
            }
        },
    }
}

/// `GET /dplayer/v3/?id=&max=`: the newest `max` (or `limit`) comments, or all of them.
#[handler]
pub async fn list(req: &Request, state: Data<&Arc<State>>, q: Query<ListQuery>) -> Response {
    let who = match caller(&state, req).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let Some(video) = q.id.clone().filter(|v| !v.is_empty()) else {
        return fail(400, "id is required");
    };
    let limit = q.max.or(q.limit);
    let query = HistoryQuery {
        newest: limit.is_some(),
        ..HistoryQuery::of(video, limit.unwrap_or(MAX_LIMIT), false)
    };
    match state
        .danmaku
        .history_rows(&state.directory, who.as_deref(), query)
        .await
    {
        Ok(rows) => ok(Value::Array(rows.iter().map(dplayer_row).collect())),
        Err(r) => reject(r),
    }
}

/// `POST /dplayer/v3/`: posts with the bearer JWT's identity; `author`/`token` in the
/// body are ignored.
#[handler]
pub async fn post(req: &Request, state: Data<&Arc<State>>, body: Json<Value>) -> Response {
    let who = match caller(&state, req).await {
        Ok(Some(w)) => w,
        Ok(None) => return fail(401, "sign in to post comments (login_required)"),
        Err(resp) => return resp,
    };
    let (video, draft) = match dplayer_draft(&body) {
        Ok(v) => v,
        Err(msg) => return fail(422, msg),
    };
    match state
        .danmaku
        .post(&state.directory, &who, &video, &draft)
        .await
    {
        Ok(accepted) => {
            tracing::info!(id = accepted.stored.id, %video, sub = %who.sub, "danmaku posted (dplayer)");
            let data = serde_json::to_value(&accepted.view).unwrap_or_default();
            state
                .danmaku
                .publish(state.bus.as_ref(), accepted.event)
                .await;
            ok(data)
        }
        Err(r) => reject(r),
    }
}
