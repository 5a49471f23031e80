//! One task per socket: reads client ops, drains the outbox, keeps the heartbeat and the
//! token deadline, and closes with a documented code.
//!
//! The task owns the socket outright (no split, no lock). Every outgoing frame, replies
//! included, goes through the connection's bounded outbox, so per-socket order is the
//! order in which frames were queued. The first queued frame arms a flush timer
//! (`flush_tick_ms`) while the task keeps reading; then everything queued leaves as one
//! WebSocket frame holding a JSON array (up to [`BATCH`] frames): one syscall for many
//! messages. Comment posts run in their own tasks, bounded per socket.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use poem::Upgraded;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Error as WsError, Message, Utf8Bytes,
        error::CapacityError,
        protocol::{CloseFrame, Role as WsRole, WebSocketConfig, frame::coding::CloseCode},
    },
};

use super::protocol::{self, Op};
use crate::{
    access::{self, BROADCAST},
    bus::{Join, Joined, Since},
    hub::conn::{Conn, close},
    limits::{Permit, TokenBucket},
    model::Identity,
    model::Refusal,
    state::State,
};

/// Comment posts of one socket that may wait on the store at once.
const POSTS_IN_FLIGHT: usize = 32;

/// Most queued frames written per flush.
const BATCH: usize = 256;

/// A write that cannot complete in this time means the peer is gone or stalled.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Initial read buffer per socket. Viewers send little (small JSON ops), so a small
/// buffer is enough; tungstenite grows it for a larger frame (up to `ws_max_message`).
/// The default (128 KiB) would cost over 1 GB at 10k sockets; 4 KiB still cost 40 MB.
const READ_BUFFER: usize = 512;

/// Builds the tungstenite config: small buffers keep per-socket memory low. Only control
/// frames are written through tungstenite (see [`write_batch`]), so they go out at once.
pub fn ws_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Why the loop ended: the close code and reason to send.
struct Exit {
    code: u16,
    reason: &'static str,
}

/// A connection's mutable state, owned by its task.
struct Session {
    state: Arc<State>,
    conn: Arc<Conn>,
    identity: Arc<Identity>,
    /// Channels joined, including `broadcast` and the personal channel.
    channels: Vec<Arc<str>>,
    /// When the current token expires (`None` for guests).
    expires: Option<Instant>,
    /// Whether the `token_expired` notice went out for the current token.
    expiry_noticed: bool,
    last_seen: Instant,
    errors_in_window: u32,
    window_start: Instant,
    /// Bounds the comment posts of this socket that are waiting on the store.
    posts: Arc<tokio::sync::Semaphore>,
    /// The first frame of a burst, held until the flush tick fires.
    pending: Option<Utf8Bytes>,
    /// A batch whose write was cut short (the socket is closing), with the bytes written
    /// so far: its rest must go out before any other frame, or nothing more may be sent.
    unsent: Unsent,
    /// The per-socket op rate limit.
    bucket: TokenBucket,
}

/// Converts a unix-seconds deadline into an `Instant`.
fn instant_at(unix_s: u64) -> Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Instant::now() + Duration::from_secs(unix_s.saturating_sub(now))
}

/// Runs a session to completion.
/// `permit` is the connection's slot under the connection caps; it is given back when
/// the session ends.
pub async fn run(
    state: Arc<State>,
    io: Upgraded,
    identity: Arc<Identity>,
    conn_id: u64,
    permit: Permit,
) {
    let mut ws = WebSocketStream::from_raw_socket(
        io,
        WsRole::Server,
        Some(ws_config(state.cfg.ws_max_message)),
    )
    .await;
    let (conn, mut rx) = state
        .hub
        .register(conn_id, identity.sub.clone(), identity.role);
    tracing::info!(conn = conn_id, sub = %identity.sub, role = %identity.role, "ws open");
    // Shutdown closes every registered socket (`Hub::close_all`). One that registered
    // after that sweep sees the flag here, so the loop needs no shutdown branch (whose
    // watch future would take a lock on every turn).
    if state.shutdown.is_started() {
        conn.request_close(close::GOING_AWAY);
    }

    let bucket = TokenBucket::new(state.cfg.ws_ops_per_s, state.cfg.ws_ops_burst);
    let mut session = Session {
        expires: identity.exp.map(instant_at),
        state,
        conn,
        identity,
        channels: Vec::new(),
        expiry_noticed: false,
        last_seen: Instant::now(),
        errors_in_window: 0,
        window_start: Instant::now(),
        posts: Arc::new(tokio::sync::Semaphore::new(POSTS_IN_FLIGHT)),
        pending: None,
        unsent: None,
        bucket,
    };
    session.join_automatic();
    let welcome = protocol::welcome(conn_id, &session.identity, session.state.cfg.heartbeat_s);
    session.conn.push(&welcome);

    let exit = session.run_loop(&mut ws, &mut rx).await;
    // Boxed: the closing handshake's state is needed once, at the end.
    let (code, reason) = Box::pin(close_gracefully(&mut session, &mut ws, &mut rx, exit)).await;
    session
        .state
        .hub
        .unregister(&session.conn, &session.channels);
    tracing::info!(
        conn = conn_id,
        sub = %session.identity.sub,
        role = %session.identity.role,
        code,
        reason,
        "ws close"
    );
    drop(permit);
}

