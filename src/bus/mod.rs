//! The bus: how a published event reaches every node's hub, where `seq` comes from, and
//! where each channel's replay window lives.
//!
//! One implementation per engine, chosen in one place ([`crate::server::build`]). The
//! in-process [`local::LocalBus`] is the default; a Redis bus slots in behind the same
//! trait for clusters.

pub mod local;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    frame,
    hub::{Hub, conn::Conn, event::Publish},
    model::Role,
};

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The channel sequence number given to the event.
    pub seq: u64,
    /// Sockets the event was queued to (on this node).
    pub delivered: usize,
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
}

/// A stored event the bus could not carry: it reached this node's own sockets only,
/// without a `seq`, and must be published again once the bus is back.
#[derive(Debug)]
pub struct LocalOnly {
    pub error: BusError,
    /// Sockets of this node the event went to.
    pub delivered_here: usize,
}

/// A client's recovery position: the last `seq` it saw in a channel's `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    pub seq: u64,
    pub epoch: String,
}

/// Where a join left the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The channel's epoch: it changes when its sequence restarts.
    pub epoch: String,
    /// The last `seq` published on the channel when the socket joined.
    pub seq: u64,
    /// `Some(true)` when every missed event after `since` was replayed; `Some(false)`
    /// when the window no longer reaches it or the epoch changed; `None` without `since`.
    pub recovered: Option<bool>,
    /// Events replayed to the socket.
    pub replayed: usize,
}

/// A request to join a channel, with what to queue first.
pub struct Join<'a> {
    pub conn: &'a Arc<Conn>,
    pub channel: &'a Arc<str>,
    pub role: Role,
    pub since: Option<Since>,
    /// Builds the reply frame (complete, header included); it goes out before any
    /// replayed event.
    pub reply: &'a (dyn Fn(&Joined) -> Bytes + Send + Sync),
}

impl Join<'_> {
    /// The end of every engine's join, run while the engine still holds the channel's
    /// lock: subscribe the socket in the hub, then write the reply and the replayed
    /// events (batched, 64 to a frame). Nothing can slip between replay and live
    /// delivery, nor overtake the reply: while the lock is held no event reaches the
    /// channel's batch, and the socket skips the events pending in it (they are in the
    /// replay). Subscribing first means that a client that has read the reply is counted
    /// (presence) and reached by every later event. `replay` holds each event's JSON text.
    pub fn finish(&self, hub: &Hub, joined: &mut Joined, replay: &[Bytes]) {
        joined.replayed = replay.len();
        let mut frames = Vec::with_capacity(1 + replay.len().div_ceil(64));
        frames.push((self.reply)(joined));
        for chunk in replay.chunks(64) {
            frames.push(frame::text_array(chunk.iter().map(|t| &t[..])));
        }
        hub.subscribe(self.conn, self.channel, self.role);
        self.conn.send_all(&frames);
    }
}

/// Carries events to subscribers, assigning each channel a strictly increasing `seq`.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes one event; returns once it is queued to this node's sockets.
    async fn publish(&self, msg: Publish) -> Result<Published, BusError>;

    /// Publishes the event of a stored change (a comment, a deletion) named `once`
    /// (unique per change). While the bus is away it still reaches this node's sockets
    /// at once, without a `seq`
    /// ([`Encoded::unsequenced`](crate::hub::event::Encoded::unsequenced)), and the error
    /// says so: the caller records the change for catch-up, so viewers on other nodes get
    /// it once the bus returns.
    async fn publish_stored(&self, msg: Publish, once: &str) -> Result<Published, LocalOnly>;

    /// Publishes a recorded change again (catch-up): a no-op (`seq` 0) when the bus
    /// already carried `once`, as when the first publish timed out after reaching it.
    async fn publish_once(&self, msg: Publish, once: &str) -> Result<Published, BusError>;

    /// Stored changes (by `once` name) this node published that may have reached no
    /// subscriber: the bus broke before this node's own subscriber got them back. The
    /// caller records them for catch-up. Each is returned once.
    fn take_unconfirmed(&self) -> Vec<String> {
        Vec::new()
    }

    /// Joins a socket to a channel: queues the reply, replays what it missed since
    /// `since` (only events its role and user may see), then makes it live, with no gap
    /// and no duplicate between replay and live delivery.
    async fn join(&self, join: Join<'_>) -> Result<Joined, BusError>;

    /// A short name for logs and `/readyz`.
    fn name(&self) -> &'static str;

    /// Whether the bus can currently carry events.
    fn is_ready(&self) -> bool {
        true
    }

    /// Subscribers of a channel per role group, summed over every live node, so the
    /// presence endpoint and presence events do not depend on the engine.
    async fn presence(&self, channel: &str) -> Result<[usize; 4], BusError>;

    /// Records `total` as the presence last told on `channel` across the cluster and
    /// says whether it differs from the one told before (by any node), so that one node
    /// announces each change and none repeats another's. `None`: no shared record (one
    /// node), the caller compares with what it told itself.
    async fn presence_told(&self, _channel: &str, _total: usize) -> Result<Option<bool>, BusError> {
        Ok(None)
    }

    /// Records whether a video room has viewers on any node and says whether that
    /// changed the shared record (so that one node tells each change, for the
    /// `room.occupied`/`room.vacated` webhooks). `None`: no shared record (one node).
    async fn room_state(&self, _channel: &str, _occupied: bool) -> Result<Option<bool>, BusError> {
        Ok(None)
    }

    /// Claims the run of schedule `id` planned at `planned_ms`, so that one node of a
    /// cluster fires each tick. Returns the run number to publish, or `None` when another
    /// node has the run. `local_run` is this node's own count, used as is by one node.
    async fn claim_run(
        &self,
        id: &str,
        planned_ms: u64,
        local_run: u64,
    ) -> Result<Option<u64>, BusError>;
}
