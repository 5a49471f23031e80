//! Cluster: three in-process nodes sharing a real Redis (bus) and PostgreSQL (store).
//!
//! Requested by setting `DANMAKU_TEST_REDIS_URL` and `DANMAKU_TEST_PG_URL` (`.ci/run` does).
//! When requested, an unreachable service fails the test loudly; when not, each test
//! prints one line and returns, so `cargo test` passes on a bare machine. Every test uses
//! its own Redis key prefix and PostgreSQL schema, so they run in parallel.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{TestApp, WsClient, status_json, tag_of};

/// Where the shared services are, when the cluster suite is requested.
struct Services {
    redis: String,
    pg: String,
}

/// The services named by the environment, or `None` (after saying so) when unset.
async fn requested(test: &str) -> Option<Services> {
    let redis = std::env::var("DANMAKU_TEST_REDIS_URL").ok();
    let pg = std::env::var("DANMAKU_TEST_PG_URL").ok();
    let (Some(redis), Some(pg)) = (redis, pg) else {
        println!(
            "cluster test {test} not requested: set DANMAKU_TEST_REDIS_URL and DANMAKU_TEST_PG_URL"
        );
        return None;
    };
    // Requested: a missing service is a failure, never a skip.
    let client = redis::Client::open(redis.as_str()).expect("DANMAKU_TEST_REDIS_URL parses");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {redis} is unreachable: {e}"));
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("Redis at {redis} does not answer: {e}"));
    let _ = sqlx::PgPool::connect(&pg)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {pg} is unreachable: {e}"));
    Some(Services { redis, pg })
}

/// A fresh name usable as a Redis prefix and a PostgreSQL schema.
fn unique(test: &str) -> String {
    format!(
        "t_{test}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Starts one node of the cluster named `ns` on `redis`.
async fn node(svc: &Services, redis: &str, ns: &str, id: &str) -> TestApp {
    let (redis, pg, ns, id) = (
        redis.to_string(),
        svc.pg.clone(),
        ns.to_string(),
        id.to_string(),
    );
    TestApp::builder()
        .config(move |c| {
            c.bus.engine = redis.parse().expect("a redis:// URL");
            c.store.engine = pg.parse().expect("a postgres:// URL");
            c.bus.key_prefix = ns.clone();
            c.store.pg_schema = ns;
            c.bus.node_id = id;
            c.ws.presence_interval_ms = 100;
        })
        .start()
        .await
}

/// Starts `n` nodes sharing one prefix and schema.
async fn cluster(svc: &Services, ns: &str, n: usize) -> Vec<TestApp> {
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(node(svc, &svc.redis, ns, &format!("n{i}")).await);
    }
    nodes
}

/// Drops the test's schema and deletes its Redis keys.
async fn cleanup(svc: &Services, ns: &str) {
    if let Ok(client) = redis::Client::open(svc.redis.as_str())
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{ns}:*"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> =
                redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    }
    if let Ok(pool) = sqlx::PgPool::connect(&svc.pg).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{ns}\" CASCADE"
        )))
        .execute(&pool)
        .await;
    }
}

/// POSTs a comment as `sub` (a member) on `app`; returns status and body.
async fn post_comment(app: &TestApp, sub: &str, video: &str, text: &str) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(&format!("/api/videos/{video}/danmaku")))
        .bearer_auth(app.token(sub, Role::Member))
        .json(&json!({"text": text, "time": 1.0}))
        .send()
        .await
        .expect("request");
    status_json(resp).await
}

/// Pushes `tag` to a channel through `app`, returning the HTTP status.
async fn try_push(app: &TestApp, channel: &str, body: Value) -> u16 {
    app.admin_post(&format!("/api/push/channels/{channel}"), body)
        .await
        .0
}

/// Connects `sub` with `role` to `app` and subscribes to `channel`.
async fn viewer(app: &TestApp, sub: &str, role: Role, channel: &str) -> WsClient {
    let mut c = app.ws_as(sub, role).await;
    let reply = c.subscribe(channel).await;
    assert_eq!(reply["ok"], true, "{reply}");
    c
}

