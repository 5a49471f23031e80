//! `danmaku bench`: our own load generator, like `nats bench` or `redis-benchmark`.
//!
//! It drives a running server over real sockets and is correct before it is fast: every
//! comment carries its poster, sequence number and send time in its text, and every
//! viewer keeps a bitmap per poster, so a delivery that never arrives or arrives twice is
//! counted and reported, never hidden.

use std::{
    collections::HashMap,
    io::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::Message};

use crate::{
    auth::{Signer, now_millis},
    model::Role,
};

/// Which scenario to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// V viewers of one video, P posters at a total rate R.
    Fanout,
    /// V viewers spread over K videos, each with its own posters.
    Rooms,
    /// N subscribed sockets held open; RSS per connection.
    Idle,
    /// Maximum acknowledged comments/s over REST with C concurrent posters.
    Ingest,
    /// Half members, half free viewers, half the comments members-only.
    Mixed,
}

/// How posters send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Ws,
    Rest,
}

/// Flags of `danmaku bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Base URL posters use, when it differs from `--url` (viewers on one cluster node,
    /// posters on another, to measure cross-node delivery).
    #[arg(long)]
    pub post_url: Option<String>,
    /// Viewers (fanout, rooms, mixed) or sockets (idle).
    #[arg(long, short = 'v', default_value_t = 1000)]
    pub viewers: usize,
    /// Posters in total (fanout, mixed) or per room (rooms).
    #[arg(long, short = 'p', default_value_t = 4)]
    pub posters: usize,
    /// Total comments per second across all posters (per room for `rooms`).
    #[arg(long, short = 'r', default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of load.
    #[arg(long, short = 'd', default_value_t = 10)]
    pub duration: u64,
    /// Rooms (videos) for `rooms`.
    #[arg(long, short = 'k', default_value_t = 10)]
    pub rooms: usize,
    /// Concurrent posters for `ingest`.
    #[arg(long, short = 'c', default_value_t = 32)]
    pub concurrency: usize,
    /// Posting transport.
    #[arg(long, value_enum, default_value_t = Via::Ws)]
    pub via: Via,
    /// Server process id, to read its RSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// One JWT per line, used instead of minting (viewers cycle through them).
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Write a machine-readable result here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Extra viewers that subscribe and then never read (fanout, rooms, mixed). The
    /// server must close them as slow while every other viewer still gets everything;
    /// the report counts the slow closes the server made meanwhile.
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// Video id prefix, so runs do not mix.
    #[arg(long, default_value = "bench")]
    pub video: String,
}

/// A log-bucketed latency histogram (1% resolution, fixed memory).
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; 2200],
            count: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    /// Records one latency in microseconds.
    pub fn record(&mut self, us: u64) {
        let i = ((us.max(1) as f64).ln() * 100.0) as usize;
        let i = i.min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Adds another histogram.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
        self.count += o.count;
        self.max_us = self.max_us.max(o.max_us);
    }

    /// The latency at quantile `q` (0..1), in microseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return ((i as f64 + 0.5) / 100.0).exp() as u64;
            }
        }
        self.max_us
    }
}

/// What one role group of viewers saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoleReport {
    pub viewers: u64,
    pub received: u64,
    pub expected: u64,
    pub missed: u64,
    pub duplicates: u64,
    /// Members-only comments received by a role that must never see them.
    pub leaks: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(skip)]
    hist: Histogram,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub viewers: usize,
    pub posters: usize,
    pub duration_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    pub acked_per_s: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub roles: HashMap<String, RoleReport>,
    /// Per-room p99 latency in ms (rooms scenario).
    pub room_p99_ms: Vec<f64>,
    pub rss_before_kb: Option<u64>,
    pub rss_after_kb: Option<u64>,
    pub rss_per_conn_bytes: Option<f64>,
    /// Viewers that never read (`--stalled`).
    pub stalled: usize,
    /// Sockets the server closed as slow during the run (from its `/metrics`).
    pub slow_disconnects: Option<u64>,
    pub ok: bool,
}

