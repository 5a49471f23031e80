//! Mutes: scope (one video or everywhere), expiry without any job, reasons in the 403,
//! listing and lifting, the original admin endpoint, and bad input.

use danmaku::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use super::{app, call, post, refused};
use crate::common::TestApp;

/// PUTs a mute as `token`.
async fn mute(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Method::PUT,
        "/api/moderation/mutes",
        Some(token),
        Some(body),
    )
    .await
}

/// The `(sub, video)` of the mutes an admin lists.
async fn listed(app: &TestApp, query: &str) -> Vec<(String, Value)> {
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/api/moderation/mutes{query}"),
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|m| (m["sub"].as_str().unwrap().to_string(), m["video"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_mute_blocks_everywhere_a_scoped_one_only_there_and_both_expire() {
    let app = app().await;
    let gus = app.token("gus", Role::Member);

    // Everywhere, for one second, with a reason the 403 repeats.
    let (status, m) = mute(
        &app,
        "key",
        json!({"sub": "gus", "video": null, "seconds": 1, "reason": "cool off"}),
    )
    .await;
    assert_eq!((status, &m["video"]), (200, &json!(null)), "{m}");
    for video in ["ma", "mb"] {
        let (status, err) = post(&app, &gus, video, "hi").await;
        assert_eq!((status, err["code"].as_str()), (403, Some("muted")));
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains("everywhere") && msg.contains("cool off"),
            "{msg}"
        );
    }
    assert_eq!(listed(&app, "").await, [("gus".to_string(), json!(null))]);
    // No job lifts it: the next post after `until` is simply compared with now.
    app.wait_for("the global mute to expire", || async {
        post(&app, &gus, "ma", "back").await.0 == 201
    })
    .await;
    assert!(
        listed(&app, "").await.is_empty(),
        "expired mutes are not listed"
    );

    // One video, one second.
    let (status, _) = mute(
        &app,
        "key",
        json!({"sub": "gus", "video": "ma", "seconds": 1}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, err) = post(&app, &gus, "ma", "hi").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("muted")));
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("reason: none given"),
        "{err}"
    );
    let (status, _) = post(&app, &gus, "mb", "other room").await;
    assert_eq!(status, 201, "a scoped mute applies in its video only");
    assert_eq!(
        listed(&app, "?video=ma").await,
        [("gus".to_string(), json!("ma"))]
    );
    assert!(listed(&app, "?video=mb").await.is_empty());
    app.wait_for("the scoped mute to expire", || async {
        post(&app, &gus, "ma", "back in ma").await.0 == 201
    })
    .await;
    assert!(listed(&app, "?video=ma").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutes_are_lifted_per_scope_and_the_original_endpoint_still_works() {
    let app = app().await;
    let hal = app.token("hal", Role::Free);
    for video in [json!(null), json!("ma")] {
        let (status, _) = mute(
            &app,
            "key",
            json!({"sub": "hal", "video": video, "seconds": 600}),
        )
        .await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        listed(&app, "").await,
        [
            ("hal".to_string(), json!(null)),
            ("hal".to_string(), json!("ma"))
        ]
    );
    // Lifting the global mute leaves the scoped one.
    let lift = |q: &'static str| {
        let app = &app;
        async move {
            call(
                app,
                Method::DELETE,
                &format!("/api/moderation/mutes/hal{q}"),
                Some("key"),
                None,
            )
            .await
        }
    };
    assert_eq!(lift("").await.0, 204);
    refused(lift("").await, 404, "unknown_mute");
    assert_eq!(post(&app, &hal, "mb", "free again here").await.0, 201);
    assert_eq!(post(&app, &hal, "ma", "not here").await.0, 403);
    assert_eq!(lift("?video=ma&reason=apologised").await.0, 204);
    refused(lift("?video=ma").await, 404, "unknown_mute");
    assert_eq!(post(&app, &hal, "ma", "back").await.0, 201);

    // POST /api/users/{sub}/mute is the admin's global mute: it lists as one, 0 lifts it.
    let (status, reply) = app
        .admin_post("/api/users/hal/mute", json!({"seconds": 60}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["until"].as_u64().unwrap() > 0);
    assert_eq!(listed(&app, "").await, [("hal".to_string(), json!(null))]);
    let (status, reply) = app
        .admin_post("/api/users/hal/mute", json!({"seconds": 0}))
        .await;
    assert_eq!((status, &reply["until"]), (200, &json!(0)));
    let (status, _) = app
        .admin_post("/api/users/hal/mute", json!({"seconds": 0}))
        .await;
    assert_eq!(
        status, 200,
        "lifting nothing is not an error there, as before"
    );
    assert!(listed(&app, "").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mute_requests_are_refused_with_their_code_and_set_nothing() {
    let app = app().await;
    let free = app.token("fay", Role::Free);
    let cases = [
        (json!({"sub": "", "seconds": 60}), 422, "invalid_user"),
        (
            json!({"sub": "x".repeat(129), "seconds": 60}),
            422,
            "invalid_user",
        ),
        (json!({"sub": "u", "seconds": 0}), 400, "bad_request"),
        (
            json!({"sub": "u", "seconds": 31_536_001u64}),
            400,
            "bad_request",
        ),
        (
            json!({"sub": "u", "seconds": 60, "reason": "r".repeat(201)}),
            422,
            "invalid_reason",
        ),
        (
            json!({"sub": "u", "seconds": 60, "reason": "a\u{7}b"}),
            422,
            "invalid_reason",
        ),
        (
            json!({"sub": "u", "video": "b d", "seconds": 60}),
            422,
            "invalid_video",
        ),
    ];
    for (body, status, code) in cases {
        let got = mute(&app, "key", body.clone()).await;
        assert_eq!(
            (got.0, got.1["code"].as_str()),
            (status, Some(code)),
            "{body}: {}",
            got.1
        );
    }
    refused(
        mute(
            &app,
            &free,
            json!({"sub": "u", "video": "ma", "seconds": 60}),
        )
        .await,
        403,
        "not_moderator",
    );
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/moderation/mutes",
        None,
        Some(json!({"sub": "u", "seconds": 60})),
    )
    .await;
    assert_eq!(status, 401);
    refused(
        call(
            &app,
            Method::GET,
            "/api/moderation/mutes",
            Some(&free),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    refused(
        call(
            &app,
            Method::DELETE,
            "/api/moderation/mutes/u",
            Some(&free),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    // 200 characters is the longest reason.
    let (status, m) = mute(
        &app,
        "key",
        json!({"sub": "ok", "video": "ma", "seconds": 60, "reason": "é".repeat(200)}),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(listed(&app, "").await, [("ok".to_string(), json!("ma"))]);

    // With unknown videos closed, a mute in a video outside the catalog is 404.
    let closed = TestApp::builder()
        .config(|c| c.danmaku.open_unknown_videos = false)
        .start()
        .await;
    refused(
        mute(
            &closed,
            "key",
            json!({"sub": "u", "video": "ghost", "seconds": 60}),
        )
        .await,
        404,
        "unknown_video",
    );
}
