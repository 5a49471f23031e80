//! `danmaku bench`: our own load generator, like `nats bench` or `redis-benchmark`.
//!
//! It drives a running server over real sockets and is correct before it is fast: every
//! comment carries its poster, sequence number and send time in its text, and every
//! viewer keeps a bitmap per poster, so a delivery that never arrives or arrives twice is
//! counted and reported, never hidden.
//!
//! - this file: the flags, the scenarios and the run that ties them together;
//! - [`client`]: the lean WebSocket client viewers use (permessage-deflate, wire bytes);
//! - [`mod@viewer`]: viewers and their checks; [`poster`]: posters and tokens;
//! - [`resume`]: subscribing, resuming with `since`, backoff, history refetch;
//! - [`nodes`]: several nodes (`--url a,b,c`) and each node's CPU and RSS;
//! - `tally`: viewers' results folded; [`report`]: histograms, the report, its table.

pub mod client;
pub mod nodes;
pub mod poster;
pub mod report;
pub mod resume;
mod tally;
pub mod viewer;

use std::{
    io::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use clap::{Args, ValueEnum};
use serde::Serialize;

pub use self::{
    nodes::rss_kb,
    report::{Histogram, Latency, Refusals, Report, RoleReport, Survival, raise_nofile_limit},
};
use self::{
    nodes::{Probe, parse_nodes},
    poster::{PostTally, Tokens, read_token_file},
    report::print_report,
    tally::fold,
    viewer::{Survive, ViewerSpec, stalled_viewer, viewer},
};
use crate::{auth::Signer, model::Role};

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
    /// Base URL of the server; several nodes of a cluster as `--url a,b,c` or `--url`
    /// repeated: viewers are spread over them round-robin, REST posts go round-robin.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    pub url: Vec<String>,
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
    /// Server process id, to read its CPU and RSS from /proc; one per `--url` node, in
    /// the same order (repeated or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Viewers survive faults: on a close or a dead socket they reconnect to the next
    /// node with backoff, resume with `since`, refetch history when the server could
    /// not replay; the report counts reconnects, gaps, duplicates and missing.
    #[arg(long)]
    pub survive_faults: bool,
    /// `--survive-faults`: a socket with no byte for this long is dead (over the
    /// server's 25 s heartbeat by default).
    #[arg(long, default_value_t = 30)]
    pub dead_after_s: u64,
    /// Seconds at most to wait after the load for deliveries (and reconnects) to end.
    #[arg(long, default_value_t = 10)]
    pub drain_s: u64,
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
    /// Viewers offer permessage-deflate (the server compresses each batch once).
    #[arg(long)]
    pub compress: bool,
    /// `mixed`: one comment in this many is members-only (2: half; 5: 20%).
    #[arg(long, default_value_t = 2)]
    pub members_every: u64,
}

/// Microseconds since the epoch.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Shared live counters for the progress line.
#[derive(Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
    /// REST posts whose connection broke before an answer (their node died).
    pub lost: AtomicU64,
    pub delivered: AtomicU64,
    /// Posts refused during an outage (503 or no node reachable).
    pub refused: AtomicU64,
    /// Viewers reconnecting now (the drain waits for them).
    pub reconnecting: AtomicU64,
}

/// The end-of-run signal: a flag for polling loops and a notifier for viewers, which
/// wait on it beside their socket instead of arming a timer per frame.
#[derive(Default)]
pub struct Stop {
    flag: AtomicBool,
    pub notify: tokio::sync::Notify,
}

impl Stop {
    /// Ends the run.
    pub fn stop(&self) {
        self.flag.store(true, Relaxed);
        self.notify.notify_waiters();
    }