/// Reads `VmRSS` of a process in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Raises this process's open-file limit to its hard limit (sockets are files).
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            return lim.rlim_cur;
        }
    }
    0
}

/// Microseconds since the epoch.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Where viewer tokens come from.
enum Tokens {
    Mint(Box<Signer>),
    File(Vec<(Role, String)>),
}

impl Tokens {
    /// A token for viewer `i` of `role` (None: guest).
    fn viewer(&self, i: usize, role: Role) -> Option<String> {
        match self {
            Tokens::Mint(s) => (role != Role::Guest).then(|| {
                s.mint(
                    &format!("bench-viewer-{i}"),
                    role,
                    None,
                    Duration::from_secs(3600),
                )
                .unwrap_or_default()
            }),
            Tokens::File(list) => list
                .iter()
                .filter(|(r, _)| *r == role)
                .nth(i % list.iter().filter(|(r, _)| *r == role).count().max(1))
                .map(|(_, t)| t.clone()),
        }
    }

    /// An admin token for poster `i` (admins skip cooldowns).
    fn poster(&self, i: usize) -> Result<String, String> {
        match self {
            Tokens::Mint(s) => s.mint(
                &format!("bench-poster-{i}"),
                Role::Admin,
                None,
                Duration::from_secs(3600),
            ),
            Tokens::File(list) => list
                .iter()
                .filter(|(r, _)| *r == Role::Admin)
                .nth(
                    i % list
                        .iter()
                        .filter(|(r, _)| *r == Role::Admin)
                        .count()
                        .max(1),
                )
                .map(|(_, t)| t.clone())
                .ok_or_else(|| "the token file has no admin token for posters".into()),
        }
    }
}

/// Reads a token file: one JWT per line; the role is read from the (unverified) claims.
fn read_token_file(path: &std::path::Path) -> Result<Vec<(Role, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let claims: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(line)
            .map(|d| d.claims)
            .map_err(|e| format!("bad token in {}: {e}", path.display()))?;
        let role = claims["role"]
            .as_str()
            .and_then(Role::parse_token_role)
            .ok_or("a token has no valid role")?;
        out.push((role, line.to_string()));
    }
    Ok(out)
}

/// Per-viewer receive state: which (poster, seq) arrived.
struct Seen {
    bits: Vec<Vec<u64>>,
}

impl Seen {
    fn new(posters: usize) -> Self {
        Seen {
            bits: vec![Vec::new(); posters],
        }
    }

    /// Marks one; returns false if it was already seen.
    fn mark(&mut self, poster: usize, seq: u64) -> bool {
        let Some(row) = self.bits.get_mut(poster) else {
            return true;
        };
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if row.len() <= w {
            row.resize(w + 1, 0);
        }
        let fresh = row[w] & (1 << b) == 0;
        row[w] |= 1 << b;
        fresh
    }
}

/// Shared live counters for the progress line.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
}

/// The end-of-run signal: a flag for polling loops and a notifier for viewers, which
/// wait on it beside their socket instead of arming a timer per frame.
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Stop {
    /// Ends the run.
    fn stop(&self) {
        self.flag.store(true, Relaxed);
        self.notify.notify_waiters();
    }

    /// Whether the run has ended.
    fn is_stopped(&self) -> bool {
        self.flag.load(Relaxed)
    }
}

/// A viewer's final tally.
struct ViewerResult {
    role: Role,
    room: usize,
    received: u64,
    duplicates: u64,
    leaks: u64,
    unique_by_poster: Vec<u64>,
    unique_members_only: u64,
    hist: Histogram,
}

