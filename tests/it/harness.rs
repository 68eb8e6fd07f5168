//! Test harness: the gateway on a loopback port, a counting HTTP upstream, and copies of a
//! deployment on PostgreSQL and MariaDB.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

mod instances;
pub mod live;
mod logs;
mod process;
pub use instances::{Instance, ScratchDatabase};
pub use logs::{capture_logs, logged};
pub use process::run_bounded;

/// Serves `app` on a free 127.0.0.1 port for the rest of the test; returns its base URL.
pub async fn serve_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind on 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running gateway.
pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
}

/// `dir` compiled with `env` as the only environment variables (and a state store of its
/// own), started; the environment as the gateway looks it up.
async fn start(
    dir: &Path,
    env: &[(&str, &str)],
) -> (simpul::server::AppState, HashMap<String, String>) {
    simpul::install_crypto();
    let mut env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Each app its own alert store: tests must not share (or leave) the deployment's.
    env.entry("SIMPUL_STATE_URL".into())
        .or_insert_with(|| format!("sqlite://{}", fresh_state_file().display()));
    let lookup = |name: &str| env.get(name).cloned();
    let blueprint = match simpul::compile::compile_dir_with_env(dir, &lookup) {
        Ok(bp) => bp,
        Err(diags) => panic!(
            "deployment {} does not compile:\n{}",
            dir.display(),
            diags
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    let state = simpul::server::AppState::start(blueprint, dir)
        .await
        .expect("start");
    (state, env)
}

/// A new SQLite file for one app's alerts, in one temporary folder per test run.
pub fn fresh_state_file() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("state dir"));
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.path().join(format!("state-{n}.db"))
}

impl TestApp {
    /// Compiles and serves `dir` with `env` as the only environment variables.
    pub async fn spawn(dir: &Path, env: &[(&str, &str)]) -> TestApp {
        let (state, _) = start(dir, env).await;
        TestApp::serve(simpul::server::router(state)).await
    }

    /// As `spawn`, reloading on changes of `dir`'s files (and `SIGHUP`) as `serve` does,
    /// with the same environment at every reload.
    pub async fn spawn_reloading(
        dir: &Path,
        env: &[(&str, &str)],
    ) -> (TestApp, simpul::server::reload::Gateway) {
        let (state, env) = start(dir, env).await;
        let lookup: simpul::server::reload::Env =
            Arc::new(move |name: &str| env.get(name).cloned());
        let gateway = simpul::server::reload::Gateway::new(state, dir, lookup);
        gateway.watch();
        (TestApp::serve(gateway.service()).await, gateway)
    }

    async fn serve(router: axum::Router) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, app).await;
        });
        TestApp {
            url: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    /// POSTs a query and returns the JSON response (any status).
    pub async fn query(&self, query: &str) -> Value {
        self.query_vars(query, Value::Null).await
    }

    pub async fn query_vars(&self, query: &str, variables: Value) -> Value {
        let resp = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        resp.json().await.expect("json body")
    }
}

/// The dashboard operations of queries/, sorted by name: name, query text, and the data it
/// must answer (queries/NAME.snap, an insta snapshot: a `---` header, then the JSON).
pub fn dashboard_operations() -> Vec<(String, String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("queries"))
        .expect("queries/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let name = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let query = std::fs::read_to_string(&f).expect("query");
            let data = std::fs::read_to_string(f.with_extension("snap"))
                .ok()
                .and_then(|snap| {
                    let json = snap.splitn(3, "---\n").nth(2)?.to_string();
                    serde_json::from_str(&json).ok()
                })
                .unwrap_or(Value::Null);
            (name, query, data)
        })
        .collect()
}

/// Blanks the fields of `extensions.sources` that change from run to run.
pub fn redact(mut v: Value) -> Value {
    if let Some(sources) = v
        .pointer_mut("/extensions/sources")
        .and_then(Value::as_array_mut)
    {
        for s in sources {
            if let Some(m) = s.as_object_mut() {
                m.insert("fetchedAt".into(), json!("[time]"));
                m.insert("ageSeconds".into(), json!(0));
            }
        }
    }
    v
}

