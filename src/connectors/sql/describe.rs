//! What `simpul check` asks a database: can it be reached, what columns (names, types and
//! origins) does a statement give, and which values does a table column hold.
//!
//! Each check opens one connection of its own, outside the pool: a pool retries a refused
//! connection until its timeout, a single connect says at once why it failed.

use serde_json::Value;
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, Column, ConnectOptions, Connection, Executor, SqlSafeStr, TypeInfo};

use super::rows::{mysql_row, pg_row, sqlite_row};
use super::{Dialect, Pool};
use crate::connectors::Param;

/// A column of a statement's rows, as the database describes it.
#[derive(Clone, Debug)]
pub struct Described {
    pub name: String,
    /// The database's own name of its type: `INT4`, `VARCHAR`, `DECIMAL`, `TEXT`, `NULL`...
    pub type_name: String,
    /// The table and column it is read from, when it is a plain column.
    pub origin: Option<(String, String)>,
}

/// One connection to a source's database, for checks only.
pub enum Conn {
    Postgres(PgConnection),
    Mysql(MySqlConnection),
    Sqlite(SqliteConnection),
}

impl Pool {
    /// Opens one connection with the pool's settings; the error says why it could not.
    pub async fn connect_once(&self) -> Result<Conn, String> {
        let result = match self {
            Pool::Postgres(p) => p.connect_options().connect().await.map(Conn::Postgres),
            Pool::Mysql(p) => p.connect_options().connect().await.map(Conn::Mysql),
            Pool::Sqlite(p) => p.connect_options().connect().await.map(Conn::Sqlite),
        };
        result.map_err(|e| reason(&e))
    }
}

/// The words of a database error, without sqlx's wrapping.
fn reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

fn described<C: Column>(columns: &[C]) -> Vec<Described> {
    columns
        .iter()
        .map(|c| Described {
            name: c.name().to_string(),
            type_name: c.type_info().name().to_string(),
            origin: c
                .origin()
                .table_column()
                .map(|t| (t.table.to_string(), t.name.to_string())),
        })
        .collect()
}

impl Conn {
    /// The columns `sql` gives, from preparing it; the error is the database's own words.
    pub async fn describe(&mut self, sql: &str) -> Result<Vec<Described>, String> {
        use sqlx::Statement;
        let sql = || AssertSqlSafe(sql.to_string()).into_sql_str();
        match self {
            Conn::Postgres(c) => c.prepare(sql()).await.map(|s| described(s.columns())),
            Conn::Mysql(c) => c.prepare(sql()).await.map(|s| described(s.columns())),
            Conn::Sqlite(c) => c.prepare(sql()).await.map(|s| described(s.columns())),
        }
        .map_err(|e| reason(&e))
    }

    /// Up to `limit` distinct non-null values of `table.column`, as the gateway reads them.
    /// Both names come from the database's own description of a statement.
    pub async fn distinct(
        &mut self,
        table: &str,
        column: &str,
        limit: usize,
    ) -> Result<Vec<Value>, String> {
        let quote = |ident: &str, q: char| {
            let doubled = ident.replace(q, &format!("{q}{q}"));
            format!("{q}{doubled}{q}")
        };
        let (t, c) = match self {
            // PostgreSQL names the table as `regclass::text` does: already quoted as needed.
            Conn::Postgres(_) => (table.to_string(), quote(column, '"')),
            // MySQL names it `schema.table`.
            Conn::Mysql(_) => (
                table
                    .split('.')
                    .map(|part| quote(part, '`'))
                    .collect::<Vec<_>>()
                    .join("."),
                quote(column, '`'),
            ),
            Conn::Sqlite(_) => (quote(table, '"'), quote(column, '"')),
        };
        let sql = format!("SELECT DISTINCT {c} FROM {t} WHERE {c} IS NOT NULL LIMIT {limit}");
        let rows: Vec<Value> = match self {
            Conn::Postgres(conn) => sqlx::query(AssertSqlSafe(sql))
                .fetch_all(conn)
                .await
                .map(|rows| rows.iter().map(pg_row).collect()),
            Conn::Mysql(conn) => sqlx::query(AssertSqlSafe(sql))
                .fetch_all(conn)
                .await
                .map(|rows| rows.iter().map(mysql_row).collect()),
            Conn::Sqlite(conn) => sqlx::query(AssertSqlSafe(sql))
                .fetch_all(conn)
                .await
                .map(|rows| rows.iter().map(sqlite_row).collect()),
        }
        .map_err(|e| reason(&e))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match r {
                Value::Object(m) => m.into_iter().next().map(|(_, v)| v),
                _ => None,
            })
            .collect())
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Postgres(_) => Dialect::Postgres,
            Conn::Mysql(_) => Dialect::Mysql,
            Conn::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// The rows of a read statement with its parameters, as the gateway reads them.
    pub async fn rows(&mut self, sql: &str, params: Vec<Param>) -> Result<Vec<Value>, String> {
        macro_rules! run {
            ($conn:expr, $db:ty, $row:expr) => {{
                bind_all!(sqlx::query::<$db>(AssertSqlSafe(sql.to_string())), params)
                    .fetch_all($conn)
                    .await
                    .map(|rows| rows.iter().map($row).collect())
            }};
        }
        match self {
            Conn::Postgres(c) => run!(c, sqlx::Postgres, pg_row),
            Conn::Mysql(c) => run!(c, sqlx::MySql, mysql_row),
            Conn::Sqlite(c) => run!(c, sqlx::Sqlite, sqlite_row),
        }
        .map_err(|e| reason(&e))
    }

    pub async fn close(self) {
        let _ = match self {
            Conn::Postgres(c) => c.close().await,
            Conn::Mysql(c) => c.close().await,
            Conn::Sqlite(c) => c.close().await,
        };
    }
}
