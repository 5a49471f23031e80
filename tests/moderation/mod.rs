//! Moderation: room moderators (stored grants and the `mod` claim), scoped mutes with
//! expiry and reason, slow mode, flood rules and the audit log, over real HTTP against
//! a real server.
//!
//! This module holds what its submodules share: a server without cooldowns (tests post
//! repeatedly as the same user), a request helper and the catalog fixture.

mod audit;
mod flood;
mod hook;
mod moderators;
mod mutes;
mod review;
mod slow_mode;
pub(crate) mod webhooks;

use serde_json::{Value, json};

use crate::common::{TestApp, status_json};

/// Serves `app` on `listener` in the background: a real HTTP server standing for an
/// outside program (the classifier hook, a webhook receiver).
fn serve_on(listener: std::net::TcpListener, app: impl poem::Endpoint + 'static) {
    listener.set_nonblocking(true).expect("nonblocking");
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
    tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run(app)
            .await
            .ok();
    });
}

/// A server with two catalog videos, `ma` and `mb`, and no posting cooldowns.
async fn app() -> TestApp {
    app_with(|_| {}).await
}

/// [`app`], with `tweak` applied to the configuration too.
async fn app_with(tweak: impl FnOnce(&mut danmaku::config::Config)) -> TestApp {
    let app = TestApp::builder()
        .config(|c| {
            c.policy.free.cooldown_ms = 0;
            c.policy.member.cooldown_ms = 0;
        })
        .config(tweak)
        .start()
        .await;
    for v in ["ma", "mb"] {
        let (status, body) = app
            .admin_put(
                &format!("/api/videos/{v}"),
                json!({"title": v, "tier": "free"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    app
}

/// Sends `method path` with a bearer token (none: a guest; `"key"`: the admin API key)
/// and an optional JSON body.
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path));
    match token {
        Some("key") => req = req.header("X-Api-Key", crate::common::API_KEY),
        Some(t) => req = req.bearer_auth(t),
        None => {}
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    status_json(req.send().await.expect("request")).await
}

/// Posts a comment as `token` in `video`; returns status and body.
async fn post(app: &TestApp, token: &str, video: &str, text: &str) -> (u16, Value) {
    call(
        app,
        reqwest::Method::POST,
        &format!("/api/videos/{video}/danmaku"),
        Some(token),
        Some(json!({"text": text, "time": 1.0})),
    )
    .await
}

/// Posts and returns the new comment's id.
async fn posted(app: &TestApp, token: &str, video: &str, text: &str) -> i64 {
    let (status, body) = post(app, token, video, text).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// The texts of a video's history (as an admin).
async fn texts(app: &TestApp, video: &str) -> Vec<String> {
    let (status, page) = call(
        app,
        reqwest::Method::GET,
        &format!("/api/videos/{video}/danmaku"),
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["text"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts a refusal's status and code.
#[track_caller]
fn refused(got: (u16, Value), status: u16, code: &str) {
    assert_eq!(
        (got.0, got.1["code"].as_str()),
        (status, Some(code)),
        "{}",
        got.1
    );
}
