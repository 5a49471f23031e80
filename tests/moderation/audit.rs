//! The audit log: each action with actor, role, scope, target and reason; newest first;
//! paging by `before_id`; moderators see only their videos; recalls are not recorded.

use danmaku::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use super::{app, call, posted};
use crate::common::TestApp;

/// Every entry the caller may read with `query`, following `next_before_id` pages of
/// `limit`.
async fn all_pages(app: &TestApp, token: &str, query: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let (status, page) = call(
            app,
            Method::GET,
            &format!("/api/moderation/audit?limit={limit}{query}{before}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        out.extend(items.iter().cloned());
        match page["next_before_id"].as_i64() {
            Some(id) => {
                assert_eq!(items.len(), limit as usize, "a full page before the next");
                before = format!("&before_id={id}");
            }
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_each_action_newest_first_pages_and_is_scoped() {
    let app = app().await;
    let ann = app.token("ann", Role::Free);
    let carol = app.token("carol", Role::Free);
    let root = app.token("root", Role::Admin);
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/videos/ma/moderators/ann",
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let c1 = posted(&app, &carol, "ma", "spam one").await;
    let c2 = posted(&app, &carol, "mb", "spam two").await;
    let own = posted(&app, &carol, "ma", "my typo").await;
    let steps: Vec<(Method, String, &str, Option<Value>)> = vec![
        (
            Method::DELETE,
            format!("/api/danmaku/{c1}?reason=spam"),
            ann.as_str(),
            None,
        ),
        (
            Method::PUT,
            "/api/moderation/mutes".into(),
            ann.as_str(),
            Some(json!({"sub": "carol", "video": "ma", "seconds": 300, "reason": "repeat spam"})),
        ),
        (
            Method::DELETE,
            "/api/moderation/mutes/carol?video=ma&reason=appeal".into(),
            ann.as_str(),
            None,
        ),
        (
            Method::PUT,
            "/api/moderation/mutes".into(),
            root.as_str(),
            Some(json!({"sub": "dave", "seconds": 60, "reason": "raid"})),
        ),
        (
            Method::DELETE,
            format!("/api/danmaku/{c2}"),
            root.as_str(),
            None,
        ),
        // An author's own recall is not moderation: not recorded.
        (
            Method::DELETE,
            format!("/api/danmaku/{own}"),
            carol.as_str(),
            None,
        ),
    ];
    for (method, path, token, body) in steps {
        let (status, reply) = call(&app, method, &path, Some(token), body).await;
        assert!(status == 200 || status == 204, "{path}: {status} {reply}");
    }
    // A refused action records nothing.
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/moderation/mutes",
        Some(&ann),
        Some(json!({"sub": "carol", "video": "mb", "seconds": 60})),
    )
    .await;
    assert_eq!(status, 403);

    let log = all_pages(&app, "key", "", 200).await;
    let brief: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["actor_role"].as_str().unwrap(),
                e["video"].clone(),
                e["target"].as_str().unwrap().to_string(),
                e["reason"].clone(),
            )
        })
        .collect();
    let s = |v: &str| json!(v);
    assert_eq!(
        brief,
        [
            (
                "comment_deleted",
                "root",
                "admin",
                s("mb"),
                c2.to_string(),
                json!(null)
            ),
            (
                "user_muted",
                "root",
                "admin",
                json!(null),
                "dave".into(),
                s("raid")
            ),
            (
                "user_unmuted",
                "ann",
                "moderator",
                s("ma"),
                "carol".into(),
                s("appeal")
            ),
            (
                "user_muted",
                "ann",
                "moderator",
                s("ma"),
                "carol".into(),
                s("repeat spam")
            ),
            (
                "comment_deleted",
                "ann",
                "moderator",
                s("ma"),
                c1.to_string(),
                s("spam")
            ),
            (
                "moderator_added",
                "system",
                "admin",
                s("ma"),
                "ann".into(),
                json!(null)
            ),
        ]
    );
    assert!(
        log.windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64())
    );
    assert!(log.iter().all(|e| e["at"].as_u64().unwrap() > 0));
    let deleted = &log[4]["detail"];
    assert_eq!(
        (&deleted["author"], &deleted["text"]),
        (&json!("carol"), &json!("spam one"))
    );
    assert_eq!(log[3]["detail"]["seconds"], 300);

    // Paging by two gives the same entries, in the same order.
    assert_eq!(all_pages(&app, "key", "", 2).await, log);
    assert_eq!(all_pages(&app, "key", "", 1).await, log);
    // Filtered by video.
    let ma = all_pages(&app, "key", "&video=ma", 50).await;
    assert_eq!(ma.len(), 4);
    assert!(ma.iter().all(|e| e["video"] == "ma"));

    // ann (moderator of ma) reads ma's entries only; others are refused.
    assert_eq!(all_pages(&app, &ann, "&video=ma", 3).await, ma);
    for (token, query, code) in [
        (&ann, "", "not_moderator"),
        (&ann, "?video=mb", "not_moderator"),
        (&carol, "?video=ma", "not_moderator"),
        (&root, "?limit=0", "invalid_limit"),
        (&root, "?limit=201", "invalid_limit"),
    ] {
        let (status, body) = call(
            &app,
            Method::GET,
            &format!("/api/moderation/audit{query}"),
            Some(token),
            None,
        )
        .await;
        let want = if code == "invalid_limit" { 422 } else { 403 };
        assert_eq!(
            (status, body["code"].as_str()),
            (want, Some(code)),
            "{query}: {body}"
        );
    }
    let (status, _) = call(&app, Method::GET, "/api/moderation/audit", None, None).await;
    assert_eq!(status, 401);

    // Removing the moderator is recorded too (and then ann reads nothing).
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/api/videos/ma/moderators/ann",
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, page) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?limit=1",
        Some("key"),
        None,
    )
    .await;
    assert_eq!(
        (&page["items"][0]["action"], &page["items"][0]["target"]),
        (&json!("moderator_removed"), &json!("ann"))
    );
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?video=ma",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, 403);
}
