//! Webhooks and their delivery queue on PostgreSQL, straight on the pool: the queue is
//! independent of the writer's comment-id order, and `take_due` needs `SKIP LOCKED` so
//! that nodes taking at once split the due rows.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, postgres::PgRow};

use super::{PgStore, moderation::col, unavailable};
use crate::store::{
    StoreError,
    webhooks::{
        Attempt, Delivery, WEBHOOK_COLUMNS, Webhook, WebhookStats, WebhookStore, events_text,
        parse_events,
    },
};

/// Decodes a row selected with [`WEBHOOK_COLUMNS`].
fn webhook_row(r: &PgRow) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        id: col(r, 0)?,
        url: col(r, 1)?,
        events: parse_events(&col::<String>(r, 2)?),
        secret: col(r, 3)?,
        description: col(r, 4)?,
        created_by: col(r, 5)?,
        created_at: col::<i64>(r, 6)? as u64,
        stats: WebhookStats {
            delivered: col::<i64>(r, 7)? as u64,
            failed: col::<i64>(r, 8)? as u64,
            last_status: col::<Option<i32>>(r, 9)?.map(|s| s as u16),
            last_error: col(r, 10)?,
            last_attempt_at: col::<Option<i64>>(r, 11)?.map(|t| t as u64),
            pending: col::<i64>(r, 12)? as u64,
        },
    })
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn put_webhook(&self, w: Webhook) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhooks (id, url, events, secret, description, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&w.id)
        .bind(&w.url)
        .bind(events_text(&w.events))
        .bind(&w.secret)
        .bind(&w.description)
        .bind(&w.created_by)
        .bind(w.created_at as i64)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let gone = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected()
            > 0;
        tx.commit().await.map_err(unavailable)?;
        Ok(gone)
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w ORDER BY w.created_at, w.id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(webhook_row).collect()
    }

    async fn webhook_events(&self) -> Result<Vec<Vec<String>>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT events FROM webhooks")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.iter().map(|e| parse_events(e)).collect())
    }

    async fn enqueue_deliveries(
        &self,
        event: &str,
        event_id: &str,
        body: &str,
        at: u64,
    ) -> Result<usize, StoreError> {
        let n = sqlx::query(
            "INSERT INTO webhook_deliveries
               (webhook, event, event_id, body, attempts, next_at, created_at)
             SELECT id, $1, $2, $3, 0, $4, $4 FROM webhooks
             WHERE events LIKE '%,' || $1 || ',%'
             ON CONFLICT (webhook, event_id) DO NOTHING",
        )
        .bind(event)
        .bind(event_id)
        .bind(body)
        .bind(at as i64)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        Ok(n as usize)
    }

    async fn take_due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "WITH due AS (
                 SELECT id FROM webhook_deliveries WHERE next_at <= $1
                 ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE webhook_deliveries d SET next_at = $2
             FROM due, webhooks w
             WHERE d.id = due.id AND w.id = d.webhook
             RETURNING d.id, d.webhook, w.url, w.secret, d.event, d.event_id, d.body, d.attempts",
        )
        .bind(now as i64)
        .bind((now + lease_ms) as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(Delivery {
                    id: col(r, 0)?,
                    webhook: col(r, 1)?,
                    url: col(r, 2)?,
                    secret: col(r, 3)?,
                    event: col(r, 4)?,
                    event_id: col(r, 5)?,
                    body: col(r, 6)?,
                    attempts: col::<i32>(r, 7)?.max(0) as u32,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        id: i64,
        webhook: &str,
        attempt: Attempt,
        at: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let (status, error, delivered, failed) = match &attempt {
            Attempt::Delivered { status } => {
                sqlx::query("DELETE FROM webhook_deliveries WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                (Some(*status), None, 1i64, 0i64)
            }
            Attempt::Retry {
                status,
                error,
                next_at,
            } => {
                sqlx::query(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = $2
                     WHERE id = $1",
                )
                .bind(id)
                .bind(*next_at as i64)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                (*status, Some(error.clone()), 0, 0)
            }
            Attempt::GaveUp { status, error } => {
                sqlx::query("DELETE FROM webhook_deliveries WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                (*status, Some(error.clone()), 0, 1)
            }
        };
        sqlx::query(
            "UPDATE webhooks SET delivered = delivered + $2, failed = failed + $3,
               last_status = $4, last_error = $5, last_attempt_at = $6 WHERE id = $1",
        )
        .bind(webhook)
        .bind(delivered)
        .bind(failed)
        .bind(status.map(i32::from))
        .bind(error)
        .bind(at as i64)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }
}
