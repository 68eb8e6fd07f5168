//! What staff do to an alert: acknowledge it, resolve it, add a note. A note given with a
//! change becomes a follow-up of that kind, so the history says who did what, when.

use super::StateStore;
use super::model::{Alert, Refused};
use super::sql::{Begin, on_pool};
use super::store::load_alert;

const ACKNOWLEDGE: &str = "UPDATE simpul_alerts SET status = 'ACKNOWLEDGED', \
     acknowledged_at_ms = $1, acknowledged_by = $2 WHERE id = $3 AND status = 'OPEN'";

const RESOLVE: &str = "UPDATE simpul_alerts SET status = 'RESOLVED', resolution = 'MANUAL', \
     resolved_at_ms = $1, resolved_by = $2 WHERE id = $3 AND status <> 'RESOLVED'";

const FOLLOW_UP: &str = "INSERT INTO simpul_alert_follow_ups (alert_id, author, at_ms, note, \
     kind) VALUES ($1, $2, $3, $4, $5)";

/// A note on an alert that exists (none is added, and no row, when it does not).
const NOTE: &str = "INSERT INTO simpul_alert_follow_ups (alert_id, author, at_ms, note, kind) \
     SELECT id, $2, $3, $4, 'NOTE' FROM simpul_alerts WHERE id = $1";

/// Where a change was asked and what the alert's status was after it.
struct Outcome {
    changed: bool,
    /// None: no such alert.
    status: Option<String>,
}

impl StateStore {
    /// OPEN → ACKNOWLEDGED. Acknowledging an acknowledged alert changes nothing and returns
    /// it; a resolved one is refused. Ok(None): no such alert.
    pub async fn acknowledge(
        &self,
        id: i64,
        by: &str,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Alert>, Refused> {
        let outcome = self
            .change(ACKNOWLEDGE, "ACKNOWLEDGED", id, by, note, now_ms)
            .await?;
        match outcome.status.as_deref() {
            None => Ok(None),
            Some("RESOLVED") if !outcome.changed => Err(already_resolved(id)),
            Some(_) => self.reload(id).await,
        }
    }

    /// OPEN or ACKNOWLEDGED → RESOLVED (resolution MANUAL); a resolved alert is refused.
    /// Ok(None): no such alert.
    pub async fn resolve(
        &self,
        id: i64,
        by: &str,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Alert>, Refused> {
        let outcome = self
            .change(RESOLVE, "RESOLVED", id, by, note, now_ms)
            .await?;
        match (outcome.changed, outcome.status) {
            (_, None) => Ok(None),
            (false, Some(_)) => Err(already_resolved(id)),
            (true, Some(_)) => self.reload(id).await,
        }
    }

    /// Adds a note to an alert's history, whatever its status (what was done after an
    /// alert cleared is still worth keeping). A blank note is refused. Ok(None): no such
    /// alert.
    pub async fn add_follow_up(
        &self,
        id: i64,
        by: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<Option<Alert>, Refused> {
        let note = note.trim();
        if note.is_empty() {
            return Err(Refused("a follow-up needs a note".into()));
        }
        let added = on_pool!(self.pool(), |p| {
            sqlx::query(NOTE)
                .bind(id)
                .bind(by)
                .bind(now_ms)
                .bind(note)
                .execute(p)
                .await
                .map(|done| done.rows_affected() > 0)
        })
        .map_err(|e| self.unavailable(e))?;
        if !added {
            return Ok(None);
        }
        self.reload(id).await
    }

    /// Runs `update` (binds: now, by, id) and, when it changed the alert and a note was
    /// given, adds the note as a follow-up of `kind`, in one transaction.
    async fn change(
        &self,
        update: &'static str,
        kind: &str,
        id: i64,
        by: &str,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<Outcome, Refused> {
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        let outcome: sqlx::Result<Outcome> = on_pool!(self.pool(), |p| async {
            let mut tx = p.write_tx().await?;
            let changed = sqlx::query(update)
                .bind(now_ms)
                .bind(by)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if let (true, Some(note)) = (changed, note) {
                sqlx::query(FOLLOW_UP)
                    .bind(id)
                    .bind(by)
                    .bind(now_ms)
                    .bind(note)
                    .bind(kind)
                    .execute(&mut *tx)
                    .await?;
            }
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM simpul_alerts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(Outcome { changed, status })
        }
        .await);
        outcome.map_err(|e| self.unavailable(e))
    }

    async fn reload(&self, id: i64) -> Result<Option<Alert>, Refused> {
        load_alert(self.pool(), id)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// A database failure as a refusal: the cause goes to the log, the person who asked
    /// is told to try again (they may be a PUBLIC-facing client of the GraphQL layer).
    fn unavailable(&self, e: sqlx::Error) -> Refused {
        tracing::warn!(error = %self.fail(e), "alert change not made");
        Refused("the alert store is unavailable; try again".into())
    }
}

fn already_resolved(id: i64) -> Refused {
    Refused(format!("alert {id} is already resolved"))
}
