//! Identity: JWT verification (with a moka cache), token minting, and the role model.
//!
//! The accepted algorithm is pinned by `[auth] alg`
//! ([`AuthConfig::alg`](crate::config::AuthConfig::alg)); the token header can only make
//! verification fail, never choose the key or the algorithm. Errors carry a stable
//! machine code and a message that never reveals key material.

use std::{fmt, path::Path, sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use moka::{Expiry, future::Cache};
use serde::{Deserialize, Serialize};

use crate::{
    config::{Config, JwtAlg},
    model::{Identity, Role, channel::is_video_id, time::now_secs},
};

/// Tokens longer than this are refused before any parsing (header bombs, memory abuse).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Most video ids a token's `mod` claim may list. A room moderator of more videos is
/// granted in the store (`PUT /api/videos/{id}/moderators/{sub}`); the cap keeps a cached
/// identity small and the per-check scan short.
pub const MAX_MOD_CLAIM: usize = 100;

/// Why a token was refused. Each variant has a stable `code()` used in HTTP and WS errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a token is required")]
    MissingToken,
    #[error("the token is larger than 8 KiB")]
    TokenTooLarge,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token signature or algorithm is not accepted")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token issuer is not accepted")]
    BadIssuer,
    #[error("the token audience is not accepted")]
    BadAudience,
    #[error("the token has no sub claim")]
    MissingSub,
    #[error("the token has no valid role claim (free, member or admin)")]
    BadRole,
    #[error("the header and query tokens differ")]
    Conflict,
    #[error("the token's mod claim is not a list of at most 100 video ids")]
    BadModClaim,
}

impl AuthError {
    /// Machine-readable code for clients.
    pub fn code(self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::TokenTooLarge => "token_too_large",
            AuthError::Malformed => "invalid_token",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::BadIssuer => "bad_issuer",
            AuthError::BadAudience => "bad_audience",
            AuthError::MissingSub => "missing_sub",
            AuthError::BadRole => "invalid_role",
            AuthError::Conflict => "token_conflict",
            AuthError::BadModClaim => "invalid_mod_claim",
        }
    }
}

/// The claims we read. Everything optional so that each missing piece gets its own code.
#[derive(Debug, Deserialize)]
struct RawClaims {
    sub: Option<String>,
    role: Option<String>,
    name: Option<String>,
    exp: u64,
    /// Video ids this user moderates (see [`mod_claim`]); read loosely so that a bad
    /// value gets its own code instead of `invalid_token`.
    #[serde(rename = "mod", default)]
    moderates: Option<serde_json::Value>,
}

/// Reads the `mod` claim: absent or `null` is no grant; otherwise an array of at most
/// [`MAX_MOD_CLAIM`] video ids (duplicates kept once). Anything else refuses the whole
/// token (`invalid_mod_claim`): a token that says something we cannot read grants nothing.
fn mod_claim(v: Option<serde_json::Value>) -> Result<Arc<[Arc<str>]>, AuthError> {
    let items = match v {
        None | Some(serde_json::Value::Null) => return Ok(Arc::default()),
        Some(serde_json::Value::Array(items)) if items.len() <= MAX_MOD_CLAIM => items,
        Some(_) => return Err(AuthError::BadModClaim),
    };
    let mut out: Vec<Arc<str>> = Vec::with_capacity(items.len());
    for item in items {
        match item {
            serde_json::Value::String(id) if is_video_id(&id) => {
                if !out.iter().any(|v| **v == *id) {
                    out.push(Arc::from(id));
                }
            }
            _ => return Err(AuthError::BadModClaim),
        }
    }
    Ok(out.into())
}

/// The claims we mint.
#[derive(Debug, Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(rename = "mod", skip_serializing_if = "<[_]>::is_empty")]
    moderates: &'a [String],
}

/// Expires each cached identity when its token does.
struct ExpireAtExp;

impl Expiry<Arc<str>, Arc<Identity>> for ExpireAtExp {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Arc<Identity>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let now = now_secs();
        Some(Duration::from_secs(
            value.exp.unwrap_or(now).saturating_sub(now),
        ))
    }
}

