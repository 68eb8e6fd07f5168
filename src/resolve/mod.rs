//! Per bound field: batch -> connector -> mapping rows to fields.
//!
//! The resolvers here are what the dynamic schema calls. Property reads are synchronous
//! (`FieldFuture::Value`, no boxed future); only bound fields go async.

pub mod node;
pub mod render;
pub mod request;
mod traced;
pub mod value;

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use crate::blueprint::{Binding, Blueprint, Operation};
use crate::cache::Cache;
use crate::connectors::Source;
use crate::connectors::derived::DerivedKey;
use crate::error::{ErrorCode, SourceError};
use node::{Group, GroupRows, Node, get_path};
use render::{BatchValues, Values};
use request::{BatchIndex, ByKey, CacheState, GroupResult, RequestState};
use traced::fetch;

/// The running model: the blueprint and a live connector per `blueprint.connectors` entry.
pub struct Engine {
    pub blueprint: Arc<Blueprint>,
    pub sources: Vec<Arc<Source>>,
    pub cache: Arc<Cache>,
    /// Early warning: rules, alerts and their events, when the deployment has rules.
    pub alerts: Option<Arc<crate::alerts::Alerts>>,
    /// The state store, when the deployment has rules or `@outbox` writes.
    pub state: Option<crate::state::StateStore>,
    /// `[security.rate_limits] public_writes`: the `@outbox` writes of each PUBLIC client.
    pub public_writes: Option<crate::server::rate::Budget>,
    /// Per binding: its `select` path, shared by every call.
    selects: Vec<Arc<[String]>>,
}

impl Engine {
    /// The source `binding` calls (the compile checked its index: a missing one is an
    /// internal error, not a panic).
    pub fn source(&self, binding: &Binding) -> Result<&Arc<Source>, SourceError> {
        self.sources.get(binding.connector).ok_or_else(|| {
            SourceError::new(
                ErrorCode::Internal,
                &self.source_name(binding),
                "connector missing",
            )
        })
    }

    /// The name of the connector `binding` calls, for errors.
    pub fn source_name(&self, binding: &Binding) -> Arc<str> {
        match self.sources.get(binding.connector) {
            Some(s) => s.name.clone(),
            None => binding.name.as_str().into(),
        }
    }

    pub fn new(
        blueprint: Arc<Blueprint>,
        sources: Vec<Arc<Source>>,
        cache: Arc<Cache>,
        alerts: Option<Arc<crate::alerts::Alerts>>,
        state: Option<crate::state::StateStore>,
    ) -> Engine {
        let selects = blueprint
            .bindings
            .iter()
            .map(|b| match &b.operation {
                Operation::Http(h) => h.select.clone().into(),
                Operation::Sql { .. } | Operation::Graphql(_) => Vec::new().into(),
            })
            .collect();
        let public_writes = blueprint
            .security
            .public_writes
            .and_then(crate::server::rate::Budget::new);
        Engine {
            public_writes,
            blueprint,
            sources,
            cache,
            alerts,
            state,
            selects,
        }
    }
}

/// The answer of a call made for `parent` alone (or the root): every row is the field's.
pub async fn unbatched(
    engine: &Engine,
    binding: &Binding,
    state: &Arc<RequestState>,
    args: &Value,
    parent: Option<&Node>,
) -> GroupResult {
    let values = Values {
        args,
        parent: parent.map(Node::row),
        auth: &state.auth,
        outbox: None,
        view: state.view,
    };
    single(engine, binding, state, &values).await
}

fn distinct_keys(rows: &[Value], path: &[String]) -> Vec<Value> {
    let mut seen: rustc_hash::FxHashSet<String> = Default::default();
    let mut keys: Vec<Value> = Vec::new();
    for v in rows.iter().filter_map(|row| get_path(row, path)) {
        // Parents repeat keys (100 posts, 10 authors): allocate only for a new one.
        let new =
            node::with_key(v, |k| !seen.contains(k) && seen.insert(k.to_string())).unwrap_or(false);
        if new {
            keys.push(v.clone());
        }
    }
    keys
}

