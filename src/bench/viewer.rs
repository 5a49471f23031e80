//! Bench viewers: sockets that subscribe to a room and check everything they receive,
//! and (with `--survive-faults`) come back after a close or a dead socket.
//!
//! Every comment carries its poster, sequence number, send time and the node it was
//! posted to in its text, and each viewer keeps a bitmap per poster, so a delivery that
//! never arrives or arrives twice is counted, never hidden. Each event's channel `seq`
//! is checked too: a skipped `seq` the server did not own up to (`recovered: false`) is
//! a gap. The hot path scans frames for texts and seqs instead of building a JSON tree
//! per message, so the load generator is not the bottleneck.

use std::{
    sync::{
        Arc,
        atomic::Ordering::{Relaxed, SeqCst},
    },
    time::{Duration, Instant},
};

use memchr::memmem;

use super::{
    Live, Stop,
    client::Client,
    now_us,
    report::Histogram,
    resume::{Joined, backoff, refetch_history, subscribe},
};
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

    /// Whether one was marked. Why: a comment first got from history and then live is
    /// no duplicate (a client dedupes by id), so the live path asks the history bitmap.
    fn contains(&self, poster: usize, seq: u64) -> bool {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        self.bits
            .get(poster)
            .and_then(|r| r.get(w))
            .is_some_and(|x| x & (1 << b) != 0)
    }
}

/// A viewer's final tally.
pub struct ViewerResult {
    pub index: usize,
    pub role: Role,
    pub room: usize,
    /// The node it first connected to.
    pub node: usize,
    pub received: u64,
    pub duplicates: u64,
    pub leaks: u64,
    pub unique_by_poster: Vec<u64>,
    pub unique_members_only: u64,
    pub hist: Histogram,
    /// Latency of comments posted to the node the viewer was on at the time.
    pub same_node: Histogram,
    /// Latency of comments posted to another node.
    pub cross_node: Histogram,
    /// Bytes read from the socket (after the handshake).
    pub wire_bytes: u64,
    /// Bytes of the messages, inflated.
    pub payload_bytes: u64,
    /// permessage-deflate was negotiated.
    pub deflate: bool,
    /// Events whose channel `seq` was checked (0: the check saw nothing to check).
    pub seq_checked: u64,
    /// `seq` numbers skipped without the server saying so.
    pub gaps: u64,
    /// Reconnects that succeeded, and the time from losing the socket to the new
    /// subscribe reply (history refetch included).
    pub reconnects: u64,
    pub reconnect_time: Histogram,
    /// Sockets found dead (no byte within `--dead-after-s`) rather than closed.
    pub dead_sockets: u64,
    /// Resubscribes answered `recovered: false` (history was refetched).
    pub unrecovered: u64,
    /// Comments first got from the history refetch, not live.
    pub refilled: u64,
    /// Comments that came first without a `seq` (delivered on their node while the bus
    /// was away) and again numbered once it was back: the protocol's one allowed repeat,
    /// not a duplicate.
    pub renumbered: u64,
    /// Still reconnecting when the run ended.
    pub down_at_end: bool,
}

/// One bench comment found in a frame: `b <poster> <seq> <send_us> <members> [<node>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    pub poster: usize,
    pub seq: u64,
    pub sent_us: u64,
    pub members: bool,
    /// The node the comment was posted to (older posters and fakes leave it out).
    pub node: Option<usize>,
}

/// Finds every bench comment in a message (one event or a batched array): each is the
/// value of a `"text":"b ..."` field. Bench texts are plain ASCII, so no unescaping.
pub fn scan_texts(frame: &[u8]) -> impl Iterator<Item = Text> + '_ {
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

/// A decimal number of at most 19 digits.
fn num(f: &[u8]) -> Option<u64> {
    if f.is_empty() || f.len() > 19 {
        return None;
    }
    f.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Parses the rest of a bench comment text after `b `.
fn parse_text(text: &[u8]) -> Option<Text> {
    let mut it = text.split(|b| *b == b' ');
    Some(Text {
        poster: num(it.next()?)? as usize,
        seq: num(it.next()?)?,
        sent_us: num(it.next()?)?,
        members: it.next()? == b"1",
        node: it.next().and_then(num).map(|n| n as usize),
    })
}

/// Every `seq` of the events on one channel in a frame, in order. Events are written
/// `{"type":..,"channel":"<name>","seq":N,..}` (the hub's wire order), so the channel
/// and its seq are found together and another channel's seq is never taken.
fn scan_seqs<'a>(
    frame: &'a [u8],
    key: &'a memmem::Finder<'static>,
) -> impl Iterator<Item = u64> + 'a {
    let mut rest = frame;
    std::iter::from_fn(move || {
        let at = key.find(rest)?;
        rest = &rest[at + key.needle().len()..];
        let end = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        num(&rest[..end])
    })
}

