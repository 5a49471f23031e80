//! Scheduled pushes and presence events, over real sockets.
//!
//! "No more runs" is proven without sleeping. Deleting or pausing a schedule answers only
//! once no run of it can be published any more, so a broadcast sentinel pushed after the
//! reply gets a `seq` above every run of that schedule. A second, control schedule keeps
//! firing on the same channel: once it has delivered two runs with a `seq` above the
//! sentinel's, more than one cadence has passed, and a stopped schedule's run would have
//! had a `seq` above the sentinel's too.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, Timelike};
use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{API_KEY, TestApp, WsClient, tag_of};

/// Who calls an endpoint.
enum Auth<'a> {
    None,
    Key,
    Bearer(&'a str),
}

/// Calls the API and returns status and JSON body (Null when empty).
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    auth: Auth<'_>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.http.request(method, app.url(path));
    req = match auth {
        Auth::None => req,
        Auth::Key => req.header("X-Api-Key", API_KEY),
        Auth::Bearer(t) => req.bearer_auth(t),
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    crate::common::status_json(req.send().await.expect("request")).await
}

/// Creates a schedule with the admin key, asserting 201, and returns it.
async fn create(app: &TestApp, body: Value) -> Value {
    let (status, s) = call(app, "POST", "/api/schedules", Some(body.clone()), Auth::Key).await;
    assert_eq!(status, 201, "create {body}: {s}");
    assert!(s["id"].as_str().is_some_and(|id| id.starts_with("s-")));
    s
}

/// Reads one schedule with the admin key, asserting 200.
async fn get(app: &TestApp, id: &str) -> Value {
    let (status, s) = call(app, "GET", &format!("/api/schedules/{id}"), None, Auth::Key).await;
    assert_eq!(status, 200, "get {id}: {s}");
    s
}

/// Deletes a schedule with the admin key, asserting 204.
async fn delete(app: &TestApp, id: &str) {
    let (status, body) = call(
        app,
        "DELETE",
        &format!("/api/schedules/{id}"),
        None,
        Auth::Key,
    )
    .await;
    assert_eq!(status, 204, "delete {id}: {body}");
}

/// Pauses or resumes a schedule, asserting 200, and returns it.
async fn set_paused(app: &TestApp, id: &str, paused: bool) -> Value {
    let (status, s) = call(
        app,
        "PATCH",
        &format!("/api/schedules/{id}"),
        Some(json!({"paused": paused})),
        Auth::Key,
    )
    .await;
    assert_eq!(status, 200, "patch {id}: {s}");
    assert_eq!(s["paused"], paused);
    s
}

