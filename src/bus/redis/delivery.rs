//! Delivery: the subscriber connection, its supervise/reconnect loop, and the per-channel
//! `delivered_upto` that makes a join's replay-then-live gapless.
//!
//! [`RedisBus::on_message`] is the one place that hands events to this node's hub. A
//! join and the loop take the same per-channel lock: the join replays up to
//! `delivered_upto` and subscribes under it, the loop delivers only what follows.

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex as AsyncMutex;

use super::{
    RedisBus, conn_config,
    script::{Header, Item, KEEP_S, decode_item, new_epoch, parse_envelope},
    unavailable,
};
use crate::{
    bus::{BusError, Join, Joined},
    hub::event::{Encoded, Target},
    model::time::now_millis,
    shutdown::Shutdown,
};

/// First and longest reconnect delay.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));

/// After a reconnect, how long the node listens before it publishes again: past the
/// longest reconnect delay of every other node, plus one connect.
const SETTLE_MS: u64 = 2_000;

/// Events of a channel kept on this node after delivery, for the part of a join's
/// replay the loop delivered while the join's window read was in flight: at most this
/// many, and none older than [`RECENT_AGE_MS`] (so a quiet room keeps few).
const RECENT_EVENTS: usize = 256;

/// The age past which a kept event is dropped (checked as new ones arrive).
const RECENT_AGE_MS: u64 = 10_000;

/// Most stored changes awaiting their echo at once (they wait milliseconds each).
const MAX_AWAITING: usize = 100_000;

/// Stored changes this node published, until its own subscriber got them back.
#[derive(Debug, Default)]
pub(super) struct Echoes {
    awaiting: std::collections::HashSet<String>,
    /// Found unconfirmed when the subscription broke; taken by the catch-up.
    unconfirmed: Vec<String>,
}

/// An event as a join replays it: `(seq, published at, target, frame)`.
type Replayable = (u64, u64, Target, Bytes);

/// One channel joined through the bus on this node.
#[derive(Debug, Default)]
pub(super) struct Tracked {
    /// The highest seq the delivery loop handed to the hub (or a join replayed up to).
    delivered_upto: Option<u64>,
    /// The last [`RECENT_EVENTS`] events the loop delivered, oldest first (their frames
    /// share the bytes the hub sent).
    recent: VecDeque<Replayable>,
}

