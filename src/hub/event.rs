//! Events as published and as encoded for the wire.
//!
//! A [`Publish`] is what a producer asks for. The bus stamps it with `seq` and `ts` and
//! encodes it exactly once into an [`Encoded`] event: its JSON text, which the hub puts
//! into room batches (one frame per batch, shared by every socket that receives it) and
//! the bus keeps for replay.

use std::{collections::HashSet, sync::Arc};

use bytes::Bytes;
use serde::Serialize;

use super::conn::Conn;
use crate::model::Role;
use crate::model::{Audience, role_bit};

/// Who, among a channel's subscribers, may receive an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Role groups reached, as a mask over [`Role::index`].
    pub mask: u8,
    /// When set, only these users (by `sub`) receive it.
    pub users: Option<Arc<HashSet<Arc<str>>>>,
    /// This user's sockets are skipped (no echo of a sender's own comment).
    pub except: Option<Arc<str>>,
    /// With `users`: the sockets whose token's `mod` claim names the channel's video
    /// pass the user filter too (the moderators' marked copies).
    pub claim_moderators: bool,
}

impl Target {
    /// Everyone in an audience.
    pub fn audience(audience: Audience) -> Self {
        Target {
            mask: audience.mask(),
            users: None,
            except: None,
            claim_moderators: false,
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

    /// Whether the target filters by user (a list, or a skipped sender): such events
    /// are checked per socket.
    pub fn by_user(&self) -> bool {
        self.users.is_some() || self.except.is_some()
    }

    /// Whether `conn`, as a socket of `role`, may receive the event on `channel`.
    pub fn admits(&self, role: Role, conn: &Conn, channel: &str) -> bool {
        self.mask & role_bit(role) != 0
            && self
                .users
                .as_ref()
                .is_none_or(|u| self.listed(u, conn, channel))
            && self.except.as_deref().is_none_or(|e| e != &*conn.sub)
    }

    /// Whether `conn` passes the user list `users` (of this target) on `channel`.
    pub fn listed(&self, users: &HashSet<Arc<str>>, conn: &Conn, channel: &str) -> bool {
        // The claim first: for nearly every socket it is one load of an empty slot,
        // where the list costs a hash of the socket's sub.
        (self.claim_moderators && conn.moderates(channel))
            || (!users.is_empty() && users.contains(&conn.sub))
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
    /// The channel sequence number; 0 for an event delivered on this node only, without
    /// one, while the bus was away ([`Encoded::unsequenced`]).
    pub seq: u64,
    pub target: Target,
    /// The event's JSON text (a frame payload on its own, or one item of a batch).
    pub text: Bytes,
}

/// The wire shape of a channel event.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    channel: &'a str,
    /// Absent only from an event delivered without a bus ([`Encoded::unsequenced`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    ts: u64,
    data: &'a serde_json::Value,
}

/// The frame text around the `seq` digits, so an engine that numbers events elsewhere
/// (Redis) still serializes each event once: the frame is `prefix + seq + suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameParts {
    pub prefix: String,
    pub suffix: String,
}

/// A [`Target`] as it travels between nodes.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TargetWire {
    #[serde(rename = "m")]
    pub mask: u8,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
    /// Absent (false) from nodes that predate it: they only ever sent user lists.
    #[serde(rename = "c", default, skip_serializing_if = "std::ops::Not::not")]
    pub claim_moderators: bool,
}

impl From<&Target> for TargetWire {
    fn from(t: &Target) -> Self {
        TargetWire {
            mask: t.mask,
            users: t
                .users
                .as_ref()
                .map(|u| u.iter().map(|s| s.to_string()).collect()),
            except: t.except.as_deref().map(str::to_string),
            claim_moderators: t.claim_moderators,
        }
    }
}

impl From<TargetWire> for Target {
    fn from(t: TargetWire) -> Self {
        Target {
            mask: t.mask,
            users: t
                .users
                .map(|u| Arc::new(u.into_iter().map(Arc::from).collect())),
            except: t.except.map(Arc::from),
            claim_moderators: t.claim_moderators,
        }
    }
}

