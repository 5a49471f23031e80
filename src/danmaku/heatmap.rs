//! Comment density over a video's timeline: the "high-energy" curve the page draws above
//! its seek bar.
//!
//! The store keeps a count per (video, second, audience) next to the comments, updated
//! in the same transaction as each insert and tombstone (triggers in both engines), so a
//! cold read is one indexed scan of at most one row per second and audience, however
//! many comments the video has. This module caches those counts per video, adds this
//! node's own posts and deletions to a cached entry as they happen (so one node is
//! always exact), and lets an entry live [`TTL`] so a cluster node also counts the other
//! nodes' comments within that time. Answers are computed from the cached counts on
//! every request: `buckets` and `duration` are the caller's, and the audience is the
//! caller's role, so no per-query result is cached.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use moka::future::Cache;
use serde::Serialize;

use super::Service;
use crate::{
    access::Directory,
    model::{Audience, Refusal, Role},
    store::{StoreError, engagement::DensityRow},
};

/// How long a cached video's counts are trusted before they are read again (the other
/// nodes' comments are counted within this).
pub const TTL: Duration = Duration::from_secs(5);
/// The longest video timeline counted, in seconds (a day): later comments are ignored.
pub const MAX_SECONDS: u32 = 86_400;
/// Most buckets one answer may ask for.
pub const MAX_BUCKETS: u32 = 1000;
/// Most peaks an answer lists.
pub const PEAKS: usize = 5;
/// Cached counts, in bytes (12 per second of timeline).
const CACHE_BYTES: u64 = 64 << 20;

/// Counts per second of one video, split by the comment's audience so each role's view
/// is a sum of the classes it may read.
#[derive(Debug, Default)]
pub struct Density {
    /// `per_second[s] = [everyone, members, free]`.
    per_second: Vec<[u32; 3]>,
}

/// The class index of an audience in [`Density::per_second`].
fn class(a: Audience) -> usize {
    match a {
        Audience::Everyone => 0,
        Audience::Members => 1,
        Audience::Free => 2,
    }
}

/// Which classes a role counts: the same rule as history reads (members and admins read
/// every comment, everyone else every comment not for members only).
fn classes_for(role: Role) -> [bool; 3] {
    if role.is_member_or_admin() {
        [true, true, true]
    } else {
        [true, false, true]
    }
}

impl Density {
    /// Builds the counts from the store's rows.
    pub fn from_rows(rows: &[DensityRow]) -> Density {
        let mut d = Density::default();
        for r in rows {
            d.add(r.second, r.audience, i64::from(r.count));
        }
        d
    }

    /// Adds `delta` comments at `second` (negative for deletions).
    pub fn add(&mut self, second: u32, audience: Audience, delta: i64) {
        if second >= MAX_SECONDS {
            return;
        }
        let s = second as usize;
        if s >= self.per_second.len() {
            if delta <= 0 {
                return;
            }
            self.per_second.resize(s + 1, [0; 3]);
        }
        let cell = &mut self.per_second[s][class(audience)];
        *cell = (i64::from(*cell) + delta).clamp(0, i64::from(u32::MAX)) as u32;
    }

    /// Bytes held, for the cache's weigher.
    fn weight(&self) -> u32 {
        (self.per_second.len() * 12 + 64).min(u32::MAX as usize) as u32
    }

    /// The heatmap of `buckets` equal buckets over `duration` seconds (default: up to the
    /// last counted second), as `role` may see it.
    ///
    /// The resolution is one second: each second's count lands in the bucket that holds
    /// its middle, so buckets narrower than a second are uneven.
    pub fn render(&self, role: Role, buckets: u32, duration: Option<f64>) -> Rendered {
        let classes = classes_for(role);
        let seen = |c: &[u32; 3]| -> u64 {
            (0..3)
                .filter(|&i| classes[i])
                .map(|i| u64::from(c[i]))
                .sum()
        };
        let last = self
            .per_second
            .iter()
            .rposition(|c| seen(c) > 0)
            .map(|s| s as f64 + 1.0)
            .unwrap_or(1.0);
        let duration = duration.unwrap_or(last).max(1e-3);
        let n = buckets.clamp(1, MAX_BUCKETS) as usize;
        let width = duration / n as f64;
        let mut counts = vec![0u64; n];
        for (s, c) in self.per_second.iter().enumerate() {
            let mid = s as f64 + 0.5;
            if mid >= duration {
                break;
            }
            let v = seen(c);
            if v > 0 {
                counts[((mid / width) as usize).min(n - 1)] += v;
            }
        }
        let total = counts.iter().sum();
        let peaks = peaks(&counts, width);
        Rendered {
            duration,
            bucket_seconds: width,
            counts,
            total,
            peaks,
        }
    }
}

