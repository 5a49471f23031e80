//! Outgoing webhooks: their registrations and the delivery queue. The trait and its
//! SQLite engine (PostgreSQL: `store/postgres/webhooks.rs`).
//!
//! The queue is a table: one row per (webhook, event), unique on the pair, so enqueueing
//! the same event twice (two nodes that both saw a room empty) keeps one. A worker takes
//! due rows by pushing their `next_at` forward by a lease (`take_due`): no other worker
//! takes them meanwhile, and a worker that dies mid-delivery only delays them by the
//! lease. A delivered row is deleted; a failed one is retried at its new `next_at` until
//! its attempts reach the cap, then deleted and counted as failed.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{
    StoreError,
    sqlite::{SqliteStore, unavailable},
};

/// A registered webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Event names, sorted, once each.
    pub events: Vec<String>,
    /// The HMAC key of its deliveries (never listed over REST).
    pub secret: String,
    pub description: Option<String>,
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: u64,
    pub stats: WebhookStats,
}

/// How a webhook's deliveries went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookStats {
    pub delivered: u64,
    /// Given up after the last attempt.
    pub failed: u64,
    /// Waiting in the queue (first attempts and retries).
    pub pending: u64,
    /// The HTTP status of the last attempt (`None`: none yet, or no response).
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// Unix milliseconds.
    pub last_attempt_at: Option<u64>,
}

/// A delivery taken from the queue, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub webhook: String,
    pub url: String,
    pub secret: String,
    pub event: String,
    /// The event's id: the same on every attempt (the receiver's idempotency key).
    pub event_id: String,
    /// The JSON body, as sent.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer: the row is deleted.
    Delivered { status: u16 },
    /// Try again at `next_at` (unix ms).
    Retry {
        status: Option<u16>,
        error: String,
        next_at: u64,
    },
    /// The last attempt failed: the row is deleted and counted as failed.
    GaveUp { status: Option<u16>, error: String },
}

/// Storage for webhooks and their delivery queue.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Registers a webhook (ids are unique).
    async fn put_webhook(&self, w: Webhook) -> Result<(), StoreError>;
    /// Removes a webhook and its queued deliveries. Returns whether it existed.
    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError>;
    /// Every webhook with its stats, by creation.
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// The events each webhook subscribes (the cheap read a cluster node repeats every
    /// 250 ms: no stats, no count of the queue).
    async fn webhook_events(&self) -> Result<Vec<Vec<String>>, StoreError>;
    /// Queues event `event_id` for every webhook that subscribes `event`, due at `at`; an
    /// event already queued for a webhook is kept once. Returns how many rows were
    /// queued.
    async fn enqueue_deliveries(
        &self,
        event: &str,
        event_id: &str,
        body: &str,
        at: u64,
    ) -> Result<usize, StoreError>;
    /// Takes up to `limit` deliveries due at `now`, oldest first, moving their `next_at`
    /// to `now + lease_ms` so that nobody else takes them meanwhile.
    async fn take_due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Records how an attempt of delivery `id` (of `webhook`) ended, at `at`.
    async fn finish_delivery(
        &self,
        id: i64,
        webhook: &str,
        attempt: Attempt,
        at: u64,
    ) -> Result<(), StoreError>;
}

/// The stored spelling of an event list: `,a,b,` (so `LIKE '%,a,%'` matches one name).
pub fn events_text(events: &[String]) -> String {
    format!(",{},", events.join(","))
}

