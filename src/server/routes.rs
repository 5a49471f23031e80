//! The route table and the probes: pages, the API, its docs, the WebSocket endpoint,
//! `/healthz`, `/readyz` and `/metrics`, under the body cap, CORS and the client span.

use std::sync::Arc;

use poem::{EndpointExt, Route, get, handler, http::StatusCode, web::Data};

use crate::{
    api,
    pages::{self, Pages},
    state::State,
    ws,
};

/// `GET /healthz`: the process is up.
#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store is open and the bus can carry events.
#[handler]
fn readyz(state: Data<&Arc<State>>) -> (StatusCode, String) {
    if state.shutdown.is_started() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down".into())
    } else if !state.bus.is_ready() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("bus {} not ready", state.bus.name()),
        )
    } else {
        (StatusCode::OK, "ready".into())
    }
}

/// `GET /metrics`: Prometheus text format.
#[handler]
fn metrics_text(state: Data<&Arc<State>>) -> poem::Response {
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(format!(
            "{}# HELP danmaku_outbox_queued_bytes Bytes queued in socket outboxes, not yet written.\n\
             # TYPE danmaku_outbox_queued_bytes gauge\ndanmaku_outbox_queued_bytes {}\n\
             # HELP danmaku_fanout_duty Cores' worth of time spent in room passes (last quarter second).\n\
             # TYPE danmaku_fanout_duty gauge\ndanmaku_fanout_duty {:.3}\n\
             # HELP danmaku_fanout_window_floor_seconds The node-wide floor of every room's batching window.\n\
             # TYPE danmaku_fanout_window_floor_seconds gauge\ndanmaku_fanout_window_floor_seconds {:.4}\n",
            state.metrics.render(),
            state.hub.queued_bytes(),
            state.hub.fanout_duty(),
            state.hub.window_floor().as_secs_f64(),
        ))
}

/// The full route table: pages, API, docs, WebSocket and probes, behind the body cap
/// and (when configured) CORS.
pub fn routes(state: Arc<State>, pages: Arc<pages::Source>) -> impl poem::Endpoint {
    let api_service = api::service();
    let allow = Arc::new(api::allow::AllowTable::from_spec(
        &api_service.spec(),
        "/api",
    ));
    let ui = api_service.swagger_ui();
    let spec = api_service.spec_endpoint();
    let caps = api::body::BodyCaps {
        default: state.cfg.limits.rest_max_body,
        import: state.cfg.limits.import_max_body,
    };
    let cors = (!state.cfg.server.cors_origins.is_empty()).then(|| {
        let cors = poem::middleware::Cors::new().allow_credentials(false);
        if state.cfg.server.cors_origins.iter().any(|o| o == "*") {
            cors
        } else {
            cors.allow_origins(state.cfg.server.cors_origins.iter().map(String::as_str))
        }
    });
    let trusted: Arc<[crate::config::Cidr]> = state.cfg.server.trusted_proxies.clone().into();
    Route::new()
        .nest("/api", api_service)
        .nest("/docs", ui)
        .at("/openapi.json", spec)
        .at("/ws", get(ws::upgrade))
        .at(
            "/dplayer/v3/",
            get(api::dplayer::list).post(api::dplayer::post),
        )
        .at(
            "/dplayer/v3",
            get(api::dplayer::list).post(api::dplayer::post),
        )
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics_text))
        // Pages: the video page also answers at /watch/{video}; the admin console at /admin.
        // Their assets use absolute paths, so any of these URLs loads them from `/`.
        .at("/watch/:video", Pages::file(pages.clone(), "index.html"))
        .at("/admin", Pages::file(pages.clone(), "admin.html"))
        .nest("/", Pages::tree(pages))
        .around(move |ep, req| api::body::limit_body(ep, caps, req))
        .with_if(
            cors.is_some(),
            cors.unwrap_or_else(poem::middleware::Cors::new),
        )
        .catch_all_error(api::error::render_error)
        // Outside the error renderer, so every 405 arrives here as a response.
        .around(move |ep, req| api::allow::add_allow(ep, allow.clone(), req))
        // Outermost: the error renderer's and every handler's logs name the client.
        .around(move |ep, req| api::client::in_client_span(ep, trusted.clone(), req))
        .data(state)
}
