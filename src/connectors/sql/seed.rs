//! SQLite databases created from a seed script.

use std::path::Path;
use std::str::FromStr;

use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

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
    // Unique to this call: two gateways in one process (tests, a reload) seeding the same
    // file at once must not write into, remove or rename each other's copy.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = db.with_extension(format!("seeding-{}-{n}", std::process::id()));
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

#[cfg(test)]
mod tests {
    /// Gateways of one process seeding one file at once each finish with the whole seed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn seeds_at_once_in_one_process_do_not_break_each_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = dir.path().join("seed.sql");
        let mut script = String::from("CREATE TABLE t (n INTEGER);\n");
        for n in 0..2_000 {
            script.push_str(&format!("INSERT INTO t VALUES ({n});\n"));
        }
        std::fs::write(&seed, script).expect("seed");
        let db = dir.path().join("t.db");
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let (db, seed) = (db.clone(), seed.clone());
                tokio::spawn(async move { super::seed_sqlite(&db, &seed).await })
            })
            .collect();
        for run in runs {
            assert_eq!(run.await.expect("task"), Ok(()));
        }
        let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
            .await
            .expect("open");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(rows, 2_000);
    }
}
