//! WebSocket transport: `GET /ws`.
//!
//! The upgrade request is served by poem like any other: it is authenticated before
//! the handshake completes (a bad token gets a plain HTTP 401 with a JSON
//! `{code, message}` body), checked against the origin list and the connection caps,
//! and permessage-deflate is negotiated ([`crate::frame::deflate`]). After the 101, the
//! session takes the connection's raw TCP stream back from the listener
//! ([`crate::net::Sockets`]) and owns it: the hub writes shared frames to it directly.
//!
//! - [`session`]: the task of one socket;
//! - [`reader`]: client frames into messages;
//! - `session::ops`: one handler per client op;
//! - [`protocol`]: the JSON messages of protocol v1 (`openapi/asyncapi.yaml`);
//! - [`close`]: exits and the closing handshake.

pub mod close;
pub mod protocol;
pub mod reader;
pub mod session;

use std::{
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use poem::{
    Body, Request, Response, handler,
    http::{StatusCode, header},
    web::Data,
};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{
    api::{
        auth::request_token,
        error::{json_error, refusal_response},
    },
    auth::AuthError,
    frame::deflate,
    hub::conn::Conn,
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
        None if state.cfg.auth.allow_guests => Ok(Arc::new(Identity::guest(conn_id))),
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

/// Whether the client offers permessage-deflate in a form we take.
fn wants_deflate(req: &Request) -> bool {
    deflate::negotiate(
        req.headers()
            .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
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
    if !origin_allowed(&state.cfg.ws.allowed_origins, req) {
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
    let Some(peer) = req.remote_addr().as_socket_addr().copied() else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "WebSockets need a TCP connection",
        );
    };
    // The client behind any trusted proxies: what the per-address cap counts and the
    // logs name.
    let client = crate::net::client_ip(peer.ip(), req.headers(), &state.cfg.server.trusted_proxies);
    let conn_id = state.hub.next_conn_id();
    let identity = match authenticate(&state, req, conn_id).await {
        Ok(id) => id,
        Err(e) => {
            state.metrics.auth_failure(e);
            tracing::info!(code = e.code(), %client, "ws upgrade refused");
            return json_error(StatusCode::UNAUTHORIZED, e.code(), &e.to_string());
        }
    };
    let user = (!identity.is_guest()).then(|| identity.sub.clone());
    let permit = match state.limiter.acquire(user, Some(client)) {
        Ok(p) => p,
        Err(refusal) => {
            state
                .metrics
                .ws_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(sub = %identity.sub, %client, reason = %refusal.message, "ws upgrade refused: connection cap");
            return refusal_response(&refusal);
        }
    };
    let on_upgrade = match req.take_upgrade() {
        Ok(u) => u,
        Err(e) => {
            return json_error(StatusCode::BAD_REQUEST, "not_websocket", &e.to_string());
        }
    };
    let deflate = wants_deflate(req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(io) => io,
            Err(e) => return tracing::debug!(error = %e, "upgrade failed"),
        };
        let Some((stream, early)) = take_stream(&state, peer, upgraded) else {
            return tracing::error!(%peer, "upgraded connection not found in the listener; dropped");
        };
        let now = crate::model::time::clock_s();
        let conn = Conn::new(
            conn_id,
            identity.sub.clone(),
            identity.role,
            stream,
            deflate,
            state.hub.queue_caps(),
            now,
            permit,
        );
        conn.set_moderates(&identity.moderates);
        session::run(state, conn, identity, client, early).await;
    });
    let mut resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        );
    if deflate {
        resp = resp.header(header::SEC_WEBSOCKET_EXTENSIONS, deflate::RESPONSE);
    }
    resp.body(Body::empty())
}

/// Takes the raw stream of an upgraded connection from the listener, with any bytes the
/// HTTP side had read past the request (a client may not send frames before the 101,
/// but one that does loses nothing). The HTTP side's handles are gone afterwards.
fn take_stream(
    state: &State,
    peer: SocketAddr,
    mut upgraded: poem::Upgraded,
) -> Option<(tokio::net::TcpStream, Vec<u8>)> {
    let shared = state.sockets.take(peer)?;
    let mut early = Vec::new();
    let mut buf = [0u8; 4096];
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        let mut rb = ReadBuf::new(&mut buf);
        match std::pin::Pin::new(&mut upgraded).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => early.extend_from_slice(rb.filled()),
            _ => break,
        }
    }
    drop(upgraded);
    match Arc::try_unwrap(shared) {
        Ok(stream) => Some((stream, early)),
        Err(_) => {
            tracing::error!(%peer, "the HTTP side still holds the upgraded stream");
            None
        }
    }
}
