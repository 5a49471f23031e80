//! `refresh`: replaces the socket's token. Same user, possibly another role: the socket
//! moves to its new role group in every room, and leaves the rooms its new role may not
//! join (each with an `unsubscribed` notice).

use std::sync::Arc;

use serde_json::{Value, json};

use super::Done;
use crate::model::{Identity, Refusal};
use crate::ws::{protocol, session::Session};

/// Checks the token in the session's op slot (verification may wait on the cache).
pub fn start(s: &mut Session, id: Option<Value>, token: String) -> Result<(), Refusal> {
    if s.identity.is_guest() {
        return Err(Refusal::bad_request(
            "sub_mismatch",
            "guest sockets cannot log in; reconnect with a token",
        ));
    }
    let state = s.state.clone();
    s.op = Some(Box::pin(async move {
        let result = match state.verifier.verify(&token).await {
            Ok(new) => Ok(new),
            Err(e) => {
                state.metrics.auth_failure(e);
                Err(Refusal::unauthorized(e.code(), e.to_string()))
            }
        };
        Done::Refreshed { id, result }
    }));
    Ok(())
}

/// Applies a verified token.
pub fn finish(s: &mut Session, id: Option<Value>, result: Result<Arc<Identity>, Refusal>) {
    let new = match result {
        Ok(new) => new,
        Err(e) => return s.refuse(id, &e),
    };
    if new.sub != s.identity.sub {
        return s.refuse(
            id,
            &Refusal::bad_request("sub_mismatch", "a refresh must keep the same sub"),
        );
    }
    let (from, to) = (s.identity.role, new.role);
    s.identity = new;
    s.conn.set_token_expiry(s.identity.exp.unwrap_or(0));
    s.conn.set_moderates(&s.identity.moderates);
    if from != to {
        s.conn.set_role(to);
        s.state.metrics.conn_role_changed(from, to);
        s.state.hub.change_broadcast_group(&s.conn, from, to);
        let mut kept = Vec::with_capacity(s.channels.len());
        for name in std::mem::take(&mut s.channels) {
            match s.state.directory.check(&s.identity, &name) {
                Err(denied) => {
                    s.state.hub.unsubscribe(s.conn.id, &name, from);
                    s.send(&protocol::unsubscribed(&name, denied.code, &denied.message));
                }
                Ok(_) => {
                    s.state.hub.change_group(&s.conn, &name, from, to);
                    kept.push(name);
                }
            }
        }
        s.channels = kept;
        tracing::info!(conn = s.conn.id, sub = %s.identity.sub, %from, %to, "ws role changed by refresh");
    }
    s.send(&protocol::reply_ok(
        id,
        json!({"op": "refresh", "user": protocol::UserInfo::of(&s.identity)}),
    ));
}
