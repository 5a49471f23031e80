//! The embedded pages answered in process: types, caching headers, 304, 206/416, HEAD,
//! and refusals in the `{code, message}` shape.

use crate::common::TestApp;

use super::{CLIMBS, raw_get};

/// The bytes of a file of `static/`, to compare what is served with.
fn source(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("static")
            .join(rel),
    )
    .expect("static file")
}

/// A header as text ("" when missing).
fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_file_has_its_type_and_caching() {
    let app = TestApp::start().await;
    for (path, file, ctype, cache) in [
        ("/", "index.html", "text/html; charset=utf-8", "no-cache"),
        (
            "/admin",
            "admin.html",
            "text/html; charset=utf-8",
            "no-cache",
        ),
        (
            "/watch/v1",
            "index.html",
            "text/html; charset=utf-8",
            "no-cache",
        ),
        ("/app.js", "app.js", "javascript", "no-cache"),
        (
            "/page/connection.js",
            "page/connection.js",
            "javascript",
            "no-cache",
        ),
        (
            "/css/base.css",
            "css/base.css",
            "text/css; charset=utf-8",
            "no-cache",
        ),
        (
            "/demo.webm",
            "demo.webm",
            "video/webm",
            "public, max-age=3600",
        ),
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            header(&resp, "content-type").contains(ctype),
            "{path}: {resp:?}"
        );
        assert_eq!(header(&resp, "cache-control"), cache, "{path}");
        assert_eq!(header(&resp, "accept-ranges"), "bytes", "{path}");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff", "{path}");
        assert!(header(&resp, "content-security-policy").contains("script-src 'self'"));
        assert!(
            header(&resp, "etag").starts_with('"'),
            "{path}: strong, quoted"
        );
        assert!(header(&resp, "last-modified").ends_with("GMT"), "{path}");
        assert_eq!(resp.bytes().await.unwrap(), source(file), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_version_is_answered_304() {
    let app = TestApp::start().await;
    for path in ["/app.js", "/admin", "/demo.webm"] {
        let first = app.http.get(app.url(path)).send().await.unwrap();
        let (etag, modified) = (header(&first, "etag"), header(&first, "last-modified"));
        for (name, value) in [
            ("if-none-match", etag.clone()),
            ("if-none-match", format!("\"other\", W/{etag}")),
            ("if-none-match", "*".to_string()),
            ("if-modified-since", modified.clone()),
        ] {
            let resp = app
                .http
                .get(app.url(path))
                .header(name, &value)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 304, "{path} {name}: {value}");
            assert_eq!(header(&resp, "etag"), etag, "a 304 names the version");
            assert!(resp.bytes().await.unwrap().is_empty());
        }
        // Another version, or an older date, gets the file.
        for (name, value) in [
            ("if-none-match", "\"not-this-one\""),
            ("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ] {
            let resp = app
                .http
                .get(app.url(path))
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path} {name}: {value}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_are_answered_206_or_416() {
    let app = TestApp::start().await;
    let clip = source("demo.webm");
    let len = clip.len();
    let etag = header(
        &app.http.get(app.url("/demo.webm")).send().await.unwrap(),
        "etag",
    );
    for (range, start, end) in [
        ("bytes=0-99".to_string(), 0, 99),
        (format!("bytes={}-", len - 1000), len - 1000, len - 1),
        ("bytes=-100".to_string(), len - 100, len - 1),
        (format!("bytes=1000-{}", len * 2), 1000, len - 1),
    ] {
        let resp = app
            .http
            .get(app.url("/demo.webm"))
            .header("range", &range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(
            header(&resp, "content-range"),
            format!("bytes {start}-{end}/{len}"),
            "{range}"
        );
        assert_eq!(header(&resp, "content-type"), "video/webm");
        assert_eq!(header(&resp, "etag"), etag);
        assert_eq!(
            &resp.bytes().await.unwrap()[..],
            &clip[start..=end],
            "{range}"
        );
    }
    for range in [format!("bytes={len}-"), "bytes=-0".to_string()] {
        let resp = app
            .http
            .get(app.url("/demo.webm"))
            .header("range", &range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 416, "{range}");
        assert_eq!(header(&resp, "content-range"), format!("bytes */{len}"));
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "range_not_satisfiable", "{body}");
    }
    // A range for another version (If-Range), or one we do not read, gets the whole file.
    for (name, value) in [("if-range", "\"an-old-version\""), ("x-ignored", "1")] {
        let range = if name == "x-ignored" {
            "bytes=5-1"
        } else {
            "bytes=0-9"
        };
        let resp = app
            .http
            .get(app.url("/demo.webm"))
            .header("range", range)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{range} {name}");
        assert_eq!(resp.bytes().await.unwrap().len(), len);
    }
    let resp = app
        .http
        .get(app.url("/demo.webm"))
        .header("range", "bytes=0-9")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206, "If-Range with the current version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_has_the_headers_and_no_body() {
    let app = TestApp::start().await;
    for (path, file) in [
        ("/", "index.html"),
        ("/admin", "admin.html"),
        ("/demo.webm", "demo.webm"),
    ] {
        let get = app.http.get(app.url(path)).send().await.unwrap();
        let resp = app.http.head(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(
            header(&resp, "content-length"),
            source(file).len().to_string()
        );
        for name in ["content-type", "etag", "cache-control", "last-modified"] {
            assert_eq!(header(&resp, name), header(&get, name), "{path} {name}");
        }
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    let resp = app
        .http
        .head(app.url("/demo.webm"))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(header(&resp, "content-length"), "10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_climbs_and_other_methods_are_refused() {
    let app = TestApp::start().await;
    for path in ["/nope.js", "/page", "/page/", "/css/missing.css"]
        .iter()
        .chain(CLIMBS)
    {
        let (status, body) = raw_get(&app.base, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(body["code"], "not_found", "{path}");
        assert!(body["message"].is_string());
    }
    for path in ["/", "/app.js", "/admin"] {
        let resp = app.http.post(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 405, "{path}");
        assert_eq!(header(&resp, "allow"), "GET, HEAD");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed");
    }
}
