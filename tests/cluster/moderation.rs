//! Cluster moderation: a mute and a room-moderator grant made through node A apply on
//! node B within a second (each node re-reads them from the shared store every 250 ms),
//! and so does lifting them.

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
