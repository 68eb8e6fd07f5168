//! The outbox of `@outbox` mutations: a call is kept here (one committed INSERT) before
//! its caller gets a receipt, then claimed under a lease by one instance at a time,
//! delivered by `crate::outbox`, and settled: DELIVERED (its arguments erased), retried
//! with backoff, or FAILED after its tries.

use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::StateStore;
use super::model::{now_ms, rfc3339};
use super::sql::{Begin, Pool, on_pool};

/// A write as its caller and `Query.…(receipt:)` see it: no arguments, no caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    /// PENDING | DELIVERED | FAILED
    pub status: String,
    pub accepted_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
    pub tracking_id: Option<String>,
}

impl Receipt {
    /// The GraphQL `Receipt` object.
    pub fn json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "status": self.status,
            "acceptedAt": rfc3339(self.accepted_at_ms),
            "deliveredAt": self.delivered_at_ms.map(rfc3339),
            "trackingId": self.tracking_id,
        })
    }
}

/// A row this instance holds the lease of, with what its call is made from.
#[derive(Debug)]
pub struct Claimed {
    pub id: String,
    pub field: String,
    pub args: Value,
    pub auth: Value,
    pub tries: i64,
    pub accepted_at_ms: i64,
    /// The lease's end as written: settling only touches the row while it is still ours.
    lease: i64,
}

/// How a settled delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    /// Tried again after the backoff.
    Retry,
    /// Its last try failed: the staff are told.
    Failed,
    /// The lease ran out first: another claim settles it.
    Lost,
}

/// A receipt's columns, `WHERE` what follows.
macro_rules! receipt_where {
    ($condition:literal) => {
        concat!(
            "SELECT id, status, accepted_at_ms, delivered_at_ms, tracking_id \
             FROM simpul_outbox WHERE ",
            $condition
        )
    };
}

/// `$1` id, `$2` field, `$3` client key, `$4` args, `$5` auth, `$6` now. A row with the
/// same (field, client key) is left as it is.
const ACCEPT: &str = "INSERT INTO simpul_outbox (id, field, client_key, args, auth, status, \
     tries, next_at_ms, accepted_at_ms) VALUES ($1, $2, $3, $4, $5, 'PENDING', 0, $6, $6) \
     ON CONFLICT DO NOTHING";

const SQLITE_CLAIM: &str = "UPDATE simpul_outbox SET locked_until_ms = $2 \
     WHERE id IN (SELECT id FROM simpul_outbox WHERE status = 'PENDING' AND next_at_ms <= $1 \
     AND (locked_until_ms IS NULL OR locked_until_ms <= $1) ORDER BY next_at_ms, id LIMIT $3) \
     RETURNING id, field, args, auth, tries, accepted_at_ms";

/// PostgreSQL: rows another instance is claiming are skipped, not waited for.
const PG_CLAIM: &str = "SELECT id, field, args, auth, tries, accepted_at_ms FROM simpul_outbox \
     WHERE status = 'PENDING' AND next_at_ms <= $1 \
     AND (locked_until_ms IS NULL OR locked_until_ms <= $1) \
     ORDER BY next_at_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED";
const PG_LEASE: &str = "UPDATE simpul_outbox SET locked_until_ms = $1 WHERE id = ANY($2)";

const DELIVERED: &str = "UPDATE simpul_outbox SET status = 'DELIVERED', delivered_at_ms = $1, \
     tries = tries + 1, tracking_id = $2, args = NULL, auth = NULL, locked_until_ms = NULL, \
     last_error = NULL WHERE id = $3 AND locked_until_ms = $4";
const RETRY: &str = "UPDATE simpul_outbox SET tries = $1, next_at_ms = $2, status = $3, \
     last_error = $4, locked_until_ms = NULL WHERE id = $5 AND locked_until_ms = $6";

fn receipt<'r, R>(row: &'r R) -> sqlx::Result<Receipt>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Receipt {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        accepted_at_ms: row.try_get("accepted_at_ms")?,
        delivered_at_ms: row.try_get("delivered_at_ms")?,
        tracking_id: row.try_get("tracking_id")?,
    })
}

fn claimed<'r, R>(row: &'r R, lease: i64) -> sqlx::Result<Claimed>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let json = |column: &str| -> sqlx::Result<Value> {
        let text: Option<String> = row.try_get(column)?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null))
    };
    Ok(Claimed {
        id: row.try_get("id")?,
        field: row.try_get("field")?,
        args: json("args")?,
        auth: json("auth")?,
        tries: row.try_get("tries")?,
        accepted_at_ms: row.try_get("accepted_at_ms")?,
        lease,
    })
}

