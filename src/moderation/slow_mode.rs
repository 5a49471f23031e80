//! Slow mode: in one video, posters of the listed roles wait a set interval between two
//! comments, until it is cleared or its `until` passes. Admins are never slowed.
//!
//! This module keeps the rule (stored, audited, mirrored, synced like mutes); the wait
//! itself is enforced where the role cooldowns are (`danmaku`), which asks
//! [`Service::slow_mode_for`] at each post: a poster's cooldown in that video becomes
//! max(role cooldown, slow-mode interval).
//!
//! Who may: set and clear, an admin or a moderator of the video (403 `not_moderator`);
//! read, anyone who may read the video (pages show the interval).

use std::sync::Arc;

use super::{Authority, Service, audit, unavailable};
use crate::{
    access::Directory,
    model::{Identity, Refusal, Role, channel::check_video_id, time::now_millis},
    store::{moderation::Action, room_rules::SlowMode},
};

/// Longest slow-mode interval: one hour.
pub const MAX_SECONDS: u32 = 3600;

/// Latest `until`: one year ahead.
pub const MAX_AHEAD_MS: u64 = 31_536_000_000;

/// The roles slowed when a request names none.
pub const DEFAULT_ROLES: [Role; 2] = [Role::Free, Role::Member];

/// The slow modes in force per video, read on every post (lock-free; values replaced
/// whole, writes serialised by the service's mirror lock).
#[derive(Debug, Default)]
pub(super) struct Mirror {
    by_video: papaya::HashMap<String, Arc<SlowMode>>,
}

impl Mirror {
    /// The slow mode of `video` in force at `now`.
    fn get(&self, video: &str, now: u64) -> Option<Arc<SlowMode>> {
        self.by_video
            .pin()
            .get(video)
            .filter(|s| s.in_force(now))
            .cloned()
    }

    /// Records a slow mode already stored, dropping expired ones.
    fn set(&self, s: SlowMode, now: u64) {
        let map = self.by_video.pin();
        map.insert(s.video.clone(), Arc::new(s));
        map.retain(|_, s| s.in_force(now));
    }

    /// Forgets the slow mode of a video, already cleared in the store.
    fn clear(&self, video: &str) {
        self.by_video.pin().remove(video);
    }

    /// Replaces the mirror with what the store holds (upserts first, then removals).
    pub(super) fn replace(&self, all: Vec<SlowMode>) {
        let map = self.by_video.pin();
        let keep: std::collections::HashSet<String> = all.iter().map(|s| s.video.clone()).collect();
        for s in all {
            map.insert(s.video.clone(), Arc::new(s));
        }
        map.retain(|v, _| keep.contains(v));
    }
}

/// A slow mode to set.
#[derive(Debug, Clone)]
pub struct SlowModeRequest {
    /// 1 to [`MAX_SECONDS`].
    pub seconds: u32,
    /// The roles slowed (`guest`, `free`, `member`); `None`: [`DEFAULT_ROLES`].
    pub roles: Option<Vec<Role>>,
    /// Unix milliseconds, in the future (at most a year ahead); `None`: until cleared.
    pub until: Option<u64>,
}

/// 404 `unknown_video` unless the video is in the catalog.
pub(super) fn require_catalog(dir: &Directory, video: &str) -> Result<(), Refusal> {
    if dir.in_catalog(video) {
        Ok(())
    } else {
        Err(Refusal::not_found(
            "unknown_video",
            format!("video {video} is not in the catalog"),
        ))
    }
}

/// 404 `no_slow_mode`.
fn none_in(video: &str) -> Refusal {
    Refusal::not_found("no_slow_mode", format!("video {video} is not in slow mode"))
}

/// Validates a request at `now`: the roles sorted, once each (422 `invalid_seconds`,
/// `invalid_roles`, `invalid_until`).
fn check(req: &SlowModeRequest, now: u64) -> Result<Vec<Role>, Refusal> {
    if !(1..=MAX_SECONDS).contains(&req.seconds) {
        return Err(Refusal::invalid(
            "invalid_seconds",
            format!("a slow-mode interval is 1 to {MAX_SECONDS} seconds"),
        ));
    }
    let mut roles = req.roles.clone().unwrap_or_else(|| DEFAULT_ROLES.to_vec());
    roles.sort_unstable();
    roles.dedup();
    if roles.is_empty() || roles.contains(&Role::Admin) {
        return Err(Refusal::invalid(
            "invalid_roles",
            "roles is a non-empty list of guest, free and member (admins are never slowed)",
        ));
    }
    if let Some(until) = req.until
        && (until <= now || until > now.saturating_add(MAX_AHEAD_MS))
    {
        return Err(Refusal::invalid(
            "invalid_until",
            "until is a unix time in milliseconds, in the future and at most a year ahead",
        ));
    }
    Ok(roles)
}

impl Service {
    /// The slow-mode interval (seconds) that applies to a poster of `role` in `video` at
    /// `now`, if any: never for admins.
    pub fn slow_mode_for(&self, video: &str, role: Role, now: u64) -> Option<u32> {
        if role == Role::Admin {
            return None;
        }
        self.slow
            .get(video, now)
            .filter(|s| s.roles.contains(&role))
            .map(|s| s.seconds)
    }

