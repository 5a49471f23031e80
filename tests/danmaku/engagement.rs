//! Likes and the heatmap: who may like what, idempotence, counts in history and live
//! within each socket's audience, and density counted within the caller's audience.

use danmaku::model::Role;
use serde_json::{Value, json};

use super::{history, post, sentinel};
use crate::common::{TestApp, status_json};

/// POSTs (`like`) or DELETEs a like as `token`.
async fn like(app: &TestApp, token: &str, id: i64, on: bool) -> (u16, Value) {
    let url = app.url(&format!("/api/danmaku/{id}/like"));
    let req = if on {
        app.http.post(url)
    } else {
        app.http.delete(url)
    };
    status_json(req.bearer_auth(token).send().await.unwrap()).await
}

/// GETs a heatmap as `token` (or as a guest).
async fn heatmap(app: &TestApp, token: Option<&str>, video: &str, query: &str) -> (u16, Value) {
    let mut req = app
        .http
        .get(app.url(&format!("/api/videos/{video}/heatmap{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    status_json(req.send().await.unwrap()).await
}

/// Posts as a fresh user of `role` (so no cooldown applies) and returns the comment id.
async fn post_as(app: &TestApp, sub: &str, role: Role, video: &str, body: Value) -> i64 {
    let token = app.token(sub, role);
    let (status, v, _) = post(app, Some(&token), video, body).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_i64().unwrap()
}

/// The `(id, likes)` of the `danmaku_likes` events read before the sentinel.
async fn likes_until_sentinel(c: &mut crate::common::WsClient) -> Vec<(i64, u64)> {
    let (events, _) = c.until(|v| v["type"] == "sentinel").await;
    events
        .iter()
        .filter(|v| v["type"] == "danmaku_likes")
        .map(|v| {
            (
                v["data"]["id"].as_i64().unwrap(),
                v["data"]["likes"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likes_are_idempotent_visible_only_where_the_comment_is_and_go_out_live() {
    let app = TestApp::start().await;
    let public = post_as(&app, "p1", Role::Free, "lk", json!({"text": "public"})).await;
    let secret = post_as(
        &app,
        "p2",
        Role::Member,
        "lk",
        json!({"text": "secret", "audience": "members"}),
    )
    .await;
    let bob = app.token("bob", Role::Free);
    let alice = app.token("alice", Role::Member);

    let mut free_ws = app.ws_as("carol", Role::Free).await;
    let mut member_ws = app.ws_as("dave", Role::Member).await;
    for c in [&mut free_ws, &mut member_ws] {
        assert_eq!(c.subscribe("video:lk").await["ok"], true);
    }

    // Liking twice keeps one like; two users make two.
    let (status, v) = like(&app, &bob, public, true).await;
    assert_eq!(
        (status, &v),
        (200, &json!({"id": public, "likes": 1, "liked": true}))
    );
    let (_, v) = like(&app, &bob, public, true).await;
    assert_eq!(v["likes"], 1, "a repeated like is idempotent: {v}");
    let (_, v) = like(&app, &alice, public, true).await;
    assert_eq!(v["likes"], 2);
    // A free user cannot like (or learn of) a members-only comment; a member can.
    let (status, v) = like(&app, &bob, secret, true).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("unknown_danmaku")));
    let (status, v) = like(&app, &alice, secret, true).await;
    assert_eq!((status, v["likes"].as_u64()), (200, Some(1)));
    // Unknown comments are 404; guests (no token) may not like.
    let (status, v) = like(&app, &bob, 999_999, true).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("unknown_danmaku")));
    let (status, _) = status_json(
        app.http
            .post(app.url(&format!("/api/danmaku/{public}/like")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "a guest (no token) may not like");

    // Live: the latest count reaches each socket within its audience, once the throttle
    // lets it out; the members-only comment's count never reaches the free socket.
    let mut free_seen = Vec::new();
    let mut member_seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !member_seen.contains(&(public, 2)) || !member_seen.contains(&(secret, 1)) {
        assert!(
            std::time::Instant::now() < deadline,
            "like counts never reached the member socket: {member_seen:?}"
        );
        sentinel(&app, "lk").await;
        free_seen.extend(likes_until_sentinel(&mut free_ws).await);
        member_seen.extend(likes_until_sentinel(&mut member_ws).await);
    }
    sentinel(&app, "lk").await;
    free_seen.extend(likes_until_sentinel(&mut free_ws).await);
    assert!(
        free_seen.contains(&(public, 2)),
        "free socket saw {free_seen:?}"
    );
    assert!(
        free_seen.iter().all(|(id, _)| *id != secret),
        "a members-only count leaked to a free socket: {free_seen:?}"
    );
    assert!(
        member_seen.len() <= 4,
        "throttled: one event per comment per flush, saw {member_seen:?}"
    );

    // History rows carry the count, and `liked` for the caller only.
    let (_, page) = history(&app, Some(&bob), "lk", "").await;
    let row = |page: &Value, id: i64| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
    };
    let mine = row(&page, public).unwrap();
    assert_eq!(
        (mine["likes"].as_u64(), mine["liked"].as_bool()),
        (Some(2), Some(true))
    );
    assert!(row(&page, secret).is_none());
    let (_, page) = history(&app, None, "lk", "").await;
    let anon = row(&page, public).unwrap();
    assert_eq!(anon["likes"], 2);
    assert!(
        anon.get("liked").is_none(),
        "a guest's rows carry no liked mark: {anon}"
    );

    // Taking a like back is idempotent too, and the cached history follows.
    let (_, v) = like(&app, &bob, public, false).await;
    assert_eq!(v, json!({"id": public, "likes": 1, "liked": false}));
    let (_, v) = like(&app, &bob, public, false).await;
    assert_eq!(v["likes"], 1);
    let (_, page) = history(&app, Some(&bob), "lk", "").await;
    let mine = row(&page, public).unwrap();
    assert_eq!(mine["likes"], 1);
    assert!(mine.get("liked").is_none());

    // A deleted comment cannot be liked.
    let (status, _) = status_json(
        app.http
            .delete(app.url(&format!("/api/danmaku/{public}")))
            .bearer_auth(app.token("root", Role::Admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 204);
    let (status, v) = like(&app, &alice, public, true).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("unknown_danmaku")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heatmap_counts_within_the_callers_audience_and_follows_new_comments() {
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    // Cold: comments stored before the first read, at 1 s, 1.5 s (members only), 5 s
    // and three at 8 s.
    for (i, (time, audience)) in [
        (1.0, "everyone"),
        (1.5, "members"),
        (5.2, "everyone"),
        (8.0, "everyone"),
        (8.4, "everyone"),
        (8.9, "everyone"),
    ]
    .into_iter()
    .enumerate()
    {
        let role = if audience == "members" {
            Role::Member
        } else {
            Role::Free
        };
        ids.push(
            post_as(
                &app,
                &format!("h{i}"),
                role,
                "hm",
                json!({"text": format!("c{i}"), "time": time, "audience": audience}),
            )
            .await,
        );
    }
    let free = app.token("bob", Role::Free);
    let member = app.token("alice", Role::Member);
    let (status, h) = heatmap(&app, Some(&free), "hm", "?buckets=10&duration=10").await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["counts"], json!([0, 1, 0, 0, 0, 1, 0, 0, 3, 0]));
    assert_eq!(
        (h["total"].as_u64(), h["bucket_seconds"].as_f64()),
        (Some(5), Some(1.0))
    );
    assert_eq!(h["peaks"][0], json!({"time": 8.5, "count": 3}));
    let (_, h) = heatmap(&app, Some(&member), "hm", "?buckets=10&duration=10").await;
    assert_eq!(
        h["counts"],
        json!([0, 2, 0, 0, 0, 1, 0, 0, 3, 0]),
        "members count all"
    );
    let (_, h) = heatmap(&app, None, "hm", "?buckets=3").await;
    assert_eq!(
        (h["duration"].as_f64(), h["total"].as_u64()),
        (Some(9.0), Some(5))
    );

    // Warm: a new comment and a deletion show at once.
    post_as(
        &app,
        "late",
        Role::Free,
        "hm",
        json!({"text": "late", "time": 2.2}),
    )
    .await;
    let (status, _) = status_json(
        app.http
            .delete(app.url(&format!("/api/danmaku/{}", ids[3])))
            .bearer_auth(app.token("root", Role::Admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 204);
    let (_, h) = heatmap(&app, Some(&free), "hm", "?buckets=10&duration=10").await;
    assert_eq!(h["counts"], json!([0, 1, 1, 0, 0, 1, 0, 0, 2, 0]));

    // Bad input.
    for q in ["?buckets=0", "?buckets=1001"] {
        let (status, e) = heatmap(&app, None, "hm", q).await;
        assert_eq!(
            (status, e["code"].as_str()),
            (422, Some("invalid_buckets")),
            "{q}"
        );
    }
    let (status, e) = heatmap(&app, None, "hm", "?duration=-1").await;
    assert_eq!(
        (status, e["code"].as_str()),
        (422, Some("invalid_duration"))
    );
    let (status, _) = heatmap(&app, None, "hm", "?buckets=x").await;
    assert_eq!(status, 400);
    // A members-only video's heatmap is for members only.
    let (status, _) = app
        .admin_put(
            "/api/videos/vipm",
            json!({"title": "VIP", "tier": "member"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, e) = heatmap(&app, Some(&free), "vipm", "").await;
    assert_eq!((status, e["code"].as_str()), (403, Some("member_only")));
    let (status, h) = heatmap(&app, Some(&member), "vipm", "").await;
    assert_eq!(
        (status, h["counts"].as_array().map(Vec::len)),
        (200, Some(100))
    );
}
