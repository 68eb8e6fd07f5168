//! Tests of the state store against real databases: each store test on a SQLite file and
//! on a PostgreSQL database of its own (created per test, so tests run in parallel), and
//! webhooks against real HTTP receivers on loopback.

mod shared;
mod store;
mod webhooks;

use std::time::Duration;

use serde_json::json;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};

use super::sql::on_pool;
use super::{Firing, StateStore};

pub(super) fn pg_url() -> String {
    std::env::var("SIMPUL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A PostgreSQL database of one test's own, dropped (with its connections) at the end.
pub(super) struct PgDb {
    pub url: String,
    name: String,
}

impl PgDb {
    pub async fn create() -> PgDb {
        let name = format!("simpul_state_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&pg_url()).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut url = reqwest::Url::parse(&pg_url()).unwrap();
        url.set_path(&name);
        PgDb {
            url: url.to_string(),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be going away: a runtime of its own.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&pg_url()).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(AssertSqlSafe(drop)).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}

/// Where a store test runs: a SQLite file or a PostgreSQL database.
pub(super) enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(PgDb),
}

impl Backend {
    pub fn url(&self) -> String {
        match self {
            Backend::Sqlite(dir) => format!("sqlite://{}", dir.path().join("state.db").display()),
            Backend::Postgres(db) => db.url.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn open(&self) -> StateStore {
        StateStore::open(&self.url()).await.unwrap()
    }
}

/// Both databases, each fresh.
pub(super) async fn backends() -> Vec<Backend> {
    vec![
        Backend::Sqlite(tempfile::tempdir().unwrap()),
        Backend::Postgres(PgDb::create().await),
    ]
}

pub(super) fn firing(rule: &str, region: &str, key: &str, now_ms: i64) -> Firing {
    Firing {
        rule: rule.into(),
        title: format!("{rule} fired"),
        severity: "WARNING".into(),
        opd: "dinkes".into(),
        tier: "INTERNAL".into(),
        region_code: region.into(),
        region_name: format!("Kecamatan {region}"),
        key: key.into(),
        message: "stunting above 20%".into(),
        recommendation: "visit the posyandu".into(),
        evidence: json!({"value": 1}),
        webhooks: Vec::new(),
        now_ms,
    }
}

/// An integer the store's database answers to `sql` (tests read tables directly).
pub(super) async fn scalar(store: &StateStore, sql: &'static str) -> i64 {
    on_pool!(store.pool(), |p| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(p)
        .await
        .unwrap())
}

/// (id, status, tries, last_error) of every delivery row, by id.
pub(super) async fn deliveries(store: &StateStore) -> Vec<(i64, String, i64, Option<String>)> {
    const SQL: &str = "SELECT id, status, tries, last_error FROM simpul_webhook_deliveries \
         ORDER BY id";
    on_pool!(store.pool(), |p| sqlx::query_as(SQL)
        .fetch_all(p)
        .await
        .unwrap())
}

/// Waits until `done` holds, failing the test after `limit`.
pub(super) async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
