//! Recovery: `subscribe` with `since` replays missed events in order, without gaps or
//! duplicates, within the client's audience, and says when it cannot.

use std::collections::BTreeMap;

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{TestApp, WsClient, tag_of};

/// Subscribes with an optional position and returns the reply.
async fn subscribe_since(c: &mut WsClient, channel: &str, since: Option<(u64, &str)>) -> Value {
    let mut op = json!({"op": "subscribe", "channel": channel});
    if let Some((seq, epoch)) = since {
        op["since"] = json!({"seq": seq, "epoch": epoch});
    }
    c.request(op).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_gets_exactly_what_it_missed() {
    let app = TestApp::start().await;
    app.declare("news", "free").await;
    let mut c = app.ws_as("f1", Role::Free).await;
    let reply = subscribe_since(&mut c, "news", None).await;
    let epoch = reply["epoch"].as_str().unwrap().to_string();
    assert_eq!(reply["seq"], 0);
    assert!(reply.get("recovered").is_none());
    app.push_channel("news", json!({"payload": {"tag": "a"}}))
        .await;
    let (_, a) = c.until(|v| tag_of(v) == Some("a")).await;
    let last = a["seq"].as_u64().unwrap();
    drop(c);

    // Missed while away: two for everyone, one for members only.
    app.push_channel("news", json!({"payload": {"tag": "b"}}))
        .await;
    app.push_channel(
        "news",
        json!({"payload": {"tag": "m"}, "audience": "members"}),
    )
    .await;
    app.push_channel("news", json!({"payload": {"tag": "c"}}))
        .await;

    let mut c = app.ws_as("f1", Role::Free).await;
    let reply = subscribe_since(&mut c, "news", Some((last, &epoch))).await;
    assert_eq!(reply["recovered"], true, "{reply}");
    assert_eq!(reply["replayed"], 2);
    app.push_channel("news", json!({"payload": {"tag": "live"}}))
        .await;
    let (events, live) = c.until(|v| tag_of(v) == Some("live")).await;
    let tags: Vec<&str> = events.iter().filter_map(tag_of).collect();
    assert_eq!(tags, ["b", "c"], "replayed in order, members-only withheld");
    let seqs: Vec<u64> = events.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs[1] < live["seq"].as_u64().unwrap());

    // A member recovering from the same point also gets the members-only event.
    let mut m = app.ws_as("m1", Role::Member).await;
    let reply = subscribe_since(&mut m, "news", Some((last, &epoch))).await;
    assert_eq!(reply["replayed"], 4);
    let (events, _) = m.until(|v| tag_of(v) == Some("live")).await;
    let tags: Vec<&str> = events.iter().filter_map(tag_of).collect();
    assert_eq!(tags, ["b", "m", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_is_refused_when_the_window_or_epoch_does_not_reach() {
    let app = TestApp::builder()
        .config(|c| c.ws.replay_window_events = 2)
        .start()
        .await;
    app.declare("news", "free").await;
    let mut c = app.ws_as("f1", Role::Free).await;
    let epoch = subscribe_since(&mut c, "news", None).await["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..5 {
        app.push_channel("news", json!({"payload": {"tag": i}}))
            .await;
    }
    let mut d = app.ws_as("f2", Role::Free).await;
    let reply = subscribe_since(&mut d, "news", Some((1, &epoch))).await;
    assert_eq!(reply["ok"], true);
    assert_eq!(
        reply["recovered"], false,
        "window holds only seq 4 and 5: {reply}"
    );
    assert_eq!(reply["seq"], 5);
    let mut e = app.ws_as("f3", Role::Free).await;
    let reply = subscribe_since(&mut e, "news", Some((4, &epoch))).await;
    assert_eq!(
        (reply["recovered"].clone(), reply["replayed"].clone()),
        (json!(true), json!(1))
    );
    let mut f = app.ws_as("f4", Role::Free).await;
    let reply = subscribe_since(&mut f, "news", Some((4, "another-epoch"))).await;
    assert_eq!(reply["recovered"], false);
    let reply = f
        .request(json!({"op": "subscribe", "channel": "video:1", "since": {"nope": 1}}))
        .await;
    assert_eq!(reply["error"]["code"], "bad_request");
}

/// A tiny deterministic generator (tests must be reproducible).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_leaves_no_gap_duplicate_reorder_or_leak() {
    let app = TestApp::builder()
        .config(|c| {
            c.ws.replay_window_events = 100_000;
            c.danmaku.free_feed_rate = 0;
            c.policy.admin.cooldown_ms = 0;
        })
        .start()
        .await;
    app.declare("storm", "free").await;
    const CLIENTS: usize = 10;
    const EVENTS: usize = 400;
    let ws_base = app.ws_base.clone();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let role = if i % 2 == 0 { Role::Free } else { Role::Member };
        let token = app.token(&format!("c{i}"), role);
        let url = format!("{ws_base}?access_token={token}");
        tasks.push(tokio::spawn(async move {
            let mut rng = Lcg(i as u64 + 7);
            let mut c = WsClient::connect(&url).await;
            let first = subscribe_since(&mut c, "storm", None).await;
            let epoch = first["epoch"].as_str().unwrap().to_string();
            let start_seq = first["seq"].as_u64().unwrap();
            let mut last = start_seq;
            let mut got: Vec<(u64, String)> = Vec::new();
            let mut reconnects = 0;
            loop {
                // Read a random number of frames, then drop the socket and come back.
                let budget = 1 + rng.next(40);
                for _ in 0..budget {
                    let v = c.next_json().await;
                    if v["channel"] != "storm" {
                        continue;
                    }
                    let seq = v["seq"].as_u64().unwrap();
                    assert!(
                        seq > last,
                        "client {i}: seq {seq} after {last} (dup or reorder)"
                    );
                    last = seq;
                    let tag = tag_of(&v).unwrap().to_string();
                    if tag == "end" {
                        return (i, role, start_seq, got, reconnects);
                    }
                    got.push((seq, tag));
                }
                drop(c);
                reconnects += 1;
                c = WsClient::connect(&url).await;
                let reply = subscribe_since(&mut c, "storm", Some((last, &epoch))).await;
                assert_eq!(reply["recovered"], true, "client {i}: {reply}");
            }
        }));
    }
    // Meanwhile pushes flow, for everyone and for members only.
    let mut published: BTreeMap<u64, (String, bool)> = BTreeMap::new();
    for n in 0..EVENTS {
        let members = n % 3 == 0;
        let tag = format!("e{n}");
        let reply = app
            .push_channel(
                "storm",
                json!({"payload": {"tag": tag}, "audience": if members { "members" } else { "everyone" }}),
            )
            .await;
        published.insert(reply["seq"].as_u64().unwrap(), (tag, members));
    }
    app.push_channel("storm", json!({"payload": {"tag": "end"}}))
        .await;
    let mut total_reconnects = 0;
    for t in tasks {
        let (i, role, start, got, reconnects) = t.await.expect("client task");
        total_reconnects += reconnects;
        let expected: Vec<(u64, String)> = published
            .range(start + 1..)
            .filter(|(_, (_, members))| !members || role == Role::Member)
            .map(|(seq, (tag, _))| (*seq, tag.clone()))
            .collect();
        assert_eq!(
            got, expected,
            "client {i} ({role}) saw a gap, duplicate, reorder or leak"
        );
    }
    assert!(
        total_reconnects >= CLIENTS * 3,
        "the storm reconnected only {total_reconnects} times"
    );
}
