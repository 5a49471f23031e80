//! Test harness: a `TestApp` builder that runs the real server, plus ready clients.
//! The cluster suite's harness lives in [`cluster`], [`redis`] and [`process`].

pub mod cluster;
pub mod postgres;
pub mod process;
pub mod redis;

use std::{sync::Arc, time::Duration};

use danmaku::{
    auth::{Keys, Signer},
    config::Config,
    model::Role,
    server::Server,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

/// The HS256 secret every test server uses.
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
/// The admin API key every test server accepts.
pub const API_KEY: &str = "test-api-key";
/// How long a test waits for a frame that must arrive.
pub const WAIT: Duration = Duration::from_secs(10);

/// Held by the load-heavy tests (a thousand sockets, floods) so that no two of them share
/// the two cores at once: each asserts that healthy readers keep up, which is only fair
/// if the machine is not also running another flood.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Builds a test server with adjusted configuration.
pub struct TestAppBuilder {
    cfg: Config,
    dir: tempfile::TempDir,
}

impl TestAppBuilder {
    /// Changes the configuration before start.
    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.cfg);
        self
    }

    /// Starts the server.
    pub async fn start(self) -> TestApp {
        let server = Server::bind(self.cfg).await.expect("server starts");
        let addr = server.addr();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .run(async move {
                    let _ = stop_rx.await;
                })
                .await
                .expect("server runs");
        });
        TestApp {
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}/ws"),
            http: reqwest::Client::new(),
            signer: Arc::new(key_signer(&self.dir)),
            stop: Some(stop_tx),
            handle: Some(handle),
            _dir: self.dir,
        }
    }
}

/// A signer for the key of the server whose data dir is `dir`.
fn key_signer(dir: &tempfile::TempDir) -> danmaku::auth::Signer {
    Keys::load(&state_cfg(dir))
        .and_then(|k| k.signer())
        .expect("signer")
}

/// A config whose keys match the test server's (used to mint tokens).
fn state_cfg(dir: &tempfile::TempDir) -> Config {
    let mut cfg = Config::default();
    cfg.auth.secret = Some(SECRET.into());
    cfg.server.data_dir = dir.path().to_path_buf();
    cfg
}

/// A running server and clients for it.
pub struct TestApp {
    pub base: String,
    pub ws_base: String,
    pub http: reqwest::Client,
    pub signer: Arc<Signer>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// A builder with test defaults: fixed secret, API key, temp data dir.
    pub fn builder() -> TestAppBuilder {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = state_cfg(&dir);
        cfg.server.bind = "127.0.0.1:0".parse().unwrap();
        cfg.auth.api_keys = vec![API_KEY.into()];
        cfg.auth.leeway_s = 0;
        cfg.server.log = "warn".into();
        // Many tests post in bursts as one user (cooldowns off): the default flood rule
        // (10 comments in 20 s) would mute them. The flood tests turn it back on.
        cfg.moderation.flood_max = 0;
        // Likewise, tests repeat texts ("hello") and expect each copy live: spam-wave
        // folding would turn the copies into counts. The folding tests turn it back on.
        cfg.danmaku.fold_window_ms = 0;
        TestAppBuilder { cfg, dir }
    }

    /// Starts a server with the defaults.
    pub async fn start() -> TestApp {
        Self::builder().start().await
    }

    /// A signer for the server's key, owned (for `danmaku bench`, which takes one).
    pub fn key_signer(&self) -> danmaku::auth::Signer {
        key_signer(&self._dir)
    }

    /// Starts the server's shutdown sequence.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Mints a one-hour token whose display name is the sub.
    pub fn token(&self, sub: &str, role: Role) -> String {
        self.signer
            .mint(sub, role, Some(sub), Duration::from_secs(3600))
            .expect("mint")
    }

    /// Mints a one-hour token whose `mod` claim lists `videos` (a room moderator of each).
    pub fn token_mod(&self, sub: &str, role: Role, videos: &[&str]) -> String {
        let videos: Vec<String> = videos.iter().map(|v| v.to_string()).collect();
        self.signer
            .mint_with_mod(sub, role, Some(sub), Duration::from_secs(3600), &videos)
            .expect("mint")
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a JSON body with the admin API key.
    async fn admin_send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .request(method, self.url(path))
            .header("X-Api-Key", API_KEY)
            .json(&body)
            .send()
            .await
            .expect("request");
        status_json(resp).await
    }

