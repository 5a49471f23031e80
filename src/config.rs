//! Configuration: defaults, then an optional TOML file, then `DANMAKU_*` env vars and flags.
//!
//! Every knob lives in [`Config`]; the README's configuration table mirrors it. Flags and
//! env vars are parsed by clap (each flag has its env var), so precedence is
//! flag > env > file > default.

use std::{net::SocketAddr, path::PathBuf, str::FromStr};

use clap::Args;
use serde::Deserialize;

/// SQLite's `synchronous` level (the journal is always WAL). Both survive a killed
/// process: a commit is in the OS before anything is acknowledged. `Full` also survives
/// power loss or an OS crash (the WAL is fsynced at every commit); `Normal` fsyncs only
/// at checkpoints, so the last commits can be lost if the machine itself goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    Full,
    Normal,
}

impl FromStr for SqliteSync {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            other => Err(format!(
                "sqlite_synchronous must be full or normal, not {other}"
            )),
        }
    }
}

impl SqliteSync {
    /// The pragma value.
    pub fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// The JWT algorithms an operator may pin. The token's own `alg` header is never trusted:
/// a token whose header names any other algorithm is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlg {
    HS256,
    RS256,
    ES256,
    EdDSA,
}

impl FromStr for JwtAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Ok(Self::HS256),
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            "EDDSA" => Ok(Self::EdDSA),
            other => Err(format!(
                "unsupported JWT algorithm {other:?} (HS256, RS256, ES256 or EdDSA)"
            )),
        }
    }
}

