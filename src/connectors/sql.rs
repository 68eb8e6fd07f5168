//! SQL connectors: PostgreSQL, MySQL/MariaDB and SQLite through typed sqlx pools.
//!
//! Statements come from the blueprint; request values only ever arrive as bound parameters.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Column, Row, SqlSafeStr, TypeInfo, ValueRef};

use super::Param;
use crate::config::{ConnectorConfig, ConnectorKind};
use crate::error::{ErrorCode, SourceError};

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

pub enum SqlSource {
    Postgres(PgPool),
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
}

impl SqlSource {
    pub async fn connect(config: &ConnectorConfig, dir: &Path) -> Result<SqlSource, String> {
        let acquire = config.timeout;
        Ok(match &config.kind {
            ConnectorKind::Postgres {
                url,
                max_connections,
            } => SqlSource::Postgres(
                PgPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(acquire)
                    .connect_lazy(url)
                    .map_err(|e| format!("{}: invalid postgres url: {e}", config.file))?,
            ),
            ConnectorKind::Mysql {
                url,
                max_connections,
            } => SqlSource::Mysql(
                MySqlPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(acquire)
                    .connect_lazy(url)
                    .map_err(|e| format!("{}: invalid mysql url: {e}", config.file))?,
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
                SqlSource::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(*max_connections)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            _ => return Err(format!("{}: not a SQL connector", config.file)),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            SqlSource::Postgres(_) => Dialect::Postgres,
            SqlSource::Mysql(_) => Dialect::Mysql,
            SqlSource::Sqlite(_) => Dialect::Sqlite,
        }
    }

    pub async fn query(
        &self,
        name: &Arc<str>,
        sql: String,
        params: Vec<Param>,
    ) -> Result<Vec<Value>, SourceError> {
        match self {
            SqlSource::Postgres(pool) => {
                let rows = bind_all!(sqlx::query::<sqlx::Postgres>(AssertSqlSafe(sql)), params)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| db_error(name, e))?;
                Ok(rows.iter().map(pg_row).collect())
            }
            SqlSource::Mysql(pool) => {
                let rows = bind_all!(sqlx::query::<sqlx::MySql>(AssertSqlSafe(sql)), params)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| db_error(name, e))?;
                Ok(rows.iter().map(mysql_row).collect())
            }
            SqlSource::Sqlite(pool) => sqlite_query(pool, name, sql, params).await,
        }
    }

    /// Asks the database to prepare `sql` (for `simpul check`); `Ok(None)` when unreachable.
    pub async fn prepare(&self, sql: &str) -> Result<Option<()>, String> {
        use sqlx::Executor;
        let result = match self {
            SqlSource::Postgres(p) => match p.acquire().await {
                Ok(mut c) => c
                    .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
                    .await
                    .map(|_| ()),
                Err(_) => return Ok(None),
            },
            SqlSource::Mysql(p) => match p.acquire().await {
                Ok(mut c) => c
                    .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
                    .await
                    .map(|_| ()),
                Err(_) => return Ok(None),
            },
            SqlSource::Sqlite(p) => match p.acquire().await {
                Ok(mut c) => c
                    .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
                    .await
                    .map(|_| ()),
                Err(_) => return Ok(None),
            },
        };
        result.map(Some).map_err(|e| match e {
            sqlx::Error::Database(d) => d.message().to_string(),
            other => other.to_string(),
        })
    }
}

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
use bind_all;

