//! The fan-out engine end to end: room batches and private events on one socket,
//! compressed and plain viewers side by side, compressed client frames, decompression
//! bombs and corrupt data, odd extension offers, recovery across a batch, and a slow
//! reader dropped while the others share its batches.

use danmaku::{
    bench::client::Client,
    frame::{self, deflate, opcode},
    model::Role,
};
use serde_json::{Value, json};

use crate::common::{HEAVY, TestApp, WAIT};

/// A raw client with the messages read but not yet consumed.
struct Raw {
    c: Client,
    backlog: std::collections::VecDeque<Value>,
}

impl std::ops::Deref for Raw {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.c
    }
}

impl std::ops::DerefMut for Raw {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.c
    }
}

/// A raw client of `sub` with `role` (a guest for an empty `sub`), compressed when
/// `compress`; its welcome is read.
async fn raw(app: &TestApp, sub: &str, role: Role, compress: bool) -> Raw {
    let url = if sub.is_empty() {
        app.ws_base.clone()
    } else {
        format!("{}?access_token={}", app.ws_base, app.token(sub, role))
    };
    let c = Client::connect(&url, compress, None)
        .await
        .expect("connects");
    assert_eq!(c.deflate, compress, "{}", c.response_head);
    let mut r = Raw {
        c,
        backlog: Default::default(),
    };
    let first = messages(&mut r, 1).await;
    assert_eq!(first[0]["type"], "welcome");
    r
}

/// Reads until `n` JSON messages arrived (arrays expanded), in order; the rest of the
/// last frame stays in the backlog.
async fn messages(r: &mut Raw, n: usize) -> Vec<Value> {
    while r.backlog.len() < n {
        let backlog = &mut r.backlog;
        let mut on = |t: &[u8]| match serde_json::from_slice::<Value>(t).expect("JSON") {
            Value::Array(items) => backlog.extend(items),
            v => backlog.push_back(v),
        };
        let open = tokio::time::timeout(WAIT, r.c.read_some(&mut on))
            .await
            .expect("a frame in time")
            .expect("read");
        assert!(
            open,
            "closed ({:?}) after {} messages",
            r.c.close_code,
            r.backlog.len()
        );
    }
    r.backlog.drain(..n).collect()
}

/// Reads until the server closes; returns its close code.
async fn close_code(r: &mut Raw) -> Option<u16> {
    loop {
        let res = tokio::time::timeout(WAIT, r.c.read_some(&mut |_| {}))
            .await
            .expect("closed in time");
        match res {
            Ok(true) => continue,
            Ok(false) | Err(_) => return r.c.close_code,
        }
    }
}

