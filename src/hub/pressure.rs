//! How busy fan-out keeps this node, and the floor it puts under every room's window.
//!
//! A room's own window follows the cost of its passes, which says nothing about the
//! other rooms: five hundred small rooms each flush every event at once, and together
//! they can fill both cores with one small write per event per socket. So the hub adds
//! up the time spent in passes; four times a second the clock compares it with the wall
//! time (the fan-out duty, 1.0 = one core, smoothed) and sets a node-wide floor under
//! every room's window: none while the duty stays under [`LOW`], rising in proportion
//! to `ws.flush_tick_ms` at [`HIGH`] and above. Under load every room then batches a few
//! events per write, which cuts the syscalls (and the readers' wake-ups) several times
//! for a few milliseconds of latency; a node with work to spare keeps a floor of zero,
//! where every quiet room's first event leaves at once.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Fan-out duty (cores) at and above which the floor is the whole `ws.flush_tick_ms`.
pub const HIGH: f64 = 1.2;

/// Fan-out duty (cores) under which there is no floor.
pub const LOW: f64 = 0.6;

/// Time spent in passes and the floor derived from it.
#[derive(Debug)]
pub struct Pressure {
    /// Nanoseconds spent in passes, ever.
    busy_ns: AtomicU64,
    /// The current floor, in nanoseconds.
    floor_ns: AtomicU64,
    /// The ceiling (`ws.flush_tick_ms`).
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

    /// Measures the fan-out duty since the last call and sets the floor from it (called
    /// by the clock); returns the smoothed duty.
    pub fn adjust(&self, now: Instant) -> f64 {
        let busy = self.busy_ns.load(Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let wall = now.saturating_duration_since(last.1).as_nanos() as f64;
        if wall <= 0.0 {
            return 0.0;
        }
        let measured = busy.saturating_sub(last.0) as f64 / wall;
        *last = (busy, now);
        // Half the last reading, half the new one: a floor that follows load, not noise.
        let duty = (self.duty() + measured) / 2.0;
        self.duty_milli
            .store((duty * 1000.0) as u64, Ordering::Relaxed);
        drop(last);
        let share = ((duty - LOW) / (HIGH - LOW)).clamp(0.0, 1.0);
        let next = self.max.mul_f64(share);
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
        // Busy a fifth of each quarter second (0.2 cores): no floor.
        for i in 1..=10 {
            p.add(Duration::from_millis(50));
            p.adjust(t0 + Duration::from_millis(250 * i));
        }
        assert_eq!(p.floor(), Duration::ZERO);
        // 0.9 cores: half the way from LOW to HIGH, half the tick.
        for i in 11..=30 {
            p.add(Duration::from_millis(225));
            p.adjust(t0 + Duration::from_millis(250 * i));
        }
        let half = p.floor().as_secs_f64();
        assert!((half - 0.025).abs() < 0.001, "{half}");
        // Both cores: the whole tick.
        for i in 31..=50 {
            p.add(Duration::from_millis(500));
            p.adjust(t0 + Duration::from_millis(250 * i));
        }
        assert_eq!(p.floor(), Duration::from_millis(50), "capped by the tick");
        for i in 51..=80 {
            p.adjust(t0 + Duration::from_millis(250 * i));
        }
        assert_eq!(p.floor(), Duration::ZERO, "idle again");
    }
}
