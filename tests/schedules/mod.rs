//! Scheduled pushes and presence events, over real sockets.
//!
//! "No more runs" is proven without sleeping. Deleting or pausing a schedule answers only
//! once no run of it can be published any more, so a broadcast sentinel pushed after the
//! reply gets a `seq` above every run of that schedule. A second, control schedule keeps
//! firing on the same channel: once it has delivered two runs with a `seq` above the
//! sentinel's, more than one cadence has passed, and a stopped schedule's run would have
//! had a `seq` above the sentinel's too.
//!
//! This module holds the schedule API helpers and that proof ([`assert_stopped`]); the
//! tests live in its submodules.

mod api;
mod lifecycle;
mod presence;
mod targets;

use serde_json::{Value, json};

use crate::common::{API_KEY, TestApp, WsClient};

/// Who calls an endpoint.
enum Auth<'a> {
    None,
    Key,
    Bearer(&'a str),
}

/// Calls the API and returns status and JSON body (Null when empty).
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    auth: Auth<'_>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.http.request(method, app.url(path));
    req = match auth {
        Auth::None => req,
        Auth::Key => req.header("X-Api-Key", API_KEY),
        Auth::Bearer(t) => req.bearer_auth(t),
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    crate::common::status_json(req.send().await.expect("request")).await
}

/// Creates a schedule with the admin key, asserting 201, and returns it.
async fn create(app: &TestApp, body: Value) -> Value {
    let (status, s) = call(app, "POST", "/api/schedules", Some(body.clone()), Auth::Key).await;
    assert_eq!(status, 201, "create {body}: {s}");
    assert!(s["id"].as_str().is_some_and(|id| id.starts_with("s-")));
    s
}

/// Reads one schedule with the admin key, asserting 200.
async fn get(app: &TestApp, id: &str) -> Value {
    let (status, s) = call(app, "GET", &format!("/api/schedules/{id}"), None, Auth::Key).await;
    assert_eq!(status, 200, "get {id}: {s}");
    s
}

/// Deletes a schedule with the admin key, asserting 204.
async fn delete(app: &TestApp, id: &str) {
    let (status, body) = call(
        app,
        "DELETE",
        &format!("/api/schedules/{id}"),
        None,
        Auth::Key,
    )
    .await;
    assert_eq!(status, 204, "delete {id}: {body}");
}

/// Pauses or resumes a schedule, asserting 200, and returns it.
async fn set_paused(app: &TestApp, id: &str, paused: bool) -> Value {
    let (status, s) = call(
        app,
        "PATCH",
        &format!("/api/schedules/{id}"),
        Some(json!({"paused": paused})),
        Auth::Key,
    )
    .await;
    assert_eq!(status, 200, "patch {id}: {s}");
    assert_eq!(s["paused"], paused);
    s
}

/// Pushes a broadcast sentinel and returns its `seq`.
async fn sentinel(app: &TestApp, tag: &str) -> u64 {
    let (status, reply) = app
        .admin_post(
            "/api/push/broadcast",
            json!({"event": "sentinel", "payload": {"tag": tag}}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    reply["seq"].as_u64().expect("broadcast seq")
}

/// The schedule id of a scheduled event, if it is one.
fn schedule_of(v: &Value) -> Option<&str> {
    v["data"]["schedule"]["id"].as_str()
}

/// The run index of a scheduled event.
fn run_of(v: &Value) -> u64 {
    v["data"]["schedule"]["run"].as_u64().expect("run index")
}

/// A broadcast schedule firing every second, tagged in its payload.
fn every_second(name: &str) -> Value {
    json!({"name": name, "every_s": 1, "target": {"kind": "broadcast"}, "payload": {"tag": name}})
}

/// Proves that `stopped` publishes nothing more: after the sentinel (pushed after the
/// stopping reply), reads until `control` delivered two runs above the sentinel's seq,
/// and fails on any `stopped` event above it. Returns the `stopped` events read.
async fn assert_stopped(
    app: &TestApp,
    c: &mut WsClient,
    stopped: &str,
    control: &str,
    tag: &str,
) -> Vec<Value> {
    let fence = sentinel(app, tag).await;
    let mut control_after = 0;
    let mut seen = Vec::new();
    while control_after < 2 {
        let v = c.next_json().await;
        let seq = v["seq"].as_u64().unwrap_or(0);
        match schedule_of(&v) {
            Some(id) if id == stopped => {
                assert!(
                    seq < fence,
                    "run {} of the stopped schedule came after it stopped (seq {seq} > {fence})",
                    run_of(&v)
                );
                seen.push(v);
            }
            Some(id) if id == control && seq > fence => control_after += 1,
            _ => {}
        }
    }
    seen
}