/// Reads a stored event list back.
pub fn parse_events(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The webhook columns read back, stats included (`pending` by a subquery).
pub const WEBHOOK_COLUMNS: &str = "w.id, w.url, w.events, w.secret, w.description, w.created_by, \
     w.created_at, w.delivered, w.failed, w.last_status, w.last_error, w.last_attempt_at, \
     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook = w.id)";

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn put_webhook(&self, w: Webhook) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO webhooks (id, url, events, secret, description, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    w.id,
                    w.url,
                    events_text(&w.events),
                    w.secret,
                    w.description,
                    w.created_by,
                    w.created_at as i64
                ],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute("DELETE FROM webhook_deliveries WHERE webhook = ?1", [&id])
                .map_err(unavailable)?;
            c.execute("DELETE FROM webhooks WHERE id = ?1", [&id])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.with(|c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks w ORDER BY w.created_at, w.id"
                ))
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| {
                    Ok(Webhook {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        events: parse_events(&r.get::<_, String>(2)?),
                        secret: r.get(3)?,
                        description: r.get(4)?,
                        created_by: r.get(5)?,
                        created_at: r.get::<_, i64>(6)? as u64,
                        stats: WebhookStats {
                            delivered: r.get::<_, i64>(7)? as u64,
                            failed: r.get::<_, i64>(8)? as u64,
                            last_status: r.get::<_, Option<i64>>(9)?.map(|s| s as u16),
                            last_error: r.get(10)?,
                            last_attempt_at: r.get::<_, Option<i64>>(11)?.map(|t| t as u64),
                            pending: r.get::<_, i64>(12)? as u64,
                        },
                    })
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn webhook_events(&self) -> Result<Vec<Vec<String>>, StoreError> {
        self.with(|c| {
            let mut st = c
                .prepare_cached("SELECT events FROM webhooks")
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| Ok(parse_events(&r.get::<_, String>(0)?)))
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn enqueue_deliveries(
        &self,
        event: &str,
        event_id: &str,
        body: &str,
        at: u64,
    ) -> Result<usize, StoreError> {
        let (event, event_id, body) = (event.to_string(), event_id.to_string(), body.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO webhook_deliveries
                   (webhook, event, event_id, body, attempts, next_at, created_at)
                 SELECT id, ?1, ?2, ?3, 0, ?4, ?4 FROM webhooks
                 WHERE events LIKE '%,' || ?1 || ',%'",
                params![event, event_id, body, at as i64],
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn take_due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        // A read first: the common case (nothing due) never queues behind writes.
        let any: bool = self
            .with(move |c| {
                c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE next_at <= ?1)",
                    [now as i64],
                    |r| r.get(0),
                )
                .map_err(unavailable)
            })
            .await?;
        if !any {
            return Ok(Vec::new());
        }
        self.write(move |c| {
            let mut out = Vec::new();
            {
                let mut st = c
                    .prepare_cached(
                        "SELECT d.id, d.webhook, w.url, w.secret, d.event, d.event_id, d.body,
                                d.attempts
                         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook
                         WHERE d.next_at <= ?1 ORDER BY d.next_at, d.id LIMIT ?2",
                    )
                    .map_err(unavailable)?;
                let rows = st
                    .query_map(params![now as i64, limit as i64], |r| {
                        Ok(Delivery {
                            id: r.get(0)?,
                            webhook: r.get(1)?,
                            url: r.get(2)?,
                            secret: r.get(3)?,
                            event: r.get(4)?,
                            event_id: r.get(5)?,
                            body: r.get(6)?,
                            attempts: r.get::<_, i64>(7)? as u32,
                        })
                    })
                    .map_err(unavailable)?;
                for row in rows {
                    out.push(row.map_err(unavailable)?);
                }
            }
            for d in &out {
                c.execute(
                    "UPDATE webhook_deliveries SET next_at = ?2 WHERE id = ?1",
                    params![d.id, (now + lease_ms) as i64],
                )
                .map_err(unavailable)?;
            }
            Ok(out)
        })
        .await
    }

    async fn finish_delivery(
        &self,
        id: i64,
        webhook: &str,
        attempt: Attempt,
        at: u64,
    ) -> Result<(), StoreError> {
        let webhook = webhook.to_string();
        self.write(move |c| {
            let exists = c
                .query_row("SELECT 1 FROM webhooks WHERE id = ?1", [&webhook], |_| {
                    Ok(())
                })
                .optional()
                .map_err(unavailable)?
                .is_some();
            let (status, error) = match &attempt {
                Attempt::Delivered { status } => {
                    c.execute("DELETE FROM webhook_deliveries WHERE id = ?1", [id])
                        .map_err(unavailable)?;
                    (Some(*status), None)
                }
                Attempt::Retry {
                    status,
                    error,
                    next_at,
                } => {
                    c.execute(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = ?2
                         WHERE id = ?1",
                        params![id, *next_at as i64],
                    )
                    .map_err(unavailable)?;
                    (*status, Some(error.clone()))
                }
                Attempt::GaveUp { status, error } => {
                    c.execute("DELETE FROM webhook_deliveries WHERE id = ?1", [id])
                        .map_err(unavailable)?;
                    (*status, Some(error.clone()))
                }
            };
            if exists {
                let (delivered, failed) = match attempt {
                    Attempt::Delivered { .. } => (1, 0),
                    Attempt::Retry { .. } => (0, 0),
                    Attempt::GaveUp { .. } => (0, 1),
                };
                c.execute(
                    "UPDATE webhooks SET delivered = delivered + ?2, failed = failed + ?3,
                       last_status = ?4, last_error = ?5, last_attempt_at = ?6 WHERE id = ?1",
                    params![
                        webhook,
                        delivered,
                        failed,
                        status.map(i64::from),
                        error,
                        at as i64
                    ],
                )
                .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }
}