/// The whole server configuration, with production-minded defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP/WebSocket server listens on.
    pub bind: SocketAddr,
    /// Directory for the SQLite database and the generated HS256 secret.
    pub data_dir: PathBuf,
    /// Enables `POST /api/demo/token`, which hands out tokens to anyone. Never in production.
    pub demo: bool,
    /// Lets connections without a token in as read-only guests.
    pub allow_guests: bool,
    /// The one JWT algorithm accepted.
    pub jwt_alg: JwtAlg,
    /// HS256 shared secret. When unset, one is generated once into `data_dir/jwt-secret`.
    pub jwt_secret: Option<String>,
    /// PEM public key for RS256/ES256/EdDSA verification.
    pub jwt_public_key: Option<PathBuf>,
    /// PEM private key, only needed to mint tokens (`danmaku token`, demo mode) with an
    /// asymmetric algorithm.
    pub jwt_private_key: Option<PathBuf>,
    /// Required `iss` claim, when set.
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub jwt_audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub jwt_leeway_s: u64,
    /// Keys accepted in `X-Api-Key` for server-to-server admin calls.
    pub api_keys: Vec<String>,
    /// Interval of server pings, also announced to clients in `welcome`.
    pub heartbeat_s: u64,
    /// A socket silent for this long is closed with 4002.
    pub idle_timeout_s: u64,
    /// Seconds a socket may live past its token's `exp` before it is closed with 4001.
    pub token_grace_s: u64,
    /// Maximum queued outgoing messages per socket before it is dropped as slow (4008).
    pub outbox_max_msgs: usize,
    /// Maximum queued outgoing bytes per socket before it is dropped as slow (4008).
    pub outbox_max_bytes: usize,
    /// Largest accepted incoming WebSocket message; bigger ones are closed with 1009.
    pub ws_max_message: usize,
    /// Invalid frames tolerated per minute before a socket is closed with 1008.
    pub ws_max_errors_per_min: u32,
    /// How often `video:*` subscribers may get a `presence` event (only when the viewer
    /// count changed), in milliseconds.
    pub presence_interval_ms: u64,
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` overrides it.
    pub log: String,
    /// Videos missing from the catalog behave as free videos (so any page can host
    /// comments). When false they answer 404 `unknown_video`.
    pub open_unknown_videos: bool,
    /// Words refused in comments (case-insensitive, after full/half-width folding).
    pub block_words: Vec<String>,
    /// Comments per second per room that reach guests and free users in a flood
    /// (members and admins always get every comment). 0 disables sampling.
    pub free_feed_rate: u32,
    /// Milliseconds a socket waits after its first queued event before writing, so that
    /// events arriving meanwhile share one frame and one syscall. 0 writes at once
    /// (lowest latency); a few ms multiply fan-out throughput. See BENCHMARKS.md.
    pub flush_tick_ms: u64,
    /// SQLite `synchronous` level: `full` (default; survives power loss) or `normal`
    /// (survives a killed process; faster). See BENCHMARKS.md for the cost.
    pub sqlite_synchronous: SqliteSync,
    /// Events kept per channel for recovery (`subscribe` with `since`).
    pub replay_window_events: usize,
    /// Seconds an event stays in its channel's replay window.
    pub replay_window_s: u64,
    /// Most open WebSocket connections on this node; more get 503 `too_many_connections`.
    /// 0 means unlimited.
    pub max_connections: usize,
    /// Most open WebSocket connections per user (`sub`); more get 429. Guests are not
    /// counted per user (they have no stable id). 0 means unlimited.
    pub max_connections_per_user: usize,
    /// Most open WebSocket connections per client IP address; more get 429. Behind a
    /// proxy every client shares its address, so it is off (0) by default.
    pub max_connections_per_ip: usize,
    /// Channels one socket may join explicitly (besides `broadcast` and its own `user:`).
    pub ws_max_channels: usize,
    /// Ops per second one socket may send (token bucket, bursts up to `ws_ops_burst`).
    /// Excess ops get a `rate_limited` error and count toward the 1008 limit. 0 disables.
    pub ws_ops_per_s: u32,
    /// Bucket size of the op rate limit (at least `ws_ops_per_s`).
    pub ws_ops_burst: u32,
    /// Milliseconds a new TCP connection has to send its first complete HTTP request
    /// head; slower ones are dropped.
    pub handshake_timeout_ms: u64,
    /// Kernel send buffer per accepted socket (`SO_SNDBUF`, bytes); 0 leaves Linux's
    /// autotuning, which lets a stalled peer absorb up to `tcp_wmem`'s maximum (4 MiB)
    /// before its outbox fills. A cap finds slow consumers sooner and bounds kernel memory.
    pub socket_send_buffer: usize,
    /// Largest REST request body in bytes; bigger ones get 413 `payload_too_large`.
    pub rest_max_body: usize,
    /// Largest bilibili XML import body in bytes.
    pub import_max_body: usize,
    /// Origins allowed to call the REST API from a browser (CORS). Empty: no CORS
    /// headers, so only same-origin pages can. `*` allows any origin.
    pub cors_origins: Vec<String>,
    /// Origins allowed to open a WebSocket (checked on the `Origin` header when a browser
    /// sends one; a mismatch gets 403 `origin_not_allowed`). Empty allows all.
    pub ws_allowed_origins: Vec<String>,
    /// Seconds the shutdown sequence waits for in-flight requests and sockets after
    /// SIGTERM before it stops serving anyway.
    pub shutdown_grace_s: u64,
    /// Posting privileges per role (TOML `[policy.free]`, `[policy.member]`, `[policy.admin]`).
    pub policy: crate::model::Policy,
    /// The bus engine: `local` (one node, in process) or a `redis://` URL (cluster).
    pub bus: String,
    /// The store engine: `sqlite` (embedded, in `data_dir`) or a `postgres://` URL.
    pub store: String,
    /// This node's name in the cluster (presence keys, logs). Random when empty.
    pub node_id: String,
    /// Prefix of every Redis key and pub/sub channel, so clusters can share a Redis.
    pub key_prefix: String,
    /// PostgreSQL schema holding the tables; created if missing.
    pub pg_schema: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("./data"),
            demo: false,
            allow_guests: true,
            jwt_alg: JwtAlg::HS256,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_private_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_s: 5,
            api_keys: Vec::new(),
            heartbeat_s: 25,
            idle_timeout_s: 60,
            token_grace_s: 10,
            outbox_max_msgs: 1024,
            outbox_max_bytes: 1 << 20,
            ws_max_message: 16 * 1024,
            ws_max_errors_per_min: 20,
            presence_interval_ms: 2000,
            log: "info".to_string(),
            open_unknown_videos: true,
            block_words: Vec::new(),
            free_feed_rate: 20,
            flush_tick_ms: 50,
            sqlite_synchronous: SqliteSync::Full,
            replay_window_events: 256,
            replay_window_s: 300,
            max_connections: 100_000,
            max_connections_per_user: 16,
            max_connections_per_ip: 0,
            ws_max_channels: 64,
            ws_ops_per_s: 50,
            ws_ops_burst: 100,
            handshake_timeout_ms: 10_000,
            socket_send_buffer: 0,
            rest_max_body: 64 * 1024,
            import_max_body: 16 * 1024 * 1024,
            cors_origins: Vec::new(),
            ws_allowed_origins: Vec::new(),
            shutdown_grace_s: 10,
            policy: crate::model::Policy::default(),
            bus: "local".to_string(),
            store: "sqlite".to_string(),
            node_id: String::new(),
            key_prefix: "danmaku".to_string(),
            pg_schema: "public".to_string(),
        }
    }
}

