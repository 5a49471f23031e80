//! The `[auth]` group: how callers prove who they are. The JWT settings (the one pinned
//! algorithm and its keys, the required claims), the admin API keys, guests, and the demo
//! token endpoint. `crate::auth` turns them into keys.

use std::{path::PathBuf, str::FromStr};

use serde::Deserialize;

/// The JWT algorithms an operator may pin. The token's own `alg` header is never trusted:
/// a token whose header names any other algorithm is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlg {
    HS256,
    RS256,
    ES256,
    EdDSA,
}

impl FromStr for JwtAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Ok(Self::HS256),
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            "EDDSA" => Ok(Self::EdDSA),
            other => Err(format!(
                "unsupported JWT algorithm {other:?} (HS256, RS256, ES256 or EdDSA)"
            )),
        }
    }
}

group! {
    /// `[auth]`: JWT verification and minting, API keys, guests and demo tokens.
    ["auth"] AuthConfig, AuthArgs, "Auth [auth]" {
        /// The one JWT algorithm accepted.
        alg: JwtAlg = JwtAlg::HS256 => (long = "jwt-alg", env = "DANMAKU_JWT_ALG");
        /// Clock skew tolerated on `exp`/`nbf`, in seconds.
        leeway_s: u64 = 5 => (long = "jwt-leeway-s", env = "DANMAKU_JWT_LEEWAY_S");
        /// Keys accepted in `X-Api-Key` for server-to-server admin calls (comma-separated).
        api_keys: Vec<String> = Vec::new() => (
            long = "api-keys",
            env = "DANMAKU_API_KEYS",
            value_delimiter = ',',
            hide_env_values = true
        );
        /// Lets connections without a token in as read-only guests (true/false).
        allow_guests: bool = true
            => (long = "allow-guests", env = "DANMAKU_ALLOW_GUESTS");
        /// Enables `POST /api/demo/token`, which hands out tokens to anyone. Never in
        /// production. File-only here: `serve --demo` is the flag.
        demo: bool = false => (skip);
    }
    optional {
        /// HS256 shared secret. When unset, one is generated once into
        /// `server.data_dir/jwt-secret`.
        secret: String
            => (long = "jwt-secret", env = "DANMAKU_JWT_SECRET", hide_env_values = true);
        /// PEM public key for RS256/ES256/EdDSA verification.
        public_key: PathBuf => (long = "jwt-public-key", env = "DANMAKU_JWT_PUBLIC_KEY");
        /// PEM private key, only needed to mint tokens (`danmaku token`, demo mode) with
        /// an asymmetric algorithm.
        private_key: PathBuf => (long = "jwt-private-key", env = "DANMAKU_JWT_PRIVATE_KEY");
        /// Required `iss` claim, when set.
        issuer: String => (long = "jwt-issuer", env = "DANMAKU_JWT_ISSUER");
        /// Required `aud` claim, when set.
        audience: String => (long = "jwt-audience", env = "DANMAKU_JWT_AUDIENCE");
    }
}

impl AuthConfig {
    /// An asymmetric algorithm needs its public key; a short HS256 secret is guessable.
    pub fn validate(&self) -> Result<(), String> {
        if self.alg != JwtAlg::HS256 && self.public_key.is_none() {
            return Err(format!(
                "auth.alg {:?} needs auth.public_key (a PEM file)",
                self.alg
            ));
        }
        if let Some(secret) = &self.secret
            && secret.len() < 32
        {
            return Err("auth.secret must be at least 32 bytes".into());
        }
        Ok(())
    }
}
