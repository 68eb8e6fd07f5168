//! `[file]` connector: CSV, XLSX and JSON files of offline OPDs as SQL tables.
//!
//! The files are loaded into a private SQLite database, so bindings use `@sql` exactly as for
//! a database (batching included). A background task watches modification times and swaps in
//! a freshly loaded database when a file changes; a file that fails to load keeps the
//! previous tables in service.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::Param;
use crate::error::SourceError;

/// A loaded table: column names and rows of cells.
#[derive(Debug, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

struct Loaded {
    pool: SqlitePool,
    file: PathBuf,
    fingerprint: Vec<(PathBuf, SystemTime, u64)>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

pub struct FileSource {
    current: Arc<RwLock<Arc<Loaded>>>,
    /// Bumped on every reload; caches keyed on it drop data of old files.
    pub generation: Arc<AtomicU64>,
}

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

impl FileSource {
    pub async fn open(path: &Path) -> Result<FileSource, String> {
        let loaded = load(path).await?;
        let current = Arc::new(RwLock::new(Arc::new(loaded)));
        let generation = Arc::new(AtomicU64::new(0));
        let watch = (
            path.to_path_buf(),
            Arc::downgrade(&current),
            generation.clone(),
        );
        tokio::spawn(async move {
            let (path, current, generation) = watch;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(current) = current.upgrade() else {
                    return;
                };
                let old = current
                    .read()
                    .map(|c| c.fingerprint.clone())
                    .unwrap_or_default();
                if fingerprint(&path) == old {
                    continue;
                }
                match load(&path).await {
                    Ok(fresh) => {
                        if let Ok(mut slot) = current.write() {
                            *slot = Arc::new(fresh);
                        }
                        generation.fetch_add(1, Ordering::SeqCst);
                        tracing::info!(path = %path.display(), "reloaded file source");
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "file source changed but failed to load; serving the previous data")
                    }
                }
            }
        });
        Ok(FileSource {
            current,
            generation,
        })
    }

    pub fn pool(&self) -> Option<SqlitePool> {
        self.current.read().ok().map(|c| c.pool.clone())
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

fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.retain(|p| {
            matches!(
                extension(p).as_str(),
                "csv" | "xlsx" | "xls" | "ods" | "json"
            )
        });
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    }
}

fn extension(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn fingerprint(path: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    files(path)
        .into_iter()
        .filter_map(|f| {
            let m = std::fs::metadata(&f).ok()?;
            Some((f, m.modified().ok()?, m.len()))
        })
        .collect()
}

/// Reads every table of the files at `path`.
pub fn read_tables(path: &Path) -> Result<Vec<Table>, String> {
    let list = files(path);
    if list.first().is_none_or(|f| !f.exists()) {
        return Err(format!(
            "{}: no CSV, XLSX or JSON file found",
            path.display()
        ));
    }
    let mut tables = Vec::new();
    for f in list {
        let stem = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("data")
            .to_string();
        match extension(&f).as_str() {
            "csv" => tables.push(read_csv(&f, stem)?),
            "json" => tables.push(read_json(&f, stem)?),
            "xlsx" | "xls" | "ods" => tables.extend(read_workbook(&f)?),
            other => return Err(format!("{}: unsupported file type '{other}'", f.display())),
        }
    }
    Ok(tables)
}

fn cell(text: &str) -> Value {
    let t = text.trim();
    if t.is_empty() {
        return Value::Null;
    }
    if let Ok(i) = t.parse::<i64>() {
        if !(t.len() > 1 && t.starts_with('0')) {
            return Value::from(i);
        }
        // Leading zeros are codes ("0351"), not numbers.
        return Value::from(t);
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
        && !t.starts_with('0')
    {
        return Value::from(f);
    }
    if let Ok(f) = t.parse::<f64>()
        && t.starts_with("0.")
    {
        return Value::from(f);
    }
    Value::from(t)
}

fn read_csv(path: &Path, name: String) -> Result<Table, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let columns: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        rows.push(
            (0..columns.len())
                .map(|i| rec.get(i).map(cell).unwrap_or(Value::Null))
                .collect(),
        );
    }
    Ok(Table {
        name,
        columns,
        rows,
    })
}

fn read_json(path: &Path, name: String) -> Result<Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let Value::Array(items) = value else {
        return Err(format!("{}: expected an array of objects", path.display()));
    };
    let mut columns: Vec<String> = Vec::new();
    for item in &items {
        if let Value::Object(m) = item {
            for k in m.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let rows = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| match item.get(c) {
                    Some(v @ (Value::Array(_) | Value::Object(_))) => Value::from(v.to_string()),
                    Some(v) => v.clone(),
                    None => Value::Null,
                })
                .collect()
        })
        .collect();
    Ok(Table {
        name,
        columns,
        rows,
    })
}

fn read_workbook(path: &Path) -> Result<Vec<Table>, String> {
    use calamine::{Data, Reader, open_workbook_auto};
    let mut wb = open_workbook_auto(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tables = Vec::new();
    for sheet in wb.sheet_names() {
        let range = wb
            .worksheet_range(&sheet)
            .map_err(|e| format!("{} sheet {sheet}: {e}", path.display()))?;
        let mut rows_iter = range.rows();
        let Some(header) = rows_iter.next() else {
            continue;
        };
        let columns: Vec<String> = header
            .iter()
            .map(|c| c.to_string().trim().to_string())
            .collect();
        let rows = rows_iter
            .filter(|r| r.iter().any(|c| !matches!(c, Data::Empty)))
            .map(|r| {
                (0..columns.len())
                    .map(|i| match r.get(i) {
                        None | Some(Data::Empty) | Some(Data::Error(_)) => Value::Null,
                        Some(Data::Int(n)) => Value::from(*n),
                        Some(Data::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => {
                            Value::from(*f as i64)
                        }
                        Some(Data::Float(f)) => Value::from(*f),
                        Some(Data::Bool(b)) => Value::from(*b),
                        Some(Data::String(s)) => cell(s),
                        Some(Data::DateTime(d)) => d
                            .as_datetime()
                            .map(|d| Value::from(d.format("%Y-%m-%d").to_string()))
                            .unwrap_or(Value::Null),
                        Some(other) => Value::from(other.to_string()),
                    })
                    .collect()
            })
            .collect();
        tables.push(Table {
            name: sheet,
            columns,
            rows,
        });
    }
    Ok(tables)
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

async fn load(path: &Path) -> Result<Loaded, String> {
    let fingerprint = fingerprint(path);
    let p = path.to_path_buf();
    let tables = tokio::task::spawn_blocking(move || read_tables(&p))
        .await
        .map_err(|e| e.to_string())??;
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
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
            for v in row {
                q = match Param::from_json(v) {
                    Param::Null => q.bind(Option::<String>::None),
                    Param::Bool(b) => q.bind(b),
                    Param::Int(i) => q.bind(i),
                    Param::Float(f) => q.bind(f),
                    Param::Text(s) => q.bind(s),
                };
            }
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_codes_as_text() {
        assert_eq!(cell("0351"), Value::from("0351"));
        assert_eq!(cell("42"), Value::from(42));
        assert_eq!(cell("10.29"), Value::from(10.29));
        assert_eq!(cell("0.5"), Value::from(0.5));
        assert_eq!(cell(""), Value::Null);
    }
}
