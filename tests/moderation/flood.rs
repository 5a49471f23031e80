//! Flood control: the post that crosses a video's flood rule mutes its poster there (the
//! mute listed with its reason, audited as `system`), a repeat offence gets the
//! escalated mute, admins are exempt; the rule's CRUD (a video's own, else the
//! configured default) with its refusals.

use danmaku::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use super::{app, call, post, refused, texts};
use crate::common::TestApp;

/// A server whose default flood rule is 3 comments in 20 s, then a 1 s mute, then 600 s.
async fn flood_app() -> TestApp {
    let app = TestApp::builder()
        .config(|c| {
            c.policy.free.cooldown_ms = 0;
            c.policy.member.cooldown_ms = 0;
            c.moderation.flood_max = 3;
            c.moderation.flood_window_s = 20;
            c.moderation.flood_mute_s = 1;
            c.moderation.flood_escalation = vec![600];
        })
        .start()
        .await;
    for v in ["ma", "mb"] {
        let (status, _) = app
            .admin_put(
                &format!("/api/videos/{v}"),
                json!({"title": v, "tier": "free"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    app
}

/// The mute of `sub` in `video`, as an admin lists it.
async fn mute_of(app: &TestApp, sub: &str, video: &str) -> Option<Value> {
    let (status, list) = call(
        app,
        Method::GET,
        &format!("/api/moderation/mutes?video={video}"),
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["sub"] == sub)
        .cloned()
}

/// The newest audit entry of `video`.
async fn last_audit(app: &TestApp, video: &str) -> Value {
    let (status, page) = call(
        app,
        Method::GET,
        &format!("/api/moderation/audit?video={video}&limit=1"),
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["items"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_past_the_limit_mutes_in_that_room_and_a_second_offence_escalates() {
    let app = flood_app().await;
    let fay = app.token("fay", Role::Free);
    for i in 0..3 {
        assert_eq!(post(&app, &fay, "ma", &format!("f{i}")).await.0, 201);
    }
    // The fourth within 20 s crosses the limit: refused, not stored, and fay is muted.
    let (status, err) = post(&app, &fay, "ma", "f3").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("flood_muted")));
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("for 1 s") && msg.contains("offence 1"),
        "{msg}"
    );
    assert!(!texts(&app, "ma").await.contains(&"f3".to_string()));
    let m = mute_of(&app, "fay", "ma")
        .await
        .expect("fay is muted in ma");
    assert_eq!(m["by"], "system");
    assert!(m["reason"].as_str().unwrap().contains("flooding"), "{m}");
    assert_eq!(
        m["until"].as_u64().unwrap() - m["created_at"].as_u64().unwrap(),
        1000
    );
    let a = last_audit(&app, "ma").await;
    assert_eq!(
        (&a["action"], &a["actor"], &a["actor_role"], &a["target"]),
        (
            &json!("auto_muted"),
            &json!("system"),
            &json!("system"),
            &json!("fay")
        ),
        "{a}"
    );
    assert_eq!(
        (&a["detail"]["offence"], &a["detail"]["seconds"]),
        (&json!(1), &json!(1))
    );
    // Muted in that room only; other users and rooms are untouched.
    let (status, err) = post(&app, &fay, "ma", "again").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("muted")));
    assert!(
        err["message"].as_str().unwrap().contains("flooding"),
        "{err}"
    );
    assert_eq!(post(&app, &fay, "mb", "other room").await.0, 201);
    assert_eq!(
        post(&app, &app.token("gus", Role::Free), "ma", "g").await.0,
        201
    );

    // The mute ends by itself (refused posts do not count); the next flood is the second
    // offence of the day: the escalated 600 s.
    app.wait_for("the first mute to end", || async {
        post(&app, &fay, "ma", "back").await.0 == 201
    })
    .await;
    for i in 0..2 {
        assert_eq!(post(&app, &fay, "ma", &format!("b{i}")).await.0, 201);
    }
    let (status, err) = post(&app, &fay, "ma", "b2").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("flood_muted")));
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("for 600 s") && msg.contains("offence 2"),
        "{msg}"
    );
    let m = mute_of(&app, "fay", "ma").await.expect("muted again");
    assert_eq!(
        m["until"].as_u64().unwrap() - m["created_at"].as_u64().unwrap(),
        600_000
    );
    assert_eq!(last_audit(&app, "ma").await["detail"]["offence"], 2);

    // Admins are exempt; members are counted like free users.
    let root = app.token("root", Role::Admin);
    for i in 0..8 {
        assert_eq!(post(&app, &root, "ma", &format!("a{i}")).await.0, 201);
    }
    let mia = app.token("mia", Role::Member);
    for _ in 0..3 {
        assert_eq!(post(&app, &mia, "mb", "m").await.0, 201);
    }
    refused(post(&app, &mia, "mb", "m").await, 403, "flood_muted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_default_mutes_the_eleventh_comment_in_twenty_seconds() {
    let app = TestApp::builder()
        .config(|c| {
            c.policy.member.cooldown_ms = 0;
            c.moderation = danmaku::config::ModerationConfig::default();
        })
        .start()
        .await;
    let (status, _) = app
        .admin_put("/api/videos/nv", json!({"title": "nv", "tier": "free"}))
        .await;
    assert_eq!(status, 201);
    let mia = app.token("mia", Role::Member);
    for i in 0..10 {
        assert_eq!(post(&app, &mia, "nv", &format!("n{i}")).await.0, 201);
    }
    refused(post(&app, &mia, "nv", "n10").await, 403, "flood_muted");
    let m = mute_of(&app, "mia", "nv").await.expect("muted");
    assert_eq!(
        m["until"].as_u64().unwrap() - m["created_at"].as_u64().unwrap(),
        300_000,
        "five minutes"
    );
}