/// Pushes a broadcast sentinel and returns its `seq`.
async fn sentinel(app: &TestApp, tag: &str) -> u64 {
    let (status, reply) = app
        .admin_post(
            "/api/push/broadcast",
            json!({"event": "sentinel", "payload": {"tag": tag}}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    reply["seq"].as_u64().expect("broadcast seq")
}

/// The schedule id of a scheduled event, if it is one.
fn schedule_of(v: &Value) -> Option<&str> {
    v["data"]["schedule"]["id"].as_str()
}

/// The run index of a scheduled event.
fn run_of(v: &Value) -> u64 {
    v["data"]["schedule"]["run"].as_u64().expect("run index")
}

/// A broadcast schedule firing every second, tagged in its payload.
fn every_second(name: &str) -> Value {
    json!({"name": name, "every_s": 1, "target": {"kind": "broadcast"}, "payload": {"tag": name}})
}

/// Proves that `stopped` publishes nothing more: after the sentinel (pushed after the
/// stopping reply), reads until `control` delivered two runs above the sentinel's seq,
/// and fails on any `stopped` event above it. Returns the `stopped` events read.
async fn assert_stopped(
    app: &TestApp,
    c: &mut WsClient,
    stopped: &str,
    control: &str,
    tag: &str,
) -> Vec<Value> {
    let fence = sentinel(app, tag).await;
    let mut control_after = 0;
    let mut seen = Vec::new();
    while control_after < 2 {
        let v = c.next_json().await;
        let seq = v["seq"].as_u64().unwrap_or(0);
        match schedule_of(&v) {
            Some(id) if id == stopped => {
                assert!(
                    seq < fence,
                    "run {} of the stopped schedule came after it stopped (seq {seq} > {fence})",
                    run_of(&v)
                );
                seen.push(v);
            }
            Some(id) if id == control && seq > fence => control_after += 1,
            _ => {}
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_target_kind_reaches_exactly_its_sockets() {
    let app = TestApp::start().await;
    app.declare("news", "free").await;
    let mut phone = app.ws_as("alice", Role::Member).await;
    let mut laptop = app.ws_as("alice", Role::Member).await;
    let mut bob = app.ws_as("bob", Role::Free).await;
    assert_eq!(phone.subscribe("news").await["ok"], true);
    assert_eq!(bob.subscribe("news").await["ok"], true);

    let order = json!({"type": 1, "orderId": 7, "content": "order 7 paid"});
    let kinds = [
        ("bc", json!({"kind": "broadcast"}), "everyone", 3),
        (
            "role",
            json!({"kind": "role", "role": "member"}),
            "everyone",
            2,
        ),
        (
            "user",
            json!({"kind": "user", "user": "bob"}),
            "everyone",
            1,
        ),
        (
            "users",
            json!({"kind": "users", "users": ["alice", "nobody"]}),
            "everyone",
            2,
        ),
        (
            "news",
            json!({"kind": "channel", "channel": "news"}),
            "everyone",
            2,
        ),
        (
            "news-members",
            json!({"kind": "channel", "channel": "news"}),
            "members",
            1,
        ),
        ("bc-free", json!({"kind": "broadcast"}), "free", 1),
    ];
    let mut ids = Vec::new();
    for (tag, target, audience, _) in &kinds {
        let payload = if *tag == "user" {
            order.clone()
        } else {
            json!({"tag": tag})
        };
        let s = create(
            &app,
            json!({"name": tag, "every_s": 1, "target": target, "event": "sched",
                   "payload": payload, "audience": audience}),
        )
        .await;
        assert_eq!(s["target"], *target);
        assert_eq!(s["runs"], 0);
        assert_eq!(s["tz"], "UTC");
        ids.push(s["id"].as_str().unwrap().to_string());
    }

    // Every schedule has run (and counted its sockets) at least once.
    let (appr, n) = (&app, kinds.len());
    app.wait_for("every schedule to run", || async move {
        let (_, list) = call(appr, "GET", "/api/schedules", None, Auth::Key).await;
        list.as_array()
            .is_some_and(|l| l.len() == n && l.iter().all(|s| s["last_delivered"].is_u64()))
    })
    .await;
    for (id, (tag, _, _, sockets)) in ids.iter().zip(&kinds) {
        let s = get(&app, id).await;
        assert_eq!(
            s["last_delivered"], *sockets,
            "{tag} reaches {sockets} sockets: {s}"
        );
        assert!(s["runs"].as_u64().unwrap() >= 1);
        assert!(s["last_run"].is_u64());
    }
    for id in &ids {
        delete(&app, id).await;
    }
    sentinel(&app, "end").await;

    let expected: [(&str, &mut WsClient, &[&str]); 3] = [
        (
            "alice's phone",
            &mut phone,
            &["bc", "role", "users", "news", "news-members"],
        ),
        ("alice's laptop", &mut laptop, &["bc", "role", "users"]),
        ("bob", &mut bob, &["bc", "user", "news", "bc-free"]),
    ];
    for (who, c, want) in expected {
        let (events, _) = c.until(|v| tag_of(v) == Some("end")).await;
        let mut got: Vec<String> = Vec::new();
        for ev in events.iter().filter(|v| v["type"] == "sched") {
            let name = ev["data"]["schedule"]["name"].as_str().unwrap().to_string();
            let channel = ev["channel"].as_str().unwrap();
            let want_channel = match name.as_str() {
                "user" => "user:bob",
                "users" => "user:alice",
                "news" | "news-members" => "news",
                _ => "broadcast",
            };
            assert_eq!(channel, want_channel, "{who}: {ev}");
            if name == "user" {
                // The order alert's payload reaches the page byte for byte.
                assert_eq!(
                    ev["data"]["payload"].to_string(),
                    r#"{"type":1,"orderId":7,"content":"order 7 paid"}"#
                );
            } else {
                assert_eq!(tag_of(ev), Some(name.as_str()));
            }
            assert!(run_of(ev) >= 1);
            if !got.contains(&name) {
                got.push(name);
            }
        }
        got.sort();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{who} received exactly its schedules");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_schedule_fires_every_second_then_stops_after_delete() {
    let app = TestApp::start().await;
    let mut c = app.ws_as("watcher", Role::Free).await;
    let control = create(&app, every_second("control")).await;
    let control = control["id"].as_str().unwrap();
    let s = create(
        &app,
        json!({"name": "tick", "cron": "* * * * * *", "target": {"kind": "broadcast"},
               "event": "tick", "payload": {"tag": "tick"}}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["cron"], "* * * * * *");
    let next = s["next_run"].as_u64().expect("next_run");
    assert_eq!(next % 1000, 0, "cron runs on whole seconds");

    // Two runs, in order, a cadence apart.
    let (_, first) = c.until(|v| schedule_of(v) == Some(&id)).await;
    let (_, second) = c.until(|v| schedule_of(v) == Some(&id)).await;
    assert_eq!(first["type"], "tick");
    assert_eq!(first["data"]["schedule"]["name"], "tick");
    assert_eq!(run_of(&second), run_of(&first) + 1);
    assert!(second["seq"].as_u64() > first["seq"].as_u64());
    let gap = second["ts"].as_u64().unwrap() - first["ts"].as_u64().unwrap();
    assert!(gap >= 500, "runs are a second apart, not a burst: {gap} ms");

    let before = get(&app, &id).await["runs"].as_u64().unwrap();
    assert!(before >= 2);
    assert!(app.metric("danmaku_schedule_runs_total").await >= 2.0);
    delete(&app, &id).await;
    assert_stopped(&app, &mut c, &id, control, "after-delete").await;

    for method in ["GET", "DELETE"] {
        let (status, err) = call(
            &app,
            method,
            &format!("/api/schedules/{id}"),
            None,
            Auth::Key,
        )
        .await;
        assert_eq!(
            (status, err["code"].as_str()),
            (404, Some("unknown_schedule"))
        );
    }
    let (_, list) = call(&app, "GET", "/api/schedules", None, Auth::Key).await;
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(ids, [json!(control)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_runs_and_resume_restarts_them() {
    let app = TestApp::start().await;
    let mut c = app.ws_as("watcher", Role::Member).await;
    let control = create(&app, every_second("control")).await;
    let control = control["id"].as_str().unwrap();
    let s = create(&app, every_second("pausable")).await;
    let id = s["id"].as_str().unwrap().to_string();
    c.until(|v| schedule_of(v) == Some(&id)).await;

    let paused = set_paused(&app, &id, true).await;
    assert_eq!(
        paused["next_run"],
        Value::Null,
        "a paused schedule has no next run"
    );
    let runs = paused["runs"].as_u64().unwrap();
    let stale = assert_stopped(&app, &mut c, &id, control, "after-pause").await;
    assert!(stale.iter().all(|v| run_of(v) <= runs), "{stale:?}");
    assert_eq!(get(&app, &id).await["runs"], runs, "no run while paused");

    let resumed = set_paused(&app, &id, false).await;
    let next = resumed["next_run"].as_u64().expect("next_run after resume");
    assert!(next > danmaku::model::time::now_millis() - 1000);
    let (_, ev) = c.until(|v| schedule_of(v) == Some(&id)).await;
    assert_eq!(
        run_of(&ev),
        runs + 1,
        "numbering goes on, paused time is not replayed"
    );
    assert!(ev["ts"].as_u64().unwrap() >= next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_survive_a_restart_without_replaying_missed_runs() {
    use danmaku::store::{ScheduleStore, sqlite::SqliteStore};

    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_path_buf();
    let ticking;
    let month_end;
    let persisted;
    {
        let mut app = TestApp::builder()
            .config(|c| c.server.data_dir = dir.clone())
            .start()
            .await;
        ticking = create(&app, every_second("ticking")).await;
        month_end = create(
            &app,
            json!({"name": "month-end", "cron": "0 0 9 L * *", "tz": "Asia/Shanghai",
                   "target": {"kind": "role", "role": "member"}, "event": "notice",
                   "payload": {"text": "statement ready"}, "audience": "members"}),
        )
        .await;
        set_paused(&app, month_end["id"].as_str().unwrap(), true).await;
        // Wait until a run is on disk, read through a second connection to the database.
        let store = SqliteStore::open(&dir).unwrap();
        let id = ticking["id"].as_str().unwrap();
        let stored = |store: SqliteStore| async move {
            store.get_schedule(id).await.unwrap().map_or(0, |r| r.runs)
        };
        app.wait_for("a run to be stored", || {
            let store = store.clone();
            async move { stored(store).await >= 1 }
        })
        .await;
        persisted = stored(store).await;
        // Down for more than two cadences: those runs are missed.
        app.stop();
        let stopped_at = danmaku::model::time::now_millis();
        app.wait_for("the server to be down 2.5 s", || async move {
            danmaku::model::time::now_millis() > stopped_at + 2500
        })
        .await;
    }
    let started_at = danmaku::model::time::now_millis();
    let app = TestApp::builder()
        .config(|c| c.server.data_dir = dir.clone())
        .start()
        .await;
    let mut c = app.ws_as("watcher", Role::Member).await;

    let (_, list) = call(&app, "GET", "/api/schedules", None, Auth::Key).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let id = ticking["id"].as_str().unwrap();
    let again = get(&app, id).await;
    for key in [
        "name",
        "every_s",
        "target",
        "event",
        "payload",
        "audience",
        "tz",
        "created_at",
    ] {
        assert_eq!(again[key], ticking[key], "{key} survives");
    }
    assert!(again["runs"].as_u64().unwrap() >= persisted);
    assert!(again["last_run"].is_u64());
    let month = get(&app, month_end["id"].as_str().unwrap()).await;
    for key in [
        "name", "cron", "target", "event", "payload", "audience", "tz",
    ] {
        assert_eq!(month[key], month_end[key], "{key} survives");
    }
    assert_eq!(month["paused"], true);
    assert_eq!(month["next_run"], Value::Null);

    // It fires again, one run per cadence, numbering on from the stored count.
    let (_, first) = c.until(|v| schedule_of(v) == Some(id)).await;
    let (_, second) = c.until(|v| schedule_of(v) == Some(id)).await;
    assert!(run_of(&first) > persisted);
    assert_eq!(run_of(&second), run_of(&first) + 1);
    let gap = second["ts"].as_u64().unwrap() - first["ts"].as_u64().unwrap();
    assert!(gap >= 500, "no burst after a restart: {gap} ms");
    // Replayed missed runs would have fired at start, maybe before the socket was there:
    // count every run of this server. Without replay it fired at most once per second.
    let fired = app.metric("danmaku_schedule_runs_total").await;
    let allowed = 1 + (danmaku::model::time::now_millis() - started_at) / 1000;
    assert!(
        fired <= allowed as f64,
        "{fired} runs within {allowed} s of start: missed runs were replayed"
    );

    // The paused one resumes with a month-end run at 09:00 in Shanghai.
    let resumed = set_paused(&app, month_end["id"].as_str().unwrap(), false).await;
    let next = resumed["next_run"].as_u64().expect("next_run");
    let shanghai = DateTime::from_timestamp_millis(next as i64).unwrap() + ChronoDuration::hours(8);
    assert_eq!(
        (shanghai.hour(), shanghai.minute(), shanghai.second()),
        (9, 0, 0)
    );
    assert_eq!(
        (shanghai + ChronoDuration::days(1)).day(),
        1,
        "last day of the month: {shanghai}"
    );
}

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
