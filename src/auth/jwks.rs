//! The keys of `[auth] jwks_url`, by `kid`, fetched on first use and kept.
//!
//! An identity provider rotates keys by publishing the new one before signing with it, so a
//! token naming an unknown `kid` refetches the document. Any caller can send such a token,
//! so refetches are bounded: at most one every [`Bounds::min_refetch`], whatever the number
//! of callers or kids, and callers that wait while a fetch runs use its result instead of
//! fetching again. A failed fetch keeps the keys there were.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::AuthError;

/// Longest a fetch of the document may take; requests wait on it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest document read: a JWKS holds a few keys of under 1 KiB each.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// How often the document is fetched.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Fewest time between two fetches (10 s): the bound on what unknown kids cost.
    pub min_refetch: Duration,
    /// Keys older than this (10 min) are refetched on next use, so a revoked key goes.
    pub max_age: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            min_refetch: Duration::from_secs(10),
            max_age: Duration::from_secs(600),
        }
    }
}

/// A verification key and the one algorithm it verifies.
pub(super) struct Key {
    pub key: DecodingKey,
    pub alg: Algorithm,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    /// When the last successful fetch started; `None` before the first.
    fetched_at: Option<Instant>,
}

pub(super) struct Jwks {
    url: reqwest::Url,
    http: reqwest::Client,
    bounds: Bounds,
    keys: RwLock<Arc<KeySet>>,
    /// Held across a fetch, so concurrent refetches are one; holds when the last began.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// Fetches begun, so a caller that waited on the lock can tell one ran meanwhile.
    attempts: AtomicU64,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url.as_str())
            .finish()
    }
}

impl Jwks {
    pub fn new(url: reqwest::Url, http: reqwest::Client, bounds: Bounds) -> Jwks {
        Jwks {
            url,
            http,
            bounds,
            keys: RwLock::new(Arc::default()),
            fetching: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
        }
    }

    /// The key named `kid`: from the cache, else from one (bounded) refetch.
    pub async fn key(&self, kid: &str) -> Result<Arc<Key>, AuthError> {
        let seen = self.attempts.load(Ordering::Acquire);
        let fresh = self
            .current()
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.bounds.max_age);
        if !fresh {
            self.refresh(seen).await;
        }
        let seen = self.attempts.load(Ordering::Acquire);
        if let Some(key) = self.current().by_kid.get(kid) {
            return Ok(key.clone());
        }
        self.refresh(seen).await;
        self.current()
            .by_kid
            .get(kid)
            .cloned()
            .ok_or(AuthError::UnknownKey)
    }

    fn current(&self) -> Arc<KeySet> {
        // A poisoned lock still holds a whole `Arc`: it is only ever replaced.
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fetches the document unless a fetch began since `seen` was read (its result is what
    /// the caller wanted) or less than `min_refetch` ago.
    async fn refresh(&self, seen: u64) {
        let mut last = self.fetching.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen {
            return;
        }
        if last.is_some_and(|at| at.elapsed() < self.bounds.min_refetch) {
            return;
        }
        let started = Instant::now();
        *last = Some(started);
        match self.fetch().await {
            Ok(by_kid) => {
                let set = Arc::new(KeySet {
                    by_kid,
                    fetched_at: Some(started),
                });
                match self.keys.write() {
                    Ok(mut keys) => *keys = set,
                    Err(poisoned) => *poisoned.into_inner() = set,
                }
            }
            Err(e) => {
                tracing::warn!(url = %self.url, "JWKS fetch failed, keeping the keys there were: {e}")
            }
        }
        // After the keys are stored: a caller that reads the new count reads the new keys.
        self.attempts.fetch_add(1, Ordering::Release);
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<Key>>, String> {
        let mut response = self
            .http
            .get(self.url.clone())
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("document over {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let doc: Document = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        // One key of a kind not used here must not cost the others.
        Ok(doc
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
            .filter_map(|jwk| usable(&jwk))
            .collect())
    }
}

/// A signing key of a kind verified here, with its kid: RSA for RS256, P-256 for ES256.
/// An `alg` the key declares must be that one; `oct` keys are never taken, since HS256
/// verifies only against `jwt_secret`.
fn usable(jwk: &Jwk) -> Option<(String, Arc<Key>)> {
    let kid = jwk.common.key_id.clone()?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let (alg, declared) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        _ => return None,
    };
    if jwk
        .common
        .key_algorithm
        .as_ref()
        .is_some_and(|a| *a != declared)
    {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Arc::new(Key { key, alg })))
}
