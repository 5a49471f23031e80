//! Reading and removing danmaku: members-only videos and comments stay with members,
//! history windows, order and pages, recall and admin deletion, and durability across a
//! restart.

use std::collections::BTreeSet;

use danmaku::model::Role;
use serde_json::{Value, json};

use super::{comments_until_sentinel, history, post, sentinel, texts};
use crate::common::{API_KEY, TestApp, status_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_videos_and_members_only_comments_stay_with_members() {
    let app = TestApp::start().await;
    let (status, v) = app
        .admin_put(
            "/api/videos/vip",
            json!({"title": "Members night", "tier": "member"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let free = app.token("bob", Role::Free);
    let member = app.token("alice", Role::Member);
    let (status, err, _) = post(&app, Some(&free), "vip", json!({"text": "x"})).await;
    assert_eq!((status, err["code"].as_str()), (403, Some("member_only")));
    for token in [None, Some(free.as_str())] {
        let (status, err) = history(&app, token, "vip", "").await;
        assert_eq!((status, err["code"].as_str()), (403, Some("member_only")));
        let mut req = app.http.get(app.url("/api/videos/vip/danmaku.xml"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (status, err) = status_json(req.send().await.unwrap()).await;
        assert_eq!((status, err["code"].as_str()), (403, Some("member_only")));
    }
    let mut bob_ws = app.ws_as("bob", Role::Free).await;
    assert_eq!(
        bob_ws.subscribe("video:vip").await["error"]["code"],
        "member_only"
    );
    let (status, _, _) = post(&app, Some(&member), "vip", json!({"text": "ok"})).await;
    assert_eq!(status, 201);
    let (status, page) = history(&app, Some(&member), "vip", "").await;
    assert_eq!((status, texts(&page)), (200, vec!["ok".to_string()]));
    let (_, list) = status_json(app.http.get(app.url("/api/videos")).send().await.unwrap()).await;
    assert_eq!(list[0]["tier"], "member");

    // Members-only comments on a free video: members see them live and in history.
    let mut free_ws = app.ws_as("carol", Role::Free).await;
    let mut member_ws = app.ws_as("dave", Role::Member).await;
    let mut guest_ws = app.ws_as("", Role::Guest).await;
    for c in [&mut free_ws, &mut member_ws, &mut guest_ws] {
        assert_eq!(c.subscribe("video:open").await["ok"], true);
    }
    let erin = app.token("erin", Role::Member);
    let (status, _, _) = post(
        &app,
        Some(&erin),
        "open",
        json!({"text": "secret", "audience": "members"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _, _) = post(&app, Some(&free), "open", json!({"text": "public"})).await;
    assert_eq!(status, 201);
    sentinel(&app, "open").await;
    let seen = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .map(|d| d["data"]["text"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        seen(comments_until_sentinel(&mut member_ws).await),
        ["secret", "public"]
    );
    assert_eq!(
        seen(comments_until_sentinel(&mut free_ws).await),
        ["public"]
    );
    assert_eq!(
        seen(comments_until_sentinel(&mut guest_ws).await),
        ["public"]
    );
    let (_, page) = history(&app, None, "open", "").await;
    assert_eq!(texts(&page), ["public"]);
    let (_, page) = history(&app, Some(&free), "open", "").await;
    assert_eq!(texts(&page), ["public"]);
    let (_, page) = history(&app, Some(&member), "open", "").await;
    assert_eq!(texts(&page), ["secret", "public"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_windows_order_and_page() {
    let app = TestApp::start().await;
    let admin = app.token("root", Role::Admin);
    for (t, text) in [
        (30.0, "c"),
        (10.0, "a"),
        (20.0, "b"),
        (10.0, "a2"),
        (40.5, "d"),
    ] {
        let (status, _, _) = post(&app, Some(&admin), "h", json!({"text": text, "time": t})).await;
        assert_eq!(status, 201);
    }
    let (_, page) = history(&app, None, "h", "").await;
    assert_eq!(texts(&page), ["a", "a2", "b", "c", "d"]);
    assert_eq!(page["count"], 5);
    let (_, page) = history(&app, None, "h", "?from=15&to=40").await;
    assert_eq!(texts(&page), ["b", "c"]);
    let (_, page) = history(&app, None, "h", "?limit=2").await;
    assert_eq!(texts(&page), ["a", "a2"]);
    let first_ids: Vec<i64> = history(&app, None, "h", "").await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    let max_id = *first_ids.iter().max().unwrap();
    let (_, page) = history(&app, None, "h", &format!("?after_id={}", max_id - 1)).await;
    assert_eq!(texts(&page), ["d"]);
    let (status, err) = history(&app, None, "h", "?from=-3").await;
    assert_eq!((status, err["code"].as_str()), (422, Some("invalid_range")));
    // A repeat load is served (from the cache) and is invalidated by a new comment.
    let (_, again) = history(&app, None, "h", "").await;
    assert_eq!(texts(&again).len(), 5);
    post(&app, Some(&admin), "h", json!({"text": "e", "time": 50})).await;
    let (_, after) = history(&app, None, "h", "").await;
    assert_eq!(texts(&after).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_recall_admins_delete_others_cannot() {
    let app = TestApp::start().await;
    let alice = app.token("alice", Role::Member);
    let bob = app.token("bob", Role::Free);
    let mut viewer = app.ws_as("carol", Role::Free).await;
    viewer.subscribe("video:m").await;
    let (_, d1, _) = post(&app, Some(&alice), "m", json!({"text": "oops"})).await;
    let id1 = d1["id"].as_i64().unwrap();
    let del = |token: Option<String>, id: i64| {
        let app = &app;
        async move {
            let mut req = app.http.delete(app.url(&format!("/api/danmaku/{id}")));
            req = match token {
                Some(t) => req.bearer_auth(t),
                None => req.header("X-Api-Key", API_KEY),
            };
            status_json(req.send().await.unwrap()).await
        }
    };
    let (status, err) = del(Some(bob.clone()), id1).await;
    // Deleting another's comment is a moderator's action (tests/moderation/).
    assert_eq!((status, err["code"].as_str()), (403, Some("not_moderator")));
    let (status, _) = del(Some(alice.clone()), id1).await;
    assert_eq!(status, 204);
    let (_, ev) = viewer.until(|v| v["type"] == "danmaku_deleted").await;
    assert_eq!(ev["data"]["id"], id1);
    let (status, err) = del(Some(alice.clone()), id1).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("unknown_danmaku"))
    );
    let (_, page) = history(&app, None, "m", "").await;
    assert!(texts(&page).is_empty());

    let (_, d2, _) = post(&app, Some(&bob), "m", json!({"text": "rude"})).await;
    let (status, _) = del(None, d2["id"].as_i64().unwrap()).await;
    assert_eq!(status, 204, "admins (API key) delete anything");
    let (status, err) = del(Some(alice), 999_999).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("unknown_danmaku"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_comments_survive_a_restart() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_path_buf();
    let mut ids = BTreeSet::new();
    {
        let app = TestApp::builder()
            .config(|c| c.server.data_dir = dir.clone())
            .start()
            .await;
        let admin = app.token("root", Role::Admin);
        for i in 0..20 {
            let (status, d, _) = post(
                &app,
                Some(&admin),
                "r",
                json!({"text": format!("c{i}"), "time": i}),
            )
            .await;
            assert_eq!(status, 201);
            ids.insert(d["id"].as_i64().unwrap());
        }
        app.admin_put("/api/videos/r", json!({"title": "R", "tier": "member"}))
            .await;
    }
    let app = TestApp::builder()
        .config(|c| c.server.data_dir = dir.clone())
        .start()
        .await;
    let member = app.token("m", Role::Member);
    let (status, page) = history(&app, Some(&member), "r", "").await;
    assert_eq!(status, 200);
    let got: BTreeSet<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids);
    let (status, _) = history(&app, None, "r", "").await;
    assert_eq!(status, 403, "the catalog tier survived too");
}