/// Command-line flags shared by every subcommand that needs configuration. Each flag has a
/// `DANMAKU_*` env var; unset ones leave the file or default value alone.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "DANMAKU_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "DANMAKU_BIND")]
    pub bind: Option<SocketAddr>,
    #[arg(long, env = "DANMAKU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Allow connections without a token (true/false).
    #[arg(long, env = "DANMAKU_ALLOW_GUESTS")]
    pub allow_guests: Option<bool>,
    #[arg(long, env = "DANMAKU_JWT_ALG")]
    pub jwt_alg: Option<JwtAlg>,
    #[arg(long, env = "DANMAKU_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    #[arg(long, env = "DANMAKU_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    #[arg(long, env = "DANMAKU_JWT_PRIVATE_KEY")]
    pub jwt_private_key: Option<PathBuf>,
    #[arg(long, env = "DANMAKU_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    #[arg(long, env = "DANMAKU_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    #[arg(long, env = "DANMAKU_JWT_LEEWAY_S")]
    pub jwt_leeway_s: Option<u64>,
    /// Comma-separated admin API keys for `X-Api-Key`.
    #[arg(
        long,
        env = "DANMAKU_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Option<Vec<String>>,
    #[arg(long, env = "DANMAKU_HEARTBEAT_S")]
    pub heartbeat_s: Option<u64>,
    #[arg(long, env = "DANMAKU_IDLE_TIMEOUT_S")]
    pub idle_timeout_s: Option<u64>,
    #[arg(long, env = "DANMAKU_TOKEN_GRACE_S")]
    pub token_grace_s: Option<u64>,
    #[arg(long, env = "DANMAKU_OUTBOX_MAX_MSGS")]
    pub outbox_max_msgs: Option<usize>,
    #[arg(long, env = "DANMAKU_OUTBOX_MAX_BYTES")]
    pub outbox_max_bytes: Option<usize>,
    #[arg(long, env = "DANMAKU_WS_MAX_MESSAGE")]
    pub ws_max_message: Option<usize>,
    #[arg(long, env = "DANMAKU_WS_MAX_ERRORS_PER_MIN")]
    pub ws_max_errors_per_min: Option<u32>,
    #[arg(long, env = "DANMAKU_PRESENCE_INTERVAL_MS")]
    pub presence_interval_ms: Option<u64>,
    #[arg(long, env = "DANMAKU_LOG")]
    pub log: Option<String>,
    #[arg(long, env = "DANMAKU_OPEN_UNKNOWN_VIDEOS")]
    pub open_unknown_videos: Option<bool>,
    /// Comma-separated blocked words.
    #[arg(long, env = "DANMAKU_BLOCK_WORDS", value_delimiter = ',')]
    pub block_words: Option<Vec<String>>,
    #[arg(long, env = "DANMAKU_FREE_FEED_RATE")]
    pub free_feed_rate: Option<u32>,
    #[arg(long, env = "DANMAKU_FLUSH_TICK_MS")]
    pub flush_tick_ms: Option<u64>,
    /// `full` or `normal`.
    #[arg(long, env = "DANMAKU_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<SqliteSync>,
    #[arg(long, env = "DANMAKU_REPLAY_WINDOW_EVENTS")]
    pub replay_window_events: Option<usize>,
    #[arg(long, env = "DANMAKU_REPLAY_WINDOW_S")]
    pub replay_window_s: Option<u64>,
    /// `local` or a `redis://` URL.
    #[arg(long, env = "DANMAKU_BUS")]
    pub bus: Option<String>,
    /// `sqlite` or a `postgres://` URL.
    #[arg(long, env = "DANMAKU_STORE")]
    pub store: Option<String>,
    #[arg(long, env = "DANMAKU_NODE_ID")]
    pub node_id: Option<String>,
    #[arg(long, env = "DANMAKU_KEY_PREFIX")]
    pub key_prefix: Option<String>,
    #[arg(long, env = "DANMAKU_PG_SCHEMA")]
    pub pg_schema: Option<String>,
    #[arg(long, env = "DANMAKU_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    #[arg(long, env = "DANMAKU_MAX_CONNECTIONS_PER_USER")]
    pub max_connections_per_user: Option<usize>,
    #[arg(long, env = "DANMAKU_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    #[arg(long, env = "DANMAKU_WS_MAX_CHANNELS")]
    pub ws_max_channels: Option<usize>,
    #[arg(long, env = "DANMAKU_WS_OPS_PER_S")]
    pub ws_ops_per_s: Option<u32>,
    #[arg(long, env = "DANMAKU_WS_OPS_BURST")]
    pub ws_ops_burst: Option<u32>,
    #[arg(long, env = "DANMAKU_HANDSHAKE_TIMEOUT_MS")]
    pub handshake_timeout_ms: Option<u64>,
    #[arg(long, env = "DANMAKU_SOCKET_SEND_BUFFER")]
    pub socket_send_buffer: Option<usize>,
    #[arg(long, env = "DANMAKU_REST_MAX_BODY")]
    pub rest_max_body: Option<usize>,
    #[arg(long, env = "DANMAKU_IMPORT_MAX_BODY")]
    pub import_max_body: Option<usize>,
    /// Comma-separated CORS origins (`*` for any).
    #[arg(long, env = "DANMAKU_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// Comma-separated origins allowed to open WebSockets (empty: all).
    #[arg(long, env = "DANMAKU_WS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub ws_allowed_origins: Option<Vec<String>>,
    #[arg(long, env = "DANMAKU_SHUTDOWN_GRACE_S")]
    pub shutdown_grace_s: Option<u64>,
}

