//! Per-request state: identical calls made once, batched levels fetched once, and the record
//! of which sources answered (for `extensions.sources`).

use std::collections::{BTreeMap, HashMap};
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
    pub by_key: HashMap<String, Vec<usize>>,
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
}

impl RequestState {
    pub fn new(auth: Value) -> Self {
        RequestState {
            auth,
            ..Default::default()
        }
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
                    let s = sources.get(i)?;
                    let age = now.duration_since(u.oldest).unwrap_or_default();
                    let mut v = json!({
                        "name": s.config.name,
                        "title": s.config.title,
                        "opd": s.config.opd,
                        "fetchedAt": chrono::DateTime::<chrono::Utc>::from(u.oldest).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "ageSeconds": age.as_secs(),
                        "cache": u.cache.as_str(),
                        "calls": u.calls,
                    });
                    if let Some(e) = u.error {
                        v["error"] = json!(e.as_str());
                    }
                    Some(v)
                })
                .collect(),
        )
    }
}
