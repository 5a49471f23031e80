//! The Redis bus: several nodes share one Redis for fan-out, `seq` and replay windows.
//!
//! - **Publish** runs one Lua script that, atomically, `INCR`s the channel's seq key,
//!   `XADD`s the frame to the channel's window stream (capped at `replay_window_events`,
//!   expiring after `replay_window_s` of silence) and `PUBLISH`es an envelope on one
//!   cluster-wide pub/sub channel. Numbering and publishing happen in one step, so the
//!   order of publication is the order of `seq`. The publishing node serializes the event
//!   once, as the text around the seq digits ([`FrameParts`]); Redis splices the number in.
//! - **Delivery**: each node keeps one subscriber connection and one delivery loop that
//!   hands every envelope to its own hub ([`Hub::deliver`]), which filters by audience and
//!   shares the bytes among sockets. A channel without local subscribers costs a lookup.
//! - **Join with `since`**: the window lives in Redis (stream ids are the seqs). For each
//!   channel joined through the bus the node keeps `delivered_upto`, the highest seq its
//!   loop handed to the hub, under a small per-channel lock that the loop also takes. A
//!   join replays `(since, delivered_upto]` from the stream and subscribes under that lock;
//!   the loop delivers what follows. A channel first joined here sets `delivered_upto` to
//!   the seq Redis reported, and the loop skips what it already replayed.
//! - **Epochs** are per channel in Redis (created when its sequence starts), so a client
//!   moving between nodes keeps its position.
//! - **Outage**: publishes and first joins fail with [`BusError::Unavailable`], `is_ready`
//!   turns false, sockets already joined keep their subscriptions, and a supervisor
//!   reconnects with backoff (100 ms doubling to 1 s), resuming delivery when Redis is back.
//! - **Presence**: every heartbeat the node writes its per-channel counts to a hash that
//!   expires after three heartbeats; readers add up the hashes of the live nodes.
//! - **Schedules**: a run is claimed with `SET NX PX` on (schedule, planned time).

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::{AsyncConnectionConfig, Client, Script, aio::MultiplexedConnection};
use tokio::sync::Mutex as AsyncMutex;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{Bus, BusError, Join, Joined, Published, local::Window};
use crate::{
    auth::now_millis,
    hub::{
        Hub,
        event::{Encoded, FrameParts, Publish, Target, TargetWire},
    },
    shutdown::Shutdown,
};

