//! Raising, refreshing and clearing alerts as rules fire; listing them; each rule's last
//! run.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, Row};

use super::StateStore;
use super::model::{Alert, AlertFilter, Firing, RuleRun, epoch_ms};
use super::rows::{self, alert_columns};
use super::sql::{Begin, Pool, markers, on_pool};
use super::webhook::{RAISED, body, queue_deliveries};

/// Refreshes the open alert of (rule, region, key), if there is one.
const TOUCH: &str = "UPDATE simpul_alerts SET evidence = $1, message = $2, recommendation = $3, \
     last_seen_at_ms = $4 WHERE rule_id = $5 AND region_code = $6 AND alert_key = $7 \
     AND status <> 'RESOLVED'";

/// Raises an alert unless one is open for (rule, region, key): the partial unique index
/// decides, so two instances racing cannot both raise it.
const RAISE: &str = concat!(
    "INSERT INTO simpul_alerts (rule_id, title, severity, opd, tier, region_code, \
     region_name, alert_key, status, message, recommendation, evidence, raised_at_ms, \
     last_seen_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'OPEN', $9, $10, $11, $12, $12) \
     ON CONFLICT (rule_id, region_code, alert_key) WHERE status <> 'RESOLVED' DO NOTHING \
     RETURNING ",
    alert_columns!()
);

const RESOLVE_AUTO: &str = concat!(
    "UPDATE simpul_alerts SET status = 'RESOLVED', resolution = 'AUTO', \
     resolved_by = 'simpul', resolved_at_ms = $1 WHERE id = $2 AND status <> 'RESOLVED' \
     RETURNING ",
    alert_columns!()
);

/// Every filter is a bound parameter; an absent one (NULL) matches everything.
const LIST: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM simpul_alerts WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR severity = $2) \
     AND ($3 IS NULL OR region_code = $3) AND ($4 IS NULL OR opd = $4) \
     ORDER BY raised_at_ms DESC, id DESC LIMIT $5"
);

const ONE: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM simpul_alerts WHERE id = $1"
);

const RECORD_RUN: &str = "INSERT INTO simpul_rule_runs (rule_id, last_run_at_ms, duration_ms, \
     error, firing) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (rule_id) DO UPDATE SET \
     last_run_at_ms = excluded.last_run_at_ms, duration_ms = excluded.duration_ms, \
     error = excluded.error, firing = excluded.firing";

/// Attempts at `fire` when its INSERT lost to another instance's: the next attempt's
/// UPDATE finds that alert, unless it was resolved in between (then it raises anew).
const RACES: usize = 3;

impl StateStore {
    /// The rule fired for (rule, region, key): raises an alert (and queues its webhooks, in
    /// the same transaction) when none is open, and returns it; otherwise refreshes the open
    /// one's evidence, message, recommendation and last_seen_at and returns None.
    pub async fn fire(&self, f: &Firing) -> Result<Option<Alert>, String> {
        let raised = self.fire_sql(f).await.map_err(|e| self.fail(e))?;
        if raised.is_some() && !f.webhooks.is_empty() {
            self.inner.enqueued.notify_one();
        }
        Ok(raised)
    }

