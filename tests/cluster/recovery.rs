//! Cluster recovery: a client moving to another node replays exactly what it missed from
//! the shared replay window (members-only events withheld from free users), and a stale
//! epoch is refused.

use danmaku::model::Role;
use serde_json::json;

use crate::common::{
    cluster::{cleanup, node, requested, subscribe_since, try_push, unique, viewer},
    tag_of,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moving_from_node_a_to_node_b_recovers_exactly_what_it_missed() {
    let Some(svc) = requested("recovery").await else {
        return;
    };
    let ns = unique("recovery");
    // A declared channel (no presence events); B and C load the declaration at start.
    let a = &node(&svc, &svc.redis, &ns, "n0").await;
    a.declare("news", "free").await;
    let b = &node(&svc, &svc.redis, &ns, "n1").await;
    let c = &node(&svc, &svc.redis, &ns, "n2").await;
    let mut f = viewer(a, "f1", Role::Free, "news").await;
    assert_eq!(
        try_push(a, "news", json!({"payload": {"tag": "seen"}})).await,
        200
    );
    let (_, seen) = f.until(|v| tag_of(v) == Some("seen")).await;
    let last = seen["seq"].as_u64().unwrap();
    let epoch = f
        .request(json!({"op": "unsubscribe", "channel": "news"}))
        .await;
    assert_eq!(epoch["ok"], true);
    drop(f);
    let epoch = {
        let mut probe = a.ws_as("probe", Role::Free).await;
        probe.subscribe("news").await["epoch"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Missed while moving, published on node C.
    for body in [
        json!({"payload": {"tag": "b"}}),
        json!({"payload": {"tag": "m"}, "audience": "members"}),
        json!({"payload": {"tag": "c"}}),
    ] {
        assert_eq!(try_push(c, "news", body).await, 200);
    }

    // First join of the channel on node B.
    let mut f = b.ws_as("f1", Role::Free).await;
    let reply = subscribe_since(&mut f, "news", last, &epoch).await;
    assert_eq!(reply["recovered"], true, "{reply}");
    assert_eq!(reply["replayed"], 2);
    // A second client recovering on B, now that B tracks the channel.
    let mut m = b.ws_as("m1", Role::Member).await;
    let reply = subscribe_since(&mut m, "news", last, &epoch).await;
    assert_eq!(reply["recovered"], true, "{reply}");
    assert_eq!(reply["replayed"], 3);

    assert_eq!(
        try_push(a, "news", json!({"payload": {"tag": "live"}})).await,
        200
    );
    let (events, live) = f.until(|v| tag_of(v) == Some("live")).await;
    let tags: Vec<&str> = events.iter().filter_map(tag_of).collect();
    assert_eq!(tags, ["b", "c"], "exact missed set, members-only withheld");
    let seqs: Vec<u64> = events.iter().filter_map(|v| v["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(
        seqs.iter()
            .all(|s| *s > last && *s < live["seq"].as_u64().unwrap())
    );
    let (events, _) = m.until(|v| tag_of(v) == Some("live")).await;
    let tags: Vec<&str> = events.iter().filter_map(tag_of).collect();
    assert_eq!(tags, ["b", "m", "c"]);

    // A stale epoch is refused, not replayed.
    let mut g = b.ws_as("g1", Role::Free).await;
    let reply = subscribe_since(&mut g, "news", last, "not-the-epoch").await;
    assert_eq!(reply["recovered"], false, "{reply}");
    cleanup(&svc, &ns).await;
}
