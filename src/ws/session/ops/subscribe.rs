//! `subscribe`: joins a room, with recovery.
//!
//! The checks run at once (the name, the tier, the channel cap); the join runs through
//! the bus, which writes the reply, replays what the client missed since `since`, then
//! makes the socket live in the hub, with no gap and no duplicate between the two.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Done;
use crate::ws::{protocol, session::Session};
use crate::{
    access,
    bus::{Join, Joined, Since},
    model::Refusal,
};

/// Checks the request and leaves the join running in the session.
pub fn start(
    s: &mut Session,
    id: Option<Value>,
    channel: String,
    since: Option<Value>,
) -> Result<(), Refusal> {
    let automatic = channel == access::BROADCAST
        || (!s.identity.is_guest() && *access::user_channel(&s.identity.sub) == *channel);
    if automatic || s.channels.iter().any(|c| **c == *channel) {
        return Err(Refusal::bad_request(
            "already_subscribed",
            format!("already subscribed to {channel}"),
        ));
    }
    let tier = s.state.directory.check(&s.identity, &channel)?;
    let max = s.state.cfg.ws.max_channels;
    if s.channels.len() >= max {
        return Err(Refusal::bad_request(
            "too_many_subscriptions",
            format!("at most {max} channels per socket"),
        ));
    }
    let since = since.as_ref().map(parse_since).transpose()?;
    let (state, conn, role) = (s.state.clone(), s.conn.clone(), s.identity.role);
    s.op = Some(Box::pin(async move {
        let name: Arc<str> = Arc::from(channel.as_str());
        let reply = |j: &Joined| {
            let mut extra = json!({
                "op": "subscribe",
                "channel": channel,
                "tier": tier,
                "epoch": j.epoch,
                "seq": j.seq,
            });
            if let Some(r) = j.recovered {
                extra["recovered"] = Value::Bool(r);
                extra["replayed"] = Value::from(j.replayed);
            }
            protocol::reply_ok(id.clone(), extra)
        };
        let joined = state
            .bus
            .join(Join {
                conn: &conn,
                channel: &name,
                role,
                since,
                reply: &reply,
            })
            .await;
        match joined {
            Ok(j) => {
                tracing::debug!(conn = conn.id, channel = %name, recovered = ?j.recovered, replayed = j.replayed, "subscribed");
                Done::Subscribed(name)
            }
            Err(e) => Done::Failed {
                id,
                refusal: Refusal::unavailable("bus_unavailable", e.to_string()),
            },
        }
    }));
    Ok(())
}

/// Reads `{"seq": N, "epoch": "..."}`.
fn parse_since(v: &Value) -> Result<Since, Refusal> {
    let seq = v["seq"].as_u64();
    let epoch = v["epoch"].as_str();
    match (seq, epoch) {
        (Some(seq), Some(epoch)) if epoch.len() <= 64 => Ok(Since {
            seq,
            epoch: epoch.to_string(),
        }),
        (Some(seq), None) => Ok(Since {
            seq,
            epoch: String::new(),
        }),
        _ => Err(Refusal::bad_request(
            "bad_request",
            "since is {\"seq\": N, \"epoch\": \"...\"}",
        )),
    }
}
