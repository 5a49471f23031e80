//! Bench posters: who posts, at what rate, over WebSocket or REST, to which node, and
//! what was acknowledged (the tool expects each acknowledged comment at every eligible
//! viewer) or refused (a 503 during an outage is counted with its latency, never as
//! acknowledged).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{Live, Via, client::Client, nodes::Node, now_us, report::Histogram};
use crate::{auth::Signer, model::Role};

/// Where viewer tokens come from.
pub(super) enum Tokens {
    Mint(Box<Signer>),
    File(Vec<(Role, String)>),
}

impl Tokens {
    /// A token for viewer `i` of `role` (None: guest).
    pub(super) fn viewer(&self, i: usize, role: Role) -> Option<String> {
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
    pub(super) fn poster(&self, i: usize) -> Result<String, String> {
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
pub(super) fn read_token_file(path: &std::path::Path) -> Result<Vec<(Role, String)>, String> {
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

/// What posters produced.
#[derive(Default)]
pub(super) struct PostTally {
    /// Comments acknowledged per poster index.
    pub(super) acked_by_poster: Vec<u64>,
    /// Members-only comments acknowledged, per room.
    pub(super) members_only_by_room: Vec<u64>,
    pub(super) ack: Histogram,
    /// Latency of the posts answered 503 (an outage: they must come at once).
    pub(super) refused: Histogram,
    /// The 503 answers by their `code` (`store_unavailable`, ...).
    pub(super) refused_codes: HashMap<String, u64>,
    /// Posts no node accepted a connection for.
    pub(super) unreachable: u64,
    /// When the last refusal came, and the posts acknowledged after it: posting must
    /// resume by itself once the outage ends.
    pub(super) last_refused: Option<Instant>,
    pub(super) acked_after_refusal: u64,
}

/// How one REST post ended.
pub(super) enum Posted {
    /// 201 Created.
    Acked,
    /// 503 with its `code`: refused during an outage.
    Refused(String),
    /// No node took the connection.
    Unreachable,
    /// The connection broke before an answer (its node died mid-request): never
    /// acknowledged, perhaps stored.
    Lost,
    /// Any other answer or failure.
    Failed,
}

/// Posts `body(node)` to `video` on the nodes from `first` on: a refused connection is
/// certain not to have been taken, so the next node is tried. Why not any error: a post
/// lost mid-request may have been stored, and posting it again would be a duplicate.
pub(super) async fn post_rest(
    http: &reqwest::Client,
    nodes: &[Node],
    first: usize,
    video: &str,
    token: &str,
    body: impl Fn(usize) -> Value,
) -> Posted {
    for k in 0..nodes.len() {
        let node = (first + k) % nodes.len();
        let url = format!("{}/api/videos/{video}/danmaku", nodes[node].base);
        match http
            .post(&url)
            .bearer_auth(token)
            .json(&body(node))
            .send()
            .await
        {
            Ok(r) if r.status().as_u16() == 201 => return Posted::Acked,
            Ok(r) if r.status().as_u16() == 503 => {
                let v: Value = r.json().await.unwrap_or_default();
                return Posted::Refused(v["code"].as_str().unwrap_or("unknown").to_string());
            }
            Ok(_) => return Posted::Failed,
            Err(e) if e.is_connect() => continue,
            Err(e) if e.is_request() || e.is_body() => return Posted::Lost,
            Err(_) => return Posted::Failed,
        }
    }
    Posted::Unreachable
}

/// Runs one poster for `dur` at `rate` per second.
#[allow(clippy::too_many_arguments)]
pub(super) async fn poster(
    nodes: Arc<Vec<Node>>,
    first_node: usize,
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
    let body = move |seq: u64, node: usize| {
        let members = members_of(seq);
        json!({
            "text": format!("b {index} {seq} {} {} {node}", now_us(), members as u8),
            "time": (seq % 600) as f64,
            "audience": if members { "members" } else { "everyone" },
        })
    };
    let tallied = tally.clone();
    let record = move |seq: u64, started: Instant| {
        let mut t = tallied.lock().unwrap_or_else(|e| e.into_inner());
        t.acked_by_poster[index] += 1;
        // Members-only comments exist only in the single-room `mixed` scenario.
        if members_of(seq)
            && let Some(c) = t.members_only_by_room.get_mut(0)
        {
            *c += 1;
        }
        t.ack.record(started.elapsed().as_micros() as u64);
        if t.last_refused.is_some() {
            t.acked_after_refusal += 1;
        }
    };
    match via {
        Via::Rest => {
            let mut inflight = tokio::task::JoinSet::new();
            let mut seq = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                live.sent.fetch_add(1, Relaxed);
                let started = Instant::now();
                // Round-robin: post `seq` goes to the next node.
                let first = first_node + seq as usize;
                let (http, nodes, video, token) =
                    (http.clone(), nodes.clone(), video.clone(), token.clone());
                inflight.spawn(async move {
                    let body = |node| body(seq, node);
                    let posted = post_rest(&http, &nodes, first, &video, &token, body).await;
                    (seq, started, posted)
                });
                seq += 1;
                while let Some(done) = inflight.try_join_next() {
                    handle_rest(done, &live, &record, &tally);
                }
            }
            while let Some(done) = inflight.join_next().await {
                handle_rest(done, &live, &record, &tally);
            }
        }
        Via::Ws => {
            // A WebSocket poster stays on its node (the socket is the transport).
            let node = first_node % nodes.len();
            let url = format!("{}?access_token={token}", nodes[node].ws);
            let mut ws = Client::connect(&url, false, None)
                .await
                .map_err(|e| format!("poster connect: {e}"))?;
            let tx = ws.writer();
            let pending: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
            let sending_done = Arc::new(AtomicBool::new(false));
            let reader = {
                let pending = pending.clone();
                let sending_done = sending_done.clone();
                let live = live.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let mut on = |t: &[u8]| {
                        // Replies may arrive batched in a JSON array with other frames.
                        let frames = match serde_json::from_slice::<Value>(t) {
                            Ok(Value::Array(items)) => items,
                            Ok(v) => vec![v],
                            Err(_) => return,
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
                    };
                    while let Ok(true) = ws.read_some(&mut on).await {
                        if sending_done.load(Relaxed)
                            && pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
                        {
                            break;
                        }
                    }
                    ws.close().await;
                })
            };
            let mut seq = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let mut op = body(seq, node);
                op["op"] = "danmaku".into();
                op["id"] = seq.into();
                op["video"] = video.clone().into();
                pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(seq, Instant::now());
                live.sent.fetch_add(1, Relaxed);
                if tx.send_text(&op.to_string()).await.is_err() {
                    live.errors.fetch_add(1, Relaxed);
                    break;
                }
                seq += 1;
            }
            sending_done.store(true, Relaxed);
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
    }
    Ok(())
}

/// Tallies one finished REST post.
pub(super) fn handle_rest(
    done: Result<(u64, Instant, Posted), tokio::task::JoinError>,
    live: &Live,
    record: &impl Fn(u64, Instant),
    tally: &Mutex<PostTally>,
) {
    let tally = || tally.lock().unwrap_or_else(|e| e.into_inner());
    match done {
        Ok((seq, started, Posted::Acked)) => {
            live.acked.fetch_add(1, Relaxed);
            record(seq, started);
        }
        Ok((_, started, Posted::Refused(code))) => {
            live.refused.fetch_add(1, Relaxed);
            let mut t = tally();
            t.refused.record(started.elapsed().as_micros() as u64);
            *t.refused_codes.entry(code).or_default() += 1;
            t.last_refused = Some(Instant::now());
            t.acked_after_refusal = 0;
        }
        Ok((_, _, Posted::Unreachable)) => {
            live.refused.fetch_add(1, Relaxed);
            tally().unreachable += 1;
        }
        Ok((_, _, Posted::Lost)) => {
            live.lost.fetch_add(1, Relaxed);
        }
        _ => {
            live.errors.fetch_add(1, Relaxed);
        }
    }
}

/// One `ingest` poster: posts over REST as fast as acknowledgements come back.
pub(super) async fn ingest(
    http: reqwest::Client,
    url: String,
    token: String,
    index: usize,
    dur: Duration,
    live: Arc<Live>,
    tally: Arc<Mutex<PostTally>>,
) -> Result<(), String> {
    let end = Instant::now() + dur;
    let mut seq = 0u64;
    while Instant::now() < end {
        let body =
            json!({"text": format!("b {index} {seq} {} 0", now_us()), "time": (seq % 600) as f64});
        live.sent.fetch_add(1, Relaxed);
        let t0 = Instant::now();
        match http.post(&url).bearer_auth(&token).json(&body).send().await {
            Ok(r) if r.status().as_u16() == 201 => {
                live.acked.fetch_add(1, Relaxed);
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                t.acked_by_poster[index] += 1;
                t.ack.record(t0.elapsed().as_micros() as u64);
            }
            _ => {
                live.errors.fetch_add(1, Relaxed);
            }
        }
        seq += 1;
    }
    Ok(())
}
