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
    api::error::json_error,
    auth::{AuthError, Identity, MAX_TOKEN_LEN},
    server::State,
};

/// Finds the token of a request: `Authorization: Bearer` or `?access_token=`. Both may be
/// given only if they agree.
pub fn request_token(req: &Request) -> Result<Option<String>, AuthError> {
    let header = match req.headers().get(header::AUTHORIZATION) {
        Some(v) => {
            if v.len() > MAX_TOKEN_LEN + 16 {
                return Err(AuthError::TokenTooLarge);
            }
            let v = v.to_str().map_err(|_| AuthError::Malformed)?;
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or(AuthError::Malformed)?;
            Some(token.trim().to_string())
        }
        None => None,
    };
    let query = match req.uri().query() {
        Some(q) if q.len() > 4 * MAX_TOKEN_LEN => return Err(AuthError::TokenTooLarge),
        Some(q) => q
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "access_token")
            .map(|(_, v)| percent_decode(v)),
        None => None,
    };
    match (header, query) {
        (Some(h), Some(q)) if h != q => Err(AuthError::Conflict),
        (Some(h), _) => Ok(Some(h)),
        (None, q) => Ok(q),
    }
}

/// Minimal percent-decoding for the token query parameter (JWTs are URL-safe already,
/// but clients may still escape them).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

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
    if *state.shutdown.borrow() {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
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
    let on_upgrade = match req.take_upgrade() {
        Ok(u) => u,
        Err(e) => {
            return json_error(StatusCode::BAD_REQUEST, "not_websocket", &e.to_string());
        }
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(io) => session::run(state, io, identity, conn_id).await,
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
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
