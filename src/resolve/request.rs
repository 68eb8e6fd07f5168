//! Per-request state: identical calls made once, batched levels fetched once, and the record
//! of which sources answered (for `extensions.sources`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::OnceCell;

use super::node::Group;
use crate::connectors::Source;
use crate::error::{ErrorCode, SourceError};

pub type GroupResult = Result<Arc<Group>, SourceError>;
/// A call made (or being made) in this request; awaited by every identical call.
pub type SharedCall = Arc<OnceCell<GroupResult>>;
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

pub use crate::cache::CacheState;

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
    /// The tier of the caller's view, `{{view.tier}}` (PUBLIC unless set).
    pub view: crate::access::Tier,
    pub(super) memo: Mutex<rustc_hash::FxHashMap<(usize, String), SharedCall>>,
    pub(super) batches: Mutex<rustc_hash::FxHashMap<(usize, u64, String), BatchCell>>,
    uses: Mutex<BTreeMap<usize, Use>>,
    /// Earliest time (ms since the epoch) a cached answer this request used stops being
    /// fresh; for the response cache.
    fresh_until_ms: AtomicU64,
    /// A binding without a cache policy, reading `{{auth.*}}`, or with side effects was used,
    /// or an answer was stale or failed.
    uncacheable: AtomicBool,
    /// The first reasons only: the same operation will never be cacheable.
    never_cacheable: AtomicBool,
    /// An answer used holds synthetic rows: `extensions.demo`.
    demo: AtomicBool,
    /// The subscription event this run answers.
    pub event: Option<Value>,
    /// The caller as the rate budgets count it (`None` for the gateway's own runs), and
    /// its tier: an `@outbox` write of a PUBLIC caller spends its write budget.
    pub client: Option<(String, crate::access::Tier)>,
}

