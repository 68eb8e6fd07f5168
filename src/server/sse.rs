//! GraphQL over SSE, distinct connections mode (graphql-sse's PROTOCOL.md): `POST` or `GET
//! /graphql` with `Accept: text/event-stream` answers one `next` event per result, then
//! `complete`, and the response ends.
//!
//! A request that is not a GraphQL request (bad JSON, wrong parameter types), a token
//! refused, or a client over its rate, is answered with the ordinary JSON error before any
//! stream starts. Errors of a well-formed request (limits, validation, variables) come as a
//! `next` event with `errors`, as the protocol requires: a 400 would reach a browser's
//! `EventSource` as an error without its reason.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::AppState;
use super::http::Params;
use super::live;
use super::operation::{self, Sent, Started};
use crate::auth::Caller;

/// A comment this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(12);

const COMPLETE: &[u8] = b"event: complete\ndata:\n\n";

/// Starts the operation in `p` and answers its results as an event stream.
pub(super) async fn respond(
    state: &AppState,
    caller: &Caller,
    p: Params<'static>,
    sent: Sent,
) -> Response {
    let place = match state.live.admit() {
        Ok(place) => place,
        Err(busy) => return *busy,
    };
    let results: BoxStream<'static, Vec<u8>> = match operation::start(state, caller, p, sent).await
    {
        Started::Single(body) => stream::once(async move { body }).boxed(),
        Started::Stream(events) => events,
        Started::Refused(errors) => {
            let body = json!({ "errors": errors }).to_string().into_bytes();
            stream::once(async move { body }).boxed()
        }
    };
    let events = Events {
        results,
        expiry: live::expiry(state.auth.expires(caller)),
        draining: state.live.draining(),
        keep_alive: Box::pin(tokio::time::sleep(KEEP_ALIVE)),
        ended: false,
        _place: place,
    };
    let mut r = (StatusCode::OK, Body::from_stream(events.into_stream())).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies that buffer responses (nginx) would hold the events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// One stream's state: its results, and what else ends it.
struct Events {
    results: BoxStream<'static, Vec<u8>>,
    /// When the caller's token stops being accepted: the stream completes then.
    expiry: Option<tokio::time::Instant>,
    draining: watch::Receiver<bool>,
    keep_alive: Pin<Box<tokio::time::Sleep>>,
    ended: bool,
    /// Its place among `max_live_connections`, given back when the response is dropped.
    _place: OwnedSemaphorePermit,
}

impl Events {
    fn into_stream(self) -> impl futures::Stream<Item = Result<Vec<u8>, Infallible>> + Send {
        stream::unfold(self, |mut ev| async move {
            if ev.ended {
                return None;
            }
            let chunk = tokio::select! {
                biased;
                // Without `complete`: a client reconnects (to another instance) instead of
                // taking the operation as done.
                _ = live::drained(&mut ev.draining) => return None,
                _ = live::until(ev.expiry) => {
                    ev.ended = true;
                    COMPLETE.to_vec()
                }
                result = ev.results.next() => match result {
                    Some(body) => next_event(&body),
                    None => {
                        ev.ended = true;
                        COMPLETE.to_vec()
                    }
                },
                _ = ev.keep_alive.as_mut() => b":\n\n".to_vec(),
            };
            let deadline = tokio::time::Instant::now() + KEEP_ALIVE;
            ev.keep_alive.as_mut().reset(deadline);
            Some((Ok(chunk), ev))
        })
    }
}

/// `event: next` with `body` as its data: one `data:` line per line of it (SSE ends a line
/// at CR or LF), so a line break inside can never end the event early.
fn next_event(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 32);
    out.extend_from_slice(b"event: next\n");
    for line in body.split(|&b| b == b'\n' || b == b'\r') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::next_event;

    #[test]
    fn a_line_break_in_a_result_stays_inside_its_event() {
        assert_eq!(
            next_event(b"{\"data\":\r1}"),
            b"event: next\ndata: {\"data\":\ndata: 1}\n\n".to_vec()
        );
        assert_eq!(next_event(b"{}"), b"event: next\ndata: {}\n\n".to_vec());
    }
}