impl RedisBus {
    /// Opens the command connection and a subscribed pub/sub connection.
    pub(super) async fn connect(
        &self,
    ) -> redis::RedisResult<(MultiplexedConnection, redis::aio::PubSub)> {
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

    /// Keeps one subscription alive: runs the delivery loop, and on loss marks the bus
    /// not ready and reconnects with backoff until shutdown.
    pub(super) async fn supervise(
        self: Arc<Self>,
        first: (MultiplexedConnection, redis::aio::PubSub),
        mut shutdown: Shutdown,
    ) {
        let mut next = Some(first);
        let mut backoff = BACKOFF.0;
        let mut reconnect = false;
        loop {
            if let Some((conn, pubsub)) = next.take() {
                backoff = BACKOFF.0;
                self.reset_positions().await;
                self.conn.store(Some(Arc::new(conn)));
                let settle = if reconnect { SETTLE_MS } else { 0 };
                self.settled_at
                    .store(now_millis() + settle, Ordering::SeqCst);
                reconnect = true;
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
                self.lost_echoes();
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
            t.recent.clear();
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
        if let Some(once) = &header.once {
            self.echoed(once);
        }
        let channel: Arc<str> = Arc::from(header.channel);
        let encoded = || Encoded {
            channel: channel.clone(),
            seq,
            target: Target::from(header.target.clone()),
            text: Bytes::copy_from_slice(frame.as_bytes()),
        };
        let tracked = {
            let _gate = self.gate.read().unwrap_or_else(|e| e.into_inner());
            match self.tracked.pin().get(&channel).cloned() {
                Some(t) => t,
                None => {
                    // Joined only directly in the hub (broadcast, user channels) or not here.
                    let delivery = self.hub.deliver(encoded());
                    if let Some(room) = delivery.flush {
                        self.hub.flush(room);
                    }
                    return;
                }
            }
        };
        let mut t = tracked.lock().await;
        if t.delivered_upto.is_some_and(|d| seq <= d) {
            return;
        }
        let ev = encoded();
        let now = now_millis();
        while t.recent.len() >= RECENT_EVENTS
            || t.recent.front().is_some_and(|e| e.1 + RECENT_AGE_MS < now)
        {
            t.recent.pop_front();
        }
        t.recent
            .push_back((seq, now, ev.target.clone(), ev.text.clone()));
        let delivery = self.hub.deliver(ev);
        t.delivered_upto = Some(seq);
        drop(t);
        // The room's pass runs outside the channel's lock.
        if let Some(room) = delivery.flush {
            self.hub.flush(room);
        }
    }

    /// Notes a stored change about to be published, until this node's subscriber gets
    /// it back. Bounded: past [`MAX_AWAITING`] every entry is given up (logged).
    pub(super) fn awaiting_echo(&self, once: &str) {
        let mut e = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
        if e.awaiting.len() >= MAX_AWAITING {
            tracing::warn!("too many publishes awaiting their echo; forgetting them");
            e.awaiting.clear();
        }
        e.awaiting.insert(once.to_string());
        self.awaiting.store(e.awaiting.len(), Ordering::SeqCst);
    }

    /// This node's subscriber got a stored change back (every node's did, or will), or
    /// its publish failed (the caller records it).
    pub(super) fn echoed(&self, once: &str) {
        if self.awaiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut e = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
        e.awaiting.remove(once);
        self.awaiting.store(e.awaiting.len(), Ordering::SeqCst);
    }

    /// The subscription broke: what was published but never came back may have reached
    /// no subscriber at all (Redis died with it in its output buffers).
    fn lost_echoes(&self) {
        let mut e = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
        let lost = std::mem::take(&mut e.awaiting);
        self.awaiting.store(0, Ordering::SeqCst);
        if !lost.is_empty() {
            tracing::warn!(
                count = lost.len(),
                "published changes never came back before the bus was lost; recorded for catch-up"
            );
        }
        e.unconfirmed.extend(lost);
    }

    /// Marks one published change as possibly reaching no subscriber.
    pub(super) fn unconfirmed(&self, once: &str) {
        let mut e = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
        e.awaiting.remove(once);
        self.awaiting.store(e.awaiting.len(), Ordering::SeqCst);
        e.unconfirmed.push(once.to_string());
    }

    /// Takes the changes [`lost_echoes`](Self::lost_echoes) found.
    pub(super) fn take_lost(&self) -> Vec<String> {
        let mut e = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut e.unconfirmed)
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

    /// Joins a socket: replays `(since, delivered_upto]`, then subscribes under the
    /// channel's lock, so the loop (which takes the same lock) delivers what follows.
    ///
    /// The window is read from Redis *before* taking the lock: a thousand sockets
    /// resubscribing at once (a node died) must not hold the node's delivery loop for a
    /// Redis round trip each. What the loop delivered meanwhile, past what the read
    /// saw, comes from the channel's [`Tracked::recent`] events (or, if they do not
    /// reach back so far, from a second, short read under the lock).
    pub(super) async fn join_channel(&self, join: Join<'_>) -> Result<Joined, BusError> {
        let tracked = self.track(join.channel);
        let after = join.since.as_ref().map(|s| s.seq);
        let (last, epoch, mut events) = self.fetch_window(join.channel, after).await?;
        let mut t = tracked.lock().await;
        let upto = *t.delivered_upto.get_or_insert(last);
        if let Some(since) = after {
            // The read saw every event up to the seq it reported (those the window still
            // held are in `events`); the loop may have delivered past it since.
            let seen = last.max(since);
            if upto > seen {
                let from_recent = t.recent.front().is_some_and(|e| e.0 <= seen + 1);
                if from_recent {
                    events.extend(
                        t.recent
                            .iter()
                            .filter(|e| e.0 > seen && e.0 <= upto)
                            .cloned(),
                    );
                } else {
                    // The loop ran far behind Redis while this join waited: the window
                    // may have moved past `seen` meanwhile (checked below).
                    let (_, _, more) = self.fetch_window(join.channel, Some(seen)).await?;
                    events.extend(more);
                }
            }
        }
        let mut joined = Joined {
            epoch,
            seq: upto,
            recovered: None,
            replayed: 0,
        };
        let mut replay = Vec::new();
        if let Some(since) = &join.since {
            let cutoff = now_millis().saturating_sub(self.cfg.window.max_age_ms);
            events.retain(|(seq, ..)| *seq <= upto);
            let reaches = since.seq >= upto
                || events
                    .first()
                    .is_some_and(|(seq, at, ..)| *seq == since.seq + 1 && *at >= cutoff);
            // Recovered only with every seq of `(since, upto]` in hand: the second read
            // (above) may find the window already past what the first one saw.
            let whole = events.iter().map(|e| e.0).eq(since.seq + 1..=upto);
            if reaches && since.seq <= upto && !whole {
                tracing::warn!(channel = %join.channel, since = since.seq, upto, last,
                    "the replay window moved on while the join waited; answering recovered: false");
            }
            let ok = since.epoch == joined.epoch && since.seq <= upto && reaches && whole;
            joined.recovered = Some(ok);
            if ok {
                replay = events
                    .into_iter()
                    .filter(|(_, _, target, _)| target.admits(join.role, join.conn, join.channel))
                    .map(|(.., frame)| frame)
                    .collect();
            }
        }
        // Live from here on: the loop takes this lock before delivering this channel.
        join.finish(&self.hub, &mut joined, &replay);
        drop(t);
        Ok(joined)
    }

    /// One read of a channel: its last seq, its epoch (created if new) and, with
    /// `after`, the window's events after that seq, in order.
    async fn fetch_window(
        &self,
        ch: &str,
        after: Option<u64>,
    ) -> Result<(u64, String, Vec<Replayable>), BusError> {
        let mut conn = self.connection()?;
        let start = after
            .map(|s| format!("{}-0", s.saturating_add(1)))
            .unwrap_or_default();
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
        Ok((
            last,
            epoch,
            items.into_iter().filter_map(decode_item).collect(),
        ))
    }
}
