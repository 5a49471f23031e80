//! Posting privileges per role, as configured (`[policy.free]`, `[policy.member]`,
//! `[policy.admin]`). Plain data: configuration reads it, the comment rules enforce it.

use serde::Deserialize;

use super::role::Role;

/// What a role may do when posting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePolicy {
    /// Whether this role may post at all.
    pub can_post: bool,
    /// Modes other than scroll are allowed.
    pub styled_modes: bool,
    /// Colours other than white are allowed.
    pub any_color: bool,
    /// Longest text, in characters after normalisation.
    pub max_len: usize,
    /// Minimum time between two posts of one user, in milliseconds (0: none).
    pub cooldown_ms: u64,
    /// May post with `audience: members`.
    pub members_audience: bool,
}

/// The privileges of every role; defaults modelled on bilibili.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub free: RolePolicy,
    pub member: RolePolicy,
    pub admin: RolePolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            free: RolePolicy {
                can_post: true,
                styled_modes: false,
                any_color: false,
                max_len: 30,
                cooldown_ms: 3000,
                members_audience: false,
            },
            member: RolePolicy {
                can_post: true,
                styled_modes: true,
                any_color: true,
                max_len: 100,
                cooldown_ms: 1000,
                members_audience: true,
            },
            admin: RolePolicy {
                can_post: true,
                styled_modes: true,
                any_color: true,
                max_len: 100,
                cooldown_ms: 0,
                members_audience: true,
            },
        }
    }
}

impl Policy {
    /// The policy of a role; guests never post.
    pub fn of(&self, role: Role) -> Option<&RolePolicy> {
        match role {
            Role::Guest => None,
            Role::Free => Some(&self.free),
            Role::Member => Some(&self.member),
            Role::Admin => Some(&self.admin),
        }
        .filter(|p| p.can_post)
    }
}