/// Numbers, records and announces one event atomically (see the module docs).
const PUBLISH_LUA: &str = r#"
local s = redis.call('INCR', KEYS[1])
if s == 1 then redis.call('SET', KEYS[2], ARGV[1], 'NX') end
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
local frame = ARGV[2] .. s .. ARGV[3]
if tonumber(ARGV[5]) > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], s .. '-0', 'h', ARGV[4], 'a', ARGV[9], 'f', frame)
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
redis.call('PUBLISH', ARGV[7], s .. ' ' .. #ARGV[4] .. ' ' .. ARGV[4] .. frame)
return s
"#;

/// Reads a channel's last seq, epoch (creating it) and window events after a position.
const FETCH_LUA: &str = r#"
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local ep = redis.call('GET', KEYS[2])
if not ep then
  ep = ARGV[1]
  redis.call('SET', KEYS[2], ep, 'EX', ARGV[3])
end
local items = {}
if ARGV[2] ~= '' then items = redis.call('XRANGE', KEYS[3], ARGV[2], '+') end
return {s, ep, items}
"#;

/// Takes the lease of one schedule run; returns the cluster-wide run number, or 0.
const CLAIM_LUA: &str = r#"
if redis.call('SET', KEYS[1], ARGV[4], 'NX', 'PX', ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[2], 'NX')
  local n = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return n
end
return 0
"#;

/// Reads one channel's counts from every live node but `ARGV[4]`.
const PRESENCE_LUA: &str = r#"
local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local out = {}
for _, n in ipairs(nodes) do
  if n ~= ARGV[4] then
    local v = redis.call('HGET', ARGV[2] .. n, ARGV[3])
    if v then table.insert(out, v) end
  end
end
return out
"#;

/// Swaps a channel's last told presence total; returns 1 when it changed.
const TOLD_LUA: &str = r#"
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if old == ARGV[1] then return 0 end
return 1
"#;

/// How long a told presence total is remembered (a room steady for longer is told again).
const TOLD_MS: u64 = 60_000;

/// Seconds a channel's seq and epoch keys outlive its last publish.
const KEEP_S: u64 = 7 * 24 * 3600;

/// Seconds a schedule's run counter outlives its last run.
const RUNS_KEEP_S: u64 = 400 * 24 * 3600;

/// How long a run lease is held (longer than any clock skew between nodes).
const LEASE_MS: u64 = 10 * 60 * 1000;

/// First and longest reconnect delay.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));

/// How to reach Redis and name this node's keys.
#[derive(Debug, Clone)]
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

/// One channel joined through the bus on this node.
#[derive(Debug, Default)]
struct Tracked {
    /// The highest seq the delivery loop handed to the hub (or a join replayed up to).
    delivered_upto: Option<u64>,
}

/// A stream entry as XRANGE returns it: id, then flat field/value pairs.
type Item = (String, Vec<Vec<u8>>);

/// The bus of a cluster node (see the module docs).
pub struct RedisBus {
    hub: Arc<Hub>,
    client: Client,
    /// The command connection, absent while Redis is unreachable.
    conn: ArcSwapOption<MultiplexedConnection>,
    ready: AtomicBool,
    cfg: RedisSettings,
    /// Channels joined through the bus, with their delivery position.
    tracked: papaya::HashMap<Arc<str>, Arc<AsyncMutex<Tracked>>>,
    /// Orders "untracked channel: deliver directly" against a first join tracking it.
    gate: RwLock<()>,
    publish_script: Script,
    fetch_script: Script,
    claim_script: Script,
    presence_script: Script,
    told_script: Script,
}

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

/// A fresh random epoch, offered when a channel's sequence starts.
fn new_epoch() -> String {
    format!("{:012x}", rand::random::<u64>() >> 16)
}

/// Splits a pub/sub envelope `seq SP len SP header frame` into its parts.
fn parse_envelope(payload: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    let text = std::str::from_utf8(payload).ok()?;
    let (seq, rest) = text.split_once(' ')?;
    let (len, rest) = rest.split_once(' ')?;
    let len: usize = len.parse().ok()?;
    if rest.len() < len {
        return None;
    }
    let rest = rest.as_bytes();
    Some((seq.parse().ok()?, &rest[..len], &rest[len..]))
}

/// The header that travels with each event: its channel and audience.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    #[serde(rename = "c")]
    channel: String,
    #[serde(rename = "t")]
    target: TargetWire,
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
            cfg,
            tracked: papaya::HashMap::new(),
            gate: RwLock::new(()),
            publish_script: Script::new(PUBLISH_LUA),
            fetch_script: Script::new(FETCH_LUA),
            claim_script: Script::new(CLAIM_LUA),
            presence_script: Script::new(PRESENCE_LUA),
            told_script: Script::new(TOLD_LUA),
        });
        let first = bus
            .connect()
            .await
            .map_err(|e| format!("cannot reach redis at {}: {e}", bus.cfg.url))?;
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

    /// The sorted set of nodes by last heartbeat.
    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.cfg.prefix)
    }

    /// How long a node's presence counts stay valid without a heartbeat.
    fn presence_ttl_ms(&self) -> u64 {
        (self.cfg.heartbeat.as_millis() as u64)
            .saturating_mul(3)
            .max(300)
    }

    /// Opens the command connection and a subscribed pub/sub connection.
    async fn connect(&self) -> redis::RedisResult<(MultiplexedConnection, redis::aio::PubSub)> {
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&conn_config())
            .await?;
        let mut pubsub =
            tokio::time::timeout(Duration::from_secs(2), self.client.get_async_pubsub())
                .await
                .map_err(|_| {
                    redis::RedisError::from((redis::ErrorKind::Io, "pub/sub connect timed out"))
                })??;
        pubsub.subscribe(self.events_channel()).await?;
        Ok((conn, pubsub))
    }

    /// The command connection, or `Unavailable` while Redis is away.
    fn connection(&self) -> Result<MultiplexedConnection, BusError> {
        self.conn
            .load_full()
            .map(|c| (*c).clone())
            .ok_or_else(|| BusError::Unavailable("redis is unreachable; reconnecting".into()))
    }

    /// Keeps one subscription alive: runs the delivery loop, and on loss marks the bus
    /// not ready and reconnects with backoff until shutdown.
    async fn supervise(
        self: Arc<Self>,
        first: (MultiplexedConnection, redis::aio::PubSub),
        mut shutdown: Shutdown,
    ) {
        let mut next = Some(first);
        let mut backoff = BACKOFF.0;
        loop {
            if let Some((conn, pubsub)) = next.take() {
                backoff = BACKOFF.0;
                self.reset_positions().await;
                self.conn.store(Some(Arc::new(conn)));
                self.ready.store(true, Ordering::SeqCst);
                tracing::info!(node = %self.cfg.node, "redis bus connected");
                let mut stream = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        msg = stream.next() => match msg {
                            Some(msg) => self.on_message(msg.get_payload_bytes()).await,
                            None => break,
                        },
                        _ = shutdown.started() => return,
                    }
                }
                self.ready.store(false, Ordering::SeqCst);
                self.conn.store(None);
                tracing::error!(
                    node = %self.cfg.node,
                    "REDIS BUS LOST: local sockets keep their subscriptions, publishes fail \
                     with 503 bus_unavailable, /readyz is 503; reconnecting"
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.started() => return,
            }
            match self.connect().await {
                Ok(pair) => next = Some(pair),
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "redis bus still unreachable");
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        }
    }

    /// After a reconnect, positions from before cannot be trusted (Redis may have lost
    /// its data and restarted sequences): deliver whatever comes next.
    async fn reset_positions(&self) {
        let all: Vec<_> = self.tracked.pin().values().cloned().collect();
        for t in all {
            let mut t = t.lock().await;
            if t.delivered_upto.is_some() {
                t.delivered_upto = Some(0);
            }
        }
    }

    /// Hands one envelope to this node's hub, in order, once.
    async fn on_message(&self, payload: &[u8]) {
        let Some((seq, header, frame)) = parse_envelope(payload) else {
            tracing::warn!("redis bus: malformed envelope ignored");
            return;
        };
        let Ok(header) = serde_json::from_slice::<Header>(header) else {
            tracing::warn!("redis bus: malformed header ignored");
            return;
        };
        let Ok(frame) = std::str::from_utf8(frame) else {
            return;
        };
        let channel: Arc<str> = Arc::from(header.channel);
        let encoded = || Encoded {
            channel: channel.clone(),
            seq,
            target: Target::from(header.target.clone()),
            frame: Utf8Bytes::from(frame.to_string()),
        };
        let tracked = {
            let _gate = self.gate.read().unwrap_or_else(|e| e.into_inner());
            match self.tracked.pin().get(&channel).cloned() {
                Some(t) => t,
                None => {
                    // Joined only directly in the hub (broadcast, user channels) or not here.
                    self.hub.deliver(&encoded());
                    return;
                }
            }
        };
        let mut t = tracked.lock().await;
        if t.delivered_upto.is_some_and(|d| seq <= d) {
            return;
        }
        self.hub.deliver(&encoded());
        t.delivered_upto = Some(seq);
    }

    /// The tracking entry of a channel, created (under the gate) on first join.
    fn track(&self, channel: &Arc<str>) -> Arc<AsyncMutex<Tracked>> {
        if let Some(t) = self.tracked.pin().get(channel) {
            return t.clone();
        }
        let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
        self.tracked
            .pin()
            .get_or_insert_with(channel.clone(), Default::default)
            .clone()
    }

    /// Writes this node's counts every heartbeat; removes them at shutdown.
    async fn heartbeat(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.cfg.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let key = self.key("presence", &self.cfg.node);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => shutdown.is_started(),
                _ = shutdown.started() => true,
            };
            let Ok(mut conn) = self.connection() else {
                if stopping {
                    return;
                }
                continue;
            };
            if stopping {
                let _: redis::RedisResult<()> = redis::pipe()
                    .atomic()
                    .del(&key)
                    .zrem(self.nodes_key(), &self.cfg.node)
                    .query_async(&mut conn)
                    .await;
                return;
            }
            let now = now_millis();
            let ttl = self.presence_ttl_ms();
            let mut pipe = redis::pipe();
            pipe.atomic().del(&key);
            let counts: Vec<(String, String)> = self
                .hub
                .all_counts()
                .into_iter()
                .filter(|(_, c)| c.iter().any(|n| *n > 0))
                .map(|(name, c)| {
                    (
                        name.to_string(),
                        format!("{},{},{},{}", c[0], c[1], c[2], c[3]),
                    )
                })
                .collect();
            if !counts.is_empty() {
                pipe.hset_multiple(&key, &counts);
            }
            pipe.pexpire(&key, ttl as i64)
                .zadd(self.nodes_key(), &self.cfg.node, now)
                .zrembyscore(self.nodes_key(), 0, now.saturating_sub(ttl * 10))
                .pexpire(self.nodes_key(), (ttl * 10) as i64);
            let done: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            if let Err(e) = done {
                tracing::warn!(error = %e, "presence heartbeat not written");
            }
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, msg: Publish) -> Result<Published, BusError> {
        let mut conn = self.connection()?;
        let now = now_millis();
        let parts = FrameParts::encode(&msg, now);
        let header = serde_json::to_string(&Header {
            channel: msg.channel.to_string(),
            target: TargetWire::from(&msg.target),
        })
        .map_err(|e| BusError::Unavailable(e.to_string()))?;
        let ch = &msg.channel;
        let seq: u64 = self
            .publish_script
            .key(self.key("seq", ch))
            .key(self.key("ep", ch))
            .key(self.key("win", ch))
            .arg(new_epoch())
            .arg(parts.prefix)
            .arg(parts.suffix)
            .arg(header)
            .arg(self.cfg.window.events)
            .arg((self.cfg.window.max_age_ms / 1000).max(1))
            .arg(self.events_channel())
            .arg(KEEP_S)
            .arg(now)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        self.hub.metrics().published.fetch_add(1, Ordering::Relaxed);
        // Delivery is asynchronous (every node, this one included, gets it from Redis):
        // report the sockets of this node in the audience's role groups.
        let counts = self.hub.counts(ch);
        let delivered = (0..4)
            .filter(|i| msg.target.mask & (1 << i) != 0)
            .map(|i| counts[i])
            .sum();
        Ok(Published { seq, delivered })
    }

    async fn join(&self, join: Join<'_>) -> Result<Joined, BusError> {
        let tracked = self.track(join.channel);
        let mut t = tracked.lock().await;
        let mut conn = self.connection()?;
        let start = join
            .since
            .as_ref()
            .map(|s| format!("{}-0", s.seq.saturating_add(1)))
            .unwrap_or_default();
        let ch = join.channel;
        let (last, epoch, items): (u64, String, Vec<Item>) = self
            .fetch_script
            .key(self.key("seq", ch))
            .key(self.key("ep", ch))
            .key(self.key("win", ch))
            .arg(new_epoch())
            .arg(start)
            .arg(KEEP_S)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let upto = *t.delivered_upto.get_or_insert(last);
        let mut joined = Joined {
            epoch,
            seq: upto,
            recovered: None,
            replayed: 0,
        };
        let mut replay = Vec::new();
        if let Some(since) = &join.since {
            let cutoff = now_millis().saturating_sub(self.cfg.window.max_age_ms);
            let events: Vec<(u64, u64, Target, Utf8Bytes)> = items
                .into_iter()
                .filter_map(decode_item)
                .filter(|(seq, ..)| *seq <= upto)
                .collect();
            let reaches = since.seq >= upto
                || events
                    .first()
                    .is_some_and(|(seq, at, ..)| *seq == since.seq + 1 && *at >= cutoff);
            let ok = since.epoch == joined.epoch && since.seq <= upto && reaches;
            joined.recovered = Some(ok);
            if ok {
                let sub = join.conn.sub.clone();
                replay = events
                    .into_iter()
                    .filter(|(_, _, target, _)| target.admits(join.role, &sub))
                    .map(|(.., frame)| frame)
                    .collect();
            }
        }
        // Live from here on: the loop takes this lock before delivering this channel.
        join.finish(&self.hub, &mut joined, &replay);
        drop(t);
        Ok(joined)
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    async fn presence(&self, channel: &str) -> Result<[usize; 4], BusError> {
        let mut total = self.hub.counts(channel);
        let mut conn = self.connection()?;
        let min = now_millis().saturating_sub(self.presence_ttl_ms());
        let others: Vec<String> = self
            .presence_script
            .key(self.nodes_key())
            .arg(min)
            .arg(format!("{}:presence:", self.cfg.prefix))
            .arg(channel)
            .arg(&self.cfg.node)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        for v in others {
            for (slot, n) in total.iter_mut().zip(v.split(',')) {
                *slot += n.parse::<usize>().unwrap_or(0);
            }
        }
        Ok(total)
    }

    async fn presence_told(&self, channel: &str, total: usize) -> Result<Option<bool>, BusError> {
        let mut conn = self.connection()?;
        let changed: i64 = self
            .told_script
            .key(self.key("told", channel))
            .arg(total)
            .arg(TOLD_MS)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(Some(changed == 1))
    }

    async fn claim_run(
        &self,
        id: &str,
        planned_ms: u64,
        local_run: u64,
    ) -> Result<Option<u64>, BusError> {
        let mut conn = self.connection()?;
        let run: u64 = self
            .claim_script
            .key(self.key("lease", &format!("{id}:{planned_ms}")))
            .key(self.key("runs", id))
            .arg(LEASE_MS)
            .arg(local_run.saturating_sub(1))
            .arg(RUNS_KEEP_S)
            .arg(&self.cfg.node)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok((run > 0).then_some(run))
    }
}