/// Copies every `Some` field of the args onto the config.
macro_rules! overlay {
    ($cfg:ident, $args:ident, $($field:ident),* $(,)?) => {
        $( if let Some(v) = $args.$field { $cfg.$field = v; } )*
    };
}

impl ConfigArgs {
    /// Builds the effective config: defaults, then the TOML file, then flags/env.
    pub fn load(self) -> Result<Config, String> {
        let mut cfg = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str::<Config>(&text)
                    .map_err(|e| format!("invalid config file {}: {e}", path.display()))?
            }
            None => Config::default(),
        };
        let args = self;
        overlay!(
            cfg,
            args,
            bind,
            data_dir,
            allow_guests,
            jwt_alg,
            jwt_leeway_s,
            api_keys,
            heartbeat_s,
            idle_timeout_s,
            token_grace_s,
            outbox_max_msgs,
            outbox_max_bytes,
            ws_max_message,
            ws_max_errors_per_min,
            presence_interval_ms,
            log,
            open_unknown_videos,
            block_words,
            free_feed_rate,
            replay_window_events,
            replay_window_s,
            flush_tick_ms,
            sqlite_synchronous,
            bus,
            store,
            node_id,
            key_prefix,
            pg_schema,
            max_connections,
            max_connections_per_user,
            max_connections_per_ip,
            ws_max_channels,
            ws_ops_per_s,
            ws_ops_burst,
            handshake_timeout_ms,
            socket_send_buffer,
            rest_max_body,
            import_max_body,
            cors_origins,
            ws_allowed_origins,
            shutdown_grace_s,
        );
        for (slot, value) in [
            (&mut cfg.jwt_secret, args.jwt_secret),
            (&mut cfg.jwt_issuer, args.jwt_issuer),
            (&mut cfg.jwt_audience, args.jwt_audience),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        if args.jwt_public_key.is_some() {
            cfg.jwt_public_key = args.jwt_public_key;
        }
        if args.jwt_private_key.is_some() {
            cfg.jwt_private_key = args.jwt_private_key;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Config {
    /// Rejects combinations that would start a server that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.jwt_alg != JwtAlg::HS256 && self.jwt_public_key.is_none() {
            return Err(format!(
                "jwt_alg {:?} needs jwt_public_key (a PEM file)",
                self.jwt_alg
            ));
        }
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            return Err("jwt_secret must be at least 32 bytes".into());
        }
        if self.heartbeat_s == 0 || self.idle_timeout_s <= self.heartbeat_s {
            return Err("idle_timeout_s must be greater than heartbeat_s > 0".into());
        }
        if self.outbox_max_msgs == 0 || self.outbox_max_bytes == 0 {
            return Err("outbox limits must be positive".into());
        }
        if self.ws_max_message < 1024 {
            return Err("ws_max_message must be at least 1024 bytes".into());
        }
        if self.handshake_timeout_ms < 100 {
            return Err("handshake_timeout_ms must be at least 100".into());
        }
        if self.rest_max_body < 1024 || self.import_max_body < 1024 {
            return Err("rest_max_body and import_max_body must be at least 1024 bytes".into());
        }
        if self.ws_max_channels == 0 {
            return Err("ws_max_channels must be positive".into());
        }
        if self.presence_interval_ms < 10 {
            return Err("presence_interval_ms must be at least 10".into());
        }
        if self.bus != "local"
            && !self.bus.starts_with("redis://")
            && !self.bus.starts_with("rediss://")
        {
            return Err(format!(
                "bus must be `local` or a redis:// URL, not {:?}",
                self.bus
            ));
        }
        if self.store != "sqlite"
            && !self.store.starts_with("postgres://")
            && !self.store.starts_with("postgresql://")
        {
            return Err("store must be `sqlite` or a postgres:// URL".into());
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err("key_prefix must be non-empty, without spaces".into());
        }
        let schema_ok = !self.pg_schema.is_empty()
            && self.pg_schema.len() <= 63
            && self
                .pg_schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !self.pg_schema.starts_with(|c: char| c.is_ascii_digit());
        if !schema_ok {
            return Err("pg_schema must be a plain identifier (letters, digits, _)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A minimal command to parse the shared flags in isolation.
    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        config: ConfigArgs,
    }

    #[test]
    fn limit_flags_reach_the_config() {
        let cfg = Cmd::parse_from([
            "danmaku",
            "--max-connections=7",
            "--max-connections-per-user=3",
            "--max-connections-per-ip=5",
            "--ws-max-channels=9",
            "--ws-ops-per-s=11",
            "--ws-ops-burst=22",
            "--handshake-timeout-ms=1500",
            "--rest-max-body=4096",
            "--import-max-body=8192",
            "--cors-origins=https://a.example,https://b.example",
            "--ws-allowed-origins=https://a.example",
        ])
        .config
        .load()
        .expect("valid");
        assert_eq!(
            (
                cfg.max_connections,
                cfg.max_connections_per_user,
                cfg.max_connections_per_ip
            ),
            (7, 3, 5)
        );
        assert_eq!(
            (cfg.ws_max_channels, cfg.ws_ops_per_s, cfg.ws_ops_burst),
            (9, 11, 22)
        );
        assert_eq!(cfg.handshake_timeout_ms, 1500);
        assert_eq!((cfg.rest_max_body, cfg.import_max_body), (4096, 8192));
        assert_eq!(cfg.cors_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(cfg.ws_allowed_origins, ["https://a.example"]);
        let bad = Cmd::parse_from(["danmaku", "--handshake-timeout-ms=1"])
            .config
            .load();
        assert!(bad.is_err());
    }
}
