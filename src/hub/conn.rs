//! One connected socket as the hub sees it: identity, role group, the TCP stream and a
//! small write queue inside the connection.
//!
//! Whoever has a frame for this socket (a room flush, a user push, the session's own
//! replies, the heartbeat) calls [`Conn::send`]. When nothing is queued, the frame is
//! written straight to the socket (`try_write`: no task, no channel, no wake-up); only
//! when the kernel buffer is full does the rest wait in the queue, and the session task
//! is woken to finish it when the socket is writable again. The queue is a `VecDeque`
//! of shared frames: empty and allocation-free while idle, bounded by count and bytes;
//! overflowing it closes the socket as slow (4008) without making the sender wait.
//!
//! One small mutex per socket orders the writes (frames never interleave); it is only
//! ever contended by two senders writing to the same socket at the same moment.

use std::{
    collections::VecDeque,
    hash::{BuildHasher, Hasher},
    io::{self, IoSlice},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use arc_swap::ArcSwapOption;
use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
use tokio::net::TcpStream;

use crate::{limits::Permit, model::Role};

/// WebSocket close codes used by the server. The AsyncAPI document lists each one.
pub mod close {
    /// Normal closure, after the client's own close.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Broken framing (RFC 6455 "protocol error").
    pub const PROTOCOL: u16 = 1002;
    /// A binary frame was sent: the protocol is JSON text only.
    pub const UNSUPPORTED: u16 = 1003;
    /// Never sent: the connection broke (a write failed), so the socket just hangs up.
    pub const ABNORMAL: u16 = 1006;
    /// A text frame that is not valid UTF-8, or compressed data that does not inflate
    /// (RFC 6455 "invalid frame payload data").
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Too many invalid frames or operations.
    pub const POLICY: u16 = 1008;
    /// A message larger than `ws.max_message` (after inflating, when compressed).
    pub const TOO_BIG: u16 = 1009;
    /// An internal error.
    pub const INTERNAL: u16 = 1011;
    /// The token expired and was not refreshed within the grace period.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// No frame from the client within `ws.idle_timeout_s`.
    pub const IDLE: u16 = 4002;
    /// The outbox overflowed, or a write could not finish in time: the client reads too
    /// slowly.
    pub const SLOW: u16 = 4008;
}

/// Bounds of every socket's queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueCaps {
    /// Most frames waiting.
    pub max_msgs: u32,
    /// Most bytes waiting.
    pub max_bytes: u32,
}

/// Frames that could not be written yet, oldest first.
#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    /// Bytes waiting, the written part of the first frame excluded.
    bytes: usize,
    /// Clock second at which the queue last became non-empty (write timeouts).
    since: u32,
    /// The first frame was partly written: it must be finished before anything else,
    /// a close frame included, or the stream would be corrupt.
    head_started: bool,
}

/// What happened to one [`Conn::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written to the kernel at once.
    Written,
    /// Queued behind a full kernel buffer; the session finishes it.
    Queued,
    /// The queue overflowed just now; the socket is being closed as slow.
    Overflowed,
    /// The socket is closing; nothing was written.
    Closed,
}

impl Sent {
    /// Whether the frame will reach the socket (now or from the queue).
    pub fn accepted(self) -> bool {
        matches!(self, Sent::Written | Sent::Queued)
    }
}