/// The batch key string of every parent row, for matching them to a batched answer.
pub(crate) fn parent_keys(group: &Group, path: &[String]) -> Vec<Option<Box<str>>> {
    group
        .rows()
        .iter()
        .map(|row| {
            get_path(row, path).and_then(|v| node::with_key(v, |k: &str| Box::<str>::from(k)))
        })
        .collect()
}

/// The call of an unbatched `binding` with `values` (an outbox delivery's).
pub fn render_call(
    engine: &Engine,
    binding: &Binding,
    values: &Values,
) -> Result<crate::connectors::Call, SourceError> {
    render(engine, binding, values, None)
}

fn render(
    engine: &Engine,
    binding: &Binding,
    values: &Values,
    batch: Option<&BatchValues>,
) -> Result<crate::connectors::Call, SourceError> {
    let source = engine.source(binding)?;
    match &binding.operation {
        Operation::Sql { query } => Ok(render::sql(query, source.dialect(), values, batch)),
        Operation::Http(op) => {
            let select = engine.selects.get(binding.id).ok_or_else(|| {
                SourceError::new(ErrorCode::Internal, &source.name, "select missing")
            })?;
            render::http(op, select, values, batch)
                .map_err(|e| SourceError::new(ErrorCode::BadRequest, &source.name, e))
        }
        // Its call is written with the selection it forwards, by `plan::remote`.
        Operation::Graphql(_) => Err(SourceError::new(
            ErrorCode::Internal,
            &source.name,
            "a @graphql binding is called by the executor",
        )),
    }
}

/// One call for one parent, made once per request however many times it is asked for.
async fn single(
    engine: &Engine,
    binding: &Binding,
    state: &Arc<RequestState>,
    values: &Values<'_>,
) -> GroupResult {
    let call = render(engine, binding, values, None)?;
    fetch(engine, binding, state, call, None).await
}

/// Runs `call` through the request memo, the cache (when the binding has a policy) and the
/// connector's in-flight sharing.
pub(super) async fn fetch_call(
    engine: &Engine,
    binding: &Binding,
    state: &Arc<RequestState>,
    call: crate::connectors::Call,
) -> GroupResult {
    let source = engine.source(binding)?.clone();
    let connector = binding.connector;
    if !binding.shareable {
        let result = source
            .fetch(call, false)
            .await
            .map(|f| (f, CacheState::Miss));
        return finish(state, connector, result);
    }
    let call_key = call.key();
    let cell = {
        let Ok(mut memo) = state.memo.lock() else {
            return Err(SourceError::new(
                ErrorCode::Internal,
                &source.name,
                "memo poisoned",
            ));
        };
        memo.entry((connector, call_key.clone()))
            .or_default()
            .clone()
    };
    // The first identical call of this request runs it inline; the others wait for it.
    cell.get_or_init(|| async {
        let policy = binding.cache;
        // A binding that reads the caller is cached per caller (`sub`); a token without one
        // is never pooled with anybody: no cache.
        let sub = state.auth.get("sub").and_then(Value::as_str);
        let result = if policy.is_on() && (!binding.uses_auth || sub.is_some()) {
            let identity = match binding.uses_auth {
                true => sub.unwrap_or(""),
                false => "",
            };
            let cache_key = crate::cache::key(
                &source.name,
                &binding.name,
                source.generation(),
                identity,
                &format!("{} {}", source.origin(), call_key),
            );
            let result = engine.cache.fetch(&source, cache_key, policy, call).await;
            let found = match &result {
                Ok((_, CacheState::Hit)) => "hit",
                Ok((_, CacheState::Stale)) => "stale",
                Ok((_, CacheState::Miss)) | Err(_) => "miss",
            };
            crate::metrics::get().cache_lookup(&source.name, found);
            match &result {
                // Fresh until its fetch time plus the TTL (L2 entries keep their writer's
                // fetch time): a whole response built from it must not outlive that.
                Ok((f, CacheState::Hit | CacheState::Miss)) => {
                    state.note_fresh_until(f.fetched_at + policy.ttl)
                }
                _ => state.mark_uncacheable(),
            }
            result
        } else {
            source
                .fetch_keyed(call, call_key)
                .await
                .map(|f| (f, CacheState::Miss))
        };
        finish(state, connector, result)
    })
    .await
    .clone()
}