/// `method /api/videos/{video}/flood-rule` as `token`.
async fn rule(
    app: &TestApp,
    method: Method,
    token: Option<&str>,
    video: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call(
        app,
        method,
        &format!("/api/videos/{video}/flood-rule"),
        token,
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_videos_own_rule_replaces_the_default_until_deleted_and_bad_input_changes_nothing() {
    let app = TestApp::builder()
        .config(|c| {
            c.policy.free.cooldown_ms = 0;
            c.moderation = danmaku::config::ModerationConfig::default();
        })
        .start()
        .await;
    for v in ["ma", "mb"] {
        let (status, _) = app
            .admin_put(
                &format!("/api/videos/{v}"),
                json!({"title": v, "tier": "free"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let default = json!({"video": "ma", "max_comments": 10, "window_s": 20, "mute_s": 300,
        "escalation": [1800, 86400], "source": "default", "by": null, "set_at": null});
    let (status, got) = rule(&app, Method::GET, Some("key"), "ma", None).await;
    assert_eq!((status, &got), (200, &default));

    // A moderator of ma sets its own rule (escalation defaults to none).
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/videos/ma/moderators/ann",
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let ann = app.token("ann", Role::Free);
    let (status, set) = rule(
        &app,
        Method::PUT,
        Some(&ann),
        "ma",
        Some(json!({"max_comments": 2, "window_s": 60, "mute_s": 30})),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        (&set["source"], &set["by"], &set["escalation"]),
        (&json!("video"), &json!("ann"), &json!([]))
    );
    let (_, got) = rule(&app, Method::GET, Some(&ann), "ma", None).await;
    assert_eq!(got, set);
    let fay = app.token("fay", Role::Free);
    for _ in 0..2 {
        assert_eq!(post(&app, &fay, "ma", "x").await.0, 201);
    }
    refused(post(&app, &fay, "ma", "x").await, 403, "flood_muted");
    let m = mute_of(&app, "fay", "ma").await.expect("muted");
    assert_eq!(
        m["until"].as_u64().unwrap() - m["created_at"].as_u64().unwrap(),
        30_000
    );
    // mb keeps the default: three posts pass.
    for _ in 0..3 {
        assert_eq!(post(&app, &fay, "mb", "y").await.0, 201);
    }

    // Callers who do not moderate ma: 403 for every verb, 401 without credentials, and
    // the rule stays.
    let bob = app.token_mod("bob", Role::Member, &["mb"]);
    let other = json!({"max_comments": 500, "window_s": 1, "mute_s": 1});
    for token in [&bob, &fay] {
        for (method, body) in [
            (Method::PUT, Some(other.clone())),
            (Method::GET, None),
            (Method::DELETE, None),
        ] {
            refused(
                rule(&app, method, Some(token), "ma", body).await,
                403,
                "not_moderator",
            );
        }
    }
    assert_eq!(rule(&app, Method::GET, None, "ma", None).await.0, 401);
    assert_eq!(
        rule(&app, Method::GET, Some("key"), "ma", None).await.1,
        set
    );

    // Bad values: 422 with a code; unknown and malformed videos.
    for (body, code) in [
        (
            json!({"max_comments": 1, "window_s": 20, "mute_s": 300}),
            "invalid_max_comments",
        ),
        (
            json!({"max_comments": 1001, "window_s": 20, "mute_s": 300}),
            "invalid_max_comments",
        ),
        (
            json!({"max_comments": 10, "window_s": 0, "mute_s": 300}),
            "invalid_window",
        ),
        (
            json!({"max_comments": 10, "window_s": 3601, "mute_s": 300}),
            "invalid_window",
        ),
        (
            json!({"max_comments": 10, "window_s": 20, "mute_s": 0}),
            "invalid_mute",
        ),
        (
            json!({"max_comments": 10, "window_s": 20, "mute_s": 86401}),
            "invalid_mute",
        ),
        (
            json!({"max_comments": 10, "window_s": 20, "mute_s": 300, "escalation": [0]}),
            "invalid_escalation",
        ),
        (
            json!({"max_comments": 10, "window_s": 20, "mute_s": 300, "escalation": vec![60; 11]}),
            "invalid_escalation",
        ),
    ] {
        refused(
            rule(&app, Method::PUT, Some("key"), "ma", Some(body)).await,
            422,
            code,
        );
    }
    refused(
        rule(&app, Method::PUT, Some("key"), "nope", Some(other.clone())).await,
        404,
        "unknown_video",
    );
    refused(
        rule(&app, Method::GET, Some("key"), "nope", None).await,
        404,
        "unknown_video",
    );
    refused(
        rule(&app, Method::PUT, Some("key"), "b%21d", Some(other)).await,
        422,
        "invalid_video",
    );
    assert_eq!(
        rule(&app, Method::GET, Some("key"), "ma", None).await.1,
        set
    );

    // Deleted: the default again; deleting twice is 404.
    assert_eq!(
        rule(&app, Method::DELETE, Some(&ann), "ma", None).await.0,
        204
    );
    assert_eq!(
        rule(&app, Method::GET, Some("key"), "ma", None).await.1,
        default
    );
    refused(
        rule(&app, Method::DELETE, Some(&ann), "ma", None).await,
        404,
        "no_flood_rule",
    );
    let (_, page) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?video=ma",
        Some(&ann),
        None,
    )
    .await;
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "flood_rule_cleared",
            "auto_muted",
            "flood_rule_set",
            "moderator_added"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_off_only_a_videos_own_rule_counts() {
    // The harness turns the default off (flood_max = 0).
    let app = app().await;
    refused(
        rule(&app, Method::GET, Some("key"), "ma", None).await,
        404,
        "no_flood_rule",
    );
    let mia = app.token("mia", Role::Member);
    for _ in 0..15 {
        assert_eq!(post(&app, &mia, "ma", "z").await.0, 201);
    }
    let (status, _) = rule(
        &app,
        Method::PUT,
        Some("key"),
        "mb",
        Some(json!({"max_comments": 2, "window_s": 10, "mute_s": 5, "escalation": [9]})),
    )
    .await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        assert_eq!(post(&app, &mia, "mb", "z").await.0, 201);
    }
    refused(post(&app, &mia, "mb", "z").await, 403, "flood_muted");
}