/// The events of one channel in a frame, each with whether it carries a `seq`. An event
/// runs from its `"channel":"<name>",` to the next one (the hub's wire order puts `type`
/// and `channel` first, then `seq` unless the event was delivered without a bus).
fn scan_events<'a>(
    frame: &'a [u8],
    key: &'a memmem::Finder<'static>,
) -> impl Iterator<Item = (bool, &'a [u8])> + 'a {
    let mut next = key.find(frame);
    std::iter::from_fn(move || {
        let start = next?;
        let body = start + key.needle().len();
        next = key.find(&frame[body..]).map(|at| body + at);
        let event = &frame[body..next.unwrap_or(frame.len())];
        Some((event.starts_with(b"\"seq\":"), event))
    })
}

/// How one viewer connects.
pub struct ViewerSpec {
    pub index: usize,
    /// Every node's WebSocket URL, token included; the viewer starts on `node`.
    pub urls: Arc<Vec<String>>,
    pub node: usize,
    pub role: Role,
    pub room: usize,
    pub channel: String,
    pub posters: usize,
    pub compress: bool,
    /// The viewer's token (None: guest), for the history refetch.
    pub token: Option<String>,
    /// Whether every event of the channel reaches this viewer (so a skipped `seq` is a
    /// gap): false for free viewers of `mixed`, whose members-only comments skip seqs.
    pub sees_all: bool,
    /// Reconnect after faults (None: the run's first close ends the viewer).
    pub survive: Option<Arc<Survive>>,
}

/// What a surviving viewer needs to come back.
pub struct Survive {
    /// A socket with no byte for this long is dead.
    pub dead_after: Duration,
    /// Every node's REST base, for the history refetch.
    pub bases: Vec<String>,
    pub video: Vec<String>,
    pub http: reqwest::Client,
}

/// A viewer's state while it reads: the tally, the bitmaps and the seq position.
struct Watch {
    res: ViewerResult,
    seen: Seen,
    /// Comments got from a history refetch.
    refilled: Seen,
    /// Comments that came without a `seq` (see [`ViewerResult::renumbered`]).
    unsequenced: Seen,
    /// The node the socket is on now (deliveries are same- or cross-node against it).
    node: usize,
    /// The channel's epoch and the last seq seen in it.
    epoch: String,
    last_seq: Option<u64>,
    /// The seq of the last join, where a viewer that saw no event yet resumes from.
    joined_seq: u64,
    seq_key: memmem::Finder<'static>,
    /// `"channel":"<name>",`: where each event of the channel starts.
    event_key: memmem::Finder<'static>,
    sees_all: bool,
}

impl Watch {
    /// Counts every comment and checks every seq of one frame.
    fn on_frame(&mut self, frame: &[u8], live: &Live) {
        let mut n = 0;
        let now = now_us();
        let role = self.res.role;
        for (numbered, event) in scan_events(frame, &self.event_key) {
            for t in scan_texts(event) {
                n += 1;
                let r = &mut self.res;
                r.received += 1;
                if t.members && !role.is_member_or_admin() {
                    r.leaks += 1;
                }
                if !numbered {
                    self.unsequenced.mark(t.poster, t.seq);
                }
                if !self.seen.mark(t.poster, t.seq) {
                    if numbered && self.unsequenced.contains(t.poster, t.seq) {
                        r.renumbered += 1;
                    } else {
                        r.duplicates += 1;
                    }
                    continue;
                }
                let lat = now.saturating_sub(t.sent_us);
                r.hist.record(lat);
                match t.node {
                    Some(p) if p == self.node => r.same_node.record(lat),
                    Some(_) => r.cross_node.record(lat),
                    None => {}
                }
                if self.refilled.contains(t.poster, t.seq) {
                    continue;
                }
                if let Some(c) = r.unique_by_poster.get_mut(t.poster) {
                    *c += 1;
                }
                if t.members {
                    r.unique_members_only += 1;
                }
            }
        }
        for seq in scan_seqs(frame, &self.seq_key) {
            self.res.seq_checked += 1;
            if let Some(last) = self.last_seq {
                if self.sees_all && seq > last + 1 {
                    self.res.gaps += seq - last - 1;
                }
                if seq <= last {
                    continue;
                }
            }
            self.last_seq = Some(seq);
        }
        if n > 0 {
            live.delivered.fetch_add(n, Relaxed);
        }
    }

    /// Takes a subscribe reply: the epoch, whether history must fill a gap, and the
    /// frames that came with it.
    fn on_joined(&mut self, j: &Joined, live: &Live) {
        if j.recovered == Some(false) || j.epoch != self.epoch {
            // The window did not reach our position: the gap up to the join is the
            // history refetch's to fill; live seqs continue after the join's.
            self.last_seq = Some(j.seq);
        }
        self.epoch = j.epoch.clone();
        self.joined_seq = j.seq;
        for f in &j.frames {
            self.on_frame(f, live);
        }
    }

    /// Counts comments of a history page that were not seen live.
    fn on_history(&mut self, page: &[u8], live: &Live) {
        let mut n = 0;
        for t in scan_texts(page) {
            if t.members && !self.res.role.is_member_or_admin() {
                self.res.leaks += 1;
            }
            if self.seen.contains(t.poster, t.seq) || !self.refilled.mark(t.poster, t.seq) {
                continue;
            }
            n += 1;
            self.res.refilled += 1;
            if let Some(c) = self.res.unique_by_poster.get_mut(t.poster) {
                *c += 1;
            }
            if t.members {
                self.res.unique_members_only += 1;
            }
        }
        live.delivered.fetch_add(n, Relaxed);
    }
}

/// Connects to `url` and subscribes (resuming after `since`), bounded in time.
async fn join(
    url: &str,
    compress: bool,
    channel: &str,
    since: Option<(u64, &str)>,
) -> Result<(Client, Joined), String> {
    let connect = Client::connect(url, compress, None);
    let mut ws = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| "viewer connect timed out".to_string())?
        .map_err(|e| format!("viewer connect: {e}"))?;
    let j = subscribe(&mut ws, channel, since).await?;
    Ok((ws, j))
}

