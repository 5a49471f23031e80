//! Flood control: a rule per video (its own, set at runtime, else the configured
//! default) mutes a user who posts more than `max_comments` comments there within
//! `window_s`, as NicoNico does, and mutes repeat offenders longer.
//!
//! **Counting.** Per (video, user), over a sliding window of accepted posts, in memory
//! on each node ([`Service::count_post`] runs after every other check of a post, so a
//! refused post never counts). On a cluster each node counts the posts it accepts: a
//! user whose posts are spread over N nodes (one socket each) may post up to N times
//! the limit before one node trips. That keeps a store or Redis round trip off every
//! post; the limit is a flood brake, not a quota, and a real flood comes through one
//! socket. The trip itself is cluster-wide: the mute is stored and every node applies
//! it within a second.
//!
//! **The post that crosses the limit is refused**: the (max + 1)-th accepted-looking
//! post within the window is not stored; the user is muted in that video instead (the
//! mute stored, audited as actor `system`, action `auto_muted`, mirrored and synced like
//! any mute) and the post gets 403 `flood_muted`, saying for how long. Later posts get
//! 403 `muted` until the mute ends. Admins are exempt.
//!
//! **Escalation.** The offence number is the count of `auto_muted` audit rows for that
//! (video, user) within `flood_offence_window_s` (default a day), plus one: the first
//! offence mutes for `mute_s`, the next ones for each `escalation` value in turn, the
//! last repeating. The audit log is in the store, so a cluster shares the count.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use moka::{Expiry, future::Cache};

use super::{Authority, Service, audit, slow_mode::require_catalog, unavailable};
use crate::{
    access::Directory,
    model::{Identity, Refusal, Role, channel::check_video_id, time::now_millis},
    store::{
        moderation::{Action, Mute, NewAudit},
        room_rules::{FloodRule, StoredFloodRule},
    },
};

/// The actor of what the server does by itself, in mutes and the audit log.
pub const SYSTEM: &str = "system";

/// How the service applies flood rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodSettings {
    /// The rule of videos without one of their own; `None`: no default.
    pub default: Option<FloodRule>,
    /// How long an automatic mute counts toward the next one's escalation, in ms.
    pub offence_window_ms: u64,
}

impl Default for FloodSettings {
    /// NicoNico's rule: more than 10 comments in 20 s mutes for 5 minutes, then 30
    /// minutes, then a day; offences count for a day.
    fn default() -> Self {
        FloodSettings {
            default: Some(FloodRule {
                max_comments: 10,
                window_s: 20,
                mute_s: 300,
                escalation: vec![1800, 86_400],
            }),
            offence_window_ms: 86_400_000,
        }
    }
}

/// Each video's own rule, read on every post (lock-free; values replaced whole).
#[derive(Debug, Default)]
pub(super) struct Rules {
    by_video: papaya::HashMap<String, Arc<StoredFloodRule>>,
}

impl Rules {
    fn get(&self, video: &str) -> Option<Arc<StoredFloodRule>> {
        self.by_video.pin().get(video).cloned()
    }

    fn set(&self, r: StoredFloodRule) {
        self.by_video.pin().insert(r.video.clone(), Arc::new(r));
    }

    fn remove(&self, video: &str) {
        self.by_video.pin().remove(video);
    }

    /// Replaces the mirror with what the store holds (upserts first, then removals).
    pub(super) fn replace(&self, all: Vec<StoredFloodRule>) {
        let map = self.by_video.pin();
        let keep: std::collections::HashSet<String> = all.iter().map(|r| r.video.clone()).collect();
        for r in all {
            map.insert(r.video.clone(), Arc::new(r));
        }
        map.retain(|v, _| keep.contains(v));
    }
}

/// One (video, user)'s recent accepted posts.
#[derive(Debug, Default)]
struct Window {
    /// Unix ms of the accepted posts still inside the window, oldest first.
    times: VecDeque<u64>,
    /// Set while the mute of a trip is being stored: concurrent posts are refused too.
    tripping: bool,
}

/// A counter and the window it is kept for (its entry expires once idle that long).
#[derive(Debug)]
struct Counter {
    window_ms: std::sync::atomic::AtomicU64,
    state: Mutex<Window>,
}

