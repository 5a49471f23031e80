//! Danmaku: role rules and error codes, live rebroadcast without echo, history, moderation,
//! restart durability, concurrency, flood control, DPlayer and bilibili XML, likes and
//! the heatmap.
//!
//! This module holds the helpers its submodules share: posting, reading history and the
//! broadcast sentinel that fences what a socket has read.

mod engagement;
mod formats;
mod load;
mod posting;
mod viewing;

use serde_json::{Value, json};

use crate::common::{TestApp, WsClient, status_json};

/// POSTs a comment with a bearer token; returns status, body and `Retry-After`.
async fn post(
    app: &TestApp,
    token: Option<&str>,
    video: &str,
    body: Value,
) -> (u16, Value, Option<String>) {
    let mut req = app
        .http
        .post(app.url(&format!("/api/videos/{video}/danmaku")))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = status_json(resp).await;
    (status, body, retry)
}

/// GETs a history page as `token` (or as a guest).
async fn history(app: &TestApp, token: Option<&str>, video: &str, query: &str) -> (u16, Value) {
    let mut req = app
        .http
        .get(app.url(&format!("/api/videos/{video}/danmaku{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    status_json(req.send().await.unwrap()).await
}

/// Texts of a history page.
fn texts(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["text"].as_str().unwrap().to_string())
        .collect()
}

/// Publishes a sentinel on `video:{video}`. Order is per channel (each room batches on
/// its own window, so a broadcast may overtake a busy room's batch): once a socket reads
/// this, it has read every event published on that room before it.
async fn sentinel(app: &TestApp, video: &str) {
    let (status, _) = app
        .admin_post(
            &format!("/api/push/channels/video:{video}"),
            json!({"event": "sentinel", "payload": {}}),
        )
        .await;
    assert_eq!(status, 200);
}

/// The `danmaku` events a client read before the sentinel.
async fn comments_until_sentinel(c: &mut WsClient) -> Vec<Value> {
    let (events, _) = c.until(|v| v["type"] == "sentinel").await;
    events
        .into_iter()
        .filter(|v| v["type"] == "danmaku")
        .collect()
}
