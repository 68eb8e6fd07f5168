//! The loopback upstream: a JSONPlaceholder-like API that counts every request.
//!
//! `GET /posts` (100 posts, `userId = (id - 1) / 10 + 1`), `GET /users/{id}`,
//! `GET /users?id=1&id=2...` (10 users, `id=1,2` also accepted) and `GET /items` (10,000
//! items; `?n=N` for the first N). The large bodies are serialized once at startup, so the
//! upstream costs the machine as little as possible while the gateway is measured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::FutureExt;
use serde_json::{Value, json};

pub const POSTS: u64 = 100;
pub const USERS: u64 = 10;
pub const ITEMS: u64 = 10_000;

pub fn post(id: u64) -> Value {
    json!({ "id": id, "userId": (id - 1) / 10 + 1, "title": format!("post {id}"), "body": "..." })
}

pub fn user(id: u64) -> Value {
    json!({ "id": id, "name": format!("User {id}"), "email": format!("user{id}@example.org"), "username": format!("u{id}") })
}

pub fn item(id: u64) -> Value {
    json!({ "id": id, "name": format!("item {id}"), "value": id as f64 * 0.5 })
}

/// `/feed`: the posts, each followed by its user on the user's first post, every entry
/// naming its type in `kind` (a union's discriminator).
fn feed_body() -> Bytes {
    let mut entries = Vec::new();
    for id in 1..=POSTS {
        let mut p = post(id);
        p["kind"] = json!("Post");
        entries.push(p);
        if id % 10 == 1 {
            let mut u = user((id - 1) / 10 + 1);
            u["kind"] = json!("User");
            entries.push(u);
        }
    }
    Bytes::from(Value::Array(entries).to_string())
}

fn items_body(n: u64) -> Bytes {
    Bytes::from(Value::Array((1..=n).map(item).collect()).to_string())
}

struct Bodies {
    posts: Bytes,
    feed: Bytes,
    items: Bytes,
    items_1k: Bytes,
}

pub struct Upstream {
    pub addr: SocketAddr,
    hits: Arc<AtomicU64>,
    exports: Arc<AtomicU64>,
}

impl Upstream {
    /// Serves on 127.0.0.1 (a free port) on the current runtime.
    pub async fn start() -> Upstream {
        let hits = Arc::new(AtomicU64::new(0));
        let bodies = Arc::new(Bodies {
            posts: Bytes::from(Value::Array((1..=POSTS).map(post).collect()).to_string()),
            feed: feed_body(),
            items: items_body(ITEMS),
            items_1k: items_body(1_000),
        });
        let exports = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        let exported = exports.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            // `--otlp` points Simpul's trace exporter here: accepted and counted apart, so
            // the upstream's call counts stay those of the workload.
            if req.uri().path() == "/v1/traces" {
                exported.fetch_add(1, Ordering::Relaxed);
                let ok = (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    Bytes::new(),
                );
                return std::future::ready(ok.into_response()).left_future();
            }
            counter.fetch_add(1, Ordering::Relaxed);
            let bodies = bodies.clone();
            async move { handle(&bodies, req) }.right_future()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream on 127.0.0.1");
        let addr = listener.local_addr().expect("upstream address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            addr,
            hits,
            exports,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn calls(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// OTLP trace exports received so far (`--otlp`).
    pub fn exports(&self) -> u64 {
        self.exports.load(Ordering::Relaxed)
    }
}

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "{}").into_response()
}

fn handle(bodies: &Bodies, req: Request) -> Response {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let param = |name: &str| -> Vec<u64> {
        query
            .split('&')
            .filter_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .flat_map(|v| v.split("%2C").flat_map(|v| v.split(',')))
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    match path {
        "/posts" => json_body(bodies.posts.clone()),
        "/feed" => json_body(bodies.feed.clone()),
        "/users" => {
            let users: Vec<Value> = param("id")
                .into_iter()
                .filter(|i| (1..=USERS).contains(i))
                .map(user)
                .collect();
            json_body(Bytes::from(Value::Array(users).to_string()))
        }
        "/items" => match param("n").first().copied() {
            None | Some(ITEMS) => json_body(bodies.items.clone()),
            Some(1_000) => json_body(bodies.items_1k.clone()),
            Some(n) => json_body(items_body(n.min(ITEMS))),
        },
        p => match p
            .strip_prefix("/users/")
            .and_then(|id| id.parse::<u64>().ok())
        {
            Some(id) if (1..=USERS).contains(&id) => json_body(Bytes::from(user(id).to_string())),
            _ => not_found(),
        },
    }
}
