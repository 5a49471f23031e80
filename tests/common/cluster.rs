//! Cluster harness: finding the shared Redis and PostgreSQL the cluster suite asks for
//! (failing loudly when asked for and missing), starting nodes on them with a fresh key
//! prefix and schema per test, cleaning up after, and the small per-node client helpers
//! the cluster tests share.

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{TestApp, WsClient, status_json, tag_of};

/// Where the shared services are, when the cluster suite is requested.
pub struct Services {
    pub redis: String,
    pub pg: String,
}

/// The services named by the environment, or `None` (after saying so) when unset.
pub async fn requested(test: &str) -> Option<Services> {
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
pub fn unique(test: &str) -> String {
    format!(
        "t_{test}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Starts one node of the cluster named `ns` on `redis`.
pub async fn node(svc: &Services, redis: &str, ns: &str, id: &str) -> TestApp {
    node_with(svc, redis, ns, id, |_| {}).await
}

/// [`node`], with `tweak` applied to its configuration last.
pub async fn node_with(
    svc: &Services,
    redis: &str,
    ns: &str,
    id: &str,
    tweak: impl FnOnce(&mut danmaku::config::Config),
) -> TestApp {
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
        .config(tweak)
        .start()
        .await
}

/// Starts `n` nodes sharing one prefix and schema.
pub async fn cluster(svc: &Services, ns: &str, n: usize) -> Vec<TestApp> {
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(node(svc, &svc.redis, ns, &format!("n{i}")).await);
    }
    nodes
}

/// Drops the test's schema and deletes its Redis keys.
pub async fn cleanup(svc: &Services, ns: &str) {
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
pub async fn post_comment(app: &TestApp, sub: &str, video: &str, text: &str) -> (u16, Value) {
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
pub async fn try_push(app: &TestApp, channel: &str, body: Value) -> u16 {
    app.admin_post(&format!("/api/push/channels/{channel}"), body)
        .await
        .0
}

/// Connects `sub` with `role` to `app` and subscribes to `channel`.
pub async fn viewer(app: &TestApp, sub: &str, role: Role, channel: &str) -> WsClient {
    let mut c = app.ws_as(sub, role).await;
    let reply = c.subscribe(channel).await;
    assert_eq!(reply["ok"], true, "{reply}");
    c
}

/// Events with a payload tag that `c` read before the one tagged `fence`.
pub async fn tags_until(c: &mut WsClient, fence: &str) -> Vec<String> {
    let (before, _) = c.until(|v| tag_of(v) == Some(fence)).await;
    before
        .iter()
        .filter_map(tag_of)
        .map(str::to_string)
        .collect()
}

/// Subscribes with a recovery position and returns the reply.
pub async fn subscribe_since(c: &mut WsClient, channel: &str, seq: u64, epoch: &str) -> Value {
    c.request(json!({"op": "subscribe", "channel": channel, "since": {"seq": seq, "epoch": epoch}}))
        .await
}

/// The presence total of a channel as node `app` reports it.
pub async fn presence_total(app: &TestApp, channel: &str) -> u64 {
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

/// Whether `/readyz` answers 200.
pub async fn ready(app: &TestApp) -> bool {
    app.http
        .get(app.url("/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16() == 200)
        .unwrap_or(false)
}