/// Connects a viewer, subscribes to its room, signals readiness, then checks every
/// comment until the end of the run (coming back after faults when it survives them).
pub async fn viewer(
    spec: ViewerSpec,
    ready: Arc<tokio::sync::Barrier>,
    stop: Arc<Stop>,
    live: Arc<Live>,
    connect_permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<ViewerResult, String> {
    let (mut ws, joined) = join(&spec.urls[spec.node], spec.compress, &spec.channel, None).await?;
    // Subscribed: let the next viewer connect.
    drop(connect_permit);
    ready.wait().await;
    let mut w = Watch {
        res: ViewerResult {
            index: spec.index,
            role: spec.role,
            room: spec.room,
            node: spec.node,
            received: 0,
            duplicates: 0,
            leaks: 0,
            unique_by_poster: vec![0; spec.posters],
            unique_members_only: 0,
            hist: Histogram::default(),
            same_node: Histogram::default(),
            cross_node: Histogram::default(),
            wire_bytes: 0,
            payload_bytes: 0,
            deflate: ws.deflate,
            seq_checked: 0,
            gaps: 0,
            reconnects: 0,
            reconnect_time: Histogram::default(),
            dead_sockets: 0,
            unrecovered: 0,
            refilled: 0,
            renumbered: 0,
            down_at_end: false,
        },
        seen: Seen::new(spec.posters),
        refilled: Seen::new(spec.posters),
        unsequenced: Seen::new(spec.posters),
        node: spec.node,
        epoch: joined.epoch.clone(),
        last_seq: None,
        joined_seq: joined.seq,
        seq_key: memmem::Finder::new(
            format!("\"channel\":\"{}\",\"seq\":", spec.channel).as_bytes(),
        )
        .into_owned(),
        event_key: memmem::Finder::new(format!("\"channel\":\"{}\",", spec.channel).as_bytes())
            .into_owned(),
        sees_all: spec.sees_all,
    };
    for f in &joined.frames {
        w.on_frame(f, &live);
    }
    let dead_after = spec
        .survive
        .as_ref()
        .map_or(Duration::from_secs(86_400), |s| s.dead_after);
    let stopped = stop.notify.notified();
    tokio::pin!(stopped);
    stopped.as_mut().enable();
    let (mut wire, mut payload) = (0, 0);
    'run: while !stop.is_stopped() {
        let (wire0, payload0) = (ws.wire_bytes, ws.payload_bytes);
        // Read until the socket closes, fails or stays silent past the deadline.
        let dead = loop {
            let seen_bytes = ws.wire_bytes;
            let mut on_frame = |f: &[u8]| w.on_frame(f, &live);
            let read = tokio::time::timeout(dead_after, ws.read_some(&mut on_frame));
            tokio::select! {
                _ = &mut stopped => break None,
                more = read => match more {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) | Ok(Err(_)) => break Some(false),
                    // Pings are answered inside `read_some`: bytes moved, still alive.
                    Err(_) if ws.wire_bytes != seen_bytes => {}
                    Err(_) => break Some(true),
                },
            }
        };
        wire += ws.wire_bytes - wire0;
        payload += ws.payload_bytes - payload0;
        let (Some(dead), Some(s)) = (dead, spec.survive.as_ref()) else {
            break;
        };
        w.res.dead_sockets += u64::from(dead);
        // Lost: come back on another node, resuming after the last seq seen.
        let lost_at = Instant::now();
        live.reconnecting.fetch_add(1, SeqCst);
        let mut attempt = 0;
        let back = loop {
            tokio::select! {
                _ = &mut stopped => break None,
                _ = tokio::time::sleep(backoff(attempt)) => {}
            }
            attempt += 1;
            w.node = (w.node + 1) % spec.urls.len();
            let since = (w.last_seq.unwrap_or(w.joined_seq), w.epoch.as_str());
            let since = (!w.epoch.is_empty()).then_some(since);
            if let Ok(got) = join(&spec.urls[w.node], spec.compress, &spec.channel, since).await {
                break Some(got);
            }
        };
        let Some((new_ws, j)) = back else {
            live.reconnecting.fetch_sub(1, SeqCst);
            w.res.down_at_end = true;
            break 'run;
        };
        ws = new_ws;
        if j.recovered != Some(true) {
            w.res.unrecovered += 1;
            let video = &s.video[spec.room];
            let base = &s.bases[w.node];
            let mut on = |p: &[u8]| w.on_history(p, &live);
            let fetched =
                refetch_history(&s.http, base, video, spec.token.as_deref(), &mut on).await;
            if let Err(e) = fetched {
                tracing::warn!(viewer = spec.index, error = %e, "history refetch failed");
            }
        }
        w.on_joined(&j, &live);
        w.res.reconnects += 1;
        w.res
            .reconnect_time
            .record(lost_at.elapsed().as_micros() as u64);
        live.reconnecting.fetch_sub(1, SeqCst);
    }
    w.res.wire_bytes = wire;
    w.res.payload_bytes = payload;
    ws.close().await;
    Ok(w.res)
}

