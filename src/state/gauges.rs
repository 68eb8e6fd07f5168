//! What `/metrics` reads from the store at each scrape: open alerts by severity, and the
//! outbox's waiting deliveries and the age of the oldest.

use super::StateStore;
use super::sql::on_pool;

/// The store's state for the gauges of `/metrics`.
#[derive(Debug, Default)]
pub struct Gauges {
    /// (severity, alerts open or acknowledged, not resolved).
    pub open_alerts: Vec<(String, i64)>,
    /// `@outbox` calls not yet delivered nor given up on.
    pub outbox_pending: i64,
    /// When the oldest of them was accepted (ms since the epoch).
    pub outbox_oldest_ms: Option<i64>,
}

impl StateStore {
    pub async fn gauges(&self) -> Result<Gauges, String> {
        let open_alerts = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT severity, COUNT(*) FROM simpul_alerts WHERE status <> 'RESOLVED' \
                 GROUP BY severity ORDER BY severity",
            )
            .fetch_all(p)
            .await
        })
        .map_err(|e| self.fail(e))?;
        let (outbox_pending, outbox_oldest_ms) = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, (i64, Option<i64>)>(
                "SELECT COUNT(*), MIN(accepted_at_ms) FROM simpul_outbox \
                 WHERE status = 'PENDING'",
            )
            .fetch_one(p)
            .await
        })
        .map_err(|e| self.fail(e))?;
        Ok(Gauges {
            open_alerts,
            outbox_pending,
            outbox_oldest_ms,
        })
    }
}
