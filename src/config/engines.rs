//! The `[store]` and `[bus]` groups, and the engine choice as data: [`StoreEngine`] and
//! [`BusEngine`] are parsed from the same strings as ever (`sqlite` or a `postgres://`
//! URL, `local` or a `redis://` URL), so `server` matches on a variant instead of
//! comparing strings. URLs may carry a password: their `Display` and `Debug` hide it,
//! and so does every error that repeats a URL.

use std::{ffi::OsStr, fmt, marker::PhantomData, str::FromStr};

use serde::Deserialize;

/// Where comments, catalogs and schedules are kept.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum StoreEngine {
    /// The embedded SQLite database in `server.data_dir` (one node).
    Sqlite,
    /// A PostgreSQL server, by its `postgres://` URL (shared by a cluster).
    Postgres(String),
}

impl FromStr for StoreEngine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sqlite" {
            Ok(Self::Sqlite)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Self::Postgres(s.to_string()))
        } else {
            Err(format!(
                "store must be `sqlite` or a postgres:// URL, not {:?}",
                redacted(s)
            ))
        }
    }
}

/// How events travel between the sockets of one node, or of a cluster.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum BusEngine {
    /// In process: one node.
    Local,
    /// Through Redis, by its `redis://` (or `rediss://`) URL: a cluster.
    Redis(String),
}

impl FromStr for BusEngine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "local" {
            Ok(Self::Local)
        } else if s.starts_with("redis://") || s.starts_with("rediss://") {
            Ok(Self::Redis(s.to_string()))
        } else {
            Err(format!(
                "bus must be `local` or a redis:// URL, not {:?}",
                redacted(s)
            ))
        }
    }
}

/// Implements, for an engine enum: serde's `try_from = "String"`, clap's value parser
/// (through [`EngineParser`], so a refused value is never echoed whole), and the
/// password-free `Display` (`sqlite`, or the URL) and `Debug`.
macro_rules! engine_traits {
    ($Engine:ident { $Plain:ident => $name:literal, $Url:ident }) => {
        /// Parses the file's string with the same rules as the flag.
        impl TryFrom<String> for $Engine {
            type Error = String;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        /// The configured string, password hidden.
        impl fmt::Display for $Engine {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::$Plain => f.write_str($name),
                    Self::$Url(url) => f.write_str(&redacted(url)),
                }
            }
        }

        /// By hand, so that no `{:?}` of a config prints a password.
        impl fmt::Debug for $Engine {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::$Plain => f.write_str(stringify!($Plain)),
                    Self::$Url(url) => f
                        .debug_tuple(stringify!($Url))
                        .field(&redacted(url))
                        .finish(),
                }
            }
        }

        /// The flag's parser: [`EngineParser`].
        impl clap::builder::ValueParserFactory for $Engine {
            type Parser = EngineParser<$Engine>;

            fn value_parser() -> Self::Parser {
                EngineParser(PhantomData)
            }
        }
    };
}

engine_traits!(StoreEngine { Sqlite => "sqlite", Postgres });
engine_traits!(BusEngine { Local => "local", Redis });

/// clap's parser for an engine flag: clap's own error would quote the refused value,
/// password and all; this one reports the engine's message, which redacts it.
#[derive(Clone)]
pub struct EngineParser<T>(PhantomData<T>);

impl<T> clap::builder::TypedValueParser for EngineParser<T>
where
    T: FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let flag = arg
            .and_then(|a| a.get_long())
            .map(|l| format!("--{l}: "))
            .unwrap_or_default();
        let refuse = |msg: String| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("{flag}{msg}\n"),
            )
        };
        value
            .to_str()
            .ok_or_else(|| refuse("not UTF-8".into()))?
            .parse()
            .map_err(refuse)
    }
}

/// A URL with its password (userinfo after `user:`, or a `password=` query parameter)
/// replaced by `***`, for logs and errors. The userinfo runs to the last `@`, so that a
/// password holding a stray `/`, `?` or `@` is hidden whole too, and so is one in a
/// mistyped URL (`redis:/:pw@host`); the host is kept, so the message still tells which
/// server was meant.
pub fn redacted(url: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let mut out = url[..scheme_end].to_string();
    let mut rest = &url[scheme_end..];
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        match userinfo.find(':') {
            Some(colon) => {
                out.push_str(&userinfo[..colon]);
                out.push_str(":***");
            }
            None => out.push_str(userinfo),
        }
        rest = &rest[at..];
    }
    match rest.split_once('?') {
        Some((head, query)) => {
            out.push_str(head);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(rest),
    }
    out
}

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
                "store.sqlite_synchronous must be full or normal, not {other}"
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

group! {
    /// `[store]`: which database keeps the data, and its engine's knobs.
    ["store"] StoreConfig, StoreArgs, "Store [store]" {
        /// The store engine: `sqlite` (embedded, in `server.data_dir`) or a `postgres://`
        /// URL.
        engine: StoreEngine = StoreEngine::Sqlite
            => (long = "store", env = "DANMAKU_STORE", hide_env_values = true);
        /// SQLite `synchronous` level: `full` (default; survives power loss) or `normal`
        /// (survives a killed process; faster). See BENCHMARKS.md for the cost.
        sqlite_synchronous: SqliteSync = SqliteSync::Full
            => (long = "sqlite-synchronous", env = "DANMAKU_SQLITE_SYNCHRONOUS");
        /// PostgreSQL schema holding the tables; created if missing.
        pg_schema: String = "public".into()
            => (long = "pg-schema", env = "DANMAKU_PG_SCHEMA");
    }
}

group! {
    /// `[bus]`: how events reach the sockets, on one node or across a cluster.
    ["bus"] BusConfig, BusArgs, "Bus [bus]" {
        /// The bus engine: `local` (one node, in process) or a `redis://` URL (cluster).
        engine: BusEngine = BusEngine::Local
            => (long = "bus", env = "DANMAKU_BUS", hide_env_values = true);
        /// This node's name in the cluster (presence keys, logs). Random when empty.
        node_id: String = String::new()
            => (long = "node-id", env = "DANMAKU_NODE_ID");
        /// Prefix of every Redis key and pub/sub channel, so clusters can share a Redis.
        key_prefix: String = "danmaku".into()
            => (long = "key-prefix", env = "DANMAKU_KEY_PREFIX");
    }
}

impl StoreConfig {
    /// The schema must be a plain identifier: it is spliced into SQL.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.pg_schema;
        let schema_ok = !s.is_empty()
            && s.len() <= 63
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit());
        if !schema_ok {
            return Err("store.pg_schema must be a plain identifier (letters, digits, _)".into());
        }
        Ok(())
    }
}

impl BusConfig {
    /// The prefix is spliced into Redis keys, so it may not be empty or hold spaces.
    pub fn validate(&self) -> Result<(), String> {
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err("bus.key_prefix must be non-empty, without spaces".into());
        }
        Ok(())
    }
}
