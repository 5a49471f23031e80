//! The REST body cap: a middleware that refuses bodies over `limits.rest_max_body` (or
//! `limits.import_max_body` for bilibili XML imports) with 413 before a handler reads them.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{Method, StatusCode, header},
};

use super::error::json_error;

/// Body caps for REST requests: `default` everywhere, `import` for bilibili XML imports
/// (`POST /api/videos/{id}/danmaku.xml`).
#[derive(Debug, Clone, Copy)]
pub struct BodyCaps {
    pub default: usize,
    pub import: usize,
}

impl BodyCaps {
    /// The cap that applies to `path`.
    fn for_path(&self, path: &str) -> usize {
        if path.starts_with("/api/videos/") && path.ends_with("/danmaku.xml") {
            self.import
        } else {
            self.default
        }
    }
}

/// The 413 answer.
fn too_large(cap: usize) -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("request bodies are at most {cap} bytes"),
    )
}

/// Refuses bodies over the cap with 413 before a handler reads them: by `Content-Length`
/// when given, else (chunked bodies) by reading at most cap + 1 bytes. poem's own
/// `SizeLimit` wants a `Content-Length` on every request, GETs included, so it is not used.
pub async fn limit_body<E: Endpoint>(
    ep: Arc<E>,
    caps: BodyCaps,
    mut req: Request,
) -> poem::Result<Response> {
    let cap = caps.for_path(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > cap as u64 => return Ok(too_large(cap)),
        Some(_) => {}
        None if matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) => {
            match req.take_body().into_bytes_limit(cap).await {
                Ok(bytes) => req.set_body(bytes),
                Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large(cap)),
                Err(e) => return Err(e.into()),
            }
        }
        None => {}
    }
    ep.call(req).await.map(IntoResponse::into_response)
}
