//! The JSON frames of WebSocket protocol v1 (documented in `openapi/asyncapi.yaml`).
//!
//! Client messages are parsed leniently into one struct and then checked per op, so
//! every error reply can echo the client's `id`. Server messages that concern one socket
//! (welcome, replies, notices) are built here and nowhere else, as complete frames;
//! channel events are encoded once by the bus and framed in batches by the hub.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    danmaku::rules::Draft,
    model::{Identity, Refusal, Role},
};

/// Protocol version announced in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A client frame, before per-op validation.
#[derive(Debug, Deserialize)]
pub struct ClientFrame {
    pub op: Option<String>,
    /// Echoed in the reply; a number or a string.
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// Recovery position (`{"seq": N, "epoch": "..."}`); accepted and reported as not
    /// recovered until replay windows exist.
    #[serde(default)]
    pub since: Option<Value>,
    /// `danmaku` op: the video id.
    #[serde(default)]
    pub video: Option<String>,
    /// `danmaku` op: the comment text.
    #[serde(default)]
    pub text: Option<String>,
    /// `danmaku` op: video position in seconds.
    #[serde(default)]
    pub time: Option<f64>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
}

/// A client operation, validated.
#[derive(Debug, PartialEq)]
pub enum Op {
    Subscribe {
        channel: String,
        since: Option<Value>,
    },
    Unsubscribe {
        channel: String,
    },
    Refresh {
        token: String,
    },
    Ping,
    /// Post a comment (same rules as `POST /api/videos/{id}/danmaku`).
    Danmaku {
        video: String,
        draft: Draft,
    },
}

/// Parses a text frame into its echo id and operation.
pub fn parse(text: &str) -> (Option<Value>, Result<Op, Refusal>) {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            // Try to salvage the id so the error reply can still be matched.
            let id = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .filter(valid_id);
            let err = if e.is_data() {
                // serde quotes the offending value, which may be the whole frame:
                // echo a bounded prefix only.
                Refusal::bad_request(
                    "bad_request",
                    format!("invalid frame: {}", truncate(&e.to_string(), 160)),
                )
            } else {
                Refusal::bad_request("bad_json", "frames must be JSON objects")
            };
            return (id, Err(err));
        }
    };
    let id = frame.id.clone();
    if let Some(id) = &id
        && !valid_id(id)
    {
        return (
            None,
            Err(Refusal::bad_request(
                "bad_request",
                "id must be a number or a string of at most 64 bytes",
            )),
        );
    }
    (id, to_op(frame))
}

/// Echo ids are numbers or short strings.
fn valid_id(id: &Value) -> bool {
    match id {
        Value::Number(_) => true,
        Value::String(s) => s.len() <= 64,
        _ => false,
    }
}

/// Per-op validation.
fn to_op(frame: ClientFrame) -> Result<Op, Refusal> {
    let need_channel = |c: Option<String>| {
        c.ok_or_else(|| Refusal::bad_request("bad_request", "this op needs a channel"))
    };
    match frame.op.as_deref() {
        Some("subscribe") => Ok(Op::Subscribe {
            channel: need_channel(frame.channel)?,
            since: frame.since,
        }),
        Some("unsubscribe") => Ok(Op::Unsubscribe {
            channel: need_channel(frame.channel)?,
        }),
        Some("refresh") => Ok(Op::Refresh {
            token: frame
                .token
                .ok_or_else(|| Refusal::bad_request("bad_request", "refresh needs a token"))?,
        }),
        Some("ping") => Ok(Op::Ping),
        Some("danmaku") => Ok(Op::Danmaku {
            video: frame
                .video
                .ok_or_else(|| Refusal::bad_request("bad_request", "danmaku needs a video"))?,
            draft: Draft {
                text: frame
                    .text
                    .ok_or_else(|| Refusal::bad_request("bad_request", "danmaku needs a text"))?,
                time: frame.time.unwrap_or(0.0),
                mode: frame.mode,
                color: frame.color,
                size: frame.size,
                audience: frame.audience,
            },
        }),
        Some(other) => Err(Refusal::bad_request(
            "unknown_op",
            format!(
                "unknown op {:?}: use subscribe, unsubscribe, refresh, ping or danmaku",
                truncate(other, 32)
            ),
        )),
        None => Err(Refusal::bad_request("bad_request", "frames need an op")),
    }
}

