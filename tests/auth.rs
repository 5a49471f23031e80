//! Every JWT rejection, over both the WebSocket upgrade and the REST API.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use danmaku::{config::JwtAlg, model::Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::{SECRET, TestApp, WsClient, status_json};

/// Signs arbitrary claims with `alg` and `key`.
fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).expect("sign")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

fn now() -> u64 {
    danmaku::model::time::now_secs()
}

fn valid_claims() -> Value {
    json!({"sub": "mallory", "role": "free", "exp": now() + 3600})
}

/// Asserts that both transports refuse `token` with 401 and `code`.
async fn assert_refused(app: &TestApp, token: &str, code: &str, case: &str) {
    let refused = match WsClient::try_connect(&app.ws_base, Some(token), None).await {
        Ok(_) => panic!("{case}: ws accepted the token"),
        Err(r) => r,
    };
    assert_eq!(refused.status, 401, "{case}: ws status");
    assert_eq!(
        refused.body["code"], code,
        "{case}: ws body {}",
        refused.body
    );
    let resp = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 401, "{case}: rest status, body {body}");
    assert_eq!(body["code"], code, "{case}: rest body {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains(SECRET) && !message.contains("BEGIN"),
        "{case}: error leaks key material"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_token_is_accepted_on_both_transports() {
    let app = TestApp::start().await;
    let token = app.token("alice", Role::Member);
    let ws = WsClient::try_connect(&app.ws_base, Some(&token), None)
        .await
        .map_err(|r| r.body)
        .expect("header token accepted");
    assert_eq!(ws.welcome["user"]["sub"], "alice");
    assert_eq!(ws.welcome["user"]["role"], "member");
    let ws = WsClient::try_connect(&app.ws_base, None, Some(&token))
        .await
        .map_err(|r| r.body)
        .expect("query token accepted");
    assert_eq!(ws.welcome["user"]["role"], "member");
    let resp = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["role"], "member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_rejected_with_its_code() {
    let app = TestApp::start().await;
    let other_key = EncodingKey::from_secret(b"another-secret-0123456789abcdef0123456789");
    let valid = hs256(&valid_claims());

    // alg: none, hand-made.
    let none = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(valid_claims().to_string())
    );
    // A payload edited after signing: role changed to admin, signature kept.
    let parts: Vec<&str> = valid.split('.').collect();
    let mut edited_claims = valid_claims();
    edited_claims["role"] = json!("admin");
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(edited_claims.to_string()),
        parts[2]
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            hs256(&json!({"sub": "a", "role": "free", "exp": now() - 120})),
            "token_expired",
        ),
        (
            "not yet valid",
            hs256(&json!({"sub": "a", "role": "free", "exp": now() + 3600, "nbf": now() + 600})),
            "token_not_yet_valid",
        ),
        (
            "wrong key",
            sign(Algorithm::HS256, &other_key, &valid_claims()),
            "bad_signature",
        ),
        (
            "other algorithm (HS384)",
            sign(
                Algorithm::HS384,
                &EncodingKey::from_secret(SECRET.as_bytes()),
                &valid_claims(),
            ),
            "bad_signature",
        ),
        ("alg none", none, "invalid_token"),
        ("edited payload", edited, "bad_signature"),
        (
            "missing sub",
            hs256(&json!({"role": "free", "exp": now() + 3600})),
            "missing_sub",
        ),
        (
            "missing role",
            hs256(&json!({"sub": "a", "exp": now() + 3600})),
            "invalid_role",
        ),
        (
            "unknown role",
            hs256(&json!({"sub": "a", "role": "superuser", "exp": now() + 3600})),
            "invalid_role",
        ),
        (
            "guest role in a token",
            hs256(&json!({"sub": "a", "role": "guest", "exp": now() + 3600})),
            "invalid_role",
        ),
        (
            "missing exp",
            hs256(&json!({"sub": "a", "role": "free"})),
            "invalid_token",
        ),
        ("garbage", "not.a.jwt".to_string(), "invalid_token"),
        (
            "truncated",
            valid[..valid.len() - 10].to_string(),
            "invalid_token",
        ),
        ("huge", "a".repeat(9 * 1024), "token_too_large"),
        // The `mod` claim: a list of at most 100 video ids, or nothing.
        (
            "mod claim not a list",
            hs256(&json!({"sub": "a", "role": "free", "exp": now() + 3600, "mod": "v1"})),
            "invalid_mod_claim",
        ),
        (
            "mod claim with a number",
            hs256(&json!({"sub": "a", "role": "free", "exp": now() + 3600, "mod": ["v1", 7]})),
            "invalid_mod_claim",
        ),
        (
            "mod claim with a bad video id",
            hs256(&json!({"sub": "a", "role": "free", "exp": now() + 3600, "mod": ["bad id!"]})),
            "invalid_mod_claim",
        ),
        (
            "mod claim of 101 videos",
            hs256(&json!({"sub": "a", "role": "free", "exp": now() + 3600,
                "mod": (0..101).map(|i| format!("v{i}")).collect::<Vec<_>>()})),
            "invalid_mod_claim",
        ),
    ];
    for (case, token, code) in &cases {
        assert_refused(&app, token, code, case).await;
    }
    let failures = app
        .metric("danmaku_auth_failures_total{reason=\"bad_signature\"}")
        .await;
    assert!(failures >= 6.0, "auth failures counted: {failures}");
    let failures = app
        .metric("danmaku_auth_failures_total{reason=\"invalid_mod_claim\"}")
        .await;
    assert!(failures >= 4.0, "mod claim failures counted: {failures}");
    // 100 ids, or `null`, are accepted.
    for claim in [
        json!((0..100).map(|i| format!("v{i}")).collect::<Vec<_>>()),
        Value::Null,
    ] {
        let token = hs256(&json!({"sub": "a", "role": "free", "exp": now() + 3600, "mod": claim}));
        WsClient::try_connect(&app.ws_base, Some(&token), None)
            .await
            .map_err(|r| r.body)
            .expect("a valid mod claim is accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_query_tokens_must_agree() {
    let app = TestApp::start().await;
    let a = app.token("alice", Role::Member);
    let b = app.token("bob", Role::Free);
    let refused = WsClient::try_connect(&app.ws_base, Some(&a), Some(&b))
        .await
        .err()
        .expect("disagreeing tokens refused");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["code"], "token_conflict");
    WsClient::try_connect(&app.ws_base, Some(&a), Some(&a))
        .await
        .map_err(|r| r.body)
        .expect("agreeing tokens accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_are_refused_when_not_allowed() {
    let app = TestApp::builder()
        .config(|c| c.auth.allow_guests = false)
        .start()
        .await;
    let refused = WsClient::try_connect(&app.ws_base, None, None)
        .await
        .err()
        .expect("guest refused");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["code"], "missing_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_and_audience_are_enforced_when_configured() {
    let app = TestApp::builder()
        .config(|c| {
            c.auth.issuer = Some("https://issuer.example".into());
            c.auth.audience = Some("danmaku".into());
        })
        .start()
        .await;
    let base = |iss: &str, aud: &str| {
        hs256(&json!({"sub": "a", "role": "free", "exp": now() + 3600, "iss": iss, "aud": aud}))
    };
    assert_refused(
        &app,
        &base("https://evil.example", "danmaku"),
        "bad_issuer",
        "wrong iss",
    )
    .await;
    assert_refused(
        &app,
        &base("https://issuer.example", "other"),
        "bad_audience",
        "wrong aud",
    )
    .await;
    assert_refused(
        &app,
        &hs256(&json!({"sub": "a", "role": "free", "exp": now() + 3600, "aud": "danmaku"})),
        "bad_issuer",
        "missing iss",
    )
    .await;
    WsClient::try_connect(
        &app.ws_base,
        Some(&base("https://issuer.example", "danmaku")),
        None,
    )
    .await
    .map_err(|r| r.body)
    .expect("right iss and aud accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_is_pinned_and_hs256_with_the_public_key_is_rejected() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let app = TestApp::builder()
        .config(|c| {
            c.auth.alg = JwtAlg::RS256;
            c.auth.public_key = Some(fixtures.join("rsa_public.pem"));
        })
        .start()
        .await;
    let private = std::fs::read(fixtures.join("rsa_private.pem")).unwrap();
    let public = std::fs::read(fixtures.join("rsa_public.pem")).unwrap();
    let good = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(&private).unwrap(),
        &valid_claims(),
    );
    WsClient::try_connect(&app.ws_base, Some(&good), None)
        .await
        .map_err(|r| r.body)
        .expect("RS256 token accepted");
    // Algorithm confusion: HS256 keyed with the RSA public key.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public),
        &valid_claims(),
    );
    assert_refused(
        &app,
        &confused,
        "bad_signature",
        "HS256 with the public key",
    )
    .await;
    let hs = hs256(&valid_claims());
    assert_refused(&app, &hs, "bad_signature", "HS256 token on an RS256 server").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_tokens_verify_with_a_pem_public_key() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let app = TestApp::builder()
        .config(|c| {
            c.auth.alg = JwtAlg::EdDSA;
            c.auth.public_key = Some(fixtures.join("ed25519_public.pem"));
        })
        .start()
        .await;
    let private = std::fs::read(fixtures.join("ed25519_private.pem")).unwrap();
    let good = sign(
        Algorithm::EdDSA,
        &EncodingKey::from_ed_pem(&private).unwrap(),
        &valid_claims(),
    );
    let ws = WsClient::try_connect(&app.ws_base, Some(&good), None)
        .await
        .map_err(|r| r.body)
        .expect("EdDSA token accepted");
    assert_eq!(ws.welcome["user"]["sub"], "mallory");
}