/// Verifies tokens with the configured key and algorithm, caching successes until `exp`.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    cache: Cache<Arc<str>, Arc<Identity>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// Maps our pinned algorithm onto jsonwebtoken's.
fn algorithm(alg: JwtAlg) -> Algorithm {
    match alg {
        JwtAlg::HS256 => Algorithm::HS256,
        JwtAlg::RS256 => Algorithm::RS256,
        JwtAlg::ES256 => Algorithm::ES256,
        JwtAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// Key material resolved from config: the HS256 secret (possibly generated) or PEM files.
#[derive(Clone)]
pub struct Keys {
    alg: JwtAlg,
    secret: Option<Vec<u8>>,
    public_pem: Option<Vec<u8>>,
    private_pem: Option<Vec<u8>>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_s: u64,
}

impl Keys {
    /// Loads the keys. For HS256 without a configured secret, reads or creates
    /// `data_dir/jwt-secret` (mode 0600) so that tokens survive restarts.
    pub fn load(cfg: &Config) -> Result<Keys, String> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| format!("cannot read key file {}: {e}", p.display()))
        };
        let secret = match (cfg.auth.alg, &cfg.auth.secret) {
            (JwtAlg::HS256, Some(s)) => Some(s.as_bytes().to_vec()),
            (JwtAlg::HS256, None) => Some(load_or_create_secret(&cfg.server.data_dir)?),
            _ => None,
        };
        Ok(Keys {
            alg: cfg.auth.alg,
            secret,
            public_pem: cfg.auth.public_key.as_deref().map(read).transpose()?,
            private_pem: cfg.auth.private_key.as_deref().map(read).transpose()?,
            issuer: cfg.auth.issuer.clone(),
            audience: cfg.auth.audience.clone(),
            leeway_s: cfg.auth.leeway_s,
        })
    }

    /// Builds the verifier for the pinned algorithm.
    pub fn verifier(&self) -> Result<Verifier, String> {
        let key = match self.alg {
            JwtAlg::HS256 => {
                DecodingKey::from_secret(self.secret.as_deref().ok_or("missing HS256 secret")?)
            }
            alg => {
                let pem = self.public_pem.as_deref().ok_or("missing jwt_public_key")?;
                match alg {
                    JwtAlg::RS256 => DecodingKey::from_rsa_pem(pem),
                    JwtAlg::ES256 => DecodingKey::from_ec_pem(pem),
                    _ => DecodingKey::from_ed_pem(pem),
                }
                .map_err(|e| format!("invalid jwt_public_key: {e}"))?
            }
        };
        let mut validation = Validation::new(algorithm(self.alg));
        validation.leeway = self.leeway_s;
        validation.validate_nbf = true;
        validation.validate_aud = self.audience.is_some();
        if let Some(aud) = &self.audience {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let cache = Cache::builder()
            .max_capacity(64 * 1024 * 1024)
            .weigher(|k: &Arc<str>, _v: &Arc<Identity>| k.len() as u32 + 128)
            .expire_after(ExpireAtExp)
            .build();
        Ok(Verifier {
            key,
            validation,
            cache,
        })
    }

    /// Builds the signer, used by `danmaku token` and demo mode.
    pub fn signer(&self) -> Result<Signer, String> {
        let key = match self.alg {
            JwtAlg::HS256 => {
                EncodingKey::from_secret(self.secret.as_deref().ok_or("missing HS256 secret")?)
            }
            alg => {
                let pem = self.private_pem.as_deref().ok_or(
                    "minting tokens with an asymmetric algorithm needs jwt_private_key (PEM)",
                )?;
                match alg {
                    JwtAlg::RS256 => EncodingKey::from_rsa_pem(pem),
                    JwtAlg::ES256 => EncodingKey::from_ec_pem(pem),
                    _ => EncodingKey::from_ed_pem(pem),
                }
                .map_err(|e| format!("invalid jwt_private_key: {e}"))?
            }
        };
        Ok(Signer {
            key,
            header: Header::new(algorithm(self.alg)),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        })
    }
}

