//! The delivery worker: one per node, taking due deliveries from the store's queue under
//! a lease and POSTing them, signed.
//!
//! **A delivery.** `POST url`, `Content-Type: application/json`, the body
//! `{id, event, at, data}`; headers `X-Danmaku-Event` (the event name),
//! `X-Danmaku-Delivery` (the event id, the same on every attempt: the receiver's
//! idempotency key), `X-Danmaku-Timestamp` (unix seconds of this attempt) and
//! `X-Danmaku-Signature: sha256=<hex>`, the HMAC-SHA256 under the webhook's secret of
//! `"{timestamp}.{body}"` (the moderation hook's scheme). Any 2xx within
//! [`ATTEMPT_TIMEOUT`] delivers it; anything else is retried (see the module above).

use std::{sync::Arc, time::Duration};

use super::{Service, signature};
use crate::{
    model::time::{now_millis, now_secs},
    shutdown::Shutdown,
    store::webhooks::{Attempt, Delivery},
};

/// Attempts before a delivery is dropped (and counted as failed): with the backoff
/// below, about 87 minutes of retries.
pub const MAX_ATTEMPTS: u32 = 24;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a taken delivery stays taken (past every attempt's timeout), so a worker
/// that dies mid-attempt delays it by this much at most.
const LEASE: Duration = Duration::from_secs(30);

/// Deliveries taken per round trip.
const BATCH: usize = 32;

/// How often the worker looks for due retries (and, on a cluster, what other nodes
/// queued) when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);

/// The wait before attempt `n + 1` after `n` failed ones: `base`, twice that, four
/// times, … at most [`MAX_BACKOFF`] (`base` is `moderation.webhook_retry_base_ms`).
pub fn backoff(failed: u32, base: Duration) -> Duration {
    base.saturating_mul(1u32 << failed.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Runs the worker until shutdown.
pub async fn run(svc: Arc<Service>, mut shutdown: Shutdown) {
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client not built: no deliveries");
            return;
        }
    };
    loop {
        let taken = match svc
            .store
            .take_due(now_millis(), LEASE.as_millis() as u64, BATCH)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "webhook queue unreadable");
                Vec::new()
            }
        };
        let full = taken.len() == BATCH;
        let attempts = taken.into_iter().map(|d| attempt(&svc, &client, d));
        futures_util::future::join_all(attempts).await;
        if full {
            continue;
        }
        tokio::select! {
            _ = svc.queued.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.started() => return,
        }
    }
}

/// One attempt of one delivery, and its outcome recorded.
async fn attempt(svc: &Service, client: &reqwest::Client, d: Delivery) {
    let ts = now_secs();
    let sent = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("x-danmaku-event", &d.event)
        .header("x-danmaku-delivery", &d.event_id)
        .header("x-danmaku-timestamp", ts.to_string())
        .header(
            "x-danmaku-signature",
            signature(d.secret.as_bytes(), ts, d.body.as_bytes()),
        )
        .body(d.body.clone())
        .send()
        .await;
    let (status, error) = match sent {
        Ok(resp) if resp.status().is_success() => (Some(resp.status().as_u16()), None),
        Ok(resp) => (
            Some(resp.status().as_u16()),
            Some(format!("HTTP {}", resp.status().as_u16())),
        ),
        Err(e) => (
            None,
            Some(if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "connection failed".to_string()
            } else {
                "request failed".to_string()
            }),
        ),
    };
    let failed = d.attempts + 1;
    let outcome = match (status, error) {
        (Some(status), None) => Attempt::Delivered { status },
        (status, Some(error)) if failed >= MAX_ATTEMPTS => {
            tracing::warn!(webhook = %d.webhook, event = %d.event, id = %d.event_id, error, "webhook delivery given up");
            Attempt::GaveUp { status, error }
        }
        (status, Some(error)) => {
            let next_at = now_millis() + backoff(failed, svc.retry_base).as_millis() as u64;
            tracing::debug!(webhook = %d.webhook, event = %d.event, attempt = failed, error, "webhook delivery failed; retrying");
            Attempt::Retry {
                status,
                error,
                next_at,
            }
        }
        (None, None) => unreachable!("an attempt has a status or an error"),
    };
    if let Err(e) = svc
        .store
        .finish_delivery(d.id, &d.webhook, outcome, now_millis())
        .await
    {
        // The lease runs out and the delivery is attempted again: at least once.
        tracing::warn!(webhook = %d.webhook, error = %e, "webhook outcome not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_five_minutes_and_the_cap_spans_over_an_hour() {
        let s = Duration::from_secs(1);
        assert_eq!(backoff(1, s), Duration::from_secs(1));
        assert_eq!(backoff(2, s), Duration::from_secs(2));
        assert_eq!(backoff(5, s), Duration::from_secs(16));
        assert_eq!(backoff(10, s), MAX_BACKOFF);
        assert_eq!(backoff(1000, s), MAX_BACKOFF);
        let total: Duration = (1..MAX_ATTEMPTS).map(|n| backoff(n, s)).sum();
        assert!(total > Duration::from_secs(3600), "{total:?}");
    }
}
