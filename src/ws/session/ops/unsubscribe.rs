//! `unsubscribe`: leaves a room joined with `subscribe`.

use serde_json::{Value, json};

use crate::ws::{protocol, session::Session};
use crate::{access, model::Refusal};

/// Leaves at once; the automatic channels (`broadcast`, the personal one) stay.
pub fn run(s: &mut Session, id: Option<Value>, channel: &str) -> Result<(), Refusal> {
    if channel == access::BROADCAST
        || (!s.identity.is_guest() && *access::user_channel(&s.identity.sub) == *channel)
    {
        return Err(Refusal::bad_request(
            "reserved_channel",
            "automatic channels cannot be left",
        ));
    }
    let pos = s
        .channels
        .iter()
        .position(|c| **c == *channel)
        .ok_or_else(|| {
            Refusal::bad_request("not_subscribed", format!("not subscribed to {channel}"))
        })?;
    let name = s.channels.swap_remove(pos);
    s.state.hub.unsubscribe(s.conn.id, &name, s.identity.role);
    s.send(&protocol::reply_ok(
        id,
        json!({"op": "unsubscribe", "channel": channel}),
    ));
    Ok(())
}
