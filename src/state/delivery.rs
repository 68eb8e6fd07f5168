//! One webhook delivery: claimed under a lease (so one instance at a time posts it),
//! posted, and settled: DELIVERED once a receiver answered 2xx, otherwise retried with
//! exponential backoff until it fails for good.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::model::now_ms;
use super::sql::{PG_CLAIM, PG_LEASE, Pool, SQLITE_CLAIM, on_pool};
use super::webhook::sign;

/// How long a claim keeps other instances off a row: well past the request's timeout, so
/// a row is posted again only when its claimer died (or its database stalled a minute).
const LEASE_MS: i64 = 60_000;
/// A receiver that has not answered by then has failed this try.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between tries, before jitter.
const MAX_BACKOFF_SECS: u64 = 300;
/// Attempts to record a 2xx before giving up on the row (then its lease runs out and it
/// is posted again: the one way a receiver can see a delivery twice).
const SETTLE_TRIES: u32 = 5;

/// A row this instance holds the lease of.
pub(super) struct Claimed {
    pub id: i64,
    pub alert_id: i64,
    pub event: String,
    pub url: String,
    pub body: String,
    pub tries: i64,
    /// The lease's end as written: settling only touches the row while it is still ours.
    pub lease: i64,
}

fn claimed<'r, R>(row: &'r R, lease: i64) -> sqlx::Result<Claimed>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Claimed {
        id: row.try_get("id")?,
        alert_id: row.try_get("alert_id")?,
        event: row.try_get("event")?,
        url: row.try_get("url")?,
        body: row.try_get("body")?,
        tries: row.try_get("tries")?,
        lease,
    })
}

/// Claims up to `limit` due rows: PENDING, due, and not leased by anyone.
pub(super) async fn claim(pool: &Pool, now: i64, limit: usize) -> sqlx::Result<Vec<Claimed>> {
    let lease = now + LEASE_MS;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    match pool {
        Pool::Sqlite(p) => sqlx::query(SQLITE_CLAIM)
            .bind(now)
            .bind(lease)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(|row| claimed(row, lease))
            .collect(),
        Pool::Postgres(p) => {
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
                let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
                sqlx::query(PG_LEASE)
                    .bind(lease)
                    .bind(ids)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(rows)
        }
    }
}

/// Posts the row's body; Ok when the receiver answered 2xx, otherwise why not (never
/// with the URL, which may carry a token, nor the secret).
pub(super) async fn post(
    client: &reqwest::Client,
    secret: Option<&str>,
    row: &Claimed,
) -> Result<(), String> {
    let mut request = client
        .post(&row.url)
        .timeout(POST_TIMEOUT)
        .header(CONTENT_TYPE, "application/json")
        .header("X-Simpul-Event", row.event.as_str())
        .header("X-Simpul-Delivery", row.id.to_string())
        .body(row.body.clone());
    if let Some(secret) = secret {
        let signature = format!("sha256={}", sign(secret, row.body.as_bytes()));
        request = request.header("X-Simpul-Signature", signature);
    }
    match request.send().await {
        Ok(answer) if answer.status().is_success() => Ok(()),
        Ok(answer) => Err(format!("the receiver answered {}", answer.status())),
        Err(e) => Err(causes(&e.without_url())),
    }
}

/// An error with its causes ("error sending request" alone says nothing).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

const DELIVERED: &str = "UPDATE simpul_webhook_deliveries SET status = 'DELIVERED', \
     delivered_at_ms = $1, tries = tries + 1, locked_until_ms = NULL, last_error = NULL \
     WHERE id = $2 AND locked_until_ms = $3";

const RETRY: &str = "UPDATE simpul_webhook_deliveries SET tries = $1, next_at_ms = $2, \
     status = $3, last_error = $4, locked_until_ms = NULL \
     WHERE id = $5 AND locked_until_ms = $6";

/// Records the outcome of a post and releases the lease.
pub(super) async fn settle(
    pool: &Pool,
    store: &str,
    row: &Claimed,
    outcome: Result<(), String>,
    max_tries: i64,
) {
    let origin = origin(&row.url);
    let tries = row.tries + 1;
    let failed = outcome.as_ref().err().filter(|_| tries >= max_tries);
    if let Some(error) = failed {
        tracing::warn!(
            delivery = row.id, alert = row.alert_id, event = %row.event, receiver = %origin,
            tries, %error, "webhook delivery failed for good"
        );
    } else if let Err(error) = &outcome {
        tracing::debug!(delivery = row.id, receiver = %origin, tries, %error, "webhook retried");
    }
    for attempt in 1..=SETTLE_TRIES {
        let now = now_ms();
        let done = on_pool!(pool, |p| match &outcome {
            Ok(()) => sqlx::query(DELIVERED)
                .bind(now)
                .bind(row.id)
                .bind(row.lease)
                .execute(p)
                .await
                .map(drop),
            Err(error) => sqlx::query(RETRY)
                .bind(tries)
                .bind(now + backoff_ms(tries))
                .bind(if failed.is_some() {
                    "FAILED"
                } else {
                    "PENDING"
                })
                .bind(error)
                .bind(row.id)
                .bind(row.lease)
                .execute(p)
                .await
                .map(drop),
        });
        match done {
            Ok(()) => return,
            // A failure is retried anyway once the lease runs out; a success is worth a
            // few more attempts, so the receiver is not sent it again.
            Err(e) if outcome.is_ok() && attempt < SETTLE_TRIES => {
                tracing::debug!(error = %e, "recording a webhook delivery, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::warn!(delivery = row.id, store, error = %e, "webhook outcome not recorded");
                return;
            }
        }
    }
}

/// The wait before try `tries + 1`: 1 s, 2 s, 4 s … at most 300 s, ±20% so receivers
/// that came back are not hit by every instance's retries at once.
fn backoff_ms(tries: i64) -> i64 {
    let exponent = u32::try_from((tries - 1).clamp(0, 16)).unwrap_or(16);
    let secs = 1_u64
        .checked_shl(exponent)
        .unwrap_or(u64::MAX)
        .min(MAX_BACKOFF_SECS);
    let jitter: f64 = rand::random_range(0.8..=1.2);
    (secs as f64 * 1000.0 * jitter) as i64
}

/// The receiver as it may be logged: scheme, host and port (a path can carry a token).
fn origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "an unparsable URL".into())
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_to_five_minutes_with_jitter() {
        for (tries, secs) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (40, 300)] {
            let ms = backoff_ms(tries);
            let base = secs * 1000;
            assert!(ms >= base * 8 / 10 && ms <= base * 12 / 10, "{tries}: {ms}");
        }
    }
}
