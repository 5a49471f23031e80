//! Signed outgoing webhooks: registered over REST (`/api/webhooks`, admins), told of
//! events by the services above (`danmaku`: `danmaku.posted`, `danmaku.deleted`,
//! `danmaku.held`; `moderation`: `user.muted`; `presence`: `room.occupied`,
//! `room.vacated`), and delivered from a queue kept in the store ([`deliver`]).
//!
//! **Once per cluster.** An event is queued by the one node where it happened (the node
//! that stored the comment or the mute; for rooms, the node that announced the presence
//! change, which the bus makes one per change), once per subscribed webhook: the queue
//! is unique on (webhook, event id). Every node runs a delivery worker; a worker takes
//! due rows under a lease, so each attempt is made by one node.
//!
//! **At least once, with one id.** Each event has an id (`X-Danmaku-Delivery`, also the
//! body's `id`) that every attempt repeats: a receiver that saw it already drops it.
//! Failed attempts (no answer within 10 s, a connection error, any non-2xx) are retried
//! after 1 s, 2 s, 4 s, … (at most 5 minutes apart), up to [`deliver::MAX_ATTEMPTS`]
//! attempts (about 87 minutes of retries): a receiver down for less than that loses
//! nothing.
//! Then the delivery is dropped and counted as failed. The queue survives restarts.
//!
//! **Cost when unused.** A mirror of which events some webhook subscribes (re-read with
//! moderation's sync on a cluster) lets an event nobody subscribes cost nothing: no
//! store write on the posting path.
//!
//! One limit: an event is queued right after the change it reports committed, in a
//! write of its own; a node that dies between the two loses that one event.

pub mod deliver;

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::Notify;

use crate::{
    model::{Identity, Refusal, time::now_millis},
    store::{
        Store, StoreError,
        webhooks::{Webhook, WebhookStats},
    },
};

/// The events a webhook may subscribe.
pub const EVENTS: [&str; 6] = [
    "danmaku.posted",
    "danmaku.deleted",
    "danmaku.held",
    "user.muted",
    "room.occupied",
    "room.vacated",
];

/// Most webhooks registered.
pub const MAX_WEBHOOKS: usize = 100;

/// Longest URL, in bytes.
pub const MAX_URL: usize = 2048;

/// Shortest and longest secret, in characters.
pub const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 200;

/// A webhook to register.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub description: Option<String>,
}

/// The body every delivery carries.
#[derive(Debug, Serialize)]
struct Envelope<'a> {
    /// The event id: the same on every attempt.
    id: &'a str,
    event: &'a str,
    /// Unix milliseconds, when it happened.
    at: u64,
    data: &'a serde_json::Value,
}

/// Webhooks: registrations, the events they want, and the queue.
pub struct Service {
    store: Arc<dyn Store>,
    /// The events some webhook subscribes (refreshed on every change and sync).
    wanted: ArcSwap<Vec<String>>,
    /// Wakes the local worker when something was queued.
    queued: Notify,
    /// The first retry's wait (`moderation.webhook_retry_base_ms`).
    retry_base: std::time::Duration,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("webhooks::Service").finish_non_exhaustive()
    }
}

/// The store failure of a webhook operation, as a refusal.
fn unavailable(e: StoreError) -> Refusal {
    tracing::error!(error = %e, "webhook store operation failed");
    Refusal::unavailable("store_unavailable", "webhooks are unavailable; retry")
}

