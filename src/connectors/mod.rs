//! The connector kinds: how Simpul talks to each kind of source. Nothing here knows GraphQL;
//! a connector takes a rendered [`Call`] and returns rows as JSON values.

mod bps;
pub mod breaker;
pub mod derived;
pub mod file;
mod health;
pub mod http;
pub mod sql;

pub use health::Health;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde_json::Value;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::blueprint::settings::{ConnectorConfig, ConnectorKind};
use crate::error::{ErrorCode, SourceError};

/// One value bound into a SQL statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Param {
    pub fn from_json(v: &Value) -> Param {
        match v {
            Value::Null => Param::Null,
            Value::Bool(b) => Param::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Param::Int(i),
                None => Param::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Param::Text(s.clone()),
            other => Param::Text(other.to_string()),
        }
    }
}

/// A rendered upstream call, ready to run.
#[derive(Clone, Debug)]
pub enum Call {
    Sql { sql: String, params: Vec<Param> },
    Http(http::HttpCall),
}

impl Call {
    /// Identity of the call: equal keys mean the same upstream request.
    pub fn key(&self) -> String {
        match self {
            Call::Sql { sql, params } => format!("{sql}\u{1f}{params:?}"),
            Call::Http(h) => h.key(),
        }
    }
}

/// Rows of one upstream answer and when they were fetched.
#[derive(Debug)]
pub struct Fetched {
    pub rows: Vec<Value>,
    pub fetched_at: SystemTime,
    /// Unique per answer in this process: names it in what is derived from another answer.
    pub id: u64,
    /// What readers computed from these rows, kept as long as the rows are.
    pub derived: derived::Derived,
    /// Some row is synthetic (its [`DEMO_COLUMN`](crate::blueprint::DEMO_COLUMN) is set).
    pub demo: bool,
}

static NEXT_ANSWER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Fetched {
    pub fn new(rows: Vec<Value>, fetched_at: SystemTime) -> Fetched {
        let demo = rows.iter().any(|r| {
            r.get(crate::blueprint::DEMO_COLUMN)
                .is_some_and(crate::blueprint::truthy)
        });
        Fetched {
            demo,
            rows,
            fetched_at,
            id: NEXT_ANSWER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            derived: Default::default(),
        }
    }
}

pub type FetchResult = Result<Arc<Fetched>, SourceError>;

/// The closed set of connector kinds.
pub enum AnySource {
    Sql(sql::SqlSource),
    Http(http::HttpSource),
    File(file::FileSource),
}

/// A connector at run time: its kind, its limits, and the calls in flight.
pub struct Source {
    pub config: ConnectorConfig,
    pub name: Arc<str>,
    pub kind: AnySource,
    limit: Semaphore,
    inflight: Mutex<HashMap<String, InFlight>>,
    health: Mutex<Health>,
    pub breaker: breaker::Breaker,
    origin: String,
}

/// A call in flight, shared by every request that wants the same answer.
struct InFlight {
    id: u64,
    answer: Shared<BoxFuture<'static, FetchResult>>,
}

/// Removes its call's entry from the in-flight table when dropped.
struct InFlightEntry {
    source: Arc<Source>,
    key: String,
    id: u64,
}

impl Drop for InFlightEntry {
    fn drop(&mut self) {
        let mut inflight = lock(&self.source.inflight);
        if inflight.get(&self.key).is_some_and(|f| f.id == self.id) {
            inflight.remove(&self.key);
        }
    }
}

static NEXT_CALL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// How long past its deadline a call may take to stop by itself before it is dropped.
const DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// Locks `m` even if a panic poisoned it: the tables kept here stay consistent at every step.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The answer of a call's task; a task that panicked or was cancelled is an internal error.
pub(crate) async fn joined<T>(
    name: Arc<str>,
    task: tokio::task::JoinHandle<Result<T, SourceError>>,
) -> Result<T, SourceError> {
    match task.await {
        Ok(result) => result,
        Err(e) => Err(SourceError::new(
            ErrorCode::Internal,
            &name,
            if e.is_panic() {
                "the upstream call panicked"
            } else {
                "the upstream call was cancelled"
            },
        )),
    }
}