/// A receipt id: 128 random bits, so one cannot be guessed from another.
fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl StateStore {
    /// Keeps a call of `field` made with `args` by a caller with claims `auth`, committed
    /// before this returns. With `client_key`, a second call with the same key gets the
    /// first one's receipt and keeps nothing new.
    pub async fn accept(
        &self,
        field: &str,
        client_key: Option<&str>,
        args: &Value,
        auth: &Value,
    ) -> Result<Receipt, String> {
        let id = new_id();
        let now = now_ms();
        let (args, auth) = (args.to_string(), auth.to_string());
        let kept: sqlx::Result<Option<Receipt>> = on_pool!(self.pool(), |p| async {
            let mut tx = p.write_tx().await?;
            sqlx::query(ACCEPT)
                .bind(&id)
                .bind(field)
                .bind(client_key)
                .bind(&args)
                .bind(&auth)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let row = match client_key {
                Some(key) => {
                    sqlx::query(receipt_where!("field = $1 AND client_key = $2"))
                        .bind(field)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => {
                    sqlx::query(receipt_where!("id = $1"))
                        .bind(&id)
                        .fetch_optional(&mut *tx)
                        .await?
                }
            };
            let found = row.as_ref().map(receipt).transpose()?;
            tx.commit().await?;
            Ok(found)
        }
        .await);
        let receipt = kept
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| format!("state store {}: the kept call is gone", self.inner.name))?;
        if receipt.id == id {
            self.inner.outbox_queued.notify_one();
        }
        Ok(receipt)
    }

    /// The receipt `id` of a call of `field`, if there is one.
    pub async fn receipt(&self, field: &str, id: &str) -> Result<Option<Receipt>, String> {
        let found: sqlx::Result<Option<Receipt>> = on_pool!(self.pool(), |p| {
            sqlx::query(receipt_where!("id = $1 AND field = $2"))
                .bind(id)
                .bind(field)
                .fetch_optional(p)
                .await
                .and_then(|row| row.as_ref().map(receipt).transpose())
        });
        found.map_err(|e| self.fail(e))
    }

    /// Gives back the leases of every pending row: on SQLite, which one instance owns,
    /// what a killed process had claimed is due again at its restart.
    pub async fn release_outbox(&self) -> Result<(), String> {
        if self.is_shared() {
            return Ok(());
        }
        let done: sqlx::Result<()> = on_pool!(self.pool(), |p| {
            sqlx::query(
                "UPDATE simpul_outbox SET locked_until_ms = NULL \
                 WHERE status = 'PENDING' AND locked_until_ms IS NOT NULL",
            )
            .execute(p)
            .await
            .map(drop)
        });
        done.map_err(|e| self.fail(e))
    }

    /// Claims up to `limit` due rows for `lease_ms`: PENDING, due, and not leased by
    /// anyone.
    pub async fn claim_outbox(&self, limit: usize, lease_ms: i64) -> Result<Vec<Claimed>, String> {
        let now = now_ms();
        let lease = now + lease_ms;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: sqlx::Result<Vec<Claimed>> = match self.pool() {
            Pool::Sqlite(p) => sqlx::query(SQLITE_CLAIM)
                .bind(now)
                .bind(lease)
                .bind(limit)
                .fetch_all(p)
                .await
                .and_then(|rows| rows.iter().map(|row| claimed(row, lease)).collect()),
            Pool::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    let rows = sqlx::query(PG_CLAIM)
                        .bind(now)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                    let rows: Vec<Claimed> = rows
                        .iter()
                        .map(|row| claimed(row, lease))
                        .collect::<sqlx::Result<_>>()?;
                    if !rows.is_empty() {
                        let ids: Vec<&str> = rows.iter().map(|c| c.id.as_str()).collect();
                        sqlx::query(PG_LEASE)
                            .bind(lease)
                            .bind(ids)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(rows)
                }
                .await
            }
        };
        rows.map_err(|e| self.fail(e))
    }

    /// Records the outcome of a delivery: `Ok(tracking id)` when the upstream accepted it,
    /// else why not; FAILED once `max_tries` are spent, otherwise due again after
    /// `backoff_ms`.
    pub async fn settle_outbox(
        &self,
        row: &Claimed,
        outcome: Result<Option<String>, String>,
        max_tries: u32,
        backoff_ms: i64,
    ) -> Result<Settled, String> {
        let tries = row.tries + 1;
        let now = now_ms();
        let failed = outcome.is_err() && tries >= i64::from(max_tries);
        let done: sqlx::Result<u64> = on_pool!(self.pool(), |p| match &outcome {
            Ok(tracking) => sqlx::query(DELIVERED)
                .bind(now)
                .bind(tracking.as_deref())
                .bind(&row.id)
                .bind(row.lease)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Err(error) => sqlx::query(RETRY)
                .bind(tries)
                .bind(now + backoff_ms)
                .bind(if failed { "FAILED" } else { "PENDING" })
                .bind(error)
                .bind(&row.id)
                .bind(row.lease)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        });
        Ok(match done.map_err(|e| self.fail(e))? {
            0 => Settled::Lost,
            _ if outcome.is_ok() => Settled::Delivered,
            _ if failed => Settled::Failed,
            _ => Settled::Retry,
        })
    }

    /// Notified when this process kept a call: its delivery loop looks at once.
    pub fn outbox_queued(&self) -> &tokio::sync::Notify {
        &self.inner.outbox_queued
    }
}