/// Sends what is still queued (unless the peer is the reason we close), then the close
/// frame, and waits briefly for the peer's close. Returns the code and reason sent.
async fn close_gracefully(
    session: &mut Session,
    ws: &mut WebSocketStream<Upgraded>,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
    exit: Exit,
) -> (u16, &'static str) {
    // A frame cut short must be finished first; if it cannot be, nothing else may be
    // written (a close frame inside it would corrupt the stream), so just hang up.
    let finished = session.unsent.is_none()
        || matches!(
            tokio::time::timeout(
                Duration::from_secs(1),
                write_unsent(ws, &mut session.unsent)
            )
            .await,
            Ok(Ok(()))
        );
    // Frames queued before the close (replies to the last ops, above all) still go out,
    // unless the peer is the reason we close: a slow reader gets nothing more.
    if finished && exit.code != close::SLOW && session.conn.close_requested() != Some(close::SLOW) {
        let first = session.pending.take().or_else(|| rx.try_recv().ok());
        if let Some(first) = first {
            let conn = session.conn.clone();
            let unsent = &mut session.unsent;
            let drain = async {
                let mut next = Some(first);
                while let Some(frame) = next.take() {
                    write_batch(ws, frame, rx, &conn, unsent).await?;
                    next = rx.try_recv().ok();
                }
                Ok::<(), WsError>(())
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        }
    }

    let code = session.conn.close_requested().unwrap_or(exit.code);
    let reason = if code == exit.code {
        exit.reason
    } else {
        reason_of(code)
    };
    session.conn.request_close(code);
    let close_frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    if session.unsent.is_some() {
        return (code, reason);
    }
    // Best effort: a stalled peer will not read it, so do not wait long.
    let sent = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(close_frame))).await;
    if matches!(sent, Ok(Ok(()))) {
        // Wait briefly for the peer's close, discarding what it still sends: closing a
        // socket with unread input makes the kernel send a reset, which can destroy the
        // close frame (and the replies before it) before the peer reads them.
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
    (code, reason)
}

/// The reason text sent with each server-initiated close code.
fn reason_of(code: u16) -> &'static str {
    match code {
        close::GOING_AWAY => "server shutting down",
        close::SLOW => "slow consumer: outbox overflow",
        close::TOKEN_EXPIRED => "token expired",
        close::IDLE => "idle timeout",
        close::POLICY => "too many invalid frames",
        close::TOO_BIG => "message too big",
        close::INVALID_PAYLOAD => "text frame is not valid UTF-8",
        close::UNSUPPORTED => "binary frames are not supported",
        close::INTERNAL => "internal error",
        _ => "",
    }
}

impl Session {
    /// Joins `broadcast` and, for users, the personal channel.
    fn join_automatic(&mut self) {
        let role = self.identity.role;
        let broadcast: Arc<str> = Arc::from(BROADCAST);
        self.state.hub.subscribe(&self.conn, &broadcast, role);
        self.channels.push(broadcast);
        if !self.identity.is_guest() {
            let personal = access::user_channel(&self.identity.sub);
            self.state.hub.subscribe(&self.conn, &personal, role);
            self.channels.push(personal);
        }
    }

