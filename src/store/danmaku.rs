//! Durable comments, the video catalog and the catch-up outbox: the trait and its SQLite
//! engine. (Mutes moved to [`super::moderation`] when they gained a scope.)

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::{
    StoreError,
    sqlite::{SqliteStore, unavailable},
};
use crate::model::{Audience, Mode, Size, Tier, Visibility};

/// A comment to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDanmaku {
    pub video: String,
    pub time_ms: u64,
    pub text: String,
    pub mode: Mode,
    pub color: u32,
    pub size: Size,
    pub audience: Audience,
    /// The author's user id; never sent to other viewers.
    pub sub: String,
    /// The author's display name at posting time.
    pub name: String,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Who may see it: decided when it is posted; a review turns `Held` into `Visible`.
    pub state: Visibility,
}

/// A stored comment with its store-assigned, strictly increasing id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDanmaku {
    pub id: i64,
    pub d: NewDanmaku,
    /// Set once deleted (a tombstone stays in the store).
    pub deleted_at: Option<u64>,
    /// How many users like it ([`super::engagement::EngagementStore::set_like`]).
    pub likes: u32,
}

/// A history window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub video: String,
    /// Inclusive lower bound of video time, ms.
    pub from_ms: Option<u64>,
    /// Exclusive upper bound of video time, ms.
    pub to_ms: Option<u64>,
    /// Only comments with a greater id (incremental loads).
    pub after_id: Option<i64>,
    pub limit: usize,
    /// Include members-only comments.
    pub members: bool,
    /// Return the newest `limit` (by id) instead of the first by video time; the result
    /// is still ordered by video time.
    pub newest: bool,
    /// Also this author's own held and shadowed comments (what they see of theirs).
    pub author: Option<String>,
    /// Every comment whatever its [`Visibility`] (moderators and admins).
    pub every_state: bool,
}

impl HistoryQuery {
    /// The first `limit` visible comments of `video` by video time, everyone's view but
    /// members-only ones when `members` is false.
    pub fn of(video: impl Into<String>, limit: usize, members: bool) -> HistoryQuery {
        HistoryQuery {
            video: video.into(),
            from_ms: None,
            to_ms: None,
            after_id: None,
            limit,
            members,
            newest: false,
            author: None,
            every_state: false,
        }
    }
}

/// A catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    pub id: String,
    pub title: String,
    pub tier: Tier,
    pub updated_at: u64,
}

/// A stored change whose live event the bus could not carry, kept for catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deferred {
    /// A new comment.
    Posted,
    /// A deletion.
    Deleted,
}

impl Deferred {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Deferred::Posted => "posted",
            Deferred::Deleted => "deleted",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<Deferred> {
        match s {
            "posted" => Some(Deferred::Posted),
            "deleted" => Some(Deferred::Deleted),
            _ => None,
        }
    }
}

/// Storage for comments, videos and the outbox.
#[async_trait]
pub trait DanmakuStore: Send + Sync {
    /// Stores one comment durably and returns it with its id.
    async fn insert_danmaku(&self, d: NewDanmaku) -> Result<StoredDanmaku, StoreError>;
    /// [`DanmakuStore::insert_danmaku`], running `on_durable` as soon as the comment is
    /// committed, on whatever thread committed it, before the caller resumes. An engine
    /// with its own commit thread (SQLite) acknowledges from there, so a poster's ack
    /// does not wait for the async runtime to get back to the caller.
    async fn insert_danmaku_then(
        &self,
        d: NewDanmaku,
        on_durable: OnDurable,
    ) -> Result<StoredDanmaku, StoreError> {
        let stored = self.insert_danmaku(d).await?;
        on_durable(&stored);
        Ok(stored)
    }
    /// Stores many comments in one transaction (imports).
    async fn insert_many(&self, ds: Vec<NewDanmaku>) -> Result<usize, StoreError>;
    /// Live comments of a window, ordered by video time then id.
    async fn history(&self, q: HistoryQuery) -> Result<Vec<StoredDanmaku>, StoreError>;
    /// Whether `sub` has a live held or shadowed comment in `video` (a partial index:
    /// cheap, so a history read needs the author's own view only when it differs).
    async fn has_hidden(&self, video: &str, sub: &str) -> Result<bool, StoreError>;
    /// One comment, tombstoned or not.
    async fn get_danmaku(&self, id: i64) -> Result<Option<StoredDanmaku>, StoreError>;
    /// Marks a comment deleted. Returns false if it was missing or already deleted.
    async fn tombstone_danmaku(&self, id: i64, at: u64) -> Result<bool, StoreError>;
    /// Creates or updates a catalog entry. Returns true when created.
    async fn put_video(&self, v: Video) -> Result<bool, StoreError>;
    /// The whole catalog, by id.
    async fn list_videos(&self) -> Result<Vec<Video>, StoreError>;
    /// Records that the live event of change `kind` to comment `id` was not published
    /// (the bus was away), so that some node publishes it once the bus is back.
    /// Recording the same change twice keeps one record.
    async fn defer_publish(&self, kind: Deferred, id: i64, at: u64) -> Result<(), StoreError>;
    /// Takes up to `limit` recorded changes, oldest first, with their comments (a
    /// deletion's comment is tombstoned), removing the records: each is taken by one
    /// caller, which records it again if it cannot publish it. Records whose comment is
    /// gone are dropped.
    async fn take_deferred(
        &self,
        limit: usize,
    ) -> Result<Vec<(Deferred, StoredDanmaku)>, StoreError>;
}

