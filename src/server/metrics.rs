//! `GET /metrics`: the process's counters and histograms (`crate::metrics`) and, read at
//! each scrape, the gauges of the gateway serving now: sources (status, circuit, calls in
//! flight), the binding cache (entries, bytes), requests in progress, live streams, reloads
//! and the model's generation, open alerts by severity and the outbox's depth and age.
//!
//! And [`observe`], the middleware that counts each GraphQL request over HTTP: its handler
//! leaves an [`Observed`] in the response (operation, type, view, outcome), the middleware
//! counts it with the time taken and names the request's span after it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, GaugeVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::AppState;
use crate::metrics::Outcome;

/// What a GraphQL handler tells [`observe`] about the request it answered.
#[derive(Clone, Debug)]
pub struct Observed {
    pub operation: Option<String>,
    /// "query", "mutation", "subscription", or "unknown" when refused before it was known.
    pub kind: &'static str,
    pub view: String,
    pub outcome: Outcome,
}

impl Observed {
    /// Leaves `self` in `response` for [`observe`].
    pub fn on(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// Counts the GraphQL request, and names its span (operation, type, view) for traces.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let observed = response.extensions().get::<Observed>();
    let outcome = match observed {
        Some(o) => o.outcome,
        None if event_stream => Outcome::Stream,
        None => Outcome::of_status(status),
    };
    let (operation, kind, view) = match observed {
        Some(o) => (o.operation.as_deref(), o.kind, o.view.as_str()),
        None => (None, "unknown", "unknown"),
    };
    crate::metrics::get().request(operation, kind, view, outcome, took);
    if crate::telemetry::enabled() {
        let span = tracing::Span::current();
        span.record("graphql.operation.type", kind);
        span.record("simpul.view", view);
        span.record("simpul.outcome", outcome.as_str());
        if let Some(name) = operation {
            span.record("graphql.operation.name", name);
        }
        if matches!(outcome, Outcome::Failed) {
            span.record("otel.status_code", "ERROR");
        }
    }
    response
}

/// How long the store may take to answer a scrape's questions.
const STORE_WAIT: Duration = Duration::from_secs(2);

/// The metrics, for a caller with `[auth] metrics_token`, or from loopback when none is
/// set: they name sources, operations and open alerts, which are not the public's.
pub async fn scrape(State(state): State<AppState>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|p| p.0);
    if !allowed(&state, peer, request.headers()) {
        return super::http::error_response(
            StatusCode::UNAUTHORIZED,
            crate::error::ErrorCode::Unauthenticated,
            "GET /metrics needs the bearer token of [auth] metrics_token (without one set, \
             only loopback callers are answered)",
        );
    }
    let mut text = Vec::with_capacity(16 << 10);
    let encoder = TextEncoder::new();
    let mut failed = encoder
        .encode(&crate::metrics::get().registry.gather(), &mut text)
        .is_err();
    match gauges(&state).await {
        Ok(registry) => failed |= encoder.encode(&registry.gather(), &mut text).is_err(),
        Err(e) => {
            tracing::error!(error = %e, "metrics gauges not built");
            failed = true;
        }
    }
    if failed {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be written",
        )
            .into_response();
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn allowed(state: &AppState, peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    let token = state
        .engine
        .blueprint
        .auth
        .metrics_token
        .as_deref()
        .filter(|t| !t.trim().is_empty());
    let Some(token) = token else {
        return peer.is_some_and(|p| p.ip().is_loopback());
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests compared, so the time taken says nothing of how much of the token matched.
    crate::digest::sha256_hex(sent.as_bytes()) == crate::digest::sha256_hex(token.as_bytes())
}

/// The gauges of the gateway serving now, in a registry of their own (built per scrape).
async fn gauges(state: &AppState) -> Result<Registry, prometheus::Error> {
    let registry = Registry::new();
    let gauge =
        |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
    let up = gauge(
        "simpul_source_status",
        "1 for each source's status now (UP, DEGRADED, STALE or DOWN), as Query.sources reports it.",
        &["connector", "kind", "status"],
    )?;
    let circuit = gauge(
        "simpul_connector_circuit",
        "1 for each connector's circuit breaker state now (CLOSED, HALF_OPEN or OPEN).",
        &["connector", "state"],
    )?;
    let in_flight = gauge(
        "simpul_connector_in_flight",
        "Calls to a source in flight now.",
        &["connector"],
    )?;
    for s in state.engine.sources.iter() {
        let h = s.health_json();
        let text = |k: &str| h.get(k).and_then(|v| v.as_str()).unwrap_or("UNKNOWN");
        let name = s.name.as_ref();
        up.with_label_values(&[name, s.config.kind.name(), text("status")])
            .set(1);
        circuit.with_label_values(&[name, text("circuit")]).set(1);
        in_flight
            .with_label_values(&[name])
            .set(h.get("inFlight").and_then(|v| v.as_i64()).unwrap_or(0));
    }
    let (entries, bytes) = state.engine.cache.usage().await;
    gauge(
        "simpul_cache_entries",
        "Entries in the binding cache's memory level.",
        &[],
    )?
    .with_label_values(&[] as &[&str])
    .set(i64::try_from(entries).unwrap_or(i64::MAX));
    gauge(
        "simpul_cache_bytes",
        "Bytes weighed in the binding cache's memory level (bounded by [cache] max_memory).",
        &[],
    )?
    .with_label_values(&[] as &[&str])
    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    gauge(
        "simpul_requests_in_progress",
        "GraphQL requests being answered now (bounded by [limits] max_in_flight).",
        &[],
    )?
    .with_label_values(&[] as &[&str])
    .set(i64::try_from(state.in_progress.taken()).unwrap_or(i64::MAX));
    gauge(
        "simpul_live_connections",
        "Websockets and event streams open now (bounded by [limits] max_live_connections).",
        &[],
    )?
    .with_label_values(&[] as &[&str])
    .set(i64::try_from(state.live.open()).unwrap_or(i64::MAX));
    // Counted by the process's reload status, which every model shares: a counter.
    let reloads = prometheus::IntCounterVec::new(
        Opts::new(
            "simpul_reloads_total",
            "Reloads of the deployment while running, by outcome: ok (swapped in) or failed (refused; the old model serves on).",
        ),
        &["outcome"],
    )?;
    registry.register(Box::new(reloads.clone()))?;
    let counts = state.reloads.counts();
    reloads.with_label_values(&["ok"]).inc_by(counts.ok);
    reloads.with_label_values(&["failed"]).inc_by(counts.failed);
    gauge(
        "simpul_model_generation",
        "Which model serves: 1 at start, one more per reload swapped in.",
        &[],
    )?
    .with_label_values(&[] as &[&str])
    .set(i64::try_from(state.generation).unwrap_or(i64::MAX));
    if let Some(store) = &state.engine.state {
        store_gauges(&registry, store).await?;
    }
    Ok(registry)
}

/// Open alerts by severity and the outbox's depth and age; left out (and logged) when the
/// store does not answer in time, so a scrape never waits on it.
async fn store_gauges(
    registry: &Registry,
    store: &crate::state::StateStore,
) -> Result<(), prometheus::Error> {
    let read = match tokio::time::timeout(STORE_WAIT, store.gauges()).await {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: the state store did not answer");
            return Ok(());
        }
        Err(_) => {
            tracing::warn!("metrics: the state store did not answer within 2 s");
            return Ok(());
        }
    };
    let alerts = IntGaugeVec::new(
        Opts::new(
            "simpul_alerts_open",
            "Alerts raised and not resolved, by severity.",
        ),
        &["severity"],
    )?;
    registry.register(Box::new(alerts.clone()))?;
    for (severity, n) in &read.open_alerts {
        alerts.with_label_values(&[severity.as_str()]).set(*n);
    }
    let depth = IntGaugeVec::new(
        Opts::new(
            "simpul_outbox_pending",
            "Outbox calls accepted and not yet delivered nor given up on.",
        ),
        &[],
    )?;
    registry.register(Box::new(depth.clone()))?;
    depth
        .with_label_values(&[] as &[&str])
        .set(read.outbox_pending);
    let age = GaugeVec::new(
        Opts::new(
            "simpul_outbox_oldest_age_seconds",
            "Age of the oldest outbox call waiting for delivery (0 when none waits).",
        ),
        &[],
    )?;
    registry.register(Box::new(age.clone()))?;
    let now = crate::alerts::now_ms();
    age.with_label_values(&[] as &[&str]).set(
        read.outbox_oldest_ms
            .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0),
    );
    Ok(())
}
