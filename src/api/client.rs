//! The client of each HTTP request in the logs: a middleware that runs the request inside
//! an `http{client=…}` span, so every line a handler logs (posts, admin changes, errors)
//! names who asked. Behind trusted proxies that is the forwarded address
//! ([`crate::net::client_ip`], the same the WebSocket upgrade counts per address).

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::config::Cidr;

/// Calls `ep` inside a span naming the request's client; `trusted` is
/// `server.trusted_proxies`.
pub async fn in_client_span<E: Endpoint>(
    ep: Arc<E>,
    trusted: Arc<[Cidr]>,
    req: Request,
) -> poem::Result<Response> {
    let span = match req.remote_addr().as_socket_addr() {
        Some(peer) => {
            let client = crate::net::client_ip(peer.ip(), req.headers(), &trusted);
            tracing::info_span!("http", %client)
        }
        None => tracing::info_span!("http"),
    };
    ep.call(req)
        .instrument(span)
        .await
        .map(IntoResponse::into_response)
}