/// Events with a payload tag that `c` read before the one tagged `fence`.
async fn tags_until(c: &mut WsClient, fence: &str) -> Vec<String> {
    let (before, _) = c.until(|v| tag_of(v) == Some(fence)).await;
    before
        .iter()
        .filter_map(tag_of)
        .map(str::to_string)
        .collect()
}

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

/// Subscribes with a recovery position and returns the reply.
async fn subscribe_since(c: &mut WsClient, channel: &str, seq: u64, epoch: &str) -> Value {
    c.request(json!({"op": "subscribe", "channel": channel, "since": {"seq": seq, "epoch": epoch}}))
        .await
}

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

/// The presence total of a channel as node `app` reports it.
async fn presence_total(app: &TestApp, channel: &str) -> u64 {
    let (status, body) = status_json(
        app.http
            .get(app.url(&format!("/api/channels/{channel}/presence")))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_sums_every_node_and_forgets_a_stopped_node() {
    let Some(svc) = requested("presence").await else {
        return;
    };
    let ns = unique("presence");
    let mut nodes = cluster(&svc, &ns, 3).await;
    let mut watcher = viewer(&nodes[0], "a1", Role::Free, "video:p").await;
    let _b1 = viewer(&nodes[1], "b1", Role::Free, "video:p").await;
    let _b2 = viewer(&nodes[1], "b2", Role::Member, "video:p").await;
    let _c1 = viewer(&nodes[2], "c1", Role::Free, "video:p").await;
    for app in &nodes {
        app.wait_for("presence total 4", || async {
            presence_total(app, "video:p").await == 4
        })
        .await;
    }
    let (_, ev) = watcher
        .until(|v| v["type"] == "presence" && v["data"]["total"] == 4)
        .await;
    assert_eq!(ev["channel"], "video:p");

    nodes[2].stop();
    for app in &nodes[..2] {
        app.wait_for("the stopped node's viewer to vanish", || async {
            presence_total(app, "video:p").await == 3
        })
        .await;
    }
    watcher
        .until(|v| v["type"] == "presence" && v["data"]["total"] == 3)
        .await;
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_once_per_tick_with_three_nodes() {
    let Some(svc) = requested("schedule").await else {
        return;
    };
    let ns = unique("schedule");
    let nodes = cluster(&svc, &ns, 3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (status, created) = a
        .admin_post(
            "/api/schedules",
            json!({"name": "tick", "every_s": 1, "target": {"kind": "broadcast"},
                   "payload": {"tag": "tick"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // B and C pick the schedule up from PostgreSQL: all three would fire it.
    for app in [b, c] {
        app.wait_for("the schedule to reach every node", || async {
            let resp = app
                .http
                .get(app.url(&format!("/api/schedules/{id}")))
                .header("X-Api-Key", crate::common::API_KEY)
                .send()
                .await
                .unwrap();
            resp.status().as_u16() == 200
        })
        .await;
    }
    let mut watchers = [
        a.ws_as("wa", Role::Free).await,
        b.ws_as("wb", Role::Free).await,
        c.ws_as("wc", Role::Free).await,
    ];
    for w in &mut watchers {
        let mut runs: BTreeMap<u64, usize> = BTreeMap::new();
        while runs.len() < 4 {
            let v = w.next_json().await;
            if v["data"]["schedule"]["id"] == json!(id) {
                let run = v["data"]["schedule"]["run"].as_u64().unwrap();
                *runs.entry(run).or_default() += 1;
            }
        }
        // Read one more run so a late duplicate of the last counted one would show.
        loop {
            let v = w.next_json().await;
            if v["data"]["schedule"]["id"] == json!(id) {
                let run = v["data"]["schedule"]["run"].as_u64().unwrap();
                *runs.entry(run).or_default() += 1;
                if runs.len() > 4 {
                    break;
                }
            }
        }
        let counts: Vec<usize> = runs.values().copied().collect();
        assert!(counts.iter().all(|n| *n == 1), "each run once: {runs:?}");
        let numbers: Vec<u64> = runs.keys().copied().collect();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "consecutive runs: {numbers:?}"
        );
    }
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

/// A throwaway Redis on its own port, killed and restarted by one test.
struct ThrowawayRedis {
    port: u16,
    child: Option<Child>,
}

impl ThrowawayRedis {
    /// Starts `redis-server` on a free port and waits until it answers.
    async fn start() -> ThrowawayRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut r = ThrowawayRedis { port, child: None };
        r.spawn().await;
        r
    }

    /// The URL of this instance.
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and waits for PING.
    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the cluster suite");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "throwaway redis did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server and reaps it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `/readyz` answers 200.
async fn ready(app: &TestApp) -> bool {
    app.http
        .get(app.url("/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16() == 200)
        .unwrap_or(false)
}

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
async fn postgres_answers_every_store_query_like_sqlite() {
    use danmaku::{
        model::{Audience, Mode, Size, Tier},
        store::{
            ScheduleRecord, ScheduleStore, Store,
            danmaku::{DanmakuStore, HistoryQuery, NewDanmaku, Video},
            postgres::PgStore,
            sqlite::SqliteStore,
        },
    };
    let Some(svc) = requested("store_parity").await else {
        return;
    };
    let ns = unique("parity");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path()).unwrap();
    let pg = PgStore::open(&svc.pg, &ns)
        .await
        .expect("postgres store opens");
    // Opening twice is idempotent (migrations already applied).
    let pg_again = PgStore::open(&svc.pg, &ns).await.expect("reopens");
    let stores: [&dyn Store; 2] = [&sqlite, &pg];
    let comment = |i: u64| NewDanmaku {
        video: if i.is_multiple_of(5) {
            "v2".into()
        } else {
            "v1".into()
        },
        time_ms: (i * 7919) % 1000,
        text: format!("c{i}"),
        mode: [Mode::Scroll, Mode::Top, Mode::Bottom][i as usize % 3],
        color: i as u32 * 1000,
        size: [Size::Small, Size::Normal, Size::Large][i as usize % 3],
        audience: [Audience::Everyone, Audience::Members, Audience::Free][i as usize % 3],
        sub: format!("u{}", i % 4),
        name: format!("U{i}"),
        created_at: 1_700_000_000_000 + i,
    };
    for s in stores {
        for i in 1..=30 {
            s.insert_danmaku(comment(i)).await.unwrap();
        }
        assert_eq!(
            s.insert_many((31..=40).map(comment).collect())
                .await
                .unwrap(),
            10
        );
        assert!(s.tombstone_danmaku(3, 99).await.unwrap());
        assert!(
            !s.tombstone_danmaku(3, 100).await.unwrap(),
            "already deleted"
        );
        assert!(s.put_channel("news", Tier::Member).await.unwrap());
        assert!(!s.put_channel("news", Tier::Free).await.unwrap());
        assert!(s.put_channel("gone", Tier::Free).await.unwrap());
        assert!(s.delete_channel("gone").await.unwrap());
        let v = Video {
            id: "v1".into(),
            title: "t".into(),
            tier: Tier::Member,
            updated_at: 5,
        };
        assert!(s.put_video(v.clone()).await.unwrap());
        assert!(!s.put_video(v).await.unwrap());
        s.put_mute("u1", 10_000).await.unwrap();
        s.put_mute("u2", 10).await.unwrap();
        let rec = ScheduleRecord {
            id: "s-1".into(),
            definition: r#"{"name":"n"}"#.into(),
            paused: false,
            created_at: 1,
            last_run: None,
            last_delivered: None,
            runs: 0,
        };
        s.put_schedule(&rec).await.unwrap();
        assert!(s.put_schedule(&rec).await.is_err(), "ids are unique");
        assert!(s.set_schedule_paused("s-1", true).await.unwrap());
        assert!(s.record_schedule_run("s-1", 9, 2, 3).await.unwrap());
        assert!(!s.record_schedule_run("s-x", 9, 2, 3).await.unwrap());
        s.flush().await.unwrap();
    }
    let mut queries = Vec::new();
    for members in [false, true] {
        for newest in [false, true] {
            for (from_ms, to_ms) in [(None, None), (Some(100), Some(700))] {
                for after_id in [None, Some(12)] {
                    for limit in [5, 100] {
                        queries.push(HistoryQuery {
                            video: "v1".into(),
                            from_ms,
                            to_ms,
                            after_id,
                            limit,
                            members,
                            newest,
                        });
                    }
                }
            }
        }
    }
    for q in queries {
        let a = sqlite.history(q.clone()).await.unwrap();
        let b = pg.history(q.clone()).await.unwrap();
        assert!(!a.is_empty(), "{q:?}");
        assert_eq!(a, b, "{q:?}");
    }
    assert_eq!(
        sqlite.get_danmaku(3).await.unwrap(),
        pg.get_danmaku(3).await.unwrap()
    );
    assert_eq!(pg.get_danmaku(999).await.unwrap(), None);
    let strip = |v: Vec<danmaku::store::ChannelDecl>| {
        v.into_iter().map(|d| (d.name, d.tier)).collect::<Vec<_>>()
    };
    assert_eq!(
        strip(sqlite.list_channels().await.unwrap()),
        strip(pg_again.list_channels().await.unwrap())
    );
    assert_eq!(
        sqlite.list_videos().await.unwrap(),
        pg.list_videos().await.unwrap()
    );
    assert_eq!(
        sqlite.list_mutes(1000).await.unwrap(),
        pg.list_mutes(1000).await.unwrap()
    );
    assert_eq!(
        sqlite.list_schedules().await.unwrap(),
        pg.list_schedules().await.unwrap()
    );
    assert!(pg.delete_schedule("s-1").await.unwrap());
    assert!(!pg.delete_schedule("s-1").await.unwrap());
    cleanup(&svc, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_viewers_vanish_within_the_presence_ttl() {
    let Some(svc) = requested("presence_kill").await else {
        return;
    };
    let ns = unique("kill");
    let nodes = cluster(&svc, &ns, 1).await;
    let a = &nodes[0];
    let _on_a = viewer(a, "a1", Role::Free, "video:k").await;
    // A second node in its own process, so it can be killed without any cleanup.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_danmaku"))
            .arg("serve")
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--jwt-secret", crate::common::SECRET])
            .args(["--bus", &svc.redis, "--store", &svc.pg])
            .args([
                "--key-prefix",
                &ns,
                "--pg-schema",
                &ns,
                "--node-id",
                "doomed",
            ])
            .args(["--presence-interval-ms", "100", "--log", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the danmaku binary starts"),
    );
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    a.wait_for("the second node to be ready", || async {
        a.http
            .get(&readyz)
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;
    let mut doomed = WsClient::connect(&format!(
        "ws://127.0.0.1:{port}/ws?access_token={}",
        a.token("d1", Role::Free)
    ))
    .await;
    assert_eq!(doomed.subscribe("video:k").await["ok"], true);
    a.wait_for("presence total 2", || async {
        presence_total(a, "video:k").await == 2
    })
    .await;
    child.kill();
    // The killed node's counts expire after three heartbeats (300 ms here).
    a.wait_for("the killed node's viewer to vanish", || async {
        presence_total(a, "video:k").await == 1
    })
    .await;
    cleanup(&svc, &ns).await;
}

/// A child process killed (and reaped) at the latest when the test ends, even failing.
struct KillOnDrop(Child);

impl KillOnDrop {
    /// Sends SIGKILL: no shutdown sequence runs.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}