/// Sends an op and reads until its reply, returning the reply and what came before.
async fn request(r: &mut Raw, op: Value) -> (Value, Vec<Value>) {
    let id = op["id"].clone();
    r.send_text(&op.to_string()).await.expect("send");
    let mut before = Vec::new();
    loop {
        let m = messages(r, 1).await.remove(0);
        if m["type"] == "reply" && m["id"] == id {
            return (m, before);
        }
        before.push(m);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_private_events_share_one_socket_in_order() {
    let app = TestApp::start().await;
    app.declare("news", "free").await;
    let mut alice = raw(&app, "alice", Role::Member, true).await;
    for (i, ch) in ["video:mix", "news"].iter().enumerate() {
        let (r, _) = request(
            &mut alice,
            json!({"op": "subscribe", "id": i, "channel": ch}),
        )
        .await;
        assert_eq!(r["ok"], true, "{r}");
    }
    // Bursts on two rooms and to the user, concurrently, so passes overlap.
    const N: usize = 40;
    let pushes = (0..N).map(|i| {
        let app = &app;
        async move {
            let (path, tag) = match i % 3 {
                0 => ("/api/push/channels/video:mix".to_string(), "room"),
                1 => ("/api/push/channels/news".to_string(), "news"),
                _ => ("/api/push/users/alice".to_string(), "user"),
            };
            let (status, _) = app
                .admin_post(&path, json!({"payload": {"tag": tag, "i": i}}))
                .await;
            assert_eq!(status, 200);
        }
    });
    futures_util::future::join_all(pushes).await;
    let got: Vec<Value> = messages(&mut alice, N).await;
    // Every event once, and per channel in strictly increasing seq order.
    let mut last = std::collections::HashMap::new();
    for ev in &got {
        let ch = ev["channel"].as_str().expect("channel event").to_string();
        let seq = ev["seq"].as_u64().unwrap();
        let prev = last.insert(ch.clone(), seq).unwrap_or(0);
        assert!(seq > prev, "{ch}: seq {seq} after {prev}");
    }
    let mut is: Vec<u64> = got
        .iter()
        .map(|e| e["data"]["payload"]["i"].as_u64().unwrap())
        .collect();
    is.sort();
    assert_eq!(is, (0..N as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_and_plain_viewers_get_the_same_events_in_the_same_order() {
    let app = TestApp::builder()
        .config(|c| c.danmaku.free_feed_rate = 0)
        .start()
        .await;
    let mut plain = raw(&app, "p", Role::Free, false).await;
    let mut packed = raw(&app, "z", Role::Free, true).await;
    let mut poster = raw(&app, "poster", Role::Admin, true).await;
    for c in [&mut plain, &mut packed] {
        let (r, _) = request(
            c,
            json!({"op": "subscribe", "id": 1, "channel": "video:same"}),
        )
        .await;
        assert_eq!(r["ok"], true);
    }
    // Posts over the compressing poster's socket: compressed client frames.
    const N: usize = 60;
    for i in 0..N {
        let op = json!({"op": "danmaku", "id": i + 10, "video": "same", "text": format!("comment number {i}"), "time": 1.0});
        poster.send_compressed(&op.to_string()).await.expect("send");
    }
    let acks = messages(&mut poster, N).await;
    assert!(acks.iter().all(|a| a["ok"] == true), "{acks:?}");
    let a = messages(&mut plain, N).await;
    let b = messages(&mut packed, N).await;
    let texts = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["data"]["text"].as_str().unwrap().to_string())
            .collect()
    };
    // The same events in the same order on both. Posts of one socket run concurrently,
    // so that order is the store's, not the sending order.
    assert_eq!(texts(&a), texts(&b));
    let mut got = texts(&a);
    got.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("comment number {i}")).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(
        packed.wire_bytes < plain.wire_bytes,
        "compressed {} vs plain {}",
        packed.wire_bytes,
        plain.wire_bytes
    );
    assert!(app.metric("danmaku_ws_inflated_total").await >= N as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_closes_1009_and_corrupt_data_1007_alone() {
    let app = TestApp::builder()
        .config(|c| c.ws.max_message = 16 * 1024)
        .start()
        .await;
    let mut bystander = raw(&app, "b", Role::Free, true).await;
    let (r, _) = request(
        &mut bystander,
        json!({"op": "subscribe", "id": 1, "channel": "video:bomb"}),
    )
    .await;
    assert_eq!(r["ok"], true);
    // 10 MiB of zeros compress to a few kilobytes: under the frame cap, far over the
    // message cap once inflated.
    let mut bomber = raw(&app, "x", Role::Free, true).await;
    let mut json = b"{\"op\":\"ping\",\"pad\":\"".to_vec();
    json.extend(std::iter::repeat_n(b'0', 10 << 20));
    json.extend_from_slice(b"\"}");
    let z = deflate::compress(&json).unwrap();
    assert!(z.len() < 16 * 1024, "{}", z.len());
    bomber
        .send_raw(&frame::client_frame(opcode::TEXT, true, &z, [1, 2, 3, 4]))
        .await
        .unwrap();
    assert_eq!(close_code(&mut bomber).await, Some(1009));
    let mut corrupt = raw(&app, "y", Role::Free, true).await;
    corrupt
        .send_raw(&frame::client_frame(
            opcode::TEXT,
            true,
            &[0xff, 0xfe, 0xfd, 0x00, 0x11],
            [9, 9, 9, 9],
        ))
        .await
        .unwrap();
    assert_eq!(close_code(&mut corrupt).await, Some(1007));
    // RSV1 from a client that did not negotiate compression is a protocol error.
    let mut plain = raw(&app, "w", Role::Free, false).await;
    plain
        .send_raw(&frame::client_frame(
            opcode::TEXT,
            true,
            &z[..10],
            [5, 5, 5, 5],
        ))
        .await
        .unwrap();
    assert_eq!(close_code(&mut plain).await, Some(1002));
    // The bystander is unaffected.
    let (r, _) = request(&mut bystander, json!({"op": "ping", "id": 2})).await;
    assert_eq!(r["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_extension_offers_get_a_clean_uncompressed_handshake() {
    let app = TestApp::start().await;
    for offer in [
        "permessage-deflate; bogus",
        "permessage-deflate; server_max_window_bits=9",
        "permessage-deflate; client_max_window_bits=99",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "x-webkit-deflate-frame",
        ";;;,,,",
    ] {
        let mut c = Raw {
            c: Client::connect_offering(&app.ws_base, Some(offer), None)
                .await
                .unwrap_or_else(|e| panic!("{offer}: {e}")),
            backlog: Default::default(),
        };
        assert!(!c.deflate, "{offer}: {}", c.response_head);
        assert!(
            !c.response_head
                .to_ascii_lowercase()
                .contains("sec-websocket-extensions"),
            "{offer}: {}",
            c.response_head
        );
        let (r, _) = request(&mut c, json!({"op": "ping", "id": 1})).await;
        assert_eq!(r["ok"], true, "{offer}");
    }
    // A later acceptable offer in the same header is taken.
    let c = Client::connect_offering(
        &app.ws_base,
        Some("permessage-deflate; server_max_window_bits=10, permessage-deflate"),
        None,
    )
    .await
    .unwrap();
    assert!(c.deflate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_across_a_batch_boundary_has_no_gap_and_no_duplicate() {
    let app = TestApp::start().await;
    app.declare("feed", "free").await;
    let mut watcher = raw(&app, "w", Role::Free, false).await;
    let (r, _) = request(
        &mut watcher,
        json!({"op": "subscribe", "id": 1, "channel": "feed"}),
    )
    .await;
    let epoch = r["epoch"].as_str().unwrap().to_string();
    // A burst, read by the watcher; a second client leaves part-way and comes back.
    let burst = |from: usize, to: usize| {
        let app = &app;
        async move {
            let pushes = (from..to).map(|i| async move {
                app.push_channel("feed", json!({"payload": {"i": i}})).await;
            });
            futures_util::future::join_all(pushes).await;
        }
    };
    let mut leaver = raw(&app, "l", Role::Free, true).await;
    let (r, _) = request(
        &mut leaver,
        json!({"op": "subscribe", "id": 1, "channel": "feed"}),
    )
    .await;
    assert_eq!(r["ok"], true);
    burst(0, 30).await;
    let seen = messages(&mut leaver, 30).await;
    let last = seen
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    leaver.c.close().await;
    burst(30, 60).await;
    let mut back = raw(&app, "l", Role::Free, true).await;
    let (reply, mut replayed) = request(
        &mut back,
        json!({"op": "subscribe", "id": 2, "channel": "feed", "since": {"seq": last, "epoch": epoch}}),
    )
    .await;
    assert_eq!(reply["recovered"], true, "{reply}");
    assert_eq!(reply["replayed"], 30);
    replayed.extend(messages(&mut back, 30 - replayed.len()).await);
    burst(60, 70).await;
    let live = messages(&mut back, 10).await;
    let all: Vec<u64> = seen
        .iter()
        .chain(&replayed)
        .chain(&live)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(all, sorted, "in order, no duplicate");
    assert_eq!(all, (1..=70).collect::<Vec<_>>(), "no gap");
    assert_eq!(messages(&mut watcher, 70).await.len(), 70);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_dropped_while_the_others_share_its_batches() {
    let _heavy = HEAVY.lock().await;
    let app = TestApp::builder()
        .config(|c| {
            // Room enough for a healthy reader (in this busy test process) to lag a
            // few rounds of pushes; the stalled one overflows it after ~130 pushes.
            c.ws.outbox_max_msgs = 1024;
            c.ws.outbox_max_bytes = 256 * 1024;
            c.server.socket_send_buffer = 16 * 1024;
        })
        .start()
        .await;
    app.declare("stage", "free").await;
    let mut stalled = Raw {
        c: Client::connect(&app.ws_base, false, Some(4096))
            .await
            .unwrap(),
        backlog: Default::default(),
    };
    let _ = messages(&mut stalled, 1).await;
    let (r, _) = request(
        &mut stalled,
        json!({"op": "subscribe", "id": 1, "channel": "stage"}),
    )
    .await;
    assert_eq!(r["ok"], true);
    let mut readers = Vec::new();
    for i in 0..20 {
        let mut c = raw(&app, "", Role::Guest, i % 2 == 0).await;
        let (r, _) = request(
            &mut c,
            json!({"op": "subscribe", "id": 1, "channel": "stage"}),
        )
        .await;
        assert_eq!(r["ok"], true);
        // Healthy readers read all along, until the `end` event.
        readers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            loop {
                let m = messages(&mut c, 1).await.remove(0);
                if m["type"] == "end" {
                    return seqs;
                }
                seqs.push(m["seq"].as_u64().unwrap());
            }
        }));
    }
    let pad = "p".repeat(2048);
    let mut sent = 0;
    while app.metric("danmaku_slow_disconnects_total").await < 1.0 {
        assert!(sent < 5000, "the stalled reader was never dropped");
        let pushes = (0..20).map(|k| {
            let (app, pad) = (&app, &pad);
            async move {
                app.push_channel("stage", json!({"payload": {"i": sent + k, "pad": pad}}))
                    .await;
            }
        });
        futures_util::future::join_all(pushes).await;
        sent += 20;
    }
    app.push_channel("stage", json!({"event": "end", "payload": {}}))
        .await;
    for r in readers {
        let seqs = r.await.expect("reader");
        assert_eq!(
            seqs,
            (1..=sent as u64).collect::<Vec<_>>(),
            "a healthy reader missed events"
        );
    }
    // The stalled socket's stream stays well-formed up to the 4008 close (or a reset).
    let code = close_code(&mut stalled).await;
    assert!(matches!(code, None | Some(4008)), "{code:?}");
}
