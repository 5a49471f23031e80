//! Time, as every layer reads it: the wall clock in unix seconds and milliseconds (what
//! tokens, comments and schedules are stamped with), and the process's monotonic coarse
//! clock (what per-socket deadlines count in: four bytes a field, never going back).

use std::{
    sync::OnceLock,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

/// Current unix time in seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Current unix time in milliseconds.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The instant the monotonic clock started; `clock_s` and `clock_ms` count from it.
static START: OnceLock<Instant> = OnceLock::new();

/// Whole seconds since the process's monotonic clock started.
pub fn clock_s() -> u32 {
    START.get_or_init(Instant::now).elapsed().as_secs() as u32
}

/// Milliseconds since the monotonic clock started (wraps after 49 days: compare with
/// `wrapping_sub`).
pub fn clock_ms() -> u32 {
    START.get_or_init(Instant::now).elapsed().as_millis() as u32
}
