//! The `[ws]` group: the life of one WebSocket session. Heartbeats and deadlines, the
//! outbox that decides when a reader is too slow, what a client may send (size, errors,
//! op rate, channels, origins), and how events reach it (batching, presence, replay).

group! {
    /// `[ws]`: one socket's deadlines, budgets and delivery.
    ["ws"] WsConfig, WsArgs, "WebSocket [ws]" {
        /// Interval of server pings, also announced to clients in `welcome`.
        heartbeat_s: u64 = 25 => (long = "heartbeat-s", env = "DANMAKU_HEARTBEAT_S");
        /// A socket silent for this long is closed with 4002.
        idle_timeout_s: u64 = 60
            => (long = "idle-timeout-s", env = "DANMAKU_IDLE_TIMEOUT_S");
        /// Seconds a socket may live past its token's `exp` before it is closed with 4001.
        token_grace_s: u64 = 10 => (long = "token-grace-s", env = "DANMAKU_TOKEN_GRACE_S");
        /// Maximum queued outgoing messages per socket before it is dropped as slow (4008).
        outbox_max_msgs: usize = 1024
            => (long = "outbox-max-msgs", env = "DANMAKU_OUTBOX_MAX_MSGS");
        /// Maximum queued outgoing bytes per socket before it is dropped as slow (4008).
        outbox_max_bytes: usize = 1 << 20
            => (long = "outbox-max-bytes", env = "DANMAKU_OUTBOX_MAX_BYTES");
        /// Largest accepted incoming WebSocket message; bigger ones are closed with 1009.
        max_message: usize = 16 * 1024
            => (long = "ws-max-message", env = "DANMAKU_WS_MAX_MESSAGE");
        /// Invalid frames tolerated per minute before a socket is closed with 1008.
        max_errors_per_min: u32 = 20
            => (long = "ws-max-errors-per-min", env = "DANMAKU_WS_MAX_ERRORS_PER_MIN");
        /// Channels one socket may join explicitly (besides `broadcast` and its own
        /// `user:`).
        max_channels: usize = 64
            => (long = "ws-max-channels", env = "DANMAKU_WS_MAX_CHANNELS");
        /// Ops per second one socket may send (token bucket, bursts up to `ops_burst`).
        /// Excess ops get a `rate_limited` error and count toward the 1008 limit.
        /// 0 disables.
        ops_per_s: u32 = 50 => (long = "ws-ops-per-s", env = "DANMAKU_WS_OPS_PER_S");
        /// Bucket size of the op rate limit (at least `ops_per_s`).
        ops_burst: u32 = 100 => (long = "ws-ops-burst", env = "DANMAKU_WS_OPS_BURST");
        /// Origins allowed to open a WebSocket (checked on the `Origin` header when a
        /// browser sends one; a mismatch gets 403 `origin_not_allowed`). Empty allows all.
        /// Comma-separated.
        allowed_origins: Vec<String> = Vec::new() => (
            long = "ws-allowed-origins",
            env = "DANMAKU_WS_ALLOWED_ORIGINS",
            value_delimiter = ','
        );
        /// The cap, in milliseconds, of a room's adaptive batch window: the first event in
        /// a quiet room leaves at once; a busy room waits twice its last pass, and while
        /// fan-out keeps the node's cores busy the node-wide floor raises every window
        /// toward this cap, so each send carries more events. 0 writes every event at
        /// once. See README "Fan-out" and BENCHMARKS.md for how 200 was chosen.
        flush_tick_ms: u64 = 200 => (long = "flush-tick-ms", env = "DANMAKU_FLUSH_TICK_MS");
        /// How often `video:*` subscribers may get a `presence` event (only when the
        /// viewer count changed), in milliseconds.
        presence_interval_ms: u64 = 2000
            => (long = "presence-interval-ms", env = "DANMAKU_PRESENCE_INTERVAL_MS");
        /// Events kept per channel for recovery (`subscribe` with `since`).
        replay_window_events: usize = 256
            => (long = "replay-window-events", env = "DANMAKU_REPLAY_WINDOW_EVENTS");
        /// Seconds an event stays in its channel's replay window.
        replay_window_s: u64 = 300
            => (long = "replay-window-s", env = "DANMAKU_REPLAY_WINDOW_S");
    }
}

impl WsConfig {
    /// Refuses budgets with which no socket could work (an idle timeout the heartbeat
    /// cannot beat, empty outboxes, messages too small for a comment).
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_s == 0 || self.idle_timeout_s <= self.heartbeat_s {
            return Err("ws.idle_timeout_s must be greater than ws.heartbeat_s > 0".into());
        }
        if self.outbox_max_msgs == 0 || self.outbox_max_bytes == 0 {
            return Err("ws.outbox_max_msgs and ws.outbox_max_bytes must be positive".into());
        }
        if self.max_message < 1024 {
            return Err("ws.max_message must be at least 1024 bytes".into());
        }
        if self.max_channels == 0 {
            return Err("ws.max_channels must be positive".into());
        }
        if self.presence_interval_ms < 10 {
            return Err("ws.presence_interval_ms must be at least 10".into());
        }
        Ok(())
    }
}
