//! The Redis bus: several nodes share one Redis for fan-out, `seq` and replay windows.
//!
//! - **Publish** runs one Lua script that, atomically, `INCR`s the channel's seq key,
//!   `XADD`s the frame to the channel's window stream (capped at `ws.replay_window_events`,
//!   expiring after `ws.replay_window_s` of silence) and `PUBLISH`es an envelope on one
//!   cluster-wide pub/sub channel. Numbering and publishing happen in one step, so the
//!   order of publication is the order of `seq`. The publishing node serializes the event
//!   once, as the text around the seq digits ([`FrameParts`](crate::hub::event::FrameParts));
//!   Redis splices the number in.
//! - **Delivery**: each node keeps one subscriber connection and one delivery loop that
//!   hands every envelope to its own hub ([`Hub::deliver`]), which filters by audience and
//!   shares the bytes among sockets. A channel without local subscribers costs a lookup.
//! - **Join with `since`**: the window lives in Redis (stream ids are the seqs). For each
//!   channel joined through the bus the node keeps `delivered_upto`, the highest seq its
//!   loop handed to the hub, and its last 64 delivered events, under a small per-channel
//!   lock that the loop also takes. A join reads the window from Redis first, without the
//!   lock (so a crowd resubscribing at once never holds up delivery for a Redis round
//!   trip each), then under the lock adds what the loop delivered meanwhile (from those
//!   64 events), replays `(since, delivered_upto]` and subscribes; the loop delivers what
//!   follows. A channel first joined here sets `delivered_upto` to
//!   the seq Redis reported, and the loop skips what it already replayed.
//! - **Epochs** are per channel in Redis (created when its sequence starts), so a client
//!   moving between nodes keeps its position.
//! - **Outage**: publishes and first joins fail with [`BusError::Unavailable`], `is_ready`
//!   turns false, sockets already joined keep their subscriptions, and a supervisor
//!   reconnects with backoff (100 ms doubling to 1 s), resuming delivery when Redis is back.
//!   After a reconnect (not at startup) the node listens at once but publishes only after
//!   2 s: every other node, retrying at most 1 s apart, listens again by then, so no
//!   event goes out to a Redis that some node is not yet subscribed to.
//!   A stored change's event ([`Bus::publish_stored`]) still reaches this node's own
//!   sockets meanwhile, without a seq; the danmaku service records it and publishes it
//!   again, numbered, once Redis is back (see `danmaku::catchup`).
//! - **Presence**: every heartbeat the node writes its per-channel counts to a hash that
//!   expires after three heartbeats; readers add up the hashes of the live nodes.
//! - **Schedules**: a run is claimed with `SET NX PX` on (schedule, planned time).
//!
//! Files, one concern each: `script.rs` (the publish script, the frame parts it splices
//! and the wire format of envelopes and window entries), `delivery.rs` (the subscriber
//! connection, its supervise/reconnect loop and the gapless replay-then-live logic),
//! `presence.rs` (per-node count hashes and the heartbeat) and `leases.rs` (schedule run
//! leases). This file holds [`RedisBus`], its settings and the [`Bus`] glue.

mod delivery;
mod leases;
mod presence;
mod script;

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use redis::{AsyncConnectionConfig, Client, Script, aio::MultiplexedConnection};
use tokio::sync::Mutex as AsyncMutex;

use self::delivery::{Echoes, Tracked};
use super::{Bus, BusError, Join, Joined, LocalOnly, Published, local::Window};
use crate::{
    config::redacted,
    hub::{Hub, event::Publish},
    shutdown::Shutdown,
};

/// How to reach Redis and name this node's keys.
#[derive(Clone)]
pub struct RedisSettings {
    /// A `redis://` URL.
    pub url: String,
    /// Prefix of every key and of the pub/sub channel.
    pub prefix: String,
    /// This node's name (presence hash).
    pub node: String,
    /// Bounds of each channel's window stream.
    pub window: Window,
    /// Interval of presence heartbeats; a node's counts expire after three.
    pub heartbeat: Duration,
}

/// By hand: the URL may carry a password, shown as `***`.
impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redacted(&self.url))
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .field("window", &self.window)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// The bus of a cluster node (see the module docs).
pub struct RedisBus {
    hub: Arc<Hub>,
    client: Client,
    /// The command connection, absent while Redis is unreachable.
    conn: ArcSwapOption<MultiplexedConnection>,
    ready: AtomicBool,
    /// Unix ms before which a reconnected bus does not publish yet (see `delivery.rs`).
    settled_at: std::sync::atomic::AtomicU64,
    cfg: RedisSettings,
    /// Channels joined through the bus, with their delivery position.
    tracked: papaya::HashMap<Arc<str>, Arc<AsyncMutex<Tracked>>>,
    /// Orders "untracked channel: deliver directly" against a first join tracking it.
    gate: RwLock<()>,
    /// Stored changes published and not yet seen back (see `delivery.rs`).
    echoes: std::sync::Mutex<Echoes>,
    /// How many entries `echoes` awaits: the delivery loop takes its lock only when
    /// this node has publishes in flight.
    awaiting: std::sync::atomic::AtomicUsize,
    /// The Lua scripts, each defined in the file that runs it; hashed once here.
    publish_script: Script,
    fetch_script: Script,
    claim_script: Script,
    presence_script: Script,
    told_script: Script,
}