/// A JSONPlaceholder-like API on loopback that counts and records every request.
/// 100 posts; 10 users; `GET /posts`, `GET /users/{id}`, `GET /users?id=1&id=2` (or `id=1,2`).
#[derive(Clone)]
pub struct Upstream {
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The `traceparent` header of each request that had one, in order.
    pub traceparents: Arc<Mutex<Vec<String>>>,
    pub hits: Arc<AtomicUsize>,
    pub delay_ms: Arc<AtomicU64>,
    pub fail: Arc<AtomicBool>,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let up = Upstream {
            url: String::new(),
            log: Default::default(),
            traceparents: Default::default(),
            hits: Default::default(),
            delay_ms: Default::default(),
            fail: Default::default(),
            server: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let up = Upstream {
            url: format!("http://{addr}"),
            ..up
        };
        up.serve(listener);
        up
    }

    /// Accepts connections until [`Upstream::kill`]; each connection is a task of the accept
    /// loop, so killing it closes the listener and every open connection: connection refused.
    fn serve(&self, listener: tokio::net::TcpListener) {
        let state = self.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let state = state.clone();
            async move { state.handle(req).await }
        });
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        *self.server.lock().expect("server") = Some(task);
    }

    /// Stops the upstream: new connections are refused, open ones are closed.
    pub fn kill(&self) {
        if let Some(task) = self.server.lock().expect("server").take() {
            task.abort();
        }
    }

    /// Starts the upstream again on the same port.
    pub async fn restart(&self) {
        let addr = self.url.trim_start_matches("http://").to_string();
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(&addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebind {addr}: {e}"),
            }
        };
        self.serve(listener);
    }

    pub fn calls(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.hits.store(0, Ordering::SeqCst);
        self.log.lock().expect("log").clear();
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    pub fn post(id: u64) -> Value {
        json!({ "id": id, "userId": (id - 1) / 10 + 1, "title": format!("post {id}"), "body": "..." })
    }

    pub fn user(id: u64) -> Value {
        json!({ "id": id, "name": format!("User {id}"), "email": format!("user{id}@example.org"), "username": format!("u{id}") })
    }

    async fn handle(&self, req: Request) -> Response {
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        self.hits.fetch_add(1, Ordering::SeqCst);
        self.log.lock().expect("log").push(target.clone());
        if let Some(t) = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
        {
            self.traceparents.lock().expect("log").push(t.to_string());
        }
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        let ids: Vec<u64> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("id="))
            .flat_map(|v| {
                v.split("%2C")
                    .flat_map(|v| v.split(','))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter_map(|v| v.parse().ok())
            .collect();
        let body = match path {
            "/posts" => Value::Array((1..=100).map(Self::post).collect()),
            // A distinct page per query value: ~8 KB each, for flooding a cache with keys.
            p if p.starts_with("/pages/") => Value::Array((1..=100).map(Self::post).collect()),
            "/users" => Value::Array(
                ids.iter()
                    .filter(|&&i| (1..=10).contains(&i))
                    .map(|&i| Self::user(i))
                    .collect(),
            ),
            p if p.starts_with("/users/") => match p["/users/".len()..].parse::<u64>() {
                Ok(id) if (1..=10).contains(&id) => Self::user(id),
                _ => return (axum::http::StatusCode::NOT_FOUND, "{}").into_response(),
            },
            _ => return (axum::http::StatusCode::NOT_FOUND, "{}").into_response(),
        };
        axum::Json(body).into_response()
    }
}

/// Copies a deployment directory (schema, connectors, data) into a fresh temporary one.
/// Turns the rate limits of the deployment in `dir` off: for tests that are one client
/// sending hundreds of requests at once (the access matrix, bursts of hang-ups).
pub fn without_rate_limits(dir: &Path) {
    let file = dir.join("simpul.toml");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    text.push_str(
        "\n[security.rate_limits]\npublic = \"off\"\ninternal = \"off\"\nrestricted = \"off\"\n",
    );
    std::fs::write(&file, text).expect("write simpul.toml");
}

pub fn copy_deployment(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(src, dir.path());
    dir
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read_dir").flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str == "target"
            || name_str == ".git"
            || name_str == "node_modules"
            || name_str.ends_with(".db")
            || name_str.contains(".db-")
            || name_str.contains(".seeding-")
        {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &dst.join(&name));
        } else {
            std::fs::copy(&path, dst.join(&name)).expect("copy");
        }
    }
}

