//! The external classifier: when `moderation.hook_url` is set, each new comment (but an
//! admin's) is POSTed there before it is stored, and the hook decides what happens to
//! it: `allow`, `deny` (refused 422 `blocked`), `hold` or `shadow`.
//!
//! **The request.** `POST hook_url`, `Content-Type: application/json`, body
//! [`HookRequest`]; headers `X-Danmaku-Timestamp` (unix seconds) and
//! `X-Danmaku-Signature: sha256=<hex>`, the HMAC-SHA256 under `hook_secret` of
//! `"{timestamp}.{body}"`. A receiver recomputes it over the raw body, compares in
//! constant time and refuses timestamps more than a few minutes off (replays).
//!
//! **The answer.** 2xx with `{"decision": "allow" | "deny" | "hold" | "shadow"}` (other
//! fields ignored) within `hook_budget_ms`. A timeout, a connection or HTTP error, or any
//! other body is a failure: `hook_failure` applies (`allow` or `hold`) and
//! `danmaku_moderation_hook_total{outcome}` counts it. At most `hook_max_in_flight`
//! calls run at once; a post beyond that gets `hook_failure` at once (`busy`), so a slow
//! hook delays only the posts waiting on it, never other rooms or readers.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{config::HookFailure, metrics::Metrics, store::review::BlockAction};

/// What the hook decides for one comment (after the failure policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    Hold,
    Shadow,
}

impl Decision {
    /// The block-rule action with the same effect (`None` for allow).
    pub fn as_action(self) -> Option<BlockAction> {
        match self {
            Decision::Allow => None,
            Decision::Deny => Some(BlockAction::Refuse),
            Decision::Hold => Some(BlockAction::Hold),
            Decision::Shadow => Some(BlockAction::Shadow),
        }
    }
}

/// The JSON POSTed to the hook.
#[derive(Debug, Clone, Serialize)]
pub struct HookRequest<'a> {
    /// Always `danmaku.screen`, so one receiver can serve several kinds of calls.
    pub kind: &'static str,
    pub video: &'a str,
    /// Normalised, as it would be stored.
    pub text: &'a str,
    /// Video position, seconds.
    pub time: f64,
    pub mode: &'static str,
    pub audience: &'static str,
    pub user: HookUser<'a>,
    /// Unix milliseconds.
    pub sent_at: u64,
}

/// The poster, as the hook sees them.
#[derive(Debug, Clone, Serialize)]
pub struct HookUser<'a> {
    pub sub: &'a str,
    pub name: &'a str,
    pub role: &'static str,
}

/// The answer the hook gives.
#[derive(Debug, Deserialize)]
struct Answer {
    decision: String,
}

/// The hook client.
pub struct Hook {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Vec<u8>,
    budget: Duration,
    failure: HookFailure,
    in_flight: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("url", &self.url.as_str())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// The signature scheme is the webhooks' (one scheme for everything we send).
pub use crate::webhooks::signature;

impl Hook {
    /// Builds the client from the `[moderation]` settings; `None` without a `hook_url`.
    pub fn from_config(
        cfg: &crate::config::ModerationConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Hook>, String> {
        let Some(url) = &cfg.hook_url else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(url).map_err(|e| format!("moderation.hook_url: {e}"))?;
        let budget = Duration::from_millis(cfg.hook_budget_ms);
        let client = reqwest::Client::builder()
            .timeout(budget)
            .connect_timeout(budget)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("moderation hook client: {e}"))?;
        Ok(Some(Hook {
            client,
            url,
            secret: cfg.hook_secret.clone().unwrap_or_default().into_bytes(),
            budget,
            failure: cfg.hook_failure,
            in_flight: Arc::new(tokio::sync::Semaphore::new(cfg.hook_max_in_flight as usize)),
            metrics,
        }))
    }

    /// Asks the hook about one comment; every failure is turned into `hook_failure`.
    pub async fn decide(&self, req: &HookRequest<'_>) -> Decision {
        let outcome = match self.in_flight.clone().try_acquire_owned() {
            Err(_) => Err("busy"),
            Ok(_permit) => match tokio::time::timeout(self.budget, self.call(req)).await {
                Ok(r) => r,
                Err(_) => Err("timeout"),
            },
        };
        match outcome {
            Ok(d) => {
                self.metrics.hook_outcome(match d {
                    Decision::Allow => "allow",
                    Decision::Deny => "deny",
                    Decision::Hold => "hold",
                    Decision::Shadow => "shadow",
                });
                d
            }
            Err(why) => {
                self.metrics.hook_outcome(why);
                tracing::warn!(outcome = why, video = req.video, failure = ?self.failure, "moderation hook gave no answer");
                match self.failure {
                    HookFailure::Allow => Decision::Allow,
                    HookFailure::Hold => Decision::Hold,
                }
            }
        }
    }

    /// One signed call; the error is the outcome's label.
    async fn call(&self, req: &HookRequest<'_>) -> Result<Decision, &'static str> {
        let body = serde_json::to_vec(req).map_err(|_| "error")?;
        let ts = crate::model::time::now_secs();
        let resp = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("x-danmaku-timestamp", ts.to_string())
            .header("x-danmaku-signature", signature(&self.secret, ts, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| if e.is_timeout() { "timeout" } else { "error" })?;
        if !resp.status().is_success() {
            return Err("error");
        }
        // Bounded: a decision is a few bytes; a hook answering megabytes is malformed.
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| if e.is_timeout() { "timeout" } else { "error" })?;
        if bytes.len() > 64 * 1024 {
            return Err("malformed");
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|_| "malformed")?;
        match answer.decision.as_str() {
            "allow" => Ok(Decision::Allow),
            "deny" => Ok(Decision::Deny),
            "hold" => Ok(Decision::Hold),
            "shadow" => Ok(Decision::Shadow),
            _ => Err("malformed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let a = signature(b"k", 1, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64, "{a}");
        assert_ne!(a, signature(b"k", 2, b"{}"));
        assert_ne!(a, signature(b"k", 1, b"{ }"));
        assert_ne!(a, signature(b"j", 1, b"{}"));
        // RFC 4231 test case 2 shape: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
