//! Per-request state: identical calls made once, batched levels fetched once, and the record
//! of which sources answered (for `extensions.sources`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::future::{BoxFuture, Shared};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::node::Group;
use crate::connectors::Source;
use crate::error::{ErrorCode, SourceError};

pub type GroupResult = Result<Arc<Group>, SourceError>;
/// A call made (or being made) in this request; awaited by every identical call.
pub type SharedCall = Shared<BoxFuture<'static, GroupResult>>;
/// A batched level, loaded once by the first of its fields to resolve.
pub type BatchCell = Arc<OnceCell<Result<Arc<BatchIndex>, SourceError>>>;

/// A batched level: the rows fetched for all parents and, per parent key, its rows.
pub struct BatchIndex {
    pub group: Arc<Group>,
    /// Shared by every request that reads the same answer.
    pub by_key: Arc<ByKey>,
}

/// Rows indexed by the string of their batch key column: per key a range of `flat`.
#[derive(Default)]
pub struct ByKey {
    /// Fast hashing: this map is probed once per parent row.
    ranges: rustc_hash::FxHashMap<String, (u32, u32)>,
    flat: Vec<usize>,
}

impl ByKey {
    /// Indexes `rows` by `key`; rows of one key keep their order.
    pub fn build(rows: &[Value], key: &str) -> ByKey {
        let mut lists: rustc_hash::FxHashMap<String, Vec<usize>> = Default::default();
        let mut order: Vec<String> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if let Some(k) = row.get(key).and_then(super::node::key_string) {
                let list = lists.entry(k).or_insert_with_key(|k| {
                    order.push(k.clone());
                    Vec::new()
                });
                list.push(i);
            }
        }
        let mut index = ByKey::default();
        for k in order {
            let list = lists.remove(&k).unwrap_or_default();
            let start = index.flat.len() as u32;
            index.flat.extend(list);
            index
                .ranges
                .insert(k, (start, index.flat.len() as u32 - start));
        }
        index
    }

    /// Where the rows of `key` are in [`ByKey::flat`].
    pub fn range(&self, key: &str) -> Option<(u32, u32)> {
        self.ranges.get(key).copied()
    }

    pub fn slice(&self, (start, len): (u32, u32)) -> &[usize] {
        self.flat
            .get(start as usize..(start + len) as usize)
            .unwrap_or_default()
    }
}

impl BatchIndex {
    /// The rows of `parent`: those whose batch key equals the parent's value.
    pub fn rows_of(
        &self,
        batch: &crate::blueprint::Batch,
        parent: &super::node::Node,
    ) -> (Arc<Group>, Arc<[usize]>) {
        let rows = super::node::get_path(parent.row(), &batch.parent.path)
            .and_then(|v| super::node::with_key(v, |k| self.by_key.range(k)))
            .flatten()
            .map(|r| self.by_key.slice(r))
            .unwrap_or_default();
        (self.group.clone(), Arc::from(rows))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheState {
    Hit,
    Miss,
    Stale,
}

impl CacheState {
    fn as_str(self) -> &'static str {
        match self {
            CacheState::Hit => "HIT",
            CacheState::Miss => "MISS",
            CacheState::Stale => "STALE",
        }
    }
}

struct Use {
    oldest: SystemTime,
    cache: CacheState,
    calls: u32,
    error: Option<ErrorCode>,
}

#[derive(Default)]
pub struct RequestState {
    /// Verified token claims; empty until authentication exists.
    pub auth: Value,
    pub(super) memo: Mutex<HashMap<(usize, String), SharedCall>>,
    pub(super) batches: Mutex<HashMap<(usize, u64, String), BatchCell>>,
    uses: Mutex<BTreeMap<usize, Use>>,
    /// Smallest TTL among the bindings this request used (ms); for the response cache.
    min_ttl_ms: AtomicU64,
    /// A binding without a cache policy, reading `{{auth.*}}`, or with side effects was used.
    uncacheable: AtomicBool,
}

impl RequestState {
    pub fn new(auth: Value) -> Self {
        RequestState {
            auth,
            min_ttl_ms: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }

    /// Notes a binding's cacheability for the whole-response cache.
    pub fn note_binding(&self, ttl: std::time::Duration, cacheable: bool) {
        if !cacheable || ttl.is_zero() {
            self.uncacheable.store(true, Ordering::Relaxed);
        } else {
            self.min_ttl_ms
                .fetch_min(ttl.as_millis() as u64, Ordering::Relaxed);
        }
    }

    pub fn mark_uncacheable(&self) {
        self.uncacheable.store(true, Ordering::Relaxed);
    }

    /// The TTL a whole response may be cached for: `None` when it may not be.
    pub fn response_ttl(&self, default: std::time::Duration) -> Option<std::time::Duration> {
        if self.uncacheable.load(Ordering::Relaxed) {
            return None;
        }
        match self.min_ttl_ms.load(Ordering::Relaxed) {
            u64::MAX => Some(default),
            ms => Some(std::time::Duration::from_millis(ms)),
        }
    }

    /// Connector index and oldest fetch time of every source used.
    pub fn uses(&self) -> Vec<(usize, SystemTime)> {
        self.uses
            .lock()
            .map(|u| u.iter().map(|(&i, u)| (i, u.oldest)).collect())
            .unwrap_or_default()
    }

    pub fn record(
        &self,
        connector: usize,
        fetched_at: SystemTime,
        cache: CacheState,
        error: Option<ErrorCode>,
    ) {
        let Ok(mut uses) = self.uses.lock() else {
            return;
        };
        let u = uses.entry(connector).or_insert(Use {
            oldest: fetched_at,
            cache,
            calls: 0,
            error: None,
        });
        u.calls += 1;
        u.oldest = u.oldest.min(fetched_at);
        u.cache = u.cache.max(cache);
        if error.is_some() {
            u.error = error;
        }
    }

    /// `extensions.sources`: for each connector used, where the data came from and how old it is.
    pub fn sources_json(&self, sources: &[Arc<Source>]) -> Value {
        let now = SystemTime::now();
        let Ok(uses) = self.uses.lock() else {
            return Value::Array(Vec::new());
        };
        Value::Array(
            uses.iter()
                .filter_map(|(&i, u)| {
                    Some(source_json(
                        sources.get(i)?,
                        now,
                        u.oldest,
                        u.cache,
                        u.calls,
                        u.error,
                    ))
                })
                .collect(),
        )
    }
}

/// One entry of `extensions.sources`.
fn source_json(
    s: &Source,
    now: SystemTime,
    oldest: SystemTime,
    cache: CacheState,
    calls: u32,
    error: Option<ErrorCode>,
) -> Value {
    let mut v = json!({
        "name": s.config.name,
        "title": s.config.title,
        "opd": s.config.opd,
        "fetchedAt": chrono::DateTime::<chrono::Utc>::from(oldest).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "ageSeconds": now.duration_since(oldest).unwrap_or_default().as_secs(),
        "cache": cache.as_str(),
        "calls": calls,
    });
    if let Some(e) = error {
        v["error"] = json!(e.as_str());
    }
    v
}

/// `extensions.sources` of a response served whole from the response cache.
pub fn cached_sources_json(uses: &[(usize, SystemTime)], sources: &[Arc<Source>]) -> Value {
    let now = SystemTime::now();
    Value::Array(
        uses.iter()
            .filter_map(|&(i, oldest)| {
                Some(source_json(
                    sources.get(i)?,
                    now,
                    oldest,
                    CacheState::Hit,
                    0,
                    None,
                ))
            })
            .collect(),
    )
}
