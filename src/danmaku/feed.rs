//! Flood control for the free feed: in a busy room, guests and free users get a fair
//! sample of at most `rate` comments per second; members and admins get everything.
//!
//! Fair means spread over the burst, not "the first N of each second": each room tracks
//! the incoming rate and keeps a fraction `rate / incoming` of comments with an error
//! accumulator (systematic sampling), capped at `rate` per one-second window.

use std::sync::{Arc, Mutex};

/// Per-room sampling state.
#[derive(Debug, Default)]
struct Room {
    window_start: u64,
    seen_this: u32,
    kept_this: u32,
    seen_last: u32,
    acc: f64,
}

/// The sampler of every room.
#[derive(Debug)]
pub struct FreeFeed {
    rate: u32,
    rooms: papaya::HashMap<String, Arc<Mutex<Room>>>,
}

impl FreeFeed {
    /// `rate` comments per second per room reach the free feed (0 disables sampling).
    pub fn new(rate: u32) -> Self {
        FreeFeed {
            rate,
            rooms: papaya::HashMap::new(),
        }
    }

    /// Whether the comment posted now in `video` goes to the free feed.
    pub fn admit(&self, video: &str, now_ms: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let room = self
            .rooms
            .pin()
            .get_or_insert_with(video.to_string(), Default::default)
            .clone();
        let mut r = room.lock().unwrap_or_else(|e| e.into_inner());
        if now_ms >= r.window_start + 1000 {
            // A gap longer than a window means the last window was quiet.
            r.seen_last = if now_ms < r.window_start + 2000 {
                r.seen_this
            } else {
                0
            };
            r.window_start = now_ms;
            r.seen_this = 0;
            r.kept_this = 0;
        }
        r.seen_this += 1;
        let incoming = r.seen_last.max(r.seen_this).max(1) as f64;
        let fraction = (self.rate as f64 / incoming).min(1.0);
        // Capped: the credit must not pile up and flush a burst into the next window.
        r.acc = (r.acc + fraction).min(1.0);
        if r.acc >= 1.0 - 1e-9 && r.kept_this < self.rate {
            r.acc -= 1.0;
            r.kept_this += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_rooms_keep_everything() {
        let f = FreeFeed::new(20);
        assert!((0..20).all(|i| f.admit("v", 1000 + i * 50)));
    }

    #[test]
    fn bursts_are_capped_and_spread() {
        let f = FreeFeed::new(20);
        // Warm-up second at 200/s, then a second burst of 200 in one window.
        for i in 0..200 {
            f.admit("v", i * 5);
        }
        let kept: Vec<u64> = (0..200)
            .map(|i| 1000 + i * 5)
            .filter(|t| f.admit("v", *t))
            .collect();
        assert!(kept.len() <= 20 && kept.len() >= 18, "kept {}", kept.len());
        // Spread across the window, not bunched at its start.
        assert!(
            *kept.last().unwrap() > 1800,
            "last kept at {:?}",
            kept.last()
        );
        // Other rooms are independent.
        assert!(f.admit("w", 1500));
    }
}