/// Finds every bench comment in a frame (one event or a batched array): each is the
/// value of a `"text":"b ..."` field. Bench texts are plain ASCII, so no unescaping.
pub fn scan_texts(frame: &str) -> impl Iterator<Item = (usize, u64, u64, bool)> + '_ {
    const KEY: &str = "\"text\":\"";
    let mut rest = frame;
    std::iter::from_fn(move || {
        loop {
            let at = rest.find(KEY)?;
            rest = &rest[at + KEY.len()..];
            let end = rest.find('"')?;
            let text = &rest[..end];
            rest = &rest[end..];
            if let Some(parsed) = parse_text(text) {
                return Some(parsed);
            }
        }
    })
}

/// Parses a bench comment text: `b <poster> <seq> <send_us> <members:0|1>`.
fn parse_text(text: &str) -> Option<(usize, u64, u64, bool)> {
    let mut it = text.split(' ');
    if it.next()? != "b" {
        return None;
    }
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()? == "1",
    ))
}

/// A client socket as both viewer kinds hold it.
type ClientWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Subscribes to `channel` and waits for the server's reply.
async fn subscribe(ws: &mut ClientWs, channel: &str) -> Result<(), String> {
    ws.send(Message::text(
        json!({"op": "subscribe", "id": 1, "channel": channel}).to_string(),
    ))
    .await
    .map_err(|e| format!("viewer subscribe: {e}"))?;
    // Wait for the subscribe reply before declaring readiness.
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| "subscribe reply timed out".to_string())?
            .ok_or("closed before subscribe reply")?
            .map_err(|e| e.to_string())?;
        if let Message::Text(t) = msg {
            // The reply may share a batched frame (a JSON array) with events.
            let frames = match serde_json::from_str::<Value>(&t).unwrap_or_default() {
                Value::Array(items) => items,
                v => vec![v],
            };
            if let Some(v) = frames.iter().find(|v| v["type"] == "reply") {
                if v["ok"] != true {
                    return Err(format!("subscribe refused: {v}"));
                }
                break;
            }
        }
    }
    Ok(())
}

/// Connects a viewer that reads its subscribe reply and then never reads again. Its
/// receive buffer is small, so the server's outbox (not the kernel) fills up.
async fn stalled_viewer(
    ws_url: &str,
    token: Option<String>,
    channel: &str,
) -> Result<ClientWs, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = match &token {
        Some(t) => format!("{ws_url}?access_token={t}"),
        None => ws_url.to_string(),
    };
    let req = url.into_client_request().map_err(|e| e.to_string())?;
    let host = req.uri().authority().ok_or("no host in --url")?.to_string();
    let addr = tokio::net::lookup_host(host.as_str())
        .await
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    socket
        .set_recv_buffer_size(4096)
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let (mut ws, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .map_err(|e| format!("stalled viewer connect: {e}"))?;
    subscribe(&mut ws, channel).await?;
    Ok(ws)
}

/// Reads one sample of the server's `/metrics`.
async fn server_metric(http: &reqwest::Client, base: &str, sample: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
}

