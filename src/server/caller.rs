//! Who is calling, and whether they may call now: the bearer token verified (401 when it
//! does not) and the caller's rate budget spent (429 past it), before anything is parsed.

use std::net::IpAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::AppState;
use super::http::error_response;
use crate::auth::Caller;
use crate::error::ErrorCode;

/// The caller a request's `Authorization` names, within its rate limit.
pub(super) async fn admit(
    state: &AppState,
    authorization: Option<&HeaderValue>,
    ip: Option<IpAddr>,
) -> Result<Caller, Response> {
    let mut caller = match state.auth.authenticate(authorization).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(reason = %e, "token refused");
            let mut r = error_response(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                &format!("invalid token: {e}"),
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Err(r);
        }
    };
    if let Err(secs) = spend(state, &caller, ip) {
        crate::metrics::get().limit_hit("rate");
        let mut r = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            &format!("too many requests: try again in {secs} s"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Err(r);
    }
    caller.client = Some(super::rate::client_key(&caller, ip));
    Ok(caller)
}

/// Spends one request of `caller`'s budget; `Err` holds the seconds to wait before the next
/// one is allowed.
pub(super) fn spend(state: &AppState, caller: &Caller, ip: Option<IpAddr>) -> Result<(), u64> {
    state.rates.check(caller, ip).map_err(|wait| {
        // Rounded up: a client that waits this long finds its budget refilled.
        (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
    })
}
