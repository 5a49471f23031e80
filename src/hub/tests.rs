//! The hub's fan-out, driven directly: real sockets (loopback pairs), events queued
//! while a pass is held back so that one batch carries several of them, and the frames
//! read back from the client ends.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{
    Delivery, Hub, Settings,
    clock::Deadlines,
    conn::{Conn, QueueCaps},
    event::{Encoded, Target},
};
use crate::{
    frame::{self, deflate, opcode},
    limits::{ConnCaps, ConnLimiter},
    metrics::Metrics,
    model::{Audience, Role},
};

/// A hub with roomy queues and a long tick (the window never gets in the way here).
fn hub() -> Hub {
    Hub::new(
        Settings {
            queue: QueueCaps {
                max_msgs: 1024,
                max_bytes: 1 << 20,
            },
            flush_tick: Duration::from_millis(50),
            deadlines: Deadlines {
                heartbeat_s: 25,
                idle_timeout_s: 60,
                token_grace_s: 10,
                write_timeout_s: 10,
                expiry_notice: Bytes::new(),
            },
        },
        Arc::new(Metrics::default()),
    )
}

/// A server-side handle and the client end of one loopback connection.
async fn socket(
    hub: &Hub,
    sub: &str,
    role: Role,
    deflate: bool,
) -> (Arc<Conn>, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let limiter = ConnLimiter::new(ConnCaps {
        total: 0,
        per_user: 0,
        per_ip: 0,
    });
    let conn = Conn::new(
        hub.next_conn_id(),
        Arc::from(sub),
        role,
        server,
        deflate,
        hub.queue_caps(),
        0,
        limiter.acquire(None, None).unwrap(),
    );
    hub.register(&conn, false);
    (conn, client)
}

/// An event on `channel` with `seq`, text `{"seq":N}`.
fn event(channel: &str, seq: u64, target: Target) -> Encoded {
    Encoded {
        channel: Arc::from(channel),
        seq,
        target,
        text: Bytes::from(format!("{{\"seq\":{seq}}}")),
    }
}

/// Reads one server frame from a client end: (compressed, payload as sent).
async fn read_frame(c: &mut tokio::net::TcpStream) -> (bool, Vec<u8>) {
    let mut head = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut head))
        .await
        .expect("a frame in time")
        .unwrap();
    assert_eq!(head[0] & 0x0f, opcode::TEXT);
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            c.read_exact(&mut b).await.unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            c.read_exact(&mut b).await.unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    c.read_exact(&mut payload).await.unwrap();
    (head[0] & 0x40 != 0, payload)
}

/// The `seq`s in a payload (one event or an array of them).
fn seqs(payload: &[u8]) -> Vec<u64> {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    let items = match v {
        serde_json::Value::Array(items) => items,
        v => vec![v],
    };
    items.iter().map(|i| i["seq"].as_u64().unwrap()).collect()
}

/// Queues events with the room's pass held back, then runs one pass: one batch.
fn deliver_batch(hub: &Hub, events: Vec<Encoded>) -> Vec<usize> {
    let mut held = None;
    let mut counts = Vec::new();
    for ev in events {
        let Delivery { count, flush } = hub.deliver(ev);
        counts.push(count);
        if held.is_none() {
            held = flush;
        }
    }
    hub.flush(held.expect("the first event of a quiet room flushes"));
    counts
}

#[tokio::test]
async fn one_batch_is_one_frame_per_role_selection() {
    let hub = hub();
    let room: Arc<str> = Arc::from("video:1");
    let (m, mut mc) = socket(&hub, "m", Role::Member, false).await;
    let (f, mut fc) = socket(&hub, "f", Role::Free, false).await;
    hub.subscribe(&m, &room, Role::Member);
    hub.subscribe(&f, &room, Role::Free);
    let everyone = Target::audience(Audience::Everyone);
    let members = Target::audience(Audience::Members);
    let counts = deliver_batch(
        &hub,
        vec![
            event("video:1", 1, everyone.clone()),
            event("video:1", 2, members),
            event("video:1", 3, everyone),
        ],
    );
    assert_eq!(counts, [2, 1, 2]);
    assert_eq!(seqs(&read_frame(&mut mc).await.1), [1, 2, 3]);
    assert_eq!(seqs(&read_frame(&mut fc).await.1), [1, 3]);
}