    async fn fire_sql(&self, f: &Firing) -> sqlx::Result<Option<Alert>> {
        let evidence = f.evidence.to_string();
        Ok(on_pool!(self.pool(), |p| {
            let mut raised = None;
            for _ in 0..RACES {
                let mut tx = p.write_tx().await?;
                let touched = sqlx::query(TOUCH)
                    .bind(&evidence)
                    .bind(&f.message)
                    .bind(&f.recommendation)
                    .bind(f.now_ms)
                    .bind(&f.rule)
                    .bind(&f.region_code)
                    .bind(&f.key)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if touched > 0 {
                    tx.commit().await?;
                    break;
                }
                let row = sqlx::query(RAISE)
                    .bind(&f.rule)
                    .bind(&f.title)
                    .bind(&f.severity)
                    .bind(&f.opd)
                    .bind(&f.tier)
                    .bind(&f.region_code)
                    .bind(&f.region_name)
                    .bind(&f.key)
                    .bind(&f.message)
                    .bind(&f.recommendation)
                    .bind(&evidence)
                    .bind(f.now_ms)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    // Another instance raised it after our UPDATE looked: refresh theirs.
                    tx.rollback().await?;
                    continue;
                };
                let alert = rows::alert(&row)?;
                let text = body(&alert, RAISED);
                queue_deliveries!(tx, alert.id, RAISED, &text, &f.webhooks);
                tx.commit().await?;
                raised = Some(alert);
                break;
            }
            raised
        }))
    }

    /// Auto-resolves the rule's open alerts whose (region_code, key) is not in `firing`
    /// (resolution AUTO, by "simpul") and returns them.
    pub async fn clear(
        &self,
        rule: &str,
        firing: &[(String, String)],
        now_ms: i64,
    ) -> Result<Vec<Alert>, String> {
        self.clear_sql(rule, firing, now_ms)
            .await
            .map_err(|e| self.fail(e))
    }

    async fn clear_sql(
        &self,
        rule: &str,
        firing: &[(String, String)],
        now_ms: i64,
    ) -> sqlx::Result<Vec<Alert>> {
        let still: HashSet<(&str, &str)> = firing
            .iter()
            .map(|(region, key)| (region.as_str(), key.as_str()))
            .collect();
        let mut cleared = on_pool!(self.pool(), |p| {
            let mut tx = p.write_tx().await?;
            let open = sqlx::query(
                "SELECT id, region_code, alert_key FROM simpul_alerts \
                 WHERE rule_id = $1 AND status <> 'RESOLVED'",
            )
            .bind(rule)
            .fetch_all(&mut *tx)
            .await?;
            let mut cleared = Vec::new();
            for row in &open {
                let region: String = row.try_get("region_code")?;
                let key: String = row.try_get("alert_key")?;
                if still.contains(&(region.as_str(), key.as_str())) {
                    continue;
                }
                let resolved = sqlx::query(RESOLVE_AUTO)
                    .bind(now_ms)
                    .bind(row.try_get::<i64, _>("id")?)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(resolved) = resolved {
                    cleared.push(rows::alert(&resolved)?);
                }
            }
            tx.commit().await?;
            cleared
        });
        attach_follow_ups(self.pool(), &mut cleared).await?;
        Ok(cleared)
    }

    /// Alerts the filter matches, newest first, with their follow-ups.
    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, String> {
        let listed = on_pool!(self.pool(), |p| {
            sqlx::query(LIST)
                .bind(&filter.status)
                .bind(&filter.severity)
                .bind(&filter.region)
                .bind(&filter.opd)
                .bind(filter.bounded_limit())
                .fetch_all(p)
                .await
                .and_then(|found| found.iter().map(rows::alert).collect())
        });
        let mut alerts: Vec<Alert> = listed.map_err(|e| self.fail(e))?;
        attach_follow_ups(self.pool(), &mut alerts)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(alerts)
    }

    pub async fn alert(&self, id: i64) -> Result<Option<Alert>, String> {
        load_alert(self.pool(), id).await.map_err(|e| self.fail(e))
    }

    /// Records a rule's last evaluation (one row per rule).
    pub async fn record_run(&self, run: &RuleRun) -> Result<(), String> {
        let at = epoch_ms(&run.last_run_at)?;
        on_pool!(self.pool(), |p| {
            sqlx::query(RECORD_RUN)
                .bind(&run.rule)
                .bind(at)
                .bind(run.duration_ms)
                .bind(&run.error)
                .bind(run.firing)
                .execute(p)
                .await
                .map(drop)
        })
        .map_err(|e| self.fail(e))
    }

    /// Every rule's last evaluation, by rule id.
    pub async fn runs(&self) -> Result<Vec<RuleRun>, String> {
        on_pool!(self.pool(), |p| {
            sqlx::query(
                "SELECT rule_id, last_run_at_ms, duration_ms, error, firing \
                 FROM simpul_rule_runs ORDER BY rule_id",
            )
            .fetch_all(p)
            .await
            .and_then(|found| found.iter().map(rows::rule_run).collect())
        })
        .map_err(|e| self.fail(e))
    }
}

/// One alert with its follow-ups.
pub(super) async fn load_alert(pool: &Pool, id: i64) -> sqlx::Result<Option<Alert>> {
    let found = on_pool!(pool, |p| {
        match sqlx::query(ONE).bind(id).fetch_optional(p).await? {
            Some(row) => Some(rows::alert(&row)?),
            None => None,
        }
    });
    let Some(alert) = found else {
        return Ok(None);
    };
    let mut one = [alert];
    attach_follow_ups(pool, &mut one).await?;
    let [alert] = one;
    Ok(Some(alert))
}

/// Follow-ups asked in IN lists of at most this many ids (SQLite's limit on parameters
/// is far above it on every build).
const IDS_PER_QUERY: usize = 500;

/// Loads the follow-ups of every alert in `alerts` (oldest first) onto them.
pub(super) async fn attach_follow_ups(pool: &Pool, alerts: &mut [Alert]) -> sqlx::Result<()> {
    let ids: Vec<i64> = alerts.iter().map(|a| a.id).collect();
    let mut found = Vec::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        // Only the number of markers is spliced; the ids are bound.
        let sql = format!(
            "SELECT alert_id, author, at_ms, note, kind FROM simpul_alert_follow_ups \
             WHERE alert_id IN ({}) ORDER BY at_ms, id",
            markers(1, chunk.len())
        );
        let rows = on_pool!(pool, |p| {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            query
                .fetch_all(p)
                .await?
                .iter()
                .map(rows::follow_up)
                .collect::<sqlx::Result<Vec<_>>>()?
        });
        found.extend(rows);
    }
    rows::attach(alerts, found);
    Ok(())
}
