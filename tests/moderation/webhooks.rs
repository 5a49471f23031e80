//! Signed webhooks against a real receiver started here: it is down (nothing listens),
//! then answers 503, then answers slowly, then well. Every event the server produced in
//! the meantime arrives, each with one id on every attempt, signed; registering and
//! listing check their input and who may.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use danmaku::{model::Role, webhooks::signature};
use poem::{EndpointExt, Request, Response, Route, handler, http::StatusCode, post, web::Data};
use reqwest::Method;
use serde_json::{Value, json};

use super::{call, post as post_comment, posted, refused};
use crate::common::TestApp;

/// The receiver's key for the webhook.
pub(crate) const SECRET: &str = "a-webhook-secret-of-32-characters";

/// One attempt as the receiver saw it: event, delivery id, body, whether its signature
/// was valid, whether it was answered 2xx.
pub(crate) type Seen = (String, String, Value, bool, bool);

/// How the receiver answers, and what it saw.
#[derive(Default)]
pub(crate) struct Receiver {
    /// Attempts answered 503 before it answers well.
    pub(crate) fail_first: Mutex<usize>,
    /// Each attempt: event, delivery id, body, signature valid, whether answered 2xx.
    pub(crate) attempts: Mutex<Vec<Seen>>,
}

impl Receiver {
    /// How many attempts of `event` it answered 2xx.
    pub(crate) fn delivered(&self, event: &str) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.4 && a.0 == event)
            .count()
    }
}

/// A webhook as `GET /api/webhooks/{id}` shows it to the admin key.
async fn stats(app: &TestApp, id: &str) -> Value {
    call(
        app,
        Method::GET,
        &format!("/api/webhooks/{id}"),
        Some("key"),
        None,
    )
    .await
    .1
}

#[handler]
async fn receive(req: &Request, body: poem::Body, r: Data<&Arc<Receiver>>) -> Response {
    let bytes = body.into_vec().await.unwrap_or_default();
    let header = |n: &str| req.header(n).unwrap_or_default().to_string();
    let ts = header("x-danmaku-timestamp").parse::<u64>().unwrap_or(0);
    let valid = signature(SECRET.as_bytes(), ts, &bytes) == header("x-danmaku-signature")
        && danmaku::model::time::now_secs().abs_diff(ts) <= 300;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let fail = {
        let mut left = r.fail_first.lock().unwrap();
        let fail = *left > 0;
        *left = left.saturating_sub(1);
        fail
    };
    // Slow but within the attempt's timeout: it must not cause a second delivery.
    tokio::time::sleep(Duration::from_millis(if fail { 0 } else { 150 })).await;
    r.attempts.lock().unwrap().push((
        header("x-danmaku-event"),
        header("x-danmaku-delivery"),
        v,
        valid,
        !fail,
    ));
    if fail {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body("busy")
    } else {
        Response::builder().status(StatusCode::NO_CONTENT).finish()
    }
}