/// Runs once a comment is durable (see [`DanmakuStore::insert_danmaku_then`]).
pub type OnDurable = Box<dyn FnOnce(&StoredDanmaku) + Send>;

/// The columns read back for a comment, in order.
pub(super) const COLUMNS: &str = "id, video, time_ms, text, mode, color, size, audience, sub, name, created_at, deleted_at, likes, state";

/// Decodes a row selected with [`COLUMNS`].
pub(super) fn row_to_danmaku(r: &Row<'_>) -> rusqlite::Result<StoredDanmaku> {
    row_to_danmaku_at(r, 0)
}

/// Decodes the [`COLUMNS`] of a row that starts them at column `o`.
fn row_to_danmaku_at(r: &Row<'_>, o: usize) -> rusqlite::Result<StoredDanmaku> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("bad {what}").into(),
        )
    };
    let mode: String = r.get(o + 4)?;
    let size: String = r.get(o + 6)?;
    let audience: String = r.get(o + 7)?;
    let state: String = r.get(o + 13)?;
    Ok(StoredDanmaku {
        id: r.get(o)?,
        d: NewDanmaku {
            video: r.get(o + 1)?,
            time_ms: r.get::<_, i64>(o + 2)? as u64,
            text: r.get(o + 3)?,
            mode: Mode::parse(&mode).ok_or_else(|| bad(o + 4, "mode"))?,
            color: r.get::<_, i64>(o + 5)? as u32,
            size: Size::parse(&size).ok_or_else(|| bad(o + 6, "size"))?,
            audience: match audience.as_str() {
                "members" => Audience::Members,
                "free" => Audience::Free,
                _ => Audience::Everyone,
            },
            sub: r.get(o + 8)?,
            name: r.get(o + 9)?,
            created_at: r.get::<_, i64>(o + 10)? as u64,
            state: Visibility::parse(&state).ok_or_else(|| bad(o + 13, "state"))?,
        },
        deleted_at: r.get::<_, Option<i64>>(o + 11)?.map(|v| v as u64),
        likes: r.get::<_, i64>(o + 12)?.clamp(0, i64::from(u32::MAX)) as u32,
    })
}

/// Inserts one comment on `c` and returns its id.
fn insert_row(c: &rusqlite::Connection, d: &NewDanmaku) -> Result<i64, StoreError> {
    c.prepare_cached(
        "INSERT INTO danmaku (video, time_ms, text, mode, color, size, audience, sub, name, created_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .and_then(|mut st| {
        st.execute(params![
            d.video,
            d.time_ms as i64,
            d.text,
            d.mode.as_str(),
            d.color as i64,
            d.size.as_str(),
            d.audience.as_str(),
            d.sub,
            d.name,
            d.created_at as i64,
            d.state.as_str(),
        ])
    })
    .map_err(unavailable)?;
    Ok(c.last_insert_rowid())
}

impl SqliteStore {
    /// One comment in the next group commit; `on_durable` runs on the writer thread.
    async fn insert_danmaku_inner(
        &self,
        d: NewDanmaku,
        on_durable: Option<OnDurable>,
    ) -> Result<StoredDanmaku, StoreError> {
        self.write_then(
            move |c| {
                let id = insert_row(c, &d)?;
                Ok(StoredDanmaku {
                    id,
                    d,
                    deleted_at: None,
                    likes: 0,
                })
            },
            on_durable,
        )
        .await
    }
}

#[async_trait]
impl DanmakuStore for SqliteStore {
    async fn insert_danmaku(&self, d: NewDanmaku) -> Result<StoredDanmaku, StoreError> {
        self.insert_danmaku_inner(d, None).await
    }

    async fn insert_danmaku_then(
        &self,
        d: NewDanmaku,
        on_durable: OnDurable,
    ) -> Result<StoredDanmaku, StoreError> {
        self.insert_danmaku_inner(d, Some(on_durable)).await
    }

    async fn insert_many(&self, ds: Vec<NewDanmaku>) -> Result<usize, StoreError> {
        self.write(move |c| {
            for d in &ds {
                insert_row(c, d)?;
            }
            Ok(ds.len())
        })
        .await
    }

