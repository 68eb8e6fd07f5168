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
