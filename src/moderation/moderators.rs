//! Room moderators: stored grants (admins add and remove them) and their in-memory
//! mirror. The token half of the rule (the `mod` claim) needs no storage: it travels in
//! the caller's `Identity`.

use std::collections::{HashMap, HashSet};

use super::{Authority, Service, audit, check_sub, unavailable};
use crate::{
    access::Directory,
    model::{Identity, Refusal, channel::check_video_id, time::now_millis},
    store::moderation::{Action, Grant},
};

/// The stored grants, by video then sub. Read on moderator actions only (never on the
/// posting path), so a plain lock is enough; it is never held across an await.
#[derive(Debug, Default)]
pub(super) struct Grants {
    by_video: std::sync::RwLock<HashMap<String, HashSet<String>>>,
}

impl Grants {
    /// Whether the store lists `sub` as a moderator of `video`.
    pub(super) fn has(&self, video: &str, sub: &str) -> bool {
        self.read()
            .get(video)
            .is_some_and(|subs| subs.contains(sub))
    }

    /// Records a grant already stored.
    fn insert(&self, video: &str, sub: &str) {
        self.write()
            .entry(video.to_string())
            .or_default()
            .insert(sub.to_string());
    }

    /// Forgets a grant already removed from the store.
    fn remove(&self, video: &str, sub: &str) {
        let mut map = self.write();
        if let Some(subs) = map.get_mut(video) {
            subs.remove(sub);
            if subs.is_empty() {
                map.remove(video);
            }
        }
    }

    /// The stored moderators of `video`.
    fn of_video(&self, video: &str) -> Vec<String> {
        self.read()
            .get(video)
            .map(|subs| subs.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The videos whose stored grants list `sub`.
    fn videos_of(&self, sub: &str) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, subs)| subs.contains(sub))
            .map(|(v, _)| v.clone())
            .collect()
    }

    /// Replaces the mirror with what the store holds.
    pub(super) fn replace(&self, grants: Vec<Grant>) {
        let mut fresh: HashMap<String, HashSet<String>> = HashMap::new();
        for g in grants {
            fresh.entry(g.video).or_default().insert(g.sub);
        }
        *self.write() = fresh;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, HashSet<String>>> {
        self.by_video.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, HashSet<String>>> {
        self.by_video.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Only admins grant and remove moderators (the REST extractor says so first; this
/// keeps the rule in the domain for any other caller).
fn require_admin(who: &Identity) -> Result<(), Refusal> {
    if !who.is_guest() && who.role == crate::model::Role::Admin {
        Ok(())
    } else {
        Err(Refusal::forbidden(
            "forbidden",
            "only admins grant or remove room moderators",
        ))
    }
}

impl Service {
    /// The users the store lists as moderators of `video` (live marked copies of
    /// hidden comments go to them; moderators by `mod` claim find them in history).
    pub fn stored_moderators(&self, video: &str) -> Vec<String> {
        self.grants.of_video(video)
    }

    /// The videos `who` moderates as a room moderator: stored grants and the token's
    /// `mod` claim, sorted, once each (admins moderate every video without a list).
    pub fn moderated_by(&self, who: &Identity) -> Vec<String> {
        if who.is_guest() {
            return Vec::new();
        }
        let mut out = self.grants.videos_of(&who.sub);
        out.extend(who.moderates.iter().map(|v| v.to_string()));
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Makes `sub` a moderator of `video` (admin). The video must be in the catalog (404
    /// `unknown_video`). Returns the stored grant and whether it is new; re-granting is
    /// not an action (nothing changes, nothing is audited).
    pub async fn add_moderator(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
        sub: &str,
    ) -> Result<(Grant, bool), Refusal> {
        check_video_id(video)?;
        check_sub(sub)?;
        require_admin(who)?;
        if !dir.in_catalog(video) {
            return Err(Refusal::not_found(
                "unknown_video",
                format!("video {video} is not in the catalog"),
            ));
        }
        let now = now_millis();
        let grant = Grant {
            video: video.to_string(),
            sub: sub.to_string(),
            by: who.sub.to_string(),
            at: now,
        };
        let entry = audit::entry(
            who,
            Authority::Admin,
            Action::ModeratorAdded,
            Some(video),
            sub.to_string(),
            None,
            serde_json::json!({}),
            now,
        );
        let (grant, created) = self
            .store
            .put_moderator(grant, entry)
            .await
            .map_err(unavailable("moderator grant"))?;
        self.apply_local(|s| s.grants.insert(video, sub));
        if created {
            tracing::info!(video, sub, by = %who.sub, "room moderator added");
        }
        Ok((grant, created))
    }

    /// Removes `sub`'s stored grant on `video` (admin); 404 `unknown_moderator` when there
    /// is none. A grant carried by a token's `mod` claim is not touched: it ends with the
    /// token.
    pub async fn remove_moderator(
        &self,
        who: &Identity,
        video: &str,
        sub: &str,
    ) -> Result<(), Refusal> {
        check_video_id(video)?;
        check_sub(sub)?;
        require_admin(who)?;
        let now = now_millis();
        let entry = audit::entry(
            who,
            Authority::Admin,
            Action::ModeratorRemoved,
            Some(video),
            sub.to_string(),
            None,
            serde_json::json!({}),
            now,
        );
        let existed = self
            .store
            .delete_moderator(video, sub, entry)
            .await
            .map_err(unavailable("moderator removal"))?;
        self.apply_local(|s| s.grants.remove(video, sub));
        if !existed {
            return Err(Refusal::not_found(
                "unknown_moderator",
                format!("{sub} is not a stored moderator of video {video}"),
            ));
        }
        tracing::info!(video, sub, by = %who.sub, "room moderator removed");
        Ok(())
    }

    /// The stored moderators of `video`, for an admin or one of its moderators. Grants
    /// carried by tokens are not listed (the server keeps no record of tokens).
    pub async fn moderators(
        &self,
        dir: &Directory,
        who: &Identity,
        video: &str,
    ) -> Result<Vec<Grant>, Refusal> {
        check_video_id(video)?;
        self.require(who, video)?;
        if !dir.in_catalog(video) {
            return Err(Refusal::not_found(
                "unknown_video",
                format!("video {video} is not in the catalog"),
            ));
        }
        self.store.list_moderators(Some(video)).await.map_err(|e| {
            tracing::error!(error = %e, "moderator list failed");
            Refusal::unavailable("store_unavailable", "moderators are unavailable; retry")
        })
    }
}