    async fn history(&self, q: HistoryQuery) -> Result<Vec<StoredDanmaku>, StoreError> {
        self.with(move |c| {
            let order = if q.newest { "id DESC" } else { "time_ms, id" };
            let sql = format!(
                "SELECT {COLUMNS} FROM danmaku
                 WHERE video = ?1 AND deleted_at IS NULL
                   AND time_ms >= ?2 AND time_ms < ?3 AND id > ?4
                   AND (?5 OR audience <> 'members')
                   AND (state = 'visible' OR ?7 OR sub = ?8)
                 ORDER BY {order} LIMIT ?6"
            );
            let mut st = c.prepare_cached(&sql).map_err(unavailable)?;
            let rows = st
                .query_map(
                    params![
                        q.video,
                        q.from_ms.unwrap_or(0) as i64,
                        q.to_ms.map(|t| t as i64).unwrap_or(i64::MAX),
                        q.after_id.unwrap_or(0),
                        q.members,
                        q.limit as i64,
                        q.every_state,
                        q.author,
                    ],
                    row_to_danmaku,
                )
                .map_err(unavailable)?;
            let mut out = rows
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if q.newest {
                out.sort_by_key(|d| (d.d.time_ms, d.id));
            }
            Ok(out)
        })
        .await
    }

    async fn has_hidden(&self, video: &str, sub: &str) -> Result<bool, StoreError> {
        let (video, sub) = (video.to_string(), sub.to_string());
        self.with(move |c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM danmaku WHERE video = ?1 AND sub = ?2
                   AND state <> 'visible' AND deleted_at IS NULL)",
            )
            .and_then(|mut st| st.query_row(params![video, sub], |r| r.get(0)))
            .map_err(unavailable)
        })
        .await
    }

    async fn get_danmaku(&self, id: i64) -> Result<Option<StoredDanmaku>, StoreError> {
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM danmaku WHERE id = ?1"),
                [id],
                row_to_danmaku,
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    async fn tombstone_danmaku(&self, id: i64, at: u64) -> Result<bool, StoreError> {
        self.write(move |c| {
            c.execute(
                "UPDATE danmaku SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                params![id, at as i64],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }

    async fn put_video(&self, v: Video) -> Result<bool, StoreError> {
        self.write(move |c| {
            let existed = c
                .query_row("SELECT 1 FROM videos WHERE id = ?1", [&v.id], |_| Ok(()))
                .optional()
                .map_err(unavailable)?
                .is_some();
            c.execute(
                "INSERT INTO videos (id, title, tier, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, tier = excluded.tier,
                   updated_at = excluded.updated_at",
                params![v.id, v.title, v.tier.as_str(), v.updated_at as i64],
            )
            .map_err(unavailable)?;
            Ok(!existed)
        })
        .await
    }

    async fn list_videos(&self) -> Result<Vec<Video>, StoreError> {
        self.with(|c| {
            let mut st = c
                .prepare("SELECT id, title, tier, updated_at FROM videos ORDER BY id")
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, title, tier, updated_at) = row.map_err(unavailable)?;
                let tier = Tier::parse(&tier)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad tier {tier:?} for {id}")))?;
                out.push(Video {
                    id,
                    title,
                    tier,
                    updated_at: updated_at as u64,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn defer_publish(&self, kind: Deferred, id: i64, at: u64) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO danmaku_outbox (id, kind, deferred_at) VALUES (?1, ?2, ?3)",
                params![id, kind.as_str(), at as i64],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }

    async fn take_deferred(
        &self,
        limit: usize,
    ) -> Result<Vec<(Deferred, StoredDanmaku)>, StoreError> {
        // A read first: the common case (nothing recorded) never queues behind writes.
        let any: bool = self
            .with(|c| {
                c.query_row("SELECT EXISTS (SELECT 1 FROM danmaku_outbox)", [], |r| {
                    r.get(0)
                })
                .map_err(unavailable)
            })
            .await?;
        if !any {
            return Ok(Vec::new());
        }
        self.write(move |c| {
            let mut taken = Vec::new();
            let mut keys = Vec::new();
            {
                let mut q = c
                    .prepare(&format!(
                        "SELECT o.kind, o.id, {} FROM danmaku_outbox o
                         LEFT JOIN danmaku d ON d.id = o.id
                         ORDER BY o.id, o.kind DESC LIMIT ?1",
                        COLUMNS
                            .split(", ")
                            .map(|col| format!("d.{col}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .map_err(unavailable)?;
                let mut rows = q
                    .query([limit.min(i64::MAX as usize) as i64])
                    .map_err(unavailable)?;
                while let Some(r) = rows.next().map_err(unavailable)? {
                    let kind: String = r.get(0).map_err(unavailable)?;
                    let id: i64 = r.get(1).map_err(unavailable)?;
                    keys.push((id, kind.clone()));
                    let found: Option<i64> = r.get(2).map_err(unavailable)?;
                    if found.is_none() {
                        continue;
                    }
                    let Some(kind) = Deferred::parse(&kind) else {
                        continue;
                    };
                    let d = row_to_danmaku_at(r, 2).map_err(unavailable)?;
                    taken.push((kind, d));
                }
            }
            for (id, kind) in keys {
                c.execute(
                    "DELETE FROM danmaku_outbox WHERE id = ?1 AND kind = ?2",
                    params![id, kind],
                )
                .map_err(unavailable)?;
            }
            Ok(taken)
        })
        .await
    }
}
