//! Streams that outlive their request (websockets, SSE responses): at most
//! `[limits] max_live_connections` open at once in the process, and told to end when the
//! server drains.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::error::ErrorCode;

pub struct Live {
    places: Arc<Semaphore>,
    max: usize,
    /// True once the server drains: every stream ends (a websocket with 1001).
    draining: watch::Sender<bool>,
}

impl Live {
    pub fn new(max: usize) -> Live {
        Live {
            places: Arc::new(Semaphore::new(max)),
            max,
            draining: watch::Sender::new(false),
        }
    }

    /// A place for one stream, held as long as it is open; past the bound (or once
    /// draining) a 503 to answer instead.
    pub(super) fn admit(&self) -> Result<OwnedSemaphorePermit, Box<Response>> {
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .ok()
            .filter(|_| !*self.draining.borrow());
        place.ok_or_else(|| {
            crate::metrics::get().limit_hit("max_live_connections");
            let mut r = super::http::error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RateLimited,
                &format!(
                    "the gateway holds {} live connections already; retry shortly",
                    self.max
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Box::new(r)
        })
    }

    /// Streams open now.
    pub(super) fn open(&self) -> usize {
        self.max.saturating_sub(self.places.available_permits())
    }

    /// Resolves once the server drains.
    pub(super) fn draining(&self) -> watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// Tells every open stream to end.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    /// Waits until every stream has ended (each gives its place back), at most `within`.
    pub async fn ended(&self, within: Duration) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(within, self.places.acquire_many(all)).await;
    }
}

/// Waits until `draining` says the server drains (forever if it never does).
pub(super) async fn drained(draining: &mut watch::Receiver<bool>) {
    if draining.wait_for(|d| *d).await.is_err() {
        // The sender lives as long as the state: gone only when nothing is served.
        std::future::pending::<()>().await;
    }
}

/// When a caller's token stops being accepted, as a deadline of the runtime's clock; `None`
/// for a caller without one.
pub(super) fn expiry(at: Option<SystemTime>) -> Option<tokio::time::Instant> {
    let at = at?;
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    // Past what the clock can count: never, for this process.
    Instant::now()
        .checked_add(left)
        .map(tokio::time::Instant::from_std)
}

/// Resolves at `deadline`, never when there is none.
pub(super) async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
