//! The SQLite schema: versioned migrations, applied at startup in one transaction;
//! `PRAGMA user_version` records how many ran, so a newer database than the binary is
//! refused instead of misread.

use rusqlite::Connection;

use super::unavailable;
use crate::store::StoreError;

/// Schema migrations, applied in order; `user_version` records how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    "CREATE TABLE channels (
        name TEXT PRIMARY KEY NOT NULL,
        tier TEXT NOT NULL CHECK (tier IN ('free', 'member', 'admin')),
        updated_at INTEGER NOT NULL
    ) STRICT;",
    "CREATE TABLE videos (
        id TEXT PRIMARY KEY NOT NULL,
        title TEXT NOT NULL,
        tier TEXT NOT NULL CHECK (tier IN ('free', 'member', 'admin')),
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE danmaku (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        video TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        text TEXT NOT NULL,
        mode TEXT NOT NULL,
        color INTEGER NOT NULL,
        size TEXT NOT NULL,
        audience TEXT NOT NULL,
        sub TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        deleted_at INTEGER
    ) STRICT;
    CREATE INDEX danmaku_video_time ON danmaku (video, time_ms);
    CREATE TABLE mutes (
        sub TEXT PRIMARY KEY NOT NULL,
        until_ms INTEGER NOT NULL
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
    // Changes whose live event the bus could not carry, until some node publishes them.
    "CREATE TABLE danmaku_outbox (
        id INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('posted', 'deleted')),
        deferred_at INTEGER NOT NULL,
        PRIMARY KEY (id, kind)
    ) STRICT;",
    // Likes (one per user per comment, the count kept on the comment), and the density
    // the heatmap reads, kept by triggers in the transaction of each insert and
    // tombstone (src/store/engagement.rs).
    "ALTER TABLE danmaku ADD COLUMN likes INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE danmaku_likes (
        danmaku_id INTEGER NOT NULL,
        sub TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (danmaku_id, sub)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX danmaku_likes_sub ON danmaku_likes (sub, danmaku_id);
    CREATE TABLE danmaku_density (
        video TEXT NOT NULL,
        second INTEGER NOT NULL,
        audience TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (video, second, audience)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO danmaku_density (video, second, audience, n)
        SELECT video, time_ms / 1000, audience, COUNT(*) FROM danmaku
        WHERE deleted_at IS NULL GROUP BY 1, 2, 3;
    CREATE TRIGGER danmaku_density_insert AFTER INSERT ON danmaku
        WHEN new.deleted_at IS NULL
    BEGIN
        INSERT INTO danmaku_density (video, second, audience, n)
            VALUES (new.video, new.time_ms / 1000, new.audience, 1)
            ON CONFLICT (video, second, audience) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER danmaku_density_tombstone AFTER UPDATE OF deleted_at ON danmaku
        WHEN old.deleted_at IS NULL AND new.deleted_at IS NOT NULL
    BEGIN
        UPDATE danmaku_density SET n = n - 1
            WHERE video = old.video AND second = old.time_ms / 1000 AND audience = old.audience;
    END;",
    // Moderation (src/store/moderation.rs): mutes gain a scope ('' everywhere, else a
    // video id), a reason and who set them (the table is rebuilt: its key changes; the
    // mutes in force carry over as global ones); room moderators; the audit log.
    "CREATE TABLE mutes_scoped (
        sub TEXT NOT NULL,
        scope TEXT NOT NULL,
        until_ms INTEGER NOT NULL,
        reason TEXT,
        by_sub TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (sub, scope)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO mutes_scoped (sub, scope, until_ms, reason, by_sub, created_at)
        SELECT sub, '', until_ms, NULL, 'unknown', 0 FROM mutes;
    DROP TABLE mutes;
    ALTER TABLE mutes_scoped RENAME TO mutes;
    CREATE INDEX mutes_until ON mutes (until_ms);
    CREATE TABLE moderators (
        video TEXT NOT NULL,
        sub TEXT NOT NULL,
        granted_by TEXT NOT NULL,
        granted_at INTEGER NOT NULL,
        PRIMARY KEY (video, sub)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE moderation_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        actor_role TEXT NOT NULL CHECK (actor_role IN ('admin', 'moderator')),
        action TEXT NOT NULL,
        video TEXT,
        target TEXT NOT NULL,
        reason TEXT,
        detail TEXT NOT NULL CHECK (json_valid(detail))
    ) STRICT;
    CREATE INDEX moderation_audit_video ON moderation_audit (video, id);",
    // Slow mode and flood rules per video (src/store/room_rules.rs); the audit log
    // admits `system` as an actor role (automatic mutes; the table is rebuilt, SQLite
    // cannot change a CHECK) and gains the index that counts a user's offences.
    "CREATE TABLE slow_modes (
        video TEXT PRIMARY KEY NOT NULL,
        seconds INTEGER NOT NULL CHECK (seconds BETWEEN 1 AND 3600),
        roles TEXT NOT NULL,
        until_ms INTEGER,
        by_sub TEXT NOT NULL,
        set_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE flood_rules (
        video TEXT PRIMARY KEY NOT NULL,
        max_comments INTEGER NOT NULL,
        window_s INTEGER NOT NULL,
        mute_s INTEGER NOT NULL,
        escalation TEXT NOT NULL CHECK (json_valid(escalation)),
        by_sub TEXT NOT NULL,
        set_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE moderation_audit_v2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        actor_role TEXT NOT NULL CHECK (actor_role IN ('admin', 'moderator', 'system')),
        action TEXT NOT NULL,
        video TEXT,
        target TEXT NOT NULL,
        reason TEXT,
        detail TEXT NOT NULL CHECK (json_valid(detail))
    ) STRICT;
    INSERT INTO moderation_audit_v2 (id, at, actor, actor_role, action, video, target, reason, detail)
        SELECT id, at, actor, actor_role, action, video, target, reason, detail
        FROM moderation_audit ORDER BY id;
    DROP TABLE moderation_audit;
    ALTER TABLE moderation_audit_v2 RENAME TO moderation_audit;
    CREATE INDEX moderation_audit_video ON moderation_audit (video, id);
    CREATE INDEX moderation_audit_target ON moderation_audit (video, target, action, at);",
    // Review (src/store/review.rs): a comment's visibility (held for review, shadowed);
    // the density counts only visible comments (its triggers are replaced, a held
    // comment approved is counted then, one hidden by reports is uncounted); viewer
    // reports (one per user per comment, the count kept on the comment); shadow bans (shaped like mutes); block rule
    // sets per scope ('' global, else a video id) and hold rules per video.
    "ALTER TABLE danmaku ADD COLUMN state TEXT NOT NULL DEFAULT 'visible'
        CHECK (state IN ('visible', 'held', 'shadow'));
    CREATE INDEX danmaku_hidden ON danmaku (video, sub) WHERE state <> 'visible';
    CREATE INDEX danmaku_held ON danmaku (video, id) WHERE state = 'held';
    ALTER TABLE danmaku ADD COLUMN reports INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX danmaku_reported ON danmaku (video, reports) WHERE reports > 0;
    CREATE TABLE danmaku_reports (
        danmaku_id INTEGER NOT NULL,
        sub TEXT NOT NULL,
        reason TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (danmaku_id, sub)
    ) STRICT, WITHOUT ROWID;
    DROP TRIGGER danmaku_density_insert;
    DROP TRIGGER danmaku_density_tombstone;
    CREATE TRIGGER danmaku_density_insert AFTER INSERT ON danmaku
        WHEN new.deleted_at IS NULL AND new.state = 'visible'
    BEGIN
        INSERT INTO danmaku_density (video, second, audience, n)
            VALUES (new.video, new.time_ms / 1000, new.audience, 1)
            ON CONFLICT (video, second, audience) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER danmaku_density_tombstone AFTER UPDATE OF deleted_at ON danmaku
        WHEN old.deleted_at IS NULL AND new.deleted_at IS NOT NULL AND old.state = 'visible'
    BEGIN
        UPDATE danmaku_density SET n = n - 1
            WHERE video = old.video AND second = old.time_ms / 1000 AND audience = old.audience;
    END;
    CREATE TRIGGER danmaku_density_publish AFTER UPDATE OF state ON danmaku
        WHEN old.state <> 'visible' AND new.state = 'visible' AND new.deleted_at IS NULL
    BEGIN
        INSERT INTO danmaku_density (video, second, audience, n)
            VALUES (new.video, new.time_ms / 1000, new.audience, 1)
            ON CONFLICT (video, second, audience) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER danmaku_density_hide AFTER UPDATE OF state ON danmaku
        WHEN old.state = 'visible' AND new.state <> 'visible' AND new.deleted_at IS NULL
    BEGIN
        UPDATE danmaku_density SET n = n - 1
            WHERE video = old.video AND second = old.time_ms / 1000 AND audience = old.audience;
    END;
    CREATE TABLE shadow_bans (
        sub TEXT NOT NULL,
        scope TEXT NOT NULL,
        until_ms INTEGER NOT NULL,
        reason TEXT,
        by_sub TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (sub, scope)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE block_rules (
        scope TEXT PRIMARY KEY NOT NULL,
        rules TEXT NOT NULL CHECK (json_valid(rules)),
        by_sub TEXT NOT NULL,
        set_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE hold_rules (
        video TEXT PRIMARY KEY NOT NULL,
        roles TEXT NOT NULL,
        by_sub TEXT NOT NULL,
        set_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;",
    // Outgoing webhooks and their delivery queue (src/store/webhooks.rs).
    "CREATE TABLE webhooks (
        id TEXT PRIMARY KEY NOT NULL,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        description TEXT,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        last_status INTEGER,
        last_error TEXT,
        last_attempt_at INTEGER
    ) STRICT;
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook TEXT NOT NULL,
        event TEXT NOT NULL,
        event_id TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (webhook, event_id)
    ) STRICT;
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at, id);",
];

