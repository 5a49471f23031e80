//! One connected socket as the hub sees it: identity, role group and a bounded outbox.
//!
//! The session task owns the socket; the hub only holds an `Arc<Conn>` and pushes shared
//! frames into its outbox. Pushing never waits: a full outbox marks the socket slow and
//! asks the session to close it, so one stalled client cannot hold up a publisher.

use std::sync::{
    Arc,
    atomic::{AtomicU8, AtomicU16, AtomicUsize, Ordering},
};

use futures_util::task::AtomicWaker;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::model::Role;

/// WebSocket close codes used by the server. The AsyncAPI document lists each one.
pub mod close {
    /// Normal closure, after the client's own close.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A binary frame was sent: the protocol is JSON text only.
    pub const UNSUPPORTED: u16 = 1003;
    /// A text frame that is not valid UTF-8 (RFC 6455 "invalid frame payload data").
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Too many invalid frames or operations.
    pub const POLICY: u16 = 1008;
    /// A message larger than `ws_max_message`.
    pub const TOO_BIG: u16 = 1009;
    /// An internal error.
    pub const INTERNAL: u16 = 1011;
    /// The token expired and was not refreshed within the grace period.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// No frame from the client within `idle_timeout_s`.
    pub const IDLE: u16 = 4002;
    /// The outbox overflowed: the client reads too slowly.
    pub const SLOW: u16 = 4008;
}

/// The hub's handle on one socket.
#[derive(Debug)]
pub struct Conn {
    /// Process-unique connection id.
    pub id: u64,
    /// The user id (a placeholder for guests). Fixed for the life of the socket.
    pub sub: Arc<str>,
    /// Current role; changes only through a token refresh.
    role: AtomicU8,
    /// Outgoing frames, bounded by count.
    tx: mpsc::Sender<Utf8Bytes>,
    /// Bytes queued but not yet written, bounded by `max_bytes`.
    queued: AtomicUsize,
    max_bytes: usize,
    /// Close code requested by the hub; 0 while open.
    close_code: AtomicU16,
    /// Wakes the session when `close_code` is set. An `AtomicWaker`, not a `Notify`: the
    /// session polls this on every turn of its loop, and a waiting `Notify` takes its
    /// mutex on each poll.
    kill: AtomicWaker,
}

/// What happened to one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for writing.
    Queued,
    /// The outbox overflowed just now; the socket is being closed as slow.
    Overflowed,
    /// The socket is already closing; nothing was queued.
    Closed,
}

impl Conn {
    /// Creates a handle and the receiving end of its outbox.
    pub fn new(
        id: u64,
        sub: Arc<str>,
        role: Role,
        max_msgs: usize,
        max_bytes: usize,
    ) -> (Arc<Conn>, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(max_msgs);
        let conn = Arc::new(Conn {
            id,
            sub,
            role: AtomicU8::new(role.index() as u8),
            tx,
            queued: AtomicUsize::new(0),
            max_bytes,
            close_code: AtomicU16::new(0),
            kill: AtomicWaker::new(),
        });
        (conn, rx)
    }

    /// The socket's current role.
    pub fn role(&self) -> Role {
        Role::from_index(self.role.load(Ordering::Acquire))
    }

    /// Records a new role after a refresh (the session moves the channel groups).
    pub fn set_role(&self, role: Role) {
        self.role.store(role.index() as u8, Ordering::Release);
    }

    /// Queues a shared frame without waiting.
    pub fn push(&self, frame: &Utf8Bytes) -> Pushed {
        if self.close_code.load(Ordering::Relaxed) != 0 {
            return Pushed::Closed;
        }
        let len = frame.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before + len > self.max_bytes {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return self.overflow();
        }
        match self.tx.try_send(frame.clone()) {
            Ok(()) => Pushed::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.fetch_sub(len, Ordering::Relaxed);
                self.overflow()
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.fetch_sub(len, Ordering::Relaxed);
                Pushed::Closed
            }
        }
    }

    /// Marks the socket slow; only the first overflow reports `Overflowed`.
    fn overflow(&self) -> Pushed {
        if self.request_close(close::SLOW) {
            Pushed::Overflowed
        } else {
            Pushed::Closed
        }
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The session wrote `len` bytes of queued frames.
    pub fn written(&self, len: usize) {
        self.queued.fetch_sub(len, Ordering::Relaxed);
    }

    /// Asks the session to close with `code`. Returns false if a close was already asked.
    pub fn request_close(&self, code: u16) -> bool {
        let first = self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            self.kill.wake();
        }
        first
    }

    /// The close code asked for, if any.
    pub fn close_requested(&self) -> Option<u16> {
        match self.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Resolves once a close has been requested. Only the session task awaits it (an
    /// `AtomicWaker` holds one waker).
    pub async fn closing(&self) -> u16 {
        std::future::poll_fn(|cx| {
            if let Some(code) = self.close_requested() {
                return std::task::Poll::Ready(code);
            }
            self.kill.register(cx.waker());
            // A close requested between the check and the registration woke nobody.
            match self.close_requested() {
                Some(code) => std::task::Poll::Ready(code),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }
}