/// By hand: the client, connections and scripts say nothing useful in logs.
impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("prefix", &self.cfg.prefix)
            .field("node", &self.cfg.node)
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish()
    }
}

/// Maps a Redis error to the bus error the API turns into 503 `bus_unavailable`.
fn unavailable(e: redis::RedisError) -> BusError {
    BusError::Unavailable(format!("redis: {e}"))
}

/// The connection settings used for commands: bounded waits, so an outage fails fast.
fn conn_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
}

impl RedisBus {
    /// Connects (failing if Redis is unreachable now), then starts the delivery
    /// supervisor and the presence heartbeat, which both stop when `shutdown` flips.
    pub async fn start(
        hub: Arc<Hub>,
        cfg: RedisSettings,
        shutdown: Shutdown,
    ) -> Result<Arc<RedisBus>, String> {
        let client = Client::open(cfg.url.as_str()).map_err(|e| format!("bad redis URL: {e}"))?;
        let bus = Arc::new(RedisBus {
            hub,
            client,
            conn: ArcSwapOption::empty(),
            ready: AtomicBool::new(false),
            settled_at: std::sync::atomic::AtomicU64::new(0),
            cfg,
            tracked: papaya::HashMap::new(),
            gate: RwLock::new(()),
            echoes: Default::default(),
            awaiting: Default::default(),
            publish_script: Script::new(script::PUBLISH_LUA),
            fetch_script: Script::new(script::FETCH_LUA),
            claim_script: Script::new(leases::CLAIM_LUA),
            presence_script: Script::new(presence::PRESENCE_LUA),
            told_script: Script::new(presence::TOLD_LUA),
        });
        let first = bus
            .connect()
            .await
            .map_err(|e| format!("cannot reach redis at {}: {e}", redacted(&bus.cfg.url)))?;
        tokio::spawn(bus.clone().supervise(first, shutdown.clone()));
        tokio::spawn(bus.clone().heartbeat(shutdown));
        Ok(bus)
    }

    /// A key under this cluster's prefix.
    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.cfg.prefix)
    }

    /// The one pub/sub channel every node listens to.
    fn events_channel(&self) -> String {
        format!("{}:events", self.cfg.prefix)
    }

    /// The command connection, or `Unavailable` while Redis is away (or back for less
    /// than the settling time).
    fn connection(&self) -> Result<MultiplexedConnection, BusError> {
        if self.ready.load(Ordering::SeqCst) && !self.is_ready() {
            return Err(BusError::Unavailable(
                "redis is back; waiting for every node to resubscribe".into(),
            ));
        }
        self.conn
            .load_full()
            .map(|c| (*c).clone())
            .ok_or_else(|| BusError::Unavailable("redis is unreachable; reconnecting".into()))
    }
}

/// The engine-neutral surface; each operation lives with its concern (see the files).
#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, msg: Publish) -> Result<Published, BusError> {
        self.publish_event(msg, None).await
    }

    async fn publish_stored(&self, msg: Publish, once: &str) -> Result<Published, LocalOnly> {
        self.publish_or_here(msg, once).await
    }

    async fn publish_once(&self, msg: Publish, once: &str) -> Result<Published, BusError> {
        self.publish_event(msg, Some(once)).await
    }

    fn take_unconfirmed(&self) -> Vec<String> {
        self.take_lost()
    }

    async fn join(&self, join: Join<'_>) -> Result<Joined, BusError> {
        self.join_channel(join).await
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
            && crate::model::time::now_millis() >= self.settled_at.load(Ordering::SeqCst)
    }

    async fn presence(&self, channel: &str) -> Result<[usize; 4], BusError> {
        self.presence_total(channel).await
    }

    async fn presence_told(&self, channel: &str, total: usize) -> Result<Option<bool>, BusError> {
        self.swap_told(channel, total).await
    }

    async fn room_state(&self, channel: &str, occupied: bool) -> Result<Option<bool>, BusError> {
        self.swap_room(channel, occupied).await
    }

    async fn claim_run(
        &self,
        id: &str,
        planned_ms: u64,
        local_run: u64,
    ) -> Result<Option<u64>, BusError> {
        self.claim_lease(id, planned_ms, local_run).await
    }
}
