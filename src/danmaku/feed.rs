//! Flood control for the free feed: in a busy room, guests and free users get a fair
//! sample of at most `rate` comments per second; members and admins get everything.
//!
//! Fair means spread over the burst, not "the first N of each second": each room tracks
//! the incoming rate and keeps a fraction `rate / incoming` of comments with an error
//! accumulator (systematic sampling), capped at `rate` per one-second window.
//!
//! Weighted: each comment carries a weight from 1 to 4 (1 for a free user, one more for
//! a member or admin, up to two more for the likes the poster received in the room
//! lately: [`super::likes::Likes::weight`]). A comment of weight `w` is kept with
//! fraction `rate / incoming × w / mean weight`, so the expected total stays at `rate`
//! while liked posters and members get through more often. Each weight class has its own
//! accumulator: one shared accumulator would let whichever comment happens to cross the
//! threshold win, and a strict alternation of posters could then starve one of them.
//! Fairness bound: a weight-1 comment is kept with at least a quarter of the uniform
//! fraction (the mean weight is at most 4), so every poster still gets through at a
//! rate bounded below.

use std::sync::{Arc, Mutex};

/// Weight classes: weights are rounded to 1, 2, 3 or 4.
const CLASSES: usize = 4;

/// Per-room sampling state.
#[derive(Debug, Default)]
struct Room {
    window_start: u64,
    seen_this: u32,
    kept_this: u32,
    seen_last: u32,
    /// Sum of the (rounded) weights seen this window and the last.
    weight_this: f64,
    weight_last: f64,
    acc: [f64; CLASSES],
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

    /// Whether the comment of weight `weight` (1 to 4) posted now in `video` goes to the
    /// free feed.
    pub fn admit(&self, video: &str, now_ms: u64, weight: f64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let class = (weight.round().clamp(1.0, CLASSES as f64) as usize) - 1;
        let w = (class + 1) as f64;
        let room = self
            .rooms
            .pin()
            .get_or_insert_with(video.to_string(), Default::default)
            .clone();
        let mut r = room.lock().unwrap_or_else(|e| e.into_inner());
        if now_ms >= r.window_start + 1000 {
            // A gap longer than a window means the last window was quiet.
            let recent = now_ms < r.window_start + 2000;
            r.seen_last = if recent { r.seen_this } else { 0 };
            r.weight_last = if recent { r.weight_this } else { 0.0 };
            r.window_start = now_ms;
            r.seen_this = 0;
            r.weight_this = 0.0;
            r.kept_this = 0;
        }
        r.seen_this += 1;
        r.weight_this += w;
        // The busier of the two windows sets both the rate and the mean weight.
        let (incoming, weights) = if r.seen_last >= r.seen_this {
            (r.seen_last, r.weight_last)
        } else {
            (r.seen_this, r.weight_this)
        };
        let incoming = incoming.max(1) as f64;
        let mean = if weights > 0.0 { weights / incoming } else { w };
        let fraction = (self.rate as f64 / incoming * w / mean).min(1.0);
        // Capped: the credit must not pile up and flush a burst into the next window.
        let acc = &mut r.acc[class];
        *acc = (*acc + fraction).min(1.0);
        if *acc >= 1.0 - 1e-9 && r.kept_this < self.rate {
            r.acc[class] -= 1.0;
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
        assert!((0..20).all(|i| f.admit("v", 1000 + i * 50, 1.0)));
    }

    #[test]
    fn bursts_are_capped_and_spread() {
        let f = FreeFeed::new(20);
        // Warm-up second at 200/s, then a second burst of 200 in one window.
        for i in 0..200 {
            f.admit("v", i * 5, 1.0);
        }
        let kept: Vec<u64> = (0..200)
            .map(|i| 1000 + i * 5)
            .filter(|t| f.admit("v", *t, 1.0))
            .collect();
        assert!(kept.len() <= 20 && kept.len() >= 18, "kept {}", kept.len());
        // Spread across the window, not bunched at its start.
        assert!(
            *kept.last().unwrap() > 1800,
            "last kept at {:?}",
            kept.last()
        );
        // Other rooms are independent.
        assert!(f.admit("w", 1500, 1.0));
    }

    #[test]
    fn weighted_posters_get_more_and_nobody_starves() {
        // 10 s of a flood: 60 free posters (weight 1), 10 members (2) and 5 liked free
        // posters (3), each posting once a second, interleaved in an order that changes
        // every second (a stride through the posters).
        let f = FreeFeed::new(20);
        let posters: Vec<f64> = std::iter::repeat_n(1.0, 60)
            .chain(std::iter::repeat_n(2.0, 10))
            .chain(std::iter::repeat_n(3.0, 5))
            .collect();
        let mut kept = vec![0u32; posters.len()];
        let mut per_second = vec![0u32; 10];
        for sec in 0..10u64 {
            for slot in 0..posters.len() {
                let i = (slot * 31 + sec as usize * 17) % posters.len();
                let w = &posters[i];
                let t = sec * 1000 + slot as u64 * 13;
                if f.admit("v", t, *w) {
                    kept[i] += 1;
                    per_second[sec as usize] += 1;
                }
            }
        }
        assert!(per_second.iter().all(|&n| n <= 20), "cap: {per_second:?}");
        let mean = |r: std::ops::Range<usize>| {
            let n = r.len() as f64;
            kept[r].iter().map(|&k| f64::from(k)).sum::<f64>() / n
        };
        let (free, member, liked) = (mean(0..60), mean(60..70), mean(70..75));
        assert!(member > free * 1.5, "members {member} vs free {free}");
        assert!(liked > member, "liked {liked} vs members {member}");
        // Every free poster got through at least once in 10 s (the uniform share would
        // be about 2.4 each).
        assert!(
            kept[..60].iter().all(|&k| k >= 1),
            "free posters starved: {kept:?}"
        );
    }
}
