//! WebSocket abuse: each attack ends (or is contained) on the abusing socket only. After
//! each one the server still answers `/healthz` and a bystander on the same channel still
//! gets a push.

use danmaku::model::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    },
};

use crate::common::{TestApp, WAIT, WsClient, tag_of};

/// The channel abusers and bystanders share.
const ROOM: &str = "lobby";

/// A server with the shared room declared, and a bystander subscribed to it.
async fn setup(app: &TestApp) -> WsClient {
    app.declare(ROOM, "free").await;
    let mut bystander = app.ws_as("bystander", Role::Free).await;
    let reply = bystander.subscribe(ROOM).await;
    assert_eq!(reply["ok"], true, "{reply}");
    bystander
}

/// The server is up and the bystander still gets a push on the shared room.
async fn assert_healthy(app: &TestApp, bystander: &mut WsClient, tag: &str) {
    let resp = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
    app.push_channel(ROOM, json!({"payload": {"tag": tag}}))
        .await;
    let (_, ev) = bystander.until(|v| tag_of(v) == Some(tag)).await;
    assert_eq!(ev["channel"], ROOM);
}

/// Reads the abuser's frames until the server closes: returns the JSON replies and the
/// close code (None when the connection ended without a readable close frame, which can
/// happen when the server resets a socket whose peer is still writing).
async fn drain(c: &mut WsClient) -> (Vec<Value>, Option<u16>) {
    let mut replies = Vec::new();
    loop {
        let msg = tokio::time::timeout(WAIT, c.ws.next())
            .await
            .expect("the server neither answered nor closed");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                match v {
                    Value::Array(items) => replies.extend(items),
                    v => replies.push(v),
                }
            }
            Some(Ok(Message::Close(f))) => {
                return (replies, Some(f.map_or(1005, |f| f.code.into())));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (replies, None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_closes_only_that_socket_with_1003() {
    let app = TestApp::start().await;
    let mut bystander = setup(&app).await;
    let mut abuser = app.ws_as("abuser", Role::Free).await;
    abuser.subscribe(ROOM).await;
    abuser
        .ws
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .expect("send");
    assert_eq!(abuser.closed_with().await, 1003);
    assert_healthy(&app, &mut bystander, "after-binary").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_is_closed_with_1007() {
    let app = TestApp::start().await;
    let mut bystander = setup(&app).await;
    let mut abuser = app.ws_as("abuser", Role::Free).await;
    abuser.subscribe(ROOM).await;
    // A text frame whose payload is not UTF-8: tungstenite only builds these as raw frames.
    let frame = Frame::message(
        vec![b'{', 0xff, 0xfe, 0xfd, b'}'],
        OpCode::Data(Data::Text),
        true,
    );
    abuser.ws.send(Message::Frame(frame)).await.expect("send");
    assert_eq!(abuser.closed_with().await, 1007);
    assert_healthy(&app, &mut bystander, "after-utf8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_frame_is_refused_with_1009_without_buffering_it() {
    let app = TestApp::start().await;
    let mut bystander = setup(&app).await;
    let mut abuser = app.ws_as("abuser", Role::Free).await;
    let huge = format!(
        r#"{{"op":"ping","pad":"{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    // The server refuses on the frame header and closes while the client is still
    // writing, so the write itself may fail.
    let _ = abuser.ws.send(Message::text(huge)).await;
    let (replies, code) = drain(&mut abuser).await;
    assert!(
        replies.iter().all(|r| r["type"] != "reply"),
        "the huge frame was answered: {replies:?}"
    );
    // A close frame, when it arrives before the reset, must say 1009.
    assert!(matches!(code, None | Some(1009)), "closed with {code:?}");
    app.wait_for("the abuser to be unregistered", || async {
        app.metric("danmaku_connections{role=\"free\"}").await == 1.0
    })
    .await;
    assert_healthy(&app, &mut bystander, "after-huge").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_ops_is_rate_limited_then_closed_with_1008() {
    let app = TestApp::builder()
        .config(|c| {
            c.ws.ops_per_s = 50;
            c.ws.ops_burst = 100;
            c.ws.max_errors_per_min = 20;
        })
        .start()
        .await;
    let mut bystander = setup(&app).await;
    let mut abuser = app.ws_as("abuser", Role::Free).await;
    for i in 0..1000 {
        abuser
            .ws
            .feed(Message::text(json!({"op": "ping", "id": i}).to_string()))
            .await
            .expect("feed");
    }
    let _ = abuser.ws.flush().await;
    let (replies, code) = drain(&mut abuser).await;
    let ok = replies.iter().filter(|r| r["ok"] == true).count();
    let limited = replies
        .iter()
        .filter(|r| r["error"]["code"] == "rate_limited")
        .count();
    assert!(
        (100..=110).contains(&ok),
        "the burst allowance is 100 (plus refill): {ok} ok"
    );
    assert!(limited >= 1, "no rate_limited reply among {replies:?}");
    assert!(
        ok + limited < 200,
        "the socket was not cut short: {ok} ok, {limited} limited"
    );
    assert_eq!(code, Some(1008));
    assert!(app.metric("danmaku_ws_rate_limited_total").await >= limited as f64);
    assert_healthy(&app, &mut bystander, "after-burst").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_10k_channels_stops_at_the_cap() {
    let app = TestApp::builder()
        .config(|c| {
            // Isolate the channel cap from the op rate limit.
            c.ws.ops_per_s = 0;
            c.ws.max_channels = 64;
        })
        .start()
        .await;
    let mut bystander = setup(&app).await;
    let abuser = app.ws_as("abuser", Role::Free).await;
    const N: usize = 10_000;
    let (mut tx, mut rx) = abuser.ws.split();
    // Write and read at once: 10k replies would overflow an unread outbox.
    let writer = tokio::spawn(async move {
        for i in 0..N {
            let op = json!({"op": "subscribe", "channel": format!("video:v{i}"), "id": i});
            tx.feed(Message::text(op.to_string())).await.expect("feed");
        }
        tx.flush().await.expect("flush");
        tx
    });
    let (mut ok, mut capped) = (0, 0);
    let mut seen = 0;
    while seen < N {
        let msg = tokio::time::timeout(WAIT, rx.next())
            .await
            .expect("replies stopped")
            .expect("socket ended")
            .expect("socket error");
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).expect("JSON");
        let items = match v {
            Value::Array(items) => items,
            v => vec![v],
        };
        for r in items.into_iter().filter(|r| r["type"] == "reply") {
            seen += 1;
            if r["ok"] == true {
                ok += 1;
            } else {
                assert_eq!(r["error"]["code"], "too_many_subscriptions", "{r}");
                capped += 1;
            }
        }
    }
    assert_eq!(ok, 64);
    assert_eq!(capped, N - 64);
    let tx = writer.await.expect("writer");
    assert_healthy(&app, &mut bystander, "after-10k").await;
    drop((tx, rx));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_connection_is_dropped_at_the_handshake_deadline() {
    let app = TestApp::builder()
        .config(|c| c.server.handshake_timeout_ms = 300)
        .start()
        .await;
    let mut bystander = setup(&app).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // One peer sends nothing; another sends half a request head and stops.
    let mut silent = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let mut partial = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    partial
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .expect("write");
    for (name, sock) in [("silent", &mut silent), ("partial", &mut partial)] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(WAIT, sock.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the {name} connection was never dropped"));
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the {name} connection got bytes instead of a close: {read:?}"
        );
    }
    // The bystander completed its handshake long ago and sat idle past the deadline:
    // the deadline is for handshakes only.
    assert_healthy(&app, &mut bystander, "after-half-open").await;
}
