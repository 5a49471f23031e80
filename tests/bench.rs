//! `danmaku bench` is correct before it is fast: against the real server it sees every
//! delivery, and against a server that loses or repeats one event it says so.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use danmaku::bench::{self, BenchArgs, Report, Scenario, Via};
use futures_util::{SinkExt, StreamExt};
use poem::{
    EndpointExt, Route, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    post,
    web::{
        Data, Json,
        websocket::{Message, WebSocket},
    },
};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::common::{
    HEAVY, TestApp,
    cluster::{Services, cleanup, node_with, ready, requested, unique},
    process::Proc,
    redis::ThrowawayRedis,
};

/// A small fanout run against `url`.
fn fanout(url: &str, viewers: usize) -> BenchArgs {
    BenchArgs {
        scenario: Scenario::Fanout,
        url: vec![url.to_string()],
        post_url: None,
        viewers,
        posters: 2,
        rate: 40.0,
        duration: 2,
        rooms: 1,
        concurrency: 1,
        via: Via::Rest,
        server_pid: Vec::new(),
        survive_faults: false,
        dead_after_s: 30,
        drain_s: 10,
        token_file: None,
        json: None,
        video: "benchtest".into(),
        stalled: 0,
        compress: false,
        members_every: 2,
    }
}

/// Totals over the roles of a report: (received, expected, missed, duplicates, leaks).
fn totals(r: &Report) -> (u64, u64, u64, u64, u64) {
    r.roles.values().fold((0, 0, 0, 0, 0), |t, x| {
        (
            t.0 + x.received,
            t.1 + x.expected,
            t.2 + x.missed,
            t.3 + x.duplicates,
            t.4 + x.leaks,
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_sees_every_delivery_of_the_real_server() {
    let app = TestApp::builder()
        .config(|c| c.danmaku.free_feed_rate = 0)
        .start()
        .await;
    let report = bench::run(fanout(&app.base, 12), Some(app.key_signer()))
        .await
        .expect("bench runs");
    let (received, expected, missed, dups, leaks) = totals(&report);
    assert!(report.acked > 0, "no comment was acknowledged: {report:?}");
    assert_eq!(report.acked, report.sent, "{report:?}");
    assert_eq!(
        expected,
        report.acked * 12,
        "every viewer expects every comment"
    );
    assert_eq!((received, missed, dups, leaks), (expected, 0, 0, 0));
    assert!(report.ok, "{report:?}");
}

/// With compression on, every viewer negotiates permessage-deflate, still sees every
/// delivery, and reads fewer bytes than the JSON it receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_viewers_see_everything_in_fewer_bytes() {
    let app = TestApp::builder()
        .config(|c| c.danmaku.free_feed_rate = 0)
        .start()
        .await;
    let mut args = fanout(&app.base, 8);
    args.compress = true;
    args.rate = 200.0;
    let report = bench::run(args, Some(app.key_signer()))
        .await
        .expect("bench runs");
    let (received, expected, missed, dups, leaks) = totals(&report);
    assert_eq!(
        (received, missed, dups, leaks),
        (expected, 0, 0, 0),
        "{report:?}"
    );
    assert!(report.ok, "{report:?}");
    assert_eq!(report.compressed_viewers, 8, "{report:?}");
    let (wire, json) = (
        report.wire_bytes_per_delivery.expect("wire bytes"),
        report.payload_bytes_per_delivery.expect("payload bytes"),
    );
    assert!(wire < json, "{wire} bytes on the wire for {json} of JSON");
}

/// A fake danmaku server: acknowledges every REST post with 201 and rebroadcasts it to
/// every socket, except that it drops the post numbered `drop` and sends the post
/// numbered `dup` twice.
struct Faulty {
    events: broadcast::Sender<String>,
    posts: AtomicU64,
    drop: u64,
    dup: u64,
}

#[handler]
async fn faulty_post(fake: Data<&Arc<Faulty>>, body: Json<Value>) -> (StatusCode, Json<Value>) {
    let n = fake.posts.fetch_add(1, Ordering::SeqCst);
    // The server's wire shape (the bench finds each event by its channel).
    let event = json!({
        "type": "danmaku", "channel": "video:benchtest-0", "seq": n + 1, "ts": 0,
        "data": {"id": n, "text": body["text"]},
    })
    .to_string();
    let copies = match n {
        n if n == fake.drop => 0,
        n if n == fake.dup => 2,
        _ => 1,
    };
    for _ in 0..copies {
        let _ = fake.events.send(event.clone());
    }
    (StatusCode::CREATED, Json(json!({"id": n})))
}

#[handler]
fn faulty_ws(ws: WebSocket, fake: Data<&Arc<Faulty>>) -> impl poem::IntoResponse {
    let mut events = fake.events.subscribe();
    ws.on_upgrade(move |mut socket| async move {
        let _ = socket
            .send(Message::Text(json!({"type": "welcome"}).to_string()))
            .await;
        loop {
            tokio::select! {
                msg = socket.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        let op: Value = serde_json::from_str(&t).unwrap_or_default();
                        let reply = json!({"type": "reply", "id": op["id"], "ok": true});
                        let _ = socket.send(Message::Text(reply.to_string())).await;
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        if socket.send(Message::Text(ev)).await.is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                },
            }
        }
    })
}

/// Serves a [`Faulty`] server on a free port; returns its base URL.
async fn start_faulty(drop: u64, dup: u64) -> String {
    let fake = Arc::new(Faulty {
        events: broadcast::channel(4096).0,
        posts: AtomicU64::new(0),
        drop,
        dup,
    });
    let app = Route::new()
        .at("/ws", poem::get(faulty_ws))
        .at("/api/videos/:video/danmaku", post(faulty_post))
        .data(fake);
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("tcp address");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_a_dropped_event_as_missed_by_every_viewer() {
    const VIEWERS: usize = 6;
    let url = start_faulty(5, u64::MAX).await;
    let signer = TestApp::builder().start().await.key_signer();
    let report = bench::run(fanout(&url, VIEWERS), Some(signer))
        .await
        .expect("bench runs");
    let (received, expected, missed, dups, _) = totals(&report);
    assert!(report.acked > 5, "too few posts to reach the dropped one");
    assert_eq!(missed, VIEWERS as u64, "one event lost by every viewer");
    assert_eq!(dups, 0);
    assert_eq!(received, expected - VIEWERS as u64);
    assert!(!report.ok, "a lost event must fail the run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_a_repeated_event_as_a_duplicate() {
    const VIEWERS: usize = 6;
    let url = start_faulty(u64::MAX, 3).await;
    let signer = TestApp::builder().start().await.key_signer();
    let report = bench::run(fanout(&url, VIEWERS), Some(signer))
        .await
        .expect("bench runs");
    let (received, expected, missed, dups, _) = totals(&report);
    assert_eq!(dups, VIEWERS as u64, "one event seen twice by every viewer");
    assert_eq!(missed, 0);
    assert_eq!(received, expected + VIEWERS as u64);
    assert!(!report.ok, "a duplicate must fail the run");
}

/// One cluster node on `redis` and the suite's PostgreSQL, without sampling (every
/// viewer is owed every comment).
async fn bench_node(svc: &Services, redis: &str, ns: &str, id: &str) -> TestApp {
    node_with(svc, redis, ns, id, |c| c.danmaku.free_feed_rate = 0).await
}

/// Viewers spread over two nodes survive one node's SIGKILL mid-run: node 1 is a real
/// `danmaku serve` process, so the kernel closes its sockets; its 150 viewers reconnect
/// to node 0 within 5 s, resume with `since`, and no viewer has a gap, a duplicate or a
/// missing comment (those node 1 acknowledged before it died included); deliveries cross
/// nodes both ways before the death.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surviving_viewers_come_back_after_a_node_is_killed_with_nothing_lost() {
    let Some(svc) = requested("bench_survive").await else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    let ns = unique("bench_survive");
    let survivor = bench_node(&svc, &svc.redis, &ns, "n0").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut doomed = Proc::start(
        dir.path(),
        &[
            ("DANMAKU_BUS", &svc.redis),
            ("DANMAKU_STORE", &svc.pg),
            ("DANMAKU_KEY_PREFIX", &ns),
            ("DANMAKU_PG_SCHEMA", &ns),
            ("DANMAKU_NODE_ID", "n1"),
            ("DANMAKU_FREE_FEED_RATE", "0"),
        ],
    )
    .await;
    let mut args = fanout(&format!("{},{}", survivor.base, doomed.base), 300);
    args.survive_faults = true;
    args.duration = 8;
    let run = tokio::spawn(bench::run(args, Some(survivor.key_signer())));
    // Kill node 1 once both nodes have taken posts (the bench is mid-run).
    survivor
        .wait_for("60 comments stored", || async {
            stored_count(&survivor).await >= 60
        })
        .await;
    doomed.signal(libc::SIGKILL);
    let status = tokio::time::timeout(crate::common::WAIT, doomed.child.wait())
        .await
        .expect("the killed node exits")
        .expect("wait");
    assert_eq!(status.code(), None, "killed by a signal: {status:?}");
    let report = run.await.expect("bench task").expect("bench runs");
    cleanup(&svc, &ns).await;
    let s = report.survival.clone().expect("survival report");
    assert!(
        s.viewers_reconnected >= 150,
        "the 150 viewers of node 1 came back: {s:?}"
    );
    assert!(
        s.reconnect.max_ms < 5_000.0,
        "every viewer back within 5 s: {s:?}"
    );
    assert!(s.seq_checked > 0, "the gap check saw events: {s:?}");
    assert_eq!(
        (s.gaps, s.duplicates, s.missing, s.down_at_end),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert!(
        report.cross_node.count > 0 && report.same_node.count > 0,
        "{report:?}"
    );
    assert_eq!(report.nodes.len(), 2);
    assert!(report.acked > 60, "{report:?}");
    assert!(report.ok, "{report:?}");
}

/// How many comments a node reads back from the bench room's history.
async fn stored_count(app: &TestApp) -> u64 {
    // One page holds the whole short run (fewer than 10,000 comments).
    let url = app.url("/api/videos/benchtest-0/danmaku?limit=10000");
    match app.http.get(&url).send().await {
        Ok(r) => r.json::<Value>().await.unwrap_or_default()["count"]
            .as_u64()
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// Redis restarts under a busy room watched from two nodes, with posts going to both.
/// Meanwhile each node keeps delivering its own comments to its own viewers (without a
/// seq); within 10 s of Redis returning every comment acknowledged during the outage is
/// published again from the store, and at the end every viewer on either node has every
/// comment: 0 gaps, 0 duplicates, 0 missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_on_every_node_get_what_was_acked_while_redis_was_down() {
    let Some(svc) = requested("bench_redis_restart").await else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    let mut redis = ThrowawayRedis::start().await;
    let ns = unique("bench_redis");
    let nodes = [
        bench_node(&svc, &redis.url(), &ns, "n0").await,
        bench_node(&svc, &redis.url(), &ns, "n1").await,
    ];
    let mut args = fanout(&format!("{},{}", nodes[0].base, nodes[1].base), 200);
    args.survive_faults = true;
    args.duration = 12;
    args.posters = 4;
    let run = tokio::spawn(bench::run(args, Some(nodes[0].key_signer())));
    let n0 = &nodes[0];
    n0.wait_for("40 comments stored before the outage", || async {
        stored_count(n0).await >= 40
    })
    .await;

    redis.kill();
    for app in &nodes {
        app.wait_for("readyz to turn 503", || async { !ready(app).await })
            .await;
    }
    let at_kill = stored_count(n0).await;
    n0.wait_for("40 comments acknowledged during the outage", || async {
        stored_count(n0).await >= at_kill + 40
    })
    .await;
    let mut deferred = 0.0;
    for app in &nodes {
        let d = app.metric("danmaku_publish_deferred_total").await;
        assert!(d > 0.0, "each node took posts during the outage");
        deferred += d;
    }

    redis.spawn().await;
    let back = std::time::Instant::now();
    loop {
        let mut deferred_now = 0.0;
        let mut caught_up = 0.0;
        for app in &nodes {
            deferred_now += app.metric("danmaku_publish_deferred_total").await;
            caught_up += app.metric("danmaku_caught_up_total").await;
        }
        if caught_up >= deferred_now && deferred_now >= deferred {
            break;
        }
        // The design's worst case: the bus reconnects within its 1 s backoff and 2 s
        // connect timeout, holds publishes 2 s until every node listens, the catch-up
        // waits SETTLE (1 s), and a record taken after a node's run waits one IDLE_CHECK
        // (5 s): 11 s, plus slack for a loaded 2-core machine.
        assert!(
            back.elapsed() < std::time::Duration::from_secs(15),
            "{caught_up} of {deferred_now} recorded comments published within 15 s of Redis returning"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let report = run.await.expect("bench task").expect("bench runs");
    cleanup(&svc, &ns).await;
    let s = report.survival.clone().expect("survival report");
    assert!(s.seq_checked > 0, "the gap check saw events: {s:?}");
    assert!(
        s.renumbered > 0,
        "viewers on the posting node saw outage comments live, then numbered: {s:?}"
    );
    assert_eq!(
        (s.gaps, s.duplicates, s.missing, s.down_at_end),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert!(report.acked as f64 >= deferred, "{report:?}");
    assert!(report.ok, "{report:?}");
}
