//! A stalled client is dropped as slow; it never holds up the publisher or other sockets.

use danmaku::auth::Role;
use serde_json::json;

use crate::common::{TestApp, WsClient, tag_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stalled_client_is_dropped_and_the_others_get_everything() {
    let app = TestApp::builder()
        .config(|c| {
            c.outbox_max_msgs = 64;
            c.outbox_max_bytes = 256 * 1024;
        })
        .start()
        .await;
    const READERS: usize = 8;
    const EVENTS: usize = 1500;
    // Never read from this one: its kernel buffers fill, then its outbox.
    let stalled = app.ws_as("stalled", Role::Free).await;
    let mut readers = Vec::new();
    for i in 0..READERS {
        let mut c = app.ws_as(&format!("reader{i}"), Role::Free).await;
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(EVENTS);
            loop {
                let v = c.next_json().await;
                if v["type"] == "end" {
                    // Hand the socket back so it stays open until the test ends.
                    return (seen, c);
                }
                if let Some(t) = tag_of(&v) {
                    seen.push(t.parse::<usize>().unwrap());
                }
            }
        }));
    }
    let pad = "x".repeat(8 * 1024);
    for i in 0..EVENTS {
        let (status, reply) = app
            .admin_post(
                "/api/push/broadcast",
                json!({"payload": {"tag": i.to_string(), "pad": pad}}),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    app.admin_post(
        "/api/push/broadcast",
        json!({"event": "end", "payload": {}}),
    )
    .await;
    let mut open = Vec::new();
    for r in readers {
        let (seen, c) = r.await.expect("reader");
        open.push(c);
        assert_eq!(
            seen,
            (0..EVENTS).collect::<Vec<_>>(),
            "a reader lost or reordered events"
        );
    }
    app.wait_for("the stalled socket to be dropped as slow", || async {
        app.metric("danmaku_slow_disconnects_total").await >= 1.0
    })
    .await;
    app.wait_for("the stalled socket to be unregistered", || async {
        app.metric("danmaku_connections{role=\"free\"}").await == READERS as f64
    })
    .await;
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_stalled_viewers_of_200_are_dropped_and_the_190_miss_nothing() {
    const VIEWERS: usize = 200;
    const STALLED: usize = 10;
    const MAX_EVENTS: usize = 20_000;
    let app = TestApp::builder()
        .config(|c| {
            c.outbox_max_msgs = 256;
            c.outbox_max_bytes = 256 * 1024;
        })
        .start()
        .await;
    app.declare("stage", "free").await;
    // Stalled viewers read their subscribe reply, then never read again; their small
    // receive windows make the server's outbox the buffer that overflows.
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut c = WsClient::connect_small_buffer(&app.ws_base, 4096).await;
        assert_eq!(c.subscribe("stage").await["ok"], true);
        stalled.push(c);
    }
    let mut readers = Vec::new();
    for _ in 0..VIEWERS - STALLED {
        let mut c = app.ws_as("", Role::Guest).await;
        assert_eq!(c.subscribe("stage").await["ok"], true);
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let v = c.next_json().await;
                if v["type"] == "end" {
                    return (seen, c);
                }
                if let Some(t) = tag_of(&v) {
                    seen.push(t.parse::<usize>().unwrap());
                }
            }
        }));
    }
    assert_eq!(
        app.metric("danmaku_connections{role=\"guest\"}").await,
        VIEWERS as f64
    );
    // A steady stream until all stalled viewers are dropped (checked every 50 events).
    let pad = "p".repeat(1024);
    let mut sent = 0;
    while app.metric("danmaku_slow_disconnects_total").await < STALLED as f64 {
        assert!(sent < MAX_EVENTS, "stalled viewers never dropped");
        for _ in 0..50 {
            app.push_channel(
                "stage",
                json!({"payload": {"tag": sent.to_string(), "pad": pad}}),
            )
            .await;
            sent += 1;
        }
    }
    app.push_channel("stage", json!({"event": "end", "payload": {}}))
        .await;
    let mut open = Vec::new();
    for r in readers {
        let (seen, c) = r.await.expect("reader");
        assert_eq!(
            seen,
            (0..sent).collect::<Vec<_>>(),
            "a healthy viewer lost events"
        );
        open.push(c);
    }
    assert_eq!(
        app.metric("danmaku_slow_disconnects_total").await,
        STALLED as f64,
        "only the stalled viewers are dropped"
    );
    app.wait_for("the gauge to drop by the stalled viewers", || async {
        app.metric("danmaku_connections{role=\"guest\"}").await == (VIEWERS - STALLED) as f64
    })
    .await;
    drop(stalled);
}
