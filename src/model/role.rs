//! The role model: four roles ordered by privilege, and a verified caller.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// The four roles, ordered by privilege. `Guest` never appears in a token: it is what a
/// connection without a token becomes when guests are allowed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    poem_openapi::Enum,
)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Role {
    Guest = 0,
    Free = 1,
    Member = 2,
    Admin = 3,
}

impl Role {
    /// All roles, in group-index order.
    pub const ALL: [Role; 4] = [Role::Guest, Role::Free, Role::Member, Role::Admin];

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Free => "free",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// Index of this role's subscriber group inside a channel.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Inverse of [`Role::index`]; out-of-range values fall back to the least privilege.
    pub fn from_index(i: u8) -> Role {
        match i {
            1 => Role::Free,
            2 => Role::Member,
            3 => Role::Admin,
            _ => Role::Guest,
        }
    }

    /// Parses a role that a token may carry (never `guest`).
    pub fn parse_token_role(s: &str) -> Option<Role> {
        match s {
            "free" => Some(Role::Free),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Members and admins see member-only content.
    pub fn is_member_or_admin(self) -> bool {
        matches!(self, Role::Member | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified caller. Cheap to clone: the verifier hands out `Arc<Identity>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable user id from `sub`; for guests a per-connection placeholder.
    pub sub: Arc<str>,
    /// Display name (`name` claim, else a pseudonym of `sub`).
    pub name: Arc<str>,
    pub role: Role,
    /// Token expiry (unix seconds); `None` for guests and API keys.
    pub exp: Option<u64>,
    /// The videos the token's `mod` claim names (room moderator of each). This is only
    /// the token's half of the rule: a user moderates a video when the store lists them
    /// OR this claim does (`moderation::Service::authority`). Empty for most callers.
    pub moderates: Arc<[Arc<str>]>,
}

impl Identity {
    /// A tokenless read-only viewer.
    pub fn guest(conn_id: u64) -> Self {
        let sub: Arc<str> = Arc::from(format!("guest-{conn_id}"));
        Identity {
            name: Arc::from("guest"),
            sub,
            role: Role::Guest,
            exp: None,
            moderates: Arc::default(),
        }
    }

    /// Whether the token's `mod` claim names `video` (guests carry no claim).
    pub fn moderates_by_claim(&self, video: &str) -> bool {
        self.moderates.iter().any(|v| &**v == video)
    }

    /// Whether this identity came from a token (guests have no `sub` of their own).
    pub fn is_guest(&self) -> bool {
        self.role == Role::Guest
    }
}
