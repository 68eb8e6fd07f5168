//! SQL connectors: PostgreSQL, MySQL/MariaDB and SQLite through typed sqlx pools.
//!
//! Statements come from the blueprint; request values only ever arrive as bound parameters.
//!
//! Every call runs under a deadline. A connection whose statement outlives it is detached
//! from the pool and closed, never handed to the next call half-way through a statement; a
//! pool that hands out no connection for several calls in a row (a connection leaked by a
//! driver, a database that stopped answering) is replaced by a fresh one. A database that
//! refuses the connection or the connector's credentials fails the call at once
//! (`reach.rs`), never as a timeout.

/// Binds each parameter in order (a `Param` in scope where it is used).
macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Param::Null => q.bind(Option::<String>::None),
                Param::Bool(b) => q.bind(b),
                Param::Int(i) => q.bind(i),
                Param::Float(f) => q.bind(f),
                Param::Text(s) => q.bind(s),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

pub mod describe;
mod reach;
mod rows;
mod seed;

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::time::Instant;

use super::Param;
use crate::blueprint::settings::{ConnectorConfig, ConnectorKind};
use crate::error::{ErrorCode, SourceError};
use rows::{mysql_row, pg_row, sqlite_row};
pub use seed::seed_sqlite;

/// Calls in a row that found no free connection before the pool is replaced.
pub const RECYCLE_AFTER: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
    Sqlite,
}

impl Dialect {
    /// The bind marker for the `n`th (1-based) parameter.
    pub fn marker(self, n: usize, out: &mut String) {
        match self {
            Dialect::Postgres => {
                out.push('$');
                out.push_str(&n.to_string());
            }
            Dialect::Mysql | Dialect::Sqlite => out.push('?'),
        }
    }
}

/// A pool of one of the three databases.
#[derive(Clone)]
pub enum Pool {
    Postgres(PgPool),
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
}

/// Why a statement gave no rows.
pub enum Failure {
    /// No connection was free before the deadline.
    NoConnection,
    /// The statement was still running at the deadline; its connection was closed.
    Timeout,
    /// The database cannot be reached or refused us (connection refused, unknown host,
    /// credentials or database rejected, file not openable): the cause in words.
    Unreachable(String),
    Source(SourceError),
}

/// Connections of a pool: open (`size`), waiting in the pool (`idle`), and the most it opens.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolUse {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// Acquires a connection and runs one statement on it, both before `$deadline`.
macro_rules! guarded {
    ($pool:expr, $db:ty, $sql:expr, $params:expr, $deadline:expr, $name:expr, $row:expr, $acquired:expr) => {{
        let mut conn = reach::acquire($name, $pool, $deadline).await?;
        $acquired();
        let query = bind_all!(sqlx::query::<$db>(AssertSqlSafe($sql)), $params);
        match tokio::time::timeout_at($deadline, query.fetch_all(&mut *conn)).await {
            Ok(Ok(rows)) => Ok(rows.iter().map($row).collect()),
            Ok(Err(e)) => Err(Failure::Source(db_error($name, e))),
            Err(_) => {
                // The statement may still be running: that connection is never reused.
                drop(conn.detach());
                Err(Failure::Timeout)
            }
        }
    }};
}

impl Pool {
    /// Runs `sql` with `params`; the connection and the rows must both come before `deadline`.
    /// `acquired` is told when a connection was had.
    pub async fn query(
        &self,
        name: &Arc<str>,
        sql: String,
        params: Vec<Param>,
        deadline: Instant,
        acquired: impl FnOnce(),
    ) -> Result<Vec<Value>, Failure> {
        match self {
            Pool::Postgres(p) => {
                guarded!(
                    p,
                    sqlx::Postgres,
                    sql,
                    params,
                    deadline,
                    name,
                    pg_row,
                    acquired
                )
            }
            Pool::Mysql(p) => {
                guarded!(
                    p,
                    sqlx::MySql,
                    sql,
                    params,
                    deadline,
                    name,
                    mysql_row,
                    acquired
                )
            }
            Pool::Sqlite(p) => {
                guarded!(
                    p,
                    sqlx::Sqlite,
                    sql,
                    params,
                    deadline,
                    name,
                    sqlite_row,
                    acquired
                )
            }
        }
    }

