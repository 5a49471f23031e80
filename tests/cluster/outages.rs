//! Cluster outages: cross-node delivery resumes after Redis restarts (posts stored and
//! acknowledged meanwhile, pushes refused with 503), and while PostgreSQL is really
//! stopped posts answer 503 at once, acknowledge nothing and resume by themselves.

use std::time::{Duration, Instant};

use danmaku::model::Role;
use serde_json::json;

use crate::common::{
    TestApp,
    cluster::{cleanup, node, post_comment, ready, requested, try_push, unique, viewer},
    postgres::ThrowawayPostgres,
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
    let ids = stored_ids(&b, "/api/videos/z/danmaku").await;
    assert_eq!(ids, acked, "every acknowledged comment is stored, in order");
    cleanup(&svc, &ns).await;
}

/// PostgreSQL really stops (a private server, `pg_ctl stop -m immediate`) for 10 s under
/// a node: posts answer 503 `store_unavailable` at once (after the first, which finds
/// the server gone), nothing is falsely
/// acknowledged, live pushes keep flowing, and posting resumes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_answer_503_while_postgres_is_stopped_and_resume_by_themselves() {
    if requested("pg_stop").await.is_none() {
        return;
    }
    let pg = ThrowawayPostgres::start().await;
    let url = pg.url();
    let app = TestApp::builder()
        .config(move |c| c.store.engine = url.parse().expect("a postgres:// URL"))
        .start()
        .await;
    let mut watcher = app.ws_as("w", Role::Free).await;
    let mut acked = Vec::new();
    let (status, stored) = post_comment(&app, "p0", "9", "before").await;
    assert_eq!(status, 201, "{stored}");
    acked.push(stored["id"].as_i64().unwrap());

    pg.stop();
    let outage = Instant::now();
    let (mut n, mut slowest) = (0, Duration::ZERO);
    while outage.elapsed() < Duration::from_secs(10) {
        n += 1;
        let asked = Instant::now();
        let (status, body) = post_comment(&app, &format!("p{n}"), "9", "during").await;
        let took = asked.elapsed();
        assert_eq!(status, 503, "post {n} during the outage: {body}");
        assert_eq!(body["code"], "store_unavailable");
        // The first post finds the server gone (bounded by the pool's 3 s acquire
        // timeout); from then on the store fails fast until its probe reconnects.
        let bound = if n == 1 { 4000 } else { 1000 };
        assert!(
            took < Duration::from_millis(bound),
            "post {n} took {took:?}"
        );
        if n > 1 {
            slowest = slowest.max(took);
        }
        // A push needs no store: it reaches the viewer during the outage.
        let tag = format!("live-{n}");
        let (status, reply) = app
            .admin_post("/api/push/broadcast", json!({"payload": {"tag": tag}}))
            .await;
        assert_eq!(status, 200, "{reply}");
        watcher.until(|v| tag_of(v) == Some(tag.as_str())).await;
    }
    assert!(n >= 20, "only {n} posts were tried during the outage");
    println!("{n} posts during the outage, slowest 503 after the first: {slowest:?}");

    pg.resume().await;
    // Posting resumes by itself: the same node, no restart.
    let back = Instant::now();
    let stored = loop {
        n += 1;
        let (status, body) = post_comment(&app, &format!("p{n}"), "9", "after").await;
        if status == 201 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "posting did not resume: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    acked.push(stored["id"].as_i64().unwrap());
    let ids = stored_ids(&app, "/api/videos/9/danmaku").await;
    assert_eq!(ids, acked, "exactly the acknowledged comments are stored");
}

/// The ids of the comments `app` lists at `path` (a video's history), in order.
async fn stored_ids(app: &TestApp, path: &str) -> Vec<i64> {
    let (status, page) = status_json(app.http.get(app.url(path)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .collect()
}
