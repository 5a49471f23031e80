//! The browser pages over HTTP: content types, validators and 304s, byte ranges, HEAD,
//! refused paths, and (in [`binary`]) the built binary serving its embedded copy from a
//! folder far from the source tree, and a disk copy through `DANMAKU_STATIC_DIR`; and (in
//! [`screenshots`]) that the README's screenshots were taken of the pages as they are.
//!
//! The in-process tests here serve the embedded copy (the test binary does not set
//! `DANMAKU_STATIC_DIR`) and compare it with the files of `static/`.

mod binary;
mod http;
mod screenshots;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 GET of `path` exactly as written (no client normalises `..` or
/// escapes on the way): the status and the body.
pub async fn raw_get(base: &str, path: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(crate::common::WAIT, stream.read_to_end(&mut out))
        .await
        .expect("the server never closed")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// Paths that try to climb out of the pages' folder, in every spelling we know.
pub const CLIMBS: &[&str] = &[
    "/../Cargo.toml",
    "/../../etc/passwd",
    "/css/../../Cargo.toml",
    "/%2e%2e/Cargo.toml",
    "/%2E%2E%2FCargo.toml",
    "/css/..%2f..%2fCargo.toml",
    "/..%5cCargo.toml",
    "/%2e%2e%5cCargo.toml",
    "/admin/%2e%2e/%2e%2e/Cargo.toml",
];
