//! Admin endpoints, off unless `[admin] token` is set (from the environment).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::cache::Invalidation;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidateRequest {
    connector: Option<String>,
    binding: Option<String>,
    #[serde(default)]
    all: bool,
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `None` when the caller holds the admin token, else the response refusing it.
fn refused(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = state.engine.blueprint.admin_token.as_deref() else {
        return Some(
            (
                StatusCode::NOT_FOUND,
                "admin endpoints are off: set [admin] token",
            )
                .into_response(),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if same(given.as_bytes(), token.as_bytes()) {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "bearer token required",
            )
                .into_response(),
        )
    }
}

/// `POST /admin/cache/invalidate` with `{"connector": "x"}`, `{"binding": "Type.field"}` or
/// `{"all": true}`: drops matching entries here, in Redis and on every other instance.
pub async fn invalidate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let req: InvalidateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("invalid body: {e}") })),
            )
                .into_response();
        }
    };
    let bp = &state.engine.blueprint;
    let what = match (req.connector, req.binding, req.all) {
        (Some(c), None, false) if bp.connectors.iter().any(|x| x.name == c) => {
            Invalidation::Connector(c)
        }
        (None, Some(b), false) if bp.bindings.iter().any(|x| x.name == b) => {
            Invalidation::Binding(b)
        }
        (None, None, true) => Invalidation::All,
        (Some(c), None, false) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": format!("no connector '{c}'") })),
            )
                .into_response();
        }
        (None, Some(b), false) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": format!("no binding '{b}' (write Type.field)") })),
            )
                .into_response();
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "give exactly one of connector, binding or all: true" })),
            )
                .into_response();
        }
    };
    tracing::info!(?what, "cache invalidated");
    state.engine.cache.invalidate(what.clone()).await;
    Json(json!({ "invalidated": what })).into_response()
}

/// `GET /admin/cache`: entries and weighed bytes of the in-process cache, its bound, and the
/// loads in flight.
pub async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let (entries, bytes) = state.engine.cache.usage().await;
    Json(json!({
        "entries": entries,
        "weightedBytes": bytes,
        "maxBytes": state.engine.blueprint.cache.max_memory,
        "loading": state.engine.cache.loading(),
    }))
    .into_response()
}
