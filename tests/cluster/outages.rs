//! Cluster outages: cross-node delivery resumes after Redis restarts (posts stored and
//! acknowledged meanwhile, pushes refused with 503), and posts answer 503 and acknowledge
//! nothing when PostgreSQL fails.

use std::time::{Duration, Instant};

use danmaku::model::Role;
use serde_json::json;

use crate::common::{
    cluster::{cleanup, cluster, node, post_comment, ready, requested, try_push, unique, viewer},
    redis::ThrowawayRedis,
    status_json, tag_of,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_delivery_resumes_within_5s_of_redis_restarting() {
    let Some(svc) = requested("redis_restart").await else {
        return;
    };
    let mut redis = ThrowawayRedis::start().await;
    let ns = unique("restart");
    let a = node(&svc, &redis.url(), &ns, "a").await;
    let b = node(&svc, &redis.url(), &ns, "b").await;
    let mut on_b = viewer(&b, "v", Role::Free, "video:z").await;
    let mut acked = Vec::new();
    let (status, stored) = post_comment(&a, "p", "z", "before").await;
    assert_eq!(status, 201);
    acked.push(stored["id"].as_i64().unwrap());
    let (_, ev) = on_b.until(|v| v["type"] == "danmaku").await;
    assert_eq!(ev["data"]["text"], "before");

    redis.kill();
    for app in [&a, &b] {
        app.wait_for("readyz to turn 503", || async { !ready(app).await })
            .await;
    }
    // Posts are still stored and acknowledged; pushes answer 503.
    let (status, stored) = post_comment(&a, "p2", "z", "during").await;
    assert_eq!(status, 201, "{stored}");
    acked.push(stored["id"].as_i64().unwrap());
    let (status, body) = a
        .admin_post(
            "/api/push/channels/video:z",
            json!({"payload": {"tag": "x"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("bus_unavailable"))
    );

    redis.spawn().await;
    let back = Instant::now();
    let mut n = 0;
    'resumed: loop {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "cross-node delivery did not resume within 5 s"
        );
        n += 1;
        let tag = format!("after-{n}");
        if try_push(&a, "video:z", json!({"payload": {"tag": tag}})).await == 200 {
            let until = Instant::now() + Duration::from_millis(500);
            while let Ok(v) = tokio::time::timeout(
                until.saturating_duration_since(Instant::now()),
                on_b.next_json(),
            )
            .await
            {
                if tag_of(&v) == Some(tag.as_str()) {
                    break 'resumed;
                }
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for app in [&a, &b] {
        app.wait_for("readyz to turn 200", || ready(app)).await;
    }
    let (status, stored) = post_comment(&a, "p3", "z", "after").await;
    assert_eq!(status, 201);
    acked.push(stored["id"].as_i64().unwrap());
    let (_, ev) = on_b
        .until(|v| v["type"] == "danmaku" && v["data"]["text"] == "after")
        .await;
    assert_eq!(ev["channel"], "video:z");

    // Nothing acknowledged is missing from PostgreSQL (read through the other node).
    let (status, page) = status_json(
        b.http
            .get(b.url("/api/videos/z/danmaku"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .collect();
    assert_eq!(ids, acked, "every acknowledged comment is stored, in order");
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_answer_503_and_acknowledge_nothing_when_postgres_fails() {
    let Some(svc) = requested("pg_outage").await else {
        return;
    };
    let ns = unique("pgdown");
    let nodes = cluster(&svc, &ns, 1).await;
    let (status, _) = post_comment(&nodes[0], "alice", "5", "before").await;
    assert_eq!(status, 201);
    // The node's tables vanish under it: every write now fails to commit.
    cleanup(&svc, &ns).await;
    let (status, body) = post_comment(&nodes[0], "bob", "5", "after").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "store_unavailable");
}
