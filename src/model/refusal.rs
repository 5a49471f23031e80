//! The one refusal type: why a request, an op or a post was not done.
//!
//! Domain code (access rules, comment rules, pushes, schedules) refuses with a
//! [`Refusal`]: a [`Kind`] that says what sort of refusal it is, a stable machine `code`
//! (documented in the OpenAPI spec and the AsyncAPI document), a message for people and,
//! for rate limits, when to retry. It never chooses an HTTP status: `api::error` maps the
//! kind to one, and `ws::protocol` turns the same value into an error reply frame.

use std::{borrow::Cow, fmt};

/// What sort of refusal this is. Each kind has one HTTP status (see `api::error`); on a
/// WebSocket only the `code` travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed (400).
    BadRequest,
    /// Missing or invalid credentials (401).
    Unauthorized,
    /// The caller may not do this (403).
    Forbidden,
    /// No such thing, or not one the caller may know of (404).
    NotFound,
    /// It conflicts with the current state (409).
    Conflict,
    /// Well-formed, but more than a limit allows (413): a rule list too long.
    TooLarge,
    /// Well-formed, but the values are not acceptable (422).
    Invalid,
    /// Too many, too fast; `retry_after_ms` says when to try again (429).
    RateLimited,
    /// A backing engine (store, bus) cannot do it now; retrying may work (503).
    Unavailable,
    /// A fault of ours (500).
    Internal,
}

/// A refusal: kind, stable code, message and, for rate limits, when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: Kind,
    /// Stable machine-readable code, for example `cooldown` or `unknown_channel`.
    pub code: &'static str,
    /// Human-readable explanation; never key material nor another user's data.
    pub message: Cow<'static, str>,
    /// For [`Kind::RateLimited`]: milliseconds until the next attempt may succeed.
    pub retry_after_ms: Option<u64>,
}

impl Refusal {
    /// A refusal of `kind`.
    pub fn new(kind: Kind, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Refusal {
            kind,
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// [`Kind::BadRequest`].
    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::BadRequest, code, message)
    }

    /// [`Kind::Unauthorized`].
    pub fn unauthorized(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Unauthorized, code, message)
    }

    /// [`Kind::Forbidden`].
    pub fn forbidden(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Forbidden, code, message)
    }

    /// [`Kind::NotFound`].
    pub fn not_found(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::NotFound, code, message)
    }

    /// [`Kind::Conflict`].
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Conflict, code, message)
    }

    /// [`Kind::TooLarge`].
    pub fn too_large(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::TooLarge, code, message)
    }

    /// [`Kind::Invalid`].
    pub fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Invalid, code, message)
    }

    /// [`Kind::RateLimited`], retrying after `retry_after_ms`.
    pub fn rate_limited(
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
        retry_after_ms: u64,
    ) -> Self {
        Refusal {
            retry_after_ms: Some(retry_after_ms),
            ..Self::new(Kind::RateLimited, code, message)
        }
    }

    /// [`Kind::Unavailable`].
    pub fn unavailable(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Unavailable, code, message)
    }

    /// [`Kind::Internal`].
    pub fn internal(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Internal, code, message)
    }

    /// The same refusal under another code and kind (a caller that knows better what the
    /// refusal means in its context, say a schedule target that is not valid).
    pub fn recoded(self, kind: Kind, code: &'static str) -> Self {
        Refusal { kind, code, ..self }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}