    /// Whether the run has ended.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Relaxed)
    }
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
                "\r[{bar:<30}] {:>4.0}s sent {} acked {} err {} refused {} delivered {} ({}/s) down {}   ",
                start.elapsed().as_secs_f64(),
                live.sent.load(Relaxed),
                live.acked.load(Relaxed),
                live.errors.load(Relaxed),
                live.refused.load(Relaxed),
                d,
                d - last,
                live.reconnecting.load(Relaxed)
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
    let nodes = parse_nodes(&args.url)?;
    let base = nodes[0].base.clone();
    let post_nodes = Arc::new(match &args.post_url {
        Some(u) => parse_nodes(std::slice::from_ref(u))?,
        None => nodes.clone(),
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(args.posters) * 2)
        .build()
        .map_err(|e| e.to_string())?;
    let pids: Vec<Option<u32>> = (0..nodes.len())
        .map(|i| args.server_pid.get(i).copied())
        .collect();
    let rss_before = pids[0].and_then(rss_kb);
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
    let survive = args.survive_faults.then(|| {
        Arc::new(Survive {
            dead_after: Duration::from_secs(args.dead_after_s.max(1)),
            bases: nodes.iter().map(|n| n.base.clone()).collect(),
            video: (0..rooms).map(room_video).collect(),
            http: http.clone(),
        })
    });

    // Connect and subscribe every viewer, round-robin over the nodes.
    let ready = Arc::new(tokio::sync::Barrier::new(viewers + 1));
    let mut vtasks = Vec::with_capacity(viewers);
    let mut per_node = vec![0usize; nodes.len()];
    let connect_gate = Arc::new(tokio::sync::Semaphore::new(256));
    eprintln!("connecting {viewers} viewers to {} node(s)...", nodes.len());
    for i in 0..viewers {
        let role = role_of(args.scenario, i);
        let token = tokens.viewer(i, role);
        let room = i % rooms;
        let node = i % nodes.len();
        per_node[node] += 1;
        let (ready, stop, live, gate) = (
            ready.clone(),
            stop.clone(),
            live.clone(),
            connect_gate.clone(),
        );
        let with_token = |ws: &str| match &token {
            Some(t) => format!("{ws}?access_token={t}"),
            None => ws.to_string(),
        };
        let spec = ViewerSpec {
            index: i,
            urls: Arc::new(nodes.iter().map(|n| with_token(&n.ws)).collect()),
            node,
            role,
            room,
            channel: format!("video:{}", room_video(room)),
            posters: posters_total,
            compress: args.compress,
            token,
            sees_all: args.scenario != Scenario::Mixed || role.is_member_or_admin(),
            survive: survive.clone(),
        };
        vtasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            let r = viewer(spec, ready.clone(), stop, live, permit).await;
            if r.is_err() {
                // Never leave the barrier waiting on a viewer that failed.
                ready.wait().await;
            }
            r
        }));
    }
    ready.wait().await;
    eprintln!("{viewers} viewers subscribed");
    let rss_ready = pids[0].and_then(rss_kb);
    let slow_before = if args.stalled > 0 {
        server_metric(&http, &base, "danmaku_slow_disconnects_total").await
    } else {
        None
    };
    let mut stalled = Vec::with_capacity(args.stalled);
    for i in 0..args.stalled {
        let token = tokens.viewer(viewers + i, Role::Free);
        let channel = format!("video:{}", room_video(i % rooms));
        let ws = &nodes[0].ws;
        let url = match &token {
            Some(t) => format!("{ws}?access_token={t}"),
            None => ws.clone(),
        };
        stalled.push(stalled_viewer(&url, &channel).await?);
    }
    if args.stalled > 0 {
        eprintln!("{} stalled viewers subscribed", args.stalled);
    }

    let tally = Arc::new(Mutex::new(PostTally {
        acked_by_poster: vec![0; posters_total],
        members_only_by_room: vec![0; rooms],
        ..PostTally::default()
    }));
    let probe = Probe::start(pids.clone(), stop.clone());
    let bar = progress(live.clone(), stop.clone(), dur);
    let started = Instant::now();
    let mut ptasks = Vec::new();
    match args.scenario {
        Scenario::Idle => tokio::time::sleep(dur).await,
        Scenario::Ingest => {
            for i in 0..args.concurrency {
                let node = &post_nodes[i % post_nodes.len()];
                let url = format!("{}/api/videos/{}/danmaku", node.base, room_video(0));
                ptasks.push(tokio::spawn(poster::ingest(
                    http.clone(),
                    url,
                    tokens.poster(i)?,
                    i,
                    dur,
                    live.clone(),
                    tally.clone(),
                )));
            }
        }
        _ => {
            let per_poster = args.rate / args.posters.max(1) as f64;
            let members_every =
                (args.scenario == Scenario::Mixed).then_some(args.members_every.max(1));
            for p in 0..posters_total {
                let room = if args.scenario == Scenario::Rooms {
                    p / args.posters.max(1)
                } else {
                    0
                };
                ptasks.push(tokio::spawn(poster::poster(
                    post_nodes.clone(),
                    p,
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
    // Drain: wait until deliveries stop growing and no viewer is reconnecting.
    let mut last = live.delivered.load(Relaxed);
    let drain_end = Instant::now() + Duration::from_secs(args.drain_s);
    while Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = live.delivered.load(Relaxed);
        if now == last && live.reconnecting.load(Relaxed) == 0 {
            break;
        }
        last = now;
    }
    let rss_after = pids[0].and_then(rss_kb);
    let slow_disconnects = match slow_before {
        Some(before) => server_metric(&http, &base, "danmaku_slow_disconnects_total")
            .await
            .map(|after| (after - before).max(0.0) as u64),
        None => None,
    };
    drop(stalled);
    stop.stop();
    let _ = bar.await;
    let node_reports = probe.finish(&nodes, &per_node).await;

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
    let mut f = fold(vtasks, &tally, rooms, posters_total, poster_room).await;
    let ms = |us: u64| us as f64 / 1000.0;
    for r in f.roles.values_mut() {
        r.p50_ms = ms(r.hist.quantile(0.5));
        r.p90_ms = ms(r.hist.quantile(0.9));
        r.p99_ms = ms(r.hist.quantile(0.99));
        r.max_ms = ms(r.hist.max_us);
    }
    let deliveries: u64 = f.roles.values().map(|r| r.received).sum();
    let acked = live.acked.load(Relaxed);
    let refused = live.refused.load(Relaxed);
    let rss_per_conn = match (rss_before, rss_ready) {
        (Some(b), Some(a)) if viewers > 0 => {
            Some((a.saturating_sub(b) as f64 * 1024.0) / viewers as f64)
        }
        _ => None,
    };
    let sv = &f.survival;
    // Refused posts were never acknowledged, so no viewer owes them; a surviving run
    // also fails on a gap or on a viewer that never came back. There, a post whose
    // connection died with its node (no answer) is not a failure either: it was never
    // acknowledged, so nobody is owed it.
    let lost = live.lost.load(Relaxed);
    let ok = f.viewer_errors == 0
        && poster_errors.is_empty()
        && live.errors.load(Relaxed) == 0
        && (args.survive_faults || lost == 0)
        && acked + refused + lost == live.sent.load(Relaxed)
        && f.roles
            .values()
            .all(|r| r.duplicates == 0 && r.leaks == 0 && r.missed == 0)
        && (!args.survive_faults || (sv.gaps == 0 && sv.down_at_end == 0))
        && (args.stalled == 0 || slow_disconnects.unwrap_or(0) >= args.stalled as u64);
    let refusals = Refusals {
        refused_503: tally.refused.count(),
        codes: tally.refused_codes.clone(),
        latency: Latency::of(&tally.refused),
        unreachable: tally.unreachable,
        acked_after_last_refusal: tally.last_refused.map(|_| tally.acked_after_refusal),
    };
    let report = Report {
        scenario: args.scenario,
        viewers,
        posters: posters_total,
        duration_s: load_secs,
        sent: live.sent.load(Relaxed),
        acked,
        send_errors: live.errors.load(Relaxed),
        lost_in_flight: lost,
        deliveries,
        deliveries_per_s: deliveries as f64 / load_secs.max(0.001),
        acked_per_s: acked as f64 / load_secs.max(0.001),
        ack_p50_ms: ms(tally.ack.quantile(0.5)),
        ack_p99_ms: ms(tally.ack.quantile(0.99)),
        room_p99_ms: if args.scenario == Scenario::Rooms {
            f.room_hist.iter().map(|h| ms(h.quantile(0.99))).collect()
        } else {
            Vec::new()
        },
        rss_before_kb: rss_before,
        rss_after_kb: rss_after,
        rss_per_conn_bytes: rss_per_conn,
        stalled: args.stalled,
        slow_disconnects,
        compressed_viewers: f.compressed,
        wire_bytes_per_delivery: (deliveries > 0).then(|| f.wire as f64 / deliveries as f64),
        payload_bytes_per_delivery: (deliveries > 0).then(|| f.payload as f64 / deliveries as f64),
        same_node: Latency::of(&f.same_node),
        cross_node: Latency::of(&f.cross_node),
        nodes: node_reports,
        survival: args.survive_faults.then(|| std::mem::take(&mut f.survival)),
        refusals,
        roles: f.roles,
        ok,
    };
    print_report(&report, f.viewer_errors, &poster_errors);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(report)
}
