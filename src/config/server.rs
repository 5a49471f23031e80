//! The `[server]` group (the process and its listener: address, data directory, logs,
//! handshake deadline, socket buffers, CORS, shutdown, trusted proxies) and the `[limits]`
//! group (caps that protect the node from one client or one address: connections, request
//! bodies). Also [`Cidr`], the type of a trusted proxy network.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    str::FromStr,
};

use ipnet::IpNet;
use serde::Deserialize;

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
        /// Networks of the reverse proxies in front of this node (CIDRs such as
        /// `10.0.0.0/8` or `fd00::/8`, or bare addresses), comma-separated. Only a peer
        /// inside one of them may name the client in `X-Forwarded-For`; from any other
        /// peer the header is ignored. Empty (the default): the TCP peer is the client.
        trusted_proxies: Vec<Cidr> = Vec::new()
            => (long = "trusted-proxies", env = "DANMAKU_TRUSTED_PROXIES", value_delimiter = ',');
    }
}

/// One network of `server.trusted_proxies`: a CIDR, or a bare address meaning just that
/// host (`/32` or `/128`). A newtype so the flag, the env var and the TOML file all parse
/// it with the same rules and the same error.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr(IpNet);

impl Cidr {
    /// Whether `ip` is inside this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
    /// what a dual-stack listener sees for an IPv4 peer) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Cidr(net));
        }
        match s.parse::<IpAddr>() {
            Ok(ip) => Ok(Cidr(IpNet::from(ip.to_canonical()))),
            Err(_) => Err(format!(
                "server.trusted_proxies: {s:?} is not a CIDR network or an IP address \
                 (write it like 10.0.0.0/8, fd00::/8 or 127.0.0.1)"
            )),
        }
    }
}

/// The file's string, parsed with the flag's rules.
impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// As written in the file: `10.0.0.0/8`.
impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The same as `Display`: a config's `Debug` stays readable.
impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
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
