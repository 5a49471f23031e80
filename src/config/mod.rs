//! Configuration: defaults, then an optional TOML file, then `DANMAKU_*` env vars and flags
//! (clap reads both, so precedence is flag > env > file > default).
//!
//! Settings come in groups, one per subsystem, each a TOML section with its own flags:
//! `[server]`, `[auth]`, `[ws]`, `[limits]`, `[danmaku]`, `[moderation]`, `[store]`,
//! `[bus]`, each
//! declared once with the `group!` macro (`macros.rs`) in the file of that name (`engines`
//! for the last two), plus the `[policy.*]` tables. Flag and env names predate the
//! sections and did not change. This file owns the whole: [`Config`],
//! [`ConfigArgs::load`], the moved-key message for files written before sections, and
//! [`Config::validate`]. The README's configuration table
//! mirrors the declarations (a unit test checks it lists every key, flag and env var).

#[macro_use]
mod macros;
mod auth;
mod danmaku;
mod engines;
mod moderation;
mod server;
mod ws;

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

pub use self::{
    auth::{AuthArgs, AuthConfig, JwtAlg},
    danmaku::{DanmakuArgs, DanmakuConfig},
    engines::{
        BusArgs, BusConfig, BusEngine, EngineParser, SqliteSync, StoreArgs, StoreConfig,
        StoreEngine, redacted,
    },
    macros::{SECRET_KEYS, Setting, debug_field},
    moderation::{HookFailure, ModerationArgs, ModerationConfig, check_flood_rule},
    server::{Cidr, LimitsArgs, LimitsConfig, ServerArgs, ServerConfig},
    ws::{WsArgs, WsConfig},
};

/// The whole server configuration, one field per TOML section, with production-minded
/// defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`: the process and its listener.
    pub server: ServerConfig,
    /// `[auth]`: JWT, API keys, guests, demo tokens.
    pub auth: AuthConfig,
    /// `[ws]`: one socket's deadlines, budgets and delivery.
    pub ws: WsConfig,
    /// `[limits]`: connection and body caps.
    pub limits: LimitsConfig,
    /// `[danmaku]`: the comment service.
    pub danmaku: DanmakuConfig,
    /// `[moderation]`: the default flood rule.
    pub moderation: ModerationConfig,
    /// `[store]`: the database engine.
    pub store: StoreConfig,
    /// `[bus]`: the event bus engine.
    pub bus: BusConfig,
    /// Posting privileges per role (TOML `[policy.free]`, `[policy.member]`,
    /// `[policy.admin]`).
    pub policy: crate::model::Policy,
}

/// The top-level tables a file may hold (the sections above).
const SECTIONS: [&str; 9] = [
    ServerConfig::SECTION,
    AuthConfig::SECTION,
    WsConfig::SECTION,
    LimitsConfig::SECTION,
    DanmakuConfig::SECTION,
    ModerationConfig::SECTION,
    StoreConfig::SECTION,
    BusConfig::SECTION,
    "policy",
];

/// Every setting of every group, in README order.
pub fn settings() -> Vec<Setting> {
    [
        ServerArgs::settings(),
        AuthArgs::settings(),
        WsArgs::settings(),
        LimitsArgs::settings(),
        DanmakuArgs::settings(),
        ModerationArgs::settings(),
        StoreArgs::settings(),
        BusArgs::settings(),
    ]
    .concat()
}

/// Command-line flags shared by every subcommand that needs configuration. Each flag has a
/// `DANMAKU_*` env var; unset ones leave the file or default value alone.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "DANMAKU_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub ws: WsArgs,
    #[command(flatten)]
    pub limits: LimitsArgs,
    #[command(flatten)]
    pub danmaku: DanmakuArgs,
    #[command(flatten)]
    pub moderation: ModerationArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub bus: BusArgs,
}

impl ConfigArgs {
    /// Builds the effective config: defaults, then the TOML file, then flags/env.
    pub fn load(self) -> Result<Config, String> {
        let mut cfg = match &self.config {
            Some(path) => read_file(path)?,
            None => Config::default(),
        };
        self.server.overlay(&mut cfg.server);
        self.auth.overlay(&mut cfg.auth);
        self.ws.overlay(&mut cfg.ws);
        self.limits.overlay(&mut cfg.limits);
        self.danmaku.overlay(&mut cfg.danmaku);
        self.moderation.overlay(&mut cfg.moderation);
        self.store.overlay(&mut cfg.store);
        self.bus.overlay(&mut cfg.bus);
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Reads and parses the TOML file (not yet validated).
fn read_file(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    Config::from_toml(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
}

impl Config {
    /// Parses a configuration file's text. A file still using flat keys from before the
    /// sections gets one message naming where each of them moved.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str::<Config>(text).map_err(|e| moved_keys(text).unwrap_or_else(|| at(&e, text)))
    }

    /// Rejects combinations that would start a server that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        self.auth.validate()?;
        self.ws.validate()?;
        self.limits.validate()?;
        self.moderation.validate()?;
        if self.danmaku.fold_window_ms > 60_000 {
            return Err("danmaku.fold_window_ms is 0 (off) to 60000".into());
        }
        self.store.validate()?;
        self.bus.validate()
    }
}

/// A parse error as "line 3, column 10: message", without toml's quote of the line:
/// that line may hold a URL with its password (the message itself never does).
fn at(e: &toml::de::Error, text: &str) -> String {
    let Some(span) = e.span() else {
        return e.message().to_string();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}: {}", e.message().trim_end())
}

/// "`heartbeat_s` moved to [ws]" for every top-level key of `text` that is a setting's
/// old flat name (a section name holding a plain value, like `store = "sqlite"`, counts:
/// it is the old engine key); `None` when there is none, or the text is not TOML at all.
fn moved_keys(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    let all = settings();
    let moved: Vec<String> = table
        .iter()
        .filter(|(key, value)| !(SECTIONS.contains(&key.as_str()) && value.is_table()))
        .filter_map(|(key, _)| {
            let s = all.iter().find(|s| s.old_key() == key.as_str())?;
            Some(if s.key == key.as_str() {
                format!("`{key}` moved to [{}]", s.section)
            } else {
                format!("`{key}` moved to [{}] as `{}`", s.section, s.key)
            })
        })
        .collect();
    (!moved.is_empty()).then(|| {
        format!(
            "{} (settings are grouped in TOML sections; see the README's Configuration table)",
            moved.join("; ")
        )
    })
}

#[cfg(test)]
mod tests;
