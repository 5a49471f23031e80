//! Access rules: channel names, tiers, audiences, and who may join or receive what.
//!
//! This is the single place that answers "may this role do that". The WebSocket session,
//! the REST API and the hub's fan-out masks all derive from the functions here, so the
//! authorization matrix tests exercise one body of rules.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::auth::{Identity, Role};

/// Longest accepted channel name.
pub const MAX_CHANNEL_LEN: usize = 128;

/// The channel every socket is on automatically; broadcasts and role pushes use it.
pub const BROADCAST: &str = "broadcast";

/// Who may join a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Tier {
    /// Everyone, including guests.
    Free,
    /// Members and admins.
    Member,
    /// Admins only.
    Admin,
}

impl Tier {
    /// Lowercase name, as stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Member => "member",
            Tier::Admin => "admin",
        }
    }

    /// Parses a stored tier name.
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "free" => Some(Tier::Free),
            "member" => Some(Tier::Member),
            "admin" => Some(Tier::Admin),
            _ => None,
        }
    }

    /// Bit mask over [`Role::index`] of the groups this tier admits; fan-out on a channel
    /// is always narrowed by it, so re-tiering a channel takes effect at once.
    pub fn mask(self) -> u8 {
        Role::ALL
            .iter()
            .filter(|r| self.admits(**r))
            .fold(0, |m, r| m | role_bit(*r))
    }

    /// Whether `role` may subscribe to a channel of this tier.
    pub fn admits(self, role: Role) -> bool {
        match self {
            Tier::Free => true,
            Tier::Member => role.is_member_or_admin(),
            Tier::Admin => role == Role::Admin,
        }
    }
}

/// Which role groups a message may reach. An explicit user list narrows it further.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum,
)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Audience {
    /// Every role.
    #[default]
    Everyone,
    /// Members and admins.
    Members,
    /// Free users and guests only (upsell notices and the like).
    Free,
}

impl Audience {
    /// Bit mask over [`Role::index`] of the groups this audience reaches.
    pub fn mask(self) -> u8 {
        match self {
            Audience::Everyone => 0b1111,
            Audience::Members => role_bit(Role::Member) | role_bit(Role::Admin),
            Audience::Free => role_bit(Role::Guest) | role_bit(Role::Free),
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Everyone => "everyone",
            Audience::Members => "members",
            Audience::Free => "free",
        }
    }
}

/// The mask bit of one role group.
pub fn role_bit(role: Role) -> u8 {
    1 << role.index()
}

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

/// Why an operation was refused; `code` is the machine-readable error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub code: &'static str,
    pub message: String,
}

impl Denied {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Denied {
            code,
            message: message.into(),
        }
    }
}

/// Validates a channel name and classifies it.
pub fn parse_channel(name: &str) -> Result<ChannelKind, Denied> {
    if name.is_empty() || name.len() > MAX_CHANNEL_LEN {
        return Err(Denied::new(
            "invalid_channel",
            format!("channel names are 1 to {MAX_CHANNEL_LEN} bytes"),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
    {
        return Err(Denied::new(
            "invalid_channel",
            "channel names use only ASCII letters, digits and - _ . : @",
        ));
    }
    if name == BROADCAST {
        return Ok(ChannelKind::Broadcast);
    }
    let nonempty = |rest: &str, what: &str| {
        if rest.is_empty() {
            Err(Denied::new(
                "invalid_channel",
                format!("{what} channel needs an id"),
            ))
        } else {
            Ok(rest.to_string())
        }
    };
    if let Some(rest) = name.strip_prefix("video:") {
        return nonempty(rest, "video").map(ChannelKind::Video);
    }
    if let Some(rest) = name.strip_prefix("user:") {
        return nonempty(rest, "user").map(ChannelKind::User);
    }
    Ok(ChannelKind::Named)
}

/// Whether a name may be declared through `PUT /api/channels/{name}` (the reserved
/// families are managed by the server).
pub fn declarable(name: &str) -> Result<(), Denied> {
    match parse_channel(name)? {
        ChannelKind::Named => Ok(()),
        _ => Err(Denied::new(
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
) -> Result<Tier, Denied> {
    let tier = match parse_channel(name)? {
        ChannelKind::Broadcast => {
            return Err(Denied::new(
                "reserved_channel",
                "every socket is on the broadcast channel already",
            ));
        }
        ChannelKind::User(sub) => {
            return if !who.is_guest() && *who.sub == *sub {
                Err(Denied::new(
                    "already_subscribed",
                    "your personal channel is joined automatically",
                ))
            } else {
                Err(Denied::new(
                    "forbidden",
                    "a personal channel is open only to its user",
                ))
            };
        }
        ChannelKind::Video(_) => video_tier,
        ChannelKind::Named => declared.ok_or_else(|| {
            Denied::new("unknown_channel", format!("channel {name} is not declared"))
        })?,
    };
    if tier.admits(who.role) {
        Ok(tier)
    } else {
        Err(Denied::new(
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

    /// Replaces the mirror with what the store holds (at startup).
    pub fn load<I: IntoIterator<Item = (String, Tier)>>(&self, decls: I) {
        let map = self.declared.pin();
        map.clear();
        for (name, tier) in decls {
            map.insert(name, tier);
        }
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
    pub fn check(&self, who: &Identity, name: &str) -> Result<Tier, Denied> {
        let video_tier = match parse_channel(name)? {
            ChannelKind::Video(id) => self.video_tier(&id).ok_or_else(|| {
                Denied::new("unknown_video", format!("video {id} is not in the catalog"))
            })?,
            _ => Tier::Free,
        };
        let result = check_subscribe(who, name, self.declared(name), video_tier);
        // A member-only video room refuses with the code the danmaku API uses.
        match (parse_channel(name), result) {
            (Ok(ChannelKind::Video(_)), Err(d)) if d.code == "forbidden" => {
                Err(Denied::new("member_only", d.message))
            }
            (_, r) => r,
        }
    }
}

/// The personal channel name of a user.
pub fn user_channel(sub: &str) -> Arc<str> {
    Arc::from(format!("user:{sub}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role) -> Identity {
        Identity {
            sub: "u1".into(),
            name: "u1".into(),
            role,
            exp: None,
        }
    }

    #[test]
    fn tiers_admit_by_role() {
        for role in Role::ALL {
            assert!(Tier::Free.admits(role));
            assert_eq!(Tier::Member.admits(role), role >= Role::Member);
            assert_eq!(Tier::Admin.admits(role), role == Role::Admin);
        }
    }

    #[test]
    fn audiences_map_to_groups() {
        assert_eq!(Audience::Everyone.mask(), 0b1111);
        assert_eq!(Audience::Members.mask() & role_bit(Role::Free), 0);
        assert_eq!(Audience::Members.mask() & role_bit(Role::Guest), 0);
        assert_ne!(Audience::Members.mask() & role_bit(Role::Admin), 0);
        assert_eq!(Audience::Free.mask() & role_bit(Role::Member), 0);
        assert_ne!(Audience::Free.mask() & role_bit(Role::Guest), 0);
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
