//! Channel tiers and message audiences, and the role-group masks fan-out is built from.
//!
//! A mask is a `u8` with one bit per [`Role::index`]: a channel's subscribers are kept in
//! four role groups, and an event reaches the groups whose bits its target has.

use serde::{Deserialize, Serialize};

use super::role::Role;

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
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
