//! Danmaku under load: concurrent posters lose and duplicate nothing, and a burst is
//! sampled for free viewers while members and the store get every comment.

use std::collections::{BTreeSet, HashMap};

use danmaku::model::Role;
use serde_json::json;

use super::{comments_until_sentinel, history, post, sentinel};
use crate::common::{TestApp, WsClient, status_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_posters_lose_and_duplicate_nothing() {
    let app = TestApp::builder()
        .config(|c| {
            c.policy.member.cooldown_ms = 0;
            c.danmaku.free_feed_rate = 0;
        })
        .start()
        .await;
    const POSTERS: usize = 50;
    const EACH: usize = 4;
    let mut viewers = Vec::new();
    for (sub, role) in [
        ("", Role::Guest),
        ("v-free", Role::Free),
        ("v-member", Role::Member),
    ] {
        let mut c = app.ws_as(sub, role).await;
        assert_eq!(c.subscribe("video:busy").await["ok"], true);
        viewers.push(c);
    }
    let mut tasks = Vec::new();
    for p in 0..POSTERS {
        let token = app.token(&format!("poster{p}"), Role::Member);
        let http = app.http.clone();
        let url = app.url("/api/videos/busy/danmaku");
        let ws_base = app.ws_base.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            if p % 2 == 0 {
                for i in 0..EACH {
                    let resp = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"text": format!("{p}-{i}"), "time": i}))
                        .send()
                        .await
                        .unwrap();
                    let (status, d) = status_json(resp).await;
                    assert_eq!(status, 201, "{d}");
                    ids.push(d["id"].as_i64().unwrap());
                }
            } else {
                let mut c = WsClient::connect(&format!("{ws_base}?access_token={token}")).await;
                for i in 0..EACH {
                    let reply = c
                        .request(json!({"op": "danmaku", "video": "busy", "text": format!("{p}-{i}"), "time": i}))
                        .await;
                    assert_eq!(reply["ok"], true, "{reply}");
                    ids.push(reply["danmaku"]["id"].as_i64().unwrap());
                }
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), POSTERS * EACH);
    assert_eq!(unique.len(), all.len(), "duplicate ids");
    sentinel(&app, "busy").await;
    for v in &mut viewers {
        let mut got = comments_until_sentinel(v).await;
        // A WebSocket reply leaves at the commit and its event follows, so a comment
        // acknowledged just before the sentinel may be sequenced after it: read on until
        // every acknowledged id has come (a lost one fails on the read timeout).
        let id = |d: &serde_json::Value| d["data"]["id"].as_i64().unwrap();
        while got.iter().map(id).collect::<BTreeSet<_>>() != unique {
            let next = v.next_json().await;
            if next["type"] == "danmaku" {
                got.push(next);
            }
        }
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for d in &got {
            *counts.entry(d["data"]["id"].as_i64().unwrap()).or_default() += 1;
        }
        assert_eq!(
            counts.keys().copied().collect::<BTreeSet<_>>(),
            unique,
            "a viewer missed comments"
        );
        assert!(counts.values().all(|n| *n == 1), "a viewer got a duplicate");
        let seqs: Vec<u64> = got.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "seq not strictly increasing"
        );
    }
    let (_, page) = history(&app, None, "busy", "").await;
    assert_eq!(
        page["count"],
        (POSTERS * EACH) as u64,
        "every acknowledged comment is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_sampled_for_free_viewers_and_complete_for_members() {
    let app = TestApp::builder()
        .config(|c| c.danmaku.free_feed_rate = 5)
        .start()
        .await;
    let admin = app.token("root", Role::Admin);
    let mut member = app.ws_as("m", Role::Member).await;
    let mut free = app.ws_as("f", Role::Free).await;
    let mut guest = app.ws_as("", Role::Guest).await;
    for c in [&mut member, &mut free, &mut guest] {
        c.subscribe("video:hot").await;
    }
    const BURST: usize = 60;
    for i in 0..BURST {
        let (status, _, _) =
            post(&app, Some(&admin), "hot", json!({"text": format!("b{i}")})).await;
        assert_eq!(status, 201);
    }
    sentinel(&app, "hot").await;
    assert_eq!(comments_until_sentinel(&mut member).await.len(), BURST);
    let free_got = comments_until_sentinel(&mut free).await.len();
    let guest_got = comments_until_sentinel(&mut guest).await.len();
    assert_eq!(
        free_got, guest_got,
        "guests and free users share one sampled feed"
    );
    assert!(
        (1..BURST / 2).contains(&free_got),
        "free feed got {free_got} of {BURST}"
    );
    let sampled = app.metric("danmaku_free_feed_sampled_out_total").await;
    assert_eq!(sampled as usize, BURST - free_got);
    let (_, page) = history(&app, None, "hot", "").await;
    assert_eq!(
        page["count"], BURST as u64,
        "stored comments are never dropped"
    );
}
