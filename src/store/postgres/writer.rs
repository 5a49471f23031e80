//! The single writer task: group commit, one savepoint per write, and every write's SQL.
//!
//! Callers queue a [`Write`] as data and wait for its [`Done`]; the task takes every write
//! queued meanwhile, applies each in its own savepoint inside one transaction, commits
//! once, and only then answers. One writer also keeps comment ids increasing in commit
//! order.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sqlx::{AssertSqlSafe, PgConnection, postgres::PgPool};
use tokio::sync::{mpsc, oneshot};

use super::unavailable;
use crate::{
    model::{Tier, time::now_millis},
    store::{
        ScheduleRecord, StoreError,
        danmaku::{NewDanmaku, Video},
        moderation::{Grant, Mute, NewAudit, Restraint, scope_of},
        room_rules::{SlowMode, StoredFloodRule, escalation_text, roles_text},
    },
};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

/// One queued write, as data (so the writer task owns it outright).
#[derive(Debug)]
pub(super) enum Write {
    PutChannel(String, Tier),
    DeleteChannel(String),
    InsertDanmaku(NewDanmaku),
    InsertMany(Vec<NewDanmaku>),
    Tombstone(i64, u64),
    /// Comment id, user, liked, at: answers the count, or `Done::Unit` when no such comment.
    SetLike(i64, String, bool, u64),
    PutVideo(Video),
    /// Moderation writes carry their audit row, appended in the same savepoint only
    /// when the state changed (src/store/moderation.rs).
    PutModerator(Grant, NewAudit),
    /// Video, sub, audit.
    DeleteModerator(String, String, NewAudit),
    /// A mute or a shadow ban.
    PutMute(Restraint, Mute, NewAudit),
    /// Kind, sub, video (`None`: everywhere), now, audit.
    LiftMute(Restraint, String, Option<String>, u64, NewAudit),
    /// Comment id, at, audit.
    TombstoneAudited(i64, u64, NewAudit),
    PutSlowMode(SlowMode, NewAudit),
    /// Video, now, audit.
    ClearSlowMode(String, u64, NewAudit),
    PutFloodRule(StoredFloodRule, NewAudit),
    /// Video, audit.
    DeleteFloodRule(String, NewAudit),
    PutSchedule(ScheduleRecord),
    DeleteSchedule(String),
    SetPaused(String, bool),
    RecordRun(String, u64, u64, u64),
    /// Block rules, hold rules and reviews (`review.rs` applies them).
    Review(super::review::ReviewWrite),
    /// Waits for everything queued before it (flush).
    Barrier,
}

/// What a write returns once committed.
#[derive(Debug)]
pub(super) enum Done {
    Flag(bool),
    Id(i64),
    Count(usize),
    /// The stored grant, and whether this write created it.
    Grant(Grant, bool),
    /// A viewer's report (`None`: no such live comment).
    Report(Option<crate::store::review::Reported>),
    Unit,
}

/// A queued write with the channel its committed result goes back on.
pub(super) type Job = (Write, oneshot::Sender<Result<Done, StoreError>>);

/// How often, while PostgreSQL is unreachable, a background probe tries to connect.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// The writer task: batches queued writes into one transaction each.
///
/// Fail fast while PostgreSQL is gone: once a batch fails because the server cannot be
/// reached, every later batch is answered `Unavailable` at once (instead of each waiting
/// out the pool's acquire timeout, one behind the other) until a probe connects again.
/// Nothing is acknowledged that was not committed either way.
pub(super) async fn writer_loop(pool: PgPool, mut rx: mpsc::Receiver<Job>) {
    let down = Arc::new(AtomicBool::new(false));
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<Write>, Vec<_>) = jobs.into_iter().unzip();
        if down.load(Ordering::Acquire) {
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable(
                    "postgres: unreachable (reconnecting)".into(),
                )));
            }
            continue;
        }
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
                if unreachable(&e) && !down.swap(true, Ordering::AcqRel) {
                    tokio::spawn(probe(pool.clone(), down.clone()));
                }
            }
        }
    }
}

