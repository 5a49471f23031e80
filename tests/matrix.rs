//! The full role × channel tier × audience matrix, asserting delivery and non-delivery.
//!
//! Non-delivery is proven without sleeping: after all pushes, a broadcast sentinel is
//! published. Each socket's frames arrive in publish order, so once a client has read the
//! sentinel, every event meant for it has arrived and anything absent was never sent.

use std::collections::BTreeSet;

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{TestApp, WsClient, tag_of};

/// The reference model: may a socket of `role`/`sub` receive an audience?
fn admits(audience: &str, role: Role, sub: &str) -> bool {
    match audience {
        "everyone" => true,
        "members" => matches!(role, Role::Member | Role::Admin),
        "free" => matches!(role, Role::Guest | Role::Free),
        "users" => ["f1", "m1"].contains(&sub),
        other => panic!("unknown audience {other}"),
    }
}

/// The reference model: may `role` join a channel of `tier`?
fn joins(tier: &str, role: Role) -> bool {
    match tier {
        "free" => true,
        "member" => matches!(role, Role::Member | Role::Admin),
        "admin" => role == Role::Admin,
        other => panic!("unknown tier {other}"),
    }
}

/// The push body for an audience column.
fn body(tag: &str, audience: &str) -> Value {
    match audience {
        "users" => json!({"payload": {"tag": tag}, "audience": "everyone", "users": ["f1", "m1"]}),
        a => json!({"payload": {"tag": tag}, "audience": a}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_tier_audience_matrix() {
    let app = TestApp::start().await;
    let channels = [("news", "free"), ("vip", "member"), ("ops", "admin")];
    for (name, tier) in channels {
        app.declare(name, tier).await;
    }
    let audiences = ["everyone", "members", "free", "users"];
    let people = [
        ("g", Role::Guest),
        ("f1", Role::Free),
        ("m1", Role::Member),
        ("a1", Role::Admin),
    ];
    let mut clients: Vec<(String, Role, WsClient)> = Vec::new();
    for (sub, role) in people {
        let mut c = app.ws_as(sub, role).await;
        for (name, tier) in channels {
            let reply = c.subscribe(name).await;
            if joins(tier, role) {
                assert_eq!(reply["ok"], true, "{role} joins {name}: {reply}");
                assert_eq!(reply["tier"], tier);
            } else {
                assert_eq!(reply["ok"], false, "{role} must not join {name}: {reply}");
                assert_eq!(reply["error"]["code"], "forbidden");
            }
        }
        // Video rooms are free until the catalog says otherwise.
        let reply = c.subscribe("video:42").await;
        assert_eq!(reply["ok"], true, "{role} joins video:42: {reply}");
        clients.push((sub.to_string(), role, c));
    }

    // Every (channel, audience) pair, plus broadcast and per-role pushes.
    let mut expected: Vec<BTreeSet<String>> = vec![BTreeSet::new(); clients.len()];
    for (name, tier) in channels.iter().copied().chain([("video:42", "free")]) {
        for audience in audiences {
            let tag = format!("{name}/{audience}");
            app.push_channel(name, body(&tag, audience)).await;
            for (i, (sub, role, _)) in clients.iter().enumerate() {
                if joins(tier, *role) && admits(audience, *role, sub) {
                    expected[i].insert(tag.clone());
                }
            }
        }
    }
    for audience in audiences {
        let tag = format!("broadcast/{audience}");
        let (status, reply) = app
            .admin_post("/api/push/broadcast", body(&tag, audience))
            .await;
        assert_eq!(status, 200, "{reply}");
        for (i, (sub, role, _)) in clients.iter().enumerate() {
            if admits(audience, *role, sub) {
                expected[i].insert(tag.clone());
            }
        }
    }
    for target in ["guest", "free", "member", "admin"] {
        for audience in ["everyone", "members", "free"] {
            let tag = format!("role:{target}/{audience}");
            let (status, reply) = app
                .admin_post(&format!("/api/push/roles/{target}"), body(&tag, audience))
                .await;
            assert_eq!(status, 200, "{reply}");
            for (i, (sub, role, _)) in clients.iter().enumerate() {
                if role.as_str() == target && admits(audience, *role, sub) {
                    expected[i].insert(tag.clone());
                }
            }
        }
    }
    let (status, _) = app
        .admin_post(
            "/api/push/broadcast",
            json!({"event": "sentinel", "payload": {}}),
        )
        .await;
    assert_eq!(status, 200);

    for (i, (sub, role, c)) in clients.iter_mut().enumerate() {
        let (events, _) = c.until(|v| v["type"] == "sentinel").await;
        let got: BTreeSet<String> = events
            .iter()
            .filter_map(|v| tag_of(v).map(str::to_string))
            .collect();
        assert_eq!(got, expected[i], "{sub} ({role}) received the wrong set");
        assert_eq!(events.len(), got.len(), "{sub} received a duplicate");
        // No frame of any channel ever went backwards.
        let mut last = std::collections::HashMap::new();
        for e in &events {
            let ch = e["channel"].as_str().unwrap().to_string();
            let seq = e["seq"].as_u64().unwrap();
            let prev = last.insert(ch.clone(), seq).unwrap_or(0);
            assert!(seq > prev, "{sub}: seq on {ch} went from {prev} to {seq}");
        }
    }
    // A sanity check on the model itself: members-only content reached members only.
    assert!(expected[2].contains("vip/members"));
    assert!(!expected[1].iter().any(|t| t.contains("members")));
    assert!(
        !expected[0]
            .iter()
            .any(|t| t.starts_with("vip") || t.starts_with("ops"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_a_tier_stops_delivery_to_existing_free_subscribers() {
    let app = TestApp::start().await;
    app.declare("promo", "free").await;
    let mut free = app.ws_as("f1", Role::Free).await;
    let mut member = app.ws_as("m1", Role::Member).await;
    assert_eq!(free.subscribe("promo").await["ok"], true);
    assert_eq!(member.subscribe("promo").await["ok"], true);
    app.declare("promo", "member").await;
    app.push_channel("promo", json!({"payload": {"tag": "secret"}}))
        .await;
    app.admin_post(
        "/api/push/broadcast",
        json!({"event": "sentinel", "payload": {}}),
    )
    .await;
    let (events, _) = free.until(|v| v["type"] == "sentinel").await;
    assert!(
        events.iter().all(|v| tag_of(v) != Some("secret")),
        "free user got member content: {events:?}"
    );
    let (events, _) = member.until(|v| v["type"] == "sentinel").await;
    assert!(events.iter().any(|v| tag_of(v) == Some("secret")));
}