/// The highest local maxima, highest first, at least `n / 20` buckets apart (so one wide
/// hill is one peak), each at its bucket's centre.
fn peaks(counts: &[u64], width: f64) -> Vec<Peak> {
    let gap = (counts.len() / 20).max(1);
    let mut order: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = Vec::with_capacity(PEAKS);
    for i in order {
        if chosen.len() == PEAKS {
            break;
        }
        if chosen.iter().all(|&c| c.abs_diff(i) >= gap) {
            chosen.push(i);
        }
    }
    chosen
        .into_iter()
        .map(|i| Peak {
            time: round3((i as f64 + 0.5) * width),
            count: counts[i],
        })
        .collect()
}

/// Rounds seconds to the millisecond, so answers read cleanly.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One answer, before the transport adds the video id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rendered {
    pub duration: f64,
    pub bucket_seconds: f64,
    pub counts: Vec<u64>,
    pub total: u64,
    pub peaks: Vec<Peak>,
}

/// A high point of the curve.
#[derive(Debug, Clone, PartialEq, Serialize, poem_openapi::Object)]
pub struct Peak {
    /// The bucket's centre, in seconds of video time.
    pub time: f64,
    pub count: u64,
}

/// The cached counts of every video read lately.
pub struct Heatmaps {
    cache: Cache<String, Arc<Mutex<Density>>>,
}

impl std::fmt::Debug for Heatmaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heatmaps")
            .field("videos", &self.cache.entry_count())
            .finish()
    }
}

impl Default for Heatmaps {
    fn default() -> Self {
        Heatmaps::new()
    }
}

impl Heatmaps {
    /// An empty cache.
    pub fn new() -> Heatmaps {
        Heatmaps {
            cache: Cache::builder()
                .max_capacity(CACHE_BYTES)
                .weigher(|_, d: &Arc<Mutex<Density>>| d.lock().map(|d| d.weight()).unwrap_or(64))
                .time_to_live(TTL)
                .build(),
        }
    }

    /// Checks a request's `buckets` and `duration`.
    pub fn check(buckets: u32, duration: Option<f64>) -> Result<(), Refusal> {
        if !(1..=MAX_BUCKETS).contains(&buckets) {
            return Err(Refusal::invalid(
                "invalid_buckets",
                format!("buckets must be 1 to {MAX_BUCKETS}, not {buckets}"),
            ));
        }
        if let Some(d) = duration
            && !(d.is_finite() && d > 0.0 && d <= f64::from(MAX_SECONDS))
        {
            return Err(Refusal::invalid(
                "invalid_duration",
                format!("duration must be over 0 and at most {MAX_SECONDS} seconds"),
            ));
        }
        Ok(())
    }

    /// The counts of `video`, read from the store through `load` on a miss (concurrent
    /// misses share one read).
    pub async fn get<F, Fut>(&self, video: &str, load: F) -> Result<Arc<Mutex<Density>>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<DensityRow>, StoreError>>,
    {
        self.cache
            .try_get_with(video.to_string(), async move {
                let rows = load().await?;
                Ok::<_, StoreError>(Arc::new(Mutex::new(Density::from_rows(&rows))))
            })
            .await
            .map_err(|e: Arc<StoreError>| StoreError::Unavailable(e.to_string()))
    }

    /// Drops a video's cached counts (after a bulk import).
    pub async fn forget(&self, video: &str) {
        self.cache.invalidate(video).await;
    }