/// Reads `data_dir/jwt-secret`, creating it with 32 random bytes (hex) on first start.
fn load_or_create_secret(data_dir: &Path) -> Result<Vec<u8>, String> {
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => return Err(format!("{} is too short (< 32 bytes)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, secret.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::warn!(path = %path.display(), "generated a new HS256 secret into the data dir");
    Ok(secret.into_bytes())
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

impl Verifier {
    /// Verifies a token, answering from the cache when the same token was seen before.
    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TokenTooLarge);
        }
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if let Some(id) = self.cache.get(token).await {
            // The cache expires entries at `exp`, but check anyway: never trust timing.
            if id
                .exp
                .is_some_and(|exp| exp + self.validation.leeway > now_secs())
            {
                return Ok(id);
            }
            self.cache.invalidate(token).await;
            return Err(AuthError::Expired);
        }
        let identity = Arc::new(self.verify_uncached(token)?);
        self.cache.insert(Arc::from(token), identity.clone()).await;
        Ok(identity)
    }

    /// Full signature and claims check.
    fn verify_uncached(&self, token: &str) -> Result<Identity, AuthError> {
        let data =
            jsonwebtoken::decode::<RawClaims>(token, &self.key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    ErrorKind::InvalidIssuer => AuthError::BadIssuer,
                    ErrorKind::InvalidAudience => AuthError::BadAudience,
                    ErrorKind::MissingRequiredClaim(c) if c == "iss" => AuthError::BadIssuer,
                    ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthError::BadAudience,
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidAlgorithm
                    | ErrorKind::InvalidAlgorithmName
                    | ErrorKind::MissingAlgorithm
                    | ErrorKind::UnsupportedAlgorithm => AuthError::BadSignature,
                    _ => AuthError::Malformed,
                }
            })?;
        let claims = data.claims;
        let sub = claims
            .sub
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or(AuthError::MissingSub)?;
        let role = claims
            .role
            .as_deref()
            .and_then(Role::parse_token_role)
            .ok_or(AuthError::BadRole)?;
        // Without a `name` claim, viewers see a pseudonym: never the raw `sub`.
        let name = claims
            .name
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.chars().take(64).collect::<String>())
            .unwrap_or_else(|| pseudonym(&sub));
        let moderates = mod_claim(claims.moderates)?;
        Ok(Identity {
            sub: Arc::from(sub),
            name: Arc::from(name),
            role,
            exp: Some(claims.exp),
            moderates,
        })
    }
}

/// A stable display name derived from a user id, for tokens without a `name` claim.
pub fn pseudonym(sub: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(sub.as_bytes());
    format!("user-{}", hex::encode(&digest[..3]))
}

/// Mints tokens with the configured private key or secret.
pub struct Signer {
    key: EncodingKey,
    header: Header,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Signer {
    /// Signs a token for `sub` with `role`, valid for `ttl`.
    pub fn mint(
        &self,
        sub: &str,
        role: Role,
        name: Option<&str>,
        ttl: Duration,
    ) -> Result<String, String> {
        self.mint_with_mod(sub, role, name, ttl, &[])
    }

    /// [`Signer::mint`] with a `mod` claim: the token's bearer moderates these videos
    /// for as long as the token lives (an empty list adds no claim).
    pub fn mint_with_mod(
        &self,
        sub: &str,
        role: Role,
        name: Option<&str>,
        ttl: Duration,
        moderates: &[String],
    ) -> Result<String, String> {
        if moderates.len() > MAX_MOD_CLAIM || !moderates.iter().all(|v| is_video_id(v)) {
            return Err(format!(
                "mod lists at most {MAX_MOD_CLAIM} video ids (letters, digits, - _ .)"
            ));
        }
        if role == Role::Guest {
            return Err("guest tokens do not exist: connect without a token".into());
        }
        let now = now_secs();
        let claims = MintClaims {
            sub,
            role,
            name,
            iat: now,
            exp: now + ttl.as_secs().max(1),
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
            moderates,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mod_claim_is_a_short_list_of_video_ids_or_nothing() {
        use serde_json::json;
        assert!(mod_claim(None).unwrap().is_empty());
        assert!(mod_claim(Some(json!(null))).unwrap().is_empty());
        let got = mod_claim(Some(json!(["a", "b", "a"]))).unwrap();
        assert_eq!(&*got, [Arc::from("a"), Arc::from("b")], "duplicates once");
        let hundred: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
        assert_eq!(mod_claim(Some(json!(hundred))).unwrap().len(), 100);
        for bad in [
            json!("a"),
            json!({"a": 1}),
            json!([1]),
            json!([""]),
            json!(["a b"]),
            json!((0..101).map(|i| format!("v{i}")).collect::<Vec<_>>()),
        ] {
            assert_eq!(
                mod_claim(Some(bad.clone())),
                Err(AuthError::BadModClaim),
                "{bad}"
            );
        }
    }
}
