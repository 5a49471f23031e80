//! `/api/webhooks`: registering, listing and removing outgoing webhooks (admins). Thin:
//! the rules are in [`crate::webhooks`].
//!
//! Refusals: 401 without credentials, 403 `forbidden` for non-admins, 404
//! `unknown_webhook`, 409 `too_many_webhooks`, 422 `invalid_url`, `invalid_events`,
//! `invalid_secret`, `invalid_description`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json, types::Example};

use super::{ApiTags, auth::Admin, error::ApiError, moderation::Removed, videos::poster};
use crate::{state::State, store::webhooks::Webhook, webhooks::NewWebhook};

/// Webhook endpoints.
pub struct WebhooksApi;

/// Body of `POST /api/webhooks`.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PostWebhook {
    /// Where deliveries are POSTed: an http or https URL (at most 2048 bytes).
    pub url: String,
    /// Some of `danmaku.posted`, `danmaku.deleted`, `danmaku.held`, `user.muted`,
    /// `room.occupied`, `room.vacated`.
    pub events: Vec<String>,
    /// The HMAC-SHA256 key deliveries are signed with (16 to 256 characters); never
    /// returned.
    pub secret: String,
    /// What it is for (at most 200 characters).
    #[oai(nullable)]
    pub description: Option<String>,
}

impl Example for PostWebhook {
    fn example() -> Self {
        PostWebhook {
            url: "https://backend.example/hooks/danmaku".into(),
            events: vec!["danmaku.held".into(), "user.muted".into()],
            secret: "change-me-to-32-random-characters".into(),
            description: Some("moderation queue alerts".into()),
        }
    }
}

/// A registered webhook and how its deliveries went.
#[derive(Debug, Object)]
pub struct WebhookInfo {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    #[oai(nullable)]
    pub description: Option<String>,
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Deliveries a 2xx answered.
    pub delivered: u64,
    /// Deliveries given up after the last retry.
    pub failed: u64,
    /// Deliveries waiting (first attempts and retries).
    pub pending: u64,
    /// The HTTP status of the last attempt, if it got one.
    #[oai(nullable)]
    pub last_status: Option<u16>,
    #[oai(nullable)]
    pub last_error: Option<String>,
    /// Unix milliseconds.
    #[oai(nullable)]
    pub last_attempt_at: Option<u64>,
}

impl From<Webhook> for WebhookInfo {
    fn from(w: Webhook) -> Self {
        WebhookInfo {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            created_by: w.created_by,
            created_at: w.created_at,
            delivered: w.stats.delivered,
            failed: w.stats.failed,
            pending: w.stats.pending,
            last_status: w.stats.last_status,
            last_error: w.stats.last_error,
            last_attempt_at: w.stats.last_attempt_at,
        }
    }
}

/// Reply of `POST /api/webhooks`.
#[derive(ApiResponse)]
pub enum Created {
    /// Registered: events from now on are delivered.
    #[oai(status = 201)]
    Created(Json<WebhookInfo>),
}

#[OpenApi(tag = "ApiTags::Moderation")]
impl WebhooksApi {
    /// Register a webhook (admin). Each event it subscribes is POSTed to `url` as
    /// `{id, event, at, data}`, signed (`X-Danmaku-Signature: sha256=` HMAC-SHA256 of
    /// `"{X-Danmaku-Timestamp}.{body}"` under `secret`), with `X-Danmaku-Delivery` = the
    /// event id on every attempt. Non-2xx answers and timeouts (10 s) are retried with
    /// backoff (1 s doubling to 5 min) for 24 attempts, about 87 minutes, from a queue
    /// kept in the store; each event is queued once per cluster.
    #[oai(path = "/webhooks", method = "post")]
    async fn create(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        body: Json<PostWebhook>,
    ) -> Result<Created, ApiError> {
        let b = body.0;
        let hook = state
            .webhooks
            .create(
                &poster(&auth.0),
                NewWebhook {
                    url: b.url,
                    events: b.events,
                    secret: b.secret,
                    description: b.description,
                },
            )
            .await?;
        Ok(Created::Created(Json(hook.into())))
    }

    /// Every webhook with its delivery stats (admin).
    #[oai(path = "/webhooks", method = "get")]
    async fn list(
        &self,
        state: Data<&Arc<State>>,
        _auth: Admin,
    ) -> Result<Json<Vec<WebhookInfo>>, ApiError> {
        Ok(Json(
            state
                .webhooks
                .list()
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }

    /// One webhook with its delivery stats (admin).
    #[oai(path = "/webhooks/:id", method = "get")]
    async fn get(
        &self,
        state: Data<&Arc<State>>,
        _auth: Admin,
        id: Path<String>,
    ) -> Result<Json<WebhookInfo>, ApiError> {
        Ok(Json(state.webhooks.get(&id).await?.into()))
    }

    /// Remove a webhook and the deliveries it still had queued (admin).
    #[oai(path = "/webhooks/:id", method = "delete")]
    async fn delete(
        &self,
        state: Data<&Arc<State>>,
        auth: Admin,
        id: Path<String>,
    ) -> Result<Removed, ApiError> {
        state.webhooks.delete(&poster(&auth.0), &id).await?;
        Ok(Removed::Removed)
    }
}