#[tokio::test]
async fn a_posters_sockets_get_the_batch_without_their_comment() {
    let hub = hub();
    let room: Arc<str> = Arc::from("video:2");
    let (p1, mut p1c) = socket(&hub, "poster", Role::Free, false).await;
    let (p2, mut p2c) = socket(&hub, "poster", Role::Free, true).await;
    let (v, mut vc) = socket(&hub, "viewer", Role::Free, false).await;
    for c in [&p1, &p2, &v] {
        hub.subscribe(c, &room, Role::Free);
    }
    let mut own = Target::audience(Audience::Everyone);
    own.except = Some(Arc::from("poster"));
    let mut only = Target::audience(Audience::Everyone);
    only.users = Some(Arc::new([Arc::from("viewer")].into_iter().collect()));
    let counts = deliver_batch(
        &hub,
        vec![
            event("video:2", 1, Target::audience(Audience::Everyone)),
            event("video:2", 2, own),
            event("video:2", 3, only),
            event("video:2", 4, Target::audience(Audience::Everyone)),
        ],
    );
    assert_eq!(counts, [3, 1, 1, 3]);
    assert_eq!(seqs(&read_frame(&mut vc).await.1), [1, 2, 3, 4]);
    assert_eq!(seqs(&read_frame(&mut p1c).await.1), [1, 4]);
    // The compressed socket of the same user gets the same selection.
    let (compressed, payload) = read_frame(&mut p2c).await;
    let plain = if compressed {
        deflate::inflate(&payload, 1 << 20).unwrap()
    } else {
        payload
    };
    assert_eq!(seqs(&plain), [1, 4]);
}

#[tokio::test]
async fn marked_copies_reach_listed_users_and_claim_moderators_of_the_room_once() {
    let hub = hub();
    let room: Arc<str> = Arc::from("video:m");
    let (listed, mut listed_c) = socket(&hub, "mo", Role::Free, false).await;
    let (claims, mut claims_c) = socket(&hub, "cm", Role::Free, false).await;
    claims.set_moderates(&[Arc::from("m"), Arc::from("m2")]);
    let (both, mut both_c) = socket(&hub, "mo2", Role::Free, false).await;
    both.set_moderates(&[Arc::from("m")]);
    let (elsewhere, mut elsewhere_c) = socket(&hub, "co", Role::Free, false).await;
    elsewhere.set_moderates(&[Arc::from("other")]);
    let (viewer, mut viewer_c) = socket(&hub, "v", Role::Free, false).await;
    for c in [&listed, &claims, &both, &elsewhere, &viewer] {
        hub.subscribe(c, &room, Role::Free);
    }
    let marked = || {
        let mut t =
            Target::audience(Audience::Everyone).only_users(["mo".to_string(), "mo2".to_string()]);
        t.claim_moderators = true;
        t
    };
    // Listed only, without the claim flag: the claim does not count.
    let listed_only = Target::audience(Audience::Everyone).only_users(["mo".to_string()]);
    let counts = deliver_batch(
        &hub,
        vec![
            event("video:m", 1, marked()),
            event("video:m", 2, Target::audience(Audience::Everyone)),
            event("video:m", 3, marked()),
            event("video:m", 4, listed_only),
        ],
    );
    assert_eq!(counts, [3, 5, 3, 1]);
    assert_eq!(seqs(&read_frame(&mut listed_c).await.1), [1, 2, 3, 4]);
    assert_eq!(seqs(&read_frame(&mut claims_c).await.1), [1, 2, 3]);
    assert_eq!(seqs(&read_frame(&mut both_c).await.1), [1, 2, 3]);
    assert_eq!(seqs(&read_frame(&mut elsewhere_c).await.1), [2]);
    assert_eq!(seqs(&read_frame(&mut viewer_c).await.1), [2]);
    // A refresh that drops the claim: the socket is a viewer again (in a second room,
    // whose first event flushes at once: the first room's window is open after its pass).
    let second: Arc<str> = Arc::from("video:m2");
    hub.subscribe(&claims, &second, Role::Free);
    claims.set_moderates(&[]);
    deliver_batch(
        &hub,
        vec![
            event("video:m2", 5, marked()),
            event("video:m2", 6, Target::audience(Audience::Everyone)),
        ],
    );
    assert_eq!(seqs(&read_frame(&mut claims_c).await.1), [6]);
}

