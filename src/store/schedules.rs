//! Durable scheduled pushes: the [`ScheduleStore`] trait and its SQLite implementation.
//!
//! The store keeps a schedule's definition as opaque JSON text (written and read by
//! [`crate::schedule`]) next to the few columns that change after creation: the paused
//! flag and the run bookkeeping. The store never interprets the definition, so a
//! definition that no longer parses is reported per schedule, not as a broken store.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::{
    StoreError,
    sqlite::{SqliteStore, unavailable},
};
use crate::model::time::now_millis;

/// One stored schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// Server-assigned id (`s-` and 16 hex digits).
    pub id: String,
    /// The definition as JSON text.
    pub definition: String,
    /// Whether runs are suspended.
    pub paused: bool,
    /// Unix milliseconds of creation (anchors `every_s` cadences).
    pub created_at: u64,
    /// Unix milliseconds of the last run, if any.
    pub last_run: Option<u64>,
    /// Sockets written by the last run, if any.
    pub last_delivered: Option<u64>,
    /// Runs so far (the index of the last run).
    pub runs: u64,
}

/// Durable storage of scheduled pushes; every [`super::Store`] provides it.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// Inserts a new schedule. Ids are fresh, so an existing id is an error.
    async fn put_schedule(&self, rec: &ScheduleRecord) -> Result<(), StoreError>;

    /// One schedule by id.
    async fn get_schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError>;

    /// Every schedule, oldest first.
    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError>;

    /// Removes a schedule. Returns true when it existed.
    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError>;

    /// Pauses or resumes a schedule. Returns false when it does not exist.
    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError>;

    /// Records a run: its time, its index and the sockets it reached. Returns false when
    /// the schedule was deleted meanwhile (nothing is recorded then).
    async fn record_schedule_run(
        &self,
        id: &str,
        at: u64,
        runs: u64,
        delivered: u64,
    ) -> Result<bool, StoreError>;
}

/// The columns every read selects, in [`from_row`] order.
const COLUMNS: &str = "id, definition, paused, created_at, last_run, last_delivered, runs";

/// Reads one row selected with [`COLUMNS`].
fn from_row(r: &Row<'_>) -> rusqlite::Result<ScheduleRecord> {
    Ok(ScheduleRecord {
        id: r.get(0)?,
        definition: r.get(1)?,
        paused: r.get::<_, i64>(2)? != 0,
        created_at: r.get::<_, i64>(3)? as u64,
        last_run: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
        last_delivered: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
        runs: r.get::<_, i64>(6)? as u64,
    })
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn put_schedule(&self, rec: &ScheduleRecord) -> Result<(), StoreError> {
        let rec = rec.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO schedules
                   (id, definition, paused, created_at, updated_at, last_run, last_delivered, runs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    rec.id,
                    rec.definition,
                    rec.paused as i64,
                    rec.created_at as i64,
                    now_millis() as i64,
                    rec.last_run.map(|v| v as i64),
                    rec.last_delivered.map(|v| v as i64),
                    rec.runs as i64,
                ],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }

    async fn get_schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM schedules WHERE id = ?1"),
                [&id],
                from_row,
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM schedules ORDER BY created_at, id"
                ))
                .map_err(unavailable)?;
            let rows = stmt.query_map([], from_row).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute("DELETE FROM schedules WHERE id = ?1", [&id])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }

    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE schedules SET paused = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, paused as i64, now_millis() as i64],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }

    async fn record_schedule_run(
        &self,
        id: &str,
        at: u64,
        runs: u64,
        delivered: u64,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE schedules SET last_run = ?2, runs = ?3, last_delivered = ?4 WHERE id = ?1",
                params![id, at as i64, runs as i64, delivered as i64],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, created_at: u64) -> ScheduleRecord {
        ScheduleRecord {
            id: id.into(),
            definition: r#"{"name":"n"}"#.into(),
            paused: false,
            created_at,
            last_run: None,
            last_delivered: None,
            runs: 0,
        }
    }

    #[tokio::test]
    async fn schedules_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SqliteStore::open(dir.path()).unwrap();
            store.put_schedule(&record("s-b", 2)).await.unwrap();
            store.put_schedule(&record("s-a", 1)).await.unwrap();
            assert!(
                store.put_schedule(&record("s-a", 3)).await.is_err(),
                "ids are unique"
            );
            assert!(store.set_schedule_paused("s-b", true).await.unwrap());
            assert!(!store.set_schedule_paused("s-x", true).await.unwrap());
            assert!(store.record_schedule_run("s-a", 99, 4, 7).await.unwrap());
            assert!(!store.record_schedule_run("s-x", 99, 4, 7).await.unwrap());
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let all = store.list_schedules().await.unwrap();
        let ids: Vec<_> = all.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["s-a", "s-b"], "oldest first");
        let a = store.get_schedule("s-a").await.unwrap().unwrap();
        assert_eq!(
            (a.last_run, a.runs, a.last_delivered),
            (Some(99), 4, Some(7))
        );
        assert!(store.get_schedule("s-b").await.unwrap().unwrap().paused);
        assert!(store.delete_schedule("s-a").await.unwrap());
        assert!(!store.delete_schedule("s-a").await.unwrap());
        assert_eq!(store.get_schedule("s-a").await.unwrap(), None);
    }
}
