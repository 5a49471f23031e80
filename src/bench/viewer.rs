//! Bench viewers: sockets that subscribe to a room and check everything they receive.
//!
//! Every comment carries its poster, sequence number and send time in its text, and
//! each viewer keeps a bitmap per poster, so a delivery that never arrives or arrives
//! twice is counted, never hidden. The hot path scans frames for comment texts instead
//! of building a JSON tree per message, so the load generator is not the bottleneck.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use memchr::memmem;
use serde_json::{Value, json};

use super::{Live, Stop, client::Client, now_us, report::Histogram};
use crate::model::Role;

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

/// A viewer's final tally.
pub struct ViewerResult {
    pub role: Role,
    pub room: usize,
    pub received: u64,
    pub duplicates: u64,
    pub leaks: u64,
    pub unique_by_poster: Vec<u64>,
    pub unique_members_only: u64,
    pub hist: Histogram,
    /// Bytes read from the socket (after the handshake).
    pub wire_bytes: u64,
    /// Bytes of the messages, inflated.
    pub payload_bytes: u64,
    /// permessage-deflate was negotiated.
    pub deflate: bool,
}

/// Finds every bench comment in a message (one event or a batched array): each is the
/// value of a `"text":"b ..."` field. Bench texts are plain ASCII, so no unescaping.
pub fn scan_texts(frame: &[u8]) -> impl Iterator<Item = (usize, u64, u64, bool)> + '_ {
    static KEY: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b"\"text\":\"b "));
    let mut rest = frame;
    std::iter::from_fn(move || {
        loop {
            let at = KEY.find(rest)?;
            rest = &rest[at + KEY.needle().len()..];
            let end = memchr::memchr(b'"', rest)?;
            let text = &rest[..end];
            rest = &rest[end..];
            if let Some(parsed) = parse_text(text) {
                return Some(parsed);
            }
        }
    })
}

/// Parses the rest of a bench comment text after `b `: `<poster> <seq> <send_us>
/// <members:0|1>`.
fn parse_text(text: &[u8]) -> Option<(usize, u64, u64, bool)> {
    let mut it = text.split(|b| *b == b' ');
    let num = |f: &[u8]| -> Option<u64> {
        if f.is_empty() || f.len() > 19 {
            return None;
        }
        f.iter().try_fold(0u64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    };
    Some((
        num(it.next()?)? as usize,
        num(it.next()?)?,
        num(it.next()?)?,
        it.next()? == b"1",
    ))
}

/// Subscribes to `channel` and waits for the server's reply.
pub async fn subscribe(ws: &mut Client, channel: &str) -> Result<(), String> {
    ws.send_text(&json!({"op": "subscribe", "id": 1, "channel": channel}).to_string())
        .await
        .map_err(|e| format!("viewer subscribe: {e}"))?;
    let mut outcome: Option<Result<(), String>> = None;
    while outcome.is_none() {
        let mut on = |t: &[u8]| {
            // The reply may share a batched frame (a JSON array) with events.
            let frames = match serde_json::from_slice::<Value>(t).unwrap_or_default() {
                Value::Array(items) => items,
                v => vec![v],
            };
            if let Some(v) = frames.iter().find(|v| v["type"] == "reply") {
                outcome = Some(if v["ok"] == true {
                    Ok(())
                } else {
                    Err(format!("subscribe refused: {v}"))
                });
            }
        };
        let open = tokio::time::timeout(Duration::from_secs(30), ws.read_some(&mut on))
            .await
            .map_err(|_| "subscribe reply timed out".to_string())?
            .map_err(|e| e.to_string())?;
        if !open && outcome.is_none() {
            return Err("closed before subscribe reply".into());
        }
    }
    outcome.unwrap_or(Ok(()))
}

/// How one viewer connects.
pub struct ViewerSpec {
    pub url: String,
    pub role: Role,
    pub room: usize,
    pub channel: String,
    pub posters: usize,
    pub compress: bool,
}

/// Connects a viewer, subscribes to its room, signals readiness, then checks every
/// comment until the end of the run.
pub async fn viewer(
    spec: ViewerSpec,
    ready: Arc<tokio::sync::Barrier>,
    stop: Arc<Stop>,
    live: Arc<Live>,
    connect_permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<ViewerResult, String> {
    let connect = Client::connect(&spec.url, spec.compress, None);
    let mut ws = tokio::time::timeout(Duration::from_secs(30), connect)
        .await
        .map_err(|_| "viewer connect timed out".to_string())?
        .map_err(|e| format!("viewer connect: {e}"))?;
    subscribe(&mut ws, &spec.channel).await?;
    // Subscribed: let the next viewer connect.
    drop(connect_permit);
    ready.wait().await;
    let role = spec.role;
    let mut res = ViewerResult {
        role,
        room: spec.room,
        received: 0,
        duplicates: 0,
        leaks: 0,
        unique_by_poster: vec![0; spec.posters],
        unique_members_only: 0,
        hist: Histogram::default(),
        wire_bytes: 0,
        payload_bytes: 0,
        deflate: ws.deflate,
    };
    let mut seen = Seen::new(spec.posters);
    let mut handle = |frame: &[u8]| {
        let mut n = 0;
        let now = now_us();
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
                res.hist.record(now.saturating_sub(sent));
            } else {
                res.duplicates += 1;
            }
        }
        if n > 0 {
            live.delivered.fetch_add(n, Relaxed);
        }
    };
    let (wire0, payload0) = (ws.wire_bytes, ws.payload_bytes);
    let stopped = stop.notify.notified();
    tokio::pin!(stopped);
    stopped.as_mut().enable();
    while !stop.is_stopped() {
        tokio::select! {
            _ = &mut stopped => break,
            more = ws.read_some(&mut handle) => match more {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            },
        }
    }
    res.wire_bytes = ws.wire_bytes - wire0;
    res.payload_bytes = ws.payload_bytes - payload0;
    ws.close().await;
    Ok(res)
}

/// Connects a viewer that reads its subscribe reply and then never reads again. Its
/// receive buffer is small, so the server's queue (not the kernel) fills up.
pub async fn stalled_viewer(url: &str, channel: &str) -> Result<Client, String> {
    let mut ws = Client::connect(url, false, Some(4096))
        .await
        .map_err(|e| format!("stalled viewer connect: {e}"))?;
    subscribe(&mut ws, channel).await?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_single_and_batched_frames() {
        let one = br#"{"type":"danmaku","data":{"text":"b 2 17 1234 1","x":1}}"#;
        assert_eq!(scan_texts(one).collect::<Vec<_>>(), [(2, 17, 1234, true)]);
        let batch = br#"[{"data":{"text":"b 0 1 5 0"}},{"data":{"text":"other"}},{"data":{"text":"b 1 2 6 0"}}]"#;
        assert_eq!(
            scan_texts(batch).collect::<Vec<_>>(),
            [(0, 1, 5, false), (1, 2, 6, false)]
        );
        assert_eq!(scan_texts(br#"{"text":"b x 1 2 0"}"#).count(), 0);
    }
}
