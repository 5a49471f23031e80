//! Presence across nodes: per-node count hashes with a TTL, written by a heartbeat, and
//! the cluster-wide record of the last total told.
//!
//! Every heartbeat a node replaces its hash of per-channel counts and refreshes its score
//! in the nodes set; a node that stops beating drops out after three heartbeats. Readers
//! add this node's live counts to the hashes of the other live nodes.

use std::sync::Arc;

use super::{RedisBus, unavailable};
use crate::{bus::BusError, model::time::now_millis, shutdown::Shutdown};

/// Reads one channel's counts from every live node but `ARGV[4]`.
pub(super) const PRESENCE_LUA: &str = r#"
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
pub(super) const TOLD_LUA: &str = r#"
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if old == ARGV[1] then return 0 end
return 1
"#;

/// How long a told presence total is remembered (a room steady for longer is told again).
const TOLD_MS: u64 = 60_000;

impl RedisBus {
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

    /// Writes this node's counts every heartbeat; removes them at shutdown.
    pub(super) async fn heartbeat(self: Arc<Self>, mut shutdown: Shutdown) {
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

    /// This node's counts plus those the other live nodes last wrote.
    pub(super) async fn presence_total(&self, channel: &str) -> Result<[usize; 4], BusError> {
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

    /// Swaps the last told total in Redis; `Some(true)` when it changed.
    /// Sets a room's shared occupied flag (kept a day), returning whether it changed.
    pub(super) async fn swap_room(
        &self,
        channel: &str,
        occupied: bool,
    ) -> Result<Option<bool>, BusError> {
        let mut conn = self.connection()?;
        let new = if occupied { "1" } else { "0" };
        let old: Option<String> = redis::cmd("SET")
            .arg(self.key("room", channel))
            .arg(new)
            .arg("GET")
            .arg("PX")
            .arg(86_400_000u64)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        // No record reads as vacated: the first viewer ever occupies the room.
        Ok(Some(old.as_deref().unwrap_or("0") != new))
    }

    pub(super) async fn swap_told(
        &self,
        channel: &str,
        total: usize,
    ) -> Result<Option<bool>, BusError> {
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
}
