//! Posting danmaku: stored, acknowledged and rebroadcast without echo; role rules with
//! precise error codes and cooldowns; mutes; pseudonyms for authors without a name.

use danmaku::model::Role;
use serde_json::json;

use super::{comments_until_sentinel, post, sentinel};
use crate::common::{TestApp, status_json};

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
    sentinel(&app, "42").await;
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
