//! The external classifier against a real HTTP server started here: each decision, a
//! hook slower than the budget (without holding up another room), one answering
//! garbage, one that is down, and a bad signature seen from the hook's side. The
//! receiver checks every request's signature and timestamp as a real one would.

use std::sync::{Arc, Mutex};

use danmaku::{config::HookFailure, model::Role, moderation::hook::signature};
use poem::{EndpointExt, Request, Response, Route, handler, http::StatusCode, post, web::Data};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{post as post_comment, refused};
use crate::common::TestApp;

/// The receiver's key.
const SECRET: &str = "hook-secret-for-tests";

/// What the receiver saw and how it behaves.
#[derive(Default)]
struct Seen {
    /// Each request: its body, and whether its signature and timestamp were valid.
    calls: Mutex<Vec<(Value, bool)>>,
    /// Told when a `slow` comment arrives; its answer waits for `release`.
    slow_arrived: Notify,
    release: Notify,
}

/// The receiver: verifies, records, then answers by the comment's text.
#[handler]
async fn receive(req: &Request, body: poem::Body, seen: Data<&Arc<Seen>>) -> Response {
    let bytes = body.into_vec().await.unwrap_or_default();
    let ts = req
        .header("x-danmaku-timestamp")
        .and_then(|t| t.parse::<u64>().ok());
    let sig = req.header("x-danmaku-signature").unwrap_or_default();
    let now = danmaku::model::time::now_secs();
    let valid = ts.is_some_and(|ts| {
        now.abs_diff(ts) <= 300 && signature(SECRET.as_bytes(), ts, &bytes) == sig
    });
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    seen.calls.lock().unwrap().push((v.clone(), valid));
    if !valid {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .body("bad signature");
    }
    let text = v["text"].as_str().unwrap_or_default();
    let decision = if text.contains("slow") {
        seen.slow_arrived.notify_one();
        seen.release.notified().await;
        "allow"
    } else if text.contains("garbage") {
        return Response::builder().body("<html>surprise</html>");
    } else if text.contains("deny") {
        "deny"
    } else if text.contains("hold") {
        "hold"
    } else if text.contains("shadow") {
        "shadow"
    } else if text.contains("maybe") {
        "perhaps"
    } else {
        "allow"
    };
    Response::builder()
        .content_type("application/json")
        .body(json!({"decision": decision, "score": 0.5}).to_string())
}

/// Starts the receiver on a free port; returns its URL and what it sees.
async fn receiver() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    super::serve_on(
        listener,
        Route::new().at("/screen", post(receive)).data(seen.clone()),
    );
    (format!("http://{addr}/screen"), seen)
}

/// A server (videos `ma` and `mb`) whose hook is `url`, signing with `secret`, failing
/// as `failure`.
async fn app_with_hook(url: &str, secret: &str, failure: HookFailure, budget_ms: u64) -> TestApp {
    let (url, secret) = (url.to_string(), secret.to_string());
    super::app_with(move |c| {
        c.moderation.hook_url = Some(url);
        c.moderation.hook_secret = Some(secret);
        c.moderation.hook_failure = failure;
        c.moderation.hook_budget_ms = budget_ms;
    })
    .await
}

/// The history row of `text` as an admin sees it (with its state), if stored.
async fn stored(app: &TestApp, video: &str, text: &str) -> Option<Value> {
    let (status, page) = super::call(
        app,
        reqwest::Method::GET,
        &format!("/api/videos/{video}/danmaku"),
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["text"] == text)
        .cloned()
}