/// Connects a viewer, subscribes to its room, and signals readiness.
#[allow(clippy::too_many_arguments)]
async fn viewer(
    ws_url: String,
    token: Option<String>,
    role: Role,
    room: usize,
    channel: String,
    posters: usize,
    ready: Arc<tokio::sync::Barrier>,
    stop: Arc<Stop>,
    live: Arc<Live>,
    connect_permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<ViewerResult, String> {
    let url = match &token {
        Some(t) => format!("{ws_url}?access_token={t}"),
        None => ws_url,
    };
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(30), connect_async(url.as_str()))
        .await
        .map_err(|_| "viewer connect timed out".to_string())?
        .map_err(|e| format!("viewer connect: {e}"))?;
    subscribe(&mut ws, &channel).await?;
    // Subscribed: let the next viewer connect.
    drop(connect_permit);
    ready.wait().await;
    let mut res = ViewerResult {
        role,
        room,
        received: 0,
        duplicates: 0,
        leaks: 0,
        unique_by_poster: vec![0; posters],
        unique_members_only: 0,
        hist: Histogram::default(),
    };
    let mut seen = Seen::new(posters);
    // The hot path of the tool: scan frames for comment texts instead of building a
    // JSON tree per message, so the load generator is not the bottleneck.
    let mut handle = |frame: &str, res: &mut ViewerResult| {
        let mut n = 0;
        for (poster, seq, sent, members) in scan_texts(frame) {
            n += 1;
            res.received += 1;
            if members && !role.is_member_or_admin() {
                res.leaks += 1;
            }
            if seen.mark(poster, seq) {
                if let Some(c) = res.unique_by_poster.get_mut(poster) {
                    *c += 1;
                }
                if members {
                    res.unique_members_only += 1;
                }
                res.hist.record(now_us().saturating_sub(sent));
            } else {
                res.duplicates += 1;
            }
        }
        if n > 0 {
            live.delivered.fetch_add(n, Relaxed);
        }
    };
    let stopped = stop.notify.notified();
    tokio::pin!(stopped);
    stopped.as_mut().enable();
    while !stop.is_stopped() {
        tokio::select! {
            _ = &mut stopped => break,
            msg = ws.next() => match msg {
                None | Some(Err(_)) => break,
                Some(Ok(Message::Text(t))) => handle(&t, &mut res),
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = ws.close(None).await;
    Ok(res)
}

/// What posters produced.
#[derive(Default)]
struct PostTally {
    /// Comments acknowledged per poster index.
    acked_by_poster: Vec<u64>,
    /// Members-only comments acknowledged, per room.
    members_only_by_room: Vec<u64>,
    ack: Histogram,
}

/// Runs one poster for `dur` at `rate` per second.
#[allow(clippy::too_many_arguments)]
async fn poster(
    base: String,
    ws_url: String,
    token: String,
    index: usize,
    video: String,
    rate: f64,
    dur: Duration,
    via: Via,
    members_every: Option<u64>,
    http: reqwest::Client,
    live: Arc<Live>,
    tally: Arc<Mutex<PostTally>>,
) -> Result<(), String> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + dur;
    let members_of = move |seq: u64| members_every.is_some_and(|n| seq.is_multiple_of(n));
    let body = |seq: u64| {
        let members = members_of(seq);
        json!({
            "text": format!("b {index} {seq} {} {}", now_us(), members as u8),
            "time": (seq % 600) as f64,
            "audience": if members { "members" } else { "everyone" },
        })
    };
    let record = move |seq: u64, started: Instant| {
        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
        t.acked_by_poster[index] += 1;
        // Members-only comments exist only in the single-room `mixed` scenario.
        if members_of(seq)
            && let Some(c) = t.members_only_by_room.get_mut(0)
        {
            *c += 1;
        }
        t.ack.record(started.elapsed().as_micros() as u64);
    };
    match via {
        Via::Rest => {
            let url = format!("{base}/api/videos/{video}/danmaku");
            let mut inflight = tokio::task::JoinSet::new();
            let mut seq = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let req = http.post(&url).bearer_auth(&token).json(&body(seq));
                live.sent.fetch_add(1, Relaxed);
                let started = Instant::now();
                inflight.spawn(async move { (seq, started, req.send().await) });
                seq += 1;
                while let Some(done) = inflight.try_join_next() {
                    handle_rest(done, &live, &record);
                }
            }
            while let Some(done) = inflight.join_next().await {
                handle_rest(done, &live, &record);
            }
        }
        Via::Ws => {
            let (ws, _) = connect_async(format!("{ws_url}?access_token={token}").as_str())
                .await
                .map_err(|e| format!("poster connect: {e}"))?;
            let (mut tx, mut rx) = ws.split();
            let pending: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
            let sending_done = Arc::new(AtomicBool::new(false));
            let reader = {
                let pending = pending.clone();
                let sending_done = sending_done.clone();
                let live = live.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    while let Some(Ok(msg)) = rx.next().await {
                        let Message::Text(t) = msg else { continue };
                        // Replies may arrive batched in a JSON array with other frames.
                        let frames = match serde_json::from_str::<Value>(&t) {
                            Ok(Value::Array(items)) => items,
                            Ok(v) => vec![v],
                            Err(_) => continue,
                        };
                        for v in frames {
                            if v["type"] != "reply" {
                                continue;
                            }
                            let Some(seq) = v["id"].as_u64() else {
                                continue;
                            };
                            let started = pending
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&seq);
                            if v["ok"] == true {
                                live.acked.fetch_add(1, Relaxed);
                                if let Some(s) = started {
                                    record(seq, s);
                                }
                            } else {
                                live.errors.fetch_add(1, Relaxed);
                            }
                        }
                        if sending_done.load(Relaxed)
                            && pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
                        {
                            break;
                        }
                    }
                })
            };
            let mut seq = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let mut op = body(seq);
                op["op"] = "danmaku".into();
                op["id"] = seq.into();
                op["video"] = video.clone().into();
                pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(seq, Instant::now());
                live.sent.fetch_add(1, Relaxed);
                if tx.send(Message::text(op.to_string())).await.is_err() {
                    live.errors.fetch_add(1, Relaxed);
                    break;
                }
                seq += 1;
            }
            sending_done.store(true, Relaxed);
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
            let _ = tx.close().await;
        }
    }
    Ok(())
}