/// The hub's handle on one socket.
#[derive(Debug)]
pub struct Conn {
    /// Process-unique connection id.
    pub id: u64,
    /// The user id (a placeholder for guests). Fixed for the life of the socket.
    pub sub: Arc<str>,
    /// Hash of `sub`, so fan-out can skip a sender's sockets with one compare.
    sub_hash: u64,
    /// Current role; changes only through a token refresh.
    role: AtomicU8,
    /// permessage-deflate was negotiated: compressed frames are welcome.
    pub deflate: bool,
    stream: TcpStream,
    queue: Mutex<Queue>,
    caps: QueueCaps,
    /// Close code requested; 0 while open. Written under the queue lock.
    close_code: AtomicU16,
    /// Wakes the session: a frame was queued, a close was asked, a post finished.
    waker: AtomicWaker,
    /// Clock second of the last frame read from the client.
    last_seen: AtomicU32,
    /// Clock second of the last ping written.
    last_ping: AtomicU32,
    /// Token expiry in unix seconds (0: none), and whether its notice went out (bit 63).
    token: AtomicU64,
    /// Comment posts of this socket waiting on the store.
    posts: AtomicU8,
    /// The video ids its token's `mod` claim names (none for nearly every socket), so
    /// the moderators' marked copies reach claim moderators live; replaced on refresh.
    moderates: ArcSwapOption<Box<[Arc<str>]>>,
    /// The socket's slot under the connection caps, given back when the handle goes.
    _permit: Permit,
}

/// Bit of [`Conn::token`] set once the `token_expired` notice went out.
const NOTICED: u64 = 1 << 63;

/// The hasher behind `Conn::sub_hash`; fixed keys are fine, it is never exposed.
pub fn hash_sub(sub: &str) -> u64 {
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    h.write(sub.as_bytes());
    h.finish()
}

