//! The built binary, copied into a temporary folder and started there (the working
//! directory too), far from the source tree: it serves the pages it carries. And with
//! `DANMAKU_STATIC_DIR` it serves a folder on disk instead, read on every request,
//! without letting a path or a symbolic link out of it.

use std::path::Path;

use crate::common::process::Proc;

use super::{CLIMBS, raw_get};

/// Copies the built binary into `dir`, starts it there with `pages` as
/// `DANMAKU_STATIC_DIR` (or none), and waits for its `listening addr=…` line.
async fn start_copy(dir: &Path, pages: Option<&Path>) -> Proc {
    let bin = dir.join("danmaku");
    std::fs::copy(env!("CARGO_BIN_EXE_danmaku"), &bin).expect("copy the binary");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let data = data.to_str().expect("utf-8 path").to_string();
    let mut env = vec![("DANMAKU_DATA_DIR", data.as_str())];
    let pages = pages.map(|p| p.to_str().expect("utf-8 path").to_string());
    if let Some(pages) = &pages {
        env.push(("DANMAKU_STATIC_DIR", pages.as_str()));
    }
    Proc::start_program(&bin, dir, &env).await
}

/// A GET: status, content type and body.
async fn get(base: &str, path: &str) -> (u16, String, String) {
    let resp = reqwest::get(format!("{base}{path}")).await.expect("GET");
    let status = resp.status().as_u16();
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    (status, ctype, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_binary_serves_the_pages_it_carries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_copy(dir.path(), None).await;
    assert!(
        app.listening.contains("pages=embedded"),
        "not the embedded copy: {}",
        app.listening
    );
    let static_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    for (path, file, ctype) in [
        ("/", "index.html", "text/html"),
        ("/admin", "admin.html", "text/html"),
        ("/admin.js", "admin.js", "javascript"),
        ("/page/connection.js", "page/connection.js", "javascript"),
        ("/css/base.css", "css/base.css", "text/css"),
    ] {
        let (status, got_type, body) = get(&app.base, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(got_type.contains(ctype), "{path}: {got_type}");
        let want = std::fs::read_to_string(static_dir.join(file)).expect("source file");
        assert_eq!(body, want, "{path} is not the file of static/");
    }
    // The clip still seeks.
    let resp = reqwest::Client::new()
        .get(format!("{}/demo.webm", app.base))
        .header("range", "bytes=0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_dir_is_served_from_disk_and_never_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("index.html"), "<p>disk copy 1</p>").unwrap();
    std::fs::write(site.join("admin.html"), "<p>disk admin</p>").unwrap();
    std::fs::write(site.join("mod.mjs"), "export const a = 1;").unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "secret outside").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "secret outside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), site.join("link.txt")).unwrap();
    let app = start_copy(dir.path(), Some(&site)).await;
    assert!(
        app.listening.contains(&format!("pages={}", site.display())),
        "{}",
        app.listening
    );
    assert_eq!(
        get(&app.base, "/").await,
        (
            200,
            "text/html; charset=utf-8".into(),
            "<p>disk copy 1</p>".into()
        )
    );
    assert_eq!(get(&app.base, "/admin").await.2, "<p>disk admin</p>");
    let (status, ctype, _) = get(&app.base, "/mod.mjs").await;
    assert_eq!(status, 200);
    assert!(ctype.contains("javascript"), "{ctype}");
    // Read on every request: an edit shows at once, with a new ETag.
    let etag = |base: String| async move {
        reqwest::get(format!("{base}/")).await.unwrap().headers()["etag"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let before = etag(app.base.clone()).await;
    std::fs::write(site.join("index.html"), "<p>disk copy 2</p>").unwrap();
    assert_eq!(get(&app.base, "/").await.2, "<p>disk copy 2</p>");
    assert_ne!(etag(app.base.clone()).await, before);
    for path in CLIMBS
        .iter()
        .chain(&["/link.txt", "/%2e%2e/secret.txt", "/../secret.txt"])
    {
        let (status, body) = raw_get(&app.base, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("secret outside"), "{path} escaped: {body}");
    }
}
