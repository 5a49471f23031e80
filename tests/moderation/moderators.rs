//! Room moderators: granted, listed and removed by admins; what a moderator may do in
//! their video and nothing outside it; the `mod` claim as the token's half of the rule.

use danmaku::model::Role;
use reqwest::Method;
use serde_json::json;

use super::{app, call, post, posted, refused, texts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_grant_list_and_remove_moderators_and_bad_input_changes_nothing() {
    let app = app().await;
    let ann = app.token("ann", Role::Free);
    let member = app.token("mia", Role::Member);
    let path = "/api/videos/ma/moderators/ann";

    let (status, first) = call(&app, Method::PUT, path, Some("key"), None).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (&first["video"], &first["sub"], &first["by"]),
        (&json!("ma"), &json!("ann"), &json!("system"))
    );
    let (status, again) = call(&app, Method::PUT, path, Some("key"), None).await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "already granted: unchanged"
    );

    // Bad input and callers who may not: refused, and nothing granted.
    refused(
        call(
            &app,
            Method::PUT,
            "/api/videos/nope/moderators/ann",
            Some("key"),
            None,
        )
        .await,
        404,
        "unknown_video",
    );
    let long = "x".repeat(129);
    refused(
        call(
            &app,
            Method::PUT,
            &format!("/api/videos/ma/moderators/{long}"),
            Some("key"),
            None,
        )
        .await,
        422,
        "invalid_user",
    );
    refused(
        call(
            &app,
            Method::PUT,
            "/api/videos/b%21d/moderators/ann",
            Some("key"),
            None,
        )
        .await,
        422,
        "invalid_video",
    );
    refused(
        call(
            &app,
            Method::PUT,
            "/api/videos/ma/moderators/bo",
            Some(&member),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    refused(
        call(
            &app,
            Method::PUT,
            "/api/videos/ma/moderators/bo",
            Some(&ann),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    refused(
        call(
            &app,
            Method::PUT,
            "/api/videos/ma/moderators/bo",
            None,
            None,
        )
        .await,
        401,
        "missing_token",
    );

    // Listed to admins and to the video's moderators only.
    let list = "/api/videos/ma/moderators";
    let (status, admins_view) = call(&app, Method::GET, list, Some("key"), None).await;
    assert_eq!(status, 200, "{admins_view}");
    assert_eq!(
        admins_view,
        json!([first]),
        "the bad requests granted nothing"
    );
    let (status, anns_view) = call(&app, Method::GET, list, Some(&ann), None).await;
    assert_eq!((status, anns_view), (200, json!([first])));
    refused(
        call(&app, Method::GET, list, Some(&member), None).await,
        403,
        "not_moderator",
    );
    refused(
        call(
            &app,
            Method::GET,
            "/api/videos/mb/moderators",
            Some(&ann),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    refused(
        call(
            &app,
            Method::GET,
            "/api/videos/nope/moderators",
            Some("key"),
            None,
        )
        .await,
        404,
        "unknown_video",
    );
    let (_, me) = call(&app, Method::GET, "/api/me", Some(&ann), None).await;
    assert_eq!(me["moderates"], json!(["ma"]));

    // Removed by admins only; then ann moderates nothing.
    refused(
        call(&app, Method::DELETE, path, Some(&ann), None).await,
        403,
        "forbidden",
    );
    let (status, _) = call(&app, Method::DELETE, path, Some("key"), None).await;
    assert_eq!(status, 204);
    refused(
        call(&app, Method::DELETE, path, Some("key"), None).await,
        404,
        "unknown_moderator",
    );
    refused(
        call(&app, Method::GET, list, Some(&ann), None).await,
        403,
        "not_moderator",
    );
    let (_, me) = call(&app, Method::GET, "/api/me", Some(&ann), None).await;
    assert_eq!(me["moderates"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_deletes_and_mutes_in_their_video_and_changes_nothing_elsewhere() {
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
    let carol = app.token("carol", Role::Free);
    let mut viewer = app.ws_as("viewer", Role::Free).await;
    assert_eq!(viewer.subscribe("video:ma").await["ok"], true);
    let in_a = posted(&app, &carol, "ma", "rude in a").await;
    let in_b = posted(&app, &carol, "mb", "rude in b").await;

    // Outside their video: 403 not_moderator, and nothing changed.
    refused(
        call(
            &app,
            Method::DELETE,
            &format!("/api/danmaku/{in_b}"),
            Some(&ann),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    assert_eq!(texts(&app, "mb").await, ["rude in b"], "still there");
    for video in [json!("mb"), json!(null)] {
        refused(
            call(
                &app,
                Method::PUT,
                "/api/moderation/mutes",
                Some(&ann),
                Some(json!({"sub": "carol", "video": video, "seconds": 60})),
            )
            .await,
            403,
            "not_moderator",
        );
    }
    let (status, body) = post(&app, &carol, "mb", "still posting").await;
    assert_eq!(status, 201, "no mute was set: {body}");
    let (_, mutes) = call(
        &app,
        Method::GET,
        "/api/moderation/mutes",
        Some("key"),
        None,
    )
    .await;
    assert_eq!(mutes, json!([]));

    // In their video: delete any comment at any time, live for open pages.
    let (status, body) = call(
        &app,
        Method::DELETE,
        &format!("/api/danmaku/{in_a}?reason=insults"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, ev) = viewer.until(|v| v["type"] == "danmaku_deleted").await;
    assert_eq!(ev["data"]["id"], in_a);
    assert!(texts(&app, "ma").await.is_empty());

    // ... and mute there only.
    let (status, m) = call(
        &app,
        Method::PUT,
        "/api/moderation/mutes",
        Some(&ann),
        Some(json!({"sub": "carol", "video": "ma", "seconds": 600, "reason": "flooding"})),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (&m["sub"], &m["video"], &m["by"], &m["reason"]),
        (
            &json!("carol"),
            &json!("ma"),
            &json!("ann"),
            &json!("flooding")
        )
    );
    let (status, err) = post(&app, &carol, "ma", "again").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("muted")),
        "{err}"
    );
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("in video ma") && msg.contains("flooding") && msg.contains("until 20"),
        "{msg}"
    );
    let (status, _) = post(&app, &carol, "mb", "elsewhere is fine").await;
    assert_eq!(status, 201, "a mute in ma does not apply in mb");

    // A non-moderator may only recall their own comment within the window.
    let eve = app.token("eve", Role::Member);
    let own = posted(&app, &eve, "mb", "my own").await;
    let carols = posted(&app, &carol, "mb", "carol's").await;
    refused(
        call(
            &app,
            Method::DELETE,
            &format!("/api/danmaku/{carols}"),
            Some(&eve),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/danmaku/{own}"),
        Some(&eve),
        None,
    )
    .await;
    assert_eq!(status, 204, "an author's recall works as before");
    // A reason over 200 characters is refused before anything happens.
    refused(
        call(
            &app,
            Method::DELETE,
            &format!("/api/danmaku/{carols}?reason={}", "r".repeat(201)),
            Some("key"),
            None,
        )
        .await,
        422,
        "invalid_reason",
    );
    assert!(texts(&app, "mb").await.contains(&"carol's".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mod_claim_grants_moderation_for_the_tokens_life_in_union_with_the_store() {
    let app = app().await;
    let tom = app.token_mod("tom", Role::Free, &["ma"]);
    let carol = app.token("carol", Role::Free);
    let in_a = posted(&app, &carol, "ma", "a").await;
    let in_b = posted(&app, &carol, "mb", "b").await;

    // The claim's video: tom deletes, mutes, reads mutes, moderators and the audit log.
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/danmaku/{in_a}"),
        Some(&tom),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, m) = call(
        &app,
        Method::PUT,
        "/api/moderation/mutes",
        Some(&tom),
        Some(json!({"sub": "carol", "video": "ma", "seconds": 60})),
    )
    .await;
    assert_eq!((status, &m["reason"]), (200, &json!(null)), "{m}");
    for path in [
        "/api/moderation/mutes?video=ma",
        "/api/videos/ma/moderators",
        "/api/moderation/audit?video=ma",
    ] {
        let (status, body) = call(&app, Method::GET, path, Some(&tom), None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, grants) = call(
        &app,
        Method::GET,
        "/api/videos/ma/moderators",
        Some(&tom),
        None,
    )
    .await;
    assert_eq!(
        grants,
        json!([]),
        "token grants are not stored, so not listed"
    );
    let (_, audit) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?video=ma",
        Some(&tom),
        None,
    )
    .await;
    let actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor_role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("user_muted", "moderator"),
            ("comment_deleted", "moderator")
        ]
    );

    // Not the other video.
    refused(
        call(
            &app,
            Method::DELETE,
            &format!("/api/danmaku/{in_b}"),
            Some(&tom),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    refused(
        call(
            &app,
            Method::GET,
            "/api/moderation/audit?video=mb",
            Some(&tom),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    assert_eq!(texts(&app, "mb").await, ["b"]);

    // DELETE removes only stored grants: the token's stays, and the 404 says so.
    refused(
        call(
            &app,
            Method::DELETE,
            "/api/videos/ma/moderators/tom",
            Some("key"),
            None,
        )
        .await,
        404,
        "unknown_moderator",
    );
    // A stored grant adds to the claim (union): tom now moderates both.
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/videos/mb/moderators/tom",
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let (_, me) = call(&app, Method::GET, "/api/me", Some(&tom), None).await;
    assert_eq!(me["moderates"], json!(["ma", "mb"]));
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/danmaku/{in_b}"),
        Some(&tom),
        None,
    )
    .await;
    assert_eq!(status, 204);
    // The same user with a token without the claim moderates only what is stored.
    let plain = app.token("tom", Role::Free);
    refused(
        call(
            &app,
            Method::GET,
            "/api/moderation/mutes?video=ma",
            Some(&plain),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/moderation/mutes?video=mb",
        Some(&plain),
        None,
    )
    .await;
    assert_eq!(status, 200);
}
