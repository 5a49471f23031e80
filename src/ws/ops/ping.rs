//! `ping`: a reply, so a client can measure its round trip and prove the socket works.

use serde_json::{Value, json};

use super::super::{protocol, session::Session};
use crate::model::Refusal;

/// Answers at once.
pub fn run(s: &mut Session, id: Option<Value>) -> Result<(), Refusal> {
    s.send(&protocol::reply_ok(id, json!({"op": "ping"})));
    Ok(())
}
