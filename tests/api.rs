//! REST frame: spec drift, errors, admin auth, demo mode, channel declarations, probes.

use danmaku::model::Role;
use serde_json::{Value, json};

use crate::common::{API_KEY, TestApp, status_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_spec_matches_the_committed_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).expect("openapi/openapi.json exists");
    let generated = danmaku::api::spec_json();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: regenerate it with\n    cargo run -- openapi > openapi/openapi.json"
    );
    let app = TestApp::start().await;
    let served = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let served: Value = serde_json::from_str(&served).unwrap();
    let committed: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        served, committed,
        "the served spec differs from the committed one"
    );
    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200, "Swagger UI is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tokens_are_off_by_default() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/demo/token"))
        .json(&json!({"sub": "alice", "role": "admin"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "demo_disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_mints_working_tokens() {
    let app = TestApp::builder()
        .config(|c| c.auth.demo = true)
        .start()
        .await;
    let resp = app
        .http
        .post(app.url("/api/demo/token"))
        .json(&json!({"sub": "alice", "role": "member", "name": "Alice"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let resp = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, me) = status_json(resp).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "member");
    assert_eq!(me["name"], "Alice");
    let resp = app
        .http
        .post(app.url("/api/demo/token"))
        .json(&json!({"sub": "bad sub!", "role": "free"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_sub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_check_the_caller() {
    let app = TestApp::start().await;
    let url = app.url("/api/push/broadcast");
    let body = json!({"payload": {"x": 1}});

    let (status, err) = status_json(app.http.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("missing_token")),
        "{err}"
    );

    let member = app.token("m1", Role::Member);
    let (status, err) = status_json(
        app.http
            .post(&url)
            .bearer_auth(&member)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("forbidden")),
        "{err}"
    );

    let (status, err) = status_json(
        app.http
            .post(&url)
            .header("X-Api-Key", "wrong")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("bad_api_key")),
        "{err}"
    );

    let (status, err) = status_json(
        app.http
            .post(&url)
            .bearer_auth("garbage")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("invalid_token")),
        "{err}"
    );

    let admin = app.token("root", Role::Admin);
    let (status, reply) = status_json(
        app.http
            .post(&url)
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["id"].as_str().unwrap().starts_with("p-"));
    assert_eq!(reply["delivered"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_with_a_code() {
    let app = TestApp::start().await;
    let (status, err) = status_json(
        app.http
            .post(app.url("/api/push/broadcast"))
            .header("X-Api-Key", API_KEY)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["code"], "bad_request");
    assert!(err["message"].as_str().is_some());

    let (status, err) = app
        .admin_post(
            "/api/push/broadcast",
            json!({"event": "bad event!", "payload": 1}),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (422, Some("invalid_event")));
    let (status, err) = app
        .admin_post(
            "/api/push/broadcast",
            json!({"event": "reply", "payload": 1}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (422, Some("reserved_event"))
    );
    let (status, err) = app
        .admin_post("/api/push/channels/nope", json!({"payload": 1}))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("unknown_channel"))
    );
    let (status, err) = app
        .admin_put("/api/channels/video:1", json!({"tier": "member"}))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (422, Some("reserved_channel"))
    );

    let (status, err) = status_json(
        app.http
            .get(app.url("/api/nothing-here"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_list_is_filtered_by_role_and_survives_restart() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_path_buf();
    {
        let app = TestApp::builder()
            .config(|c| c.server.data_dir = dir.clone())
            .start()
            .await;
        app.declare("news", "free").await;
        app.declare("vip", "member").await;
        app.declare("ops", "admin").await;
        let (status, _) = app
            .admin_put("/api/channels/news", json!({"tier": "free"}))
            .await;
        assert_eq!(status, 200, "re-declaring updates");
    }
    let app = TestApp::builder()
        .config(|c| c.server.data_dir = dir.clone())
        .start()
        .await;
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, guest) =
        status_json(app.http.get(app.url("/api/channels")).send().await.unwrap()).await;
    assert_eq!(names(guest), ["news"]);
    let member = app.token("m", Role::Member);
    let (_, list) = status_json(
        app.http
            .get(app.url("/api/channels"))
            .bearer_auth(member)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(names(list), ["news", "vip"]);
    let admin = app.token("a", Role::Admin);
    let (_, list) = status_json(
        app.http
            .get(app.url("/api/channels"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(names(list), ["news", "ops", "vip"]);
    // The declaration also survives for subscribing.
    let mut c = app.ws_as("m", Role::Member).await;
    assert_eq!(c.subscribe("vip").await["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_by_role_and_lists_users_for_admins_only() {
    let app = TestApp::start().await;
    let _g = {
        let mut g = app.ws_as("", Role::Guest).await;
        g.subscribe("video:7").await;
        g
    };
    let _m = {
        let mut m = app.ws_as("alice", Role::Member).await;
        m.subscribe("video:7").await;
        m
    };
    let (status, p) = status_json(
        app.http
            .get(app.url("/api/channels/video:7/presence"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["total"], 2);
    assert_eq!(p["by_role"]["guest"], 1);
    assert_eq!(p["by_role"]["member"], 1);
    assert!(p.get("users").is_none(), "users are for admins: {p}");
    let (_, p) = status_json(
        app.http
            .get(app.url("/api/channels/video:7/presence"))
            .header("X-Api-Key", API_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["users"], json!(["alice"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_answer() {
    let app = TestApp::start().await;
    for (path, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), want);
    }
    let _c = app.ws_as("m", Role::Member).await;
    assert_eq!(
        app.metric("danmaku_connections{role=\"member\"}").await,
        1.0
    );
    assert!(app.metric("danmaku_connections_total").await >= 1.0);
    assert_eq!(app.metric("danmaku_slow_disconnects_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_served_at_their_routes() {
    let app = TestApp::start().await;
    let get = |path: &str| app.http.get(app.url(path)).send();
    for (path, script) in [
        ("/", "/app.js"),
        ("/watch/demo", "/app.js"),
        ("/watch/any-video_1.2", "/app.js"),
        ("/admin", "/admin.js"),
    ] {
        let resp = get(path).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        let body = resp.text().await.unwrap();
        assert!(body.contains(script), "{path} should load {script}");
    }
    // Assets are served at absolute paths, with a JavaScript type for modules.
    // The page modules too: /admin/... is a folder of files, not the /admin route.
    for path in [
        "/app.js",
        "/admin.js",
        "/lib/util.js",
        "/lib/overlay.js",
        "/page/connection.js",
        "/admin/state.js",
    ] {
        let resp = get(path).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.contains("javascript"), "{path}: {ct}");
    }
    for path in ["/css/base.css", "/css/admin.css"] {
        let resp = get(path).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/css"), "{path}: {ct}");
    }
    // The demo clip answers range requests (seeking), and stays small.
    let resp = app
        .http
        .get(app.url("/demo.webm"))
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-type"], "video/webm");
    let total: u64 = resp.headers()["content-range"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total < 2_000_000, "the demo clip is {total} bytes");
}

/// A 405 lists the methods the resource has (RFC 9110), API routes and others alike,
/// and keeps the `{code, message}` body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_not_allowed_lists_the_allowed_methods() {
    let app = TestApp::start().await;
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/api/videos", "GET"),
        (reqwest::Method::PUT, "/api/videos/v1/danmaku", "GET, POST"),
        (
            reqwest::Method::POST,
            "/api/schedules/s-1",
            "DELETE, GET, PATCH",
        ),
        (reqwest::Method::POST, "/healthz", "GET"),
    ] {
        let resp = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(
            resp.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body: Value = resp.json().await.expect("JSON body");
        assert_eq!(
            body["code"], "method_not_allowed",
            "{method} {path}: {body}"
        );
    }
}

/// A named channel exists while it is declared: its presence answers 404 before the
/// declaration and after its deletion, for admins too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_of_a_named_channel_follows_its_declaration() {
    let app = TestApp::start().await;
    let presence = || async {
        status_json(
            app.http
                .get(app.url("/api/channels/lounge/presence"))
                .header("X-Api-Key", API_KEY)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let (status, body) = presence().await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_channel"))
    );
    app.declare("lounge", "free").await;
    let (status, body) = presence().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 0);
    let resp = app
        .http
        .delete(app.url("/api/channels/lounge"))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, body) = presence().await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("unknown_channel"))
    );
}
