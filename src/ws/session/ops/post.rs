//! `danmaku`: posts a comment, with the same rules as `POST /api/videos/{id}/danmaku`.
//!
//! A post waits on a durable commit, so it runs in its own task beside the session:
//! the poster's socket keeps reading (and other ops keep flowing) meanwhile. At most
//! [`POSTS_IN_FLIGHT`] per socket; beyond that the op waits for a slot, and the session
//! reads nothing more until it gets one.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Done;
use crate::ws::{protocol, session::Session};
use crate::{danmaku::rules::Draft, hub::conn::Conn, model::Refusal, state::State};

/// Comment posts of one socket that may wait on the store at once.
pub const POSTS_IN_FLIGHT: u8 = 32;

/// Starts the post now, or waits in the session for a slot.
pub fn start(
    s: &mut Session,
    id: Option<Value>,
    video: String,
    draft: Draft,
) -> Result<(), Refusal> {
    let (state, conn, who) = (s.state.clone(), s.conn.clone(), s.identity.clone());
    if conn.try_take_post(POSTS_IN_FLIGHT) {
        tokio::spawn(post(state, conn, who, id, video, draft));
        return Ok(());
    }
    s.op = Some(Box::pin(async move {
        // The post task that frees a slot wakes the session, which polls this again.
        std::future::poll_fn(|_| {
            if conn.try_take_post(POSTS_IN_FLIGHT) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        tokio::spawn(post(state, conn, who, id, video, draft));
        Done::Posted
    }));
    Ok(())
}

/// Gives the post slot back when the post ends, however it ends.
struct Slot(Arc<Conn>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.post_done();
    }
}

/// Validates and stores, acknowledges, then publishes (the sender's sockets excluded).
/// The acknowledgement leaves from the commit itself ([`crate::danmaku::Service::post_then`]):
/// on a busy node the post task may wait a while to run again, its poster need not.
async fn post(
    state: Arc<State>,
    conn: Arc<Conn>,
    who: Arc<crate::model::Identity>,
    id: Option<Value>,
    video: String,
    draft: Draft,
) {
    let _slot = Slot(conn.clone());
    let ack = {
        let (conn, id) = (conn.clone(), id.clone());
        Box::new(move |view: &crate::danmaku::View| {
            conn.send(&protocol::reply_ok(
                id,
                json!({"op": "danmaku", "danmaku": view}),
            ));
        }) as crate::danmaku::Ack
    };
    match state
        .danmaku
        .post_then(&state.directory, &who, &video, &draft, Some(ack))
        .await
    {
        Ok(accepted) => {
            tracing::info!(conn = conn.id, id = accepted.stored.id, %video, sub = %who.sub, "danmaku posted (ws)");
            state
                .danmaku
                .publish(state.bus.as_ref(), accepted.event)
                .await;
        }
        Err(r) => {
            conn.send(&protocol::reply_err(id, &r));
        }
    }
}
