//! Every request runs in a `request` span named by its request id: the client's
//! `x-request-id` when it is a plain token (at most 64 letters, digits, `-`, `_`, `.`), else
//! 64 random bits in hex. The id is sent back in `x-request-id`, and every log event of
//! the request carries it (the JSON log writes the span). The request's own line (method,
//! path, status, milliseconds; never the query string, headers or body) is logged at
//! `simpul::access=debug`.

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
    let span = tracing::info_span!("request", request_id = %id);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
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
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
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
