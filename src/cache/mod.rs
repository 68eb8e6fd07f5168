//! The binding cache: moka in process (L1), Redis shared by every instance (optional L2).
//!
//! Entries keep three deadlines: fresh (served as HIT), revalidate (served as STALE while one
//! background refresh runs) and stale-if-error (served as STALE when the source fails). A
//! miss is loaded once however many requests want it: the load inserts into the cache before
//! it lets its waiters go, so a request arriving just after sees the entry.

mod redis_l2;
pub mod response;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde_json::Value;

use crate::blueprint::settings::{CachePolicy, CacheSettings};
use crate::connectors::{Call, Fetched, Source};
use crate::error::SourceError;
pub use redis_l2::Invalidation;

/// One cached upstream answer.
pub struct Entry {
    pub fetched: Arc<Fetched>,
    pub fresh_until: SystemTime,
    pub revalidate_until: SystemTime,
    pub stale_until: SystemTime,
    weight: u32,
}

impl Entry {
    fn new(fetched: Arc<Fetched>, policy: CachePolicy) -> Entry {
        let at = fetched.fetched_at;
        let fresh_until = at + policy.ttl;
        let weight = fetched
            .rows
            .iter()
            .map(approx_size)
            .sum::<usize>()
            .saturating_add(128);
        Entry {
            fetched,
            fresh_until,
            revalidate_until: fresh_until + policy.stale_while_revalidate,
            stale_until: fresh_until + policy.stale_if_error,
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        }
    }

    fn evict_at(&self) -> SystemTime {
        self.fresh_until
            .max(self.revalidate_until)
            .max(self.stale_until)
    }
}

/// Rough bytes held by a JSON value: what the memory bound weighs.
pub fn approx_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 16,
        Value::String(s) => 24 + s.len(),
        Value::Array(a) => 24 + a.iter().map(approx_size).sum::<usize>(),
        Value::Object(m) => {
            48 + m
                .iter()
                .map(|(k, v)| 24 + k.len() + approx_size(v))
                .sum::<usize>()
        }
    }
}

struct Expiry;

impl moka::Expiry<Arc<str>, Arc<Entry>> for Expiry {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(
            value
                .evict_at()
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        )
    }

    fn expire_after_update(
        &self,
        _key: &Arc<str>,
        value: &Arc<Entry>,
        _updated_at: std::time::Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(
            value
                .evict_at()
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        )
    }
}

/// A load in flight, shared by every request that misses the same key.
struct Loading {
    id: u64,
    answer: Shared<BoxFuture<'static, Result<Arc<Entry>, SourceError>>>,
}

/// Removes its load from the loading table when dropped, however the load ends.
struct LoadEntry {
    cache: Arc<Cache>,
    key: Arc<str>,
    id: u64,
}

impl Drop for LoadEntry {
    fn drop(&mut self) {
        let mut loading = crate::connectors::lock(&self.cache.loading);
        if loading.get(&self.key).is_some_and(|l| l.id == self.id) {
            loading.remove(&self.key);
        }
    }
}

static NEXT_LOAD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub struct Cache {
    l1: moka::future::Cache<Arc<str>, Arc<Entry>>,
    l2: Option<redis_l2::RedisL2>,
    loading: Mutex<HashMap<Arc<str>, Loading>>,
    /// Bumped by every invalidation (local or from another instance): whatever was built
    /// from entries before it (a whole response) is no longer valid.
    epoch: std::sync::atomic::AtomicU64,
}

/// The parts of a cache key; `\u{1f}` separates them so invalidation can match a part.
pub fn key(
    connector: &str,
    binding: &str,
    generation: u64,
    identity: &str,
    call: &str,
) -> Arc<str> {
    format!("{connector}\u{1f}{binding}\u{1f}{generation}\u{1f}{identity}\u{1f}{call}").into()
}

impl Invalidation {
    fn matches(&self, key: &str) -> bool {
        let mut parts = key.split('\u{1f}');
        match self {
            Invalidation::All => true,
            Invalidation::Connector(c) => parts.next() == Some(c.as_str()),
            Invalidation::Binding(b) => parts.nth(1) == Some(b.as_str()),
        }
    }
}

impl Cache {
    pub async fn new(settings: &CacheSettings) -> Arc<Cache> {
        let l1 = moka::future::Cache::builder()
            .max_capacity(settings.max_memory)
            .weigher(|_k: &Arc<str>, v: &Arc<Entry>| v.weight)
            .expire_after(Expiry)
            .support_invalidation_closures()
            .eviction_listener(|_, _, cause| match cause {
                moka::notification::RemovalCause::Size => {
                    crate::metrics::get().cache_eviction("size")
                }
                moka::notification::RemovalCause::Expired => {
                    crate::metrics::get().cache_eviction("expired")
                }
                _ => {}
            })
            .build();
        let l2 = settings.redis.as_ref().and_then(|r| match redis_l2::RedisL2::new(&r.url, &r.namespace) {
            Ok(l2) => Some(l2),
            Err(e) => {
                tracing::error!(error = %e, "invalid [cache.redis] url; running without the shared cache");
                None
            }
        });
        let cache = Arc::new(Cache {
            l1,
            l2,
            loading: Mutex::new(HashMap::new()),
            epoch: Default::default(),
        });
        if let Some(l2) = &cache.l2 {
            l2.subscribe(Arc::downgrade(&cache));
        }
        cache
    }

