//! Mutes and shadow bans: a user may not post (a mute), or posts but is seen by nobody
//! else (a shadow ban: their comments are stored shadowed), in one video (scope = that
//! video) or anywhere (scope = everywhere) until a given time, for a reason. The two are
//! the same shape ([`Restraint`] picks the table); each is stored first (with the audit
//! row), then mirrored here so that every post is checked without a store read.
//!
//! Who may: an admin in any scope; a room moderator only in a video they moderate.
//! Everywhere is admin-only. Lifting and listing follow the same rule.

use std::sync::Arc;

use super::{Service, audit, check_reason, check_sub, unavailable};
use crate::{
    access::Directory,
    model::{Identity, Refusal, channel::check_video_id, time::now_millis},
    store::moderation::{Action, Mute, Restraint},
};

/// Longest mute: one year, in seconds.
pub const MAX_SECONDS: u64 = 31_536_000;

/// The mutes in force per user. Read on every post: a lock-free map whose values are
/// replaced whole (writes are rare, and serialised by the service's mirror lock).
#[derive(Debug, Default)]
pub(super) struct Mirror {
    by_sub: papaya::HashMap<String, Arc<[Mute]>>,
}

impl Mirror {
    /// The mute of `sub` that applies to a post in `video` at `now`: the one ending last
    /// among the global one and `video`'s. Expired mutes never apply (no job needed).
    fn in_force(&self, sub: &str, video: &str, now: u64) -> Option<Mute> {
        let map = self.by_sub.pin();
        map.get(sub)?
            .iter()
            .filter(|m| m.until > now && m.video.as_deref().is_none_or(|v| v == video))
            .max_by_key(|m| m.until)
            .cloned()
    }