/// Shortens untrusted text before it is echoed back.
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The user block of `welcome` and refresh replies.
#[derive(Debug, Serialize)]
pub struct UserInfo<'a> {
    /// `null` for guests.
    pub sub: Option<&'a str>,
    pub name: &'a str,
    pub role: Role,
}

impl<'a> UserInfo<'a> {
    /// Describes an identity for its own socket.
    pub fn of(who: &'a Identity) -> Self {
        UserInfo {
            sub: (!who.is_guest()).then_some(&*who.sub),
            name: &who.name,
            role: who.role,
        }
    }
}

/// Encodes any serializable server message as a complete text frame, ready to write.
fn encode<T: Serialize>(v: &T) -> Bytes {
    crate::frame::text(&serde_json::to_vec(v).unwrap_or_default())
}

/// `{"type":"welcome",...}`, the first frame on every socket.
pub fn welcome(conn: u64, who: &Identity, heartbeat_s: u64) -> Bytes {
    encode(&serde_json::json!({
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "conn": conn.to_string(),
        "user": UserInfo::of(who),
        "heartbeat_s": heartbeat_s,
    }))
}

/// `{"type":"reply","id":..,"ok":true, ...extra}`.
pub fn reply_ok(id: Option<Value>, extra: Value) -> Bytes {
    let mut obj = serde_json::Map::new();
    obj.insert("type".into(), "reply".into());
    obj.insert("id".into(), id.unwrap_or(Value::Null));
    obj.insert("ok".into(), true.into());
    if let Value::Object(extra) = extra {
        obj.extend(extra);
    }
    encode(&Value::Object(obj))
}

/// `{"type":"reply","id":..,"ok":false,"error":{"code","message"}}`.
pub fn reply_err(id: Option<Value>, err: &Refusal) -> Bytes {
    let mut error = serde_json::json!({"code": err.code, "message": err.message});
    if let Some(ms) = err.retry_after_ms {
        error["retry_after_ms"] = ms.into();
    }
    encode(&serde_json::json!({
        "type": "reply",
        "id": id,
        "ok": false,
        "error": error,
    }))
}

/// `{"type":"unsubscribed",...}`: the server removed a subscription (after a downgrade).
pub fn unsubscribed(channel: &str, reason: &str, message: &str) -> Bytes {
    encode(&serde_json::json!({
        "type": "unsubscribed",
        "channel": channel,
        "reason": reason,
        "message": message,
    }))
}

/// `{"type":"token_expired","grace_s":N}`: refresh now or be closed with 4001.
pub fn token_expired(grace_s: u64) -> Bytes {
    encode(&serde_json::json!({"type": "token_expired", "grace_s": grace_s}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ops_and_echoes_ids() {
        let (id, op) = parse(r#"{"op":"subscribe","id":7,"channel":"news"}"#);
        assert_eq!(id, Some(Value::from(7)));
        assert_eq!(
            op.unwrap(),
            Op::Subscribe {
                channel: "news".into(),
                since: None
            }
        );
        let (id, op) = parse(r#"{"op":"dance","id":"a"}"#);
        assert_eq!(id, Some(Value::from("a")));
        assert_eq!(op.unwrap_err().code, "unknown_op");
        let (_, op) = parse("nope");
        assert_eq!(op.unwrap_err().code, "bad_json");
        let (id, op) = parse(r#"{"op":"subscribe","id":3,"channel":5}"#);
        assert_eq!(id, Some(Value::from(3)));
        assert_eq!(op.unwrap_err().code, "bad_request");
        let (_, op) = parse(r#"[1,2]"#);
        assert_eq!(op.unwrap_err().code, "bad_request");
    }
}