pub async fn sqlite_query(
    pool: &SqlitePool,
    name: &Arc<str>,
    sql: String,
    params: Vec<Param>,
) -> Result<Vec<Value>, SourceError> {
    let rows = bind_all!(sqlx::query::<sqlx::Sqlite>(AssertSqlSafe(sql)), params)
        .fetch_all(pool)
        .await
        .map_err(|e| db_error(name, e))?;
    Ok(rows.iter().map(sqlite_row).collect())
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

/// Creates `db` from the `seed` script when the file is missing or older than the seed.
/// The database is built under a temporary name and renamed, so a crash never leaves half a seed.
pub async fn seed_sqlite(db: &Path, seed: &Path) -> Result<(), String> {
    let seed_time = std::fs::metadata(seed)
        .and_then(|m| m.modified())
        .map_err(|e| format!("seed {}: {e}", seed.display()))?;
    if let Ok(db_time) = std::fs::metadata(db).and_then(|m| m.modified())
        && db_time >= seed_time
    {
        return Ok(());
    }
    let script =
        std::fs::read_to_string(seed).map_err(|e| format!("seed {}: {e}", seed.display()))?;
    let tmp = db.with_extension(format!("seeding-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if let Some(parent) = db.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| e.to_string())?
        .filename(&tmp)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let result = sqlx::raw_sql(AssertSqlSafe(script)).execute(&pool).await;
    pool.close().await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("seed {} failed: {e}", seed.display()));
    }
    std::fs::rename(&tmp, db).map_err(|e| format!("{}: {e}", db.display()))
}

fn pg_row(row: &PgRow) -> Value {
    let mut map = Map::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        let null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
        let v = if null {
            Value::Null
        } else {
            match col.type_info().name() {
                "BOOL" => row
                    .try_get::<bool, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "INT2" => row
                    .try_get::<i16, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "INT4" => row
                    .try_get::<i32, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "INT8" => row
                    .try_get::<i64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "FLOAT4" => row
                    .try_get::<f32, _>(i)
                    .map(|f| Value::from(f64::from(f)))
                    .unwrap_or(Value::Null),
                "FLOAT8" => row
                    .try_get::<f64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "NUMERIC" => row
                    .try_get::<sqlx::types::Decimal, _>(i)
                    .map(decimal)
                    .unwrap_or(Value::Null),
                "JSON" | "JSONB" => row.try_get::<Value, _>(i).unwrap_or(Value::Null),
                "DATE" => row
                    .try_get::<chrono::NaiveDate, _>(i)
                    .map(|d| Value::from(d.to_string()))
                    .unwrap_or(Value::Null),
                "TIMESTAMP" => row
                    .try_get::<chrono::NaiveDateTime, _>(i)
                    .map(|d| Value::from(d.format("%Y-%m-%dT%H:%M:%S").to_string()))
                    .unwrap_or(Value::Null),
                "TIMESTAMPTZ" => row
                    .try_get::<chrono::DateTime<chrono::Utc>, _>(i)
                    .map(|d| Value::from(d.to_rfc3339()))
                    .unwrap_or(Value::Null),
                _ => row
                    .try_get::<String, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            }
        };
        map.insert(col.name().to_string(), v);
    }
    Value::Object(map)
}

fn mysql_row(row: &MySqlRow) -> Value {
    let mut map = Map::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        let null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
        let v = if null {
            Value::Null
        } else {
            let ty = col.type_info().name();
            match ty {
                "BOOLEAN" => row
                    .try_get::<bool, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => row
                    .try_get::<i64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                t if t.ends_with("UNSIGNED") => row
                    .try_get::<u64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "FLOAT" => row
                    .try_get::<f32, _>(i)
                    .map(|f| Value::from(f64::from(f)))
                    .unwrap_or(Value::Null),
                "DOUBLE" => row
                    .try_get::<f64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "DECIMAL" => row
                    .try_get::<sqlx::types::Decimal, _>(i)
                    .map(decimal)
                    .unwrap_or(Value::Null),
                "JSON" => row.try_get::<Value, _>(i).unwrap_or(Value::Null),
                "DATE" => row
                    .try_get::<chrono::NaiveDate, _>(i)
                    .map(|d| Value::from(d.to_string()))
                    .unwrap_or(Value::Null),
                "DATETIME" | "TIMESTAMP" => row
                    .try_get::<chrono::NaiveDateTime, _>(i)
                    .map(|d| Value::from(d.format("%Y-%m-%dT%H:%M:%S").to_string()))
                    .unwrap_or(Value::Null),
                _ => row
                    .try_get::<String, _>(i)
                    .map(Value::from)
                    .or_else(|_| {
                        row.try_get::<Vec<u8>, _>(i)
                            .map(|b| Value::from(String::from_utf8_lossy(&b).into_owned()))
                    })
                    .unwrap_or(Value::Null),
            }
        };
        map.insert(col.name().to_string(), v);
    }
    Value::Object(map)
}

fn sqlite_row(row: &SqliteRow) -> Value {
    let mut map = Map::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        let v = match row.try_get_raw(i) {
            Ok(raw) if !raw.is_null() => match raw.type_info().name() {
                "INTEGER" => row
                    .try_get_unchecked::<i64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "REAL" => row
                    .try_get_unchecked::<f64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "BLOB" => row
                    .try_get_unchecked::<Vec<u8>, _>(i)
                    .map(|b| Value::from(String::from_utf8_lossy(&b).into_owned()))
                    .unwrap_or(Value::Null),
                _ => row
                    .try_get_unchecked::<String, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            },
            _ => Value::Null,
        };
        map.insert(col.name().to_string(), v);
    }
    Value::Object(map)
}

/// DECIMAL/NUMERIC as a JSON number (GraphQL Float), integral values as integers.
fn decimal(d: sqlx::types::Decimal) -> Value {
    use std::str::FromStr;
    let text = d.normalize().to_string();
    if let Ok(i) = i64::from_str(&text) {
        return Value::from(i);
    }
    f64::from_str(&text).map(Value::from).unwrap_or(Value::Null)
}