    /// Sets (or replaces) the slow mode of `video`. Checks, in order: the values (422),
    /// the video id (422 `invalid_video`), the caller's power (403 `not_moderator`), the
    /// catalog (404 `unknown_video`); only then is anything stored (with its audit row).
    pub async fn set_slow_mode(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
        req: SlowModeRequest,
    ) -> Result<SlowMode, Refusal> {
        let now = now_millis();
        let roles = check(&req, now)?;
        check_video_id(video)?;
        let authority = self.require(who, video)?;
        require_catalog(dir, video)?;
        let s = SlowMode {
            video: video.to_string(),
            seconds: req.seconds,
            roles,
            until: req.until,
            by: who.sub.to_string(),
            set_at: now,
        };
        let entry = audit::entry(
            who,
            authority,
            Action::SlowModeSet,
            Some(video),
            video.to_string(),
            None,
            serde_json::json!({
                "seconds": s.seconds,
                "roles": s.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "until": s.until,
            }),
            now,
        );
        self.store
            .put_slow_mode(s.clone(), entry)
            .await
            .map_err(unavailable("slow mode"))?;
        self.apply_local(|m| m.slow.set(s.clone(), now));
        tracing::info!(video, seconds = s.seconds, by = %who.sub, "slow mode set");
        Ok(s)
    }

    /// Clears the slow mode of `video` (admin or its moderator); 404 `no_slow_mode` when
    /// none is in force.
    pub async fn clear_slow_mode(&self, who: &Identity, video: &str) -> Result<(), Refusal> {
        check_video_id(video)?;
        let authority: Authority = self.require(who, video)?;
        let now = now_millis();
        let entry = audit::entry(
            who,
            authority,
            Action::SlowModeCleared,
            Some(video),
            video.to_string(),
            None,
            serde_json::json!({}),
            now,
        );
        let cleared = self
            .store
            .clear_slow_mode(video, now, entry)
            .await
            .map_err(unavailable("slow mode"))?;
        self.apply_local(|m| m.slow.clear(video));
        if !cleared {
            return Err(none_in(video));
        }
        tracing::info!(video, by = %who.sub, "slow mode cleared");
        Ok(())
    }

    /// The slow mode in force in `video`, for anyone who may read the video (404
    /// `unknown_video` when it is not in the catalog, as for setting one; 403
    /// `member_only`; 404 `no_slow_mode`). From the mirror: on a
    /// cluster, at most one sync behind the store.
    pub fn slow_mode(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
    ) -> Result<Arc<SlowMode>, Refusal> {
        check_video_id(video)?;
        require_catalog(dir, video)?;
        let tier = dir.video_tier(video).unwrap_or(crate::model::Tier::Free);
        if !tier.admits(who.role) {
            return Err(Refusal::forbidden(
                "member_only",
                "this video is for members",
            ));
        }
        self.slow
            .get(video, now_millis())
            .ok_or_else(|| none_in(video))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(seconds: u32, roles: Option<Vec<Role>>, until: Option<u64>) -> SlowModeRequest {
        SlowModeRequest {
            seconds,
            roles,
            until,
        }
    }

    #[test]
    fn requests_are_checked_and_roles_normalised() {
        assert_eq!(check(&req(5, None, None), 0), Ok(DEFAULT_ROLES.to_vec()));
        assert_eq!(
            check(
                &req(5, Some(vec![Role::Member, Role::Guest, Role::Member]), None),
                0
            ),
            Ok(vec![Role::Guest, Role::Member])
        );
        let code = |r: SlowModeRequest| check(&r, 1000).unwrap_err().code;
        assert_eq!(code(req(0, None, None)), "invalid_seconds");
        assert_eq!(code(req(3601, None, None)), "invalid_seconds");
        assert_eq!(code(req(5, Some(vec![]), None)), "invalid_roles");
        assert_eq!(code(req(5, Some(vec![Role::Admin]), None)), "invalid_roles");
        assert_eq!(code(req(5, None, Some(1000))), "invalid_until");
        assert_eq!(
            code(req(5, None, Some(1000 + MAX_AHEAD_MS + 1))),
            "invalid_until"
        );
        assert!(check(&req(3600, None, Some(1001)), 1000).is_ok());
    }

    #[test]
    fn the_mirror_applies_until_the_end_and_per_role() {
        let m = Mirror::default();
        m.set(
            SlowMode {
                video: "v".into(),
                seconds: 30,
                roles: vec![Role::Free],
                until: Some(500),
                by: "root".into(),
                set_at: 0,
            },
            0,
        );
        assert_eq!(m.get("v", 499).map(|s| s.seconds), Some(30));
        assert!(m.get("v", 500).is_none(), "ends at until");
        assert!(m.get("w", 0).is_none());
        m.replace(vec![]);
        assert!(m.get("v", 0).is_none());
    }
}
