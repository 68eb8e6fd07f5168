//! `[file]` connector: CSV, XLSX and JSON files of offline OPDs as SQL tables.
//!
//! The files are loaded into a private SQLite database, so bindings use `@sql` exactly as for
//! a database (batching included). A background task polls modification times and sizes and
//! swaps in a freshly loaded database once a changed file has stopped changing. A file that
//! cannot be read after a change (a parse error, a half-saved workbook, a cut-off CSV, a
//! table or column gone) never replaces the last good one: that one keeps serving and the
//! source reports `STALE` with the problem until a good file loads.

mod read;
mod text;

pub use read::{Files, Table};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::{Param, lock};
use crate::blueprint::settings::CsvFormat;
use crate::error::SourceError;

/// How often the files are looked at; a change loads once two looks agree on it.
const POLL: Duration = Duration::from_secs(1);

type Fingerprint = Vec<(PathBuf, SystemTime, u64)>;

struct Loaded {
    pool: SqlitePool,
    file: PathBuf,
    fingerprint: Fingerprint,
    schema: read::Schema,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// What `Query.sources` tells of a file source's data.
#[derive(Clone, Debug)]
pub struct FileHealth {
    /// When the data served now was loaded.
    pub loaded_at: SystemTime,
    /// Why the files on disk are not what is served (a changed file that cannot be read,
    /// naming it), and since when: the data served is stale from then on.
    pub problem: Option<(String, SystemTime)>,
}

pub struct FileSource {
    current: Arc<RwLock<Arc<Loaded>>>,
    health: Arc<Mutex<FileHealth>>,
    /// Bumped on every reload; caches keyed on it drop data of old files.
    pub generation: Arc<AtomicU64>,
}

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

impl FileSource {
    /// Loads `path` (relative to the deployment `dir`) and starts watching it. A file that
    /// cannot be read now is an error: there is no good copy to serve instead.
    pub async fn open(dir: &Path, path: &str, csv: CsvFormat) -> Result<FileSource, String> {
        let files = Files {
            dir: dir.to_path_buf(),
            path: dir.join(path),
            csv,
        };
        let loaded = load(&files, None).await?;
        let current = Arc::new(RwLock::new(Arc::new(loaded)));
        let health = Arc::new(Mutex::new(FileHealth {
            loaded_at: SystemTime::now(),
            problem: None,
        }));
        let generation = Arc::new(AtomicU64::new(0));
        tokio::spawn(watch(
            files,
            Arc::downgrade(&current),
            Arc::downgrade(&health),
            generation.clone(),
        ));
        Ok(FileSource {
            current,
            health,
            generation,
        })
    }

    pub fn pool(&self) -> Option<SqlitePool> {
        self.current.read().ok().map(|c| c.pool.clone())
    }

    pub fn health(&self) -> FileHealth {
        lock(&self.health).clone()
    }

    pub async fn query(
        &self,
        name: &Arc<str>,
        sql: String,
        params: Vec<Param>,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<Vec<Value>, SourceError> {
        let Some(pool) = self.pool() else {
            return Err(SourceError::new(
                crate::error::ErrorCode::Internal,
                name,
                "file source lock poisoned",
            ));
        };
        let pool = super::sql::Pool::Sqlite(pool);
        pool.query(name, sql, params, deadline, || {})
            .await
            .map_err(|f| super::sql::failure(name, f, timeout, pool.usage()))
    }
}

/// Polls the files until the source is dropped. A change is loaded once two polls in a row
/// see the same sizes and times (a file still being written is left alone); a change that
/// fails to load is reported once and not retried until the files change again.
async fn watch(
    files: Files,
    current: Weak<RwLock<Arc<Loaded>>>,
    health: Weak<Mutex<FileHealth>>,
    generation: Arc<AtomicU64>,
) {
    let mut pending: Option<Fingerprint> = None;
    let mut failed: Option<Fingerprint> = None;
    loop {
        tokio::time::sleep(POLL).await;
        let (Some(current), Some(health)) = (current.upgrade(), health.upgrade()) else {
            return;
        };
        let Some(served) = current.read().ok().map(|c| c.clone()) else {
            return;
        };
        let now = files.fingerprint();
        if now == served.fingerprint {
            // Back to the files being served (a bad copy replaced by the good one).
            pending = None;
            failed = None;
            lock(&health).problem = None;
            continue;
        }
        if failed.as_ref() == Some(&now) {
            continue;
        }
        if pending.as_ref() != Some(&now) {
            pending = Some(now);
            continue;
        }
        pending = None;
        let shown = files.shown(&files.path);
        match load(&files, Some(&served.schema)).await {
            Ok(fresh) => {
                if let Ok(mut slot) = current.write() {
                    *slot = Arc::new(fresh);
                }
                generation.fetch_add(1, Ordering::SeqCst);
                failed = None;
                *lock(&health) = FileHealth {
                    loaded_at: SystemTime::now(),
                    problem: None,
                };
                tracing::info!(file = %shown, "reloaded file source");
            }
            Err(reason) => {
                tracing::warn!(file = %shown, %reason, "file source changed but cannot be read; serving the last good copy");
                failed = Some(now);
                let mut h = lock(&health);
                let since = h.problem.as_ref().map_or_else(SystemTime::now, |p| p.1);
                h.problem = Some((reason, since));
            }
        }
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn column_type(rows: &[Vec<Value>], i: usize) -> &'static str {
    let mut ty = "INTEGER";
    for r in rows {
        match r.get(i) {
            Some(Value::Null) | None => {}
            Some(Value::Number(n)) if n.is_i64() => {}
            Some(Value::Number(_)) => ty = "REAL",
            Some(Value::Bool(_)) => {}
            Some(_) => return "TEXT",
        }
    }
    ty
}

/// Reads the files into a fresh SQLite database; with the schema of the copy served now,
/// refuses files that lost any of its tables or columns.
async fn load(files: &Files, served: Option<&read::Schema>) -> Result<Loaded, String> {
    let fingerprint = files.fingerprint();
    let reader = files.clone();
    let tables = tokio::task::spawn_blocking(move || reader.read_tables())
        .await
        .map_err(|e| e.to_string())??;
    let schema = read::schema(&tables);
    if let Some(lost) = served.and_then(|before| read::lost(before, &schema)) {
        return Err(format!("{}: {lost}", files.shown(&files.path)));
    }
    let file = std::env::temp_dir().join(format!(
        "simpul-file-{}-{}.db",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_file(&file);
    let options = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|e| e.to_string())?;
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    for t in &tables {
        let cols: Vec<String> = t
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} {}", quote(c), column_type(&t.rows, i)))
            .collect();
        let create = format!("CREATE TABLE {} ({})", quote(&t.name), cols.join(", "));
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut *tx)
            .await
            .map_err(|e| format!("table {}: {e}", t.name))?;
        let marks = vec!["?"; t.columns.len()].join(", ");
        let insert = format!("INSERT INTO {} VALUES ({marks})", quote(&t.name));
        for row in &t.rows {
            let q = super::sql::bind_all!(
                sqlx::query(sqlx::AssertSqlSafe(insert.clone())),
                row.iter().map(Param::from_json)
            );
            q.execute(&mut *tx)
                .await
                .map_err(|e| format!("table {}: {e}", t.name))?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(Loaded {
        pool,
        file,
        fingerprint,
        schema,
    })
}

#[cfg(test)]
mod tests;
