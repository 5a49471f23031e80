//! Versioned schema migrations, applied at startup in the configured schema.
//!
//! `schema_migrations` records which ran; an advisory lock per schema serializes nodes
//! starting together, so each migration is applied once.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::unavailable;
use crate::store::StoreError;

/// Schema migrations, applied in order; `schema_migrations` records which ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE channels (
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
    );",
    // Changes whose live event the bus could not carry, until some node publishes them.
    "CREATE TABLE danmaku_outbox (
        id BIGINT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('posted', 'deleted')),
        deferred_at BIGINT NOT NULL,
        PRIMARY KEY (id, kind)
    );",
    // Likes (one per user per comment, the count kept on the comment), and the density
    // the heatmap reads, kept by a trigger in the transaction of each insert and
    // tombstone (src/store/engagement.rs).
    "ALTER TABLE danmaku ADD COLUMN likes INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE danmaku_likes (
        danmaku_id BIGINT NOT NULL,
        sub TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (danmaku_id, sub)
    );
    CREATE INDEX danmaku_likes_sub ON danmaku_likes (sub, danmaku_id);
    CREATE TABLE danmaku_density (
        video TEXT NOT NULL,
        second INTEGER NOT NULL,
        audience TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (video, second, audience)
    );
    INSERT INTO danmaku_density (video, second, audience, n)
        SELECT video, (time_ms / 1000)::int, audience, COUNT(*) FROM danmaku
        WHERE deleted_at IS NULL GROUP BY 1, 2, 3;
    CREATE FUNCTION danmaku_density_track() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NEW.deleted_at IS NULL THEN
                INSERT INTO danmaku_density (video, second, audience, n)
                    VALUES (NEW.video, (NEW.time_ms / 1000)::int, NEW.audience, 1)
                    ON CONFLICT (video, second, audience)
                    DO UPDATE SET n = danmaku_density.n + 1;
            END IF;
        ELSIF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
            UPDATE danmaku_density SET n = n - 1
                WHERE video = OLD.video AND second = (OLD.time_ms / 1000)::int
                  AND audience = OLD.audience;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER danmaku_density_track AFTER INSERT OR UPDATE OF deleted_at ON danmaku
        FOR EACH ROW EXECUTE FUNCTION danmaku_density_track();",
    // Moderation (src/store/moderation.rs): mutes gain a scope ('' everywhere, else a
    // video id; the mutes in force carry over as global ones), a reason and who set
    // them; room moderators; the audit log.
    "ALTER TABLE mutes ADD COLUMN scope TEXT NOT NULL DEFAULT '',
        ADD COLUMN reason TEXT,
        ADD COLUMN by_sub TEXT NOT NULL DEFAULT 'unknown',
        ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE mutes DROP CONSTRAINT mutes_pkey, ADD PRIMARY KEY (sub, scope);
    CREATE INDEX mutes_until ON mutes (until_ms);
    CREATE TABLE moderators (
        video TEXT NOT NULL,
        sub TEXT NOT NULL,
        granted_by TEXT NOT NULL,
        granted_at BIGINT NOT NULL,
        PRIMARY KEY (video, sub)
    );
    CREATE TABLE moderation_audit (
        id BIGSERIAL PRIMARY KEY,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        actor_role TEXT NOT NULL CHECK (actor_role IN ('admin', 'moderator')),
        action TEXT NOT NULL,
        video TEXT,
        target TEXT NOT NULL,
        reason TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX moderation_audit_video ON moderation_audit (video, id);",
    // Slow mode and flood rules per video (src/store/room_rules.rs); the audit log
    // admits `system` as an actor role (automatic mutes) and gains the index that counts
    // a user's offences.
    "CREATE TABLE slow_modes (
        video TEXT PRIMARY KEY,
        seconds INTEGER NOT NULL CHECK (seconds BETWEEN 1 AND 3600),
        roles TEXT NOT NULL,
        until_ms BIGINT,
        by_sub TEXT NOT NULL,
        set_at BIGINT NOT NULL
    );
    CREATE TABLE flood_rules (
        video TEXT PRIMARY KEY,
        max_comments INTEGER NOT NULL,
        window_s INTEGER NOT NULL,
        mute_s INTEGER NOT NULL,
        escalation TEXT NOT NULL,
        by_sub TEXT NOT NULL,
        set_at BIGINT NOT NULL
    );
    ALTER TABLE moderation_audit DROP CONSTRAINT moderation_audit_actor_role_check,
        ADD CONSTRAINT moderation_audit_actor_role_check
            CHECK (actor_role IN ('admin', 'moderator', 'system'));
    CREATE INDEX moderation_audit_target ON moderation_audit (video, target, action, at);",
    // Review (src/store/review.rs): a comment's visibility (held for review, shadowed);
    // the density counts only visible comments (the trigger also fires on a state
    // change: a held comment approved is counted then, one hidden by reports is
    // uncounted); viewer reports (one per user per comment, the count on the comment);
    // shadow bans (shaped like mutes);
    // block rule sets per scope ('' global, else a video id) and hold rules per video.
    "ALTER TABLE danmaku ADD COLUMN state TEXT NOT NULL DEFAULT 'visible'
        CHECK (state IN ('visible', 'held', 'shadow'));
    CREATE INDEX danmaku_hidden ON danmaku (video, sub) WHERE state <> 'visible';
    CREATE INDEX danmaku_held ON danmaku (video, id) WHERE state = 'held';
    ALTER TABLE danmaku ADD COLUMN reports INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX danmaku_reported ON danmaku (video, reports) WHERE reports > 0;
    CREATE TABLE danmaku_reports (
        danmaku_id BIGINT NOT NULL,
        sub TEXT NOT NULL,
        reason TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (danmaku_id, sub)
    );
    CREATE OR REPLACE FUNCTION danmaku_density_track() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NEW.deleted_at IS NULL AND NEW.state = 'visible' THEN
                INSERT INTO danmaku_density (video, second, audience, n)
                    VALUES (NEW.video, (NEW.time_ms / 1000)::int, NEW.audience, 1)
                    ON CONFLICT (video, second, audience)
                    DO UPDATE SET n = danmaku_density.n + 1;
            END IF;
        ELSIF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
            IF OLD.state = 'visible' THEN
                UPDATE danmaku_density SET n = n - 1
                    WHERE video = OLD.video AND second = (OLD.time_ms / 1000)::int
                      AND audience = OLD.audience;
            END IF;
        ELSIF OLD.state <> 'visible' AND NEW.state = 'visible' AND NEW.deleted_at IS NULL THEN
            INSERT INTO danmaku_density (video, second, audience, n)
                VALUES (NEW.video, (NEW.time_ms / 1000)::int, NEW.audience, 1)
                ON CONFLICT (video, second, audience)
                DO UPDATE SET n = danmaku_density.n + 1;
        ELSIF OLD.state = 'visible' AND NEW.state <> 'visible' AND NEW.deleted_at IS NULL THEN
            UPDATE danmaku_density SET n = n - 1
                WHERE video = OLD.video AND second = (OLD.time_ms / 1000)::int
                  AND audience = OLD.audience;
        END IF;
        RETURN NULL;
    END $$;
    DROP TRIGGER danmaku_density_track ON danmaku;
    CREATE TRIGGER danmaku_density_track AFTER INSERT OR UPDATE OF deleted_at, state ON danmaku
        FOR EACH ROW EXECUTE FUNCTION danmaku_density_track();
    CREATE TABLE shadow_bans (
        sub TEXT NOT NULL,
        scope TEXT NOT NULL,
        until_ms BIGINT NOT NULL,
        reason TEXT,
        by_sub TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (sub, scope)
    );
    CREATE TABLE block_rules (
        scope TEXT PRIMARY KEY,
        rules TEXT NOT NULL,
        by_sub TEXT NOT NULL,
        set_at BIGINT NOT NULL
    );
    CREATE TABLE hold_rules (
        video TEXT PRIMARY KEY,
        roles TEXT NOT NULL,
        by_sub TEXT NOT NULL,
        set_at BIGINT NOT NULL
    );",
    // Outgoing webhooks and their delivery queue (src/store/webhooks.rs).
    "CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        description TEXT,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        delivered BIGINT NOT NULL DEFAULT 0,
        failed BIGINT NOT NULL DEFAULT 0,
        last_status INTEGER,
        last_error TEXT,
        last_attempt_at BIGINT
    );
    CREATE TABLE webhook_deliveries (
        id BIGSERIAL PRIMARY KEY,
        webhook TEXT NOT NULL,
        event TEXT NOT NULL,
        event_id TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (webhook, event_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at, id);",
];

/// Applies pending migrations in one transaction, serialized across nodes.
pub(super) async fn migrate(conn: &mut PgConnection, schema: &str) -> Result<(), StoreError> {
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
