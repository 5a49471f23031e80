//! SQLite store (embedded default).
//!
//! Durability settings: `journal_mode=WAL` with `synchronous=FULL` by default, so a
//! transaction is on disk (WAL fsynced) before the call returns, and only then is anything
//! acknowledged. `[store] sqlite_synchronous = "normal"` keeps the guarantee against a
//! killed process (the commit is in the OS) but not against power loss.
//!
//! Writes go through one writer thread that does **group commit**: it takes every write
//! queued while the previous commit was syncing, runs them in one transaction, commits
//! once (one fsync), and only then answers each caller. Ingest therefore scales with
//! concurrency instead of being capped at one fsync per comment. Reads use a second
//! connection behind a mutex on the blocking pool (WAL lets them run beside the writer).

mod migrations;

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{ChannelDecl, Store, StoreError};
use crate::config::SqliteSync;
use crate::model::{Tier, time::now_millis};
use migrations::migrate;

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

/// While writes keep coming (the last commit ended less than this ago), the writer lets
/// a batch gather for this long before committing it: one fsync and one set of page
/// writes then carries many more comments (measured in BENCHMARKS.md). A write on a
/// quiet store commits at once.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

/// A write job: runs inside the batch transaction and returns what to do once the
/// transaction's fate is known.
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;

/// Called on the writer thread with the commit result once the batch transaction
/// ended (a caller's `on_durable` runs here); returns the wake-up of the caller.
type Completion = Box<dyn FnOnce(&Result<(), String>) -> Wake + Send>;

/// Wakes one caller with its outcome; run on the async runtime.
type Wake = Box<dyn FnOnce() + Send>;

/// The embedded store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    writer: tokio::sync::mpsc::Sender<Job>,
    /// Held while the store is in use; the checkpointer stops once it is gone.
    _alive: Arc<()>,
}

/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Copies committed WAL frames into the database file off the writer thread (the
/// writer's connection has auto-checkpoints off, so a commit never pays for one). A
/// passive checkpoint waits for no one; durability does not depend on it (with WAL and
/// `synchronous=FULL` a commit is durable once its frames are fsynced).
fn checkpointer(conn: Connection, alive: std::sync::Weak<()>) {
    while alive.upgrade().is_some() {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "store: background checkpoint failed");
        }
    }
}

/// Opens a connection with the durability pragmas.
fn connect(path: &Path, sync: SqliteSync) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(unavailable)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(unavailable)?;
    conn.pragma_update(None, "synchronous", sync.pragma())
        .map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(unavailable)?;
    Ok(conn)
}

/// The wake-ups of a committed (or failed) batch.
type Finished = Vec<Wake>;

/// Hands finished batches back to the async runtime, which wakes each caller.
///
/// A caller woken straight from the writer thread is queued in the runtime's injection
/// queue, which a busy worker serves one task in every few dozen polls: at 10k posts/s
/// on two busy cores, callers waited there 100–200 ms for their commit (measured; see
/// BENCHMARKS.md). This task is woken once per batch instead, and wakes the callers from
/// inside the runtime, where they queue like any local task.
async fn dispatch(mut rx: tokio::sync::mpsc::UnboundedReceiver<Finished>) {
    while let Some(wakes) = rx.recv().await {
        for wake in wakes {
            wake();
        }
    }
}

/// The writer thread: batches queued jobs into one transaction each; `finished` takes
/// each batch's completions back to the runtime (or, with none, they run here).
fn writer_loop(
    conn: Connection,
    mut rx: tokio::sync::mpsc::Receiver<Job>,
    finished: Option<tokio::sync::mpsc::UnboundedSender<Finished>>,
) {
    let mut last_commit: Option<std::time::Instant> = None;
    while let Some(first) = rx.blocking_recv() {
        if last_commit.is_some_and(|t| t.elapsed() < GATHER) {
            std::thread::sleep(GATHER);
        }
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // If BEGIN fails, each job's savepoint still runs as its own transaction.
        let in_txn = match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "store: cannot begin a batch; committing jobs one by one");
                false
            }
        };
        let completions: Vec<Completion> = jobs.into_iter().map(|job| job(&conn)).collect();
        let result = if in_txn {
            conn.execute_batch("COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                e.to_string()
            })
        } else {
            Ok(())
        };
        last_commit = Some(std::time::Instant::now());
        if let Err(e) = &result {
            tracing::error!(error = %e, batch = completions.len(), "store: commit failed");
        }
        // Acknowledgements first (from this thread, at once), then the wake-ups.
        let wakes: Vec<Wake> = completions.into_iter().map(|done| done(&result)).collect();
        let unsent = match &finished {
            Some(tx) => tx.send(wakes).err().map(|e| e.0),
            None => Some(wakes),
        };
        for wake in unsent.into_iter().flatten() {
            wake();
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/danmaku.db` with `synchronous=FULL`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, SqliteSync::Full)
    }

    /// Opens (creating if needed) `dir/danmaku.db` at the given `synchronous` level and
    /// runs migrations.
    pub fn open_with(dir: &Path, sync: SqliteSync) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join("danmaku.db");
        let mut conn = connect(&path, sync)?;
        migrate(&mut conn)?;
        let write_conn = connect(&path, sync)?;
        write_conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(unavailable)?;
        let checkpoint_conn = connect(&path, sync)?;
        let (writer, rx) = tokio::sync::mpsc::channel::<Job>(8192);
        let finished = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            rt.spawn(dispatch(rx));
            tx
        });
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(write_conn, rx, finished))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        let alive = Arc::new(());
        let weak = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpointer(checkpoint_conn, weak))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpointer: {e}")))?;
        tracing::info!(path = %path.display(), synchronous = sync.pragma(), "sqlite store open (WAL, group commit)");
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            writer,
            _alive: alive,
        })
    }

    /// Runs `f` inside the next group-commit transaction and returns its result once the
    /// transaction is durably committed. If the commit fails, the caller gets an error
    /// even though `f` succeeded: nothing is acknowledged that is not on disk.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_then(f, None::<fn(&T)>).await
    }

    /// [`SqliteStore::write`], calling `then` on the writer thread right after the commit
    /// succeeded (before the caller is even woken).
    pub(crate) async fn write_then<T, F, A>(&self, f: F, then: Option<A>) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(&T) + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // A failed job must not poison the batch: each runs in its own savepoint
            // (prepared once per connection: parsing it per job cost more than the job).
            let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut st| st.execute([]));
            let result = match run("SAVEPOINT job") {
                Ok(_) => match f(conn) {
                    Ok(v) => run("RELEASE job").map(|_| v).map_err(unavailable),
                    Err(e) => {
                        let _ = run("ROLLBACK TO job");
                        let _ = run("RELEASE job");
                        Err(e)
                    }
                },
                Err(e) => Err(unavailable(e)),
            };
            Box::new(move |committed: &Result<(), String>| {
                let outcome = match (committed, result) {
                    (Ok(()), r) => r,
                    (Err(e), _) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                };
                if let (Ok(v), Some(then)) = (&outcome, then) {
                    then(v);
                }
                Box::new(move || {
                    let _ = tx.send(outcome);
                }) as Wake
            })
        });
        self.writer
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer dropped the job".into()))?
    }

    /// Runs `f` with the read connection on the blocking pool.
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

#[async_trait]
impl Store for SqliteStore {
    async fn put_channel(&self, name: &str, tier: Tier) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.write(move |tx| {
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
            Ok(!existed)
        })
        .await
    }

    async fn delete_channel(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.write(move |c| {
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
        // Everything queued before this no-op is committed once it returns.
        self.write(|_| Ok(())).await?;
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