impl Source {
    /// Builds a connector. Database pools connect lazily, so a source that is down at startup
    /// does not stop the gateway.
    pub async fn build(config: ConnectorConfig, dir: &Path) -> Result<Source, String> {
        let name: Arc<str> = config.name.as_str().into();
        let kind = match &config.kind {
            ConnectorKind::Http {
                base_url,
                headers,
                format,
            } => AnySource::Http(http::HttpSource::new(
                base_url,
                headers,
                *format,
                config.timeout,
                config.max_response_bytes,
                dir,
            )?),
            ConnectorKind::File { path, csv } => {
                AnySource::File(file::FileSource::open(dir, path, *csv).await?)
            }
            // One POST to the endpoint per call; `plan::remote` writes the body and reads
            // `data` and `errors`.
            ConnectorKind::Graphql { url, headers, .. } => AnySource::Http(http::HttpSource::new(
                url,
                headers,
                crate::blueprint::settings::HttpFormat::Json,
                config.timeout,
                config.max_response_bytes,
                dir,
            )?),
            _ => AnySource::Sql(sql::SqlSource::connect(&config, dir).await?),
        };
        // Credentials stay out of cache keys: keep what follows '@', drop the query.
        let origin = match &config.kind {
            ConnectorKind::Postgres { url, .. } | ConnectorKind::Mysql { url, .. } => url
                .split('?')
                .next()
                .unwrap_or(url)
                .rsplit('@')
                .next()
                .unwrap_or(url)
                .to_string(),
            ConnectorKind::Sqlite { path, .. } | ConnectorKind::File { path, .. } => {
                dir.join(path).display().to_string()
            }
            ConnectorKind::Http { base_url, .. } => base_url.clone(),
            ConnectorKind::Graphql { url, .. } => url.clone(),
        };
        Ok(Source {
            origin,
            breaker: breaker::Breaker::new(config.circuit_failures, config.circuit_open),
            limit: Semaphore::new(config.max_concurrency),
            name,
            kind,
            inflight: Mutex::new(HashMap::new()),
            health: Mutex::new(Health::default()),
            config,
        })
    }

    pub fn dialect(&self) -> sql::Dialect {
        match &self.kind {
            AnySource::Sql(s) => s.dialect(),
            _ => sql::Dialect::Sqlite,
        }
    }

    /// Where the source lives (URL or path), so two deployments sharing a Redis never share
    /// entries of different sources that happen to have the same name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Bumped when a file source reloads, so cached answers from old files stop matching.
    pub fn generation(&self) -> u64 {
        match &self.kind {
            AnySource::File(f) => f.generation.load(std::sync::atomic::Ordering::SeqCst),
            _ => 0,
        }
    }

    /// Runs `call`, sharing it with every identical call already in flight when `shareable`.
    ///
    /// The call runs in a task of its own, to its end or its timeout, whether or not anyone
    /// still waits for it: a request that goes away never leaves a call half-done holding a
    /// permit, a connection or an in-flight entry.
    pub async fn fetch(self: &Arc<Self>, call: Call, shareable: bool) -> FetchResult {
        if !shareable {
            let this = self.clone();
            let job = async move { this.run(call, false).await };
            return joined(
                self.name.clone(),
                tokio::spawn(job.instrument(tracing::Span::current())),
            )
            .await;
        }
        let key = call.key();
        self.fetch_keyed(call, key).await
    }

