//! `ping`: a reply, so a client can measure its round trip and prove the socket works.

use serde_json::{Value, json};

use crate::model::Refusal;
use crate::ws::{protocol, session::Session};

/// Answers at once.
pub fn run(s: &mut Session, id: Option<Value>) -> Result<(), Refusal> {
    s.send(&protocol::reply_ok(id, json!({"op": "ping"})));
    Ok(())
}
