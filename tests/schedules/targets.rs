//! Schedule targets: each target kind and audience reaches exactly its sockets.

use danmaku::model::Role;
use serde_json::json;

use super::{Auth, call, create, delete, get, run_of, sentinel};
use crate::common::{TestApp, WsClient, tag_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_target_kind_reaches_exactly_its_sockets() {
    let app = TestApp::start().await;
    app.declare("news", "free").await;
    let mut phone = app.ws_as("alice", Role::Member).await;
    let mut laptop = app.ws_as("alice", Role::Member).await;
    let mut bob = app.ws_as("bob", Role::Free).await;
    assert_eq!(phone.subscribe("news").await["ok"], true);
    assert_eq!(bob.subscribe("news").await["ok"], true);

    let order = json!({"type": 1, "orderId": 7, "content": "order 7 paid"});
    let kinds = [
        ("bc", json!({"kind": "broadcast"}), "everyone", 3),
        (
            "role",
            json!({"kind": "role", "role": "member"}),
            "everyone",
            2,
        ),
        (
            "user",
            json!({"kind": "user", "user": "bob"}),
            "everyone",
            1,
        ),
        (
            "users",
            json!({"kind": "users", "users": ["alice", "nobody"]}),
            "everyone",
            2,
        ),
        (
            "news",
            json!({"kind": "channel", "channel": "news"}),
            "everyone",
            2,
        ),
        (
            "news-members",
            json!({"kind": "channel", "channel": "news"}),
            "members",
            1,
        ),
        ("bc-free", json!({"kind": "broadcast"}), "free", 1),
    ];
    let mut ids = Vec::new();
    for (tag, target, audience, _) in &kinds {
        let payload = if *tag == "user" {
            order.clone()
        } else {
            json!({"tag": tag})
        };
        let s = create(
            &app,
            json!({"name": tag, "every_s": 1, "target": target, "event": "sched",
                   "payload": payload, "audience": audience}),
        )
        .await;
        assert_eq!(s["target"], *target);
        assert_eq!(s["runs"], 0);
        assert_eq!(s["tz"], "UTC");
        ids.push(s["id"].as_str().unwrap().to_string());
    }

    // Every schedule has run (and counted its sockets) at least once.
    let (appr, n) = (&app, kinds.len());
    app.wait_for("every schedule to run", || async move {
        let (_, list) = call(appr, "GET", "/api/schedules", None, Auth::Key).await;
        list.as_array()
            .is_some_and(|l| l.len() == n && l.iter().all(|s| s["last_delivered"].is_u64()))
    })
    .await;
    for (id, (tag, _, _, sockets)) in ids.iter().zip(&kinds) {
        let s = get(&app, id).await;
        assert_eq!(
            s["last_delivered"], *sockets,
            "{tag} reaches {sockets} sockets: {s}"
        );
        assert!(s["runs"].as_u64().unwrap() >= 1);
        assert!(s["last_run"].is_u64());
    }
    for id in &ids {
        delete(&app, id).await;
    }
    sentinel(&app, "end").await;

    let expected: [(&str, &mut WsClient, &[&str]); 3] = [
        (
            "alice's phone",
            &mut phone,
            &["bc", "role", "users", "news", "news-members"],
        ),
        ("alice's laptop", &mut laptop, &["bc", "role", "users"]),
        ("bob", &mut bob, &["bc", "user", "news", "bc-free"]),
    ];
    for (who, c, want) in expected {
        let (events, _) = c.until(|v| tag_of(v) == Some("end")).await;
        let mut got: Vec<String> = Vec::new();
        for ev in events.iter().filter(|v| v["type"] == "sched") {
            let name = ev["data"]["schedule"]["name"].as_str().unwrap().to_string();
            let channel = ev["channel"].as_str().unwrap();
            let want_channel = match name.as_str() {
                "user" => "user:bob",
                "users" => "user:alice",
                "news" | "news-members" => "news",
                _ => "broadcast",
            };
            assert_eq!(channel, want_channel, "{who}: {ev}");
            if name == "user" {
                // The order alert's payload reaches the page byte for byte.
                assert_eq!(
                    ev["data"]["payload"].to_string(),
                    r#"{"type":1,"orderId":7,"content":"order 7 paid"}"#
                );
            } else {
                assert_eq!(tag_of(ev), Some(name.as_str()));
            }
            assert!(run_of(ev) >= 1);
            if !got.contains(&name) {
                got.push(name);
            }
        }
        got.sort();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{who} received exactly its schedules");
    }
}