/// Applies pending migrations in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;

    #[test]
    fn the_audit_rebuild_keeps_rows_and_ids_and_admits_the_system_role() {
        let mut conn = Connection::open_in_memory().unwrap();
        // The schema just before migration 7 (slow modes, flood rules, the rebuild).
        let before = 6;
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before).unwrap();
        let insert = "INSERT INTO moderation_audit (id, at, actor, actor_role, action, video, target, detail)
             VALUES (?1, 1, 'root', ?2, 'user_muted', 'v', 'u', '{}')";
        conn.execute(insert, params![7, "admin"]).unwrap();
        assert!(
            conn.execute(insert, params![8, "system"]).is_err(),
            "the old CHECK refuses system"
        );
        migrate(&mut conn).unwrap();
        let kept: (i64, String) = conn
            .query_row("SELECT id, actor FROM moderation_audit", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(kept, (7, "root".to_string()));
        conn.execute(
            "INSERT INTO moderation_audit (at, actor, actor_role, action, video, target, detail)
             VALUES (2, 'system', 'system', 'auto_muted', 'v', 'u', '{}')",
            [],
        )
        .unwrap();
        let last: i64 = conn
            .query_row("SELECT MAX(id) FROM moderation_audit", [], |r| r.get(0))
            .unwrap();
        assert!(last > 7, "ids keep increasing: {last}");
    }
}
