//! Danmaku: role rules and error codes, live rebroadcast without echo, history, moderation,
//! restart durability, concurrency, flood control, DPlayer and bilibili XML.

use std::collections::{BTreeSet, HashMap};

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{API_KEY, TestApp, WsClient, status_json};

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

/// Publishes a broadcast sentinel: every socket has read everything before it once it
/// reads the sentinel.
async fn sentinel(app: &TestApp) {
    let (status, _) = app
        .admin_post(
            "/api/push/broadcast",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_stored_acknowledged_and_rebroadcast_without_echo() {
    let app = TestApp::start().await;
    let alice = app.token("alice", Role::Member);
    let mut alice_ws = app.ws_as("alice", Role::Member).await;
    let mut bob_ws = app.ws_as("bob", Role::Free).await;
    let mut guest_ws = app.ws_as("", Role::Guest).await;
    for c in [&mut alice_ws, &mut bob_ws, &mut guest_ws] {
        assert_eq!(c.subscribe("video:42").await["ok"], true);
    }

    let (status, stored, _) = post(
        &app,
        Some(&alice),
        "42",
        json!({"text": "  前方高能  ", "time": 12.5, "mode": "top", "color": "#FF0000", "size": "large"}),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["text"], "前方高能");
    assert_eq!(stored["time"], 12.5);
    assert_eq!(stored["mode"], "top");
    assert_eq!(stored["color"], "#ff0000");
    assert_eq!(stored["size"], "large");
    assert_eq!(stored["audience"], "everyone");
    assert_eq!(stored["user"], json!({"name": "alice"}));
    let id = stored["id"].as_i64().unwrap();

    for c in [&mut bob_ws, &mut guest_ws] {
        let (_, ev) = c.until(|v| v["type"] == "danmaku").await;
        assert_eq!(ev["channel"], "video:42");
        assert_eq!(ev["data"], stored, "viewers get exactly the stored comment");
        assert!(
            !ev.to_string().contains("\"sub\""),
            "no sub on the wire: {ev}"
        );
    }
    // WebSocket posting: acknowledged with the stored comment, ids strictly increase.
    let bob_token_ws_reply = bob_ws
        .request(json!({"op": "danmaku", "video": "42", "text": "hi", "time": 3}))
        .await;
    assert_eq!(bob_token_ws_reply["ok"], true, "{bob_token_ws_reply}");
    let ws_stored = &bob_token_ws_reply["danmaku"];
    assert!(ws_stored["id"].as_i64().unwrap() > id);
    let (_, ev) = alice_ws.until(|v| v["type"] == "danmaku").await;
    assert_eq!(&ev["data"], ws_stored);

    // No echo: the poster's own sockets never got their comment.
    sentinel(&app).await;
    let alice_saw = comments_until_sentinel(&mut alice_ws).await;
    assert!(alice_saw.is_empty(), "alice got: {alice_saw:?}");
    let bob_saw = comments_until_sentinel(&mut bob_ws).await;
    assert!(
        bob_saw.is_empty(),
        "bob got his own comment back: {bob_saw:?}"
    );
    assert_eq!(app.metric("danmaku_comments_posted_total").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_rules_give_precise_codes() {
    let app = TestApp::builder()
        .config(|c| c.danmaku.block_words = vec!["spam".into()])
        .start()
        .await;
    let free = app.token("bob", Role::Free);
    let member = app.token("alice", Role::Member);
    let admin = app.token("root", Role::Admin);

    // Guests cannot post: 401 over REST, login_required over WS.
    let (status, err, _) = post(&app, None, "1", json!({"text": "x"})).await;
    assert_eq!((status, err["code"].as_str()), (401, Some("missing_token")));
    let mut guest = app.ws_as("", Role::Guest).await;
    let reply = guest
        .request(json!({"op": "danmaku", "video": "1", "text": "x"}))
        .await;
    assert_eq!(reply["error"]["code"], "login_required");

    let cases = [
        (json!({"text": "x", "mode": "top"}), 403, "member_style"),
        (json!({"text": "x", "mode": "bottom"}), 403, "member_style"),
        (
            json!({"text": "x", "color": "#00ff00"}),
            403,
            "member_style",
        ),
        (
            json!({"text": "x", "audience": "members"}),
            403,
            "member_audience",
        ),
        (json!({"text": "x".repeat(31)}), 422, "text_too_long"),
        (json!({"text": "   "}), 422, "text_empty"),
        (json!({"text": "\u{7}\u{1b}"}), 422, "text_empty"),
        (json!({"text": "x", "time": -1}), 422, "invalid_time"),
        (
            json!({"text": "x", "mode": "sideways"}),
            422,
            "invalid_mode",
        ),
        (json!({"text": "x", "color": "red"}), 422, "invalid_color"),
        (json!({"text": "x", "size": "huge"}), 422, "invalid_size"),
        (
            json!({"text": "x", "audience": "free"}),
            422,
            "invalid_audience",
        ),
        (json!({"text": "buy ＳＰＡＭ"}), 422, "blocked"),
    ];
    for (body, want_status, code) in &cases {
        let (status, err, _) = post(&app, Some(&free), "1", body.clone()).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (*want_status, Some(*code)),
            "{body}"
        );
    }
    // The same over WebSocket.
    let mut bob_ws = app.ws_as("bob", Role::Free).await;
    let reply = bob_ws
        .request(json!({"op": "danmaku", "video": "1", "text": "x", "mode": "top"}))
        .await;
    assert_eq!(reply["error"]["code"], "member_style");

    // Members: styles, colours, 100 characters, members-only audience.
    let (status, d, _) = post(
        &app,
        Some(&member),
        "1",
        json!({"text": "y".repeat(100), "mode": "bottom", "color": "#123abc", "audience": "members"}),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    let (status, err, _) = post(&app, Some(&member), "1", json!({"text": "z".repeat(101)})).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("text_too_long")));

    // Cooldowns: a free user's second comment within 3 s is 429 with Retry-After.
    let (status, _, _) = post(&app, Some(&free), "1", json!({"text": "first"})).await;
    assert_eq!(status, 201);
    let (status, err, retry) = post(&app, Some(&free), "1", json!({"text": "second"})).await;
    assert_eq!((status, err["code"].as_str()), (429, Some("cooldown")));
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=3).contains(&retry), "retry after {retry}");
    let reply = bob_ws
        .request(json!({"op": "danmaku", "video": "1", "text": "again"}))
        .await;
    assert_eq!(reply["error"]["code"], "cooldown");
    assert!(reply["error"]["retry_after_ms"].as_u64().unwrap() <= 3000);
    // Admins are exempt.
    for i in 0..3 {
        let (status, _, _) = post(
            &app,
            Some(&admin),
            "1",
            json!({"text": format!("a{i}"), "mode": "top"}),
        )
        .await;
        assert_eq!(status, 201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutes_block_posts_and_only_admins_mute() {
    let app = TestApp::start().await;
    let bob = app.token("bob", Role::Free);
    let member = app.token("alice", Role::Member);
    let resp = app
        .http
        .post(app.url("/api/users/bob/mute"))
        .bearer_auth(&member)
        .json(&json!({"seconds": 60}))
        .send()
        .await
        .unwrap();
    let (status, err) = status_json(resp).await;
    assert_eq!((status, err["code"].as_str()), (403, Some("forbidden")));
    let (status, reply) = app
        .admin_post("/api/users/bob/mute", json!({"seconds": 60}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["until"].as_u64().unwrap() > 0);
    let (status, err, _) = post(&app, Some(&bob), "1", json!({"text": "hello"})).await;
    assert_eq!((status, err["code"].as_str()), (403, Some("muted")));
    let (status, _) = app
        .admin_post("/api/users/bob/mute", json!({"seconds": 0}))
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = post(&app, Some(&bob), "1", json!({"text": "hello"})).await;
    assert_eq!(status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_videos_and_members_only_comments_stay_with_members() {
    let app = TestApp::start().await;
    let (status, v) = app
        .admin_put(
            "/api/videos/vip",
            json!({"title": "Members night", "tier": "member"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let free = app.token("bob", Role::Free);
    let member = app.token("alice", Role::Member);
    let (status, err, _) = post(&app, Some(&free), "vip", json!({"text": "x"})).await;
    assert_eq!((status, err["code"].as_str()), (403, Some("member_only")));
    for token in [None, Some(free.as_str())] {
        let (status, err) = history(&app, token, "vip", "").await;
        assert_eq!((status, err["code"].as_str()), (403, Some("member_only")));
        let mut req = app.http.get(app.url("/api/videos/vip/danmaku.xml"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (status, err) = status_json(req.send().await.unwrap()).await;
        assert_eq!((status, err["code"].as_str()), (403, Some("member_only")));
    }
    let mut bob_ws = app.ws_as("bob", Role::Free).await;
    assert_eq!(
        bob_ws.subscribe("video:vip").await["error"]["code"],
        "member_only"
    );
    let (status, _, _) = post(&app, Some(&member), "vip", json!({"text": "ok"})).await;
    assert_eq!(status, 201);
    let (status, page) = history(&app, Some(&member), "vip", "").await;
    assert_eq!((status, texts(&page)), (200, vec!["ok".to_string()]));
    let (_, list) = status_json(app.http.get(app.url("/api/videos")).send().await.unwrap()).await;
    assert_eq!(list[0]["tier"], "member");

    // Members-only comments on a free video: members see them live and in history.
    let mut free_ws = app.ws_as("carol", Role::Free).await;
    let mut member_ws = app.ws_as("dave", Role::Member).await;
    let mut guest_ws = app.ws_as("", Role::Guest).await;
    for c in [&mut free_ws, &mut member_ws, &mut guest_ws] {
        assert_eq!(c.subscribe("video:open").await["ok"], true);
    }
    let erin = app.token("erin", Role::Member);
    let (status, _, _) = post(
        &app,
        Some(&erin),
        "open",
        json!({"text": "secret", "audience": "members"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, _) = post(&app, Some(&free), "open", json!({"text": "public"})).await;
    assert_eq!(status, 201);
    sentinel(&app).await;
    let seen = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .map(|d| d["data"]["text"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        seen(comments_until_sentinel(&mut member_ws).await),
        ["secret", "public"]
    );
    assert_eq!(
        seen(comments_until_sentinel(&mut free_ws).await),
        ["public"]
    );
    assert_eq!(
        seen(comments_until_sentinel(&mut guest_ws).await),
        ["public"]
    );
    let (_, page) = history(&app, None, "open", "").await;
    assert_eq!(texts(&page), ["public"]);
    let (_, page) = history(&app, Some(&free), "open", "").await;
    assert_eq!(texts(&page), ["public"]);
    let (_, page) = history(&app, Some(&member), "open", "").await;
    assert_eq!(texts(&page), ["secret", "public"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_windows_order_and_page() {
    let app = TestApp::start().await;
    let admin = app.token("root", Role::Admin);
    for (t, text) in [
        (30.0, "c"),
        (10.0, "a"),
        (20.0, "b"),
        (10.0, "a2"),
        (40.5, "d"),
    ] {
        let (status, _, _) = post(&app, Some(&admin), "h", json!({"text": text, "time": t})).await;
        assert_eq!(status, 201);
    }
    let (_, page) = history(&app, None, "h", "").await;
    assert_eq!(texts(&page), ["a", "a2", "b", "c", "d"]);
    assert_eq!(page["count"], 5);
    let (_, page) = history(&app, None, "h", "?from=15&to=40").await;
    assert_eq!(texts(&page), ["b", "c"]);
    let (_, page) = history(&app, None, "h", "?limit=2").await;
    assert_eq!(texts(&page), ["a", "a2"]);
    let first_ids: Vec<i64> = history(&app, None, "h", "").await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    let max_id = *first_ids.iter().max().unwrap();
    let (_, page) = history(&app, None, "h", &format!("?after_id={}", max_id - 1)).await;
    assert_eq!(texts(&page), ["d"]);
    let (status, err) = history(&app, None, "h", "?from=-3").await;
    assert_eq!((status, err["code"].as_str()), (422, Some("invalid_range")));
    // A repeat load is served (from the cache) and is invalidated by a new comment.
    let (_, again) = history(&app, None, "h", "").await;
    assert_eq!(texts(&again).len(), 5);
    post(&app, Some(&admin), "h", json!({"text": "e", "time": 50})).await;
    let (_, after) = history(&app, None, "h", "").await;
    assert_eq!(texts(&after).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_recall_admins_delete_others_cannot() {
    let app = TestApp::start().await;
    let alice = app.token("alice", Role::Member);
    let bob = app.token("bob", Role::Free);
    let mut viewer = app.ws_as("carol", Role::Free).await;
    viewer.subscribe("video:m").await;
    let (_, d1, _) = post(&app, Some(&alice), "m", json!({"text": "oops"})).await;
    let id1 = d1["id"].as_i64().unwrap();
    let del = |token: Option<String>, id: i64| {
        let app = &app;
        async move {
            let mut req = app.http.delete(app.url(&format!("/api/danmaku/{id}")));
            req = match token {
                Some(t) => req.bearer_auth(t),
                None => req.header("X-Api-Key", API_KEY),
            };
            status_json(req.send().await.unwrap()).await
        }
    };
    let (status, err) = del(Some(bob.clone()), id1).await;
    assert_eq!((status, err["code"].as_str()), (403, Some("forbidden")));
    let (status, _) = del(Some(alice.clone()), id1).await;
    assert_eq!(status, 204);
    let (_, ev) = viewer.until(|v| v["type"] == "danmaku_deleted").await;
    assert_eq!(ev["data"]["id"], id1);
    let (status, err) = del(Some(alice.clone()), id1).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("unknown_danmaku"))
    );
    let (_, page) = history(&app, None, "m", "").await;
    assert!(texts(&page).is_empty());

    let (_, d2, _) = post(&app, Some(&bob), "m", json!({"text": "rude"})).await;
    let (status, _) = del(None, d2["id"].as_i64().unwrap()).await;
    assert_eq!(status, 204, "admins (API key) delete anything");
    let (status, err) = del(Some(alice), 999_999).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("unknown_danmaku"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_comments_survive_a_restart() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_path_buf();
    let mut ids = BTreeSet::new();
    {
        let app = TestApp::builder()
            .config(|c| c.server.data_dir = dir.clone())
            .start()
            .await;
        let admin = app.token("root", Role::Admin);
        for i in 0..20 {
            let (status, d, _) = post(
                &app,
                Some(&admin),
                "r",
                json!({"text": format!("c{i}"), "time": i}),
            )
            .await;
            assert_eq!(status, 201);
            ids.insert(d["id"].as_i64().unwrap());
        }
        app.admin_put("/api/videos/r", json!({"title": "R", "tier": "member"}))
            .await;
    }
    let app = TestApp::builder()
        .config(|c| c.server.data_dir = dir.clone())
        .start()
        .await;
    let member = app.token("m", Role::Member);
    let (status, page) = history(&app, Some(&member), "r", "").await;
    assert_eq!(status, 200);
    let got: BTreeSet<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids);
    let (status, _) = history(&app, None, "r", "").await;
    assert_eq!(status, 403, "the catalog tier survived too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_posters_lose_and_duplicate_nothing() {
    let app = TestApp::builder()
        .config(|c| {
            c.policy.member.cooldown_ms = 0;
            c.danmaku.free_feed_rate = 0;
        })
        .start()
        .await;
    const POSTERS: usize = 50;
    const EACH: usize = 4;
    let mut viewers = Vec::new();
    for (sub, role) in [
        ("", Role::Guest),
        ("v-free", Role::Free),
        ("v-member", Role::Member),
    ] {
        let mut c = app.ws_as(sub, role).await;
        assert_eq!(c.subscribe("video:busy").await["ok"], true);
        viewers.push(c);
    }
    let mut tasks = Vec::new();
    for p in 0..POSTERS {
        let token = app.token(&format!("poster{p}"), Role::Member);
        let http = app.http.clone();
        let url = app.url("/api/videos/busy/danmaku");
        let ws_base = app.ws_base.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            if p % 2 == 0 {
                for i in 0..EACH {
                    let resp = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"text": format!("{p}-{i}"), "time": i}))
                        .send()
                        .await
                        .unwrap();
                    let (status, d) = status_json(resp).await;
                    assert_eq!(status, 201, "{d}");
                    ids.push(d["id"].as_i64().unwrap());
                }
            } else {
                let mut c = WsClient::connect(&format!("{ws_base}?access_token={token}")).await;
                for i in 0..EACH {
                    let reply = c
                        .request(json!({"op": "danmaku", "video": "busy", "text": format!("{p}-{i}"), "time": i}))
                        .await;
                    assert_eq!(reply["ok"], true, "{reply}");
                    ids.push(reply["danmaku"]["id"].as_i64().unwrap());
                }
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), POSTERS * EACH);
    assert_eq!(unique.len(), all.len(), "duplicate ids");
    sentinel(&app).await;
    for v in &mut viewers {
        let got = comments_until_sentinel(v).await;
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for d in &got {
            *counts.entry(d["data"]["id"].as_i64().unwrap()).or_default() += 1;
        }
        assert_eq!(
            counts.keys().copied().collect::<BTreeSet<_>>(),
            unique,
            "a viewer missed comments"
        );
        assert!(counts.values().all(|n| *n == 1), "a viewer got a duplicate");
        let seqs: Vec<u64> = got.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "seq not strictly increasing"
        );
    }
    let (_, page) = history(&app, None, "busy", "").await;
    assert_eq!(
        page["count"],
        (POSTERS * EACH) as u64,
        "every acknowledged comment is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_sampled_for_free_viewers_and_complete_for_members() {
    let app = TestApp::builder()
        .config(|c| c.danmaku.free_feed_rate = 5)
        .start()
        .await;
    let admin = app.token("root", Role::Admin);
    let mut member = app.ws_as("m", Role::Member).await;
    let mut free = app.ws_as("f", Role::Free).await;
    let mut guest = app.ws_as("", Role::Guest).await;
    for c in [&mut member, &mut free, &mut guest] {
        c.subscribe("video:hot").await;
    }
    const BURST: usize = 60;
    for i in 0..BURST {
        let (status, _, _) =
            post(&app, Some(&admin), "hot", json!({"text": format!("b{i}")})).await;
        assert_eq!(status, 201);
    }
    sentinel(&app).await;
    assert_eq!(comments_until_sentinel(&mut member).await.len(), BURST);
    let free_got = comments_until_sentinel(&mut free).await.len();
    let guest_got = comments_until_sentinel(&mut guest).await.len();
    assert_eq!(
        free_got, guest_got,
        "guests and free users share one sampled feed"
    );
    assert!(
        (1..BURST / 2).contains(&free_got),
        "free feed got {free_got} of {BURST}"
    );
    let sampled = app.metric("danmaku_free_feed_sampled_out_total").await;
    assert_eq!(sampled as usize, BURST - free_got);
    let (_, page) = history(&app, None, "hot", "").await;
    assert_eq!(
        page["count"], BURST as u64,
        "stored comments are never dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dplayer_v3_reads_and_posts() {
    let app = TestApp::start().await;
    let alice = app.token("alice", Role::Member);
    let resp = app
        .http
        .post(app.url("/dplayer/v3/"))
        .bearer_auth(&alice)
        .json(&json!({"id": "dp", "author": "mallory", "token": "x", "time": 1.5, "text": "<b>hi</b> & 'you'", "color": 16711680, "type": 1}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 0);
    assert_eq!(
        body["data"]["user"]["name"], "alice",
        "author comes from the JWT"
    );
    let (status, list) = status_json(
        app.http
            .get(app.url("/dplayer/v3/?id=dp&max=10"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["code"], 0);
    assert_eq!(
        list["data"],
        json!([[
            1.5,
            1,
            16711680,
            "alice",
            "&lt;b&gt;hi&lt;&#x2F;b&gt; &amp; &#x27;you&#x27;"
        ]])
    );
    let (_, list) = status_json(
        app.http
            .get(app.url("/dplayer/v3/?id=dp&limit=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // Errors are {code: 1, msg} with the rule's status.
    let bob = app.token("bob", Role::Free);
    let resp = app
        .http
        .post(app.url("/dplayer/v3/"))
        .bearer_auth(&bob)
        .json(&json!({"id": "dp", "text": "x", "type": 1}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(1)), "{body}");
    assert!(body["msg"].as_str().unwrap().contains("member_style"));
    let resp = app
        .http
        .post(app.url("/dplayer/v3/"))
        .json(&json!({"id": "dp", "text": "x"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!((status, body["code"].as_i64()), (401, Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bilibili_xml_exports_strictly_and_round_trips() {
    let app = TestApp::start().await;
    let admin = app.token("root", Role::Admin);
    let posts = [
        json!({"text": "a<b>&\"c\"'", "time": 1.25, "mode": "scroll", "color": "#ffffff", "size": "small"}),
        json!({"text": "top one", "time": 2, "mode": "top", "color": "#ff0000", "size": "normal"}),
        json!({"text": "bottom one", "time": 3.5, "mode": "bottom", "color": "#00ff00", "size": "large"}),
    ];
    for p in &posts {
        let (status, _, _) = post(&app, Some(&admin), "x1", p.clone()).await;
        assert_eq!(status, 201);
    }
    let resp = app
        .http
        .get(app.url("/api/videos/x1/danmaku.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let xml = resp.text().await.unwrap();
    assert!(
        xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><i>"#),
        "{xml}"
    );
    let doc = roxmltree::Document::parse(&xml).expect("strict XML parse");
    let ds: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("d"))
        .collect();
    assert_eq!(ds.len(), 3);
    for d in &ds {
        let p: Vec<&str> = d.attribute("p").unwrap().split(',').collect();
        assert_eq!(p.len(), 8);
        p[4].parse::<u64>().expect("integer send time");
        assert!(["1", "4", "5"].contains(&p[1]));
        assert_ne!(p[6], "root", "the user id is hashed");
    }
    assert_eq!(ds[0].text(), Some("a<b>&\"c\"'"));

    // Import into another video and compare.
    let resp = app
        .http
        .post(app.url("/api/videos/x2/danmaku.xml"))
        .header("X-Api-Key", API_KEY)
        .header("content-type", "application/xml")
        .body(xml.replace("</i>", r#"<d p="9,7,25,0,1700000000,0,ff,99">[advanced]</d><d p="9,8,25,0,1700000000,0,ff,100">code</d></i>"#))
        .send()
        .await
        .unwrap();
    let (status, reply) = status_json(resp).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"imported": 3, "skipped": 2}));
    let strip = |page: Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| json!([d["text"], d["time"], d["mode"], d["color"], d["size"]]))
            .collect()
    };
    let (_, a) = history(&app, None, "x1", "").await;
    let (_, b) = history(&app, None, "x2", "").await;
    assert_eq!(
        strip(a),
        strip(b),
        "round trip keeps text, time, mode, colour, size"
    );

    // Malformed XML imports nothing.
    let resp = app
        .http
        .post(app.url("/api/videos/x3/danmaku.xml"))
        .header("X-Api-Key", API_KEY)
        .header("content-type", "application/xml")
        .body(r#"<?xml version="1.0" encoding="UTF-8"?><i><d p="1,1,25,0,1,0,a,1">ok</d><d>"#)
        .send()
        .await
        .unwrap();
    let (status, err) = status_json(resp).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("malformed_xml")));
    let (_, c) = history(&app, None, "x3", "").await;
    assert_eq!(c["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_without_a_name_claim_get_a_pseudonym_not_their_sub() {
    let app = TestApp::start().await;
    let token = app
        .signer
        .mint(
            "u-8731",
            Role::Member,
            None,
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let mut viewer = app.ws_as("v", Role::Free).await;
    viewer.subscribe("video:p").await;
    let (status, d, _) = post(&app, Some(&token), "p", json!({"text": "hi"})).await;
    assert_eq!(status, 201);
    let name = d["user"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("user-") && !name.contains("8731"),
        "{name}"
    );
    let (_, ev) = viewer.until(|v| v["type"] == "danmaku").await;
    assert!(!ev.to_string().contains("u-8731"), "{ev}");
}