impl Counter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Key = (Arc<str>, Arc<str>);

/// Ends a trip when dropped, however the muting ended (stored, failed, or its request
/// gone), so a counter never stays tripping.
struct TripGuard(Arc<Counter>);

impl Drop for TripGuard {
    fn drop(&mut self) {
        self.0.lock().tripping = false;
    }
}

/// Expires a counter once idle for its window: nothing older can count.
struct IdleForWindow;

impl Expiry<Key, Arc<Counter>> for IdleForWindow {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Arc<Counter>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_millis(
            value.window_ms.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }

    fn expire_after_read(
        &self,
        _key: &Key,
        value: &Arc<Counter>,
        _read_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
        _last_modified_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_millis(
            value.window_ms.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

/// The counters of every (video, user) that posted within its rule's window.
pub(super) struct Counters {
    cache: Cache<Key, Arc<Counter>>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            cache: Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(IdleForWindow)
                .build(),
        }
    }
}

/// What counting a post decided.
enum Count {
    /// Counted; the post goes on.
    Counted,
    /// This post crossed the limit: mute the poster (the guard ends the trip).
    Trip(TripGuard),
    /// Another post of the same user is tripping the rule right now.
    Tripping,
}

impl Counters {
    async fn counter(&self, video: &str, sub: &Arc<str>, window_ms: u64) -> Arc<Counter> {
        let key: Key = (Arc::from(video), sub.clone());
        let c = self
            .cache
            .get_with(key, async move {
                Arc::new(Counter {
                    window_ms: window_ms.into(),
                    state: Mutex::default(),
                })
            })
            .await;
        c.window_ms
            .store(window_ms, std::sync::atomic::Ordering::Relaxed);
        c
    }

    /// Counts a post at `now` under `rule` (atomically per (video, user)).
    async fn count(&self, video: &str, sub: &Arc<str>, rule: &FloodRule, now: u64) -> Count {
        let window_ms = rule.window_s as u64 * 1000;
        let c = self.counter(video, sub, window_ms).await;
        let mut w = c.lock();
        if w.tripping {
            return Count::Tripping;
        }
        while w
            .times
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= window_ms)
        {
            w.times.pop_front();
        }
        if w.times.len() >= rule.max_comments as usize {
            w.times.clear();
            w.tripping = true;
            drop(w);
            return Count::Trip(TripGuard(c));
        }
        w.times.push_back(now);
        Count::Counted
    }

    /// Takes back a counted post that was not stored after all.
    async fn uncount(&self, video: &str, sub: &Arc<str>, at: u64) {
        if let Some(c) = self.cache.get(&(Arc::from(video), sub.clone())).await {
            let mut w = c.lock();
            if let Some(i) = w.times.iter().rposition(|t| *t == at) {
                w.times.remove(i);
            }
        }
    }
}

/// Validates a rule's values (422, the config's bounds).
pub fn check_rule(rule: &FloodRule) -> Result<(), Refusal> {
    crate::config::check_flood_rule(
        rule.max_comments,
        rule.window_s,
        rule.mute_s,
        &rule.escalation,
    )
    .map_err(|(code, message)| Refusal::invalid(code, message))
}

/// The flood rule in force in a video, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InForce {
    /// The video's own rule.
    Own(Arc<StoredFloodRule>),
    /// The configured default.
    Default(FloodRule),
}

impl InForce {
    pub fn rule(&self) -> &FloodRule {
        match self {
            InForce::Own(r) => &r.rule,
            InForce::Default(r) => r,
        }
    }
}

impl Service {
    /// The rule that applies in `video`: its own, else the default (if any).
    fn flood_rule_in(&self, video: &str) -> Option<InForce> {
        match self.flood_rules.get(video) {
            Some(r) => Some(InForce::Own(r)),
            None => self.flood.default.clone().map(InForce::Default),
        }
    }

