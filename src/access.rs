//! Access rules: channel names, tiers, audiences, and who may join or receive what.
//!
//! This is the single place that answers "may this role do that". The WebSocket session,
//! the REST API and the hub's fan-out masks all derive from the functions here, so the
//! authorization matrix tests exercise one body of rules.

use std::sync::Arc;

use crate::model::{Identity, Refusal, Tier};

/// Longest accepted channel name.
pub const MAX_CHANNEL_LEN: usize = 128;

pub use crate::model::channel::BROADCAST;
use crate::model::channel::{USER_PREFIX, VIDEO_PREFIX};

/// A parsed channel name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelKind {
    /// `video:{id}`: a video's room; tier from the video catalog.
    Video(String),
    /// `user:{sub}`: one user's personal channel.
    User(String),
    /// `broadcast`: every socket, joined automatically.
    Broadcast,
    /// Any other name; must be declared by an admin first.
    Named,
}

/// Validates a channel name and classifies it.
pub fn parse_channel(name: &str) -> Result<ChannelKind, Refusal> {
    if name.is_empty() || name.len() > MAX_CHANNEL_LEN {
        return Err(Refusal::invalid(
            "invalid_channel",
            format!("channel names are 1 to {MAX_CHANNEL_LEN} bytes"),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
    {
        return Err(Refusal::invalid(
            "invalid_channel",
            "channel names use only ASCII letters, digits and - _ . : @",
        ));
    }
    if name == BROADCAST {
        return Ok(ChannelKind::Broadcast);
    }
    let nonempty = |rest: &str, what: &str| {
        if rest.is_empty() {
            Err(Refusal::invalid(
                "invalid_channel",
                format!("{what} channel needs an id"),
            ))
        } else {
            Ok(rest.to_string())
        }
    };
    if let Some(rest) = name.strip_prefix(VIDEO_PREFIX) {
        return nonempty(rest, "video").map(ChannelKind::Video);
    }
    if let Some(rest) = name.strip_prefix(USER_PREFIX) {
        return nonempty(rest, "user").map(ChannelKind::User);
    }
    Ok(ChannelKind::Named)
}

/// Whether a name may be declared through `PUT /api/channels/{name}` (the reserved
/// families are managed by the server).
pub fn declarable(name: &str) -> Result<(), Refusal> {
    match parse_channel(name)? {
        ChannelKind::Named => Ok(()),
        _ => Err(Refusal::invalid(
            "reserved_channel",
            "broadcast, user:* and video:* channels are managed by the server",
        )),
    }
}

/// Decides whether `who` may subscribe to `name`, given the declared tier of a named
/// channel (`declared`, `None` when undeclared) and the tier of a video room.
pub fn check_subscribe(
    who: &Identity,
    name: &str,
    declared: Option<Tier>,
    video_tier: Tier,
) -> Result<Tier, Refusal> {
    let tier = match parse_channel(name)? {
        ChannelKind::Broadcast => {
            return Err(Refusal::invalid(
                "reserved_channel",
                "every socket is on the broadcast channel already",
            ));
        }
        ChannelKind::User(sub) => {
            return if !who.is_guest() && *who.sub == *sub {
                Err(Refusal::forbidden(
                    "already_subscribed",
                    "your personal channel is joined automatically",
                ))
            } else {
                Err(Refusal::forbidden(
                    "forbidden",
                    "a personal channel is open only to its user",
                ))
            };
        }
        ChannelKind::Video(_) => video_tier,
        ChannelKind::Named => declared.ok_or_else(|| {
            Refusal::not_found("unknown_channel", format!("channel {name} is not declared"))
        })?,
    };
    if tier.admits(who.role) {
        Ok(tier)
    } else {
        Err(Refusal::forbidden(
            "forbidden",
            format!(
                "a {} may not join a {}-tier channel",
                who.role,
                tier.as_str()
            ),
        ))
    }
}

/// Declared channel tiers, mirrored in memory from the store so that subscribe checks never
/// wait on the database. Writes go to the store first, then here.
#[derive(Debug)]
pub struct Directory {
    declared: papaya::HashMap<String, Tier>,
    /// The video catalog's tiers.
    videos: papaya::HashMap<String, Tier>,
    /// Whether videos missing from the catalog are open (as free videos).
    open_unknown_videos: bool,
}

impl Directory {
    /// An empty directory.
    pub fn new(open_unknown_videos: bool) -> Self {
        Directory {
            declared: papaya::HashMap::new(),
            videos: papaya::HashMap::new(),
            open_unknown_videos,
        }
    }

    /// Records a catalog entry already stored.
    pub fn set_video(&self, id: &str, tier: Tier) {
        self.videos.pin().insert(id.to_string(), tier);
    }

    /// Replaces the mirror with what the store holds (at startup, and every second on a
    /// cluster node).
    ///
    /// Upserts first, then drops the names gone from the store: a reader never sees the
    /// map empty mid-refresh (clearing first let a push on another thread find a
    /// declared channel missing and answer 404 `unknown_channel`).
    pub fn load<I: IntoIterator<Item = (String, Tier)>>(&self, decls: I) {
        let fresh: std::collections::HashMap<String, Tier> = decls.into_iter().collect();
        let map = self.declared.pin();
        for (name, tier) in &fresh {
            map.insert(name.clone(), *tier);
        }
        map.retain(|name, _| fresh.contains_key(name));
    }

    /// Records a declaration already stored.
    pub fn declare(&self, name: &str, tier: Tier) {
        self.declared.pin().insert(name.to_string(), tier);
    }

    /// Forgets a declaration already removed from the store.
    pub fn forget(&self, name: &str) {
        self.declared.pin().remove(name);
    }

    /// The declared tier of a named channel.
    pub fn declared(&self, name: &str) -> Option<Tier> {
        self.declared.pin().get(name).copied()
    }

    /// Whether `video` is in the catalog (`PUT /api/videos/{id}`), whatever
    /// `open_unknown_videos` says: room moderators are granted on catalog videos only.
    pub fn in_catalog(&self, video: &str) -> bool {
        self.videos.pin().contains_key(video)
    }

    /// The tier of a video room: from the catalog, else free when unknown videos are
    /// open, else `None` (unknown).
    pub fn video_tier(&self, video: &str) -> Option<Tier> {
        match self.videos.pin().get(video) {
            Some(t) => Some(*t),
            None if self.open_unknown_videos => Some(Tier::Free),
            None => None,
        }
    }

    /// Decides whether `who` may subscribe to `name` (see [`check_subscribe`]).
    pub fn check(&self, who: &Identity, name: &str) -> Result<Tier, Refusal> {
        let video_tier = match parse_channel(name)? {
            ChannelKind::Video(id) => self.video_tier(&id).ok_or_else(|| {
                Refusal::forbidden("unknown_video", format!("video {id} is not in the catalog"))
            })?,
            _ => Tier::Free,
        };
        let result = check_subscribe(who, name, self.declared(name), video_tier);
        // A member-only video room refuses with the code the danmaku API uses.
        match (parse_channel(name), result) {
            (Ok(ChannelKind::Video(_)), Err(d)) if d.code == "forbidden" => {
                Err(Refusal::forbidden("member_only", d.message))
            }
            (_, r) => r,
        }
    }
}

/// The personal channel name of a user.
pub fn user_channel(sub: &str) -> Arc<str> {
    Arc::from(format!("{USER_PREFIX}{sub}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn who(role: Role) -> Identity {
        Identity {
            sub: "u1".into(),
            name: "u1".into(),
            role,
            exp: None,
            moderates: Arc::default(),
        }
    }

    #[test]
    fn channel_names_are_validated() {
        assert!(parse_channel("").is_err());
        assert!(parse_channel("a b").is_err());
        assert!(parse_channel(&"x".repeat(129)).is_err());
        assert!(parse_channel("video:").is_err());
        assert_eq!(
            parse_channel("video:42").unwrap(),
            ChannelKind::Video("42".into())
        );
        assert_eq!(parse_channel("news").unwrap(), ChannelKind::Named);
        assert!(declarable("user:bob").is_err());
        assert!(declarable("merchant:7").is_ok());
    }

    #[test]
    fn personal_channels_are_private() {
        let admin = who(Role::Admin);
        let err = check_subscribe(&admin, "user:someone", None, Tier::Free).unwrap_err();
        assert_eq!(err.code, "forbidden");
        let undeclared = check_subscribe(&admin, "merchant:7", None, Tier::Free).unwrap_err();
        assert_eq!(undeclared.code, "unknown_channel");
    }
}
