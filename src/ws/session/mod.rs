//! One task per socket: it reads the client's frames and runs its ops, finishes writes
//! that found the kernel buffer full, and closes with a documented code.
//!
//! The task is small and holds no timer and no channel. Frames for the socket are
//! written by whoever has them ([`crate::hub::conn::Conn::send`]); the task is woken
//! only when the client sent something, when a write must wait for the socket to drain,
//! when a close is asked, or when an op it waits on finishes. Deadlines (heartbeat,
//! idle, token expiry) are the hub clock's ([`crate::hub::clock`]). Ops run one at a
//! time, in order (`ops`, the session's own handlers); comment posts run beside the
//! session, bounded per socket, so a poster keeps reading while its post waits on the
//! store.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
};

use bytes::Bytes;

mod ops;

use self::ops::Done;
use super::{
    close::{self, Exit},
    protocol,
    reader::{Flow, Limits, Message, Reader},
};
use crate::{
    frame::{self, Malformed},
    hub::{self, conn::Conn},
    model::{
        Identity, Refusal,
        time::{clock_ms, clock_s},
    },
    state::State,
};

/// An op that waits (a join through the bus, a token check, a post slot).
pub type OpFuture = Pin<Box<dyn Future<Output = Done> + Send>>;

/// Reads handled per wake-up before the task yields to others.
const READS_PER_TURN: u32 = 16;

/// A connection's own state, owned by its task.
pub struct Session {
    pub(super) state: Arc<State>,
    pub(super) conn: Arc<Conn>,
    pub(super) identity: Arc<Identity>,
    /// Rooms joined by `subscribe` (`broadcast` and the personal channel are implicit).
    pub(super) channels: Vec<Arc<str>>,
    reader: Reader,
    /// The op running now; frames after it wait in the reader.
    pub(super) op: Option<OpFuture>,
    /// Frames are waiting in the reader behind a finished op.
    resume: bool,
    /// Set while handling frames when the socket must close.
    exit: Option<Exit>,
    /// The op rate limit: tokens left and the clock (ms) of the last refill.
    tokens: f32,
    refilled_ms: u32,
    /// Invalid ops in the current minute, and the clock second it started.
    errors: u32,
    errors_since: u32,
}

/// Runs a session to completion. `client` is the address the upgrade was admitted for
/// (behind trusted proxies, the forwarded one), logged when the socket opens. `early`
/// holds bytes the client sent before the handshake finished (none, from a well-behaved
/// client).
pub async fn run(
    state: Arc<State>,
    conn: Arc<Conn>,
    identity: Arc<Identity>,
    client: std::net::IpAddr,
    mut early: Vec<u8>,
) {
    let mut s = Session {
        tokens: state.cfg.ws.ops_burst.max(state.cfg.ws.ops_per_s).max(1) as f32,
        refilled_ms: clock_ms(),
        errors: 0,
        errors_since: clock_s(),
        state,
        conn,
        identity,
        channels: Vec::new(),
        reader: Reader::default(),
        op: None,
        resume: false,
        exit: None,
    };
    s.start(client, &mut early);
    drop(early);
    let exit = std::future::poll_fn(|cx| s.poll_turn(cx)).await;
    // Boxed: the closing handshake's state is needed once, at the end.
    let conn = s.conn.clone();
    let (reader, limits) = s.reader_and_limits();
    let exit = Box::pin(close::close(&conn, reader, limits, exit)).await;
    s.state.hub.unregister(&s.conn, &s.channels);
    s.conn.shutdown();
    tracing::info!(
        conn = s.conn.id,
        sub = %s.identity.sub,
        role = %s.identity.role,
        code = exit.code,
        reason = exit.reason,
        "ws close"
    );
}

impl Session {
    /// The first frame, the registration in the hub, then the early bytes.
    fn start(&mut self, client: std::net::IpAddr, early: &mut [u8]) {
        let conn = &self.conn;
        let welcome = protocol::welcome(conn.id, &self.identity, self.state.cfg.ws.heartbeat_s);
        // Welcome is queued before the registration (nothing can overtake it) and
        // written after it by the first drain: a client that read it is reachable.
        conn.queue_first(&welcome);
        conn.set_token_expiry(self.identity.exp.unwrap_or(0));
        self.state.hub.register(conn, self.identity.is_guest());
        tracing::info!(conn = conn.id, sub = %self.identity.sub, role = %self.identity.role, %client, deflate = conn.deflate, "ws open");
        // Shutdown closes every registered socket (`Hub::close_all`); one that registered
        // after that sweep sees the flag here.
        if self.state.shutdown.is_started() {
            conn.request_close(hub::conn::close::GOING_AWAY);
        }
        if !early.is_empty() {
            let mut reader = std::mem::take(&mut self.reader);
            let limits = self.limits();
            let fed = reader.feed(early, limits, &mut |m| self.on_message(m));
            self.reader = reader;
            self.after_feed(fed);
        }
    }

    /// Reading limits of this socket.
    fn limits(&self) -> Limits {
        Limits {
            max_message: self.state.cfg.ws.max_message,
            deflate: self.conn.deflate,
        }
    }