    /// Records a mute already stored (replacing the same scope), dropping what expired.
    pub(super) fn set(&self, m: Mute, now: u64) {
        let map = self.by_sub.pin();
        let mut mine: Vec<Mute> = map
            .get(&m.sub)
            .map(|v| {
                v.iter()
                    .filter(|o| o.video != m.video && o.until > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let sub = m.sub.clone();
        mine.push(m);
        map.insert(sub, mine.into());
        // Mutes are rare: sweeping the expired ones here keeps a single node's mirror
        // (never re-read from the store) from growing with every user ever muted.
        map.retain(|_, v| v.iter().any(|o| o.until > now));
    }

    /// Forgets the mute of `(sub, video)`, already lifted in the store.
    fn lift(&self, sub: &str, video: Option<&str>) {
        let map = self.by_sub.pin();
        if let Some(v) = map.get(sub) {
            let rest: Vec<Mute> = v
                .iter()
                .filter(|o| o.video.as_deref() != video)
                .cloned()
                .collect();
            if rest.is_empty() {
                map.remove(sub);
            } else {
                map.insert(sub.to_string(), rest.into());
            }
        }
    }

    /// Replaces the mirror with the mutes in force in the store. Upserts first, then
    /// drops the users gone, so a post never sees the map empty mid-refresh.
    pub(super) fn replace(&self, mutes: Vec<Mute>) {
        let mut fresh: std::collections::HashMap<String, Vec<Mute>> = Default::default();
        for m in mutes {
            fresh.entry(m.sub.clone()).or_default().push(m);
        }
        let map = self.by_sub.pin();
        for (sub, v) in &fresh {
            map.insert(sub.clone(), v.clone().into());
        }
        map.retain(|sub, _| fresh.contains_key(sub));
    }
}

/// A mute to set.
#[derive(Debug, Clone)]
pub struct MuteRequest {
    pub sub: String,
    /// `None`: everywhere (admins only).
    pub video: Option<String>,
    /// 1 to [`MAX_SECONDS`].
    pub seconds: u64,
    pub reason: Option<String>,
}

/// A unix-ms time as RFC 3339 UTC, for people.
fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms.min(i64::MAX as u64) as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// The audit actions and the words of one kind of restraint.
fn words(kind: Restraint) -> (Action, Action, &'static str, &'static str) {
    match kind {
        Restraint::Mute => (
            Action::UserMuted,
            Action::UserUnmuted,
            "unknown_mute",
            "muted",
        ),
        Restraint::ShadowBan => (
            Action::UserShadowBanned,
            Action::UserShadowUnbanned,
            "unknown_shadow_ban",
            "shadow-banned",
        ),
    }
}

impl Service {
    /// Queues the `user.muted` webhook event of a stored mute (`automatic`: by a flood
    /// rule). Shadow bans are never told: they must stay invisible.
    pub(super) async fn tell_muted(&self, m: &Mute, automatic: bool) {
        self.webhooks
            .emit(
                "user.muted",
                serde_json::json!({
                    "sub": m.sub, "video": m.video, "until": m.until, "reason": m.reason,
                    "by": m.by, "automatic": automatic,
                }),
            )
            .await;
    }

    /// The mirror of one kind of restraint.
    fn mirror(&self, kind: Restraint) -> &Mirror {
        match kind {
            Restraint::Mute => &self.mutes,
            Restraint::ShadowBan => &self.shadow_bans,
        }
    }

    /// Whether `sub`'s comments in `video` are stored shadowed at `now`.
    pub fn shadow_banned(&self, sub: &str, video: &str, now: u64) -> bool {
        self.shadow_bans.in_force(sub, video, now).is_some()
    }

    /// Refuses a post by `sub` in `video` while a mute applies (403 `muted`); the message
    /// says where, until when and why.
    pub fn check_post(&self, sub: &str, video: &str, now: u64) -> Result<(), Refusal> {
        let Some(m) = self.mutes.in_force(sub, video, now) else {
            return Ok(());
        };
        let place = match &m.video {
            Some(v) => format!("in video {v}"),
            None => "everywhere".to_string(),
        };
        Err(Refusal::forbidden(
            "muted",
            format!(
                "you are muted {place} until {} ({} more seconds); reason: {}",
                rfc3339(m.until),
                (m.until - now).div_ceil(1000),
                m.reason.as_deref().unwrap_or("none given")
            ),
        ))
    }

    /// Mutes a user (sets or replaces the mute of that user in that scope). Checks, in
    /// order: the user id, seconds, reason and video id (422), the caller's power over the
    /// scope (403 `not_moderator`), the video exists (404 `unknown_video`); only then is
    /// anything stored.
    pub async fn mute(
        &self,
        dir: &Directory,
        who: &Identity,
        req: MuteRequest,
    ) -> Result<Mute, Refusal> {
        self.restrain(dir, who, Restraint::Mute, req).await
    }

    /// [`Service::mute`] for either kind of restraint.
    pub async fn restrain(
        &self,
        dir: &Directory,
        who: &Identity,
        kind: Restraint,
        req: MuteRequest,
    ) -> Result<Mute, Refusal> {
        let (set_action, _, _, verb) = words(kind);
        check_sub(&req.sub)?;
        if !(1..=MAX_SECONDS).contains(&req.seconds) {
            return Err(Refusal::invalid(
                "invalid_seconds",
                format!("a mute or shadow ban lasts 1 to {MAX_SECONDS} seconds"),
            ));
        }
        let reason = check_reason(req.reason.as_deref())?;
        if let Some(v) = &req.video {
            check_video_id(v)?;
        }
        let authority = self.require_scope(who, req.video.as_deref())?;
        if let Some(v) = &req.video
            && dir.video_tier(v).is_none()
        {
            return Err(Refusal::not_found(
                "unknown_video",
                format!("video {v} is not in the catalog"),
            ));
        }
        let now = now_millis();
        let m = Mute {
            sub: req.sub.clone(),
            video: req.video.clone(),
            until: now + req.seconds * 1000,
            reason: reason.clone(),
            by: who.sub.to_string(),
            created_at: now,
        };
        let entry = audit::entry(
            who,
            authority,
            set_action,
            req.video.as_deref(),
            req.sub.clone(),
            reason,
            serde_json::json!({"seconds": req.seconds, "until": m.until}),
            now,
        );
        self.store
            .put_mute(kind, m.clone(), entry)
            .await
            .map_err(unavailable("mute"))?;
        self.apply_local(|s| s.mirror(kind).set(m.clone(), now));
        tracing::info!(sub = %m.sub, video = ?m.video, until = m.until, by = %who.sub, "user {verb}");
        if kind == Restraint::Mute {
            self.tell_muted(&m, false).await;
        }
        Ok(m)
    }

    /// Lifts the mute of `sub` in `video` (`None`: the global one); 404 `unknown_mute`
    /// when none is in force there.
    pub async fn unmute(
        &self,
        who: &Identity,
        sub: &str,
        video: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), Refusal> {
        self.unrestrain(who, Restraint::Mute, sub, video, reason)
            .await
    }

    /// [`Service::unmute`] for either kind (404 `unknown_shadow_ban` for a shadow ban).
    pub async fn unrestrain(
        &self,
        who: &Identity,
        kind: Restraint,
        sub: &str,
        video: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), Refusal> {
        let (_, lift_action, unknown, verb) = words(kind);
        check_sub(sub)?;
        let reason = check_reason(reason)?;
        if let Some(v) = video {
            check_video_id(v)?;
        }
        let authority = self.require_scope(who, video)?;
        let now = now_millis();
        let entry = audit::entry(
            who,
            authority,
            lift_action,
            video,
            sub.to_string(),
            reason,
            serde_json::json!({}),
            now,
        );
        let lifted = self
            .store
            .lift_mute(kind, sub, video, now, entry)
            .await
            .map_err(unavailable("unmute"))?;
        self.apply_local(|s| s.mirror(kind).lift(sub, video));
        if !lifted {
            return Err(Refusal::not_found(
                unknown,
                match video {
                    Some(v) => format!("{sub} is not {verb} in video {v}"),
                    None => format!("{sub} is not {verb} everywhere"),
                },
            ));
        }
        tracing::info!(sub, video = ?video, by = %who.sub, "user no longer {verb}");
        Ok(())
    }

    /// The mutes in force: all of them (admins, no video), or one video's (its
    /// moderators too). Read from the store, so a cluster node lists other nodes' mutes
    /// at once.
    pub async fn mutes(&self, who: &Identity, video: Option<&str>) -> Result<Vec<Mute>, Refusal> {
        self.restraints(who, Restraint::Mute, video).await
    }

    /// [`Service::mutes`] for either kind.
    pub async fn restraints(
        &self,
        who: &Identity,
        kind: Restraint,
        video: Option<&str>,
    ) -> Result<Vec<Mute>, Refusal> {
        self.require_scope(who, video)?;
        let all = self
            .store
            .list_mutes(kind, now_millis())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "mute list failed");
                Refusal::unavailable("store_unavailable", "mutes are unavailable; retry")
            })?;
        Ok(match video {
            Some(v) => all
                .into_iter()
                .filter(|m| m.video.as_deref() == Some(v))
                .collect(),
            None => all,
        })
    }

