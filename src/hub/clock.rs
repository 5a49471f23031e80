//! The hub's clock: one task per node that runs due room flushes and, four times a
//! second, sweeps every socket for what needs time (heartbeat pings, the idle timeout,
//! token expiry, writes stuck behind a full buffer).
//!
//! No socket owns a timer: ten thousand idle sockets cost one sweep over an array, not
//! ten thousand timer entries and wake-ups.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::sync::Notify;

use super::{Hub, channel::Channel, conn::close};
use crate::{
    frame,
    model::time::{clock_s, now_secs},
    shutdown::Shutdown,
};

/// How often every socket is checked.
pub const SWEEP: Duration = Duration::from_millis(250);

/// A room flush due at an instant.
struct Due {
    at: Instant,
    /// Breaks ties so entries never compare their channels.
    order: u64,
    channel: Arc<Channel>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// Room flushes waiting for their window, earliest first.
#[derive(Default)]
pub struct Timer {
    heap: Mutex<(BinaryHeap<Reverse<Due>>, u64)>,
    wake: Notify,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").finish_non_exhaustive()
    }
}

impl Timer {
    /// Asks for `channel` to be flushed at `at`. Wakes the clock task only when this is
    /// now the earliest deadline.
    pub fn schedule(&self, at: Instant, channel: Arc<Channel>) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = h.0.peek().is_none_or(|Reverse(d)| at < d.at);
        h.1 += 1;
        let order = h.1;
        h.0.push(Reverse(Due { at, order, channel }));
        drop(h);
        if earliest {
            self.wake.notify_one();
        }
    }

    /// The earliest deadline.
    fn next(&self) -> Option<Instant> {
        let h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        h.0.peek().map(|Reverse(d)| d.at)
    }

    /// Takes every flush due at `now`.
    fn due(&self, now: Instant) -> Vec<Arc<Channel>> {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        while h.0.peek().is_some_and(|Reverse(d)| d.at <= now) {
            if let Some(Reverse(d)) = h.0.pop() {
                out.push(d.channel);
            }
        }
        out
    }
}

/// What the sweep needs from the configuration.
#[derive(Debug, Clone)]
pub struct Deadlines {
    /// Interval of server pings.
    pub heartbeat_s: u32,
    /// Close a socket silent for longer (4002).
    pub idle_timeout_s: u32,
    /// Seconds past the token's `exp` before the close (4001).
    pub token_grace_s: u64,
    /// Close a socket whose queued frames have not moved for this long (4008).
    pub write_timeout_s: u32,
    /// The `token_expired` frame (built by the protocol layer), shared by every socket.
    pub expiry_notice: Bytes,
}

impl Hub {
    /// The clock task: runs due flushes and sweeps until shutdown.
    pub async fn run_clock(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            let wake_at = self.timer.next().map_or(next_sweep, |t| t.min(next_sweep));
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at.into()) => {}
                _ = self.timer.wake.notified() => {}
                _ = shutdown.started() => break,
            }
            let now = Instant::now();
            for channel in self.timer.due(now) {
                if channel.start_due() {
                    let hub = self.clone();
                    // A pass over a big room is real work: let the runtime spread rooms
                    // over its threads.
                    tokio::spawn(async move { hub.flush(channel) });
                }
            }
            if now >= next_sweep {
                self.sweep();
                self.pressure.adjust(now);
                next_sweep = now + SWEEP;
            }
        }
    }

    /// One pass over every socket: pings, idle and token deadlines, stuck writes.
    fn sweep(&self) {
        let d = &self.deadlines;
        let now = clock_s();
        let unix = now_secs();
        let ping = frame::ping();
        self.registry.for_each(|conn| {
            if conn.close_requested().is_some() {
                return;
            }
            if now.saturating_sub(conn.last_seen()) > d.idle_timeout_s {
                conn.request_close(close::IDLE);
                return;
            }
            if let Some(since) = conn.queued_since()
                && now.saturating_sub(since) >= d.write_timeout_s
            {
                conn.request_close(close::SLOW);
                return;
            }
            let (exp, noticed) = conn.token_expiry();
            if exp > 0 {
                if unix >= exp.saturating_add(d.token_grace_s) {
                    conn.request_close(close::TOKEN_EXPIRED);
                    return;
                }
                if unix >= exp && !noticed && conn.mark_noticed(exp) {
                    conn.send(&d.expiry_notice);
                }
            }
            if now.saturating_sub(conn.last_ping()) >= d.heartbeat_s {
                conn.pinged(now);
                conn.send(&ping);
            }
        });
    }
}
