//! PostgreSQL store (clusters): the same trait and semantics as [`super::sqlite`].
//!
//! Tables live in the configured schema (created if missing), through `search_path` on
//! every pooled connection. Migrations are versioned in `schema_migrations` and applied
//! at startup under an advisory lock, so nodes starting together apply each once.
//!
//! Writes go through one writer task doing **group commit**, like the SQLite engine: it
//! takes every write queued while the previous commit ran, applies each in its own
//! savepoint inside one transaction, commits once, and only then answers each caller. A
//! failed commit answers every write of the batch with `Unavailable` (503
//! `store_unavailable`): nothing is acknowledged that is not committed. One writer also
//! keeps comment ids (`BIGSERIAL`) increasing in commit order.
//!
//! Files, one concern each: `migrations.rs` (versioned schema), `writer.rs` (the writer
//! task and every write's SQL), `danmaku.rs` (comment and catalog reads),
//! `engagement.rs` (likes and density), `moderation.rs` (moderators, mutes, the audit
//! log), `room_rules.rs` (slow modes, flood rules, offence counts) and `schedules.rs`
//! (schedule reads). This file holds the [`PgStore`] handle and
//! the [`Store`] glue.

mod danmaku;
mod engagement;
mod migrations;
mod moderation;
mod review;
mod room_rules;
mod schedules;
mod webhooks;
mod writer;

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    Connection, PgConnection, Row,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};
use tokio::sync::{mpsc, oneshot};

use self::writer::{Done, Job, Write};
use super::{ChannelDecl, Store, StoreError};
use crate::model::Tier;

/// The PostgreSQL engine.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    writer: mpsc::Sender<Job>,
}

/// Maps any database error to `Unavailable` (503 `store_unavailable`).
fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("postgres: {e}"))
}

/// The committed result of a write did not have the expected shape (a bug, not input).
fn shape() -> StoreError {
    StoreError::Corrupt("unexpected write result".into())
}

impl PgStore {
    /// Connects, creates the schema if missing, runs migrations and starts the writer.
    pub async fn open(url: &str, schema: &str) -> Result<Self, StoreError> {
        // `schema` was validated as a plain identifier by the config.
        let opts = PgConnectOptions::from_str(url)
            .map_err(unavailable)?
            .options([("search_path", schema)]);
        let mut setup = PgConnection::connect_with(&opts)
            .await
            .map_err(unavailable)?;
        migrations::migrate(&mut setup, schema).await?;
        let _ = setup.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts)
            .await
            .map_err(unavailable)?;
        let (writer, rx) = mpsc::channel::<Job>(8192);
        tokio::spawn(writer::writer_loop(pool.clone(), rx));
        tracing::info!(schema, "postgres store open (group commit)");
        Ok(PgStore { pool, writer })
    }

    /// Queues a write and returns its result once its transaction committed.
    async fn write(&self, w: Write) -> Result<Done, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((w, tx))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer dropped the write".into()))?
    }

    /// A write whose result is a flag.
    async fn write_flag(&self, w: Write) -> Result<bool, StoreError> {
        match self.write(w).await? {
            Done::Flag(b) => Ok(b),
            _ => Err(shape()),
        }
    }
}

/// Channel declarations: reads straight from the pool, writes through the writer.
#[async_trait]
impl Store for PgStore {
    async fn put_channel(&self, name: &str, tier: Tier) -> Result<bool, StoreError> {
        self.write_flag(Write::PutChannel(name.to_string(), tier))
            .await
    }

    async fn delete_channel(&self, name: &str) -> Result<bool, StoreError> {
        self.write_flag(Write::DeleteChannel(name.to_string()))
            .await
    }

    async fn list_channels(&self) -> Result<Vec<ChannelDecl>, StoreError> {
        let rows = sqlx::query("SELECT name, tier, updated_at FROM channels ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get(0).map_err(unavailable)?;
                let tier: String = r.try_get(1).map_err(unavailable)?;
                let updated_at: i64 = r.try_get(2).map_err(unavailable)?;
                let tier = Tier::parse(&tier)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad tier {tier:?} for {name}")))?;
                Ok(ChannelDecl {
                    name,
                    tier,
                    updated_at: updated_at as u64,
                })
            })
            .collect()
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Everything queued before the barrier is committed once it returns.
        self.write(Write::Barrier).await.map(|_| ())
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}