/// Rewrites every `[sqlite]` connector with a seed in `dir` to a server database holding the
/// same seed. Returns a guard that drops the scratch schemas/databases.
pub async fn move_to_server(dir: &Path, backend: Backend) -> ServerCopy {
    let tag = format!(
        "simpul_t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut created = Vec::new();
    let connectors = dir.join("connectors");
    for entry in std::fs::read_dir(&connectors)
        .expect("connectors")
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).expect("read connector");
        let table: toml::Table = toml::from_str(&text).expect("toml");
        let Some(sqlite) = table.get("sqlite").and_then(|v| v.as_table()) else {
            continue;
        };
        let Some(seed) = sqlite.get("seed").and_then(|v| v.as_str()) else {
            continue;
        };
        let script = std::fs::read_to_string(dir.join(seed)).expect("seed");
        let name = format!(
            "{tag}_{}",
            entry
                .path()
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("x")
        );
        let url = backend.create(&name, &script).await;
        created.push(name);
        let mut table = table.clone();
        table.remove("sqlite");
        let mut kind = toml::Table::new();
        kind.insert("url".into(), toml::Value::String(url));
        table.insert(backend.kind().into(), toml::Value::Table(kind));
        std::fs::write(entry.path(), toml::to_string(&table).expect("toml out"))
            .expect("write connector");
    }
    ServerCopy { backend, created }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Postgres,
    Mariadb,
}

pub fn pg_url() -> String {
    std::env::var("SIMPUL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("SIMPUL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn mysql_url() -> String {
    std::env::var("SIMPUL_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

impl Backend {
    fn kind(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Mariadb => "mysql",
        }
    }

    /// Creates a scratch schema (PostgreSQL) or database (MariaDB) holding `script`.
    async fn create(self, name: &str, script: &str) -> String {
        use sqlx::AssertSqlSafe;
        match self {
            Backend::Postgres => {
                let admin = sqlx::PgPool::connect(&pg_url())
                    .await
                    .expect("PostgreSQL must run (scripts/services.sh)");
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
                )))
                .execute(&admin)
                .await
                .expect("schema");
                let url = format!("{}?options=-c%20search_path%3D{name}", pg_url());
                let pool = sqlx::PgPool::connect(&url).await.expect("connect scratch");
                sqlx::raw_sql(AssertSqlSafe(script.to_string()))
                    .execute(&pool)
                    .await
                    .expect("seed on PostgreSQL");
                url
            }
            Backend::Mariadb => {
                let admin = sqlx::MySqlPool::connect(&mysql_url())
                    .await
                    .expect("MariaDB must run (scripts/services.sh)");
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"
                )))
                .execute(&admin)
                .await
                .expect("database");
                let base = mysql_url();
                let url = format!("{}/{name}", &base[..base.rfind('/').unwrap_or(base.len())]);
                let pool = sqlx::MySqlPool::connect(&url)
                    .await
                    .expect("connect scratch");
                sqlx::raw_sql(AssertSqlSafe(script.to_string()))
                    .execute(&pool)
                    .await
                    .expect("seed on MariaDB");
                url
            }
        }
    }
}

pub struct ServerCopy {
    backend: Backend,
    created: Vec<String>,
}

impl ServerCopy {
    pub async fn drop_all(self) {
        use sqlx::AssertSqlSafe;
        for name in &self.created {
            let _ = match self.backend {
                Backend::Postgres => match sqlx::PgPool::connect(&pg_url()).await {
                    Ok(p) => sqlx::raw_sql(AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&p)
                    .await
                    .map(|_| ()),
                    Err(e) => Err(e),
                },
                Backend::Mariadb => match sqlx::MySqlPool::connect(&mysql_url()).await {
                    Ok(p) => {
                        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                            .execute(&p)
                            .await
                            .map(|_| ())
                    }
                    Err(e) => Err(e),
                },
            };
        }
    }
}
