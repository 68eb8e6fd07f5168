//! The baseline: a bare axum server, in its own process like Simpul, that answers
//! `POST /graphql` with the exact bytes Simpul answered for the same request body. No
//! parsing, no resolving: what this machine can do at most over the same HTTP stack.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One canned answer, registered by the bench before it loads the baseline.
#[derive(Serialize, Deserialize)]
pub struct Canned {
    /// The request body it answers (exact bytes).
    pub request: String,
    /// The response body (exact bytes).
    pub response: String,
    pub content_type: String,
}

#[derive(Clone)]
struct Answer {
    content_type: HeaderValue,
    body: Bytes,
}

type Table = Arc<RwLock<HashMap<Bytes, Answer>>>;

/// Runs the baseline server on `addr` until the process is stopped.
pub fn serve(addr: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("baseline runtime");
    runtime.block_on(async move {
        let table: Table = Arc::default();
        let app = Router::new()
            .route("/graphql", post(graphql))
            .route("/__register", post(register))
            .route("/readyz", get(|| async { "ready" }))
            .with_state(table);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the baseline");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                if let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                {
                    term.recv().await;
                }
            })
            .await
            .expect("serve the baseline");
    });
}

async fn graphql(State(table): State<Table>, body: Bytes) -> Response {
    let found = table.read().ok().and_then(|t| t.get(&body).cloned());
    match found {
        Some(a) => ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response(),
        None => (StatusCode::NOT_FOUND, "no canned answer for this request").into_response(),
    }
}

async fn register(State(table): State<Table>, body: Bytes) -> Response {
    let Ok(canned) = serde_json::from_slice::<Canned>(&body) else {
        return (StatusCode::BAD_REQUEST, "expected a Canned JSON object").into_response();
    };
    let Ok(content_type) = HeaderValue::from_str(&canned.content_type) else {
        return (StatusCode::BAD_REQUEST, "bad content type").into_response();
    };
    let answer = Answer {
        content_type,
        body: Bytes::from(canned.response),
    };
    match table.write() {
        Ok(mut t) => {
            t.insert(Bytes::from(canned.request), answer);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