/// Tallies one finished REST post.
fn handle_rest(
    done: Result<(u64, Instant, reqwest::Result<reqwest::Response>), tokio::task::JoinError>,
    live: &Live,
    record: &impl Fn(u64, Instant),
) {
    match done {
        Ok((seq, started, Ok(resp))) if resp.status().as_u16() == 201 => {
            live.acked.fetch_add(1, Relaxed);
            record(seq, started);
        }
        _ => {
            live.errors.fetch_add(1, Relaxed);
        }
    }
}

/// Prints a progress line until `stop`.
fn progress(live: Arc<Live>, stop: Arc<Stop>, total: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last = 0;
        while !stop.is_stopped() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let d = live.delivered.load(Relaxed);
            let frac = (start.elapsed().as_secs_f64() / total.as_secs_f64()).min(1.0);
            let bar = "#".repeat((frac * 30.0) as usize);
            eprint!(
                "\r[{bar:<30}] {:>4.0}s sent {} acked {} err {} delivered {} ({}/s)   ",
                start.elapsed().as_secs_f64(),
                live.sent.load(Relaxed),
                live.acked.load(Relaxed),
                live.errors.load(Relaxed),
                d,
                d - last
            );
            last = d;
            let _ = std::io::stderr().flush();
        }
        eprintln!();
    })
}

/// The role of viewer `i` in a scenario.
fn role_of(s: Scenario, i: usize) -> Role {
    match s {
        Scenario::Mixed => {
            if i.is_multiple_of(2) {
                Role::Member
            } else {
                Role::Free
            }
        }
        _ => [Role::Free, Role::Member, Role::Guest, Role::Admin][i % 4],
    }
}

