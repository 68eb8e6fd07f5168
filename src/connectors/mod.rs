//! The connector kinds: how Simpul talks to each kind of source. Nothing here knows GraphQL;
//! a connector takes a rendered [`Call`] and returns rows as JSON values.

mod bps;
pub mod breaker;
pub mod derived;
pub mod file;
pub mod http;
pub mod sql;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::{ConnectorConfig, ConnectorKind};
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
}

static NEXT_ANSWER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Fetched {
    pub fn new(rows: Vec<Value>, fetched_at: SystemTime) -> Fetched {
        Fetched {
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
    inflight: Mutex<HashMap<String, Shared<BoxFuture<'static, FetchResult>>>>,
    health: Mutex<Health>,
    pub breaker: breaker::Breaker,
    origin: String,
}

/// What the gateway knows about a source's state from its recent calls.
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub last_success: Option<SystemTime>,
    pub last_error: Option<ErrorCode>,
    pub latency: Option<Duration>,
    pub consecutive_failures: u32,
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
                dir,
            )?),
            ConnectorKind::File { path } => {
                AnySource::File(file::FileSource::open(&dir.join(path)).await?)
            }
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
            ConnectorKind::Sqlite { path, .. } | ConnectorKind::File { path } => {
                dir.join(path).display().to_string()
            }
            ConnectorKind::Http { base_url, .. } => base_url.clone(),
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

    /// The health report of `Query.sources` and `/readyz`.
    pub fn health_json(&self) -> Value {
        let h = self.health();
        let circuit = self.breaker.circuit();
        let status = match circuit {
            breaker::Circuit::Open => "DOWN",
            breaker::Circuit::HalfOpen => "DEGRADED",
            breaker::Circuit::Closed if h.consecutive_failures > 0 => "DEGRADED",
            breaker::Circuit::Closed => "UP",
        };
        serde_json::json!({
            "name": self.config.name,
            "title": self.config.title,
            "opd": self.config.opd,
            "kind": self.config.kind.name(),
            "status": status,
            "lastSuccessAt": h.last_success.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "latencyMs": h.latency.map(|d| d.as_secs_f64() * 1000.0),
            "circuit": circuit.as_str(),
            "lastError": h.last_error.map(|e| e.as_str()),
        })
    }

    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Runs `call`, sharing it with every identical call already in flight when `shareable`.
    pub async fn fetch(self: &Arc<Self>, call: Call, shareable: bool) -> FetchResult {
        if !shareable {
            return self.run(call, false).await;
        }
        let key = call.key();
        self.fetch_keyed(call, key).await
    }

    /// [`Source::fetch`] of a shareable call whose [`Call::key`] the caller already has.
    pub async fn fetch_keyed(self: &Arc<Self>, call: Call, key: String) -> FetchResult {
        let fut = {
            let Ok(mut inflight) = self.inflight.lock() else {
                return Err(SourceError::new(
                    ErrorCode::Internal,
                    &self.name,
                    "in-flight table poisoned",
                ));
            };
            match inflight.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let this = self.clone();
                    let k = key.clone();
                    let f = async move {
                        let result = this.run(call, true).await;
                        if let Ok(mut m) = this.inflight.lock() {
                            m.remove(&k);
                        }
                        result
                    }
                    .boxed()
                    .shared();
                    inflight.insert(key, f.clone());
                    f
                }
            }
        };
        fut.await
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
        let retries = if retry { self.config.retries } else { 0 };
        let attempts = async {
            let mut attempt = 0;
            loop {
                let result = self.attempt(call.clone()).await;
                match result {
                    Err(e) if e.code == ErrorCode::SourceUnavailable && attempt < retries => {
                        attempt += 1;
                        let base = 25u64 << attempt.min(6);
                        let jitter = rand::random_range(0..=base);
                        tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                    }
                    other => return other,
                }
            }
        };
        let result = match tokio::time::timeout(self.config.timeout, attempts).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::new(
                ErrorCode::SourceTimeout,
                &self.name,
                format!("no answer within {:?}", self.config.timeout),
            )),
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
        self.record(&result, started.elapsed());
        result.map(|rows| Arc::new(Fetched::new(rows, SystemTime::now())))
    }

    async fn attempt(&self, call: Call) -> Result<Vec<Value>, SourceError> {
        let Ok(_permit) = self.limit.acquire().await else {
            return Err(SourceError::new(
                ErrorCode::Internal,
                &self.name,
                "limiter closed",
            ));
        };
        match (&self.kind, call) {
            (AnySource::Sql(s), Call::Sql { sql, params }) => {
                s.query(&self.name, sql, params).await
            }
            (AnySource::File(f), Call::Sql { sql, params }) => {
                f.query(&self.name, sql, params).await
            }
            (AnySource::Http(h), Call::Http(c)) => h.call(&self.name, c).await,
            _ => Err(SourceError::new(
                ErrorCode::Internal,
                &self.name,
                "call does not match connector kind",
            )),
        }
    }

    fn record(&self, result: &Result<Vec<Value>, SourceError>, took: Duration) {
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        h.latency = Some(took);
        match result {
            Ok(_) => {
                h.last_success = Some(SystemTime::now());
                h.last_error = None;
                h.consecutive_failures = 0;
            }
            Err(e) => {
                h.last_error = Some(e.code);
                h.consecutive_failures += 1;
                tracing::warn!(connector = %self.name, code = %e.code, detail = %e.detail, "upstream call failed");
            }
        }
    }
}
