//! The connector kinds: how Simpul talks to each kind of source. Nothing here knows GraphQL;
//! a connector takes a rendered [`Call`] and returns rows as JSON values.

mod bps;
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
        Ok(Source {
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

    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Runs `call`, sharing it with every identical call already in flight when `shareable`.
    pub async fn fetch(self: &Arc<Self>, call: Call, shareable: bool) -> FetchResult {
        if !shareable {
            return self.run(call).await;
        }
        let key = call.key();
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
                        let result = this.run(call).await;
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

    /// One upstream call under the connector's concurrency limit and timeout.
    async fn run(&self, call: Call) -> FetchResult {
        let started = Instant::now();
        let result = {
            let Ok(_permit) = self.limit.acquire().await else {
                return Err(SourceError::new(
                    ErrorCode::Internal,
                    &self.name,
                    "limiter closed",
                ));
            };
            let work = async {
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
            };
            match tokio::time::timeout(self.config.timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(SourceError::new(
                    ErrorCode::SourceTimeout,
                    &self.name,
                    format!("no answer within {:?}", self.config.timeout),
                )),
            }
        };
        self.record(&result, started.elapsed());
        result.map(|rows| {
            Arc::new(Fetched {
                rows,
                fetched_at: SystemTime::now(),
            })
        })
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
