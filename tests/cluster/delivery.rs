//! Cluster delivery: comments, members-only events, user pushes and channel declarations
//! made on one node reach the right sockets on the others, exactly once; clusters with
//! their own prefix and schema stay apart.

use std::time::{Duration, Instant};

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{
    cluster::{
        cleanup, cluster, node, post_comment, requested, tags_until, try_push, unique, viewer,
    },
    status_json, tag_of,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_posted_on_node_a_reaches_a_viewer_on_node_b_exactly_once() {
    let Some(svc) = requested("cross_node_comment").await else {
        return;
    };
    let ns = unique("comment");
    let nodes = cluster(&svc, &ns, 3).await;
    let mut b = viewer(&nodes[1], "bob", Role::Free, "video:7").await;
    let mut c = viewer(&nodes[2], "carol", Role::Free, "video:7").await;
    let (status, stored) = post_comment(&nodes[0], "alice", "7", "hello from A").await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(
        try_push(&nodes[0], "video:7", json!({"payload": {"tag": "fence"}})).await,
        200
    );
    for client in [&mut b, &mut c] {
        let (before, fence) = client.until(|v| tag_of(v) == Some("fence")).await;
        let comments: Vec<&Value> = before.iter().filter(|v| v["type"] == "danmaku").collect();
        assert_eq!(comments.len(), 1, "exactly once: {before:?}");
        assert_eq!(comments[0]["data"], stored);
        assert!(comments[0]["seq"].as_u64() < fence["seq"].as_u64());
    }
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_only_event_reaches_members_on_every_node_and_no_free_user() {
    let Some(svc) = requested("member_only").await else {
        return;
    };
    let ns = unique("members");
    let nodes = cluster(&svc, &ns, 3).await;
    let mut clients = Vec::new();
    for (i, app) in nodes.iter().enumerate() {
        for (sub, role) in [
            (format!("m{i}"), Role::Member),
            (format!("f{i}"), Role::Free),
            (String::new(), Role::Guest),
        ] {
            clients.push((role, viewer(app, &sub, role, "video:m").await));
        }
    }
    let body = json!({"payload": {"tag": "secret"}, "audience": "members"});
    assert_eq!(try_push(&nodes[1], "video:m", body).await, 200);
    let fence = json!({"payload": {"tag": "fence"}});
    assert_eq!(try_push(&nodes[1], "video:m", fence).await, 200);
    for (role, c) in &mut clients {
        let tags = tags_until(c, "fence").await;
        let expected: Vec<&str> = if *role == Role::Member {
            vec!["secret"]
        } else {
            vec![]
        };
        assert_eq!(tags, expected, "{role:?}");
    }
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_push_reaches_the_users_sockets_on_nodes_a_and_c() {
    let Some(svc) = requested("user_push").await else {
        return;
    };
    let ns = unique("user");
    let nodes = cluster(&svc, &ns, 3).await;
    let mut on_a = nodes[0].ws_as("u1", Role::Free).await;
    let mut on_c = nodes[2].ws_as("u1", Role::Free).await;
    let mut other = nodes[1].ws_as("u2", Role::Free).await;
    let (status, reply) = nodes[1]
        .admin_post("/api/push/users/u1", json!({"payload": {"tag": "for-u1"}}))
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, _) = nodes[1]
        .admin_post("/api/push/broadcast", json!({"payload": {"tag": "fence"}}))
        .await;
    assert_eq!(status, 200);
    for c in [&mut on_a, &mut on_c] {
        assert_eq!(tags_until(c, "fence").await, ["for-u1"]);
    }
    assert!(tags_until(&mut other, "fence").await.is_empty());
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_declared_on_one_node_applies_on_the_others() {
    let Some(svc) = requested("declare").await else {
        return;
    };
    let ns = unique("declare");
    let nodes = cluster(&svc, &ns, 2).await;
    nodes[0].declare("vip", "member").await;
    let mut member = nodes[1].ws_as("m1", Role::Member).await;
    // Polled like `wait_for` (the client is borrowed mutably, so inline).
    let deadline = Instant::now() + crate::common::WAIT;
    while member.subscribe("vip").await["ok"] != true {
        assert!(
            Instant::now() < deadline,
            "the declaration never reached node B"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut free = nodes[1].ws_as("f1", Role::Free).await;
    assert_eq!(
        free.subscribe("vip").await["ok"],
        false,
        "the tier applies on B"
    );
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_with_their_own_prefix_and_schema_do_not_see_each_other() {
    let Some(svc) = requested("isolation").await else {
        return;
    };
    let (ns1, ns2) = (unique("iso1"), unique("iso2"));
    let x = node(&svc, &svc.redis, &ns1, "x").await;
    let y = node(&svc, &svc.redis, &ns2, "y").await;
    let mut on_y = viewer(&y, "v", Role::Free, "video:i").await;
    assert_eq!(
        try_push(&x, "video:i", json!({"payload": {"tag": "x"}})).await,
        200
    );
    let (status, _) = post_comment(&x, "poster", "i", "only in x").await;
    assert_eq!(status, 201);
    assert_eq!(
        try_push(&y, "video:i", json!({"payload": {"tag": "fence"}})).await,
        200
    );
    let (before, fence) = on_y.until(|v| tag_of(v) == Some("fence")).await;
    assert!(before.iter().all(|v| tag_of(v) != Some("x")), "{before:?}");
    assert!(before.iter().all(|v| v["type"] != "danmaku"), "{before:?}");
    // Only y's own events (its presence events) numbered y's sequence before the fence.
    assert!(before.iter().all(|v| v["type"] == "presence"), "{before:?}");
    assert_eq!(
        fence["seq"].as_u64(),
        Some(before.len() as u64 + 1),
        "y's sequence is its own"
    );
    let (_, page) = status_json(
        y.http
            .get(y.url("/api/videos/i/danmaku"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["items"], json!([]), "y's schema is its own");
    cleanup(&svc, &ns1).await;
    cleanup(&svc, &ns2).await;
}