    /// The main select loop.
    async fn run_loop(
        &mut self,
        ws: &mut WebSocketStream<Upgraded>,
        rx: &mut mpsc::Receiver<Utf8Bytes>,
    ) -> Exit {
        let cfg = &self.state.cfg;
        let heartbeat = Duration::from_secs(cfg.heartbeat_s);
        let idle_timeout = Duration::from_secs(cfg.idle_timeout_s);
        let flush_tick = Duration::from_millis(cfg.flush_tick_ms);
        let read_gate = (cfg.outbox_max_msgs / 2).max(1);
        let flush_timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(flush_timer);
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let far = Duration::from_secs(365 * 24 * 3600);
        let deadline = tokio::time::sleep(far);
        tokio::pin!(deadline);
        self.reset_deadline(deadline.as_mut(), far);

        loop {
            tokio::select! {
                biased;
                code = self.conn.closing() => {
                    return Exit { code, reason: reason_of(code) };
                }
                frame = rx.recv(), if self.pending.is_none() => {
                    let Some(frame) = frame else {
                        return Exit { code: close::INTERNAL, reason: reason_of(close::INTERNAL) };
                    };
                    // Coalesce: hold the first frame for one tick (while still reading
                    // the client), so events arriving meanwhile share one frame and one
                    // syscall. The latency/throughput knob is `flush_tick_ms`.
                    self.pending = Some(frame);
                    flush_timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + flush_tick);
                }
                _ = &mut flush_timer, if self.pending.is_some() => {
                    // Boxed for the same reason as ops: the write's state (a timeout,
                    // the batch) lives only while it runs. One small allocation per
                    // flush is noise beside the syscall it pays for.
                    if let Some(exit) = Box::pin(self.flush(ws, rx)).await {
                        return exit;
                    }
                }
                // Backpressure on the client: while its outbox is half full, stop reading
                // its ops (their replies would only overflow it) until writes catch up.
                msg = ws.next(), if rx.len() < read_gate => {
                    match msg {
                        None => return Exit { code: close::NORMAL, reason: "" },
                        Some(Ok(msg)) => {
                            self.last_seen = Instant::now();
                            // Boxed: an op's future (verify, join, post) is large and
                            // rare, so it is allocated only while an op runs, instead of
                            // inflating every idle socket's task.
                            if let Some(exit) = Box::pin(self.on_message(msg)).await {
                                return exit;
                            }
                            // A refresh may have moved the token deadline.
                            self.reset_deadline(deadline.as_mut(), far);
                        }
                        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                            return Exit { code: close::TOO_BIG, reason: reason_of(close::TOO_BIG) };
                        }
                        Some(Err(WsError::Utf8(_))) => {
                            self.state.metrics.ws_bad_frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            return Exit { code: close::INVALID_PAYLOAD, reason: reason_of(close::INVALID_PAYLOAD) };
                        }
                        Some(Err(e)) => {
                            tracing::debug!(conn = self.conn.id, error = %e, "ws read error");
                            return Exit { code: close::NORMAL, reason: "" };
                        }
                    }
                }
                _ = ticker.tick() => {
                    if self.last_seen.elapsed() > idle_timeout {
                        return Exit { code: close::IDLE, reason: reason_of(close::IDLE) };
                    }
                    let ping = tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::Ping(Default::default())));
                    if !matches!(Box::pin(ping).await, Ok(Ok(()))) {
                        return Exit { code: close::SLOW, reason: "ping write failed" };
                    }
                }
                _ = &mut deadline => {
                    if self.expiry_noticed {
                        return Exit { code: close::TOKEN_EXPIRED, reason: reason_of(close::TOKEN_EXPIRED) };
                    }
                    self.expiry_noticed = true;
                    self.conn.push(&protocol::token_expired(self.state.cfg.token_grace_s));
                    self.reset_deadline(deadline.as_mut(), far);
                }
            }
        }
    }

    /// Writes everything queued (several batches if need be): the flush tick is paid
    /// once per burst, never per batch. Returns an exit when the socket must close.
    async fn flush(
        &mut self,
        ws: &mut WebSocketStream<Upgraded>,
        rx: &mut mpsc::Receiver<Utf8Bytes>,
    ) -> Option<Exit> {
        let Session {
            conn,
            pending,
            unsent,
            ..
        } = self;
        let mut next = pending.take();
        while let Some(frame) = next.take() {
            tokio::select! {
                res = tokio::time::timeout(WRITE_TIMEOUT, write_batch(ws, frame, rx, conn, unsent)) => {
                    if !matches!(res, Ok(Ok(()))) {
                        return Some(Exit { code: close::SLOW, reason: "write failed or timed out" });
                    }
                }
                code = conn.closing() => {
                    return Some(Exit { code, reason: reason_of(code) });
                }
            }
            next = rx.try_recv().ok();
        }
        None
    }

    /// Points the deadline timer at the next token event: the expiry notice, or the close
    /// after the grace period.
    fn reset_deadline(&self, deadline: std::pin::Pin<&mut tokio::time::Sleep>, far: Duration) {
        let at = match self.expires {
            None => Instant::now() + far,
            Some(exp) if !self.expiry_noticed => exp,
            Some(exp) => exp + Duration::from_secs(self.state.cfg.token_grace_s),
        };
        deadline.reset(tokio::time::Instant::from_std(at));
    }

    /// Handles one inbound frame. Returns an exit when the socket must close.
    async fn on_message(&mut self, msg: Message) -> Option<Exit> {
        match msg {
            Message::Text(text) => {
                self.state
                    .metrics
                    .ws_ops
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (id, op) = protocol::parse(&text);
                let reply = match op {
                    _ if !self.bucket.take() => {
                        self.state
                            .metrics
                            .ws_rate_limited
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Err(Refusal::bad_request(
                            "rate_limited",
                            format!(
                                "at most {} ops per second per socket",
                                self.state.cfg.ws_ops_per_s
                            ),
                        ))
                    }
                    Ok(op) => self.on_op(id.clone(), op).await,
                    Err(e) => Err(e),
                };
                match reply {
                    Ok(Some(frame)) => {
                        self.conn.push(&frame);
                        None
                    }
                    Ok(None) => None,
                    Err(e) => {
                        tracing::debug!(conn = self.conn.id, sub = %self.identity.sub, code = e.code, "ws op refused");
                        self.conn.push(&protocol::reply_err(id, &e));
                        if matches!(
                            e.code,
                            "bad_json" | "bad_request" | "unknown_op" | "rate_limited"
                        ) {
                            self.count_invalid()
                        } else {
                            None
                        }
                    }
                }
            }
            Message::Binary(_) => Some(Exit {
                code: close::UNSUPPORTED,
                reason: reason_of(close::UNSUPPORTED),
            }),
            Message::Close(_) => Some(Exit {
                code: close::NORMAL,
                reason: "",
            }),
            // tungstenite answers pings itself; pongs only prove liveness.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        }
    }

    /// Counts invalid frames in a one-minute window; too many close the socket (1008).
    /// Refused but well-formed ops (forbidden, cooldown...) do not count.
    fn count_invalid(&mut self) -> Option<Exit> {
        self.state
            .metrics
            .ws_bad_frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.window_start.elapsed() > Duration::from_secs(60) {
            self.window_start = Instant::now();
            self.errors_in_window = 0;
        }
        self.errors_in_window += 1;
        (self.errors_in_window > self.state.cfg.ws_max_errors_per_min).then_some(Exit {
            code: close::POLICY,
            reason: reason_of(close::POLICY),
        })
    }

    /// Executes one validated op and builds its success reply.
    /// `Ok(None)` means the reply was queued already.
    async fn on_op(&mut self, id: Option<Value>, op: Op) -> Result<Option<Utf8Bytes>, Refusal> {
        tracing::debug!(conn = self.conn.id, sub = %self.identity.sub, role = %self.identity.role, ?op, "ws op");
        match op {
            Op::Ping => Ok(Some(protocol::reply_ok(id, json!({"op": "ping"})))),
            Op::Subscribe { channel, since } => {
                if self.channels.iter().any(|c| **c == *channel) {
                    return Err(Refusal::bad_request(
                        "already_subscribed",
                        format!("already subscribed to {channel}"),
                    ));
                }
                let tier = self.state.directory.check(&self.identity, &channel)?;
                let max = self.state.cfg.ws_max_channels;
                let automatic = if self.identity.is_guest() { 1 } else { 2 };
                if self.channels.len() >= max + automatic {
                    return Err(Refusal::bad_request(
                        "too_many_subscriptions",
                        format!("at most {max} channels per socket"),
                    ));
                }
                let name: Arc<str> = Arc::from(channel.as_str());
                let since = match since {
                    None => None,
                    Some(v) => Some(parse_since(&v)?),
                };
                let reply = |j: &Joined| {
                    let mut extra = json!({
                        "op": "subscribe",
                        "channel": channel,
                        "tier": tier,
                        "epoch": j.epoch,
                        "seq": j.seq,
                    });
                    if let Some(r) = j.recovered {
                        extra["recovered"] = Value::Bool(r);
                        extra["replayed"] = Value::from(j.replayed);
                    }
                    protocol::reply_ok(id.clone(), extra)
                };
                // The bus queues the reply, replays what was missed, then goes live.
                let joined = self
                    .state
                    .bus
                    .join(Join {
                        conn: &self.conn,
                        channel: &name,
                        role: self.identity.role,
                        since,
                        reply: &reply,
                    })
                    .await
                    .map_err(|e| Refusal::unavailable("bus_unavailable", e.to_string()))?;
                tracing::debug!(conn = self.conn.id, %channel, recovered = ?joined.recovered, replayed = joined.replayed, "subscribed");
                self.channels.push(name);
                Ok(None)
            }
            Op::Unsubscribe { channel } => {
                let pos = self
                    .channels
                    .iter()
                    .position(|c| **c == *channel)
                    .ok_or_else(|| {
                        Refusal::bad_request(
                            "not_subscribed",
                            format!("not subscribed to {channel}"),
                        )
                    })?;
                if matches!(
                    access::parse_channel(&channel),
                    Ok(access::ChannelKind::Broadcast | access::ChannelKind::User(_))
                ) {
                    return Err(Refusal::bad_request(
                        "reserved_channel",
                        "automatic channels cannot be left",
                    ));
                }
                let name = self.channels.swap_remove(pos);
                self.state
                    .hub
                    .unsubscribe(self.conn.id, &name, self.identity.role);
                Ok(Some(protocol::reply_ok(
                    id,
                    json!({"op": "unsubscribe", "channel": channel}),
                )))
            }
            Op::Refresh { token } => self.refresh(id, &token).await.map(Some),
            Op::Danmaku { video, draft } => {
                // Posts wait on a durable commit; run them beside the session loop so a
                // poster's socket keeps reading (and other ops keep flowing) meanwhile.
                // At most `POSTS_IN_FLIGHT` per socket: beyond that, the op waits here.
                let permit = self
                    .posts
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Refusal::internal("internal", "post queue closed"))?;
                let (state, who, conn) =
                    (self.state.clone(), self.identity.clone(), self.conn.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match state
                        .danmaku
                        .post(&state.directory, &who, &video, &draft)
                        .await
                    {
                        Ok(accepted) => {
                            tracing::info!(conn = conn.id, id = accepted.stored.id, %video, sub = %who.sub, "danmaku posted (ws)");
                            // Acknowledge first, then publish (the sender's sockets are excluded).
                            conn.push(&protocol::reply_ok(
                                id,
                                json!({"op": "danmaku", "danmaku": accepted.view}),
                            ));
                            state
                                .danmaku
                                .publish(state.bus.as_ref(), accepted.event)
                                .await;
                        }
                        Err(r) => {
                            conn.push(&protocol::reply_err(id, &r));
                        }
                    }
                });
                Ok(None)
            }
        }
    }

    /// Replaces the token: same user, possibly another role.
    async fn refresh(&mut self, id: Option<Value>, token: &str) -> Result<Utf8Bytes, Refusal> {
        if self.identity.is_guest() {
            return Err(Refusal::bad_request(
                "sub_mismatch",
                "guest sockets cannot log in; reconnect with a token",
            ));
        }
        let new = match self.state.verifier.verify(token).await {
            Ok(new) => new,
            Err(e) => {
                self.state.metrics.auth_failure(e);
                return Err(Refusal::unauthorized(e.code(), e.to_string()));
            }
        };
        if new.sub != self.identity.sub {
            return Err(Refusal::bad_request(
                "sub_mismatch",
                "a refresh must keep the same sub",
            ));
        }
        let (from, to) = (self.identity.role, new.role);
        self.identity = new;
        self.expires = self.identity.exp.map(instant_at);
        self.expiry_noticed = false;
        if from != to {
            self.conn.set_role(to);
            self.state.metrics.conn_role_changed(from, to);
            let mut kept = Vec::with_capacity(self.channels.len());
            for name in std::mem::take(&mut self.channels) {
                let automatic = matches!(
                    access::parse_channel(&name),
                    Ok(access::ChannelKind::Broadcast | access::ChannelKind::User(_))
                );
                match self.state.directory.check(&self.identity, &name) {
                    Err(denied) if !automatic => {
                        self.state.hub.unsubscribe(self.conn.id, &name, from);
                        self.conn.push(&protocol::unsubscribed(
                            &name,
                            denied.code,
                            &denied.message,
                        ));
                    }
                    _ => {
                        self.state.hub.change_group(&self.conn, &name, from, to);
                        kept.push(name);
                    }
                }
            }
            self.channels = kept;
            tracing::info!(conn = self.conn.id, sub = %self.identity.sub, %from, %to, "ws role changed by refresh");
        }
        Ok(protocol::reply_ok(
            id,
            json!({"op": "refresh", "user": protocol::UserInfo::of(&self.identity)}),
        ))
    }
}

