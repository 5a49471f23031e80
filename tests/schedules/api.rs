//! The schedule endpoints: who may call them, defaults, unknown ids, and every invalid
//! input refused with its code.

use danmaku::model::Role;
use serde_json::{Value, json};

use super::{Auth, call, create, every_second, get};
use crate::common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_endpoints_check_the_caller_and_the_input() {
    let app = TestApp::start().await;
    let s = create(
        &app,
        json!({"name": "n", "every_s": 3600, "target": {"kind": "broadcast"}, "payload": 1}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["event"], "push", "default event");
    assert_eq!(s["audience"], "everyone", "default audience");
    assert_eq!(s["paused"], false);
    let created = s["created_at"].as_u64().unwrap();
    assert_eq!(
        s["next_run"],
        created + 3_600_000,
        "every_s counts from creation"
    );

    let member = app.token("m1", Role::Member);
    let free = app.token("f1", Role::Free);
    let item = format!("/api/schedules/{id}");
    let calls: [(&str, &str, Option<Value>); 5] = [
        ("POST", "/api/schedules", Some(every_second("x"))),
        ("GET", "/api/schedules", None),
        ("GET", item.as_str(), None),
        ("PATCH", item.as_str(), Some(json!({"paused": true}))),
        ("DELETE", item.as_str(), None),
    ];
    for (method, path, body) in &calls {
        let (status, err) = call(&app, method, path, body.clone(), Auth::None).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (401, Some("missing_token")),
            "{method} {path}"
        );
        for token in [&member, &free] {
            let (status, err) = call(&app, method, path, body.clone(), Auth::Bearer(token)).await;
            assert_eq!(
                (status, err["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path}"
            );
        }
    }
    let (_, list) = call(&app, "GET", "/api/schedules", None, Auth::Key).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "refused calls created nothing"
    );
    assert_eq!(
        get(&app, &id).await["paused"],
        false,
        "refused calls changed nothing"
    );
    let admin = app.token("root", Role::Admin);
    let (status, _) = call(&app, "GET", &item, None, Auth::Bearer(&admin)).await;
    assert_eq!(status, 200, "admin JWTs are accepted");

    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"paused": true}))),
        ("DELETE", None),
    ] {
        let (status, err) = call(&app, method, "/api/schedules/s-nope", body, Auth::Key).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (404, Some("unknown_schedule")),
            "{method}"
        );
    }

    app.declare("news", "free").await;
    let base = json!({"name": "bad", "target": {"kind": "broadcast"}, "payload": 1, "every_s": 1});
    let with = |patch: Value| {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    };
    let cases = [
        (
            json!({"every_s": null, "cron": "61 * * * * *"}),
            "invalid_cron",
        ),
        (
            json!({"every_s": null, "cron": "* * * * *"}),
            "invalid_cron",
        ),
        (
            json!({"every_s": null, "cron": "not a cron"}),
            "invalid_cron",
        ),
        (
            json!({"every_s": null, "cron": "0 0 0 30 2 *"}),
            "invalid_cron",
        ),
        (json!({"cron": "* * * * * *"}), "invalid_schedule"),
        (json!({"every_s": null}), "invalid_schedule"),
        (json!({"every_s": 0}), "invalid_interval"),
        (json!({"tz": "Mars/Olympus"}), "invalid_tz"),
        (json!({"name": ""}), "invalid_name"),
        (json!({"target": {"kind": "role"}}), "invalid_target"),
        (
            json!({"target": {"kind": "role", "role": "boss"}}),
            "invalid_target",
        ),
        (json!({"target": {"kind": "user"}}), "invalid_target"),
        (json!({"target": {"kind": "users"}}), "invalid_target"),
        (
            json!({"target": {"kind": "users", "users": []}}),
            "invalid_target",
        ),
        (json!({"target": {"kind": "channel"}}), "invalid_target"),
        (
            json!({"target": {"kind": "channel", "channel": "undeclared"}}),
            "invalid_target",
        ),
        (
            json!({"target": {"kind": "channel", "channel": "bad name!"}}),
            "invalid_target",
        ),
        (
            json!({"target": {"kind": "broadcast", "channel": "news"}}),
            "invalid_target",
        ),
        (
            json!({"target": {"kind": "user", "user": ""}}),
            "invalid_target",
        ),
        (json!({"event": "reply"}), "reserved_event"),
        (json!({"event": "bad event!"}), "invalid_event"),
    ];
    for (patch, code) in cases {
        let body = with(patch);
        let (status, err) = call(
            &app,
            "POST",
            "/api/schedules",
            Some(body.clone()),
            Auth::Key,
        )
        .await;
        assert_eq!(
            (status, err["code"].as_str()),
            (422, Some(code)),
            "{body}: {err}"
        );
        assert!(!err["message"].as_str().unwrap_or("").is_empty(), "{err}");
    }
    // The parser's own message comes through.
    let (_, err) = call(
        &app,
        "POST",
        "/api/schedules",
        Some(with(json!({"every_s": null, "cron": "* * * * *"}))),
        Auth::Key,
    )
    .await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("pattern"),
        "{err}"
    );
    // A body that is not a schedule at all is a 400 like any other malformed body.
    let (status, err) = call(
        &app,
        "POST",
        "/api/schedules",
        Some(json!({"name": "x"})),
        Auth::Key,
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("bad_request")),
        "{err}"
    );

    let (_, list) = call(&app, "GET", "/api/schedules", None, Auth::Key).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "refused bodies created nothing"
    );
    let valid = create(
        &app,
        with(json!({"target": {"kind": "channel", "channel": "news"}, "audience": "members"})),
    )
    .await;
    assert_eq!(valid["audience"], "members");
}
