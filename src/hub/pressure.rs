//! How busy fan-out keeps this node, and the floor it puts under every room's window.
//!
//! A room's own window follows the cost of its passes, which says nothing about the
//! other rooms: five hundred small rooms each flush every event at once, and together
//! they can fill both cores with one small write per event per socket. So the hub adds
//! up the time spent in passes; four times a second the clock compares it with the wall
//! time (the fan-out duty, 1.0 = one core) and moves a node-wide floor: it grows by
//! half while the duty is above [`HIGH`] and shrinks while it is below [`LOW`], within
//! `flush_tick_ms`. Under load every room then batches a few events per write, which
//! cuts the syscalls (and the readers' wake-ups) several times for a few milliseconds
//! of latency; an idle node keeps a floor of zero, where every quiet room's first event
//! leaves at once.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Fan-out duty (cores) above which the floor grows.
pub const HIGH: f64 = 0.35;

/// Fan-out duty below which the floor shrinks.
pub const LOW: f64 = 0.15;

/// The first non-zero floor.
const STEP: Duration = Duration::from_millis(1);

/// Time spent in passes and the floor derived from it.
#[derive(Debug)]
pub struct Pressure {
    /// Nanoseconds spent in passes, ever.
    busy_ns: AtomicU64,
    /// The current floor, in nanoseconds.
    floor_ns: AtomicU64,
    /// The ceiling (`flush_tick_ms`).
    max: Duration,
    /// The last duty measured, in thousandths (for the metrics).
    duty_milli: AtomicU64,
    /// `(busy_ns, instant)` at the last adjustment.
    last: Mutex<(u64, Instant)>,
}

impl Pressure {
    /// No pressure yet; the floor stays at or below `max`.
    pub fn new(max: Duration) -> Self {
        Pressure {
            busy_ns: AtomicU64::new(0),
            floor_ns: AtomicU64::new(0),
            max,
            duty_milli: AtomicU64::new(0),
            last: Mutex::new((0, Instant::now())),
        }
    }

    /// Counts one pass.
    pub fn add(&self, took: Duration) {
        self.busy_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The fan-out duty measured last (1.0 = one core).
    pub fn duty(&self) -> f64 {
        self.duty_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// The floor of every room's window now.
    pub fn floor(&self) -> Duration {
        Duration::from_nanos(self.floor_ns.load(Ordering::Relaxed))
    }

    /// The fan-out duty since the last call, and the floor moved by it (called by the
    /// clock).
    pub fn adjust(&self, now: Instant) -> f64 {
        let busy = self.busy_ns.load(Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let wall = now.saturating_duration_since(last.1).as_nanos() as f64;
        if wall <= 0.0 {
            return 0.0;
        }
        let duty = busy.saturating_sub(last.0) as f64 / wall;
        *last = (busy, now);
        self.duty_milli
            .store((duty * 1000.0) as u64, Ordering::Relaxed);
        drop(last);
        let floor = self.floor();
        let next = if duty > HIGH {
            (floor + floor / 2).max(STEP).min(self.max)
        } else if duty < LOW {
            let shrunk = floor * 2 / 3;
            if shrunk < STEP {
                Duration::ZERO
            } else {
                shrunk
            }
        } else {
            floor
        };
        self.floor_ns
            .store(next.as_nanos() as u64, Ordering::Relaxed);
        duty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_grows_under_load_and_falls_back_when_idle() {
        let p = Pressure::new(Duration::from_millis(50));
        let t0 = Instant::now();
        // Busy half of each quarter second: above HIGH.
        for i in 1..=20 {
            p.add(Duration::from_millis(125));
            p.adjust(t0 + Duration::from_millis(250 * i));
        }
        assert_eq!(p.floor(), Duration::from_millis(50), "capped by the tick");
        for i in 21..=60 {
            p.adjust(t0 + Duration::from_millis(250 * i));
        }
        assert_eq!(p.floor(), Duration::ZERO, "idle again");
    }
}