    /// POST with the admin API key.
    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        self.admin_send(reqwest::Method::POST, path, body).await
    }

    /// PUT with the admin API key.
    pub async fn admin_put(&self, path: &str, body: Value) -> (u16, Value) {
        self.admin_send(reqwest::Method::PUT, path, body).await
    }

    /// Declares a channel with a tier.
    pub async fn declare(&self, name: &str, tier: &str) {
        let (status, body) = self
            .admin_put(&format!("/api/channels/{name}"), json!({"tier": tier}))
            .await;
        assert!(
            status == 201 || status == 200,
            "declare {name}: {status} {body}"
        );
    }

    /// Pushes to a channel and returns the reply.
    pub async fn push_channel(&self, channel: &str, body: Value) -> Value {
        let (status, reply) = self
            .admin_post(&format!("/api/push/channels/{channel}"), body)
            .await;
        assert_eq!(status, 200, "push to {channel}: {reply}");
        reply
    }

    /// Connects a socket as `sub` with `role` (guest: no token), waiting for `welcome`.
    pub async fn ws_as(&self, sub: &str, role: Role) -> WsClient {
        let url = match role {
            Role::Guest => self.ws_base.clone(),
            _ => format!("{}?access_token={}", self.ws_base, self.token(sub, role)),
        };
        WsClient::connect(&url).await
    }

    /// Connects a socket with `token`, waiting for `welcome`.
    pub async fn ws_token(&self, token: &str) -> WsClient {
        WsClient::connect(&format!("{}?access_token={token}", self.ws_base)).await
    }

    /// Reads `/metrics` and returns the value of one sample line.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("metric {sample} missing in:\n{text}"))
    }

    /// Polls until `cond` holds, failing after [`WAIT`].
    pub async fn wait_for<F, Fut>(&self, what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !cond().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// Splits a response into status and JSON body (Null when not JSON).
pub async fn status_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A WebSocket test client.
pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub welcome: Value,
    next_id: u64,
    /// Frames read while waiting for something else, in arrival order.
    backlog: std::collections::VecDeque<Value>,
}

/// The outcome of a refused WebSocket upgrade.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl WsClient {
    /// Connects and reads `welcome`.
    pub async fn connect(url: &str) -> WsClient {
        let req = url.into_client_request().expect("request");
        Self::connect_request(req).await.expect("ws connects")
    }

    /// Connects with an explicit request (headers), returning the refusal on failure.
    pub async fn connect_request(
        req: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<WsClient, Refused> {
        match connect_async(req).await {
            Ok((ws, _)) => {
                let mut c = WsClient {
                    ws,
                    welcome: Value::Null,
                    next_id: 1,
                    backlog: Default::default(),
                };
                let welcome = c.next_json().await;
                assert_eq!(welcome["type"], "welcome", "first frame: {welcome}");
                c.welcome = welcome;
                Ok(c)
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err(Refused { status, body })
            }
            Err(e) => panic!("ws connect failed: {e}"),
        }
    }

    /// Connects over a socket whose kernel receive buffer is `bytes` (set before connect,
    /// so the advertised window stays small): a client that stops reading then backs up
    /// into the server after a few kilobytes instead of megabytes.
    pub async fn connect_small_buffer(url: &str, bytes: u32) -> WsClient {
        let req = url.into_client_request().expect("request");
        let host = req.uri().authority().expect("authority").to_string();
        let addr: std::net::SocketAddr = host.parse().expect("numeric address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
            .await
            .expect("handshake");
        let mut c = WsClient {
            ws,
            welcome: Value::Null,
            next_id: 1,
            backlog: Default::default(),
        };
        let welcome = c.next_json().await;
        assert_eq!(welcome["type"], "welcome", "first frame: {welcome}");
        c.welcome = welcome;
        c
    }

    /// Tries to connect with a bearer header and/or query token.
    pub async fn try_connect(
        ws_base: &str,
        header: Option<&str>,
        query: Option<&str>,
    ) -> Result<WsClient, Refused> {
        let url = match query {
            Some(q) => format!("{ws_base}?access_token={q}"),
            None => ws_base.to_string(),
        };
        let mut req = url.into_client_request().expect("request");
        if let Some(h) = header {
            req.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {h}")).expect("header"),
            );
        }
        Self::connect_request(req).await
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Reads the next JSON object, expanding batched arrays; fails after [`WAIT`].
    pub async fn next_json(&mut self) -> Value {
        if let Some(v) = self.backlog.pop_front() {
            return v;
        }
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("socket closed while waiting for a frame")
                .expect("socket error while waiting for a frame");
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).expect("server sent JSON");
                    match v {
                        Value::Array(items) => {
                            self.backlog.extend(items);
                            if let Some(v) = self.backlog.pop_front() {
                                return v;
                            }
                        }
                        v => return v,
                    }
                }
                Message::Close(f) => panic!("closed while waiting for a frame: {f:?}"),
                _ => {}
            }
        }
    }

    /// Sends an op with a fresh id and returns its reply (events read meanwhile are kept).
    pub async fn request(&mut self, mut op: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        op["id"] = json!(id);
        self.send(op).await;
        let mut skipped = Vec::new();
        let reply = loop {
            let v = self.next_json().await;
            if v["type"] == "reply" && v["id"] == json!(id) {
                break v;
            }
            skipped.push(v);
        };
        for v in skipped.into_iter().rev() {
            self.backlog.push_front(v);
        }
        reply
    }

    /// Subscribes and returns the reply.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.request(json!({"op": "subscribe", "channel": channel}))
            .await
    }

    /// Reads frames until one satisfies `pred`, returning the frames before it and it.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let mut before = Vec::new();
        loop {
            let v = self.next_json().await;
            if pred(&v) {
                return (before, v);
            }
            before.push(v);
        }
    }

    /// Waits for the server's close frame and returns its code.
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for close");
            match msg {
                Some(Ok(Message::Close(Some(f)))) => return f.code.into(),
                Some(Ok(Message::Close(None))) => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error before close frame: {e}"),
                None => panic!("socket ended without a close frame"),
            }
        }
    }
}

/// The `tag` of a push event, if it is one.
pub fn tag_of(v: &Value) -> Option<&str> {
    v["data"]["payload"]["tag"].as_str()
}