/// The `danmaku_moderation_hook_total` count of `outcome`.
async fn outcome(app: &TestApp, outcome: &str) -> f64 {
    app.metric(&format!(
        "danmaku_moderation_hook_total{{outcome=\"{outcome}\"}}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_decision_of_a_signed_hook_applies_and_failures_follow_the_policy() {
    let (url, seen) = receiver().await;
    let app = app_with_hook(&url, SECRET, HookFailure::Hold, 150).await;
    let fan = app.token("fan", Role::Free);

    let (status, r) = post_comment(&app, &fan, "ma", "plain allow").await;
    assert!(status == 201 && r.get("state").is_none(), "{status} {r}");
    refused(
        post_comment(&app, &fan, "ma", "please deny").await,
        422,
        "blocked",
    );
    assert!(
        stored(&app, "ma", "please deny").await.is_none(),
        "a denied comment is not stored"
    );
    let (_, r) = post_comment(&app, &fan, "ma", "please hold").await;
    assert_eq!(r["state"], "held", "{r}");
    let (_, r) = post_comment(&app, &fan, "ma", "please shadow").await;
    assert!(r.get("state").is_none(), "the poster never learns: {r}");
    assert_eq!(
        stored(&app, "ma", "please shadow").await.unwrap()["state"],
        "shadow"
    );

    // What the hook received: signed, timestamped, the normalised comment and poster.
    {
        let calls = seen.calls.lock().unwrap();
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert!(
            calls.iter().all(|(_, valid)| *valid),
            "every request verifies"
        );
        let (first, _) = &calls[0];
        assert_eq!(first["kind"], "danmaku.screen");
        assert_eq!(first["video"], "ma");
        assert_eq!(first["text"], "plain allow");
        assert_eq!(
            first["user"],
            json!({"sub": "fan", "name": "fan", "role": "free"})
        );
    }
    // Admins are never sent.
    let (status, _) = app
        .admin_post(
            "/api/videos/ma/danmaku",
            json!({"text": "admin deny", "time": 1.0}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(seen.calls.lock().unwrap().len(), 4);

    // A hook that answers garbage, or a decision it does not know: held (the policy).
    let (_, r) = post_comment(&app, &fan, "ma", "garbage please").await;
    assert_eq!(r["state"], "held", "{r}");
    let (_, r) = post_comment(&app, &fan, "ma", "maybe").await;
    assert_eq!(r["state"], "held", "{r}");

    // A hook slower than the budget: the post is held once the budget passes, and a post
    // in another room meanwhile is answered while the slow call is still unanswered.
    let slow = {
        let (app_url, fan) = (app.url("/api/videos/ma/danmaku"), fan.clone());
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .post(app_url)
                .bearer_auth(fan)
                .json(&json!({"text": "slow one", "time": 1.0}))
                .send()
                .await
                .expect("post");
            resp.json::<Value>().await.unwrap()
        })
    };
    seen.slow_arrived.notified().await;
    let (status, r) = post_comment(&app, &fan, "mb", "other room").await;
    assert!(status == 201 && r.get("state").is_none(), "{status} {r}");
    let r = slow.await.unwrap();
    assert_eq!(r["state"], "held", "past the budget: the policy: {r}");
    seen.release.notify_one();

    for (o, n) in [
        ("allow", 2.0),
        ("deny", 1.0),
        ("hold", 1.0),
        ("shadow", 1.0),
        ("malformed", 2.0),
        ("timeout", 1.0),
    ] {
        assert_eq!(outcome(&app, o).await, n, "{o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_is_down_or_rejects_our_signature_lets_posts_through_by_policy() {
    // Down: nothing listens on the port.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}/screen", free.local_addr().unwrap());
    drop(free);
    let app = app_with_hook(&down, SECRET, HookFailure::Allow, 150).await;
    let fan = app.token("fan", Role::Free);
    let (status, r) = post_comment(&app, &fan, "ma", "hello while down").await;
    assert!(status == 201 && r.get("state").is_none(), "{status} {r}");
    assert!(stored(&app, "ma", "hello while down").await.is_some());
    assert_eq!(outcome(&app, "error").await, 1.0);

    // A server signing with the wrong key: the receiver sees a bad signature and
    // refuses; the post gets the policy (allow) and the error is counted.
    let (url, seen) = receiver().await;
    let app = app_with_hook(&url, "not-the-receivers-key", HookFailure::Allow, 150).await;
    let fan = app.token("fan", Role::Free);
    let (status, r) = post_comment(&app, &fan, "ma", "please deny").await;
    assert!(status == 201 && r.get("state").is_none(), "{status} {r}");
    let calls = seen.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].1, "the receiver must see the signature as bad");
    assert_eq!(outcome(&app, "error").await, 1.0);
    assert_eq!(outcome(&app, "deny").await, 0.0);
}
