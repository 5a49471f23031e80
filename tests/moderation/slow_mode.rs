//! Slow mode: set by a room moderator, it slows free users and members in that video
//! only (never admins), post replies carry the interval over REST and WebSocket,
//! clearing restores the role cooldowns, `until` ends it by itself; a moderator of
//! another video gets `not_moderator` and nothing changes; bad input is 422.

use danmaku::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use super::{app, call, post, refused};
use crate::common::{TestApp, status_json};

/// PUTs a slow mode on `video` as `token`.
async fn set(app: &TestApp, token: &str, video: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Method::PUT,
        &format!("/api/videos/{video}/slow-mode"),
        Some(token),
        Some(body),
    )
    .await
}

/// GETs the slow mode of `video` as `token` (None: a guest).
async fn get(app: &TestApp, token: Option<&str>, video: &str) -> (u16, Value) {
    call(
        app,
        Method::GET,
        &format!("/api/videos/{video}/slow-mode"),
        token,
        None,
    )
    .await
}

/// Posts and returns status, body and the `Retry-After` header.
async fn post_raw(app: &TestApp, token: &str, video: &str) -> (u16, Value, Option<String>) {
    let resp = app
        .http
        .post(app.url(&format!("/api/videos/{video}/danmaku")))
        .bearer_auth(token)
        .json(&json!({"text": "slow?", "time": 1.0}))
        .send()
        .await
        .expect("post");
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = status_json(resp).await;
    (status, body, retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderators_slow_mode_slows_free_and_members_in_that_room_only_until_cleared() {
    let app = app().await;
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
    refused(get(&app, None, "ma").await, 404, "no_slow_mode");

    let (status, s) = set(&app, &ann, "ma", json!({"seconds": 2})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (
            &s["video"],
            &s["seconds"],
            &s["roles"],
            &s["until"],
            &s["by"]
        ),
        (
            &json!("ma"),
            &json!(2),
            &json!(["free", "member"]),
            &json!(null),
            &json!("ann")
        )
    );
    // Anyone who may read the video sees it, guests included.
    let (status, seen) = get(&app, None, "ma").await;
    assert_eq!((status, &seen["seconds"]), (200, &json!(2)), "{seen}");

    // Free users and members: the first post carries the interval, the next is a
    // `cooldown` with Retry-After, whatever their role cooldown (0 here).
    for (sub, role) in [("fay", Role::Free), ("mia", Role::Member)] {
        let t = app.token(sub, role);
        let (status, body, _) = post_raw(&app, &t, "ma").await;
        assert_eq!((status, &body["slow_mode_s"]), (201, &json!(2)), "{body}");
        let (status, body, retry) = post_raw(&app, &t, "ma").await;
        assert_eq!((status, body["code"].as_str()), (429, Some("cooldown")));
        assert!(
            body["message"].as_str().unwrap().contains("slow mode"),
            "{body}"
        );
        assert_eq!(retry.as_deref(), Some("2"), "{sub}");
        // Another room keeps the role cooldowns (none) and no interval.
        for _ in 0..2 {
            let (status, body) = post(&app, &t, "mb", "elsewhere").await;
            assert_eq!(status, 201, "{body}");
            assert!(body.get("slow_mode_s").is_none(), "{body}");
        }
    }
    // Admins are never slowed.
    let root = app.token("root", Role::Admin);
    for _ in 0..3 {
        let (status, body) = post(&app, &root, "ma", "admin").await;
        assert_eq!(status, 201, "{body}");
        assert!(body.get("slow_mode_s").is_none(), "{body}");
    }
    // The WebSocket reply carries it too, and the refusal has `retry_after_ms`.
    let mut ws = app.ws_as("wes", Role::Member).await;
    let op = json!({"op": "danmaku", "video": "ma", "text": "ws", "time": 2.0});
    let ok = ws.request(op.clone()).await;
    assert_eq!(
        (&ok["ok"], &ok["danmaku"]["slow_mode_s"]),
        (&json!(true), &json!(2)),
        "{ok}"
    );
    let err = ws.request(op.clone()).await;
    assert_eq!(err["error"]["code"], "cooldown", "{err}");
    let wait = err["error"]["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 2000, "{err}");

    // Cleared: the role cooldowns (none) apply again at once.
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/api/videos/ma/slow-mode",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let fay = app.token("fay", Role::Free);
    for _ in 0..2 {
        let (status, body) = post(&app, &fay, "ma", "free again").await;
        assert_eq!(status, 201, "{body}");
        assert!(body.get("slow_mode_s").is_none(), "{body}");
    }
    let ok = ws.request(op).await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(ok["danmaku"].get("slow_mode_s").is_none(), "{ok}");
    refused(get(&app, None, "ma").await, 404, "no_slow_mode");
    refused(
        call(
            &app,
            Method::DELETE,
            "/api/videos/ma/slow-mode",
            Some(&ann),
            None,
        )
        .await,
        404,
        "no_slow_mode",
    );

    // Both actions are audited, by the moderator.
    let (_, page) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?video=ma",
        Some(&ann),
        None,
    )
    .await;
    let rows: Vec<(&str, &str, &str)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["actor_role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("slow_mode_cleared", "ann", "moderator"),
            ("slow_mode_set", "ann", "moderator")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_mode_slows_only_its_roles_takes_the_longer_wait_and_ends_at_until() {
    // Role cooldowns as configured by default (free 3 s, member 1 s).
    let app = TestApp::start().await;
    let (status, _) = app
        .admin_put("/api/videos/sv", json!({"title": "sv", "tier": "free"}))
        .await;
    assert_eq!(status, 201);
    let now = danmaku::model::time::now_millis();
    let (status, s) = set(
        &app,
        "key",
        "sv",
        json!({"seconds": 1, "roles": ["free", "free"], "until": now + 1500}),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (&s["roles"], &s["by"]),
        (&json!(["free"]), &json!("system"))
    );
    // A free user: max(3 s role cooldown, 1 s) = 3 s.
    let fay = app.token("fay", Role::Free);
    let (status, body, _) = post_raw(&app, &fay, "sv").await;
    assert_eq!((status, &body["slow_mode_s"]), (201, &json!(1)), "{body}");
    let (status, _, retry) = post_raw(&app, &fay, "sv").await;
    assert_eq!((status, retry.as_deref()), (429, Some("3")));
    // Members are not listed: no interval on their replies.
    let mia = app.token("mia", Role::Member);
    let (status, body, _) = post_raw(&app, &mia, "sv").await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("slow_mode_s").is_none(), "{body}");

    // `until` ends it with no job: the GET answers 404 and replies carry nothing.
    app.wait_for("the slow mode to end", || async {
        get(&app, None, "sv").await.0 == 404
    })
    .await;
    let gus = app.token("gus", Role::Free);
    let (status, body, _) = post_raw(&app, &gus, "sv").await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("slow_mode_s").is_none(), "{body}");
    refused(
        call(
            &app,
            Method::DELETE,
            "/api/videos/sv/slow-mode",
            Some("key"),
            None,
        )
        .await,
        404,
        "no_slow_mode",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_of_another_video_changes_nothing_and_bad_input_is_422() {
    let app = app().await;
    let (status, _) = app
        .admin_put("/api/videos/mm", json!({"title": "mm", "tier": "member"}))
        .await;
    assert_eq!(status, 201);
    let bob = app.token_mod("bob", Role::Member, &["mb"]);
    let free = app.token("fay", Role::Free);
    let good = json!({"seconds": 30});

    // Not a moderator of ma: 403, and ma is not slowed.
    for token in [&bob, &free] {
        refused(
            set(&app, token, "ma", good.clone()).await,
            403,
            "not_moderator",
        );
    }
    refused(get(&app, None, "ma").await, 404, "no_slow_mode");
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/videos/ma/slow-mode",
        None,
        Some(good.clone()),
    )
    .await;
    assert_eq!(status, 401);
    // bob's own video works; clearing ma's (set by an admin) is refused and keeps it.
    assert_eq!(set(&app, &bob, "mb", good.clone()).await.0, 200);
    assert_eq!(set(&app, "key", "ma", good.clone()).await.0, 200);
    refused(
        call(
            &app,
            Method::DELETE,
            "/api/videos/ma/slow-mode",
            Some(&bob),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    assert_eq!(get(&app, None, "ma").await.1["by"], "system");
    // A member video's slow mode is for those who may read it.
    assert_eq!(set(&app, "key", "mm", good.clone()).await.0, 200);
    refused(get(&app, Some(&free), "mm").await, 403, "member_only");
    assert_eq!(get(&app, Some(&bob), "mm").await.0, 200);

    // Bad values: 422 with a code, unknown videos 404; nothing is set on mv.
    let now = danmaku::model::time::now_millis();
    for (body, status, code) in [
        (json!({"seconds": 0}), 422, "invalid_seconds"),
        (json!({"seconds": 3601}), 422, "invalid_seconds"),
        (json!({"seconds": 5, "roles": []}), 422, "invalid_roles"),
        (
            json!({"seconds": 5, "roles": ["admin"]}),
            422,
            "invalid_roles",
        ),
        (
            json!({"seconds": 5, "roles": ["root"]}),
            422,
            "invalid_roles",
        ),
        (
            json!({"seconds": 5, "until": now - 1}),
            422,
            "invalid_until",
        ),
        (json!({"seconds": "x"}), 400, "bad_request"),
    ] {
        refused(set(&app, "key", "mb", body).await, status, code);
    }
    refused(
        set(&app, "key", "nope", good.clone()).await,
        404,
        "unknown_video",
    );
    refused(
        set(&app, "key", "b%21d", good.clone()).await,
        422,
        "invalid_video",
    );
    refused(get(&app, None, "nope").await, 404, "unknown_video");
    // mb still has bob's 30 s.
    let (_, s) = get(&app, None, "mb").await;
    assert_eq!((&s["seconds"], &s["by"]), (&json!(30), &json!("bob")));
}