/// Runs a scenario and prints (and optionally writes) its report.
pub async fn run(args: BenchArgs, signer: Option<Signer>) -> Result<Report, String> {
    raise_nofile_limit();
    let tokens = match (&args.token_file, signer) {
        (Some(p), _) => Tokens::File(read_token_file(p)?),
        (None, Some(s)) => Tokens::Mint(Box::new(s)),
        (None, None) => {
            return Err("no signing key: pass --token-file or the server's key config".into());
        }
    };
    let base = args.url.trim_end_matches('/').to_string();
    let ws_of = |base: &str| {
        format!(
            "{}/ws",
            base.replacen("http://", "ws://", 1)
                .replacen("https://", "wss://", 1)
        )
    };
    let ws_url = ws_of(&base);
    let post_base = args
        .post_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| base.clone());
    let post_ws_url = ws_of(&post_base);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(args.posters) * 2)
        .build()
        .map_err(|e| e.to_string())?;
    let rss_before = args.server_pid.and_then(rss_kb);
    let live = Arc::new(Live::default());
    let stop = Arc::new(Stop::default());
    let dur = Duration::from_secs(args.duration);

    let (rooms, viewers, posters_total) = match args.scenario {
        Scenario::Rooms => (
            args.rooms.max(1),
            args.viewers,
            args.posters * args.rooms.max(1),
        ),
        Scenario::Ingest => (1, 0, args.concurrency),
        Scenario::Idle => (1, args.viewers, 0),
        _ => (1, args.viewers, args.posters),
    };
    let room_video = |r: usize| format!("{}-{r}", args.video);

    // Connect and subscribe every viewer.
    let ready = Arc::new(tokio::sync::Barrier::new(viewers + 1));
    let mut vtasks = Vec::with_capacity(viewers);
    let connect_gate = Arc::new(tokio::sync::Semaphore::new(256));
    eprintln!("connecting {viewers} viewers...");
    for i in 0..viewers {
        let role = role_of(args.scenario, i);
        let token = tokens.viewer(i, role);
        let room = i % rooms;
        let channel = format!("video:{}", room_video(room));
        let (ws_url, ready, stop, live, gate) = (
            ws_url.clone(),
            ready.clone(),
            stop.clone(),
            live.clone(),
            connect_gate.clone(),
        );
        vtasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            let r = viewer(
                ws_url,
                token,
                role,
                room,
                channel,
                posters_total,
                ready.clone(),
                stop,
                live,
                permit,
            )
            .await;
            if r.is_err() {
                // Never leave the barrier waiting on a viewer that failed.
                ready.wait().await;
            }
            r
        }));
    }
    ready.wait().await;
    eprintln!("{viewers} viewers subscribed");
    let rss_ready = args.server_pid.and_then(rss_kb);
    let slow_before = if args.stalled > 0 {
        server_metric(&http, &base, "danmaku_slow_disconnects_total").await
    } else {
        None
    };
    let mut stalled = Vec::with_capacity(args.stalled);
    for i in 0..args.stalled {
        let token = tokens.viewer(viewers + i, Role::Free);
        let channel = format!("video:{}", room_video(i % rooms));
        stalled.push(stalled_viewer(&ws_url, token, &channel).await?);
    }
    if args.stalled > 0 {
        eprintln!("{} stalled viewers subscribed", args.stalled);
    }

    let tally = Arc::new(Mutex::new(PostTally {
        acked_by_poster: vec![0; posters_total],
        members_only_by_room: vec![0; rooms],
        ack: Histogram::default(),
    }));
    let bar = progress(live.clone(), stop.clone(), dur);
    let started = Instant::now();
    let mut ptasks = Vec::new();
    match args.scenario {
        Scenario::Idle => tokio::time::sleep(dur).await,
        Scenario::Ingest => {
            for i in 0..args.concurrency {
                let token = tokens.poster(i)?;
                let (http, live, tally) = (http.clone(), live.clone(), tally.clone());
                let url = format!("{post_base}/api/videos/{}/danmaku", room_video(0));
                ptasks.push(tokio::spawn(async move {
                    let end = Instant::now() + dur;
                    let mut seq = 0u64;
                    while Instant::now() < end {
                        let body = json!({"text": format!("b {i} {seq} {} 0", now_us()), "time": (seq % 600) as f64});
                        live.sent.fetch_add(1, Relaxed);
                        let t0 = Instant::now();
                        match http.post(&url).bearer_auth(&token).json(&body).send().await {
                            Ok(r) if r.status().as_u16() == 201 => {
                                live.acked.fetch_add(1, Relaxed);
                                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                                t.acked_by_poster[i] += 1;
                                t.ack.record(t0.elapsed().as_micros() as u64);
                            }
                            _ => {
                                live.errors.fetch_add(1, Relaxed);
                            }
                        }
                        seq += 1;
                    }
                    Ok(())
                }));
            }
        }
        _ => {
            let per_poster = match args.scenario {
                Scenario::Rooms => args.rate / args.posters.max(1) as f64,
                _ => args.rate / args.posters.max(1) as f64,
            };
            let members_every = (args.scenario == Scenario::Mixed).then_some(2);
            for p in 0..posters_total {
                let room = if args.scenario == Scenario::Rooms {
                    p / args.posters.max(1)
                } else {
                    0
                };
                ptasks.push(tokio::spawn(poster(
                    post_base.clone(),
                    post_ws_url.clone(),
                    tokens.poster(p)?,
                    p,
                    room_video(room),
                    per_poster,
                    dur,
                    args.via,
                    members_every,
                    http.clone(),
                    live.clone(),
                    tally.clone(),
                )));
            }
        }
    }
    let mut poster_errors = Vec::new();
    for t in ptasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => poster_errors.push(e),
            Err(e) => poster_errors.push(e.to_string()),
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    // Drain: wait until deliveries stop growing (at most 10 s).
    let mut last = live.delivered.load(Relaxed);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = live.delivered.load(Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let rss_after = args.server_pid.and_then(rss_kb);
    let slow_disconnects = match slow_before {
        Some(before) => server_metric(&http, &base, "danmaku_slow_disconnects_total")
            .await
            .map(|after| (after - before).max(0.0) as u64),
        None => None,
    };
    drop(stalled);
    stop.stop();
    let _ = bar.await;

    let tally = Arc::try_unwrap(tally)
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default();
    let poster_room = |p: usize| {
        if args.scenario == Scenario::Rooms {
            p / args.posters.max(1)
        } else {
            0
        }
    };
    let mut roles: HashMap<String, RoleReport> = HashMap::new();
    let mut room_hist = vec![Histogram::default(); rooms];
    let mut viewer_errors = 0;
    for t in vtasks {
        let Ok(Ok(v)) = t.await else {
            viewer_errors += 1;
            continue;
        };
        let r = roles.entry(v.role.to_string()).or_default();
        r.viewers += 1;
        r.received += v.received;
        r.duplicates += v.duplicates;
        r.leaks += v.leaks;
        let expected: u64 = (0..posters_total)
            .filter(|p| poster_room(*p) == v.room)
            .map(|p| tally.acked_by_poster.get(p).copied().unwrap_or(0))
            .sum::<u64>()
            - if v.role.is_member_or_admin() {
                0
            } else {
                tally.members_only_by_room.get(v.room).copied().unwrap_or(0)
            };
        let unique: u64 = v.unique_by_poster.iter().sum::<u64>()
            - if v.role.is_member_or_admin() {
                0
            } else {
                v.unique_members_only
            };
        r.expected += expected;
        r.missed += expected.saturating_sub(unique);
        r.hist.merge(&v.hist);
        room_hist[v.room].merge(&v.hist);
    }
    let ms = |us: u64| us as f64 / 1000.0;
    for r in roles.values_mut() {
        r.p50_ms = ms(r.hist.quantile(0.5));
        r.p90_ms = ms(r.hist.quantile(0.9));
        r.p99_ms = ms(r.hist.quantile(0.99));
        r.max_ms = ms(r.hist.max_us);
    }
    let deliveries: u64 = roles.values().map(|r| r.received).sum();
    let acked = live.acked.load(Relaxed);
    let rss_per_conn = match (rss_before, rss_ready) {
        (Some(b), Some(a)) if viewers > 0 => {
            Some((a.saturating_sub(b) as f64 * 1024.0) / viewers as f64)
        }
        _ => None,
    };
    let ok = viewer_errors == 0
        && poster_errors.is_empty()
        && live.errors.load(Relaxed) == 0
        && acked == live.sent.load(Relaxed)
        && roles
            .values()
            .all(|r| r.duplicates == 0 && r.leaks == 0 && r.missed == 0)
        && (args.stalled == 0 || slow_disconnects.unwrap_or(0) >= args.stalled as u64);
    let report = Report {
        scenario: args.scenario,
        viewers,
        posters: posters_total,
        duration_s: load_secs,
        sent: live.sent.load(Relaxed),
        acked,
        send_errors: live.errors.load(Relaxed),
        deliveries,
        deliveries_per_s: deliveries as f64 / load_secs.max(0.001),
        acked_per_s: acked as f64 / load_secs.max(0.001),
        ack_p50_ms: ms(tally.ack.quantile(0.5)),
        ack_p99_ms: ms(tally.ack.quantile(0.99)),
        roles,
        room_p99_ms: if args.scenario == Scenario::Rooms {
            room_hist.iter().map(|h| ms(h.quantile(0.99))).collect()
        } else {
            Vec::new()
        },
        rss_before_kb: rss_before,
        rss_after_kb: rss_after,
        rss_per_conn_bytes: rss_per_conn,
        stalled: args.stalled,
        slow_disconnects,
        ok,
    };
    print_report(&report, viewer_errors, &poster_errors);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let _ = now_millis();
    Ok(report)
}