    /// Counts a stored comment (+1) or a deletion (-1) in a cached entry; an entry that
    /// is not cached is read whole the next time it is asked for.
    pub async fn record(&self, video: &str, time_ms: u64, audience: Audience, delta: i64) {
        if let Some(d) = self.cache.get(video).await {
            let second = (time_ms / 1000).min(u64::from(MAX_SECONDS)) as u32;
            d.lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(second, audience, delta);
        }
    }
}

impl Service {
    /// The heatmap of `video` as `role` may see it (404 for an unknown video, 403 for a
    /// video the role may not read, 422 for bad `buckets` or `duration`).
    pub async fn heatmap(
        &self,
        dir: &Directory,
        role: Role,
        video: &str,
        buckets: u32,
        duration: Option<f64>,
    ) -> Result<Rendered, Refusal> {
        Heatmaps::check(buckets, duration)?;
        let tier = self.video_tier(dir, video)?;
        Self::check_read(tier, role)?;
        let density = self
            .heatmaps
            .get(video, || self.store.density(video))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "density read failed");
                Refusal::unavailable("store_unavailable", "the heatmap is unavailable; retry")
            })?;
        let d = density.lock().unwrap_or_else(|e| e.into_inner());
        Ok(d.render(role, buckets, duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn density(points: &[(u32, Audience, u32)]) -> Density {
        let rows: Vec<DensityRow> = points
            .iter()
            .map(|&(second, audience, count)| DensityRow {
                second,
                audience,
                count,
            })
            .collect();
        Density::from_rows(&rows)
    }

    #[test]
    fn buckets_sum_seconds_within_the_role_audience() {
        let d = density(&[
            (0, Audience::Everyone, 2),
            (5, Audience::Members, 4),
            (9, Audience::Free, 1),
        ]);
        let free = d.render(Role::Free, 2, Some(10.0));
        assert_eq!(free.counts, vec![2, 1]);
        assert_eq!(free.total, 3);
        let member = d.render(Role::Member, 2, Some(10.0));
        assert_eq!(member.counts, vec![2, 5]);
        assert_eq!(member.bucket_seconds, 5.0);
    }

    #[test]
    fn duration_defaults_to_the_last_visible_second() {
        let d = density(&[(3, Audience::Everyone, 1), (50, Audience::Members, 1)]);
        assert_eq!(d.render(Role::Guest, 4, None).duration, 4.0);
        assert_eq!(d.render(Role::Admin, 4, None).duration, 51.0);
        assert_eq!(
            Density::default().render(Role::Guest, 3, None).counts,
            vec![0; 3]
        );
    }

    #[test]
    fn deletions_take_counts_away_and_never_below_zero() {
        let mut d = density(&[(1, Audience::Everyone, 1)]);
        d.add(1, Audience::Everyone, -1);
        d.add(1, Audience::Everyone, -1);
        d.add(400, Audience::Everyone, -1);
        assert_eq!(d.render(Role::Guest, 1, Some(2.0)).total, 0);
        assert_eq!(
            d.per_second.len(),
            2,
            "a deletion past the end grows nothing"
        );
    }

    #[test]
    fn peaks_are_the_highest_separated_maxima() {
        let mut points = Vec::new();
        for (s, n) in [(10, 5), (11, 9), (12, 4), (60, 7), (90, 2)] {
            points.push((s, Audience::Everyone, n));
        }
        let r = density(&points).render(Role::Guest, 100, Some(100.0));
        let got: Vec<(f64, u64)> = r.peaks.iter().map(|p| (p.time, p.count)).collect();
        assert_eq!(got, vec![(11.5, 9), (60.5, 7), (90.5, 2)]);
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(Heatmaps::check(0, None).is_err());
        assert!(Heatmaps::check(1001, None).is_err());
        assert!(Heatmaps::check(1000, Some(f64::NAN)).is_err());
        assert!(Heatmaps::check(10, Some(0.0)).is_err());
        assert!(Heatmaps::check(10, Some(7200.0)).is_ok());
    }
}