/// The `X-Danmaku-Signature` value of `body` sent at `timestamp` (unix seconds): the
/// HMAC-SHA256 under `secret` of `"{timestamp}.{body}"`, hex, prefixed `sha256=`. Webhook
/// deliveries and the moderation hook are signed alike.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A random id: 128 bits, hex.
fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Checks a registration (422 with a code naming the field).
fn check(w: &NewWebhook) -> Result<Vec<String>, Refusal> {
    let url = reqwest::Url::parse(&w.url).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https") && u.host().is_some() && w.url.len() <= MAX_URL
    });
    if url.is_none() {
        return Err(Refusal::invalid(
            "invalid_url",
            format!("a webhook URL is an http or https URL of at most {MAX_URL} bytes"),
        ));
    }
    let mut events = w.events.clone();
    events.sort();
    events.dedup();
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(Refusal::invalid(
            "invalid_events",
            format!("events are some of {}", EVENTS.join(", ")),
        ));
    }
    if !SECRET_LEN.contains(&w.secret.chars().count()) {
        return Err(Refusal::invalid(
            "invalid_secret",
            format!(
                "a secret has {} to {} characters",
                SECRET_LEN.start(),
                SECRET_LEN.end()
            ),
        ));
    }
    if w.description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control))
    {
        return Err(Refusal::invalid(
            "invalid_description",
            format!("a description has at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(events)
}

impl Service {
    /// Builds the service with the subscriptions in the store.
    pub async fn new(
        store: Arc<dyn Store>,
        retry_base: std::time::Duration,
    ) -> Result<Service, String> {
        let svc = Service {
            store,
            wanted: ArcSwap::from_pointee(Vec::new()),
            queued: Notify::new(),
            retry_base,
        };
        svc.sync().await.map_err(|e| e.to_string())?;
        Ok(svc)
    }

    /// Re-reads which events are subscribed (startup, after each change, and with
    /// moderation's sync on a cluster).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let hooks = self.store.webhook_events().await?;
        let mut wanted: Vec<String> = hooks.into_iter().flatten().collect();
        wanted.sort();
        wanted.dedup();
        self.wanted.store(Arc::new(wanted));
        Ok(())
    }

    /// Registers a webhook (the caller is an admin: `api` checks).
    pub async fn create(&self, who: &Identity, w: NewWebhook) -> Result<Webhook, Refusal> {
        let events = check(&w)?;
        let existing = self.store.list_webhooks().await.map_err(unavailable)?;
        if existing.len() >= MAX_WEBHOOKS {
            return Err(Refusal::conflict(
                "too_many_webhooks",
                format!("at most {MAX_WEBHOOKS} webhooks; delete one first"),
            ));
        }
        let hook = Webhook {
            id: format!("wh_{}", &random_id()[..16]),
            url: w.url,
            events,
            secret: w.secret,
            description: w.description,
            created_by: who.sub.to_string(),
            created_at: now_millis(),
            stats: WebhookStats::default(),
        };
        self.store
            .put_webhook(hook.clone())
            .await
            .map_err(unavailable)?;
        self.sync().await.map_err(unavailable)?;
        tracing::info!(id = %hook.id, url = %hook.url, events = ?hook.events, by = %who.sub, "webhook registered");
        Ok(hook)
    }

    /// Every webhook with its delivery stats.
    pub async fn list(&self) -> Result<Vec<Webhook>, Refusal> {
        self.store.list_webhooks().await.map_err(unavailable)
    }

    /// One webhook; 404 `unknown_webhook`.
    pub async fn get(&self, id: &str) -> Result<Webhook, Refusal> {
        self.list()
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| Refusal::not_found("unknown_webhook", format!("no webhook {id}")))
    }

    /// Removes a webhook and what it had queued; 404 `unknown_webhook`.
    pub async fn delete(&self, who: &Identity, id: &str) -> Result<(), Refusal> {
        if !self.store.delete_webhook(id).await.map_err(unavailable)? {
            return Err(Refusal::not_found(
                "unknown_webhook",
                format!("no webhook {id}"),
            ));
        }
        self.sync().await.map_err(unavailable)?;
        tracing::info!(id, by = %who.sub, "webhook deleted");
        Ok(())
    }

    /// Whether some webhook subscribes `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.wanted.load().iter().any(|e| e == event)
    }

    /// Queues `event` with `data` for every webhook that subscribes it (nothing when
    /// none does). A failure to queue is logged: the change it reports is stored.
    pub async fn emit(&self, event: &'static str, data: serde_json::Value) {
        if !self.wants(event) {
            return;
        }
        let id = random_id();
        let at = now_millis();
        let body = match serde_json::to_string(&Envelope {
            id: &id,
            event,
            at,
            data: &data,
        }) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(event, error = %e, "webhook body not encoded");
                return;
            }
        };
        match self.store.enqueue_deliveries(event, &id, &body, at).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(event, id, webhooks = n, "webhook event queued");
                self.queued.notify_one();
            }
            Err(e) => tracing::error!(event, error = %e, "webhook event not queued"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str, events: &[&str], secret: &str) -> NewWebhook {
        NewWebhook {
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            secret: secret.into(),
            description: None,
        }
    }

    #[test]
    fn registrations_are_checked_field_by_field() {
        let secret = "s".repeat(16);
        assert_eq!(
            check(&hook(
                "https://x.test/h",
                &["user.muted", "danmaku.posted", "user.muted"],
                &secret
            ))
            .unwrap(),
            ["danmaku.posted", "user.muted"]
        );
        for (h, code) in [
            (
                hook("ftp://x.test/h", &["user.muted"], &secret),
                "invalid_url",
            ),
            (hook("not a url", &["user.muted"], &secret), "invalid_url"),
            (hook("http://x.test/h", &[], &secret), "invalid_events"),
            (
                hook("http://x.test/h", &["user.banned"], &secret),
                "invalid_events",
            ),
            (
                hook("http://x.test/h", &["user.muted"], "short"),
                "invalid_secret",
            ),
        ] {
            assert_eq!(check(&h).unwrap_err().code, code);
        }
    }
}