impl FrameParts {
    /// Encodes `p` once with timestamp `ts`, leaving a hole where `seq` goes.
    pub fn encode(p: &Publish, ts: u64) -> FrameParts {
        let wire = Wire {
            kind: &p.event,
            channel: &p.channel,
            seq: Some(0),
            ts,
            data: &p.data,
        };
        let text = serde_json::to_string(&wire).unwrap_or_default();
        // Inside JSON strings quotes are escaped, so the first unescaped `,"seq":0,` is
        // the field itself.
        const HOLE: &str = ",\"seq\":0,";
        match text.find(HOLE) {
            Some(at) => FrameParts {
                prefix: text[..at + HOLE.len() - 2].to_string(),
                suffix: text[at + HOLE.len() - 1..].to_string(),
            },
            None => FrameParts {
                prefix: text,
                suffix: String::new(),
            },
        }
    }
}

impl Encoded {
    /// Encodes `p` with its sequence number and timestamp (unix ms).
    pub fn encode(p: Publish, seq: u64, ts: u64) -> Encoded {
        Self::with_seq(p, Some(seq), ts)
    }

    /// Encodes `p` without a `seq`: a stored comment's event that this node delivers to
    /// its own sockets while the bus is away. It has no place in the channel's numbering
    /// yet; it is published again, numbered, once the bus is back (clients keep the first
    /// copy by `data.id`).
    pub fn unsequenced(p: Publish, ts: u64) -> Encoded {
        Self::with_seq(p, None, ts)
    }

    fn with_seq(p: Publish, seq: Option<u64>, ts: u64) -> Encoded {
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
            seq: seq.unwrap_or(0),
            target: p.target,
            text: Bytes::from(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_parts_around_seq_match_the_one_shot_encoding() {
        let p = Publish {
            channel: Arc::from("news"),
            event: "push".into(),
            data: serde_json::json!({"text": "\"seq\":0, tricky"}),
            target: Target::audience(crate::model::Audience::Everyone),
        };
        let parts = FrameParts::encode(&p, 42);
        let whole = Encoded::encode(p, 17, 42);
        assert_eq!(
            format!("{}17{}", parts.prefix, parts.suffix).as_bytes(),
            &whole.text[..]
        );
    }

    #[test]
    fn an_unsequenced_event_has_no_seq_field() {
        let p = Publish {
            channel: Arc::from("video:v"),
            event: "danmaku".into(),
            data: serde_json::json!({"id": 7}),
            target: Target::audience(crate::model::Audience::Everyone),
        };
        let e = Encoded::unsequenced(p, 5);
        assert_eq!(e.seq, 0);
        assert_eq!(
            std::str::from_utf8(&e.text).unwrap(),
            r#"{"type":"danmaku","channel":"video:v","ts":5,"data":{"id":7}}"#
        );
    }

    #[test]
    fn a_target_crosses_nodes_whole_and_reads_the_older_shape() {
        let mut t = Target::audience(crate::model::Audience::Members).only_users(["mo".into()]);
        t.except = Some("sam".into());
        t.claim_moderators = true;
        let text = serde_json::to_string(&TargetWire::from(&t)).unwrap();
        let back: TargetWire = serde_json::from_str(&text).unwrap();
        assert_eq!(Target::from(back), t);
        // A node without the flag sends none: it reads as false.
        let old: TargetWire = serde_json::from_str(r#"{"m":3,"u":["mo"]}"#).unwrap();
        assert!(!Target::from(old).claim_moderators);
        // And an unflagged target does not spell it.
        let plain = serde_json::to_string(&TargetWire::from(&Target::audience(
            crate::model::Audience::Everyone,
        )))
        .unwrap();
        assert!(!plain.contains("\"c\""), "{plain}");
    }
}
