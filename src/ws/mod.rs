//! WebSocket transport: `GET /ws`.
//!
//! The upgrade is authenticated before the handshake completes, so a bad token gets a
//! plain HTTP 401 with a JSON `{code, message}` body. The upgrade itself is done here on
//! top of poem's raw upgrade (instead of poem's `WebSocket` extractor) so that sessions
//! can write tungstenite's shared `Utf8Bytes` frames: the bytes encoded once by the bus
//! are handed to every socket without copying.

pub mod protocol;
pub mod session;

use std::sync::Arc;

use poem::{
    Body, Request, Response, handler,
    http::{StatusCode, header},
    web::Data,
};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{
    api::{
        auth::request_token,
        error::{json_error, refusal_response},
    },
    auth::AuthError,
    model::Identity,
    state::State,
};

/// Resolves the identity of a WebSocket request: a verified token, or a guest.
async fn authenticate(
    state: &State,
    req: &Request,
    conn_id: u64,
) -> Result<Arc<Identity>, AuthError> {
    match request_token(req)? {
        Some(token) => state.verifier.verify(&token).await,
        None if state.cfg.allow_guests => Ok(Arc::new(Identity::guest(conn_id))),
        None => Err(AuthError::MissingToken),
    }
}

/// Whether the request asks for a WebSocket upgrade we can serve.
fn is_upgrade(req: &Request) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(want))
    };
    has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
        && req
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13")
}

/// Whether the request's `Origin` may open a socket. Browsers always send `Origin` on
/// WebSocket handshakes, so a cross-site page cannot ride a user's cookies or tokens in;
/// non-browser clients send none and are let through. An empty list allows every origin.
fn origin_allowed(allowed: &[String], req: &Request) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match req.headers().get(header::ORIGIN) {
        None => true,
        Some(origin) => allowed
            .iter()
            .any(|a| a == "*" || a.as_bytes().eq_ignore_ascii_case(origin.as_bytes())),
    }
}

/// `GET /ws`: authenticates, answers 101 and spawns the session.
#[handler]
pub async fn upgrade(req: &Request, state: Data<&Arc<State>>) -> Response {
    let state = state.0.clone();
    if !is_upgrade(req) {
        return json_error(
            StatusCode::UPGRADE_REQUIRED,
            "not_websocket",
            "GET /ws expects a WebSocket upgrade (version 13)",
        );
    }
    if state.shutdown.is_started() {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        );
    }
    if !origin_allowed(&state.cfg.ws_allowed_origins, req) {
        return json_error(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this page's origin may not open WebSockets here",
        );
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "missing Sec-WebSocket-Key",
        );
    };
    let conn_id = state.hub.next_conn_id();
    let identity = match authenticate(&state, req, conn_id).await {
        Ok(id) => id,
        Err(e) => {
            state.metrics.auth_failure(e);
            tracing::info!(code = e.code(), "ws upgrade refused");
            return json_error(StatusCode::UNAUTHORIZED, e.code(), &e.to_string());
        }
    };
    let ip = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let user = (!identity.is_guest()).then(|| identity.sub.clone());
    let permit = match state.limiter.acquire(user, ip) {
        Ok(p) => p,
        Err(refusal) => {
            state
                .metrics
                .ws_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(sub = %identity.sub, ?ip, reason = %refusal.message, "ws upgrade refused: connection cap");
            return refusal_response(&refusal);
        }
    };
    let on_upgrade = match req.take_upgrade() {
        Ok(u) => u,
        Err(e) => {
            return json_error(StatusCode::BAD_REQUEST, "not_websocket", &e.to_string());
        }
    };
    let fut = async move {
        match on_upgrade.await {
            Ok(io) => session::run(state, io, identity, conn_id, permit).await,
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    };
    tokio::spawn(fut);
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .body(Body::empty())
}
