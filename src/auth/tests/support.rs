//! The JWKS server and the token makers the auth tests share.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::super::*;

pub(super) const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
pub(super) const RSA1: &str = include_str!("../../../tests/fixtures/jwt/rsa1-private.pem");
pub(super) const RSA1_PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/rsa1-public.pem");
pub(super) const RSA2: &str = include_str!("../../../tests/fixtures/jwt/rsa2-private.pem");
pub(super) const EC1: &str = include_str!("../../../tests/fixtures/jwt/ec1-private.pem");
pub(super) const JWKS: &str = include_str!("../../../tests/fixtures/jwt/jwks.json");
pub(super) const JWKS_ROTATED: &str = include_str!("../../../tests/fixtures/jwt/jwks-rotated.json");

/// A JWKS endpoint that counts its hits; `None` answers 500.
pub(super) struct JwksServer {
    pub(super) url: String,
    doc: Arc<Mutex<Option<Value>>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    pub(super) async fn start(doc: &str) -> JwksServer {
        let doc = Arc::new(Mutex::new(Some(serde_json::from_str(doc).unwrap())));
        let hits = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/jwks", get(serve_jwks))
            .with_state((doc.clone(), hits.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksServer { url, doc, hits }
    }

    pub(super) fn serve(&self, doc: Option<&str>) {
        *self.doc.lock().unwrap() = doc.map(|d| serde_json::from_str(d).unwrap());
    }

    pub(super) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

type JwksState = (Arc<Mutex<Option<Value>>>, Arc<AtomicUsize>);

async fn serve_jwks(State((doc, hits)): State<JwksState>) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    match doc.lock().unwrap().clone() {
        Some(doc) => axum::Json(doc).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

pub(super) fn authenticator(f: impl FnOnce(&mut AuthFile), bounds: Bounds) -> Authenticator {
    crate::install_crypto();
    let mut cfg = AuthFile::default();
    f(&mut cfg);
    Authenticator::with_bounds(&cfg, reqwest::Client::new(), bounds).unwrap()
}

pub(super) fn with_secret() -> Authenticator {
    authenticator(|a| a.jwt_secret = Some(SECRET.into()), Bounds::default())
}

pub(super) fn with_jwks(server: &JwksServer, bounds: Bounds) -> Authenticator {
    authenticator(|a| a.jwks_url = Some(server.url.clone()), bounds)
}

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An internal token valid for ten minutes, with `extra` claims over it.
pub(super) fn claims(extra: Value) -> Value {
    let mut c = json!({ "tier": "internal", "sub": "ops", "exp": now() + 600 });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

pub(super) fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub(super) fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

pub(super) fn rs256(pem: &str, kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    sign(Algorithm::RS256, Some(kid), &key, claims)
}

/// A token with this header over `claims`, and a signature of nothing.
pub(super) fn crafted(header: Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.", part(&header), part(claims))
}

pub(super) async fn check(auth: &Authenticator, token: &str) -> Result<Caller, AuthError> {
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    auth.authenticate(Some(&header)).await
}
