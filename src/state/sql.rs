//! The state store's database: a SQLite or PostgreSQL pool, its migrations, and every
//! place where the two dialects differ (identity columns, write transactions, the
//! migration lock, the claim of webhook deliveries). Everything else is one SQL text for
//! both: `$n` markers work in SQLite too.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Postgres, Sqlite, Transaction};

/// Runs `$body` with `$p` bound to the pool of either database: the same text, compiled
/// once per driver.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::state::sql::Pool::Sqlite($p) => $body,
            $crate::state::sql::Pool::Postgres($p) => $body,
        }
    };
}
pub(super) use on_pool;

#[derive(Clone, Debug)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction that will write. SQLite takes the write lock at BEGIN (IMMEDIATE): a
/// deferred transaction that reads first fails at once with BUSY when it later writes
/// behind another writer, instead of waiting its busy timeout.
pub(super) trait Begin {
    type Db: sqlx::Database;
    fn write_tx(&self) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>>;
}

impl Begin for SqlitePool {
    type Db = Sqlite;
    async fn write_tx(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl Begin for PgPool {
    type Db = Postgres;
    async fn write_tx(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.begin().await
    }
}

/// The advisory lock held by the transaction that applies a migration, so two instances
/// starting at once apply each migration once.
const MIGRATION_LOCK: i64 = 0x5349_4d50_554c_0001;

/// The tables of version 1. `$id` is the dialect's auto-numbered primary key.
macro_rules! version_1 {
    ($id:literal) => {
        [
            concat!(
                "CREATE TABLE simpul_alerts (id ",
                $id,
                ", rule_id TEXT NOT NULL, title TEXT NOT NULL, severity TEXT NOT NULL, \
                 opd TEXT NOT NULL, tier TEXT NOT NULL, region_code TEXT NOT NULL, \
                 region_name TEXT NOT NULL, alert_key TEXT NOT NULL, status TEXT NOT NULL, \
                 message TEXT NOT NULL, recommendation TEXT NOT NULL, evidence TEXT NOT NULL, \
                 raised_at_ms BIGINT NOT NULL, last_seen_at_ms BIGINT NOT NULL, \
                 acknowledged_at_ms BIGINT, acknowledged_by TEXT, resolved_at_ms BIGINT, \
                 resolved_by TEXT, resolution TEXT)"
            ),
            // One open alert per (rule, region, key), whatever instances race to raise it.
            "CREATE UNIQUE INDEX simpul_alerts_open ON simpul_alerts \
             (rule_id, region_code, alert_key) WHERE status <> 'RESOLVED'",
            "CREATE INDEX simpul_alerts_newest ON simpul_alerts (raised_at_ms, id)",
            concat!(
                "CREATE TABLE simpul_alert_follow_ups (id ",
                $id,
                ", alert_id BIGINT NOT NULL REFERENCES simpul_alerts (id), \
                 author TEXT NOT NULL, at_ms BIGINT NOT NULL, note TEXT NOT NULL, \
                 kind TEXT NOT NULL)"
            ),
            "CREATE INDEX simpul_alert_follow_ups_alert ON simpul_alert_follow_ups (alert_id)",
            "CREATE TABLE simpul_rule_runs (rule_id TEXT PRIMARY KEY, \
             last_run_at_ms BIGINT NOT NULL, duration_ms DOUBLE PRECISION NOT NULL, \
             error TEXT, firing BIGINT NOT NULL)",
            concat!(
                "CREATE TABLE simpul_webhook_deliveries (id ",
                $id,
                ", alert_id BIGINT NOT NULL REFERENCES simpul_alerts (id), \
                 event TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL, \
                 tries BIGINT NOT NULL, next_at_ms BIGINT NOT NULL, locked_until_ms BIGINT, \
                 delivered_at_ms BIGINT, status TEXT NOT NULL, last_error TEXT)"
            ),
            "CREATE INDEX simpul_webhook_deliveries_due ON simpul_webhook_deliveries \
             (status, next_at_ms)",
        ]
    };
}

/// Version 2: the outbox of `@outbox` mutations. `args` and `auth` (what the call was
/// made with, personal data included) are erased once the upstream accepted it.
const VERSION_2: &[&str] = &[
    "CREATE TABLE simpul_outbox (id TEXT PRIMARY KEY, field TEXT NOT NULL, \
     client_key TEXT, args TEXT, auth TEXT, status TEXT NOT NULL, tries BIGINT NOT NULL, \
     next_at_ms BIGINT NOT NULL, locked_until_ms BIGINT, accepted_at_ms BIGINT NOT NULL, \
     delivered_at_ms BIGINT, tracking_id TEXT, last_error TEXT)",
    // A client's own idempotency key names one row per field, whatever instances race.
    "CREATE UNIQUE INDEX simpul_outbox_client_key ON simpul_outbox (field, client_key) \
     WHERE client_key IS NOT NULL",
    "CREATE INDEX simpul_outbox_due ON simpul_outbox (status, next_at_ms)",
];

/// Migrations by version (index + 1); a released one is never edited, only followed.
pub(super) const SQLITE_MIGRATIONS: &[&[&str]] =
    &[&version_1!("INTEGER PRIMARY KEY AUTOINCREMENT"), VERSION_2];
const POSTGRES_MIGRATIONS: &[&[&str]] = &[
    &version_1!("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    VERSION_2,
];

/// Due deliveries, claimed by one statement: SQLite runs one writer at a time, so the
/// UPDATE is the claim. `$1` now, `$2` lease end, `$3` how many.
pub(super) const SQLITE_CLAIM: &str = "UPDATE simpul_webhook_deliveries SET locked_until_ms = $2 \
     WHERE id IN (SELECT id FROM simpul_webhook_deliveries WHERE status = 'PENDING' \
     AND next_at_ms <= $1 AND (locked_until_ms IS NULL OR locked_until_ms <= $1) \
     ORDER BY id LIMIT $3) \
     RETURNING id, alert_id, event, url, body, tries, locked_until_ms";

/// PostgreSQL: rows another instance is claiming are skipped, not waited for; the lease
/// is set by [`PG_LEASE`] in the same transaction. `$1` now, `$2` how many.
pub(super) const PG_CLAIM: &str = "SELECT id, alert_id, event, url, body, tries, \
     locked_until_ms FROM simpul_webhook_deliveries WHERE status = 'PENDING' \
     AND next_at_ms <= $1 AND (locked_until_ms IS NULL OR locked_until_ms <= $1) \
     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED";
pub(super) const PG_LEASE: &str =
    "UPDATE simpul_webhook_deliveries SET locked_until_ms = $1 WHERE id = ANY($2)";

/// Opens the pool `url` names and brings its schema up to date. Errors name the URL
/// without its password.
pub(super) async fn open(url: &str) -> Result<(Pool, Option<PgConnectOptions>), String> {
    let name = redacted(url);
    let fail = |e: sqlx::Error| format!("state store {name}: {e}");
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(fail)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if memory {
            // An in-memory database lives as long as a connection to it: keep exactly one.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
        } else {
            // WAL: readers (GraphQL listings) do not wait behind the evaluator's writes.
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.journal_mode(SqliteJournalMode::Wal))
                .await
        }
        .map_err(fail)?;
        migrate(&Pool::Sqlite(pool.clone())).await.map_err(fail)?;
        Ok((Pool::Sqlite(pool), None))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options = PgConnectOptions::from_str(url).map_err(fail)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(fail)?;
        migrate(&Pool::Postgres(pool.clone())).await.map_err(fail)?;
        Ok((Pool::Postgres(pool), Some(options)))
    } else {
        Err(format!(
            "state store {name}: not a sqlite:// or postgres:// URL"
        ))
    }
}

/// Applies each migration not yet recorded in `simpul_migrations`, each in a transaction
/// of its own (with the table's creation, so a failed one leaves nothing half done).
async fn migrate(pool: &Pool) -> sqlx::Result<()> {
    let migrations = match pool {
        Pool::Sqlite(_) => SQLITE_MIGRATIONS,
        Pool::Postgres(_) => POSTGRES_MIGRATIONS,
    };
    for (version, statements) in (1_i64..).zip(migrations.iter()) {
        on_pool!(pool, |p| {
            let mut tx = p.write_tx().await?;
            if matches!(pool, Pool::Postgres(_)) {
                // Taken before anything else, even the CREATE TABLE IF NOT EXISTS, which
                // two sessions running at once can fail on PostgreSQL.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS simpul_migrations (version BIGINT PRIMARY KEY, \
                 applied_at_ms BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            let applied = sqlx::query("SELECT 1 FROM simpul_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !applied {
                for statement in statements.iter().copied() {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "INSERT INTO simpul_migrations (version, applied_at_ms) VALUES ($1, $2)",
                )
                .bind(version)
                .bind(super::model::now_ms())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
    }
    Ok(())
}

/// The URL as it may be shown: without its password.
pub(super) fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Cannot fail for a URL that has a password (it has a host).
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Unparsable: keep only what follows the credentials, if any.
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("…@{host}"),
            None => url.to_string(),
        },
    }
}

/// `$first, $first+1, …` for `count` parameters (the markers of an IN list; the values
/// are bound, only their number is spliced).
pub(super) fn markers(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
