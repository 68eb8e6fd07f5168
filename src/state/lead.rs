//! Which instance evaluates the rules. On PostgreSQL: a session advisory lock held on a
//! connection of the leader's own, so the lock dies with that connection, and with an
//! instance that was killed. On SQLite there is one instance, always the leader.

use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{ConnectOptions, Connection};

use super::StateStore;

/// The advisory lock of leadership (the migrations use another).
const LEAD_LOCK: i64 = 0x5349_4d50_554c_0002;
/// A leader whose connection does not answer by then is no longer sure to lead.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The leader's connection, as `pg_stat_activity` shows it.
const LEADER_NAME: &str = "simpul-leader";

/// Leadership, held as long as this lives (and its connection does).
pub struct Leader {
    /// None on SQLite.
    conn: Option<PgConnection>,
}

impl Leader {
    /// False once the connection holding the lock died or stopped answering: the lock may
    /// be someone else's now; drop this and `try_lead` again.
    pub async fn still_leading(&mut self) -> bool {
        let Some(conn) = &mut self.conn else {
            return true;
        };
        let ping = sqlx::query("SELECT 1").execute(&mut *conn);
        matches!(tokio::time::timeout(CHECK_TIMEOUT, ping).await, Ok(Ok(_)))
    }
}

impl StateStore {
    /// Leadership if nobody else holds it (PostgreSQL), always on SQLite.
    pub async fn try_lead(&self) -> Result<Option<Leader>, String> {
        let Some(options) = &self.inner.pg else {
            return Ok(Some(Leader { conn: None }));
        };
        let mut conn = options
            .clone()
            .application_name(LEADER_NAME)
            .connect()
            .await
            .map_err(|e| self.fail(e))?;
        let led: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEAD_LOCK)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| self.fail(e))?;
        if led {
            Ok(Some(Leader { conn: Some(conn) }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }
}
