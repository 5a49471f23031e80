//! A stalled client is dropped as slow; it never holds up the publisher or other sockets.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use danmaku::model::Role;
use serde_json::json;

use crate::common::{HEAVY, TestApp, WsClient, tag_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stalled_client_is_dropped_and_the_others_get_everything() {
    let _heavy = HEAVY.lock().await;
    let app = TestApp::builder()
        .config(|c| {
            c.ws.outbox_max_msgs = 64;
            c.ws.outbox_max_bytes = 256 * 1024;
        })
        .start()
        .await;
    const READERS: usize = 8;
    const EVENTS: usize = 1500;
    // Never read from this one: its kernel buffers fill, then its outbox.
    let stalled = app.ws_as("stalled", Role::Free).await;
    // Each reader publishes how many events it has seen; the publisher never runs more
    // than WINDOW events ahead of the slowest reader. So only the stalled socket can fall
    // behind, however slow this machine is, and the test does not depend on timing.
    const WINDOW: usize = 16;
    let progress: Vec<Arc<AtomicUsize>> = (0..READERS).map(|_| Arc::default()).collect();
    let mut readers = Vec::new();
    for (i, seen_count) in progress.iter().cloned().enumerate() {
        let c = app.ws_as(&format!("reader{i}"), Role::Free).await;
        readers.push(spawn_reader(c, seen_count));
    }
    let pad = "x".repeat(8 * 1024);
    for i in 0..EVENTS {
        if i >= WINDOW {
            app.wait_for("the readers to keep up", || async {
                progress
                    .iter()
                    .all(|p| p.load(Ordering::Relaxed) + WINDOW > i)
            })
            .await;
        }
        broadcast_tagged(&app, i, &pad).await;
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

/// Issue 7's scenario: 1000 viewers of one room, events at 100/s, 10 viewers stop
/// reading. The 10 are closed as slow, the 990 get every event in order, and the bytes
/// queued in outboxes never exceed the per-socket cap times the sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_stalled_viewers_of_1000_at_100_events_per_s_are_dropped_and_the_990_miss_nothing() {
    let _heavy = HEAVY.lock().await;
    const VIEWERS: usize = 1000;
    const STALLED: usize = 10;
    const RATE: usize = 100;
    const MAX_BYTES: usize = 512 * 1024;
    const MAX_EVENTS: usize = 20_000;
    let app = TestApp::builder()
        .config(|c| {
            c.ws.outbox_max_msgs = 512;
            c.ws.outbox_max_bytes = MAX_BYTES;
            // Without a cap Linux lets a stalled reader's kernel buffer grow to 4 MiB
            // before the queue sees anything (about 40 s at this rate).
            c.server.socket_send_buffer = 64 * 1024;
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
    // Connect everyone first (50 at a time), then start reading: a reader that waited
    // for events while 1000 sockets were still connecting would time out.
    let mut clients = Vec::new();
    while clients.len() < VIEWERS - STALLED {
        let n = (VIEWERS - STALLED - clients.len()).min(50);
        let batch = (0..n).map(|_| async {
            let mut c = app.ws_as("", Role::Guest).await;
            assert_eq!(c.subscribe("stage").await["ok"], true);
            c
        });
        clients.extend(futures_util::future::join_all(batch).await);
    }
    let mut readers = Vec::new();
    for c in clients {
        readers.push(spawn_reader(c, Arc::default()));
    }
    assert_eq!(
        app.metric("danmaku_connections{role=\"guest\"}").await,
        VIEWERS as f64
    );
    // A paced stream, RATE events per second in ticks of a tenth of a second, until all
    // stalled viewers are dropped. The interval paces the load; it is not a wait for a
    // condition (that is the metric check).
    let pad = "p".repeat(1024);
    let mut sent = 0;
    let mut max_queued = 0.0f64;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    while app.metric("danmaku_slow_disconnects_total").await < STALLED as f64 {
        assert!(sent < MAX_EVENTS, "stalled viewers never dropped");
        tick.tick().await;
        for _ in 0..RATE / 10 {
            app.push_channel(
                "stage",
                json!({"payload": {"tag": sent.to_string(), "pad": pad}}),
            )
            .await;
            sent += 1;
        }
        max_queued = max_queued.max(app.metric("danmaku_outbox_queued_bytes").await);
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
    assert!(
        max_queued <= (VIEWERS * MAX_BYTES) as f64,
        "outboxes held {max_queued} bytes, over the cap of {VIEWERS} x {MAX_BYTES}"
    );
    assert!(max_queued > 0.0, "the gauge never saw a queued byte");
    app.wait_for("the gauge to drop by the stalled viewers", || async {
        app.metric("danmaku_connections{role=\"guest\"}").await == (VIEWERS - STALLED) as f64
    })
    .await;
    drop(stalled);
}

/// A reader dropped as slow while a batch was half written still gets a well-formed
/// stream when it reads again: the rest of that frame first, then the close (4008).
/// Never a close frame spliced into a data frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_dropped_as_slow_mid_frame_still_reads_a_well_formed_stream() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let _heavy = HEAVY.lock().await;
    let app = TestApp::builder()
        .config(|c| {
            // Room for several batches, so the session is blocked in a write (kernel
            // buffers full, kept small by the send-buffer cap) when the outbox overflows.
            c.ws.outbox_max_msgs = 64;
            c.ws.outbox_max_bytes = 256 * 1024;
            c.server.socket_send_buffer = 16 * 1024;
        })
        .start()
        .await;
    let mut slow = WsClient::connect_small_buffer(&app.ws_base, 4096).await;
    let pad = "s".repeat(8 * 1024);
    let mut sent = 0;
    // Phase 1: one event at a time while the socket takes them (the gauge falls back to
    // 0 once an event is written). When the kernel buffers are full the write blocks and
    // its bytes stay queued: the session is now in the middle of a frame.
    loop {
        assert!(sent < 1_000, "the socket never stopped taking events");
        broadcast_tagged(&app, sent, &pad).await;
        sent += 1;
        let written = async {
            while app.metric("danmaku_outbox_queued_bytes").await > 0.0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(std::time::Duration::from_millis(500), written)
            .await
            .is_err()
        {
            break;
        }
    }
    // Phase 2: overflow the outbox while that write is blocked.
    while app.metric("danmaku_slow_disconnects_total").await < 1.0 {
        assert!(sent < 5_000, "the slow reader was never dropped");
        for _ in 0..10 {
            broadcast_tagged(&app, sent, &pad).await;
            sent += 1;
        }
    }
    // The reader drains its socket now, so the server can finish the cut frame (it
    // waits up to a second for that) and then send the close: every frame must parse and
    // the last one must be the 4008 close. A close frame spliced into the cut data frame
    // shows up as a frame that is not JSON, a UTF-8 error or an end in mid-frame.
    let mut frames = 0;
    loop {
        let next = tokio::time::timeout(crate::common::WAIT, slow.ws.next())
            .await
            .expect("the stream ends after the drop");
        match next {
            Some(Ok(Message::Text(t))) => {
                serde_json::from_str::<serde_json::Value>(&t)
                    .unwrap_or_else(|e| panic!("frame {frames} is not JSON: {e}"));
                frames += 1;
            }
            Some(Ok(Message::Close(f))) => {
                let code = f.map(|f| u16::from(f.code));
                assert_eq!(code, Some(4008), "closed as slow after {frames} frames");
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("stream broken after {frames} frames: {e}"),
            None => panic!("hung up after {frames} frames without a close frame"),
        }
    }
    assert!(frames > 0, "the slow reader read nothing back");
}

/// Broadcasts one tagged, padded event.
async fn broadcast_tagged(app: &TestApp, tag: usize, pad: &str) {
    let (status, reply) = app
        .admin_post(
            "/api/push/broadcast",
            json!({"payload": {"tag": tag.to_string(), "pad": pad}}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
}

/// Reads tagged events until the `end` event, publishing how many it has seen in
/// `seen_count`; returns the tags in arrival order and the socket (kept open by the
/// caller until the test ends).
fn spawn_reader(
    mut c: WsClient,
    seen_count: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<(Vec<usize>, WsClient)> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let v = c.next_json().await;
            if v["type"] == "end" {
                return (seen, c);
            }
            if let Some(t) = tag_of(&v) {
                seen.push(t.parse::<usize>().unwrap());
                seen_count.store(seen.len(), Ordering::Relaxed);
            }
        }
    })
}
