//! Cluster moderation: a mute, a room-moderator grant, slow mode, a flood rule, block
//! rules, a shadow ban and a hold rule made through node A apply on node B within a
//! second (each node re-reads them from the
//! shared store every 250 ms), and so does lifting them; an automatic mute made on B
//! applies on A. Webhook events are delivered once per cluster, and the rooms' shared
//! occupied record holds whichever room event is subscribed.

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

/// The text and state a poster's reply shows for `text` posted by `token` on `app`.
async fn post_text(app: &TestApp, token: &str, video: &str, text: &str) -> (u16, Value) {
    status_json(
        app.http
            .post(app.url(&format!("/api/videos/{video}/danmaku")))
            .bearer_auth(token)
            .json(&json!({"text": text, "time": 1.0}))
            .send()
            .await
            .expect("post"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_rules_a_shadow_ban_and_a_hold_rule_set_on_node_a_apply_on_node_b_within_a_second() {
    let Some(svc) = requested("review").await else {
        return;
    };
    let ns = unique("review");
    let quiet = |c: &mut danmaku::config::Config| {
        c.policy.free.cooldown_ms = 0;
        c.policy.member.cooldown_ms = 0;
    };
    let mut times = Vec::new();
    let a = node_with(&svc, &svc.redis, &ns, "a", quiet).await;
    let b = node_with(&svc, &svc.redis, &ns, "b", quiet).await;
    let (status, body) = a
        .admin_put("/api/videos/hv", json!({"title": "hv", "tier": "free"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let admin = a.token("root", Role::Admin);
    let fan = b.token("fan", Role::Free);
    let vic = b.token("vic", Role::Member);
    let in_history = |text: String| {
        let (b, vic) = (&b, vic.clone());
        async move {
            let (_, page) = send(
                b,
                reqwest::Method::GET,
                "/api/videos/hv/danmaku",
                &vic,
                None,
            )
            .await;
            page["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|d| d["text"] == text))
        }
    };

    // A block rule set through A refuses on B.
    let (status, body) = send(
        &a,
        reqwest::Method::PUT,
        "/api/moderation/rules",
        &admin,
        Some(json!({"video": "hv", "rules": [{"kind": "word", "pattern": "forbidden", "action": "refuse"}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let t = took("the block rule to apply on B", || async {
        post_text(&b, &fan, "hv", "forbidden fruit").await.1["code"] == "blocked"
    })
    .await;
    assert!(t < BOUND, "the block rule applied on B after {t:?}");
    times.push(t);

    // A shadow ban set through A hides fan's comments on B (a fresh text per poll).
    let (status, body) = send(
        &a,
        reqwest::Method::PUT,
        "/api/moderation/shadow-bans",
        &admin,
        Some(json!({"sub": "fan", "video": "hv", "seconds": 600})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let text = format!("shadow probe {n}");
        let (status, r) = post_text(&b, &fan, "hv", &text).await;
        assert_eq!(status, 201, "{r}");
        if !in_history(text).await {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never shadowed on B"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = start.elapsed();
    assert!(t < BOUND, "the shadow ban applied on B after {t:?}");
    times.push(t);
    // A shadowed comment posted through B reaches a moderator by `mod` claim watching
    // through A, marked, and not a viewer watching through A.
    let mut cm = a.ws_token(&a.token_mod("cm", Role::Free, &["hv"])).await;
    let mut viewer = a.ws_as("vv", Role::Free).await;
    for ws in [&mut cm, &mut viewer] {
        let reply = ws.subscribe("video:hv").await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
    post_text(&b, &fan, "hv", "shadow across").await;
    post_text(&b, &b.token("ctl", Role::Free), "hv", "control across").await;
    let (_, got) = cm
        .until(|v| v["type"] == "danmaku" && v["data"]["text"] == "shadow across")
        .await;
    assert_eq!(got["data"]["state"], "shadow", "{got}");
    let (before, _) = viewer
        .until(|v| v["type"] == "danmaku" && v["data"]["text"] == "control across")
        .await;
    assert!(
        !before
            .iter()
            .any(|f| f.to_string().contains("shadow across")),
        "{before:?}"
    );

    // A hold rule set through A holds a free poster on B; the comment approved through
    // B shows in history read through A.
    let (status, body) = send(
        &a,
        reqwest::Method::PUT,
        "/api/videos/hv/hold",
        &admin,
        Some(json!({"roles": ["free"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pat = b.token("pat", Role::Free);
    let held = std::sync::Mutex::new(None);
    let t = took("the hold rule to apply on B", || {
        let (b, pat, held) = (&b, pat.clone(), &held);
        async move {
            let (_, r) = post_text(b, &pat, "hv", "please hold").await;
            let yes = r["state"] == "held";
            if yes {
                *held.lock().unwrap() = r["id"].as_i64();
            }
            yes
        }
    })
    .await;
    assert!(t < BOUND, "the hold rule applied on B after {t:?}");
    times.push(t);
    let id = held.into_inner().unwrap().expect("a held comment");
    let (status, body) = send(
        &b,
        reqwest::Method::POST,
        &format!("/api/danmaku/{id}/approve"),
        &b.token("root", Role::Admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, page) = send(
        &a,
        reqwest::Method::GET,
        "/api/videos/hv/danmaku",
        &a.token("vic", Role::Member),
        None,
    )
    .await;
    let approved = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .expect("approved through B, read through A");
    assert!(approved.get("state").is_none(), "{approved}");
    println!("review across nodes: applied after {times:?} (block rule, shadow ban, hold rule)");
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_webhook_event_of_a_cluster_is_delivered_once_whichever_node_saw_it() {
    use crate::moderation::webhooks::{Receiver, SECRET, start};
    let Some(svc) = requested("webhooks").await else {
        return;
    };
    let ns = unique("webhooks");
    let tweak = |c: &mut danmaku::config::Config| {
        c.policy.free.cooldown_ms = 0;
        c.policy.member.cooldown_ms = 0;
        c.moderation.webhook_retry_base_ms = 50;
    };
    let a = node_with(&svc, &svc.redis, &ns, "a", tweak).await;
    let b = node_with(&svc, &svc.redis, &ns, "b", tweak).await;
    let (status, body) = a
        .admin_put("/api/videos/wh", json!({"title": "wh", "tier": "free"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let receiver = std::sync::Arc::new(Receiver::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    start(listener, receiver.clone());
    let admin = a.token("root", Role::Admin);
    let (status, created) = send(
        &a,
        reqwest::Method::POST,
        "/api/webhooks",
        &admin,
        Some(json!({"url": url, "events": danmaku::webhooks::EVENTS, "secret": SECRET})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    // B learns of the webhook from the store (its mirror syncs every 250 ms): wait until
    // a comment posted through B is queued.
    let fan = b.token("fan", Role::Free);
    let count = |event: &str| receiver.delivered(event);
    took("a comment on B to be delivered", || async {
        post_text(&b, &fan, "wh", "from b").await;
        count("danmaku.posted") > 0
    })
    .await;
    // One viewer on each node, leaving together: the room is occupied once and vacated
    // once a round. Leaving together is the hard case (each node still sees the other's
    // viewer in its last heartbeat), so it is played a few times.
    const ROUNDS: usize = 3;
    for round in 1..=ROUNDS {
        let mut on_a = a.ws_as("va", Role::Free).await;
        on_a.subscribe("video:wh").await;
        let mut on_b = b.ws_as("vb", Role::Free).await;
        on_b.subscribe("video:wh").await;
        a.wait_for("room.occupied", || async {
            count("room.occupied") == round
        })
        .await;
        drop(on_a);
        drop(on_b);
        a.wait_for("room.vacated", || async { count("room.vacated") == round })
            .await;
    }
    // A mute through A and another comment through A.
    let (status, _) = send(
        &a,
        reqwest::Method::PUT,
        "/api/moderation/mutes",
        &admin,
        Some(json!({"sub": "spammer", "video": "wh", "seconds": 60})),
    )
    .await;
    assert_eq!(status, 200);
    let posts_before = count("danmaku.posted");
    post_text(&a, &a.token("amy", Role::Free), "wh", "from a").await;
    a.wait_for("the mute and A's comment", || async {
        count("user.muted") == 1 && count("danmaku.posted") == posts_before + 1
    })
    .await;
    // Let both workers run a few more rounds: nothing arrives twice.
    let (status, w) = send(
        &b,
        reqwest::Method::GET,
        "/api/webhooks",
        &b.token("root", Role::Admin),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let id = w[0]["id"].as_str().unwrap().to_string();
    b.wait_for("the queue to drain", || async {
        let (_, w) = send(
            &b,
            reqwest::Method::GET,
            &format!("/api/webhooks/{id}"),
            &admin,
            None,
        )
        .await;
        w["pending"] == 0
    })
    .await;
    let attempts = receiver.attempts.lock().unwrap().clone();
    let ids: Vec<&String> = attempts.iter().filter(|a| a.4).map(|a| &a.1).collect();
    let unique: std::collections::HashSet<&&String> = ids.iter().collect();
    assert_eq!(
        ids.len(),
        unique.len(),
        "an event was delivered twice: {attempts:?}"
    );
    assert_eq!(
        (
            count("room.occupied"),
            count("room.vacated"),
            count("user.muted")
        ),
        (ROUNDS, ROUNDS, 1)
    );
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_events_keep_the_shared_record_whichever_of_them_is_subscribed() {
    use crate::moderation::webhooks::{Receiver, SECRET, start};
    let Some(svc) = requested("room events").await else {
        return;
    };
    let ns = unique("rooms");
    let a = node_with(&svc, &svc.redis, &ns, "a", |_| {}).await;
    let (status, body) = a
        .admin_put("/api/videos/r", json!({"title": "r", "tier": "free"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let admin = a.token("root", Role::Admin);
    let subscribe = |events: &'static [&'static str]| {
        let a = &a;
        let admin = admin.clone();
        async move {
            let receiver = std::sync::Arc::new(Receiver::default());
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/hook", listener.local_addr().unwrap());
            start(listener, receiver.clone());
            let (status, created) = send(
                a,
                reqwest::Method::POST,
                "/api/webhooks",
                &admin,
                Some(json!({"url": url, "events": events, "secret": SECRET})),
            )
            .await;
            assert_eq!(status, 201, "{created}");
            move |event: &str| receiver.delivered(event)
        }
    };
    // Only room.vacated subscribed: the record must still learn that the room filled,
    // or its emptying is never a change.
    let vacated = subscribe(&["room.vacated"]).await;
    let mut viewer = a.ws_as("v1", Role::Free).await;
    viewer.subscribe("video:r").await;
    let room_key = format!("{ns}:room:video:r");
    let client = redis::Client::open(svc.redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    a.wait_for("the room recorded occupied", || {
        let mut conn = conn.clone();
        let key = room_key.clone();
        async move {
            let v: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            v.as_deref() == Some("1")
        }
    })
    .await;
    drop(viewer);
    a.wait_for("room.vacated", || async { vacated("room.vacated") == 1 })
        .await;
    // Both subscribed, and another node tells a vacancy it read in a heartbeat taken
    // while this room was between a leave and a join (played by writing the record as
    // that node would): the node with viewers tells the room occupied again.
    let occupied = subscribe(&["room.occupied"]).await;
    let mut viewer = a.ws_as("v2", Role::Free).await;
    viewer.subscribe("video:r").await;
    a.wait_for("room.occupied", || async { occupied("room.occupied") == 1 })
        .await;
    let _: () = redis::cmd("SET")
        .arg(&room_key)
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    a.wait_for("room.occupied again", || async {
        occupied("room.occupied") == 2
    })
    .await;
    assert_eq!(vacated("room.vacated"), 1);
    drop(viewer);
    cleanup(&svc, &ns).await;
}
