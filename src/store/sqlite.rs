//! SQLite store (embedded default).
//!
//! Durability settings: `journal_mode=WAL` with `synchronous=FULL`, so a transaction is on
//! disk (WAL fsynced) before the call returns, and only then is anything acknowledged.
//! The connection lives behind a mutex and is used from `spawn_blocking`, keeping the
//! async workers free while SQLite waits on the disk.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{ChannelDecl, Store, StoreError};
use crate::{access::Tier, auth::now_millis};

/// Schema migrations, applied in order; `user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE channels (
        name TEXT PRIMARY KEY NOT NULL,
        tier TEXT NOT NULL CHECK (tier IN ('free', 'member', 'admin')),
        updated_at INTEGER NOT NULL
    ) STRICT;",
    "CREATE TABLE schedules (
        id TEXT PRIMARY KEY NOT NULL,
        definition TEXT NOT NULL CHECK (json_valid(definition)),
        paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_run INTEGER,
        last_delivered INTEGER,
        runs INTEGER NOT NULL DEFAULT 0
    ) STRICT;",
];

/// The embedded store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/danmaku.db` and runs migrations.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join("danmaku.db");
        let mut conn = Connection::open(&path).map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(unavailable)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unavailable)?;
        migrate(&mut conn)?;
        tracing::info!(path = %path.display(), "sqlite store open (WAL, synchronous=FULL)");
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

/// Maps any SQLite error to `Unavailable`.
pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Applies pending migrations in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(unavailable)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this binary ({})",
            MIGRATIONS.len()
        )));
    }
    let tx = conn.transaction().map_err(unavailable)?;
    for sql in &MIGRATIONS[version..] {
        tx.execute_batch(sql).map_err(unavailable)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())
        .map_err(unavailable)?;
    tx.commit().map_err(unavailable)
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_channel(&self, name: &str, tier: Tier) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            let existed = tx
                .query_row("SELECT 1 FROM channels WHERE name = ?1", [&name], |_| Ok(()))
                .optional()
                .map_err(unavailable)?
                .is_some();
            tx.execute(
                "INSERT INTO channels (name, tier, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at",
                params![name, tier.as_str(), now_millis() as i64],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(!existed)
        })
        .await
    }

    async fn delete_channel(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM channels WHERE name = ?1", [&name])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }

    async fn list_channels(&self) -> Result<Vec<ChannelDecl>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare("SELECT name, tier, updated_at FROM channels ORDER BY name")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (name, tier, updated_at) = row.map_err(unavailable)?;
                let tier = Tier::parse(&tier)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad tier {tier:?} for {name}")))?;
                out.push(ChannelDecl {
                    name,
                    tier,
                    updated_at: updated_at as u64,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.with(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }

    fn name(&self) -> &'static str {
        "sqlite"
    }
}
