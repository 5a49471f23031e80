//! `/api/demo/token` (only with `--demo`) and `/api/me`.

use std::{sync::Arc, time::Duration};

use poem::web::Data;
use poem_openapi::{Object, OpenApi, payload::Json};

use super::{ApiTags, auth::Authed, error::ApiError};
use crate::{model::Role, state::State};

/// Lifetime of demo tokens.
const DEMO_TTL: Duration = Duration::from_secs(12 * 3600);

/// Identity endpoints.
pub struct AuthApi;

/// Body of `POST /api/demo/token`.
#[derive(Debug, Object)]
pub struct DemoTokenRequest {
    /// User id, 1 to 64 characters of letters, digits and `_ - . @`.
    pub sub: String,
    /// `free`, `member` or `admin`.
    pub role: Role,
    /// Display name.
    pub name: Option<String>,
}

/// A minted token.
#[derive(Debug, Object)]
pub struct TokenReply {
    pub token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// The caller as the server sees it.
#[derive(Debug, Object)]
pub struct Me {
    /// Absent for API-key callers.
    #[oai(skip_serializing_if_is_none)]
    pub sub: Option<String>,
    /// Display name; absent for API-key callers and tokens without one.
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    pub role: Role,
    /// Unix seconds; absent for API-key callers.
    #[oai(skip_serializing_if_is_none)]
    pub exp: Option<u64>,
    /// The videos this caller moderates as a room moderator: stored grants and the
    /// token's `mod` claim (admins moderate every video and need no list).
    pub moderates: Vec<String>,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Mint a token for anyone (demo mode only; 404 `demo_disabled` otherwise).
    #[oai(path = "/demo/token", method = "post")]
    async fn demo_token(
        &self,
        state: Data<&Arc<State>>,
        body: Json<DemoTokenRequest>,
    ) -> Result<Json<TokenReply>, ApiError> {
        if !state.cfg.auth.demo {
            return Err(ApiError::not_found(
                "demo_disabled",
                "demo tokens exist only when the server runs with --demo",
            ));
        }
        let valid_sub = !body.sub.is_empty()
            && body.sub.len() <= 64
            && body
                .sub
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.@".contains(&b));
        if !valid_sub {
            return Err(ApiError::unprocessable(
                "invalid_sub",
                "sub is 1 to 64 characters of letters, digits and _ - . @",
            ));
        }
        if body.role == Role::Guest {
            return Err(ApiError::unprocessable(
                "invalid_role",
                "guests have no token: connect without one",
            ));
        }
        let name = body
            .name
            .as_deref()
            .map(|n| n.chars().take(64).collect::<String>());
        let signer = state
            .signer
            .as_ref()
            .ok_or_else(|| ApiError::unavailable("no_signer", "this server cannot mint tokens"))?;
        let token = signer
            .mint(&body.sub, body.role, name.as_deref(), DEMO_TTL)
            .map_err(|e| ApiError::unavailable("no_signer", e))?;
        tracing::info!(sub = %body.sub, role = %body.role, "demo token minted");
        Ok(Json(TokenReply {
            token,
            expires_at: crate::model::time::now_secs() + DEMO_TTL.as_secs(),
        }))
    }

    /// Who am I: the identity the server derives from the credentials.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, state: Data<&Arc<State>>, auth: Authed) -> Result<Json<Me>, ApiError> {
        // The error type documents the 401 that the `Authed` extractor answers.
        let c = auth.0;
        let id = c.identity();
        Ok(Json(Me {
            sub: id.map(|i| i.sub.to_string()),
            name: id.map(|i| i.name.to_string()),
            role: c.role(),
            exp: id.and_then(|i| i.exp),
            moderates: id
                .map(|i| state.moderation.moderated_by(i))
                .unwrap_or_default(),
        }))
    }
}
