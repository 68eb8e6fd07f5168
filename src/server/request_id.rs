//! Every request runs in a `request` span named by its request id: the client's
//! `x-request-id` when it is a plain token (at most 64 letters, digits, `-`, `_`, `.`), else
//! 64 random bits in hex. The id is sent back in `x-request-id`, and every log event of
//! the request carries it (the JSON log writes the span). The request's own line (method,
//! path, status, milliseconds; never the query string, headers or body) is logged at
//! `simpul::access=debug`. With traces exported (`crate::telemetry`), the span is the
//! trace's server span, the child of the client's `traceparent`; the log lines then carry
//! its `trace_id` (else the id of the client's `traceparent`, when it sent one).

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

pub async fn traced(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| plain(v))
        .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_string);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // The fields past `trace_id` are for traces only: set when traces are exported (the
    // log leaves out fields without a value). A span's name and kind are set as it is made:
    // the tracer starts it when the client's trace is adopted.
    let traced = crate::telemetry::enabled();
    let name = traced.then(|| format!("{method} {}", route(&path)));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        trace_id = tracing::field::Empty,
        otel.name = name.as_deref(),
        otel.kind = traced.then_some("server"),
        otel.status_code = tracing::field::Empty,
        http.request.method = traced.then_some(method.as_str()),
        url.path = traced.then_some(path.as_str()),
        http.response.status_code = tracing::field::Empty,
        graphql.operation.name = tracing::field::Empty,
        graphql.operation.type = tracing::field::Empty,
        simpul.view = tracing::field::Empty,
        simpul.outcome = tracing::field::Empty,
    );
    if let Some(trace) = crate::telemetry::adopt(&span, request.headers()) {
        span.record("trace_id", trace);
    }
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            target: "simpul::access",
            %method,
            %path,
            status = response.status().as_u16(),
            ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "request"
        );
    });
    if crate::telemetry::enabled() {
        span.record(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        );
        if response.status().is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

/// The route a path took, for a span's name: the dashboard's files are one route.
fn route(path: &str) -> &str {
    match path {
        "/" | "/graphql" | "/healthz" | "/readyz" | "/metrics" => path,
        "/admin/cache" | "/admin/cache/invalidate" => path,
        p if p.starts_with("/ui/") => "/ui/*",
        p if p.starts_with("/assets/") => "/assets/*",
        _ => "(no route)",
    }
}

/// A request id a client may choose: short, and nothing a log reader could mistake.
fn plain(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_ids_are_taken_from_clients() {
        assert!(super::plain("req-42_a.b"));
        for bad in ["", "a b", "x\ny", &"a".repeat(65), "<script>"] {
            assert!(!super::plain(bad), "{bad:?}");
        }
    }
}
