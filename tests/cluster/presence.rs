//! Presence and schedules across nodes: presence sums every node and forgets a stopped or
//! killed one, and a schedule fires once per tick however many nodes plan it.

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
};

use danmaku::model::Role;
use serde_json::json;

use crate::common::{
    WsClient,
    cluster::{cleanup, cluster, presence_total, requested, unique, viewer},
    process::KillOnDrop,
};

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