    /// One turn of the task: everything that can progress without waiting.
    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<Exit> {
        self.conn.register(cx);
        let mut reads = READS_PER_TURN;
        loop {
            if let Some(exit) = self.exit.take() {
                return Poll::Ready(exit);
            }
            if let Some(code) = self.conn.close_requested() {
                return Poll::Ready(Exit::requested(code));
            }
            if let Some(op) = self.op.as_mut()
                && let Poll::Ready(done) = op.as_mut().poll(cx)
            {
                self.op = None;
                ops::finish(self, done);
                continue;
            }
            if let Poll::Ready(Err(e)) = self.conn.poll_drain(cx) {
                tracing::debug!(conn = self.conn.id, error = %e, "ws write failed");
                return Poll::Ready(Exit::broken());
            }
            // Backpressure on the client: while its queue is half full, stop reading
            // its ops (their replies would only overflow it) until writes catch up.
            if self.op.is_some() || self.conn.backpressured() {
                return Poll::Pending;
            }
            if self.resume {
                self.resume = false;
                let mut reader = std::mem::take(&mut self.reader);
                let limits = self.limits();
                let fed = reader.handle_kept(limits, &mut |m| self.on_message(m));
                self.reader = reader;
                self.after_feed(fed);
                continue;
            }
            let conn = self.conn.clone();
            match conn.stream().poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Exit::broken()),
                Poll::Ready(Ok(())) => {}
            }
            let mut reader = std::mem::take(&mut self.reader);
            let limits = self.limits();
            let read = reader.read(conn.stream(), limits, &mut |m| self.on_message(m));
            self.reader = reader;
            match read {
                Ok(Ok(true)) => self.after_feed(Ok(())),
                Ok(Ok(false)) => return Poll::Ready(Exit::gone()),
                Ok(Err(bad)) => self.after_feed(Err(bad)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return Poll::Ready(Exit::gone()),
            }
            reads -= 1;
            if reads == 0 {
                // Fair to the other sockets: come back on the next turn.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Turns a framing error into the close it calls for.
    fn after_feed(&mut self, fed: Result<(), Malformed>) {
        let Err(bad) = fed else { return };
        let metrics = &self.state.metrics;
        metrics.ws_bad_frames.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(conn = self.conn.id, ?bad, "ws frame refused");
        if self.exit.is_none() {
            self.exit = Some(Exit::malformed(bad));
        }
    }

    /// Handles one client message. Pauses reading while an op runs or once the socket
    /// must close.
    fn on_message(&mut self, msg: Message<'_>) -> Flow {
        self.conn.seen(clock_s());
        if self.exit.is_some() {
            return Flow::Pause;
        }
        match msg {
            Message::Text { text, inflated } => {
                if inflated {
                    self.state
                        .metrics
                        .ws_inflated
                        .fetch_add(1, Ordering::Relaxed);
                }
                self.on_text(text);
                if self.exit.is_some() {
                    return Flow::Pause;
                }
                if self.op.is_some() {
                    self.resume = true;
                    return Flow::Pause;
                }
                Flow::Continue
            }
            Message::Ping(payload) => {
                self.conn.send(&frame::pong(payload));
                Flow::Continue
            }
            Message::Pong => Flow::Continue,
            Message::Close(code) => {
                self.exit = Some(Exit::peer(code));
                Flow::Pause
            }
        }
    }

    /// Parses and runs one op.
    fn on_text(&mut self, text: &str) {
        self.state.metrics.ws_ops.fetch_add(1, Ordering::Relaxed);
        let (id, op) = protocol::parse(text);
        if !self.take_token() {
            self.state
                .metrics
                .ws_rate_limited
                .fetch_add(1, Ordering::Relaxed);
            let refusal = Refusal::bad_request(
                "rate_limited",
                format!(
                    "at most {} ops per second per socket",
                    self.state.cfg.ws.ops_per_s
                ),
            );
            self.refuse(id, &refusal);
            return;
        }
        match op {
            Ok(op) => ops::dispatch(self, id, op),
            Err(e) => self.refuse(id, &e),
        }
    }

    /// Sends an error reply; malformed ops count toward the 1008 limit.
    pub(super) fn refuse(&mut self, id: Option<serde_json::Value>, e: &Refusal) {
        tracing::debug!(conn = self.conn.id, sub = %self.identity.sub, code = e.code, "ws op refused");
        self.conn.send(&protocol::reply_err(id, e));
        if matches!(
            e.code,
            "bad_json" | "bad_request" | "unknown_op" | "rate_limited"
        ) {
            self.count_invalid();
        }
    }

    /// Sends a frame to this socket.
    pub(super) fn send(&self, frame: &Bytes) {
        self.conn.send(frame);
    }

    /// Counts invalid frames in a one-minute window; too many close the socket (1008).
    /// Refused but well-formed ops (forbidden, cooldown...) do not count.
    fn count_invalid(&mut self) {
        self.state
            .metrics
            .ws_bad_frames
            .fetch_add(1, Ordering::Relaxed);
        let now = clock_s();
        if now.saturating_sub(self.errors_since) > 60 {
            self.errors_since = now;
            self.errors = 0;
        }
        self.errors += 1;
        if self.errors > self.state.cfg.ws.max_errors_per_min {
            self.exit = Some(Exit::policy());
        }
    }

    /// Takes one token of the op rate limit (`ws.ops_per_s`, bursts of `ws.ops_burst`).
    fn take_token(&mut self) -> bool {
        let rate = self.state.cfg.ws.ops_per_s;
        if rate == 0 {
            return true;
        }
        let burst = self.state.cfg.ws.ops_burst.max(rate).max(1) as f32;
        let now = clock_ms();
        let elapsed = now.wrapping_sub(self.refilled_ms) as f32 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate as f32).min(burst);
        self.refilled_ms = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The reader, for the close handshake.
    pub(super) fn reader_and_limits(&mut self) -> (&mut Reader, Limits) {
        let limits = self.limits();
        (&mut self.reader, limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task's future is what every idle socket pays for: keep it small. tokio
    /// rounds a task up to 128 bytes; a session future under ~150 bytes keeps the task
    /// at 256 (see BENCHMARKS.md, memory per socket).
    #[test]
    fn the_session_stays_small() {
        let size = std::mem::size_of::<Session>();
        assert!(size <= 128, "Session is {size} bytes");
    }
}
