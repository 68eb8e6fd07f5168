//! Alert events for every instance's subscribers. On PostgreSQL a NOTIFY carries only the
//! kind and the id; each store's listener loads the alert and hands it to its own
//! subscribers, so every instance (the publisher included) sees each event once. On
//! SQLite there is one instance: the event goes straight to its subscribers.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::StateStore;
use super::model::{AlertEvent, EventKind};
use super::sql::Pool;
use super::store::load_alert;

const CHANNEL: &str = "simpul_alerts";
/// The listener's connection, as `pg_stat_activity` shows it.
const LISTENER_NAME: &str = "simpul-alerts-listener";
/// The wait before asking again for a listener connection that could not be had.
const RETRY: Duration = Duration::from_secs(1);
/// Listener failures logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The NOTIFY payload: small (PostgreSQL caps it at 8000 bytes), never the alert itself.
#[derive(Serialize, Deserialize)]
struct Notice {
    kind: EventKind,
    id: i64,
}

impl StateStore {
    /// Tells every instance's subscribers that alert `id` was raised or changed.
    pub async fn publish(&self, kind: EventKind, id: i64) -> Result<(), String> {
        match self.pool() {
            Pool::Postgres(p) => {
                let payload = serde_json::to_string(&Notice { kind, id })
                    .map_err(|e| format!("alert event {id}: {e}"))?;
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(p)
                    .await
                    .map(drop)
                    .map_err(|e| self.fail(e))
            }
            Pool::Sqlite(_) => {
                let alert = self
                    .alert(id)
                    .await?
                    .ok_or_else(|| format!("alert {id} does not exist"))?;
                // Nobody subscribed is no error: events are for whoever listens now.
                let _ = self.inner.events.send(AlertEvent { kind, alert });
                Ok(())
            }
        }
    }

    /// Events from now on (each instance's publications included).
    pub fn events(&self) -> broadcast::Receiver<AlertEvent> {
        self.inner.events.subscribe()
    }
}

/// LISTENs on a connection of its own before returning (so nothing published after
/// `open` is missed), then relays each notice in a task.
pub(super) async fn listen(
    options: &PgConnectOptions,
    pool: PgPool,
    events: broadcast::Sender<AlertEvent>,
    name: String,
) -> sqlx::Result<JoinHandle<()>> {
    // A pool of one: PgListener reconnects through it when its connection drops.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone().application_name(LISTENER_NAME))
        .await?;
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen(CHANNEL).await?;
    Ok(tokio::spawn(relay(
        listener,
        Pool::Postgres(pool),
        events,
        name,
    )))
}

async fn relay(
    mut listener: PgListener,
    pool: Pool,
    events: broadcast::Sender<AlertEvent>,
    name: String,
) {
    let mut logged: Option<Instant> = None;
    let mut log = |what: &str, error: String| {
        if logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            logged = Some(Instant::now());
            tracing::warn!(store = %name, %error, "alert events: {what}");
        }
    };
    loop {
        // On a dropped connection, recv reconnects and LISTENs again; notices sent while
        // it was down are lost (NOTIFY keeps none), which subscribers learn to live with
        // by reloading on reconnect of their own.
        let notice = match listener.recv().await {
            Ok(notice) => notice,
            Err(e) => {
                log("listener", e.to_string());
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Ok(Notice { kind, id }) = serde_json::from_str(notice.payload()) else {
            log(
                "payload",
                format!("not an alert event: {}", notice.payload()),
            );
            continue;
        };
        match load_alert(&pool, id).await {
            Ok(Some(alert)) => {
                let _ = events.send(AlertEvent { kind, alert });
            }
            Ok(None) => log("payload", format!("alert {id} does not exist")),
            Err(e) => log("loading the alert", e.to_string()),
        }
    }
}
