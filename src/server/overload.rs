//! Bounds on what the gateway takes on: requests in progress (past the bound, 503 at once
//! with `Retry-After` instead of an ever longer queue), and the end of a shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
}

/// Runs the request while a place is free; otherwise answers 503 with `Retry-After` without
/// reading the request.
pub async fn bounded(State(places): State<InProgress>, request: Request, next: Next) -> Response {
    let Ok(_place) = places.permits.clone().try_acquire_owned() else {
        let body = serde_json::json!({ "errors": [{
            "message": format!("the gateway is answering {} requests already; retry shortly", places.max),
            "extensions": { "code": ErrorCode::RateLimited.as_str() },
        }] });
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, body.to_string()).into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
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