impl RequestState {
    pub fn new(auth: Value) -> Self {
        RequestState {
            auth,
            fresh_until_ms: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }

    /// The state of a subscription's run for `event`.
    pub fn for_event(auth: Value, event: Value) -> Self {
        RequestState {
            event: Some(event),
            ..RequestState::new(auth)
        }
    }

    /// Notes a binding's cacheability for the whole-response cache: only bindings with a
    /// cache policy, shared by every caller, keep a response cacheable.
    pub fn note_binding(&self, ttl: std::time::Duration, cacheable: bool) {
        if !cacheable || ttl.is_zero() {
            self.uncacheable.store(true, Ordering::Relaxed);
            self.never_cacheable.store(true, Ordering::Relaxed);
        }
    }

    /// Whether this operation read something no response cache may keep, whatever its data.
    pub fn never_cacheable(&self) -> bool {
        self.never_cacheable.load(Ordering::Relaxed)
    }

    /// Notes when a cached answer this request used stops being fresh.
    pub fn note_fresh_until(&self, at: SystemTime) {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        self.fresh_until_ms.fetch_min(ms, Ordering::Relaxed);
    }

    /// Notes that an answer this request used holds synthetic (demo) rows.
    pub fn note_demo(&self) {
        self.demo.store(true, Ordering::Relaxed);
    }

    /// Whether the response holds demo data, for `extensions.demo`.
    pub fn demo(&self) -> bool {
        self.demo.load(Ordering::Relaxed)
    }

    pub fn mark_uncacheable(&self) {
        self.uncacheable.store(true, Ordering::Relaxed);
    }

    /// How long the whole response may be replayed: until the first cached answer it was
    /// built from stops being fresh, so a replay is never older than the bindings' own
    /// cache would serve. `default` when it used no source; `None` when it may not be kept.
    pub fn response_ttl(&self, default: std::time::Duration) -> Option<std::time::Duration> {
        if self.uncacheable.load(Ordering::Relaxed) {
            return None;
        }
        match self.fresh_until_ms.load(Ordering::Relaxed) {
            u64::MAX => Some(default),
            ms => {
                let until = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
                until
                    .duration_since(SystemTime::now())
                    .ok()
                    .filter(|d| !d.is_zero())
            }
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

    /// Writes `extensions.sources` into a response body: for each connector used, where the
    /// data came from and how old it is.
    pub fn write_sources(&self, sources: &[Arc<Source>], out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let Ok(uses) = self.uses.lock() else {
            out.extend_from_slice(b"[]");
            return;
        };
        out.push(b'[');
        let mut first = true;
        for (&i, u) in uses.iter() {
            let Some(s) = sources.get(i) else { continue };
            if !first {
                out.push(b',');
            }
            first = false;
            write_source(names(s), now, u.oldest, u.cache, u.calls, u.error, out);
        }
        out.push(b']');
    }

    /// [`RequestState::write_sources`] as a JSON value, for the generic executor's response.
    pub fn sources_json(&self, sources: &[Arc<Source>]) -> Value {
        let mut out = Vec::new();
        self.write_sources(sources, &mut out);
        serde_json::from_slice(&out).unwrap_or_else(|_| Value::Array(Vec::new()))
    }
}

fn names(s: &Source) -> (&str, &str, &str) {
    (&s.config.name, &s.config.title, &s.config.opd)
}

/// One entry of `extensions.sources`, keys in alphabetical order (as `serde_json` writes a
/// map).
fn write_source(
    s: (&str, &str, &str),
    now: SystemTime,
    oldest: SystemTime,
    cache: CacheState,
    calls: u32,
    error: Option<ErrorCode>,
    out: &mut Vec<u8>,
) {
    let mut int = itoa::Buffer::new();
    out.extend_from_slice(b"{\"ageSeconds\":");
    out.extend_from_slice(
        int.format(now.duration_since(oldest).unwrap_or_default().as_secs())
            .as_bytes(),
    );
    out.extend_from_slice(b",\"cache\":\"");
    out.extend_from_slice(cache.as_str().as_bytes());
    out.extend_from_slice(b"\",\"calls\":");
    out.extend_from_slice(int.format(calls).as_bytes());
    if let Some(e) = error {
        out.extend_from_slice(b",\"error\":\"");
        out.extend_from_slice(e.as_str().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"fetchedAt\":\"");
    out.extend_from_slice(
        chrono::DateTime::<chrono::Utc>::from(oldest)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .as_bytes(),
    );
    out.extend_from_slice(b"\",\"name\":");
    let _ = serde_json::to_writer(&mut *out, s.0);
    out.extend_from_slice(b",\"opd\":");
    let _ = serde_json::to_writer(&mut *out, s.2);
    out.extend_from_slice(b",\"title\":");
    let _ = serde_json::to_writer(&mut *out, s.1);
    out.push(b'}');
}

/// `extensions.sources` of a response served whole from the response cache.
pub fn write_cached_sources(
    uses: &[(usize, SystemTime)],
    sources: &[Arc<Source>],
    out: &mut Vec<u8>,
) {
    let now = SystemTime::now();
    out.push(b'[');
    let mut first = true;
    for &(i, oldest) in uses {
        let Some(s) = sources.get(i) else { continue };
        if !first {
            out.push(b',');
        }
        first = false;
        write_source(names(s), now, oldest, CacheState::Hit, 0, None, out);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_sources_are_the_serialized_json_byte_for_byte() {
        let now = SystemTime::now();
        let oldest = now - std::time::Duration::from_secs(75);
        let fetched_at = chrono::DateTime::<chrono::Utc>::from(oldest)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (cache, error) in [
            (CacheState::Hit, None),
            (CacheState::Stale, Some(ErrorCode::SourceTimeout)),
        ] {
            let names = ("dinsos", "Dinas \"Sosial\" \u{e9}", "dinsos");
            let mut out = Vec::new();
            write_source(names, now, oldest, cache, 3, error, &mut out);
            let mut expected = json!({
                "name": names.0,
                "title": names.1,
                "opd": names.2,
                "fetchedAt": fetched_at,
                "ageSeconds": 75,
                "cache": cache.as_str(),
                "calls": 3,
            });
            if let Some(e) = error {
                expected["error"] = json!(e.as_str());
            }
            assert_eq!(String::from_utf8_lossy(&out), expected.to_string());
        }
    }
}
