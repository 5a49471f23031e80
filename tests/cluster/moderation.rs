//! Cluster moderation: a mute, a room-moderator grant, slow mode and a flood rule made
//! through node A apply on node B within a second (each node re-reads them from the
//! shared store every 250 ms), and so does lifting them; an automatic mute made on B
//! applies on A.

use std::time::{Duration, Instant};

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{
    TestApp,
    cluster::{cleanup, node_with, requested, unique},
    status_json,
};

/// What "within a second" allows.
const BOUND: Duration = Duration::from_secs(1);

/// Polls `cond` every 20 ms until it holds, returning how long it took (fails past 5 s).
async fn took<F, Fut>(what: &str, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// The status of a comment posted by `token` on `app` in `video`.
async fn post_status(app: &TestApp, token: &str, video: &str) -> (u16, Value) {
    status_json(
        app.http
            .post(app.url(&format!("/api/videos/{video}/danmaku")))
            .bearer_auth(token)
            .json(&json!({"text": "hello", "time": 1.0}))
            .send()
            .await
            .expect("post"),
    )
    .await
}

/// The status of `GET path` as `token` on `app`.
async fn get_status(app: &TestApp, token: &str, path: &str) -> u16 {
    app.http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_and_a_moderator_grant_made_on_node_a_apply_on_node_b_within_a_second() {
    let Some(svc) = requested("moderation").await else {
        return;
    };
    let ns = unique("moderation");
    // No cooldowns: the poll posts as the same user many times.
    let quiet = |c: &mut danmaku::config::Config| {
        c.policy.free.cooldown_ms = 0;
        c.policy.member.cooldown_ms = 0;
    };
    let mut times = Vec::new();
    let a = node_with(&svc, &svc.redis, &ns, "a", quiet).await;
    let b = node_with(&svc, &svc.redis, &ns, "b", quiet).await;
    let (status, body) = a
        .admin_put("/api/videos/cv", json!({"title": "cv", "tier": "free"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let carol = b.token("carol", Role::Free);
    let ann = b.token("ann", Role::Free);
    assert_eq!(post_status(&b, &carol, "cv").await.0, 201);
    assert_eq!(
        get_status(&b, &ann, "/api/moderation/mutes?video=cv").await,
        403
    );

    // A scoped mute through A: B refuses carol's posts there, with the reason.
    let (status, m) = a
        .admin_put(
            "/api/moderation/mutes",
            json!({"sub": "carol", "video": "cv", "seconds": 600, "reason": "cluster spam"}),
        )
        .await;
    assert_eq!(status, 200, "{m}");
    let t = took("the mute to apply on B", || async {
        post_status(&b, &carol, "cv").await.0 == 403
    })
    .await;
    assert!(t < BOUND, "the mute applied on B after {t:?}");
    times.push(t);
    let (_, err) = post_status(&b, &carol, "cv").await;
    assert_eq!(err["code"], "muted");
    assert!(
        err["message"].as_str().unwrap().contains("cluster spam"),
        "{err}"
    );
    assert_eq!(post_status(&b, &carol, "elsewhere").await.0, 201);

    // A global mute through the original endpoint on A.
    let dave = b.token("dave", Role::Member);
    let (status, _) = a
        .admin_post("/api/users/dave/mute", json!({"seconds": 600}))
        .await;
    assert_eq!(status, 200);
    let t = took("the global mute to apply on B", || async {
        post_status(&b, &dave, "anywhere").await.0 == 403
    })
    .await;
    assert!(t < BOUND, "the global mute applied on B after {t:?}");
    times.push(t);

    // A moderator grant through A: ann moderates cv on B.
    let (status, body) = status_json(
        a.http
            .put(a.url("/api/videos/cv/moderators/ann"))
            .header("X-Api-Key", crate::common::API_KEY)
            .send()
            .await
            .expect("grant"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let t = took("the grant to apply on B", || async {
        get_status(&b, &ann, "/api/moderation/mutes?video=cv").await == 200
    })
    .await;
    assert!(t < BOUND, "the grant applied on B after {t:?}");
    times.push(t);
    // ... so ann lifts carol's mute through B, and A lets carol post again.
    let resp = b
        .http
        .delete(b.url("/api/moderation/mutes/carol?video=cv"))
        .bearer_auth(&ann)
        .send()
        .await
        .expect("unmute");
    assert_eq!(resp.status().as_u16(), 204);
    let t = took("the lift to apply on A", || async {
        post_status(&a, &carol, "cv").await.0 == 201
    })
    .await;
    assert!(t < BOUND, "the lift applied on A after {t:?}");
    times.push(t);
    // The audit log, kept in the shared store, has every action, whichever node took it.
    let (_, page) = status_json(
        b.http
            .get(b.url("/api/moderation/audit?video=cv"))
            .bearer_auth(&ann)
            .send()
            .await
            .expect("audit"),
    )
    .await;
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user_unmuted", "moderator_added", "user_muted"]);
    println!("moderation across nodes: applied after {times:?} (mute, global mute, grant, lift)");
    cleanup(&svc, &ns).await;
}

/// `method path` as `token` on `app`.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    status_json(req.send().await.expect("request")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_mode_and_a_flood_rule_set_on_node_a_apply_on_node_b_within_a_second() {
    let Some(svc) = requested("room_rules").await else {
        return;
    };
    let ns = unique("roomrules");
    let quiet = |c: &mut danmaku::config::Config| {
        c.policy.free.cooldown_ms = 0;
        c.policy.member.cooldown_ms = 0;
    };
    let mut times = Vec::new();
    let a = node_with(&svc, &svc.redis, &ns, "a", quiet).await;
    let b = node_with(&svc, &svc.redis, &ns, "b", quiet).await;
    let (status, body) = a
        .admin_put("/api/videos/rv", json!({"title": "rv", "tier": "free"}))
        .await;
    assert_eq!(status, 201, "{body}");
    // ann moderates rv (stored through A); she sets slow mode through A.
    let (status, _) = status_json(
        a.http
            .put(a.url("/api/videos/rv/moderators/ann"))
            .header("X-Api-Key", crate::common::API_KEY)
            .send()
            .await
            .expect("grant"),
    )
    .await;
    assert_eq!(status, 201);
    let ann = a.token("ann", Role::Free);
    let (status, s) = send(
        &a,
        reqwest::Method::PUT,
        "/api/videos/rv/slow-mode",
        &ann,
        Some(json!({"seconds": 60})),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    // B applies it: a fresh poster per poll (each is slowed after one post).
    let mut n = 0;
    let t = took("slow mode to apply on B", || {
        n += 1;
        let token = b.token(&format!("p{n}"), Role::Free);
        let b = &b;
        async move { post_status(b, &token, "rv").await.1["slow_mode_s"] == 60 }
    })
    .await;
    assert!(t < BOUND, "slow mode applied on B after {t:?}");
    times.push(t);
    let dee = b.token("dee", Role::Member);
    assert_eq!(post_status(&b, &dee, "rv").await.0, 201);
    let (status, err) = post_status(&b, &dee, "rv").await;
    assert_eq!((status, err["code"].as_str()), (429, Some("cooldown")));
    assert_eq!(get_status(&b, &dee, "/api/videos/rv/slow-mode").await, 200);

    // Cleared through B: A lets posters through without an interval.
    let (status, _) = send(
        &b,
        reqwest::Method::DELETE,
        "/api/videos/rv/slow-mode",
        &ann,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let mut n = 0;
    let t = took("the clear to apply on A", || {
        n += 1;
        let token = a.token(&format!("q{n}"), Role::Free);
        let a = &a;
        async move {
            let (status, body) = post_status(a, &token, "rv").await;
            status == 201 && body.get("slow_mode_s").is_none()
        }
    })
    .await;
    assert!(t < BOUND, "the clear applied on A after {t:?}");
    times.push(t);

    // A flood rule set through A trips on B; the automatic mute made on B applies on A.
    let (status, r) = send(
        &a,
        reqwest::Method::PUT,
        "/api/videos/rv/flood-rule",
        &ann,
        Some(json!({"max_comments": 2, "window_s": 60, "mute_s": 600})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let t = took("the flood rule to reach B", || async {
        send(
            &b,
            reqwest::Method::GET,
            "/api/videos/rv/flood-rule",
            &ann,
            None,
        )
        .await
        .1["source"]
            == "video"
    })
    .await;
    assert!(t < BOUND, "the flood rule reached B after {t:?}");
    times.push(t);
    let eve = b.token("eve", Role::Free);
    for _ in 0..2 {
        assert_eq!(post_status(&b, &eve, "rv").await.0, 201);
    }
    let (status, err) = post_status(&b, &eve, "rv").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("flood_muted")));
    let t = took("the automatic mute to apply on A", || async {
        post_status(&a, &eve, "rv").await.1["code"] == "muted"
    })
    .await;
    assert!(t < BOUND, "the automatic mute applied on A after {t:?}");
    times.push(t);
    let (_, page) = send(
        &a,
        reqwest::Method::GET,
        "/api/moderation/audit?video=rv&limit=1",
        &ann,
        None,
    )
    .await;
    assert_eq!(
        (&page["items"][0]["action"], &page["items"][0]["actor"]),
        (&json!("auto_muted"), &json!("system"))
    );
    println!(
        "room rules across nodes: applied after {times:?} (slow mode, clear, flood rule, auto mute)"
    );
    cleanup(&svc, &ns).await;
}