    /// [`Source::fetch`] of a shareable call whose [`Call::key`] the caller already has.
    pub async fn fetch_keyed(self: &Arc<Self>, call: Call, key: String) -> FetchResult {
        let answer = {
            let mut inflight = lock(&self.inflight);
            match inflight.get(&key) {
                Some(f) => f.answer.clone(),
                None => {
                    let id = NEXT_CALL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Dropped when the task ends, however it ends (answer, timeout, panic,
                    // runtime shutdown): the entry never outlives its call.
                    let entry = InFlightEntry {
                        source: self.clone(),
                        key: key.clone(),
                        id,
                    };
                    let (this, name) = (self.clone(), self.name.clone());
                    let job = async move {
                        let _entry = entry;
                        this.run(call, true).await
                    };
                    // Spawned on the first poll, after the table's lock is released: a
                    // runtime shutting down drops a spawned task (and its entry, which
                    // takes this lock) inside `spawn`, which would deadlock under it.
                    // In the span of the request that started it: an upstream sees that
                    // request's trace (the others that share the call are not told).
                    let job = job.instrument(tracing::Span::current());
                    let answer = async move { joined(name, tokio::spawn(job)).await }
                        .boxed()
                        .shared();
                    inflight.insert(
                        key,
                        InFlight {
                            id,
                            answer: answer.clone(),
                        },
                    );
                    answer
                }
            }
        };
        answer.await
    }

    /// Calls in flight now, and concurrency permits taken (of the connector's limit).
    pub fn in_flight(&self) -> (usize, usize) {
        let calls = lock(&self.inflight).len();
        let permits = self
            .config
            .max_concurrency
            .saturating_sub(self.limit.available_permits());
        (calls, permits)
    }

    /// One upstream call under the circuit breaker, the concurrency limit and the timeout.
    /// Reads that fail to connect are retried with jittered backoff inside the same timeout.
    async fn run(&self, call: Call, retry: bool) -> FetchResult {
        if !self.breaker.allow() {
            return Err(SourceError::new(
                ErrorCode::SourceUnavailable,
                &self.name,
                "circuit open",
            ));
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let retries = if retry { self.config.retries } else { 0 };
        let attempts = async {
            let mut attempt = 0;
            loop {
                let result = self.attempt(call.clone(), deadline).await;
                match result {
                    // A definite refusal is not retried: the breaker deals with a source
                    // that is down.
                    Err(e)
                        if e.code == ErrorCode::SourceUnavailable
                            && !e.definite
                            && attempt < retries =>
                    {
                        attempt += 1;
                        let base = 25u64 << attempt.min(6);
                        let jitter = rand::random_range(0..=base);
                        let wake =
                            tokio::time::Instant::now() + Duration::from_millis(base + jitter);
                        if wake >= deadline {
                            return Err(e);
                        }
                        tokio::time::sleep_until(wake).await;
                    }
                    other => return other,
                }
            }
        };
        // Each kind stops at the deadline itself (and closes what it was using); this only
        // backs it up.
        let result = match tokio::time::timeout_at(deadline + DEADLINE_GRACE, attempts).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out()),
        };
        match &result {
            Ok(_) => self.breaker.success(),
            Err(e)
                if matches!(
                    e.code,
                    ErrorCode::SourceUnavailable
                        | ErrorCode::SourceTimeout
                        | ErrorCode::SourceError
                ) =>
            {
                self.breaker.failure()
            }
            Err(_) => {}
        }
        let took = started.elapsed();
        self.record(&result, took);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        };
        crate::metrics::get().connector_call(&self.name, self.config.kind.name(), outcome, took);
        result.map(|rows| Arc::new(Fetched::new(rows, SystemTime::now())))
    }

    fn timed_out(&self) -> SourceError {
        SourceError::new(
            ErrorCode::SourceTimeout,
            &self.name,
            format!("no answer within {:?}", self.config.timeout),
        )
    }

    async fn attempt(
        &self,
        call: Call,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Value>, SourceError> {
        let timeout = self.config.timeout;
        let Ok(permit) = tokio::time::timeout_at(deadline, self.limit.acquire()).await else {
            return Err(SourceError::new(
                ErrorCode::SourceTimeout,
                &self.name,
                format!(
                    "all {} concurrent calls busy for {timeout:?}",
                    self.config.max_concurrency
                ),
            ));
        };
        let Ok(_permit) = permit else {
            return Err(SourceError::new(
                ErrorCode::Internal,
                &self.name,
                "limiter closed",
            ));
        };
        match (&self.kind, call) {
            (AnySource::Sql(s), Call::Sql { sql, params }) => {
                s.query(&self.name, sql, params, deadline, timeout).await
            }
            (AnySource::File(f), Call::Sql { sql, params }) => {
                f.query(&self.name, sql, params, deadline, timeout).await
            }
            (AnySource::Http(h), Call::Http(c)) => {
                match tokio::time::timeout_at(deadline, h.call(&self.name, c)).await {
                    Ok(r) => r,
                    Err(_) => Err(self.timed_out()),
                }
            }
            _ => Err(SourceError::new(
                ErrorCode::Internal,
                &self.name,
                "call does not match connector kind",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
