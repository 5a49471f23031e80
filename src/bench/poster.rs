//! Bench posters: who posts, at what rate, over WebSocket or REST, and what was
//! acknowledged (the tool expects each acknowledged comment at every eligible viewer).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{Live, Via, client::Client, now_us, report::Histogram};
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
}

/// Runs one poster for `dur` at `rate` per second.
#[allow(clippy::too_many_arguments)]
pub(super) async fn poster(
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
            let url = format!("{ws_url}?access_token={token}");
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
                let mut op = body(seq);
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
