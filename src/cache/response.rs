//! The optional whole-response cache (`[cache] response = true`): anonymous operations whose
//! bindings all have a cache policy and read no `{{auth.*}}` are kept for the smallest TTL
//! among them, keyed by the operation text (whitespace-normalized), name and variables.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A response's `data`, serialized, and the sources it came from.
pub struct Stored {
    pub data: bytes::Bytes,
    pub uses: Vec<(usize, SystemTime)>,
    ttl: Duration,
}

struct Expiry;

impl moka::Expiry<Arc<str>, Arc<Stored>> for Expiry {
    fn expire_after_create(
        &self,
        _k: &Arc<str>,
        v: &Arc<Stored>,
        _at: Instant,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

pub struct ResponseCache {
    inner: moka::sync::Cache<Arc<str>, Arc<Stored>>,
}

impl ResponseCache {
    pub fn new(max_bytes: u64) -> ResponseCache {
        let inner = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &Arc<str>, v: &Arc<Stored>| {
                u32::try_from(k.len() + v.data.len() + 64).unwrap_or(u32::MAX)
            })
            .expire_after(Expiry)
            .build();
        ResponseCache { inner }
    }

    pub fn key(
        query: &str,
        operation: Option<&str>,
        variables: Option<&serde_json::Value>,
    ) -> Arc<str> {
        let mut k = String::with_capacity(query.len() + 32);
        for word in query.split_whitespace() {
            if !k.is_empty() {
                k.push(' ');
            }
            k.push_str(word);
        }
        k.push('\u{1f}');
        k.push_str(operation.unwrap_or(""));
        k.push('\u{1f}');
        if let Some(v) = variables {
            k.push_str(&v.to_string());
        }
        k.into()
    }

    pub fn get(&self, key: &Arc<str>) -> Option<Arc<Stored>> {
        self.inner.get(key)
    }

    pub fn insert(
        &self,
        key: Arc<str>,
        data: bytes::Bytes,
        uses: Vec<(usize, SystemTime)>,
        ttl: Duration,
    ) {
        self.inner.insert(key, Arc::new(Stored { data, uses, ttl }));
    }
}
