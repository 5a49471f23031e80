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

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    AssertSqlSafe, Connection, PgConnection, Row,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow},
};
use tokio::sync::{mpsc, oneshot};

use super::{
    ChannelDecl, ScheduleRecord, ScheduleStore, Store, StoreError,
    danmaku::{DanmakuStore, HistoryQuery, NewDanmaku, StoredDanmaku, Video},
};
use crate::{
    auth::now_millis,
    model::{Audience, Mode, Size, Tier},
};

/// Schema migrations, applied in order; `schema_migrations` records which ran.
const MIGRATIONS: &[&str] = &["CREATE TABLE channels (
        name TEXT PRIMARY KEY,
        tier TEXT NOT NULL CHECK (tier IN ('free', 'member', 'admin')),
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE videos (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        tier TEXT NOT NULL CHECK (tier IN ('free', 'member', 'admin')),
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE danmaku (
        id BIGSERIAL PRIMARY KEY,
        video TEXT NOT NULL,
        time_ms BIGINT NOT NULL,
        text TEXT NOT NULL,
        mode TEXT NOT NULL,
        color BIGINT NOT NULL,
        size TEXT NOT NULL,
        audience TEXT NOT NULL,
        sub TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        deleted_at BIGINT
    );
    CREATE INDEX danmaku_video_time ON danmaku (video, time_ms);
    CREATE TABLE mutes (
        sub TEXT PRIMARY KEY,
        until_ms BIGINT NOT NULL
    );
    CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        last_run BIGINT,
        last_delivered BIGINT,
        runs BIGINT NOT NULL DEFAULT 0
    );"];

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

/// One queued write, as data (so the writer task owns it outright).
#[derive(Debug)]
enum Write {
    PutChannel(String, Tier),
    DeleteChannel(String),
    InsertDanmaku(NewDanmaku),
    InsertMany(Vec<NewDanmaku>),
    Tombstone(i64, u64),
    PutVideo(Video),
    PutMute(String, u64),
    PutSchedule(ScheduleRecord),
    DeleteSchedule(String),
    SetPaused(String, bool),
    RecordRun(String, u64, u64, u64),
    /// Waits for everything queued before it (flush).
    Barrier,
}

/// What a write returns once committed.
#[derive(Debug)]
enum Done {
    Flag(bool),
    Id(i64),
    Count(usize),
    Unit,
}

/// A queued write with the channel its committed result goes back on.
type Job = (Write, oneshot::Sender<Result<Done, StoreError>>);

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
        migrate(&mut setup, schema).await?;
        let _ = setup.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts)
            .await
            .map_err(unavailable)?;
        let (writer, rx) = mpsc::channel::<Job>(8192);
        tokio::spawn(writer_loop(pool.clone(), rx));
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

/// Applies pending migrations in one transaction, serialized across nodes.
async fn migrate(conn: &mut PgConnection, schema: &str) -> Result<(), StoreError> {
    let mut tx = conn.begin().await.map_err(unavailable)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("danmaku-migrate-{schema}"))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    // The schema name is a validated plain identifier.
    sqlx::query(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
    )))
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY)")
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
    let done = done as usize;
    if done > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {done} is newer than this binary ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(i as i32 + 1)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)
}

/// The writer task: batches queued writes into one transaction each.
async fn writer_loop(pool: PgPool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<Write>, Vec<_>) = jobs.into_iter().unzip();
        match run_batch(&pool, &writes).await {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = replies.len(), "store: commit failed");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(format!("commit failed: {e}"))));
                }
            }
        }
    }
}