    /// Counts a post by `who` in `video` at `now`, called once every other check has
    /// passed and before the comment is stored. Admins are exempt. The post that crosses
    /// the limit mutes its poster (stored and audited before this answers) and is refused
    /// with 403 `flood_muted`; see the module docs. When the caller then fails to store
    /// the post, it gives the count back with [`Service::uncount_post`].
    pub async fn count_post(&self, who: &Identity, video: &str, now: u64) -> Result<(), Refusal> {
        if who.role == Role::Admin {
            return Ok(());
        }
        let Some(in_force) = self.flood_rule_in(video) else {
            return Ok(());
        };
        let rule = in_force.rule();
        match self.counters.count(video, &who.sub, rule, now).await {
            Count::Counted => Ok(()),
            Count::Tripping => Err(Refusal::forbidden(
                "flood_muted",
                format!("you are being muted in video {video} for flooding"),
            )),
            Count::Trip(guard) => {
                let result = self.auto_mute(&who.sub, video, rule, now).await;
                drop(guard);
                let (seconds, offence) = result?;
                Err(Refusal::forbidden(
                    "flood_muted",
                    format!(
                        "more than {} comments in {} s: you are muted in video {video} for {seconds} s \
                         (offence {offence})",
                        rule.max_comments, rule.window_s
                    ),
                ))
            }
        }
    }

    /// Gives back the count of a post [`Service::count_post`] let through but that was
    /// not stored.
    pub async fn uncount_post(&self, who: &Identity, video: &str, at: u64) {
        if who.role != Role::Admin {
            self.counters.uncount(video, &who.sub, at).await;
        }
    }

    /// Mutes `sub` in `video` for its next offence under `rule`: returns the seconds and
    /// the offence number.
    async fn auto_mute(
        &self,
        sub: &str,
        video: &str,
        rule: &FloodRule,
        now: u64,
    ) -> Result<(u32, u64), Refusal> {
        let since = now.saturating_sub(self.flood.offence_window_ms);
        let before = self
            .store
            .count_audit(video, sub, Action::AutoMuted, since)
            .await
            .map_err(unavailable("automatic mute"))?;
        let offence = before + 1;
        let seconds = rule.mute_for(offence);
        let reason = format!(
            "flooding: more than {} comments in {} s (offence {offence})",
            rule.max_comments, rule.window_s
        );
        let m = Mute {
            sub: sub.to_string(),
            video: Some(video.to_string()),
            until: now + seconds as u64 * 1000,
            reason: Some(reason.clone()),
            by: SYSTEM.to_string(),
            created_at: now,
        };
        let entry = NewAudit {
            at: now,
            actor: SYSTEM.to_string(),
            actor_role: SYSTEM.to_string(),
            action: Action::AutoMuted,
            video: Some(video.to_string()),
            target: sub.to_string(),
            reason: Some(reason),
            detail: serde_json::json!({
                "seconds": seconds,
                "until": m.until,
                "offence": offence,
                "max_comments": rule.max_comments,
                "window_s": rule.window_s,
            })
            .to_string(),
        };
        self.store
            .put_mute(crate::store::moderation::Restraint::Mute, m.clone(), entry)
            .await
            .map_err(unavailable("automatic mute"))?;
        self.apply_local(|s| s.mutes.set(m.clone(), now));
        tracing::info!(
            sub,
            video,
            seconds,
            offence,
            "user muted automatically for flooding"
        );
        self.tell_muted(&m, true).await;
        Ok((seconds, offence))
    }

    /// Sets (or replaces) the flood rule of `video`. Checks, in order: the values (422),
    /// the video id, the caller's power (403 `not_moderator`), the catalog (404).
    pub async fn set_flood_rule(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
        rule: FloodRule,
    ) -> Result<StoredFloodRule, Refusal> {
        check_rule(&rule)?;
        check_video_id(video)?;
        let authority = self.require(who, video)?;
        require_catalog(dir, video)?;
        let now = now_millis();
        let r = StoredFloodRule {
            video: video.to_string(),
            rule,
            by: who.sub.to_string(),
            set_at: now,
        };
        let entry = audit::entry(
            who,
            authority,
            Action::FloodRuleSet,
            Some(video),
            video.to_string(),
            None,
            serde_json::json!({
                "max_comments": r.rule.max_comments,
                "window_s": r.rule.window_s,
                "mute_s": r.rule.mute_s,
                "escalation": r.rule.escalation,
            }),
            now,
        );
        self.store
            .put_flood_rule(r.clone(), entry)
            .await
            .map_err(unavailable("flood rule"))?;
        self.apply_local(|s| s.flood_rules.set(r.clone()));
        tracing::info!(video, by = %who.sub, "flood rule set");
        Ok(r)
    }