/// Reads `{"seq": N, "epoch": "..."}`.
fn parse_since(v: &Value) -> Result<Since, Refusal> {
    let seq = v["seq"].as_u64();
    let epoch = v["epoch"].as_str();
    match (seq, epoch) {
        (Some(seq), Some(epoch)) if epoch.len() <= 64 => Ok(Since {
            seq,
            epoch: epoch.to_string(),
        }),
        (Some(seq), None) => Ok(Since {
            seq,
            epoch: String::new(),
        }),
        _ => Err(Refusal::bad_request(
            "bad_request",
            "since is {\"seq\": N, \"epoch\": \"...\"}",
        )),
    }
}

/// Largest batched frame: beyond this, the rest waits for the next write.
const BATCH_BYTES: usize = 64 * 1024;

/// Writes `first` and whatever else is queued (up to [`BATCH`] frames) as ONE WebSocket
/// text frame: a JSON array of them when there are several, as the protocol allows.
///
/// The frame is built here, header included, in one buffer sized exactly and freed after
/// the write, and written straight to the socket: one copy of each event and one
/// syscall per batch. Going through tungstenite's `send` would copy it again into a
/// write buffer that keeps its largest size for the life of the socket (64 KiB × 10k
/// sockets under load). Pings, pongs and the close frame still go through tungstenite,
/// whose own buffer is flushed first so frames never interleave.
async fn write_batch(
    ws: &mut WebSocketStream<Upgraded>,
    first: Utf8Bytes,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
    conn: &Conn,
    unsent: &mut Unsent,
) -> Result<(), WsError> {
    let mut frames = Vec::new();
    let mut bytes = first.len();
    while frames.len() + 1 < BATCH && bytes < BATCH_BYTES {
        let Ok(next) = rx.try_recv() else { break };
        bytes += next.len();
        frames.push(next);
    }
    let payload = if frames.is_empty() {
        bytes
    } else {
        bytes + frames.len() + 2
    };
    let mut buf = Vec::with_capacity(payload + 10);
    frame_header(&mut buf, payload);
    if frames.is_empty() {
        buf.extend_from_slice(first.as_bytes());
    } else {
        buf.push(b'[');
        buf.extend_from_slice(first.as_bytes());
        for f in &frames {
            buf.push(b',');
            buf.extend_from_slice(f.as_bytes());
        }
        buf.push(b']');
    }
    drop(frames);
    ws.flush().await?;
    *unsent = Some((buf, 0));
    let res = write_unsent(ws, unsent).await;
    conn.written(bytes);
    res
}

