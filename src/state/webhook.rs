//! Webhooks of alert events: the queue (`simpul_webhook_deliveries`, written in the
//! transaction that raised the alert, so a raised alert is never left untold), the loop
//! that works through it, and the signature receivers verify. `delivery.rs` claims, posts
//! and settles each row.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::task::JoinHandle;

use super::StateStore;
use super::delivery::{self, Claimed};
use super::model::{Alert, now_ms};
use super::sql::{Begin, on_pool};

/// The event of a raised alert, as `X-Simpul-Event` names it.
pub(super) const RAISED: &str = "alert.raised";

/// One PENDING row, due now. `$1` alert, `$2` event, `$3` url, `$4` body, `$5` now.
pub(super) const QUEUE: &str = "INSERT INTO simpul_webhook_deliveries (alert_id, event, url, \
     body, tries, next_at_ms, status) VALUES ($1, $2, $3, $4, 0, $5, 'PENDING')";

/// Queues one delivery per URL on the transaction `$tx` (a macro: the statement is the
/// same for both databases, the transaction's type is not).
macro_rules! queue_deliveries {
    ($tx:expr, $alert_id:expr, $event:expr, $body:expr, $urls:expr) => {
        for url in $urls {
            sqlx::query($crate::state::webhook::QUEUE)
                .bind($alert_id)
                .bind($event)
                .bind(url.as_str())
                .bind($body)
                .bind($crate::state::model::now_ms())
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(super) use queue_deliveries;

#[derive(Serialize)]
struct Body<'a> {
    event: &'a str,
    alert: &'a Alert,
}

/// What a receiver is sent: `{"event": "alert.raised", "alert": {…}}`, fixed when the
/// delivery is queued (a retry sends the same bytes, so the signature stays the same).
pub(super) fn body(alert: &Alert, event: &str) -> String {
    // Serializing an Alert cannot fail (no maps with non-string keys); if it ever did, the
    // receiver still learns which alert and event.
    serde_json::to_string(&Body { event, alert })
        .unwrap_or_else(|_| format!(r#"{{"event":{event:?},"alert":{{"id":{}}}}}"#, alert.id))
}

/// `X-Simpul-Signature` without its `sha256=` prefix: the lowercase hex HMAC-SHA256 of
/// the request body under the URL's secret.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts a key of any length, so there is no error to handle in practice.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let mut hex = String::with_capacity(64);
    for byte in mac.finalize().into_bytes() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

impl StateStore {
    /// Queues `event` about `alert` for each of `urls` (events other than a raise, which
    /// `fire` queues itself).
    pub async fn enqueue(&self, alert: &Alert, event: &str, urls: &[String]) -> Result<(), String> {
        if urls.is_empty() {
            return Ok(());
        }
        let text = body(alert, event);
        let queued: sqlx::Result<()> = on_pool!(self.pool(), |p| async {
            let mut tx = p.write_tx().await?;
            queue_deliveries!(tx, alert.id, event, &text, urls);
            tx.commit().await
        }
        .await);
        queued.map_err(|e| self.fail(e))?;
        self.inner.enqueued.notify_one();
        Ok(())
    }

    /// Delivers queued webhooks until the handle is aborted: every 500 ms and right after
    /// this process queues one. `secrets` maps a URL to the secret its requests are signed
    /// with; a row fails for good after `max_tries` attempts.
    pub fn spawn_deliveries(
        &self,
        client: reqwest::Client,
        secrets: Arc<HashMap<String, String>>,
        max_tries: u32,
    ) -> JoinHandle<()> {
        self.spawn_deliveries_until(client, secrets, max_tries, std::future::pending())
    }

    /// `spawn_deliveries` until `retired` completes: the loop of a model a reload replaced
    /// stops where it waits, and the next model's loop takes over.
    pub fn spawn_deliveries_until(
        &self,
        client: reqwest::Client,
        secrets: Arc<HashMap<String, String>>,
        max_tries: u32,
        retired: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let store = self.clone();
        let max_tries = i64::from(max_tries.max(1));
        tokio::spawn(async move {
            let claim = |free| {
                let store = &store;
                async move {
                    delivery::claim(store.pool(), now_ms(), free)
                        .await
                        .map_err(|e| store.fail(e))
                }
            };
            let deliver = |row: Claimed| {
                let (store, client, secrets) = (store.clone(), client.clone(), secrets.clone());
                async move {
                    let secret = secrets.get(&row.url).map(String::as_str);
                    let outcome = delivery::post(&client, secret, &row).await;
                    delivery::settle(store.pool(), &store.inner.name, &row, outcome, max_tries)
                        .await;
                }
            };
            super::pump::pump("webhooks", &store.inner.enqueued, claim, deliver, retired).await;
        })
    }
}
