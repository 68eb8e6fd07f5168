//! Tokens signed with the test-only keys of `tests/fixtures/jwt`, verified against a real
//! JWKS server on loopback.

mod support;

use std::time::Instant;

use serde_json::json;

use super::*;
use support::*;

#[tokio::test]
async fn no_header_is_anonymous_and_no_config_accepts_no_token() {
    let anonymous = authenticator(|_| {}, Bounds::default());
    assert_eq!(anonymous.authenticate(None).await, Ok(Caller::anonymous()));
    let token = hs256(&claims(json!({})));
    assert_eq!(
        check(&anonymous, &token).await,
        Err(AuthError::NotConfigured)
    );
}

#[tokio::test]
async fn hs256_token_reads_the_internal_view_with_its_claims() {
    let c = claims(json!({ "unit": "bappeda" }));
    let caller = check(&with_secret(), &hs256(&c)).await.unwrap();
    assert_eq!(caller.view, View::Internal);
    assert_eq!(caller.sub.as_deref(), Some("ops"));
    assert_eq!(caller.claims, c);
}

#[tokio::test]
async fn restricted_tokens_read_their_opd_and_name_it() {
    let auth = with_secret();
    let dinsos = hs256(&claims(json!({ "tier": "restricted", "opd": "dinsos" })));
    let caller = check(&auth, &dinsos).await.unwrap();
    assert_eq!(caller.view, View::Restricted("dinsos".into()));
    let missing = hs256(&claims(json!({ "tier": "restricted" })));
    assert_eq!(
        check(&auth, &missing).await,
        Err(AuthError::BadClaims("a restricted token names its opd"))
    );
    let public = hs256(&json!({ "exp": now() + 60 }));
    assert_eq!(check(&auth, &public).await.unwrap().view, View::Public);
    let unknown = hs256(&claims(json!({ "tier": "root" })));
    assert!(matches!(
        check(&auth, &unknown).await,
        Err(AuthError::BadClaims(_))
    ));
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_the_jwks() {
    let server = JwksServer::start(JWKS).await;
    let auth = with_jwks(&server, Bounds::default());
    let rsa = rs256(RSA1, "rsa-1", &claims(json!({})));
    assert_eq!(check(&auth, &rsa).await.unwrap().view, View::Internal);
    let ec = EncodingKey::from_ec_pem(EC1.as_bytes()).unwrap();
    let es = sign(Algorithm::ES256, Some("ec-1"), &ec, &claims(json!({})));
    assert_eq!(check(&auth, &es).await.unwrap().view, View::Internal);
    // A key verifies only its own algorithm, whatever the token says.
    let mismatched = rs256(RSA1, "ec-1", &claims(json!({})));
    assert_eq!(
        check(&auth, &mismatched).await,
        Err(AuthError::AlgorithmNotAllowed)
    );
    assert_eq!(server.hits(), 1, "the keys are fetched once and kept");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_the_bound_allows() {
    let bound = Duration::from_secs(2);
    let server = JwksServer::start(JWKS).await;
    let bounds = Bounds {
        min_refetch: bound,
        ..Bounds::default()
    };
    let auth = with_jwks(&server, bounds);
    let fetched = Instant::now();
    let old = rs256(RSA1, "rsa-1", &claims(json!({})));
    assert!(check(&auth, &old).await.is_ok());
    server.serve(Some(JWKS_ROTATED));
    let new = rs256(RSA2, "rsa-2", &claims(json!({})));
    let early = check(&auth, &new).await;
    if fetched.elapsed() < bound {
        assert_eq!(early, Err(AuthError::UnknownKey));
        assert_eq!(server.hits(), 1, "no refetch within the bound");
        // The fetch began a little after `fetched`.
        let margin = Duration::from_millis(200);
        tokio::time::sleep(bound.saturating_sub(fetched.elapsed()) + margin).await;
    }
    assert!(check(&auth, &new).await.is_ok());
    assert_eq!(server.hits(), 2);
    assert_eq!(check(&auth, &old).await, Err(AuthError::UnknownKey));
}

#[tokio::test]
async fn keys_older_than_max_age_are_refetched_on_next_use() {
    let server = JwksServer::start(JWKS).await;
    let bounds = Bounds {
        min_refetch: Duration::from_millis(10),
        max_age: Duration::from_millis(100),
    };
    let auth = with_jwks(&server, bounds);
    let token = rs256(RSA1, "rsa-1", &claims(json!({})));
    assert!(check(&auth, &token).await.is_ok());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(check(&auth, &token).await.is_ok());
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_once() {
    let server = JwksServer::start(JWKS).await;
    let auth = with_jwks(&server, Bounds::default());
    let c = claims(json!({}));
    let tokens: Vec<String> = (0..100)
        .map(|i| crafted(json!({ "alg": "RS256", "kid": format!("flood-{i}") }), &c))
        .map(|t| format!("{t}c2lnbmF0dXJl"))
        .collect();
    let refusals = futures::future::join_all(tokens.iter().map(|t| check(&auth, t))).await;
    assert!(refusals.iter().all(|r| *r == Err(AuthError::UnknownKey)));
    for t in &tokens {
        assert_eq!(check(&auth, t).await, Err(AuthError::UnknownKey));
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_keys_there_were() {
    let server = JwksServer::start(JWKS).await;
    let bounds = Bounds {
        min_refetch: Duration::ZERO,
        ..Bounds::default()
    };
    let auth = with_jwks(&server, bounds);
    let token = rs256(RSA1, "rsa-1", &claims(json!({})));
    assert!(check(&auth, &token).await.is_ok());
    server.serve(None);
    let unknown = rs256(RSA1, "rsa-9", &claims(json!({})));
    assert_eq!(check(&auth, &unknown).await, Err(AuthError::UnknownKey));
    assert_eq!(server.hits(), 2, "the unknown kid refetched, and failed");
    assert!(check(&auth, &token).await.is_ok());
}

#[tokio::test]
async fn headers_that_are_not_bearer_jwts_are_malformed() {
    let auth = with_secret();
    let token = hs256(&claims(json!({})));
    let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
    let headers = [
        format!("Basic {token}"),
        format!("Token {token}"),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "Bearer not.a-jwt".to_string(),
        "Bearer a.b.c".to_string(),
        format!("Bearer {token}.{token}"),
        long,
    ];
    for h in headers {
        let value = HeaderValue::from_str(&h).unwrap();
        let got = auth.authenticate(Some(&value)).await;
        assert_eq!(got, Err(AuthError::Malformed), "{h:.40}");
    }
    let lower = HeaderValue::from_str(&format!("bearer {token}")).unwrap();
    assert!(auth.authenticate(Some(&lower)).await.is_ok());
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_past_the_leeway() {
    let auth = with_secret();
    let expired = hs256(&claims(json!({ "exp": now() - 3600 })));
    assert_eq!(check(&auth, &expired).await, Err(AuthError::Expired));
    let early = hs256(&claims(json!({ "nbf": now() + 3600 })));
    assert_eq!(check(&auth, &early).await, Err(AuthError::NotYetValid));
    let skewed = hs256(&claims(json!({ "exp": now() - 20, "nbf": now() + 20 })));
    assert!(check(&auth, &skewed).await.is_ok(), "within 60 s of leeway");
    let forever = hs256(&json!({ "tier": "internal" }));
    assert!(matches!(
        check(&auth, &forever).await,
        Err(AuthError::BadClaims(_))
    ));
}

#[tokio::test]
async fn a_wrong_signature_is_refused() {
    let auth = with_secret();
    let other = EncodingKey::from_secret(b"another-secret-that-is-long-enough-too!!");
    let forged = sign(Algorithm::HS256, None, &other, &claims(json!({})));
    assert_eq!(check(&auth, &forged).await, Err(AuthError::BadSignature));
    let server = JwksServer::start(JWKS).await;
    let jwks = with_jwks(&server, Bounds::default());
    let wrong_key = rs256(RSA2, "rsa-1", &claims(json!({})));
    assert_eq!(check(&jwks, &wrong_key).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn wrong_audience_and_wrong_issuer_are_refused() {
    let auth = authenticator(
        |a| {
            a.jwt_secret = Some(SECRET.into());
            a.issuer = Some("https://sso.trenggalekkab.go.id".into());
            a.audience = Some("simpul".into());
        },
        Bounds::default(),
    );
    let iss = "https://sso.trenggalekkab.go.id";
    let good = hs256(&claims(json!({ "iss": iss, "aud": ["simpul", "sipd"] })));
    assert!(check(&auth, &good).await.is_ok());
    let cases = [
        (
            json!({ "iss": iss, "aud": "sipd" }),
            AuthError::WrongAudience,
        ),
        (json!({ "iss": iss }), AuthError::WrongAudience),
        (
            json!({ "iss": "https://evil", "aud": "simpul" }),
            AuthError::WrongIssuer,
        ),
        (json!({ "aud": "simpul" }), AuthError::WrongIssuer),
    ];
    for (extra, want) in cases {
        assert_eq!(check(&auth, &hs256(&claims(extra))).await, Err(want));
    }
    // With no audience configured, a token naming one is still fine.
    let any = hs256(&claims(json!({ "aud": "sipd" })));
    assert!(check(&with_secret(), &any).await.is_ok());
}

#[tokio::test]
async fn alg_none_and_other_algorithms_are_refused() {
    let auth = with_secret();
    let c = claims(json!({}));
    for alg in ["none", "None", "HS512", "PS256", "EdDSA"] {
        let token = crafted(json!({ "alg": alg, "typ": "JWT" }), &c);
        assert_eq!(
            check(&auth, &token).await,
            Err(AuthError::AlgorithmNotAllowed),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let server = JwksServer::start(JWKS).await;
    let confused = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &EncodingKey::from_secret(RSA1_PUBLIC.as_bytes()),
        &claims(json!({})),
    );
    let jwks_only = with_jwks(&server, Bounds::default());
    assert_eq!(
        check(&jwks_only, &confused).await,
        Err(AuthError::AlgorithmNotAllowed)
    );
    let both = authenticator(
        |a| {
            a.jwt_secret = Some(SECRET.into());
            a.jwks_url = Some(server.url.clone());
        },
        Bounds::default(),
    );
    assert_eq!(check(&both, &confused).await, Err(AuthError::BadSignature));
    let rsa = rs256(RSA1, "rsa-1", &claims(json!({})));
    assert!(
        check(&both, &rsa).await.is_ok(),
        "RS256 still goes to the JWKS"
    );
}

#[tokio::test]
async fn minted_tokens_round_trip_through_authenticate() {
    let iss = "https://simpul.trenggalekkab.go.id";
    let auth = authenticator(
        |a| {
            a.jwt_secret = Some(SECRET.into());
            a.issuer = Some(iss.into());
            a.audience = Some("simpul".into());
        },
        Bounds::default(),
    );
    let hour = Duration::from_secs(3600);
    let token = mint(
        SECRET,
        Tier::Restricted,
        Some("dinsos"),
        Some("ops"),
        hour,
        Some(iss),
        Some("simpul"),
    )
    .unwrap();
    let caller = check(&auth, &token).await.unwrap();
    assert_eq!(caller.view, View::Restricted("dinsos".into()));
    assert_eq!(caller.sub.as_deref(), Some("ops"));
    assert_eq!(caller.claims["iss"], iss);
    let internal = mint(SECRET, Tier::Internal, None, None, hour, None, None).unwrap();
    assert_eq!(
        check(&with_secret(), &internal).await.unwrap().view,
        View::Internal
    );
    let no_opd = mint(SECRET, Tier::Restricted, None, None, hour, None, None);
    assert!(no_opd.unwrap_err().contains("opd"));
    let short = mint("short", Tier::Internal, None, None, hour, None, None);
    assert!(short.unwrap_err().contains("at least 32"));
}