    /// Removes the flood rule of `video` (the default applies again); 404
    /// `no_flood_rule` when it had none of its own.
    pub async fn clear_flood_rule(&self, who: &Identity, video: &str) -> Result<(), Refusal> {
        check_video_id(video)?;
        let authority: Authority = self.require(who, video)?;
        let now = now_millis();
        let entry = audit::entry(
            who,
            authority,
            Action::FloodRuleCleared,
            Some(video),
            video.to_string(),
            None,
            serde_json::json!({}),
            now,
        );
        let gone = self
            .store
            .delete_flood_rule(video, entry)
            .await
            .map_err(unavailable("flood rule"))?;
        self.apply_local(|s| s.flood_rules.remove(video));
        if !gone {
            return Err(Refusal::not_found(
                "no_flood_rule",
                format!("video {video} has no flood rule of its own"),
            ));
        }
        tracing::info!(video, by = %who.sub, "flood rule cleared");
        Ok(())
    }

    /// The flood rule in force in `video` (admins and its moderators): its own or the
    /// default; 404 `no_flood_rule` when neither exists (the default is off).
    pub fn flood_rule(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
    ) -> Result<InForce, Refusal> {
        check_video_id(video)?;
        self.require(who, video)?;
        require_catalog(dir, video)?;
        self.flood_rule_in(video).ok_or_else(|| {
            Refusal::not_found(
                "no_flood_rule",
                format!("no flood rule applies in video {video} (the default is off)"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(max: u32, window_s: u32) -> FloodRule {
        FloodRule {
            max_comments: max,
            window_s,
            mute_s: 60,
            escalation: vec![],
        }
    }

    #[tokio::test]
    async fn the_post_after_max_in_the_window_trips_and_old_posts_slide_out() {
        let c = Counters::default();
        let sub: Arc<str> = Arc::from("u");
        let r = rule(3, 10);
        for t in [0, 1000, 2000] {
            assert!(matches!(c.count("v", &sub, &r, t).await, Count::Counted));
        }
        // Another video and another user count apart.
        assert!(matches!(c.count("w", &sub, &r, 2500).await, Count::Counted));
        // At 10 s the first post has slid out: a fourth fits.
        assert!(matches!(
            c.count("v", &sub, &r, 10_000).await,
            Count::Counted
        ));
        let Count::Trip(guard) = c.count("v", &sub, &r, 10_500).await else {
            panic!("the fourth post within 10 s trips");
        };
        assert!(matches!(
            c.count("v", &sub, &r, 10_600).await,
            Count::Tripping
        ));
        drop(guard);
        assert!(matches!(
            c.count("v", &sub, &r, 10_700).await,
            Count::Counted
        ));
        // A post taken back frees its place.
        c.uncount("v", &sub, 10_700).await;
        for t in [10_800, 10_900] {
            assert!(matches!(c.count("v", &sub, &r, t).await, Count::Counted));
        }
        assert!(matches!(
            c.count("v", &sub, &r, 11_000).await,
            Count::Counted
        ));
        assert!(matches!(
            c.count("v", &sub, &r, 11_100).await,
            Count::Trip(_)
        ));
    }

    #[test]
    fn rules_are_checked_against_the_bounds() {
        let code = |r: FloodRule| check_rule(&r).unwrap_err().code;
        assert!(check_rule(&rule(2, 1)).is_ok());
        assert_eq!(code(rule(1, 20)), "invalid_max_comments");
        assert_eq!(code(rule(1001, 20)), "invalid_max_comments");
        assert_eq!(code(rule(10, 0)), "invalid_window");
        assert_eq!(code(rule(10, 3601)), "invalid_window");
        assert_eq!(
            code(FloodRule {
                mute_s: 86_401,
                ..rule(10, 20)
            }),
            "invalid_mute"
        );
        assert_eq!(
            code(FloodRule {
                escalation: vec![0],
                ..rule(10, 20)
            }),
            "invalid_escalation"
        );
        assert_eq!(
            code(FloodRule {
                escalation: vec![60; 11],
                ..rule(10, 20)
            }),
            "invalid_escalation"
        );
    }
}