/// A raw frame being written and how many of its bytes are out.
type Unsent = Option<(Vec<u8>, usize)>;

/// Writes the rest of `unsent`, keeping count as it goes: each `write` is cancel-safe, so
/// if this future is dropped (the socket is closing) the count says what is left.
async fn write_unsent(
    ws: &mut WebSocketStream<Upgraded>,
    unsent: &mut Unsent,
) -> Result<(), WsError> {
    if let Some((buf, off)) = unsent.as_mut() {
        while *off < buf.len() {
            match ws.get_mut().write(&buf[*off..]).await {
                Ok(0) => return Err(WsError::Io(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => *off += n,
                Err(e) => return Err(WsError::Io(e)),
            }
        }
    }
    *unsent = None;
    Ok(())
}

/// Appends the header of an unmasked, final text frame of `len` bytes (RFC 6455 §5.2).
fn frame_header(buf: &mut Vec<u8>, len: usize) {
    buf.push(0x81);
    if len < 126 {
        buf.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        buf.push(126);
        buf.extend_from_slice(&len.to_be_bytes());
    } else {
        buf.push(127);
        buf.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::frame_header;

    /// The three length encodings, at their boundaries.
    #[test]
    fn frame_header_lengths() {
        let h = |n| {
            let mut b = Vec::new();
            frame_header(&mut b, n);
            b
        };
        assert_eq!(h(0), [0x81, 0]);
        assert_eq!(h(125), [0x81, 125]);
        assert_eq!(h(126), [0x81, 126, 0, 126]);
        assert_eq!(h(65_535), [0x81, 126, 0xff, 0xff]);
        assert_eq!(h(65_536), [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
