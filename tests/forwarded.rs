//! `server.trusted_proxies` over real sockets: behind a trusted proxy each forwarded
//! client has its own per-address connection bucket; from an untrusted peer a spoofed
//! `X-Forwarded-For` changes nothing (every socket shares the peer's bucket); and a
//! malformed network stops the binary at startup with a message naming it.

use serde_json::Value;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::common::{TestApp, WsClient};

/// Opens a guest socket claiming to come from `forwarded`; the refusal if any.
async fn ws_from(app: &TestApp, forwarded: &str) -> Result<WsClient, (u16, Value)> {
    let mut req = app.ws_base.as_str().into_client_request().expect("request");
    req.headers_mut().insert(
        "x-forwarded-for",
        HeaderValue::from_str(forwarded).expect("header"),
    );
    WsClient::connect_request(req)
        .await
        .map_err(|r| (r.status, r.body))
}

/// A server with one socket per address, trusting `trusted` as proxies.
async fn one_socket_per_address(trusted: &[&str]) -> TestApp {
    let trusted: Vec<_> = trusted.iter().map(|t| t.parse().expect("cidr")).collect();
    TestApp::builder()
        .config(move |c| {
            c.limits.max_connections_per_ip = 1;
            c.server.trusted_proxies = trusted;
        })
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = one_socket_per_address(&["127.0.0.0/8"]).await;
    let _a = ws_from(&app, "203.0.113.1").await.expect("client A");
    // The right-most untrusted entry is the client: a made-up left entry does not help.
    let (status, body) = ws_from(&app, "198.51.100.77, 203.0.113.1")
        .await
        .err()
        .expect("A's second socket is refused");
    assert_eq!(status, 429);
    assert_eq!(body["code"], "too_many_connections");
    // Another client behind the same proxy, and one behind two proxy hops, both trusted.
    let _b = ws_from(&app, "2001:db8::2").await.expect("client B");
    let _c = ws_from(&app, "203.0.113.3, 127.0.0.9")
        .await
        .expect("client C");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_untrusted_peer_a_spoofed_header_is_ignored() {
    for trusted in [&[][..], &["10.0.0.0/8", "fd00::/8"][..]] {
        let app = one_socket_per_address(trusted).await;
        let _a = ws_from(&app, "203.0.113.1").await.expect("first socket");
        let (status, body) = ws_from(&app, "203.0.113.2")
            .await
            .err()
            .unwrap_or_else(|| panic!("trusting {trusted:?}: the spoof got its own bucket"));
        assert_eq!(status, 429, "trusting {trusted:?}");
        assert_eq!(body["code"], "too_many_connections");
    }
}

#[test]
fn a_malformed_trusted_proxy_stops_startup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_danmaku"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DANMAKU_DATA_DIR", dir.path())
        .env("DANMAKU_TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.0/99")
        .output()
        .expect("run danmaku");
    assert!(!out.status.success(), "started with a bad network");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"10.0.0.0/99\" is not a CIDR network or an IP address"),
        "{err}"
    );
}