    /// The answer to `call`, from the cache when `policy` allows, else from `source`.
    pub async fn fetch(
        self: &Arc<Self>,
        source: &Arc<Source>,
        key: Arc<str>,
        policy: CachePolicy,
        call: Call,
    ) -> Result<(Arc<Fetched>, CacheState), SourceError> {
        let now = SystemTime::now();
        let mut existing = self.l1.get(&key).await;
        if existing.is_none()
            && let Some(l2) = &self.l2
            && let Some((fetched, fresh_until)) = l2.get(&key).await
        {
            let mut entry = Entry::new(Arc::new(fetched), policy);
            // Keep the deadlines the writer computed from its fetch time.
            entry.fresh_until = fresh_until;
            entry.revalidate_until = fresh_until + policy.stale_while_revalidate;
            entry.stale_until = fresh_until + policy.stale_if_error;
            let entry = Arc::new(entry);
            self.l1.insert(key.clone(), entry.clone()).await;
            existing = Some(entry);
        }
        if let Some(e) = &existing {
            if now < e.fresh_until {
                return Ok((e.fetched.clone(), CacheState::Hit));
            }
            if now < e.revalidate_until {
                let (this, source, key) = (self.clone(), source.clone(), key.clone());
                tokio::spawn(async move {
                    let _ = this.load(&source, key, policy, call).await;
                });
                return Ok((e.fetched.clone(), CacheState::Stale));
            }
        }
        match self.load(source, key, policy, call).await {
            Ok(e) => Ok((e.fetched.clone(), CacheState::Miss)),
            Err(err) => match existing {
                Some(e) if now < e.stale_until => {
                    tracing::info!(connector = %source.name, code = %err.code, "serving stale data");
                    Ok((e.fetched.clone(), CacheState::Stale))
                }
                _ => Err(err),
            },
        }
    }

    /// Fetches from the source once for every concurrent caller of `key`, then stores it.
    async fn load(
        self: &Arc<Self>,
        source: &Arc<Source>,
        key: Arc<str>,
        policy: CachePolicy,
        call: Call,
    ) -> Result<Arc<Entry>, SourceError> {
        let source_name = source.name.clone();
        let fut = {
            let mut loading = crate::connectors::lock(&self.loading);
            match loading.get(&key) {
                Some(l) => l.answer.clone(),
                None => {
                    let id = NEXT_LOAD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let entry = LoadEntry {
                        cache: self.clone(),
                        key: key.clone(),
                        id,
                    };
                    let (this, source, load_key) = (self.clone(), source.clone(), key.clone());
                    // The load runs to its end whether or not anyone still waits, so the
                    // entry is stored and the loading table emptied in every case.
                    let job = async move {
                        let _entry = entry;
                        let result = source
                            .fetch(call, true)
                            .await
                            .map(|f| Arc::new(Entry::new(f, policy)));
                        if let Ok(entry) = &result {
                            this.l1.insert(load_key.clone(), entry.clone()).await;
                            if let Some(l2) = &this.l2 {
                                l2.put(&load_key, entry).await;
                            }
                        }
                        result
                    };
                    // Spawned on the first poll, after the table's lock is released: a
                    // runtime shutting down drops a spawned task (and its entry, which
                    // takes this lock) inside `spawn`, which would deadlock under it.
                    let answer = async move {
                        crate::connectors::joined(source_name, tokio::spawn(job)).await
                    }
                    .boxed()
                    .shared();
                    loading.insert(
                        key,
                        Loading {
                            id,
                            answer: answer.clone(),
                        },
                    );
                    answer
                }
            }
        };
        fut.await
    }

    /// Drops matching entries here, in Redis, and (through pub/sub) in every other instance.
    pub async fn invalidate(&self, what: Invalidation) {
        self.invalidate_local(&what);
        if let Some(l2) = &self.l2 {
            l2.invalidate(&what).await;
        }
    }

    /// The invalidation count: equal before and after means nothing was invalidated.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn invalidate_local(&self, what: &Invalidation) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let what = what.clone();
        if let Err(e) = self.l1.invalidate_entries_if(move |k, _| what.matches(k)) {
            tracing::error!(error = %e, "cache invalidation failed");
        }
    }

    /// Loads in flight now.
    pub fn loading(&self) -> usize {
        crate::connectors::lock(&self.loading).len()
    }

    /// Entries and weighed bytes in L1 (after pending evictions run).
    pub async fn usage(&self) -> (u64, u64) {
        self.l1.run_pending_tasks().await;
        (self.l1.entry_count(), self.l1.weighted_size())
    }
}

/// Where an answer came from, as `extensions.sources` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheState {
    Hit,
    Miss,
    Stale,
}

impl CacheState {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheState::Hit => "HIT",
            CacheState::Miss => "MISS",
            CacheState::Stale => "STALE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_matches_key_parts() {
        let k = key("dinsos", "District.poverty", 0, "", "SELECT 1");
        assert!(Invalidation::Connector("dinsos".into()).matches(&k));
        assert!(!Invalidation::Connector("dinso".into()).matches(&k));
        assert!(Invalidation::Binding("District.poverty".into()).matches(&k));
        assert!(!Invalidation::Binding("District".into()).matches(&k));
        assert!(Invalidation::All.matches(&k));
    }
}