/// Prints the summary table.
fn print_report(r: &Report, viewer_errors: usize, poster_errors: &[String]) {
    println!(
        "\nscenario {:?}: {} viewers, {} posters, {:.1} s",
        r.scenario, r.viewers, r.posters, r.duration_s
    );
    println!(
        "sent {}  acked {} ({:.0}/s, p50 {:.2} ms, p99 {:.2} ms)  errors {}",
        r.sent, r.acked, r.acked_per_s, r.ack_p50_ms, r.ack_p99_ms, r.send_errors
    );
    if r.viewers > 0 && r.scenario != Scenario::Idle {
        println!("deliveries {} ({:.0}/s)", r.deliveries, r.deliveries_per_s);
        println!(
            "{:<8} {:>8} {:>10} {:>10} {:>8} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "role",
            "viewers",
            "received",
            "expected",
            "missed",
            "dups",
            "leaks",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        let mut names: Vec<_> = r.roles.keys().collect();
        names.sort();
        for name in names {
            let x = &r.roles[name];
            println!(
                "{:<8} {:>8} {:>10} {:>10} {:>8} {:>6} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name,
                x.viewers,
                x.received,
                x.expected,
                x.missed,
                x.duplicates,
                x.leaks,
                x.p50_ms,
                x.p90_ms,
                x.p99_ms,
                x.max_ms
            );
        }
    }
    if !r.room_p99_ms.is_empty() {
        let mut v = r.room_p99_ms.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "per-room p99: median {:.2} ms, worst {:.2} ms over {} rooms",
            v[v.len() / 2],
            v[v.len() - 1],
            v.len()
        );
    }
    if let (Some(b), Some(a)) = (r.rss_before_kb, r.rss_after_kb) {
        println!("server RSS: before {b} KiB, after {a} KiB");
    }
    if let Some(p) = r.rss_per_conn_bytes {
        println!("server RSS per connection: {:.0} bytes", p);
    }
    if r.stalled > 0 {
        println!(
            "stalled viewers: {}, closed by the server as slow: {}",
            r.stalled,
            r.slow_disconnects
                .map_or_else(|| "unknown (no /metrics)".into(), |n| n.to_string())
        );
    }
    if viewer_errors > 0 {
        println!("viewer failures: {viewer_errors}");
    }
    for e in poster_errors.iter().take(5) {
        println!("poster failure: {e}");
    }
    println!(
        "result: {}",
        if r.ok {
            "OK (no missed, duplicate or leaked deliveries)"
        } else {
            "PROBLEMS (see above)"
        }
    );
}
