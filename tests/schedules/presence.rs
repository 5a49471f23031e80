//! Presence events: they follow sockets joining and leaving, at most one per interval
//! and only on change.

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{TestApp, WsClient, tag_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_events_follow_sockets_joining_and_leaving() {
    let app = TestApp::builder()
        .config(|c| c.ws.presence_interval_ms = 100)
        .start()
        .await;
    /// Reads until a presence event for `channel` with `total`, returning the presence
    /// events read on the way (the match included).
    async fn presence_until(c: &mut WsClient, channel: &str, total: u64) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let v = c.next_json().await;
            if v["type"] == "presence" {
                assert_eq!(v["channel"], channel, "only this room's presence: {v}");
                assert!(v["seq"].as_u64().unwrap() >= 1 && v["ts"].is_u64(), "{v}");
                let done = v["data"]["total"] == total;
                seen.push(v);
                if done {
                    return seen;
                }
            }
        }
    }

    let mut a = app.ws_as("", Role::Guest).await;
    a.subscribe("video:42").await;
    let mut other = app.ws_as("olga", Role::Free).await;
    other.subscribe("video:7").await;
    let mut seen = presence_until(&mut a, "video:42", 1).await;
    presence_until(&mut other, "video:7", 1).await;

    let mut b = app.ws_as("bob", Role::Free).await;
    b.subscribe("video:42").await;
    seen.extend(presence_until(&mut a, "video:42", 2).await);
    presence_until(&mut b, "video:42", 2).await;
    let mut c = app.ws_as("carol", Role::Member).await;
    c.subscribe("video:42").await;
    seen.extend(presence_until(&mut a, "video:42", 3).await);

    // Churn faster than the interval: at most one event per interval, and only changes.
    for _ in 0..5 {
        b.request(json!({"op": "unsubscribe", "channel": "video:42"}))
            .await;
        b.subscribe("video:42").await;
    }
    assert_eq!(
        b.request(json!({"op": "unsubscribe", "channel": "video:42"}))
            .await["ok"],
        true
    );
    seen.extend(presence_until(&mut a, "video:42", 2).await);
    drop(c);
    seen.extend(presence_until(&mut a, "video:42", 1).await);

    // Stable for several intervals: nothing more is sent.
    let calm_from = danmaku::model::time::now_millis();
    app.wait_for("five presence intervals", || async move {
        danmaku::model::time::now_millis() > calm_from + 500
    })
    .await;
    app.push_channel(
        "video:42",
        json!({"event": "sentinel", "payload": {"tag": "calm"}}),
    )
    .await;
    let (events, _) = a.until(|v| tag_of(v) == Some("calm")).await;
    assert!(
        events.iter().all(|v| v["type"] != "presence"),
        "no presence while the count holds: {events:?}"
    );

    for pair in seen.windows(2) {
        assert_ne!(
            pair[0]["data"]["total"], pair[1]["data"]["total"],
            "only changes are sent: {seen:?}"
        );
        let gap = pair[1]["ts"].as_u64().unwrap() - pair[0]["ts"].as_u64().unwrap();
        assert!(
            gap >= 80,
            "at most one presence event per interval: {gap} ms in {seen:?}"
        );
    }
    assert_eq!(
        app.http
            .get(app.url("/api/channels/video:42/presence"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["total"],
        1
    );
}
