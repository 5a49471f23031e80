//! The client ops, one file each (as mini-redis's `cmd/`): `subscribe`, `unsubscribe`,
//! `refresh`, `ping` and `danmaku` (a comment post).
//!
//! An op either answers at once, or leaves a future in the session ([`Session::op`])
//! whose result comes back here through [`finish`]; while it runs, the session reads no
//! further op, so ops take effect in the order they were sent.

mod ping;
mod post;
mod refresh;
mod subscribe;
mod unsubscribe;

use std::sync::Arc;

use serde_json::Value;

use super::Session;
use crate::model::{Identity, Refusal};
use crate::ws::protocol::Op;

/// What a waiting op hands back to the session.
pub enum Done {
    /// A join finished: the room is now one of the session's channels.
    Subscribed(Arc<str>),
    /// A token checked for `refresh`.
    Refreshed {
        id: Option<Value>,
        result: Result<Arc<Identity>, Refusal>,
    },
    /// A comment post got its slot and is running beside the session.
    Posted,
    /// The op failed; its error reply is to be sent.
    Failed { id: Option<Value>, refusal: Refusal },
}

/// Runs one validated op.
pub fn dispatch(s: &mut Session, id: Option<Value>, op: Op) {
    tracing::debug!(conn = s.conn.id, sub = %s.identity.sub, role = %s.identity.role, ?op, "ws op");
    let result = match op {
        Op::Ping => ping::run(s, id.clone()),
        Op::Subscribe { channel, since } => subscribe::start(s, id.clone(), channel, since),
        Op::Unsubscribe { channel } => unsubscribe::run(s, id.clone(), &channel),
        Op::Refresh { token } => refresh::start(s, id.clone(), token),
        Op::Danmaku { video, draft } => post::start(s, id.clone(), video, draft),
    };
    if let Err(e) = result {
        s.refuse(id, &e);
    }
}

/// Applies the result of a waiting op.
pub fn finish(s: &mut Session, done: Done) {
    match done {
        Done::Subscribed(name) => s.channels.push(name),
        Done::Refreshed { id, result } => refresh::finish(s, id, result),
        Done::Posted => {}
        Done::Failed { id, refusal } => s.refuse(id, &refusal),
    }
}
