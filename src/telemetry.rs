//! Traces: spans of `tracing` (target [`TARGET`], and the `request` span) exported as
//! OpenTelemetry over OTLP/HTTP when `[telemetry] otlp_endpoint` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; W3C `traceparent` taken from clients and sent to
//! HTTP upstreams.
//!
//! Without an endpoint there is no tracer: the spans of [`TARGET`] are switched off in the
//! log's filter, so they are never built, and nothing here is called on the request path
//! but [`enabled`], one relaxed load.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::telemetry::Telemetry;

/// The target of the spans that exist for traces only (GraphQL phases, connector calls).
pub const TARGET: &str = "simpul::trace";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// True when spans are exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporting tracer; spans still buffered are sent when it is shut down.
pub struct Tracer {
    provider: SdkTracerProvider,
}

impl Tracer {
    /// Starts the exporter (a thread of its own, batching spans). Call outside the async
    /// runtime: the exporter's HTTP client is a blocking one.
    pub fn start(settings: &Telemetry) -> Result<Tracer, String> {
        use opentelemetry_otlp::{Protocol, WithExportConfig};
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.traces_url.clone())
            .with_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("telemetry: {e}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(settings.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))))
            .with_resource(resource)
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        ENABLED.store(true, Ordering::Relaxed);
        Ok(Tracer { provider })
    }

    /// The layer that turns `tracing` spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("simpul"))
            .with_tracked_inactivity(false)
    }

    /// Sends what is buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry: spans not all exported at exit: {e}");
        }
    }
}

/// Makes `span` (a request's) the child of the client's `traceparent`, when traces are
/// exported, and returns the trace id the request's log lines carry: the exported trace's,
/// else the client's own from its `traceparent`.
pub fn adopt(span: &tracing::Span, headers: &HeaderMap) -> Option<String> {
    if !enabled() {
        return headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(client_trace_id)
            .map(str::to_string);
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
    let id = span.context().span().span_context().trace_id();
    (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_string())
}

/// The trace id of a well-formed W3C `traceparent` (version 00), not all zeros.
fn client_trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let well_formed = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && span.bytes().any(|b| b != b'0');
    well_formed.then_some(trace)
}

/// The `traceparent` (and `tracestate`) of the current span, for an upstream request.
pub fn inject(headers: &mut HeaderMap) {
    if !enabled() {
        return;
    }
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeadersMut(headers));
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_trace_id;

    #[test]
    fn only_well_formed_traceparents_give_a_trace_id() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            client_trace_id(&format!("00-{id}-00f067aa0ba902b7-01")),
            Some(id)
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(client_trace_id(bad), None, "{bad}");
        }
    }
}