/// Decodes a window entry into `(seq, published at, target, frame)`.
fn decode_item((id, fields): Item) -> Option<(u64, u64, Target, Utf8Bytes)> {
    let seq = id.split('-').next()?.parse().ok()?;
    let (mut header, mut at, mut frame) = (None, None, None);
    for pair in fields.chunks(2) {
        let [name, value] = pair else { continue };
        match name.as_slice() {
            b"h" => header = serde_json::from_slice::<Header>(value).ok(),
            b"a" => at = std::str::from_utf8(value).ok()?.parse::<u64>().ok(),
            b"f" => frame = String::from_utf8(value.clone()).ok(),
            _ => {}
        }
    }
    Some((
        seq,
        at?,
        Target::from(header?.target),
        Utf8Bytes::from(frame?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_split_into_seq_header_and_frame() {
        let header = r#"{"c":"a b","t":{"m":15}}"#;
        let env = format!("12 {} {header}{{\"x\":1}}", header.len());
        let (seq, h, f) = parse_envelope(env.as_bytes()).unwrap();
        assert_eq!((seq, h, f), (12, header.as_bytes(), &b"{\"x\":1}"[..]));
        assert!(parse_envelope(b"12 99 short").is_none());
        assert!(parse_envelope(b"x").is_none());
    }
}
