//! HTTP errors: a status plus JSON `{code, message}`, for every failure on every route.
//!
//! Handlers return [`ApiError`], documented per endpoint in the OpenAPI spec. Failures
//! raised before a handler runs (bad JSON bodies, bad parameters, unknown routes) reach
//! [`render_error`], which gives them the same shape with a code derived from the status.

use poem::{Response, http::StatusCode};
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::auth::AuthError;
use crate::model::{Kind, Refusal};
use crate::store::StoreError;

/// The body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, for example `forbidden` or `token_expired`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// Typed API errors.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or invalid credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The caller's role may not do this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body is larger than `rest_max_body` (`payload_too_large`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The request body's `Content-Type` is missing or not the one the operation takes.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// The request is well-formed but its values are not acceptable.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many requests; retry after the given number of seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// A backing engine (store or bus) is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// Builds the JSON body.
fn body(code: &str, message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        code: code.to_string(),
        message: message.into(),
    })
}

impl ApiError {
    /// 400.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest(body(code, message))
    }
    /// 401.
    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized(body(code, message))
    }
    /// 403.
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        ApiError::Forbidden(body(code, message))
    }
    /// 404.
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        ApiError::NotFound(body(code, message))
    }
    /// 422.
    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable(body(code, message))
    }
    /// 503.
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        ApiError::Unavailable(body(code, message))
    }

    /// The `{code, message}` body, so a caller can re-code an error or log its message.
    pub fn body(&self) -> &ErrorBody {
        match self {
            ApiError::BadRequest(b)
            | ApiError::Unauthorized(b)
            | ApiError::Forbidden(b)
            | ApiError::NotFound(b)
            | ApiError::Conflict(b)
            | ApiError::PayloadTooLarge(b)
            | ApiError::UnsupportedMediaType(b)
            | ApiError::Unprocessable(b)
            | ApiError::TooManyRequests(b, _)
            | ApiError::Unavailable(b) => &b.0,
        }
    }
}

/// The HTTP status of each kind of refusal.
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Unauthorized => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Seconds for a `Retry-After` header: at least 1, rounded up.
pub fn retry_after_s(retry_after_ms: Option<u64>) -> u64 {
    retry_after_ms.unwrap_or(1000).div_ceil(1000).max(1)
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        if r.kind == Kind::Internal {
            // Never leak an internal message; the log has it.
            tracing::error!(code = r.code, message = %r.message, "internal refusal");
            return ApiError::Unavailable(body(r.code, "internal error"));
        }
        let b = body(r.code, r.message);
        match r.kind {
            Kind::BadRequest => ApiError::BadRequest(b),
            Kind::Unauthorized => ApiError::Unauthorized(b),
            Kind::Forbidden => ApiError::Forbidden(b),
            Kind::NotFound => ApiError::NotFound(b),
            Kind::Conflict => ApiError::Conflict(b),
            Kind::TooLarge => ApiError::PayloadTooLarge(b),
            Kind::Invalid => ApiError::Unprocessable(b),
            Kind::RateLimited => ApiError::TooManyRequests(b, retry_after_s(r.retry_after_ms)),
            Kind::Unavailable | Kind::Internal => ApiError::Unavailable(b),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::unauthorized(e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        ApiError::unavailable(
            "store_unavailable",
            "the store is unavailable; nothing was saved",
        )
    }
}

/// A JSON error response outside poem-openapi (WebSocket upgrade, catch-all).
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"code": code, "message": message});
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

/// A refusal as a response outside poem-openapi (the WebSocket upgrade, DPlayer): the
/// same status and `{code, message}` body as [`ApiError`], and `Retry-After` when the
/// refusal says when to retry.
pub fn refusal_response(r: &Refusal) -> Response {
    let message = if r.kind == Kind::Internal {
        "internal error"
    } else {
        &r.message
    };
    let mut resp = json_error(status_of(r.kind), r.code, message);
    if let Some(ms) = r.retry_after_ms
        && let Ok(v) = retry_after_s(Some(ms)).to_string().parse()
    {
        resp.headers_mut()
            .insert(poem::http::header::RETRY_AFTER, v);
    }
    resp
}

/// Gives every error that escaped a handler the `{code, message}` shape.
pub async fn render_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = if status.is_server_error() {
        "internal error".to_string()
    } else {
        err.to_string()
    };
    json_error(status, code, &message)
}
