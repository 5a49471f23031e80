//! The `[server]` group (the process and its listener: address, data directory, logs,
//! handshake deadline, socket buffers, CORS, shutdown) and the `[limits]` group (caps that
//! protect the node from one client or one address: connections, request bodies).

use std::{net::SocketAddr, path::PathBuf};

group! {
    /// `[server]`: the process, its listener and its HTTP surface.
    ["server"] ServerConfig, ServerArgs, "Server [server]" {
        /// Address the HTTP/WebSocket server listens on.
        bind: SocketAddr = "127.0.0.1:8080".parse().expect("valid default address")
            => (long = "bind", env = "DANMAKU_BIND");
        /// Directory for the SQLite database and the generated HS256 secret.
        data_dir: PathBuf = PathBuf::from("./data")
            => (long = "data-dir", env = "DANMAKU_DATA_DIR");
        /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` overrides it.
        log: String = "info".into() => (long = "log", env = "DANMAKU_LOG");
        /// Milliseconds a new TCP connection has to send its first complete HTTP request
        /// head; slower ones are dropped.
        handshake_timeout_ms: u64 = 10_000
            => (long = "handshake-timeout-ms", env = "DANMAKU_HANDSHAKE_TIMEOUT_MS");
        /// Kernel send buffer per accepted socket (`SO_SNDBUF`, bytes); 0 leaves Linux's
        /// autotuning, which lets a stalled peer absorb up to `tcp_wmem`'s maximum (4 MiB)
        /// before its outbox fills. A cap finds slow consumers sooner and bounds kernel
        /// memory.
        socket_send_buffer: usize = 0
            => (long = "socket-send-buffer", env = "DANMAKU_SOCKET_SEND_BUFFER");
        /// Origins allowed to call the REST API from a browser (CORS), comma-separated.
        /// Empty: no CORS headers, so only same-origin pages can. `*` allows any origin.
        cors_origins: Vec<String> = Vec::new()
            => (long = "cors-origins", env = "DANMAKU_CORS_ORIGINS", value_delimiter = ',');
        /// Seconds the shutdown sequence waits for in-flight requests and sockets after
        /// SIGTERM before it stops serving anyway.
        shutdown_grace_s: u64 = 10
            => (long = "shutdown-grace-s", env = "DANMAKU_SHUTDOWN_GRACE_S");
    }
}

impl ServerConfig {
    /// A handshake deadline under 100 ms would drop honest clients on any real network.
    pub fn validate(&self) -> Result<(), String> {
        if self.handshake_timeout_ms < 100 {
            return Err("server.handshake_timeout_ms must be at least 100".into());
        }
        Ok(())
    }
}

group! {
    /// `[limits]`: connection caps (0 means unlimited) and request body caps.
    ["limits"] LimitsConfig, LimitsArgs, "Limits [limits]" {
        /// Most open WebSocket connections on this node; more get 503
        /// `too_many_connections`. 0 means unlimited.
        max_connections: usize = 100_000
            => (long = "max-connections", env = "DANMAKU_MAX_CONNECTIONS");
        /// Most open WebSocket connections per user (`sub`); more get 429. Guests are not
        /// counted per user (they have no stable id). 0 means unlimited.
        max_connections_per_user: usize = 16
            => (long = "max-connections-per-user", env = "DANMAKU_MAX_CONNECTIONS_PER_USER");
        /// Most open WebSocket connections per client IP address; more get 429. Behind a
        /// proxy every client shares its address, so it is off (0) by default.
        max_connections_per_ip: usize = 0
            => (long = "max-connections-per-ip", env = "DANMAKU_MAX_CONNECTIONS_PER_IP");
        /// Largest REST request body in bytes; bigger ones get 413 `payload_too_large`.
        rest_max_body: usize = 64 * 1024
            => (long = "rest-max-body", env = "DANMAKU_REST_MAX_BODY");
        /// Largest bilibili XML import body in bytes.
        import_max_body: usize = 16 * 1024 * 1024
            => (long = "import-max-body", env = "DANMAKU_IMPORT_MAX_BODY");
    }
}

impl LimitsConfig {
    /// Body caps under 1 KiB would refuse ordinary requests.
    pub fn validate(&self) -> Result<(), String> {
        if self.rest_max_body < 1024 || self.import_max_body < 1024 {
            return Err(
                "limits.rest_max_body and limits.import_max_body must be at least 1024 bytes"
                    .into(),
            );
        }
        Ok(())
    }
}
