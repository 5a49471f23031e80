//! Events as published and as encoded for the wire.
//!
//! A [`Publish`] is what a producer asks for. The bus stamps it with `seq` and `ts` and
//! encodes it exactly once into an [`Encoded`] frame, whose bytes are shared by every
//! socket that receives it.

use std::{collections::HashSet, sync::Arc};

use serde::Serialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::access::{Audience, role_bit};
use crate::auth::Role;

/// Who, among a channel's subscribers, may receive an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Role groups reached, as a mask over [`Role::index`].
    pub mask: u8,
    /// When set, only these users (by `sub`) receive it.
    pub users: Option<Arc<HashSet<Arc<str>>>>,
    /// This user's sockets are skipped (no echo of a sender's own comment).
    pub except: Option<Arc<str>>,
}

impl Target {
    /// Everyone in an audience.
    pub fn audience(audience: Audience) -> Self {
        Target {
            mask: audience.mask(),
            users: None,
            except: None,
        }
    }

    /// Narrows to one role group.
    pub fn only_role(mut self, role: Role) -> Self {
        self.mask &= role_bit(role);
        self
    }

    /// Narrows to a list of users.
    pub fn only_users<I: IntoIterator<Item = String>>(mut self, users: I) -> Self {
        self.users = Some(Arc::new(users.into_iter().map(Arc::from).collect()));
        self
    }

    /// Whether a socket of `role` belonging to `sub` may receive the event.
    pub fn admits(&self, role: Role, sub: &str) -> bool {
        self.mask & role_bit(role) != 0
            && self.users.as_ref().is_none_or(|u| u.contains(sub))
            && self.except.as_deref().is_none_or(|e| e != sub)
    }
}

/// A request to publish one event on one channel.
#[derive(Debug, Clone)]
pub struct Publish {
    pub channel: Arc<str>,
    /// The event name, sent as `type` (for example `push`, `danmaku`).
    pub event: String,
    /// Arbitrary JSON, passed through unchanged (key order preserved).
    pub data: serde_json::Value,
    pub target: Target,
}

/// A published event, encoded once.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub channel: Arc<str>,
    pub seq: u64,
    pub target: Target,
    /// The complete JSON text frame.
    pub frame: Utf8Bytes,
}

/// The wire shape of a channel event.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    channel: &'a str,
    seq: u64,
    ts: u64,
    data: &'a serde_json::Value,
}

impl Encoded {
    /// Encodes `p` with its sequence number and timestamp (unix ms).
    pub fn encode(p: Publish, seq: u64, ts: u64) -> Encoded {
        let wire = Wire {
            kind: &p.event,
            channel: &p.channel,
            seq,
            ts,
            data: &p.data,
        };
        // Serializing a `Value` with string keys cannot fail.
        let text = serde_json::to_string(&wire).unwrap_or_default();
        Encoded {
            channel: p.channel,
            seq,
            target: p.target,
            frame: Utf8Bytes::from(text),
        }
    }
}