#[tokio::test]
async fn compressed_and_plain_sockets_share_one_selection() {
    let hub = hub();
    let room: Arc<str> = Arc::from("video:3");
    let (a, mut ac) = socket(&hub, "a", Role::Guest, true).await;
    let (b, mut bc) = socket(&hub, "b", Role::Guest, false).await;
    hub.subscribe(&a, &room, Role::Guest);
    hub.subscribe(&b, &room, Role::Guest);
    let events: Vec<Encoded> = (1..=40)
        .map(|i| {
            let mut e = event("video:3", i, Target::audience(Audience::Everyone));
            e.text = Bytes::from(format!(
                "{{\"type\":\"danmaku\",\"channel\":\"video:3\",\"seq\":{i},\"data\":{{\"text\":\"hello number {i}\"}}}}"
            ));
            e
        })
        .collect();
    deliver_batch(&hub, events);
    let (compressed, z) = read_frame(&mut ac).await;
    let (plain_flag, plain) = read_frame(&mut bc).await;
    assert!(compressed && !plain_flag);
    assert!(z.len() * 3 < plain.len(), "{} vs {}", z.len(), plain.len());
    assert_eq!(deflate::inflate(&z, 1 << 20).unwrap(), plain);
    assert_eq!(seqs(&plain), (1..=40).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_socket_that_joins_mid_batch_skips_what_was_pending() {
    let hub = hub();
    let room: Arc<str> = Arc::from("video:4");
    let (old, mut oc) = socket(&hub, "old", Role::Free, false).await;
    hub.subscribe(&old, &room, Role::Free);
    let everyone = Target::audience(Audience::Everyone);
    let first = hub.deliver(event("video:4", 1, everyone.clone()));
    let _ = hub.deliver(event("video:4", 2, everyone.clone()));
    // Joins now: the bus replayed 1 and 2 to it, so live delivery starts at 3.
    let (new, mut nc) = socket(&hub, "new", Role::Free, false).await;
    hub.subscribe(&new, &room, Role::Free);
    let _ = hub.deliver(event("video:4", 3, everyone));
    hub.flush(first.flush.expect("flush"));
    assert_eq!(seqs(&read_frame(&mut oc).await.1), [1, 2, 3]);
    assert_eq!(seqs(&read_frame(&mut nc).await.1), [3]);
}

#[tokio::test]
async fn personal_channels_reach_every_socket_of_the_user_at_once() {
    let hub = hub();
    let (_p, mut pc) = socket(&hub, "alice", Role::Member, false).await;
    let (_l, mut lc) = socket(&hub, "alice", Role::Member, true).await;
    let (_b, _bc) = socket(&hub, "bob", Role::Member, false).await;
    let d = hub.deliver(event("user:alice", 1, Target::audience(Audience::Everyone)));
    assert!(d.flush.is_none());
    assert_eq!(d.count, 2);
    assert_eq!(seqs(&read_frame(&mut pc).await.1), [1]);
    let (z, p) = read_frame(&mut lc).await;
    let p = if z {
        deflate::inflate(&p, 1 << 20).unwrap()
    } else {
        p
    };
    assert_eq!(seqs(&p), [1]);
    assert_eq!(frame::payload_of(&frame::text(b"x")), b"x");
}