/// Starts the receiver on `listener`.
pub(crate) fn start(listener: std::net::TcpListener, r: Arc<Receiver>) {
    super::serve_on(listener, Route::new().at("/hook", post(receive)).data(r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_a_receiver_that_was_down_failing_and_slow_once_per_id() {
    let app = super::app_with(|c| {
        c.moderation.webhook_retry_base_ms = 50;
        c.ws.presence_interval_ms = 100;
    })
    .await;
    // Down: the port is reserved but nothing accepts until later.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let url = format!("http://{addr}/hook");

    // Registering: checked, admins only, the secret never returned.
    let fan = app.token("fan", Role::Free);
    let hook = json!({"url": url, "events": danmaku::webhooks::EVENTS, "secret": SECRET,
        "description": "all of them"});
    refused(
        call(
            &app,
            Method::POST,
            "/api/webhooks",
            Some(&fan),
            Some(hook.clone()),
        )
        .await,
        403,
        "forbidden",
    );
    for (field, bad, code) in [
        ("url", json!("ftp://x/y"), "invalid_url"),
        ("events", json!(["user.banned"]), "invalid_events"),
        ("events", json!([]), "invalid_events"),
        ("secret", json!("short"), "invalid_secret"),
    ] {
        let mut b = hook.clone();
        b[field] = bad;
        refused(
            call(&app, Method::POST, "/api/webhooks", Some("key"), Some(b)).await,
            422,
            code,
        );
    }
    let (status, created) =
        call(&app, Method::POST, "/api/webhooks", Some("key"), Some(hook)).await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("secret").is_none(), "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // Events while the receiver is down.
    let posted_id = posted(&app, &fan, "ma", "hello hooks").await;
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/danmaku/{posted_id}"),
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/videos/ma/hold",
        Some("key"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, held) = post_comment(&app, &fan, "ma", "hold me").await;
    assert_eq!(held["state"], "held");
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/moderation/mutes",
        Some("key"),
        Some(json!({"sub": "fan", "video": "ma", "seconds": 60, "reason": "test"})),
    )
    .await;
    assert_eq!(status, 200);
    // A viewer opens the room and leaves it.
    let mut ws = app.ws_as("viewer", Role::Free).await;
    ws.subscribe("video:ma").await;
    // Queued so far: delivered or waiting.
    let queued = || async {
        let w = stats(&app, &id).await;
        w["pending"].as_u64().unwrap_or(0) + w["delivered"].as_u64().unwrap_or(0)
    };
    app.wait_for("room.occupied to be queued", || async {
        queued().await >= 5
    })
    .await;
    drop(ws);
    app.wait_for("room.vacated to be queued", || async {
        queued().await >= 6
    })
    .await;
    let w = stats(&app, &id).await;
    assert_eq!(w["delivered"], 0, "nothing delivered while down: {w}");
    app.wait_for("a failed attempt to be recorded", || async {
        let w = stats(&app, &id).await;
        w["last_error"] == "connection failed"
    })
    .await;

    // Back, but failing the first four attempts, then slow.
    let receiver = Arc::new(Receiver {
        fail_first: Mutex::new(4),
        ..Receiver::default()
    });
    start(
        std::net::TcpListener::bind(addr).expect("the reserved port"),
        receiver.clone(),
    );
    app.wait_for("every event to be delivered", || async {
        let w = stats(&app, &id).await;
        w["delivered"] == 6 && w["pending"] == 0
    })
    .await;
    let (_, w) = call(&app, Method::GET, "/api/webhooks", Some("key"), None).await;
    assert_eq!(
        (&w[0]["failed"], &w[0]["last_status"]),
        (&json!(0), &json!(204)),
        "{w}"
    );

    let attempts = receiver.attempts.lock().unwrap().clone();
    assert!(
        attempts.iter().all(|a| a.3),
        "every attempt is signed right"
    );
    let delivered: Vec<&Seen> = attempts.iter().filter(|a| a.4).collect();
    let kinds: HashSet<&str> = delivered.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        kinds,
        danmaku::webhooks::EVENTS
            .into_iter()
            .collect::<HashSet<_>>(),
        "one of each"
    );
    assert_eq!(delivered.len(), 6, "each delivered once: {delivered:?}");
    // One id per event, on every attempt, equal to the body's.
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for (event, delivery, body, _, _) in &attempts {
        assert_eq!(
            body["id"],
            json!(delivery),
            "the header repeats the body's id"
        );
        assert_eq!(body["event"], json!(event));
        ids.entry(event.clone())
            .or_default()
            .insert(delivery.clone());
    }
    assert!(
        ids.values().all(|s| s.len() == 1),
        "an event got two ids: {ids:?}"
    );
    let body_of = |e: &str| delivered.iter().find(|a| a.0 == e).unwrap().2["data"].clone();
    assert_eq!(body_of("danmaku.posted")["danmaku"]["text"], "hello hooks");
    assert_eq!(body_of("danmaku.posted")["author"], "fan");
    assert_eq!(body_of("danmaku.deleted")["id"], posted_id);
    assert_eq!(body_of("danmaku.held")["danmaku"]["state"], "held");
    assert_eq!(body_of("user.muted")["sub"], "fan");
    assert_eq!(body_of("room.occupied")["video"], "ma");
    assert_eq!(body_of("room.vacated")["total"], 0);

    // Removed: nothing more is queued for it.
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/webhooks/{id}"),
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    refused(
        call(
            &app,
            Method::DELETE,
            &format!("/api/webhooks/{id}"),
            Some("key"),
            None,
        )
        .await,
        404,
        "unknown_webhook",
    );
}
