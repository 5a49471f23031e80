//! Comments hidden at runtime: shadow bans across the whole read surface (with the
//! poster as the positive control), hold rules and reviews (approve publishes live and
//! in history, reject removes), block rules (refuse, hold, shadow; bad patterns refused;
//! the configured words seeded once), and who may do each.

use danmaku::model::Role;
use reqwest::Method;
use serde_json::{Value, json};

use super::{app, app_with, call, post, posted, refused};
use crate::common::{TestApp, WsClient};

/// GETs `path` as `token` (`None`: a guest) and returns the body as text.
async fn text_of(app: &TestApp, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = app.http.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

/// A video's history as `token` (`None`: a guest).
async fn history(app: &TestApp, video: &str, token: Option<&str>) -> Vec<Value> {
    let (status, page) = call(
        app,
        Method::GET,
        &format!("/api/videos/{video}/danmaku"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// The history row of `text`, if `token` reads one.
async fn row(app: &TestApp, video: &str, token: Option<&str>, text: &str) -> Option<Value> {
    history(app, video, token)
        .await
        .into_iter()
        .find(|d| d["text"] == text)
}

/// A socket of `sub` subscribed to `video`'s room.
async fn watcher(app: &TestApp, sub: &str, role: Role, video: &str) -> WsClient {
    let mut ws = app.ws_as(sub, role).await;
    let reply = ws.subscribe(&format!("video:{video}")).await;
    assert_eq!(reply["ok"], true, "{reply}");
    ws
}

/// Reads `ws` up to the `danmaku` event of `text`; returns it and what came before.
async fn until_text(ws: &mut WsClient, text: &str) -> (Vec<Value>, Value) {
    ws.until(|v| v["type"] == "danmaku" && v["data"]["text"] == text)
        .await
}

/// Whether any frame of `frames` carries `text`.
fn carries(frames: &[Value], text: &str) -> bool {
    frames.iter().any(|f| f.to_string().contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_banned_users_comments_reach_only_them_across_the_whole_read_surface() {
    let app = app().await;
    let (status, body) = app
        .admin_put("/api/videos/ma/moderators/mo", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let sam = app.token("sam", Role::Free);
    let vic = app.token("vic", Role::Member);
    let cal = app.token("cal", Role::Free);
    let mo = app.token("mo", Role::Free);

    // A moderator of `ma` shadow-bans sam there; a moderator of nothing may not.
    let ban = json!({"sub": "sam", "video": "ma", "seconds": 600, "reason": "spam links"});
    refused(
        call(
            &app,
            Method::PUT,
            "/api/moderation/shadow-bans",
            Some(&vic),
            Some(ban.clone()),
        )
        .await,
        403,
        "not_moderator",
    );
    let (status, b) = call(
        &app,
        Method::PUT,
        "/api/moderation/shadow-bans",
        Some(&mo),
        Some(ban),
    )
    .await;
    assert_eq!((status, &b["until"].is_u64()), (200, &true), "{b}");
    refused(
        call(
            &app,
            Method::PUT,
            "/api/moderation/shadow-bans",
            Some(&mo),
            Some(json!({"sub": "sam", "seconds": 600})),
        )
        .await,
        403,
        "not_moderator",
    );

    let mut vic_ws = watcher(&app, "vic", Role::Member, "ma").await;
    let mut mo_ws = watcher(&app, "mo", Role::Free, "ma").await;
    let mut admin_ws = watcher(&app, "root", Role::Admin, "ma").await;
    let mut sam_ws = watcher(&app, "sam", Role::Free, "ma").await;

    // Accepted and acknowledged as usual: nothing in the reply tells sam.
    let (status, reply) = post(&app, &sam, "ma", "shadow one").await;
    assert_eq!(status, 201, "{reply}");
    assert!(
        reply.get("state").is_none(),
        "the poster must not learn: {reply}"
    );
    let shadow_id = reply["id"].as_i64().unwrap();
    // Over WebSocket too.
    let ws_reply = sam_ws
        .request(json!({"op": "danmaku", "video": "ma", "text": "shadow two", "time": 2.0}))
        .await;
    assert!(
        ws_reply["ok"] == true && ws_reply["danmaku"].get("state").is_none(),
        "{ws_reply}"
    );
    // The control: a comment posted after them by someone else.
    posted(&app, &cal, "ma", "control one").await;

    // Live: the viewer gets the control and never the shadowed ones; moderators and
    // admins get them marked.
    let (before, _) = until_text(&mut vic_ws, "control one").await;
    assert!(!carries(&before, "shadow"), "leaked live: {before:?}");
    for ws in [&mut mo_ws, &mut admin_ws] {
        let (_, got) = until_text(ws, "shadow one").await;
        assert_eq!(got["data"]["state"], "shadow", "{got}");
        let (_, got) = until_text(ws, "shadow two").await;
        assert_eq!(got["data"]["state"], "shadow", "{got}");
    }
    let (before, _) = until_text(&mut sam_ws, "control one").await;
    assert!(
        !carries(&before, "shadow one"),
        "a poster never gets their own echo"
    );

    // History: the poster sees theirs like any comment; moderators see them marked;
    // nobody else sees them at all.
    for text in ["shadow one", "shadow two"] {
        let own = row(&app, "ma", Some(&sam), text)
            .await
            .expect("the poster sees it");
        assert!(own.get("state").is_none(), "{own}");
        let marked = row(&app, "ma", Some(&mo), text)
            .await
            .expect("moderators see it");
        assert_eq!(marked["state"], "shadow");
        assert_eq!(
            row(&app, "ma", Some("key"), text).await.unwrap()["state"],
            "shadow"
        );
        for reader in [Some(vic.as_str()), Some(cal.as_str()), None] {
            assert!(
                row(&app, "ma", reader, text).await.is_none(),
                "{text} leaked"
            );
        }
    }
    assert!(row(&app, "ma", Some(&vic), "control one").await.is_some());
    let vic_page = history(&app, "ma", Some(&vic)).await;
    let sam_page = history(&app, "ma", Some(&sam)).await;
    assert_eq!(
        sam_page.len(),
        vic_page.len() + 2,
        "counts differ by sam's two"
    );

    // Exports: DPlayer and bilibili XML, for the viewer and for the poster.
    for (token, sees) in [
        (Some(vic.as_str()), false),
        (None, false),
        (Some(sam.as_str()), true),
    ] {
        let (status, dplayer) = text_of(&app, "/dplayer/v3/?id=ma", token).await;
        assert_eq!(status, 200, "{dplayer}");
        assert_eq!(
            dplayer.contains("shadow one"),
            sees,
            "dplayer for {token:?}"
        );
        assert!(dplayer.contains("control one"));
        let (status, xml) = text_of(&app, "/api/videos/ma/danmaku.xml", token).await;
        assert_eq!(status, 200, "{xml}");
        assert_eq!(xml.contains("shadow one"), sees, "xml for {token:?}");
        assert!(xml.contains("control one"));
    }

    // Heatmaps never count them, whoever reads (the poster's own view included, so a
    // count cannot tell the viewer and the poster apart either).
    for token in [
        Some(vic.as_str()),
        Some(sam.as_str()),
        Some(mo.as_str()),
        None,
    ] {
        let (status, h) = call(
            &app,
            Method::GET,
            "/api/videos/ma/heatmap?buckets=10&duration=86400",
            token,
            None,
        )
        .await;
        assert_eq!(
            (status, h["total"].as_u64()),
            (200, Some(1)),
            "{token:?}: {h}"
        );
    }

    // Likes: the comment does not exist for others; its author may like it.
    refused(
        call(
            &app,
            Method::POST,
            &format!("/api/danmaku/{shadow_id}/like"),
            Some(&vic),
            None,
        )
        .await,
        404,
        "unknown_danmaku",
    );
    let (status, like) = call(
        &app,
        Method::POST,
        &format!("/api/danmaku/{shadow_id}/like"),
        Some(&sam),
        None,
    )
    .await;
    assert_eq!((status, like["likes"].as_u64()), (200, Some(1)), "{like}");

    // Elsewhere sam is not banned; the ban is listed, lifted, and new comments show.
    posted(&app, &sam, "mb", "visible in mb").await;
    assert!(row(&app, "mb", Some(&vic), "visible in mb").await.is_some());
    let (status, list) = call(
        &app,
        Method::GET,
        "/api/moderation/shadow-bans?video=ma",
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["sub"], "sam", "{list}");
    assert_eq!(list[0]["reason"], "spam links");
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/api/moderation/shadow-bans/sam?video=ma",
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(status, 204);
    refused(
        call(
            &app,
            Method::DELETE,
            "/api/moderation/shadow-bans/sam?video=ma",
            Some(&mo),
            None,
        )
        .await,
        404,
        "unknown_shadow_ban",
    );
    posted(&app, &sam, "ma", "after the ban").await;
    let (before, _) = until_text(&mut vic_ws, "after the ban").await;
    assert!(!carries(&before, "shadow"));
    assert!(
        row(&app, "ma", Some(&vic), "shadow one").await.is_none(),
        "comments posted during the ban stay shadowed"
    );

    // Audited, with who and why.
    let (_, audit) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?video=ma",
        Some(&mo),
        None,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"user_shadow_banned") && actions.contains(&"user_shadow_unbanned"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mod_claim_moderator_sees_hidden_comments_live_until_a_refresh_drops_the_claim() {
    let app = app().await;
    for sub in ["sam", "mel"] {
        let (status, body) = call(
            &app,
            Method::PUT,
            "/api/moderation/shadow-bans",
            Some("key"),
            Some(json!({"sub": sub, "video": "ma", "seconds": 600})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let sam = app.token("sam", Role::Free);
    let mel = app.token("mel", Role::Member);
    let cal = app.token("cal", Role::Free);
    // A moderator of `ma` by claim only (no stored grant), a moderator of another video
    // by claim, and one whose claim names `ma` but who cannot read members-only.
    let subscribe = |token: String| {
        let app = &app;
        async move {
            let mut ws = app.ws_token(&token).await;
            let reply = ws.subscribe("video:ma").await;
            assert_eq!(reply["ok"], true, "{reply}");
            ws
        }
    };
    let mut cm = subscribe(app.token_mod("cm", Role::Free, &["ma"])).await;
    let mut co = subscribe(app.token_mod("co", Role::Member, &["mb"])).await;
    let mut cv = subscribe(app.token_mod("cv", Role::Member, &["ma"])).await;
    let (status, reply) = post(&app, &sam, "ma", "shadow by claim").await;
    assert_eq!(status, 201, "{reply}");
    let (status, reply) = call(
        &app,
        Method::POST,
        "/api/videos/ma/danmaku",
        Some(&mel),
        Some(json!({"text": "members shadow", "time": 1.0, "audience": "members"})),
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    posted(&app, &cal, "ma", "claim control").await;
    let (before, got) = until_text(&mut cm, "shadow by claim").await;
    assert_eq!(got["data"]["state"], "shadow", "{got}");
    assert!(before.iter().all(|f| f["type"] != "danmaku"), "{before:?}");
    let (before, _) = until_text(&mut cm, "claim control").await;
    assert!(
        !carries(&before, "members shadow"),
        "a free moderator got a members-only comment: {before:?}"
    );
    for text in ["shadow by claim", "members shadow"] {
        let (_, got) = until_text(&mut cv, text).await;
        assert_eq!(got["data"]["state"], "shadow", "{got}");
    }
    let (before, _) = until_text(&mut co, "claim control").await;
    assert!(
        !carries(&before, "shadow"),
        "leaked to another video's moderator: {before:?}"
    );

    // A refresh to a token without the claim: no more marked copies on that socket.
    let reply = cm
        .request(json!({"op": "refresh", "token": app.token("cm", Role::Free)}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    posted(&app, &sam, "ma", "shadow after refresh").await;
    posted(&app, &cal, "ma", "control after refresh").await;
    let (before, _) = until_text(&mut cm, "control after refresh").await;
    assert!(!carries(&before, "shadow after refresh"), "{before:?}");
    // And a refresh that grants the claim brings them back.
    let reply = cm
        .request(json!({"op": "refresh", "token": app.token_mod("cm", Role::Free, &["ma"])}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    posted(&app, &sam, "ma", "shadow after regrant").await;
    let (_, got) = until_text(&mut cm, "shadow after regrant").await;
    assert_eq!(got["data"]["state"], "shadow", "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_comments_wait_for_review_then_go_live_at_their_time_or_vanish() {
    let app = app().await;
    let (status, body) = app
        .admin_put("/api/videos/ma/moderators/mo", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let pat = app.token("pat", Role::Free);
    let vic = app.token("vic", Role::Member);
    let mo = app.token("mo", Role::Free);

    // Free posters of `ma` are held; bad roles and strangers are refused.
    refused(
        call(
            &app,
            Method::PUT,
            "/api/videos/ma/hold",
            Some(&mo),
            Some(json!({"roles": ["admin"]})),
        )
        .await,
        422,
        "invalid_roles",
    );
    refused(
        call(
            &app,
            Method::PUT,
            "/api/videos/ma/hold",
            Some(&vic),
            Some(json!({})),
        )
        .await,
        403,
        "not_moderator",
    );
    refused(
        call(
            &app,
            Method::PUT,
            "/api/videos/nope/hold",
            Some("key"),
            Some(json!({})),
        )
        .await,
        404,
        "unknown_video",
    );
    let (status, rule) = call(
        &app,
        Method::PUT,
        "/api/videos/ma/hold",
        Some(&mo),
        Some(json!({})),
    )
    .await;
    assert_eq!((status, &rule["roles"]), (200, &json!(["free"])), "{rule}");
    assert_eq!(
        call(&app, Method::GET, "/api/videos/mb/hold", Some("key"), None)
            .await
            .0,
        204
    );

    let mut vic_ws = watcher(&app, "vic", Role::Member, "ma").await;
    let mut pat_ws = watcher(&app, "pat", Role::Free, "ma").await;
    let mut mo_ws = watcher(&app, "mo", Role::Free, "ma").await;

    // Held: the poster sees it pending; nobody else but moderators.
    let (status, reply) = call(
        &app,
        Method::POST,
        "/api/videos/ma/danmaku",
        Some(&pat),
        Some(json!({"text": "held one", "time": 42.5})),
    )
    .await;
    assert_eq!((status, &reply["state"]), (201, &json!("held")), "{reply}");
    let held = reply["id"].as_i64().unwrap();
    let (_, marked) = until_text(&mut mo_ws, "held one").await;
    assert_eq!(marked["data"]["state"], "held");
    assert_eq!(
        row(&app, "ma", Some(&pat), "held one").await.unwrap()["state"],
        "held"
    );
    assert!(row(&app, "ma", Some(&vic), "held one").await.is_none());
    // Members and moderators are not held there.
    let (_, r) = post(&app, &vic, "ma", "member one").await;
    assert!(r.get("state").is_none(), "{r}");
    let (_, r) = post(&app, &mo, "ma", "moderator one").await;
    assert!(r.get("state").is_none(), "{r}");
    let (before, _) = until_text(&mut pat_ws, "member one").await;
    assert!(!carries(&before, "held one"));

    // The queue: the video's moderators (and admins, also over every video).
    let (status, q) = call(
        &app,
        Method::GET,
        "/api/moderation/queue?video=ma",
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["items"][0]["danmaku"]["id"], held, "{q}");
    assert_eq!(q["items"][0]["author"], "pat");
    assert_eq!(q["items"][0]["danmaku"]["state"], "held");
    refused(
        call(
            &app,
            Method::GET,
            "/api/moderation/queue?video=ma",
            Some(&vic),
            None,
        )
        .await,
        403,
        "not_moderator",
    );
    refused(
        call(&app, Method::GET, "/api/moderation/queue", Some(&mo), None).await,
        403,
        "not_moderator",
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/moderation/queue",
            Some("key"),
            None
        )
        .await
        .1["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A stranger cannot approve (and nothing changes); the moderator can, once.
    let approve = format!("/api/danmaku/{held}/approve");
    refused(
        call(&app, Method::POST, &approve, Some(&vic), None).await,
        403,
        "not_moderator",
    );
    assert!(row(&app, "ma", Some(&vic), "held one").await.is_none());
    let (status, r) = call(
        &app,
        Method::POST,
        &format!("{approve}?reason=fine"),
        Some(&mo),
        None,
    )
    .await;
    assert_eq!((status, &r["state"]), (200, &json!("visible")), "{r}");
    refused(
        call(&app, Method::POST, &approve, Some(&mo), None).await,
        409,
        "not_held",
    );
    refused(
        call(
            &app,
            Method::POST,
            "/api/danmaku/99999/approve",
            Some(&mo),
            None,
        )
        .await,
        404,
        "unknown_danmaku",
    );
    // Published live to the audience, the poster told, in history at its video time.
    let (_, live) = until_text(&mut vic_ws, "held one").await;
    assert!(live["data"].get("state").is_none(), "{live}");
    assert_eq!(live["data"]["time"], 42.5);
    let (_, told) = pat_ws
        .until(|v| v["type"] == "danmaku_reviewed" && v["data"]["id"] == held)
        .await;
    assert_eq!(told["data"]["state"], "visible");
    let shown = row(&app, "ma", Some(&vic), "held one")
        .await
        .expect("in history");
    assert_eq!(shown["time"], 42.5);
    assert!(
        row(&app, "ma", Some(&pat), "held one")
            .await
            .unwrap()
            .get("state")
            .is_none()
    );

    // Rejected: gone for everyone, the poster's pages told; the audit log keeps it.
    let rejected = posted(&app, &pat, "ma", "held two").await;
    let (status, r) = call(
        &app,
        Method::POST,
        &format!("/api/danmaku/{rejected}/reject?reason=off-topic"),
        Some(&mo),
        None,
    )
    .await;
    assert_eq!((status, &r["state"]), (200, &json!("rejected")), "{r}");
    let (_, told) = pat_ws
        .until(|v| v["type"] == "danmaku_reviewed" && v["data"]["id"] == rejected)
        .await;
    assert_eq!(told["data"]["state"], "rejected");
    pat_ws
        .until(|v| v["type"] == "danmaku_deleted" && v["data"]["id"] == rejected)
        .await;
    assert!(row(&app, "ma", Some(&pat), "held two").await.is_none());
    assert!(row(&app, "ma", Some(&mo), "held two").await.is_none());
    let (_, audit) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?video=ma",
        Some(&mo),
        None,
    )
    .await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "comment_rejected")
        .expect("audited")
        .clone();
    assert_eq!(
        (
            &entry["reason"],
            &entry["detail"]["text"],
            &entry["detail"]["author"]
        ),
        (&json!("off-topic"), &json!("held two"), &json!("pat"))
    );
    posted(&app, &mo, "ma", "fence").await;
    let (before, _) = until_text(&mut vic_ws, "fence").await;
    assert!(
        !carries(&before, "held two"),
        "a rejection is never announced to others"
    );

    // Cleared: free posters go straight through again; clearing twice is 404.
    let (status, _) = call(&app, Method::DELETE, "/api/videos/ma/hold", Some(&mo), None).await;
    assert_eq!(status, 204);
    refused(
        call(&app, Method::DELETE, "/api/videos/ma/hold", Some(&mo), None).await,
        404,
        "unknown_hold_rule",
    );
    let (_, r) = post(&app, &pat, "ma", "free again").await;
    assert!(r.get("state").is_none(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_rules_refuse_hold_or_shadow_at_runtime_and_bad_ones_change_nothing() {
    let app = app_with(|c| c.danmaku.block_words = vec!["spoiler".into()]).await;
    let (status, body) = app
        .admin_put("/api/videos/ma/moderators/mo", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let fan = app.token("fan", Role::Free);
    let mo = app.token("mo", Role::Free);

    // The configured words are the initial global set.
    let (status, global) = call(
        &app,
        Method::GET,
        "/api/moderation/rules",
        Some("key"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{global}");
    assert_eq!(global["set_by"], "config");
    assert_eq!(
        global["rules"],
        json!([{"kind": "word", "pattern": "spoiler", "action": "refuse"}])
    );
    refused(
        post(&app, &fan, "ma", "a ＳＰＯＩＬＥＲ!").await,
        422,
        "blocked",
    );

    // A video's rules, set by its moderator: hold and shadow.
    let rules = json!({"video": "ma", "rules": [
        {"kind": "regex", "pattern": r"buy\s+now", "action": "hold"},
        {"kind": "word", "pattern": "2333", "action": "shadow"},
    ]});
    let (status, set) = call(
        &app,
        Method::PUT,
        "/api/moderation/rules",
        Some(&mo),
        Some(rules),
    )
    .await;
    assert_eq!(
        (status, set["rules"].as_array().map(Vec::len)),
        (200, Some(2)),
        "{set}"
    );
    let (_, r) = post(&app, &fan, "ma", "BUY   NOW cheap").await;
    assert_eq!(r["state"], "held", "{r}");
    let (_, r) = post(&app, &fan, "ma", "２３３３３３").await;
    assert!(r.get("state").is_none(), "shadowed, silently: {r}");
    assert!(row(&app, "ma", None, "２３３３３３").await.is_none());
    assert_eq!(
        row(&app, "ma", Some(&mo), "２３３３３３").await.unwrap()["state"],
        "shadow"
    );
    // The video's rules stay in it.
    let (_, r) = post(&app, &fan, "mb", "buy now 2333").await;
    assert!(r.get("state").is_none(), "{r}");
    assert!(row(&app, "mb", None, "buy now 2333").await.is_some());

    // Bad sets change nothing: a pattern that does not compile, an empty word, a regex
    // too large, too many rules; the global set is admins' only.
    let before = call(
        &app,
        Method::GET,
        "/api/moderation/rules?video=ma",
        Some(&mo),
        None,
    )
    .await
    .1;
    for (rules, status, code) in [
        (
            json!([{"kind": "regex", "pattern": "(unclosed", "action": "refuse"}]),
            422,
            "invalid_pattern",
        ),
        (
            json!([{"kind": "word", "pattern": "\u{200b}", "action": "refuse"}]),
            422,
            "invalid_pattern",
        ),
        (
            json!([{"kind": "regex", "pattern": r"(\w{100}){100}", "action": "refuse"}]),
            422,
            "invalid_pattern",
        ),
        (
            json!(
                (0..1001)
                    .map(
                        |i| json!({"kind": "word", "pattern": format!("w{i}"), "action": "refuse"})
                    )
                    .collect::<Vec<_>>()
            ),
            413,
            "too_many_rules",
        ),
    ] {
        let got = call(
            &app,
            Method::PUT,
            "/api/moderation/rules",
            Some(&mo),
            Some(json!({"video": "ma", "rules": rules})),
        )
        .await;
        let message = got.1["message"].as_str().unwrap_or_default().to_string();
        refused(got, status, code);
        if code == "invalid_pattern" {
            assert!(message.contains("rule 0"), "{message}");
        }
    }
    refused(
        call(
            &app,
            Method::PUT,
            "/api/moderation/rules",
            Some(&mo),
            Some(json!({"rules": []})),
        )
        .await,
        403,
        "not_moderator",
    );
    refused(
        call(
            &app,
            Method::PUT,
            "/api/moderation/rules",
            Some(&fan),
            Some(json!({"video": "ma", "rules": []})),
        )
        .await,
        403,
        "not_moderator",
    );
    refused(
        call(
            &app,
            Method::PUT,
            "/api/moderation/rules",
            Some("key"),
            Some(json!({"video": "zz", "rules": []})),
        )
        .await,
        404,
        "unknown_video",
    );
    let after = call(
        &app,
        Method::GET,
        "/api/moderation/rules?video=ma",
        Some(&mo),
        None,
    )
    .await
    .1;
    assert_eq!(before, after, "a refused set changed the rules");

    // An admin empties the global set: the configured word no longer refuses (and an
    // emptied set is not seeded again); the video's set is removed by its moderator.
    let (status, _) = call(
        &app,
        Method::PUT,
        "/api/moderation/rules",
        Some("key"),
        Some(json!({"rules": [], "reason": "too strict"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(post(&app, &fan, "mb", "spoiler alert").await.0, 201);
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/api/moderation/rules?video=ma",
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(status, 204);
    refused(
        call(
            &app,
            Method::DELETE,
            "/api/moderation/rules?video=ma",
            Some(&mo),
            None,
        )
        .await,
        404,
        "unknown_rules",
    );
    let (_, r) = post(&app, &fan, "ma", "buy now").await;
    assert!(r.get("state").is_none(), "{r}");
    let (_, audit) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?video=ma",
        Some(&mo),
        None,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("block_rules"))
            .count(),
        2,
        "set once, cleared once: {actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enough_viewer_reports_hide_a_comment_pending_review_once_per_user_and_rate_limited() {
    let app = app_with(|c| {
        c.moderation.report_threshold = 3;
        c.moderation.report_rate_per_min = 4;
    })
    .await;
    let (status, body) = app
        .admin_put("/api/videos/ma/moderators/mo", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let author = app.token("author", Role::Member);
    let mo = app.token("mo", Role::Free);
    let id = posted(&app, &author, "ma", "rude words").await;
    let other = posted(&app, &author, "ma", "also reported").await;
    let (_, secret) = call(
        &app,
        Method::POST,
        "/api/videos/ma/danmaku",
        Some(&author),
        Some(json!({"text": "members only", "time": 1.0, "audience": "members"})),
    )
    .await;
    let report = |token: String, id: i64, reason: &str| {
        let reason = reason.to_string();
        let app = &app;
        async move {
            call(
                app,
                Method::POST,
                &format!("/api/danmaku/{id}/report"),
                Some(&token),
                Some(json!({"reason": reason})),
            )
            .await
        }
    };
    let heat = || async {
        call(
            &app,
            Method::GET,
            "/api/videos/ma/heatmap?buckets=1&duration=60",
            None,
            None,
        )
        .await
        .1["total"]
            .as_u64()
    };
    assert_eq!(heat().await, Some(2));

    // Who may not: guests, admins, the author; a comment the reporter cannot see.
    refused(
        call(
            &app,
            Method::POST,
            &format!("/api/danmaku/{id}/report"),
            None,
            Some(json!({})),
        )
        .await,
        401,
        "missing_token",
    );
    refused(
        report(app.token("root", Role::Admin), id, "x").await,
        403,
        "forbidden",
    );
    refused(report(author.clone(), id, "x").await, 403, "own_comment");
    let secret_id = secret["id"].as_i64().unwrap();
    refused(
        report(app.token("r0", Role::Free), secret_id, "x").await,
        404,
        "unknown_danmaku",
    );
    refused(
        report(app.token("r0", Role::Free), 99_999, "x").await,
        404,
        "unknown_danmaku",
    );
    refused(
        report(app.token("r0", Role::Free), id, &"x".repeat(201)).await,
        422,
        "invalid_reason",
    );

    let mut viewer = watcher(&app, "viewer", Role::Free, "ma").await;
    let mut mo_ws = watcher(&app, "mo", Role::Free, "ma").await;
    // Two reports, one of them twice: still visible; the second time counts nothing.
    let (status, r) = report(app.token("r1", Role::Free), id, "insulting").await;
    assert_eq!((status, &r["new"]), (200, &json!(true)), "{r}");
    let (status, r) = report(app.token("r1", Role::Free), id, "again").await;
    assert_eq!((status, &r["new"]), (200, &json!(false)), "{r}");
    report(app.token("r2", Role::Member), id, "rude").await;
    report(app.token("r2", Role::Member), other, "meh").await;
    assert!(row(&app, "ma", None, "rude words").await.is_some());
    let (status, listed) = call(
        &app,
        Method::GET,
        "/api/moderation/reports?video=ma",
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        (
            &listed[0]["danmaku"]["id"],
            &listed[0]["reports"],
            &listed[1]["reports"]
        ),
        (&json!(id), &json!(2), &json!(1)),
        "most reported first: {listed}"
    );
    assert_eq!(listed[0]["reasons"], json!(["rude", "insulting"]));
    assert_eq!(listed[0]["author"], "author");
    refused(
        call(
            &app,
            Method::GET,
            "/api/moderation/reports?video=ma",
            Some(&author),
            None,
        )
        .await,
        403,
        "not_moderator",
    );

    // The third distinct reporter hides it: removed live, marked for moderators, queued.
    let (status, r) = report(app.token("r3", Role::Free), id, "spam").await;
    assert_eq!((status, &r["new"]), (200, &json!(true)), "{r}");
    viewer
        .until(|v| v["type"] == "danmaku_deleted" && v["data"]["id"] == id)
        .await;
    let (_, marked) = until_text(&mut mo_ws, "rude words").await;
    assert_eq!(marked["data"]["state"], "held");
    assert!(row(&app, "ma", None, "rude words").await.is_none());
    assert_eq!(heat().await, Some(1), "hidden comments are not counted");
    let (_, q) = call(
        &app,
        Method::GET,
        "/api/moderation/queue?video=ma",
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(q["items"][0]["danmaku"]["id"], id, "{q}");
    let (_, audit) = call(
        &app,
        Method::GET,
        "/api/moderation/audit?video=ma",
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(
        (&audit["items"][0]["action"], &audit["items"][0]["actor"]),
        (&json!("hidden_by_reports"), &json!("system"))
    );
    // A hidden comment cannot be reported further.
    refused(
        report(app.token("r4", Role::Free), id, "x").await,
        404,
        "unknown_danmaku",
    );

    // Approved: back for everyone, counted again, its count starts afresh.
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/danmaku/{id}/approve"),
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(status, 200);
    until_text(&mut viewer, "rude words").await;
    assert!(row(&app, "ma", None, "rude words").await.is_some());
    assert_eq!(heat().await, Some(2));
    let (_, listed) = call(
        &app,
        Method::GET,
        "/api/moderation/reports?video=ma",
        Some(&mo),
        None,
    )
    .await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the other one: {listed}"
    );

    // A user files at most 4 reports a minute.
    let busy = app.token("busy", Role::Free);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(posted(&app, &author, "ma", &format!("target {i}")).await);
    }
    for id in &ids[..4] {
        assert_eq!(report(busy.clone(), *id, "x").await.0, 200);
    }
    refused(report(busy.clone(), ids[4], "x").await, 429, "report_rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spam_wave_folds_into_a_count_on_its_first_comment_within_each_audience() {
    let app = app_with(|c| {
        c.danmaku.fold_window_ms = 60_000;
    })
    .await;
    let mut free_ws = watcher(&app, "watcher", Role::Free, "ma").await;
    let mut member_ws = watcher(&app, "mem-watcher", Role::Member, "ma").await;

    // The first of a wave is delivered; the later ones, whatever their width, case and
    // repeats, are stored and acknowledged but delivered as a count on it.
    let first = posted(&app, &app.token("f1", Role::Free), "ma", "2333333").await;
    for (i, text) in ["23333", "２３３３３３３３", "2 3 3"]
        .into_iter()
        .enumerate()
    {
        let (status, r) = post(
            &app,
            &app.token(&format!("f{}", i + 2), Role::Free),
            "ma",
            text,
        )
        .await;
        assert_eq!(status, 201, "{r}");
    }
    // A members-only copy does not fold onto a public first (its audience differs), and
    // members' comments do not fold by default: both are delivered as comments.
    let (_, secret) = call(
        &app,
        Method::POST,
        "/api/videos/ma/danmaku",
        Some(&app.token("m1", Role::Member)),
        Some(json!({"text": "23333", "time": 1.0, "audience": "members"})),
    )
    .await;
    posted(&app, &app.token("m2", Role::Member), "ma", "233").await;
    posted(&app, &app.token("f9", Role::Free), "ma", "fence").await;

    let (before, _) = until_text(&mut free_ws, "fence").await;
    let comments: Vec<i64> = before
        .iter()
        .filter(|v| v["type"] == "danmaku")
        .map(|v| v["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(comments.len(), 2, "the first and the member's: {before:?}");
    assert_eq!(comments[0], first);
    let (_, fold) = free_ws
        .until(|v| v["type"] == "danmaku_fold" && v["data"]["count"] == 4)
        .await;
    assert_eq!(fold["data"]["id"], first, "{fold}");
    // Members see the members-only copy as a comment, and the same count.
    let (_, got) = member_ws
        .until(|v| v["type"] == "danmaku" && v["data"]["id"] == secret["id"])
        .await;
    assert_eq!(got["data"]["audience"], "members");
    member_ws
        .until(|v| {
            v["type"] == "danmaku_fold" && v["data"]["id"] == first && v["data"]["count"] == 4
        })
        .await;
    // Every comment is stored: history keeps the wave whole.
    let texts: Vec<Value> = history(&app, "ma", None)
        .await
        .into_iter()
        .map(|d| d["text"].clone())
        .collect();
    for text in ["2333333", "23333", "２３３３３３３３", "2 3 3"] {
        assert!(
            texts.contains(&json!(text)),
            "{text} missing from {texts:?}"
        );
    }
}
