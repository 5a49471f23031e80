//! Request authentication for the REST API: bearer JWTs and `X-Api-Key`.
//!
//! The extractors are written by hand (not derived) so that every failure keeps its
//! precise code (`token_expired`, `bad_api_key`, ...) and comes out as 401, whichever of
//! the two schemes the caller tried.

use std::sync::Arc;

use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::{
    auth::{AuthError, MAX_TOKEN_LEN},
    model::{Identity, Role},
    state::State,
};

/// Security scheme names, as they appear in the spec.
const BEARER: &str = "bearer";
const API_KEY: &str = "apiKey";
const API_KEY_HEADER: &str = "X-Api-Key";

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A verified JWT.
    User(Arc<Identity>),
    /// A server-to-server call with a configured API key (admin rights).
    Service,
}

impl Caller {
    /// The effective role.
    pub fn role(&self) -> Role {
        match self {
            Caller::User(id) => id.role,
            Caller::Service => Role::Admin,
        }
    }

    /// The identity, when the caller is a user.
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        match self {
            Caller::User(id) => Some(id),
            Caller::Service => None,
        }
    }

    /// A label for logs.
    pub fn label(&self) -> String {
        match self {
            Caller::User(id) => format!("{}({})", id.sub, id.role),
            Caller::Service => "api-key".into(),
        }
    }
}

/// Registers both schemes in the spec.
fn register_schemes(registry: &mut Registry) {
    registry.create_security_scheme(
        BEARER,
        MetaSecurityScheme {
            ty: "http",
            description: Some(
                "A JWT signed with the configured key; its `role` claim decides access.",
            ),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
    registry.create_security_scheme(
        API_KEY,
        MetaSecurityScheme {
            ty: "apiKey",
            description: Some("A server-to-server key from `api_keys`; grants admin rights."),
            name: Some(API_KEY_HEADER),
            key_in: Some("header"),
            scheme: None,
            bearer_format: None,
            flows: None,
            openid_connect_url: None,
        },
    );
}

/// Resolves the caller from `X-Api-Key` or `Authorization: Bearer`.
/// `Ok(None)` means no credentials were presented. When both are sent, both must be
/// valid (the key decides the identity): a bad credential is never ignored because
/// another one happened to pass.
async fn resolve(req: &Request) -> Result<Option<Caller>, ApiError> {
    let state = req
        .data::<Arc<State>>()
        .ok_or_else(|| ApiError::unavailable("internal", "server state missing"))?;
    let bearer = bearer(state, req).await?;
    if let Some(key) = req.headers().get(API_KEY_HEADER) {
        let key = key.as_bytes();
        let ok = state
            .cfg
            .auth
            .api_keys
            .iter()
            .fold(false, |acc, k| acc | bool::from(k.as_bytes().ct_eq(key)));
        return if ok {
            Ok(Some(Caller::Service))
        } else {
            state.metrics.auth_failure(AuthError::BadSignature);
            Err(ApiError::unauthorized(
                "bad_api_key",
                "the API key is not accepted",
            ))
        };
    }
    Ok(bearer.map(Caller::User))
}

/// Verifies `Authorization: Bearer`, if present.
async fn bearer(state: &State, req: &Request) -> Result<Option<Arc<Identity>>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let fail = |e: AuthError| {
        state.metrics.auth_failure(e);
        ApiError::from(e)
    };
    if value.len() > MAX_TOKEN_LEN + 16 {
        return Err(fail(AuthError::TokenTooLarge));
    }
    let value = value.to_str().map_err(|_| fail(AuthError::Malformed))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| fail(AuthError::Malformed))?
        .trim();
    let id = state.verifier.verify(token).await.map_err(fail)?;
    Ok(Some(id))
}

/// Declares the manual `ApiExtractor` boilerplate shared by the three extractors.
macro_rules! security_extractor {
    ($ty:ident, $fallback:expr, |$req:ident| $body:expr) => {
        impl<'a> ApiExtractor<'a> for $ty {
            const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut Registry) {
                register_schemes(registry);
            }

            fn security_schemes() -> Vec<&'static str> {
                vec![BEARER, API_KEY]
            }

            fn has_security_fallback() -> bool {
                $fallback
            }

            async fn from_request(
                $req: &'a Request,
                _body: &mut RequestBody,
                _opts: ExtractParamOptions<Self::ParamType>,
            ) -> poem::Result<Self> {
                $body.map_err(poem::Error::from)
            }
        }
    };
}

/// Any authenticated caller (a JWT of any role, or an API key).
pub struct Authed(pub Caller);

security_extractor!(Authed, false, |req| async {
    match resolve(req).await? {
        Some(c) => Ok(Authed(c)),
        None => Err(ApiError::unauthorized(
            "missing_token",
            "send Authorization: Bearer <jwt> or X-Api-Key",
        )),
    }
}
.await);

/// An admin: an admin-role JWT or an API key.
pub struct Admin(pub Caller);

security_extractor!(Admin, false, |req| async {
    match resolve(req).await? {
        Some(c) if c.role() == Role::Admin => Ok(Admin(c)),
        Some(c) => Err(ApiError::forbidden(
            "forbidden",
            format!("this operation is for admins; you are {}", c.role()),
        )),
        None => Err(ApiError::unauthorized(
            "missing_token",
            "send an admin Authorization: Bearer <jwt> or X-Api-Key",
        )),
    }
}
.await);

/// An optional caller: `None` is a guest. Invalid credentials are still refused.
pub struct MaybeAuthed(pub Option<Caller>);

security_extractor!(MaybeAuthed, true, |req| async {
    resolve(req).await.map(MaybeAuthed)
}
.await);

/// Finds the token of a request: `Authorization: Bearer` or `?access_token=`. Both may be
/// given only if they agree.
pub fn request_token(req: &Request) -> Result<Option<String>, AuthError> {
    let header = match req.headers().get(header::AUTHORIZATION) {
        Some(v) => {
            if v.len() > MAX_TOKEN_LEN + 16 {
                return Err(AuthError::TokenTooLarge);
            }
            let v = v.to_str().map_err(|_| AuthError::Malformed)?;
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or(AuthError::Malformed)?;
            Some(token.trim().to_string())
        }
        None => None,
    };
    let query = match req.uri().query() {
        Some(q) if q.len() > 4 * MAX_TOKEN_LEN => return Err(AuthError::TokenTooLarge),
        Some(q) => q
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "access_token")
            .map(|(_, v)| percent_decode(v)),
        None => None,
    };
    match (header, query) {
        (Some(h), Some(q)) if h != q => Err(AuthError::Conflict),
        (Some(h), _) => Ok(Some(h)),
        (None, q) => Ok(q),
    }
}

/// Minimal percent-decoding for the token query parameter (JWTs are URL-safe already,
/// but clients may still escape them).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
