//! The process's counters and histograms, published at `GET /metrics` in the Prometheus
//! text format (with the gauges read from the running gateway at each scrape, see
//! `server::metrics`).
//!
//! Counters live for the process, whatever the deployment serving (a reload keeps them).
//! Labels are bounded: connectors and views come from the deployment; operation names come
//! from clients, so at most [`MAX_OPERATIONS`] distinct plain names are kept, the rest
//! counted as `_other`.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Distinct operation names a label may take; past this they are `_other`.
pub const MAX_OPERATIONS: usize = 200;

/// Request latencies, in seconds: from a cache hit to a request's timeout.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    connector_calls: IntCounterVec,
    connector_seconds: HistogramVec,
    cache: IntCounterVec,
    evictions: IntCounterVec,
    limits: IntCounterVec,
    subscriptions: IntCounterVec,
    operations: Mutex<HashSet<Arc<str>>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// How a GraphQL request ended, as its `outcome` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered without errors.
    Ok,
    /// Answered, with errors (a source failed, a value was refused).
    Errors,
    /// Refused before it ran (a bad document, a limit, a variable, the safelist).
    Rejected,
    /// 401: the token was refused.
    Unauthorized,
    /// 429: over the caller's rate budget.
    RateLimited,
    /// 503: the gateway is full.
    Overloaded,
    /// A stream opened (SSE or a websocket).
    Stream,
    /// Anything else (a 5xx).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Errors => "errors",
            Outcome::Rejected => "rejected",
            Outcome::Unauthorized => "unauthorized",
            Outcome::RateLimited => "rate_limited",
            Outcome::Overloaded => "overloaded",
            Outcome::Stream => "stream",
            Outcome::Failed => "failed",
        }
    }

    /// The outcome a status says, when the handler did not say more.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            101 => Outcome::Stream,
            200..=299 => Outcome::Ok,
            401 => Outcome::Unauthorized,
            429 => Outcome::RateLimited,
            503 => Outcome::Overloaded,
            400..=499 => Outcome::Rejected,
            _ => Outcome::Failed,
        }
    }
}

// The names and labels are constants, valid by the exposition format's rules: these only
// fail on a typo, which every test that builds `Metrics` would show.
#[allow(clippy::expect_used)]
fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric name")
}

#[allow(clippy::expect_used)]
fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(SECONDS.to_vec()),
        labels,
    )
    .expect("a valid metric name")
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::new(),
            requests: counter(
                "simpul_requests_total",
                "GraphQL requests over HTTP, by operation name, type, the caller's view and outcome.",
                &["operation", "type", "view", "outcome"],
            ),
            request_seconds: histogram(
                "simpul_request_duration_seconds",
                "Time to answer a GraphQL request over HTTP (to the first byte of a stream).",
                &["type", "view"],
            ),
            connector_calls: counter(
                "simpul_connector_calls_total",
                "Calls made to a source (not answered by a cache), by outcome: ok or the error code.",
                &["connector", "kind", "outcome"],
            ),
            connector_seconds: histogram(
                "simpul_connector_call_duration_seconds",
                "Time of one call to a source, retries included.",
                &["connector"],
            ),
            cache: counter(
                "simpul_cache_lookups_total",
                "Binding cache lookups, by result: hit, miss or stale (served while refreshed or while the source fails).",
                &["connector", "result"],
            ),
            evictions: counter(
                "simpul_cache_evictions_total",
                "Binding cache entries dropped from memory, by cause: size (the memory bound) or expired.",
                &["cause"],
            ),
            limits: counter(
                "simpul_limits_hit_total",
                "Requests refused by a configured limit, by the limit's name.",
                &["limit"],
            ),
            subscriptions: counter(
                "simpul_subscriptions_total",
                "Subscriptions opened, by the caller's view.",
                &["view"],
            ),
            operations: Mutex::new(HashSet::new()),
        };
        for c in [
            &m.requests,
            &m.connector_calls,
            &m.cache,
            &m.evictions,
            &m.limits,
            &m.subscriptions,
        ] {
            m.register(Box::new(c.clone()));
        }
        m.register(Box::new(m.request_seconds.clone()));
        m.register(Box::new(m.connector_seconds.clone()));
        m
    }

    fn register(&self, c: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(c) {
            tracing::error!(error = %e, "metric not registered");
        }
    }

    /// One GraphQL request over HTTP.
    pub fn request(
        &self,
        operation: Option<&str>,
        kind: &str,
        view: &str,
        outcome: Outcome,
        took: Duration,
    ) {
        let operation = self.operation(operation);
        self.requests
            .with_label_values(&[&*operation, kind, view, outcome.as_str()])
            .inc();
        self.request_seconds
            .with_label_values(&[kind, view])
            .observe(took.as_secs_f64());
    }

    /// The label of a client's operation name: itself if plain and among the first
    /// [`MAX_OPERATIONS`] seen, else `_other`; `_anonymous` without a name.
    fn operation(&self, name: Option<&str>) -> Arc<str> {
        let Some(name) = name else {
            return "_anonymous".into();
        };
        let plain = name.len() <= 64
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain {
            return "_other".into();
        }
        let Ok(mut seen) = self.operations.lock() else {
            return "_other".into();
        };
        if let Some(known) = seen.get(name) {
            return known.clone();
        }
        if seen.len() >= MAX_OPERATIONS {
            return "_other".into();
        }
        let name: Arc<str> = name.into();
        seen.insert(name.clone());
        name
    }

    /// One call to a source: `outcome` is "ok" or the error code.
    pub fn connector_call(&self, connector: &str, kind: &str, outcome: &str, took: Duration) {
        self.connector_calls
            .with_label_values(&[connector, kind, outcome])
            .inc();
        self.connector_seconds
            .with_label_values(&[connector])
            .observe(took.as_secs_f64());
    }

    /// One lookup in the binding cache: "hit", "miss" or "stale".
    pub fn cache_lookup(&self, connector: &str, result: &str) {
        self.cache.with_label_values(&[connector, result]).inc();
    }

    /// A binding cache entry dropped from memory for `cause`.
    pub fn cache_eviction(&self, cause: &str) {
        self.evictions.with_label_values(&[cause]).inc();
    }

    /// A request refused by `limit` (its name in simpul.toml, e.g. "max_depth").
    pub fn limit_hit(&self, limit: &str) {
        self.limits.with_label_values(&[limit]).inc();
    }

    /// A subscription opened by a caller of `view`.
    pub fn subscription(&self, view: &str) {
        self.subscriptions.with_label_values(&[view]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_operation_names_are_bounded() {
        let m = Metrics::new();
        assert_eq!(&*m.operation(None), "_anonymous");
        assert_eq!(&*m.operation(Some("a b")), "_other");
        assert_eq!(&*m.operation(Some(&"x".repeat(65))), "_other");
        for i in 0..MAX_OPERATIONS {
            assert_eq!(&*m.operation(Some(&format!("Op{i}"))), format!("Op{i}"));
        }
        assert_eq!(&*m.operation(Some("OneTooMany")), "_other");
        assert_eq!(&*m.operation(Some("Op7")), "Op7", "known names stay");
    }

    #[test]
    fn statuses_say_an_outcome() {
        assert_eq!(Outcome::of_status(200), Outcome::Ok);
        assert_eq!(Outcome::of_status(413), Outcome::Rejected);
        assert_eq!(Outcome::of_status(429), Outcome::RateLimited);
        assert_eq!(Outcome::of_status(503), Outcome::Overloaded);
        assert_eq!(Outcome::of_status(101), Outcome::Stream);
    }
}