/// Whether `e` says the server cannot be reached (as opposed to a failing statement).
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Class 08 (connection exception), 57P01..57P03 (shutting down, cannot connect now).
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// Connects every [`PROBE_EVERY`] until PostgreSQL answers, then lets writes through again.
async fn probe(pool: PgPool, down: Arc<AtomicBool>) {
    tracing::warn!("store: PostgreSQL unreachable; writes fail fast until it answers");
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        if let Ok(mut c) = pool.acquire().await
            && sqlx::query("SELECT 1").execute(&mut *c).await.is_ok()
        {
            down.store(false, Ordering::Release);
            tracing::info!("store: PostgreSQL reachable again; writes resume");
            return;
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
        "INSERT INTO danmaku (video, time_ms, text, mode, color, size, audience, sub, name, created_at, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
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
    .bind(d.state.as_str())
    .fetch_one(c)
    .await
}

/// Appends one audit row inside the action's savepoint.
pub(super) async fn insert_audit(c: &mut PgConnection, a: &NewAudit) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO moderation_audit (at, actor, actor_role, action, video, target, reason, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.at as i64)
    .bind(&a.actor)
    .bind(&a.actor_role)
    .bind(a.action.as_str())
    .bind(&a.video)
    .bind(&a.target)
    .bind(&a.reason)
    .bind(&a.detail)
    .execute(c)
    .await
    .map(|_| ())
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
        Write::SetLike(id, sub, liked, at) => {
            let exists: Option<i32> = sqlx::query_scalar("SELECT likes FROM danmaku WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?;
            if exists.is_none() {
                return Ok(Done::Unit);
            }
            let changed = if *liked {
                sqlx::query(
                    "INSERT INTO danmaku_likes (danmaku_id, sub, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(sub)
                .bind(*at as i64)
                .execute(&mut *c)
                .await?
            } else {
                sqlx::query("DELETE FROM danmaku_likes WHERE danmaku_id = $1 AND sub = $2")
                    .bind(id)
                    .bind(sub)
                    .execute(&mut *c)
                    .await?
            }
            .rows_affected();
            let likes: i32 = if changed > 0 {
                sqlx::query_scalar(
                    "UPDATE danmaku SET likes = GREATEST(likes + $2, 0) WHERE id = $1 RETURNING likes",
                )
                .bind(id)
                .bind(if *liked { 1i32 } else { -1 })
                .fetch_one(&mut *c)
                .await?
            } else {
                exists.unwrap_or(0)
            };
            Done::Count(likes.max(0) as usize)
        }
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
        Write::PutModerator(g, audit) => {
            let created = sqlx::query(
                "INSERT INTO moderators (video, sub, granted_by, granted_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&g.video)
            .bind(&g.sub)
            .bind(&g.by)
            .bind(g.at as i64)
            .execute(&mut *c)
            .await?
            .rows_affected()
                > 0;
            if created {
                insert_audit(&mut *c, audit).await?;
                return Ok(Done::Grant(g.clone(), true));
            }
            let (video, sub, by, at): (String, String, String, i64) = sqlx::query_as(
                "SELECT video, sub, granted_by, granted_at FROM moderators
                 WHERE video = $1 AND sub = $2",
            )
            .bind(&g.video)
            .bind(&g.sub)
            .fetch_one(c)
            .await?;
            Done::Grant(
                Grant {
                    video,
                    sub,
                    by,
                    at: at as u64,
                },
                false,
            )
        }
        Write::DeleteModerator(video, sub, audit) => {
            let gone = sqlx::query("DELETE FROM moderators WHERE video = $1 AND sub = $2")
                .bind(video)
                .bind(sub)
                .execute(&mut *c)
                .await?
                .rows_affected()
                > 0;
            if gone {
                insert_audit(c, audit).await?;
            }
            Done::Flag(gone)
        }
        Write::PutMute(kind, m, audit) => {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (sub, scope, until_ms, reason, by_sub, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (sub, scope) DO UPDATE SET until_ms = excluded.until_ms,
                   reason = excluded.reason, by_sub = excluded.by_sub,
                   created_at = excluded.created_at",
                kind.table()
            )))
            .bind(&m.sub)
            .bind(scope_of(m.video.as_deref()))
            .bind(m.until as i64)
            .bind(&m.reason)
            .bind(&m.by)
            .bind(m.created_at as i64)
            .execute(&mut *c)
            .await?;
            insert_audit(c, audit).await?;
            Done::Unit
        }
        Write::LiftMute(kind, sub, video, now, audit) => {
            let lifted = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {} WHERE sub = $1 AND scope = $2 AND until_ms > $3",
                kind.table()
            )))
            .bind(sub)
            .bind(scope_of(video.as_deref()))
            .bind(*now as i64)
            .execute(&mut *c)
            .await?
            .rows_affected()
                > 0;
            if lifted {
                insert_audit(c, audit).await?;
            }
            Done::Flag(lifted)
        }
        Write::TombstoneAudited(id, at, audit) => {
            let done = sqlx::query(
                "UPDATE danmaku SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(id)
            .bind(*at as i64)
            .execute(&mut *c)
            .await?
            .rows_affected()
                > 0;
            if done {
                insert_audit(c, audit).await?;
            }
            Done::Flag(done)
        }
        Write::PutSlowMode(m, audit) => {
            sqlx::query(
                "INSERT INTO slow_modes (video, seconds, roles, until_ms, by_sub, set_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (video) DO UPDATE SET seconds = excluded.seconds,
                   roles = excluded.roles, until_ms = excluded.until_ms,
                   by_sub = excluded.by_sub, set_at = excluded.set_at",
            )
            .bind(&m.video)
            .bind(m.seconds as i32)
            .bind(roles_text(&m.roles))
            .bind(m.until.map(|u| u as i64))
            .bind(&m.by)
            .bind(m.set_at as i64)
            .execute(&mut *c)
            .await?;
            insert_audit(c, audit).await?;
            Done::Unit
        }
        Write::ClearSlowMode(video, now, audit) => {
            let cleared = sqlx::query(
                "DELETE FROM slow_modes
                 WHERE video = $1 AND (until_ms IS NULL OR until_ms > $2)",
            )
            .bind(video)
            .bind(*now as i64)
            .execute(&mut *c)
            .await?
            .rows_affected()
                > 0;
            if cleared {
                insert_audit(c, audit).await?;
            }
            Done::Flag(cleared)
        }
        Write::PutFloodRule(r, audit) => {
            sqlx::query(
                "INSERT INTO flood_rules
                   (video, max_comments, window_s, mute_s, escalation, by_sub, set_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (video) DO UPDATE SET max_comments = excluded.max_comments,
                   window_s = excluded.window_s, mute_s = excluded.mute_s,
                   escalation = excluded.escalation, by_sub = excluded.by_sub,
                   set_at = excluded.set_at",
            )
            .bind(&r.video)
            .bind(r.rule.max_comments as i32)
            .bind(r.rule.window_s as i32)
            .bind(r.rule.mute_s as i32)
            .bind(escalation_text(&r.rule.escalation))
            .bind(&r.by)
            .bind(r.set_at as i64)
            .execute(&mut *c)
            .await?;
            insert_audit(c, audit).await?;
            Done::Unit
        }
        Write::DeleteFloodRule(video, audit) => {
            let gone = sqlx::query("DELETE FROM flood_rules WHERE video = $1")
                .bind(video)
                .execute(&mut *c)
                .await?
                .rows_affected()
                > 0;
            if gone {
                insert_audit(c, audit).await?;
            }
            Done::Flag(gone)
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
        Write::Review(rw) => super::review::apply(c, rw).await?,
        Write::Barrier => Done::Unit,
    })
}
