//! Schedule reads (writes go through the writer), and the [`ScheduleStore`] glue.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row, postgres::PgRow};

use super::{PgStore, unavailable, writer::Write};
use crate::store::{ScheduleRecord, ScheduleStore, StoreError};

/// The schedule columns read back, in [`schedule_row`] order.
const SCHEDULE_COLUMNS: &str = "id, definition, paused, created_at, last_run, last_delivered, runs";

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

/// Reads straight from the pool; writes through the writer, like every other write.
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