impl Conn {
    /// A handle owning `stream` and the socket's connection-cap `permit`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        sub: Arc<str>,
        role: Role,
        stream: TcpStream,
        deflate: bool,
        caps: QueueCaps,
        now: u32,
        permit: Permit,
    ) -> Arc<Conn> {
        Arc::new(Conn {
            id,
            sub_hash: hash_sub(&sub),
            sub,
            role: AtomicU8::new(role.index() as u8),
            deflate,
            stream,
            queue: Mutex::default(),
            caps,
            close_code: AtomicU16::new(0),
            waker: AtomicWaker::new(),
            last_seen: AtomicU32::new(now),
            last_ping: AtomicU32::new(now),
            token: AtomicU64::new(0),
            posts: AtomicU8::new(0),
            moderates: ArcSwapOption::const_empty(),
            _permit: permit,
        })
    }

    /// Whether this socket belongs to the user whose `sub` hashes to `hash`.
    pub fn is_user(&self, hash: u64, sub: &str) -> bool {
        self.sub_hash == hash && *self.sub == *sub
    }

    /// The socket's current role.
    pub fn role(&self) -> Role {
        Role::from_index(self.role.load(Ordering::Acquire))
    }

    /// Records a new role after a refresh (the session moves the channel groups).
    pub fn set_role(&self, role: Role) {
        self.role.store(role.index() as u8, Ordering::Release);
    }

    /// Records the video ids the socket's token moderates by its `mod` claim (at
    /// upgrade and on each refresh).
    pub fn set_moderates(&self, videos: &[Arc<str>]) {
        self.moderates
            .store((!videos.is_empty()).then(|| Arc::new(videos.into())));
    }

    /// Whether the socket's token moderates the video of `channel` (`video:{id}`) by
    /// its `mod` claim.
    pub fn moderates(&self, channel: &str) -> bool {
        let Some(video) = channel.strip_prefix(crate::model::channel::VIDEO_PREFIX) else {
            return false;
        };
        self.moderates
            .load()
            .as_deref()
            .is_some_and(|list| list.iter().any(|v| &**v == video))
    }

    /// The TCP stream, for the session's reads.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one shared frame, or queues it behind earlier ones. Never waits.
    pub fn send(&self, frame: &Bytes) -> Sent {
        self.send_all(std::slice::from_ref(frame))
    }

    /// Writes several frames in order, with one vectored write when nothing is queued.
    pub fn send_all(&self, frames: &[Bytes]) -> Sent {
        let mut q = self.lock();
        if self.close_code.load(Ordering::Relaxed) != 0 {
            return Sent::Closed;
        }
        self.write_or_queue(&mut q, frames, true)
    }

    /// Queues the socket's first frame without writing it. The session calls this
    /// before it registers the socket, so nothing published after the registration can
    /// overtake it, and a client that has read it knows the hub already holds its
    /// socket. The session's first drain writes it.
    pub fn queue_first(&self, frame: &Bytes) {
        let mut q = self.lock();
        debug_assert!(q.frames.is_empty(), "the first frame is queued first");
        self.push_rest(&mut q, std::slice::from_ref(frame), 0);
        q.since = crate::model::time::clock_s();
    }

    /// The body of [`Conn::send_all`], under the queue lock. `bounded`: the caps apply
    /// (the session's own close frame goes past them).
    fn write_or_queue(&self, q: &mut Queue, frames: &[Bytes], bounded: bool) -> Sent {
        let total: usize = frames.iter().map(Bytes::len).sum();
        let mut written = 0;
        if q.frames.is_empty() {
            match self.write_now(frames) {
                Ok(n) if n == total => return Sent::Written,
                Ok(n) => written = n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::debug!(conn = self.id, error = %e, "write failed");
                    self.close_locked(q, close::ABNORMAL);
                    return Sent::Closed;
                }
            }
        }
        let waiting = total - written;
        if bounded
            && (q.bytes + waiting > self.caps.max_bytes as usize
                || q.frames.len() + frames.len() > self.caps.max_msgs as usize)
        {
            if written > 0 {
                // Part of this write is out: keep exactly its rest so the stream stays
                // well-formed up to the close.
                self.push_rest(q, frames, written);
            }
            return if self.close_locked(q, close::SLOW) {
                Sent::Overflowed
            } else {
                Sent::Closed
            };
        }
        let was_empty = q.frames.is_empty();
        self.push_rest(q, frames, written);
        if was_empty {
            q.since = crate::model::time::clock_s();
            self.waker.wake();
        }
        Sent::Queued
    }

    /// Queues what is left of `frames` once `written` bytes of them are out.
    fn push_rest(&self, q: &mut Queue, frames: &[Bytes], mut written: usize) {
        for f in frames {
            if written >= f.len() {
                written -= f.len();
                continue;
            }
            let rest = f.slice(written..);
            if written > 0 {
                q.head_started = true;
            }
            written = 0;
            q.bytes += rest.len();
            q.frames.push_back(rest);
        }
    }

    /// One `write`/`writev` of `frames`, without waiting.
    fn write_now(&self, frames: &[Bytes]) -> io::Result<usize> {
        match frames {
            [one] => self.stream.try_write(one),
            _ => {
                let mut slices = [IoSlice::new(&[]); 64];
                let n = frames.len().min(slices.len());
                for (s, f) in slices.iter_mut().zip(frames) {
                    *s = IoSlice::new(f);
                }
                self.stream.try_write_vectored(&slices[..n])
            }
        }
    }

    /// Whether frames are waiting for the socket to become writable.
    pub fn has_queued(&self) -> bool {
        !self.lock().frames.is_empty()
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Whether the queue is at least half full: the session then stops reading the
    /// client's ops (their replies would only overflow it) until writes catch up.
    pub fn backpressured(&self) -> bool {
        let q = self.lock();
        q.frames.len() * 2 >= self.caps.max_msgs as usize
            || q.bytes * 2 >= self.caps.max_bytes as usize
    }

    /// Since when (clock second) frames have waited, if any do.
    pub fn queued_since(&self) -> Option<u32> {
        let q = self.lock();
        (!q.frames.is_empty()).then_some(q.since)
    }

    /// Writes queued frames while the socket takes them (vectored, up to 64 at a time).
    /// `Ready(Ok)` once the queue is empty; `Pending` with the waker registered for
    /// writability; `Ready(Err)` when the socket broke.
    pub fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            {
                let q = self.lock();
                if q.frames.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            }
            match self.stream.poll_write_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let mut q = self.lock();
            let mut slices = [IoSlice::new(&[]); 64];
            let n = q.frames.len().min(slices.len());
            for (s, f) in slices.iter_mut().zip(q.frames.iter()) {
                *s = IoSlice::new(f);
            }
            match self.stream.try_write_vectored(&slices[..n]) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(mut done) => {
                    q.bytes -= done;
                    while done > 0 {
                        let front = q.frames.front_mut().expect("written bytes were queued");
                        if done >= front.len() {
                            done -= front.len();
                            q.frames.pop_front();
                            q.head_started = false;
                        } else {
                            front.advance(done);
                            q.head_started = true;
                            done = 0;
                        }
                    }
                    if q.frames.is_empty() {
                        // Give back the ring buffer of a burst: idle sockets hold none.
                        q.frames = VecDeque::new();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Asks the session to close with `code`. Returns false if a close was already asked.
    pub fn request_close(&self, code: u16) -> bool {
        let mut q = self.lock();
        self.close_locked(&mut q, code)
    }

    /// [`Conn::request_close`] under the queue lock. A slow reader gets nothing more:
    /// its queue is dropped but for the rest of a frame already started.
    fn close_locked(&self, q: &mut Queue, code: u16) -> bool {
        let first = self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            if code == close::SLOW || code == close::ABNORMAL {
                let keep = if q.head_started { 1 } else { 0 };
                while q.frames.len() > keep {
                    if let Some(f) = q.frames.pop_back() {
                        q.bytes -= f.len();
                    }
                }
            }
            self.waker.wake();
        }
        first
    }

    /// Queues the session's final frame (the close frame) past the caps, after whatever
    /// is still queued. Returns false when the socket is broken.
    pub fn send_final(&self, frame: &Bytes) -> bool {
        let mut q = self.lock();
        self.write_or_queue(&mut q, std::slice::from_ref(frame), false)
            .accepted()
    }

    /// Whether a frame was cut short and never finished: then nothing more may be
    /// written (a close frame inside it would corrupt the stream).
    pub fn mid_frame(&self) -> bool {
        self.lock().head_started
    }

    /// The close code asked for, if any.
    pub fn close_requested(&self) -> Option<u16> {
        match self.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Ends the TCP connection now (FIN both ways). The session calls it last: the
    /// handle itself may live on a little in the hub's maps (their entries are freed
    /// by epoch) or in a pass's snapshot, but the socket must not.
    pub fn shutdown(&self) {
        self.request_close(close::ABNORMAL);
        let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Both);
    }

    /// Registers the session's waker (called on every poll of the session task).
    pub fn register(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
    }

    /// Wakes the session.
    pub fn wake(&self) {
        self.waker.wake();
    }

    /// Records that the client sent a frame (clock seconds).
    pub fn seen(&self, now: u32) {
        self.last_seen.store(now, Ordering::Relaxed);
    }

    /// Clock second of the last frame read.
    pub fn last_seen(&self) -> u32 {
        self.last_seen.load(Ordering::Relaxed)
    }

    /// Records a ping written at clock second `now`; returns the previous one.
    pub fn pinged(&self, now: u32) -> u32 {
        self.last_ping.swap(now, Ordering::Relaxed)
    }

    /// Clock second of the last ping.
    pub fn last_ping(&self) -> u32 {
        self.last_ping.load(Ordering::Relaxed)
    }

    /// Sets the token expiry (unix seconds, 0 for none) and re-arms its notice.
    pub fn set_token_expiry(&self, exp: u64) {
        self.token.store(exp & !NOTICED, Ordering::Release);
    }

    /// The token expiry and whether its notice went out.
    pub fn token_expiry(&self) -> (u64, bool) {
        let t = self.token.load(Ordering::Acquire);
        (t & !NOTICED, t & NOTICED != 0)
    }

    /// Marks the expiry notice as sent, unless a refresh moved the expiry meanwhile.
    pub fn mark_noticed(&self, exp: u64) -> bool {
        self.token
            .compare_exchange(exp, exp | NOTICED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Takes a slot for a comment post, up to `max` at once.
    pub fn try_take_post(&self, max: u8) -> bool {
        self.posts
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a post slot back and wakes the session (it may wait for one).
    pub fn post_done(&self) {
        self.posts.fetch_sub(1, Ordering::AcqRel);
        self.waker.wake();
    }
}