fn finish(
    state: &RequestState,
    connector: usize,
    result: Result<(Arc<crate::connectors::Fetched>, CacheState), SourceError>,
) -> GroupResult {
    match result {
        Ok((fetched, cache)) => {
            if crate::telemetry::enabled() {
                tracing::Span::current().record("simpul.cache", cache.as_str());
            }
            state.record(connector, fetched.fetched_at, cache, None);
            if fetched.demo {
                state.note_demo();
            }
            Ok(Group::new(GroupRows::Fetched(fetched)))
        }
        Err(e) => {
            state.record(connector, SystemTime::now(), CacheState::Miss, Some(e.code));
            Err(e)
        }
    }
}

/// Runs a remote GraphQL request (written by `plan::remote`) like any call of `binding`:
/// request memo, cache, in-flight sharing, breaker; its one row is the response.
pub(crate) async fn fetch_remote(
    engine: &Engine,
    binding: &Binding,
    state: &Arc<RequestState>,
    call: crate::connectors::Call,
) -> GroupResult {
    fetch(engine, binding, state, call, None).await
}

/// Fetches a batched field once for every parent in `parent`'s group.
pub(crate) async fn batched(
    engine: &Engine,
    binding: &Binding,
    state: &Arc<RequestState>,
    args: &Value,
    parent: &Node,
) -> Result<Arc<BatchIndex>, SourceError> {
    let cell = {
        let key = (binding.id, parent.group.id, args.to_string());
        let Ok(mut batches) = state.batches.lock() else {
            return Err(SourceError::new(
                ErrorCode::Internal,
                &engine.source_name(binding),
                "batch table poisoned",
            ));
        };
        batches.entry(key).or_default().clone()
    };
    cell.get_or_init(|| load_batch(engine, binding, state, args, &parent.group))
        .await
        .clone()
}

async fn load_batch(
    engine: &Engine,
    binding: &Binding,
    state: &Arc<RequestState>,
    args: &Value,
    parents: &Arc<Group>,
) -> Result<Arc<BatchIndex>, SourceError> {
    let Some(batch) = &binding.batch else {
        return Err(SourceError::new(
            ErrorCode::Internal,
            &engine.source_name(binding),
            "binding is not batched",
        ));
    };
    let keys = match parents.derived() {
        Some(d) => d.get_or_init(DerivedKey::BatchKeys(binding.uid), || {
            distinct_keys(parents.rows(), &batch.parent.path)
        }),
        None => Arc::new(distinct_keys(parents.rows(), &batch.parent.path)),
    };
    if keys.is_empty() {
        return Ok(Arc::new(BatchIndex {
            group: Group::new(GroupRows::Owned(Vec::new())),
            by_key: Default::default(),
        }));
    }
    let values = Values {
        args,
        parent: None,
        auth: &state.auth,
        outbox: None,
        view: state.view,
    };
    let chunks = keys.chunks(batch.max_size).map(|chunk| {
        let call = render(
            engine,
            binding,
            &values,
            Some(&BatchValues { batch, keys: chunk }),
        );
        let size = chunk.len();
        async move { fetch(engine, binding, state, call?, Some(size)).await }
    });
    let groups = futures::future::try_join_all(chunks).await?;
    let group = if groups.len() == 1 {
        groups
            .into_iter()
            .next()
            .unwrap_or_else(|| Group::new(GroupRows::Owned(Vec::new())))
    } else {
        Group::new(GroupRows::Owned(
            groups
                .iter()
                .flat_map(|g| g.rows().iter().cloned())
                .collect(),
        ))
    };
    let by_key = match group.derived() {
        Some(d) => d.get_or_init(DerivedKey::IndexBy(hash_str(&batch.key)), || {
            ByKey::build(group.rows(), &batch.key)
        }),
        None => Arc::new(ByKey::build(group.rows(), &batch.key)),
    };
    Ok(Arc::new(BatchIndex { group, by_key }))
}

fn hash_str(s: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(s)
}