    /// Opens (or takes) a connection and gives it back to the pool, before `deadline`: the
    /// database is reachable and accepts the connector's credentials.
    pub async fn reachable(&self, name: &Arc<str>, deadline: Instant) -> Result<(), Failure> {
        match self {
            Pool::Postgres(p) => reach::acquire(name, p, deadline).await.map(drop),
            Pool::Mysql(p) => reach::acquire(name, p, deadline).await.map(drop),
            Pool::Sqlite(p) => reach::acquire(name, p, deadline).await.map(drop),
        }
    }

    pub fn usage(&self) -> PoolUse {
        let (size, idle, max) = match self {
            Pool::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Pool::Mysql(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Pool::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        PoolUse {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        }
    }

    /// Closes the pool's connections as they come back, giving up on those that never do.
    fn close_later(self) {
        tokio::spawn(async move {
            let close = async {
                match &self {
                    Pool::Postgres(p) => p.close().await,
                    Pool::Mysql(p) => p.close().await,
                    Pool::Sqlite(p) => p.close().await,
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(60), close).await;
        });
    }
}

/// Opens a fresh pool of a connector (lazily: no connection until a call needs one).
type Reopen = Box<dyn Fn() -> Result<Pool, String> + Send + Sync>;

/// How to open a lazy pool of a server database at `$url`.
macro_rules! lazy_pool {
    ($options:ty, $variant:path, $kind:literal, $url:expr, $max:expr, $acquire:expr, $file:expr) => {{
        let (url, max, acquire, file) = ($url.clone(), $max, $acquire, $file);
        Box::new(move || {
            <$options>::new()
                .max_connections(max)
                .acquire_timeout(acquire)
                .connect_lazy(&url)
                .map($variant)
                .map_err(|e| format!("{file}: invalid {} url: {e}", $kind))
        }) as Reopen
    }};
}

/// A SQL connector: its pool, and how to open a fresh one when the pool wedges.
pub struct SqlSource {
    pool: RwLock<Pool>,
    dialect: Dialect,
    reopen: Reopen,
    /// Calls in a row that found no free connection.
    starved: AtomicU32,
    /// When a call last had a connection (or the pool was opened), in ms since `opened`.
    last_acquired: AtomicU64,
    opened: Instant,
    recycles: AtomicU64,
    recycled_at: RwLock<Option<SystemTime>>,
}

impl SqlSource {
    pub async fn connect(config: &ConnectorConfig, dir: &Path) -> Result<SqlSource, String> {
        // The call's own deadline decides; the pool's acquire timeout only backs it up.
        let acquire = config.timeout + Duration::from_secs(1);
        let file = config.file.clone();
        let (dialect, reopen): (Dialect, Reopen) = match &config.kind {
            ConnectorKind::Postgres {
                url,
                max_connections,
            } => (
                Dialect::Postgres,
                lazy_pool!(
                    PgPoolOptions,
                    Pool::Postgres,
                    "postgres",
                    url,
                    *max_connections,
                    acquire,
                    file
                ),
            ),
            ConnectorKind::Mysql {
                url,
                max_connections,
            } => (
                Dialect::Mysql,
                lazy_pool!(
                    MySqlPoolOptions,
                    Pool::Mysql,
                    "mysql",
                    url,
                    *max_connections,
                    acquire,
                    file
                ),
            ),
            ConnectorKind::Sqlite {
                path,
                seed,
                max_connections,
            } => {
                let db = dir.join(path);
                if let Some(seed) = seed {
                    seed_sqlite(&db, &dir.join(seed))
                        .await
                        .map_err(|e| format!("{}: {e}", config.file))?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(&db)
                    .busy_timeout(Duration::from_secs(5));
                let max = *max_connections;
                (
                    Dialect::Sqlite,
                    Box::new(move || {
                        Ok(Pool::Sqlite(
                            SqlitePoolOptions::new()
                                .max_connections(max)
                                .acquire_timeout(acquire)
                                .connect_lazy_with(options.clone()),
                        ))
                    }),
                )
            }
            _ => return Err(format!("{}: not a SQL connector", config.file)),
        };
        Ok(SqlSource {
            pool: RwLock::new(reopen()?),
            dialect,
            reopen,
            starved: AtomicU32::new(0),
            last_acquired: AtomicU64::new(0),
            opened: Instant::now(),
            recycles: AtomicU64::new(0),
            recycled_at: RwLock::new(None),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The pool in service now.
    pub fn pool(&self) -> Pool {
        match self.pool.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How often the pool was replaced, and when last.
    pub fn recycles(&self) -> (u64, Option<SystemTime>) {
        let at = match self.recycled_at.read() {
            Ok(at) => *at,
            Err(poisoned) => *poisoned.into_inner(),
        };
        (self.recycles.load(Ordering::Relaxed), at)
    }

    pub async fn query(
        &self,
        name: &Arc<str>,
        sql: String,
        params: Vec<Param>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<Value>, SourceError> {
        let pool = self.pool();
        let acquired = || {
            self.starved.store(0, Ordering::SeqCst);
            self.last_acquired
                .store(self.since_opened(), Ordering::SeqCst);
        };
        let result = pool.query(name, sql, params, deadline, acquired).await;
        if matches!(result, Err(Failure::NoConnection)) {
            // Wedged, not merely busy: several calls in a row found no connection, and none
            // was handed out for a whole call timeout.
            let starved = self.starved.fetch_add(1, Ordering::SeqCst) + 1;
            let idle_for = self
                .since_opened()
                .saturating_sub(self.last_acquired.load(Ordering::SeqCst));
            if starved >= RECYCLE_AFTER && u128::from(idle_for) >= timeout.as_millis() {
                self.recycle(name, &pool);
            }
        }
        result.map_err(|f| failure(name, f, timeout, pool.usage()))
    }

    fn since_opened(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Puts a fresh pool in service in place of `stuck`, unless another call already did.
    fn recycle(&self, name: &Arc<str>, stuck: &Pool) {
        let fresh = match (self.reopen)() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(connector = %name, error = %e, "cannot open a fresh pool");
                return;
            }
        };
        let mut slot = match self.pool.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !same_pool(&slot, stuck) {
            return;
        }
        let old = std::mem::replace(&mut *slot, fresh);
        drop(slot);
        self.starved.store(0, Ordering::SeqCst);
        self.last_acquired
            .store(self.since_opened(), Ordering::SeqCst);
        self.recycles.fetch_add(1, Ordering::Relaxed);
        match self.recycled_at.write() {
            Ok(mut at) => *at = Some(SystemTime::now()),
            Err(poisoned) => *poisoned.into_inner() = Some(SystemTime::now()),
        }
        let usage = old.usage();
        tracing::warn!(
            connector = %name,
            open = usage.size,
            idle = usage.idle,
            "no connection came free for {RECYCLE_AFTER} calls in a row; replaced the pool"
        );
        old.close_later();
    }
}

fn same_pool(a: &Pool, b: &Pool) -> bool {
    // Pools are handles to one shared state: equal handles mean the same pool.
    match (a, b) {
        (Pool::Postgres(a), Pool::Postgres(b)) => std::ptr::eq(a.options(), b.options()),
        (Pool::Mysql(a), Pool::Mysql(b)) => std::ptr::eq(a.options(), b.options()),
        (Pool::Sqlite(a), Pool::Sqlite(b)) => std::ptr::eq(a.options(), b.options()),
        _ => false,
    }
}

/// The source error a failed statement is reported as.
pub fn failure(name: &Arc<str>, f: Failure, timeout: Duration, pool: PoolUse) -> SourceError {
    match f {
        Failure::Source(e) => e,
        Failure::NoConnection => SourceError::new(
            ErrorCode::SourceTimeout,
            name,
            format!(
                "no connection came free within {timeout:?} ({} of {} open, {} idle)",
                pool.size, pool.max, pool.idle
            ),
        ),
        Failure::Timeout => SourceError::new(
            ErrorCode::SourceTimeout,
            name,
            format!("no answer within {timeout:?}; the connection was closed"),
        ),
        Failure::Unreachable(cause) => {
            SourceError::new(ErrorCode::SourceUnavailable, name, cause).definite()
        }
    }
}

pub fn db_error(name: &Arc<str>, e: sqlx::Error) -> SourceError {
    let code = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorCode::SourceUnavailable,
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => ErrorCode::SourceBadResponse,
        _ => ErrorCode::SourceError,
    };
    SourceError::new(code, name, e)
}