/// Connects a viewer that reads its subscribe reply and then never reads again. Its
/// receive buffer is small, so the server's queue (not the kernel) fills up.
pub async fn stalled_viewer(url: &str, channel: &str) -> Result<Client, String> {
    let mut ws = Client::connect(url, false, Some(4096))
        .await
        .map_err(|e| format!("stalled viewer connect: {e}"))?;
    subscribe(&mut ws, channel, None).await?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_single_and_batched_frames() {
        let one = br#"{"type":"danmaku","data":{"text":"b 2 17 1234 1","x":1}}"#;
        let t = |p, s, u, m, n| Text {
            poster: p,
            seq: s,
            sent_us: u,
            members: m,
            node: n,
        };
        assert_eq!(
            scan_texts(one).collect::<Vec<_>>(),
            [t(2, 17, 1234, true, None)]
        );
        let batch = br#"[{"data":{"text":"b 0 1 5 0 2"}},{"data":{"text":"other"}},{"data":{"text":"b 1 2 6 0"}}]"#;
        assert_eq!(
            scan_texts(batch).collect::<Vec<_>>(),
            [t(0, 1, 5, false, Some(2)), t(1, 2, 6, false, None)]
        );
        assert_eq!(scan_texts(br#"{"text":"b x 1 2 0"}"#).count(), 0);
    }
}
