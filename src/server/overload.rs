//! Bounds on what the gateway takes on: requests in progress (past the bound, 503 at once
//! with `Retry-After` instead of an ever longer queue), and the end of a shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

use crate::error::ErrorCode;

/// Requests in progress, at most `max`.
#[derive(Clone)]
pub struct InProgress {
    permits: Arc<Semaphore>,
    max: usize,
}

impl InProgress {
    pub fn new(max: usize) -> InProgress {
        InProgress {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A place, held until dropped; `None` when every place is taken.
    pub fn place(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Places taken now.
    pub fn taken(&self) -> usize {
        self.max.saturating_sub(self.permits.available_permits())
    }
}

/// Runs the request while a place is free; otherwise answers 503 with `Retry-After` without
/// reading the request.
pub async fn bounded(State(places): State<InProgress>, request: Request, next: Next) -> Response {
    let Some(_place) = places.place() else {
        crate::metrics::get().limit_hit("max_in_flight");
        let mut r = super::http::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RateLimited,
            &format!(
                "the gateway is answering {} requests already; retry shortly",
                places.max
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    next.run(request).await
}

/// Once the shutdown signal came, the process ends `grace` later whatever its requests are
/// doing: a thread of its own, so a runtime kept busy cannot hold the exit back.
pub fn exit_after(grace: Duration) {
    let spawned = std::thread::Builder::new()
        .name("shutdown-grace".into())
        .spawn(move || {
            std::thread::sleep(grace);
            tracing::warn!(
                ?grace,
                "requests still in progress after shutdown_grace; exiting"
            );
            std::process::exit(0);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the shutdown timer; exiting now");
        std::process::exit(0);
    }
}

/// How much of an oversized body is read and thrown away before answering 413, and for how
/// long at most: a client that is still sending when the connection closes sees a broken
/// pipe instead of the answer. Enough for a phone's 50 MB video sent as a photo; the time
/// bounds the work whatever the size.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The largest body of each kind of `POST`: JSON, and a multipart upload (its files on top).
#[derive(Clone, Copy)]
pub struct BodyLimits {
    pub json: usize,
    pub multipart: usize,
}

impl BodyLimits {
    pub fn of(limits: &crate::blueprint::settings::Limits) -> BodyLimits {
        BodyLimits {
            json: limits.max_body_bytes,
            multipart: limits.max_multipart_bytes(),
        }
    }
}

/// Refuses a body whose announced length is over its limit (`max_body_bytes`, or the
/// multipart bound for uploads) with 413 (JSON, naming the limit), after reading and
/// dropping a bounded part of it so the client gets the answer.
pub async fn body_limit(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let multipart = super::http::is_multipart(request.headers());
    let (max, named) = match multipart {
        true => (
            limits.multipart,
            "max_uploads × max_upload_bytes + max_body_bytes",
        ),
        false => (limits.json, "max_body_bytes"),
    };
    match announced {
        Some(n) if n > max as u64 => {
            crate::metrics::get().limit_hit(match multipart {
                true => "max_upload_bytes",
                false => "max_body_bytes",
            });
            drain(&mut request.into_body().into_data_stream()).await;
            super::http::error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadRequest,
                &format!("the request body has {n} bytes (limit {named} = {max})"),
            )
        }
        _ => next.run(request).await,
    }
}

/// Reads and drops what is left of a refused body, at most [`DRAIN_BYTES`] for at most
/// [`DRAIN_TIME`].
pub(super) async fn drain(body: &mut axum::body::BodyDataStream) {
    let mut drained = 0usize;
    let drain = async {
        use futures::StreamExt;
        while let Some(Ok(chunk)) = body.next().await {
            drained += chunk.len();
            if drained > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}
