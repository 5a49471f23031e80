//! WebSocket protocol behaviour: personal channels, bad frames, refresh, expiry, shutdown.

use danmaku::model::Role;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{TestApp, WsClient, tag_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_describes_the_socket() {
    let app = TestApp::start().await;
    let guest = app.ws_as("", Role::Guest).await;
    assert_eq!(guest.welcome["user"]["role"], "guest");
    assert_eq!(guest.welcome["user"]["sub"], serde_json::Value::Null);
    assert_eq!(guest.welcome["heartbeat_s"], 25);
    assert_eq!(guest.welcome["protocol"], 1);
    let alice = app.ws_as("alice", Role::Member).await;
    assert_eq!(alice.welcome["user"]["sub"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_push_reaches_every_device_of_that_user_only() {
    let app = TestApp::start().await;
    let mut phone = app.ws_as("alice", Role::Member).await;
    let mut laptop = app.ws_as("alice", Role::Member).await;
    let mut bob = app.ws_as("bob", Role::Free).await;

    let (status, reply) = app
        .admin_post(
            "/api/push/users/alice",
            json!({"event": "order", "payload": {"type": 1, "orderId": 7, "content": "order 7 paid"}}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["delivered"], 2);
    assert!(reply["seq"].as_u64().unwrap() >= 1);
    for c in [&mut phone, &mut laptop] {
        let (_, ev) = c.until(|v| v["type"] == "order").await;
        assert_eq!(ev["channel"], "user:alice");
        // The payload passes through unchanged, key order included.
        assert_eq!(
            ev["data"]["payload"].to_string(),
            r#"{"type":1,"orderId":7,"content":"order 7 paid"}"#
        );
    }
    let (status, reply) = app
        .admin_post("/api/push/users/nobody", json!({"payload": 1}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(reply["delivered"], 0, "offline users are not an error");

    let (status, reply) = app
        .admin_post(
            "/api/push/users",
            json!({"users": ["alice", "bob", "alice"], "payload": {"tag": "both"}}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["delivered"], 3);
    for c in [&mut phone, &mut laptop, &mut bob] {
        let (before, _) = c.until(|v| tag_of(v) == Some("both")).await;
        assert!(
            before
                .iter()
                .all(|v| v["type"] != "order" || v["channel"] == "user:alice")
        );
    }
    // Bob never saw alice's order.
    app.admin_post(
        "/api/push/broadcast",
        json!({"event": "sentinel", "payload": {}}),
    )
    .await;
    let (events, _) = bob.until(|v| v["type"] == "sentinel").await;
    assert!(events.iter().all(|v| v["type"] != "order"), "{events:?}");

    // Nobody may join another user's personal channel, admins included.
    let mut admin = app.ws_as("root", Role::Admin).await;
    for c in [&mut bob, &mut admin] {
        let reply = c.subscribe("user:alice").await;
        assert_eq!(reply["ok"], false);
        assert_eq!(reply["error"]["code"], "forbidden");
    }
    let reply = phone.subscribe("user:alice").await;
    assert_eq!(reply["error"]["code"], "already_subscribed");
}

/// A client that has read `welcome` is registered: a user push sent right after
/// reaches it. (The welcome used to leave before the registration, and a push in that
/// gap missed the socket.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_read_welcome_is_reachable_at_once() {
    let app = TestApp::start().await;
    let mut devices = Vec::new();
    // Under max_connections_per_user (16).
    for n in 1..=12u64 {
        devices.push(app.ws_as("carol", Role::Free).await);
        let (status, reply) = app
            .admin_post("/api/push/users/carol", json!({"payload": {"n": n}}))
            .await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["delivered"], n, "after {n} welcomes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_replies_and_the_socket_stays_up() {
    let app = TestApp::start().await;
    let mut c = app.ws_as("bob", Role::Free).await;
    c.send_text("this is not json").await;
    let reply = c.next_json().await;
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"]["code"], "bad_json");

    let reply = c.request(json!({"op": "dance"})).await;
    assert_eq!(reply["error"]["code"], "unknown_op");
    let reply = c.request(json!({"op": "subscribe"})).await;
    assert_eq!(reply["error"]["code"], "bad_request");
    let reply = c
        .request(json!({"op": "subscribe", "channel": "bad name!"}))
        .await;
    assert_eq!(reply["error"]["code"], "invalid_channel");
    let reply = c
        .request(json!({"op": "subscribe", "channel": "merchant:7"}))
        .await;
    assert_eq!(reply["error"]["code"], "unknown_channel");
    let reply = c
        .request(json!({"op": "unsubscribe", "channel": "news"}))
        .await;
    assert_eq!(reply["error"]["code"], "not_subscribed");
    let reply = c
        .request(json!({"op": "unsubscribe", "channel": "broadcast"}))
        .await;
    assert_eq!(reply["error"]["code"], "reserved_channel");

    let reply = c.request(json!({"op": "ping"})).await;
    assert_eq!(
        reply["ok"], true,
        "socket still serves after errors: {reply}"
    );
    let bad = app.metric("danmaku_ws_bad_frames_total").await;
    assert!(bad >= 3.0, "bad frames counted: {bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_abuse_is_closed_with_1008() {
    let app = TestApp::builder()
        .config(|c| c.ws.max_errors_per_min = 5)
        .start()
        .await;
    let mut c = app.ws_as("bob", Role::Free).await;
    for _ in 0..6 {
        c.send_text("{").await;
    }
    assert_eq!(c.closed_with().await, 1008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_are_closed_with_1009() {
    let app = TestApp::start().await;
    let mut c = app.ws_as("bob", Role::Free).await;
    let big = format!(r#"{{"op":"ping","pad":"{}"}}"#, "x".repeat(32 * 1024));
    // The server may close before the whole frame is written; ignore send errors.
    let _ = c.ws.send(Message::text(big)).await;
    assert_eq!(c.closed_with().await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_are_closed_with_1003() {
    let app = TestApp::start().await;
    let mut c = app.ws_as("bob", Role::Free).await;
    c.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(c.closed_with().await, 1003);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_upgrades_at_once_and_downgrades_drop_member_channels() {
    let app = TestApp::start().await;
    app.declare("vip", "member").await;
    app.declare("lobby", "free").await;
    let mut c = app.ws_as("carol", Role::Free).await;
    assert_eq!(c.subscribe("lobby").await["ok"], true);
    let reply = c.subscribe("vip").await;
    assert_eq!(reply["error"]["code"], "forbidden");

    // Upgrade: member content flows at once.
    let reply = c
        .request(json!({"op": "refresh", "token": app.token("carol", Role::Member)}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["user"]["role"], "member");
    assert_eq!(c.subscribe("vip").await["ok"], true);
    app.push_channel(
        "vip",
        json!({"payload": {"tag": "vip-1"}, "audience": "members"}),
    )
    .await;
    app.admin_post(
        "/api/push/broadcast",
        json!({"payload": {"tag": "members-bc"}, "audience": "members"}),
    )
    .await;
    c.until(|v| tag_of(v) == Some("vip-1")).await;
    c.until(|v| tag_of(v) == Some("members-bc")).await;
    assert_eq!(
        app.metric("danmaku_connections{role=\"member\"}").await,
        1.0
    );

    // Downgrade: the member channel is dropped with a notice; free channels stay.
    let reply = c
        .request(json!({"op": "refresh", "token": app.token("carol", Role::Free)}))
        .await;
    assert_eq!(reply["user"]["role"], "free");
    let (_, notice) = c.until(|v| v["type"] == "unsubscribed").await;
    assert_eq!(notice["channel"], "vip");
    assert_eq!(notice["reason"], "forbidden");
    app.push_channel("vip", json!({"payload": {"tag": "vip-2"}}))
        .await;
    app.admin_post(
        "/api/push/broadcast",
        json!({"payload": {"tag": "members-bc-2"}, "audience": "members"}),
    )
    .await;
    app.push_channel("lobby", json!({"payload": {"tag": "lobby-1"}}))
        .await;
    let (events, _) = c.until(|v| tag_of(v) == Some("lobby-1")).await;
    assert!(
        events
            .iter()
            .all(|v| !matches!(tag_of(v), Some("vip-2" | "members-bc-2"))),
        "member content after downgrade: {events:?}"
    );
    assert_eq!(app.metric("danmaku_connections{role=\"free\"}").await, 1.0);

    // A refresh cannot switch users, and bad tokens are refused with their code.
    let reply = c
        .request(json!({"op": "refresh", "token": app.token("mallory", Role::Admin)}))
        .await;
    assert_eq!(reply["error"]["code"], "sub_mismatch");
    let reply = c
        .request(json!({"op": "refresh", "token": "garbage"}))
        .await;
    assert_eq!(reply["error"]["code"], "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_gets_a_notice_then_close_4001() {
    let app = TestApp::builder()
        .config(|c| c.ws.token_grace_s = 1)
        .start()
        .await;
    let token = app
        .signer
        .mint(
            "dave",
            Role::Member,
            None,
            std::time::Duration::from_secs(2),
        )
        .unwrap();
    let mut c = WsClient::connect(&format!("{}?access_token={token}", app.ws_base)).await;
    let (_, notice) = c.until(|v| v["type"] == "token_expired").await;
    assert_eq!(notice["grace_s"], 1);
    assert_eq!(c.closed_with().await, 4001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_within_the_grace_keeps_the_socket() {
    let app = TestApp::builder()
        .config(|c| c.ws.token_grace_s = 2)
        .start()
        .await;
    let minted = danmaku::model::time::now_secs();
    let token = app
        .signer
        .mint("erin", Role::Free, None, std::time::Duration::from_secs(1))
        .unwrap();
    let mut c = WsClient::connect(&format!("{}?access_token={token}", app.ws_base)).await;
    c.until(|v| v["type"] == "token_expired").await;
    let reply = c
        .request(json!({"op": "refresh", "token": app.token("erin", Role::Free)}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    // The condition is the clock itself: wait until the old token's grace is over.
    let old_close = minted + 1 + 2 + 1;
    app.wait_for("the old token's grace to end", || async move {
        danmaku::model::time::now_secs() > old_close
    })
    .await;
    let (status, _) = app
        .admin_post(
            "/api/push/users/erin",
            json!({"payload": {"tag": "still-here"}}),
        )
        .await;
    assert_eq!(status, 200);
    c.until(|v| tag_of(v) == Some("still-here")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_read_free_channels_and_cannot_refresh() {
    let app = TestApp::start().await;
    app.declare("lobby", "free").await;
    let mut g = app.ws_as("", Role::Guest).await;
    assert_eq!(g.subscribe("lobby").await["ok"], true);
    let reply = g
        .request(json!({"op": "refresh", "token": app.token("x", Role::Admin)}))
        .await;
    assert_eq!(reply["error"]["code"], "sub_mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_1001() {
    let mut app = TestApp::start().await;
    let mut c = app.ws_as("frank", Role::Free).await;
    app.stop();
    assert_eq!(c.closed_with().await, 1001);
}