    /// The admin's global mute of the original `POST /api/users/{sub}/mute`: `seconds`
    /// 0 lifts it (and is not an error when there was none). Returns the end (0 when
    /// lifted).
    pub async fn mute_everywhere(
        &self,
        dir: &Directory,
        who: &Identity,
        sub: &str,
        seconds: u64,
    ) -> Result<u64, Refusal> {
        if seconds == 0 {
            return match self.unmute(who, sub, None, None).await {
                Ok(()) => Ok(0),
                Err(r) if r.code == "unknown_mute" => Ok(0),
                Err(r) => Err(r),
            };
        }
        let req = MuteRequest {
            sub: sub.to_string(),
            video: None,
            seconds,
            reason: None,
        };
        Ok(self.mute(dir, who, req).await?.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sub: &str, video: Option<&str>, until: u64) -> Mute {
        Mute {
            sub: sub.into(),
            video: video.map(str::to_string),
            until,
            reason: None,
            by: "root".into(),
            created_at: 0,
        }
    }

    #[test]
    fn the_mute_that_applies_is_in_scope_in_force_and_the_one_ending_last() {
        let mirror = Mirror::default();
        mirror.set(m("u", Some("a"), 500), 0);
        mirror.set(m("u", None, 200), 0);
        assert_eq!(mirror.in_force("u", "a", 100).map(|x| x.until), Some(500));
        assert_eq!(mirror.in_force("u", "b", 100).map(|x| x.until), Some(200));
        assert_eq!(mirror.in_force("u", "b", 200), None, "ends at until");
        assert_eq!(mirror.in_force("u", "a", 499).map(|x| x.until), Some(500));
        assert_eq!(mirror.in_force("other", "a", 0), None);
        // Replacing a scope keeps the other; lifting removes only its scope.
        mirror.set(m("u", Some("a"), 900), 100);
        assert_eq!(mirror.in_force("u", "a", 600).map(|x| x.until), Some(900));
        mirror.lift("u", Some("a"));
        assert_eq!(mirror.in_force("u", "a", 100).map(|x| x.until), Some(200));
        // A later mute sweeps the expired ones of every user.
        mirror.set(m("v", None, 10_000), 1_000);
        assert!(mirror.by_sub.pin().get("u").is_none());
        mirror.replace(vec![m("w", Some("a"), 50)]);
        assert!(mirror.by_sub.pin().get("v").is_none());
        assert!(mirror.in_force("w", "a", 10).is_some());
    }
}