/// Runs one batch in one transaction, each write in a savepoint so one failure does not
/// poison the rest. Errs (nothing acknowledged) when the transaction cannot commit.
async fn run_batch(
    pool: &PgPool,
    writes: &[Write],
) -> Result<Vec<Result<Done, StoreError>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut out = Vec::with_capacity(writes.len());
    for w in writes {
        sqlx::query("SAVEPOINT job").execute(&mut *tx).await?;
        match apply(&mut tx, w).await {
            Ok(done) => {
                sqlx::query("RELEASE SAVEPOINT job")
                    .execute(&mut *tx)
                    .await?;
                out.push(Ok(done));
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
                    .execute(&mut *tx)
                    .await?;
                out.push(Err(unavailable(e)));
            }
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Inserts one comment and returns its id.
async fn insert_row(c: &mut PgConnection, d: &NewDanmaku) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO danmaku (video, time_ms, text, mode, color, size, audience, sub, name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&d.video)
    .bind(d.time_ms as i64)
    .bind(&d.text)
    .bind(d.mode.as_str())
    .bind(d.color as i64)
    .bind(d.size.as_str())
    .bind(d.audience.as_str())
    .bind(&d.sub)
    .bind(&d.name)
    .bind(d.created_at as i64)
    .fetch_one(c)
    .await
}

/// Applies one write inside the batch transaction.
async fn apply(c: &mut PgConnection, w: &Write) -> Result<Done, sqlx::Error> {
    let now = now_millis() as i64;
    Ok(match w {
        Write::PutChannel(name, tier) => {
            let inserted: bool = sqlx::query_scalar(
                "INSERT INTO channels (name, tier, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at
                 RETURNING (xmax = 0)",
            )
            .bind(name)
            .bind(tier.as_str())
            .bind(now)
            .fetch_one(c)
            .await?;
            Done::Flag(inserted)
        }
        Write::DeleteChannel(name) => Done::Flag(
            sqlx::query("DELETE FROM channels WHERE name = $1")
                .bind(name)
                .execute(c)
                .await?
                .rows_affected()
                > 0,
        ),
        Write::InsertDanmaku(d) => Done::Id(insert_row(c, d).await?),
        Write::InsertMany(ds) => {
            for d in ds {
                insert_row(&mut *c, d).await?;
            }
            Done::Count(ds.len())
        }
        Write::Tombstone(id, at) => Done::Flag(
            sqlx::query("UPDATE danmaku SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                .bind(id)
                .bind(*at as i64)
                .execute(c)
                .await?
                .rows_affected()
                > 0,
        ),
        Write::PutVideo(v) => {
            let inserted: bool = sqlx::query_scalar(
                "INSERT INTO videos (id, title, tier, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, tier = excluded.tier,
                   updated_at = excluded.updated_at
                 RETURNING (xmax = 0)",
            )
            .bind(&v.id)
            .bind(&v.title)
            .bind(v.tier.as_str())
            .bind(v.updated_at as i64)
            .fetch_one(c)
            .await?;
            Done::Flag(inserted)
        }
        Write::PutMute(sub, until) => {
            sqlx::query(
                "INSERT INTO mutes (sub, until_ms) VALUES ($1, $2)
                 ON CONFLICT (sub) DO UPDATE SET until_ms = excluded.until_ms",
            )
            .bind(sub)
            .bind(*until as i64)
            .execute(c)
            .await?;
            Done::Unit
        }
        Write::PutSchedule(rec) => {
            sqlx::query(
                "INSERT INTO schedules
                   (id, definition, paused, created_at, updated_at, last_run, last_delivered, runs)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&rec.id)
            .bind(&rec.definition)
            .bind(rec.paused)
            .bind(rec.created_at as i64)
            .bind(now)
            .bind(rec.last_run.map(|v| v as i64))
            .bind(rec.last_delivered.map(|v| v as i64))
            .bind(rec.runs as i64)
            .execute(c)
            .await?;
            Done::Unit
        }
        Write::DeleteSchedule(id) => Done::Flag(
            sqlx::query("DELETE FROM schedules WHERE id = $1")
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
                > 0,
        ),
        Write::SetPaused(id, paused) => Done::Flag(
            sqlx::query("UPDATE schedules SET paused = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(paused)
                .bind(now)
                .execute(c)
                .await?
                .rows_affected()
                > 0,
        ),
        Write::RecordRun(id, at, runs, delivered) => Done::Flag(
            sqlx::query(
                "UPDATE schedules SET last_run = $2, runs = $3, last_delivered = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(*at as i64)
            .bind(*runs as i64)
            .bind(*delivered as i64)
            .execute(c)
            .await?
            .rows_affected()
                > 0,
        ),
        Write::Barrier => Done::Unit,
    })
}

/// The comment columns read back, in [`danmaku_row`] order.
const COLUMNS: &str =
    "id, video, time_ms, text, mode, color, size, audience, sub, name, created_at, deleted_at";

/// Decodes a row selected with [`COLUMNS`].
fn danmaku_row(r: &PgRow) -> Result<StoredDanmaku, StoreError> {
    let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let mode: String = r.try_get(4).map_err(corrupt)?;
    let size: String = r.try_get(6).map_err(corrupt)?;
    let audience: String = r.try_get(7).map_err(corrupt)?;
    Ok(StoredDanmaku {
        id: r.try_get(0).map_err(corrupt)?,
        d: NewDanmaku {
            video: r.try_get(1).map_err(corrupt)?,
            time_ms: r.try_get::<i64, _>(2).map_err(corrupt)? as u64,
            text: r.try_get(3).map_err(corrupt)?,
            mode: Mode::parse(&mode)
                .ok_or_else(|| StoreError::Corrupt(format!("bad mode {mode:?}")))?,
            color: r.try_get::<i64, _>(5).map_err(corrupt)? as u32,
            size: Size::parse(&size)
                .ok_or_else(|| StoreError::Corrupt(format!("bad size {size:?}")))?,
            audience: match audience.as_str() {
                "members" => Audience::Members,
                "free" => Audience::Free,
                _ => Audience::Everyone,
            },
            sub: r.try_get(8).map_err(corrupt)?,
            name: r.try_get(9).map_err(corrupt)?,
            created_at: r.try_get::<i64, _>(10).map_err(corrupt)? as u64,
        },
        deleted_at: r
            .try_get::<Option<i64>, _>(11)
            .map_err(corrupt)?
            .map(|v| v as u64),
    })
}

/// Decodes a schedule row.
fn schedule_row(r: &PgRow) -> Result<ScheduleRecord, StoreError> {
    let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    Ok(ScheduleRecord {
        id: r.try_get(0).map_err(corrupt)?,
        definition: r.try_get(1).map_err(corrupt)?,
        paused: r.try_get(2).map_err(corrupt)?,
        created_at: r.try_get::<i64, _>(3).map_err(corrupt)? as u64,
        last_run: r
            .try_get::<Option<i64>, _>(4)
            .map_err(corrupt)?
            .map(|v| v as u64),
        last_delivered: r
            .try_get::<Option<i64>, _>(5)
            .map_err(corrupt)?
            .map(|v| v as u64),
        runs: r.try_get::<i64, _>(6).map_err(corrupt)? as u64,
    })
}

/// The schedule columns read back, in [`schedule_row`] order.
const SCHEDULE_COLUMNS: &str = "id, definition, paused, created_at, last_run, last_delivered, runs";

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

#[async_trait]
impl DanmakuStore for PgStore {
    async fn insert_danmaku(&self, d: NewDanmaku) -> Result<StoredDanmaku, StoreError> {
        match self.write(Write::InsertDanmaku(d.clone())).await? {
            Done::Id(id) => Ok(StoredDanmaku {
                id,
                d,
                deleted_at: None,
            }),
            _ => Err(shape()),
        }
    }

    async fn insert_many(&self, ds: Vec<NewDanmaku>) -> Result<usize, StoreError> {
        match self.write(Write::InsertMany(ds)).await? {
            Done::Count(n) => Ok(n),
            _ => Err(shape()),
        }
    }

    async fn history(&self, q: HistoryQuery) -> Result<Vec<StoredDanmaku>, StoreError> {
        let order = if q.newest { "id DESC" } else { "time_ms, id" };
        let sql = format!(
            "SELECT {COLUMNS} FROM danmaku
             WHERE video = $1 AND deleted_at IS NULL
               AND time_ms >= $2 AND time_ms < $3 AND id > $4
               AND ($5 OR audience <> 'members')
             ORDER BY {order} LIMIT $6"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(&q.video)
            .bind(q.from_ms.unwrap_or(0).min(i64::MAX as u64) as i64)
            .bind(
                q.to_ms
                    .map(|t| t.min(i64::MAX as u64) as i64)
                    .unwrap_or(i64::MAX),
            )
            .bind(q.after_id.unwrap_or(0))
            .bind(q.members)
            .bind(q.limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut out = rows
            .iter()
            .map(danmaku_row)
            .collect::<Result<Vec<_>, _>>()?;
        if q.newest {
            out.sort_by_key(|d| (d.d.time_ms, d.id));
        }
        Ok(out)
    }

    async fn get_danmaku(&self, id: i64) -> Result<Option<StoredDanmaku>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM danmaku WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(danmaku_row).transpose()
    }

    async fn tombstone_danmaku(&self, id: i64, at: u64) -> Result<bool, StoreError> {
        self.write_flag(Write::Tombstone(id, at)).await
    }

    async fn put_video(&self, v: Video) -> Result<bool, StoreError> {
        self.write_flag(Write::PutVideo(v)).await
    }

    async fn list_videos(&self) -> Result<Vec<Video>, StoreError> {
        let rows = sqlx::query("SELECT id, title, tier, updated_at FROM videos ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(unavailable)?;
                let tier: String = r.try_get(2).map_err(unavailable)?;
                let tier = Tier::parse(&tier)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad tier {tier:?} for {id}")))?;
                Ok(Video {
                    title: r.try_get(1).map_err(unavailable)?,
                    updated_at: r.try_get::<i64, _>(3).map_err(unavailable)? as u64,
                    id,
                    tier,
                })
            })
            .collect()
    }

    async fn put_mute(&self, sub: &str, until_ms: u64) -> Result<(), StoreError> {
        self.write(Write::PutMute(sub.to_string(), until_ms))
            .await
            .map(|_| ())
    }

    async fn list_mutes(&self, now_ms: u64) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query("SELECT sub, until_ms FROM mutes WHERE until_ms > $1")
            .bind(now_ms as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(unavailable)?,
                    r.try_get::<i64, _>(1).map_err(unavailable)? as u64,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn put_schedule(&self, rec: &ScheduleRecord) -> Result<(), StoreError> {
        self.write(Write::PutSchedule(rec.clone()))
            .await
            .map(|_| ())
    }

    async fn get_schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(schedule_row).transpose()
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(schedule_row).collect()
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        self.write_flag(Write::DeleteSchedule(id.to_string())).await
    }

    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        self.write_flag(Write::SetPaused(id.to_string(), paused))
            .await
    }

    async fn record_schedule_run(
        &self,
        id: &str,
        at: u64,
        runs: u64,
        delivered: u64,
    ) -> Result<bool, StoreError> {
        self.write_flag(Write::RecordRun(id.to_string(), at, runs, delivered))
            .await
    }
}
