//! Configurable limits: connection caps, op rate, channel cap, REST body cap, CORS, the
//! WebSocket origin check and the static pages' Content-Security-Policy.

use danmaku::model::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::common::{TestApp, WsClient};

/// Connects as `sub` (guest when `None`), returning the refusal if any.
async fn try_ws(app: &TestApp, sub: Option<&str>) -> Result<WsClient, (u16, Value)> {
    let url = match sub {
        Some(s) => format!("{}?access_token={}", app.ws_base, app.token(s, Role::Free)),
        None => app.ws_base.clone(),
    };
    let req = url.into_client_request().expect("request");
    WsClient::connect_request(req)
        .await
        .map_err(|r| (r.status, r.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_cap_refuses_with_429_and_frees_on_close() {
    let app = TestApp::builder()
        .config(|c| c.limits.max_connections_per_user = 2)
        .start()
        .await;
    let a1 = try_ws(&app, Some("alice")).await.expect("first");
    let _a2 = try_ws(&app, Some("alice")).await.expect("second");
    let (status, body) = try_ws(&app, Some("alice"))
        .await
        .err()
        .expect("third refused");
    assert_eq!(status, 429);
    assert_eq!(body["code"], "too_many_connections");
    assert!(body["message"].as_str().is_some());
    // Other users and guests are not affected.
    try_ws(&app, Some("bob")).await.expect("bob");
    try_ws(&app, None).await.expect("guest");
    drop(a1);
    app.wait_for("alice's slot to come back", || async {
        try_ws(&app, Some("alice")).await.is_ok()
    })
    .await;
    assert!(app.metric("danmaku_ws_refused_total").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_cap_refuses_with_503() {
    let app = TestApp::builder()
        .config(|c| c.limits.max_connections = 3)
        .start()
        .await;
    let _open: Vec<_> = futures_util::future::join_all([
        try_ws(&app, Some("a")),
        try_ws(&app, Some("b")),
        try_ws(&app, None),
    ])
    .await
    .into_iter()
    .map(|r| r.expect("under the cap"))
    .collect();
    let (status, body) = try_ws(&app, Some("d")).await.err().expect("refused");
    assert_eq!(status, 503);
    assert_eq!(body["code"], "too_many_connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_cap_counts_guests_too() {
    let app = TestApp::builder()
        .config(|c| c.limits.max_connections_per_ip = 2)
        .start()
        .await;
    let _g1 = try_ws(&app, None).await.expect("first");
    let _u1 = try_ws(&app, Some("carol")).await.expect("second");
    let (status, body) = try_ws(&app, None).await.err().expect("refused");
    assert_eq!(status, 429);
    assert_eq!(body["code"], "too_many_connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_op_rate_is_a_token_bucket_per_socket() {
    let app = TestApp::builder()
        .config(|c| {
            c.ws.ops_per_s = 1;
            c.ws.ops_burst = 5;
            c.ws.max_errors_per_min = 100;
        })
        .start()
        .await;
    let mut c = app.ws_as("dave", Role::Free).await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        let r = c.request(json!({"op": "ping"})).await;
        codes.push(r["error"]["code"].as_str().unwrap_or("ok").to_string());
    }
    let ok = codes.iter().filter(|c| *c == "ok").count();
    assert!((5..=6).contains(&ok), "{codes:?}");
    assert_eq!(codes[..5], ["ok"; 5], "the burst comes first: {codes:?}");
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    // Another socket has its own bucket.
    let mut other = app.ws_as("erin", Role::Free).await;
    assert_eq!(other.request(json!({"op": "ping"})).await["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_cap_comes_from_config() {
    let app = TestApp::builder()
        .config(|c| c.ws.max_channels = 2)
        .start()
        .await;
    for who in [Some("frank"), None] {
        let mut c = match who {
            Some(s) => app.ws_as(s, Role::Free).await,
            None => app.ws_as("", Role::Guest).await,
        };
        assert_eq!(c.subscribe("video:a").await["ok"], true);
        assert_eq!(c.subscribe("video:b").await["ok"], true);
        let r = c.subscribe("video:c").await;
        assert_eq!(r["error"]["code"], "too_many_subscriptions", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_bodies_over_the_cap_get_413_json() {
    let app = TestApp::builder()
        .config(|c| c.limits.rest_max_body = 2048)
        .start()
        .await;
    let token = app.token("gina", Role::Member);
    let big = json!({"text": "x".repeat(4096), "time": 1.0});
    let resp = app
        .http
        .post(app.url("/api/videos/v1/danmaku"))
        .bearer_auth(&token)
        .json(&big)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "payload_too_large");
    // Under the cap the same route works.
    let resp = app
        .http
        .post(app.url("/api/videos/v1/danmaku"))
        .bearer_auth(&token)
        .json(&json!({"text": "hello", "time": 1.0}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 201);

    // A chunked body has no Content-Length: it is counted as it is read.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let chunk = "y".repeat(1500);
    let req = format!(
        "POST /api/videos/v1/danmaku HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    sock.write_all(req.as_bytes()).await.expect("write");
    let mut resp = String::new();
    sock.read_to_string(&mut resp).await.expect("read");
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("payload_too_large"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_configured_origins() {
    let app = TestApp::builder()
        .config(|c| c.server.cors_origins = vec!["https://good.example".into()])
        .start()
        .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/videos"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
    };
    let good = preflight("https://good.example").await.expect("preflight");
    assert_eq!(
        good.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://good.example")
    );
    let bad = preflight("https://evil.example").await.expect("preflight");
    assert!(bad.headers().get("access-control-allow-origin").is_none());

    // Without configuration there are no CORS headers at all.
    let plain = TestApp::start().await;
    let resp = plain
        .http
        .get(plain.url("/api/videos"))
        .header("Origin", "https://good.example")
        .send()
        .await
        .expect("get");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_origins_are_checked_when_configured() {
    let app = TestApp::builder()
        .config(|c| c.ws.allowed_origins = vec!["https://good.example".into()])
        .start()
        .await;
    let with_origin = |origin: Option<&'static str>| {
        let mut req = app.ws_base.as_str().into_client_request().expect("request");
        if let Some(o) = origin {
            req.headers_mut()
                .insert("origin", HeaderValue::from_static(o));
        }
        WsClient::connect_request(req)
    };
    let refused = with_origin(Some("https://evil.example"))
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["code"], "origin_not_allowed");
    with_origin(Some("https://good.example"))
        .await
        .expect("good origin");
    with_origin(None).await.expect("non-browser client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pages_forbid_inline_script() {
    let app = TestApp::start().await;
    for path in ["/", "/app.js"] {
        let resp = app.http.get(app.url(path)).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp:?}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp:?}");
    }
    // The page itself has no inline script for the policy to break.
    let html = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    for tag in html.split("<script").skip(1) {
        let (attrs, rest) = tag.split_once('>').expect("closed tag");
        assert!(attrs.contains("src="), "inline script: <script{tag}");
        assert!(rest.trim_start().starts_with("</script>"), "inline body");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_is_closed_with_4002_at_the_idle_timeout() {
    let app = TestApp::builder()
        .config(|c| {
            c.ws.heartbeat_s = 1;
            c.ws.idle_timeout_s = 2;
        })
        .start()
        .await;
    // A raw handshake and raw reads: a WebSocket client library would answer the
    // server's pings, which is exactly what a dead peer does not do.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    tokio::time::timeout(crate::common::WAIT, sock.read_to_end(&mut bytes))
        .await
        .expect("the idle socket was never closed")
        .expect("read");
    assert!(bytes.starts_with(b"HTTP/1.1 101"), "no upgrade");
    // The server's close frame: FIN + opcode 8, unmasked, payload starting with 4002.
    let closed = bytes
        .windows(4)
        .any(|w| w[0] == 0x88 && w[2..4] == 4002u16.to_be_bytes());
    assert!(
        closed,
        "no 4002 close frame in {:?}",
        String::from_utf8_lossy(&bytes)
    );
}
