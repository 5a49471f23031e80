//! A schedule's life: cron runs a cadence apart and stop after delete, pause and resume,
//! and a restart that keeps every schedule without replaying missed runs.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, Timelike};
use danmaku::model::Role;
use serde_json::{Value, json};

use super::{
    Auth, assert_stopped, call, create, delete, every_second, get, run_of, schedule_of, set_paused,
};
use crate::common::TestApp;

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
