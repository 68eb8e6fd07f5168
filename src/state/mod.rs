//! The gateway's own state: alerts and their history, each rule's last run, webhook
//! deliveries, the outbox of writes, leadership among instances and alert events, kept in SQLite
//! (one instance) or PostgreSQL (shared by every instance of a deployment).
//!
//! `store.rs` raises, refreshes, clears and lists alerts and rule runs; `lifecycle.rs`
//! acknowledges, resolves and annotates them; `webhook.rs` queues webhooks and runs the
//! delivery loop, `delivery.rs` claims, posts and settles each one;
//! `outbox.rs` keeps, claims and settles the calls of `@outbox` mutations;
//! `lead.rs` elects the one instance that evaluates rules; `bus.rs` carries alert events
//! to every instance's subscribers; `sql.rs` holds the schema and every dialect
//! difference.

mod bus;
mod delivery;
mod gauges;
mod lead;
mod lifecycle;
mod model;
mod outbox;
pub mod pump;
mod rows;
mod sql;
mod store;
mod webhook;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

pub use gauges::Gauges;
pub use lead::Leader;
pub use model::{
    Alert, AlertEvent, AlertFilter, DEFAULT_LIMIT, EventKind, Firing, FollowUp, MAX_LIMIT, Refused,
    RuleRun, rfc3339,
};
pub use outbox::{Claimed, Receipt, Settled};
pub use webhook::sign;

use sql::Pool;

/// Events kept for a subscriber that has not read them yet; one further behind learns it
/// lagged (`RecvError::Lagged`) and reloads what it shows.
const EVENT_BUFFER: usize = 1024;

/// The alert store. Cheap to clone: every clone shares one pool, one event channel and,
/// on PostgreSQL, one listener.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The URL without its password, for errors.
    name: String,
    /// PostgreSQL: how to open the connections that are not the pool's (leadership).
    pg: Option<PgConnectOptions>,
    events: broadcast::Sender<AlertEvent>,
    /// Wakes this process's delivery loop when a delivery was queued.
    enqueued: Notify,
    /// Wakes this process's outbox loop when a call was kept.
    outbox_queued: Notify,
    listener: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The listener holds no handle on the store; without this it would outlive it.
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl StateStore {
    /// Opens `[state] url` for the deployment in `dir`: a relative SQLite path is the
    /// directory's.
    pub async fn open_in(url: &str, dir: &std::path::Path) -> Result<StateStore, String> {
        let url = match url.strip_prefix("sqlite://") {
            Some(path) if !path.starts_with('/') && !path.starts_with(':') => {
                format!("sqlite://{}", dir.join(path).display())
            }
            _ => url.to_string(),
        };
        StateStore::open(&url).await
    }

    /// Opens `sqlite://path` (created when missing; `sqlite::memory:` for tests) or
    /// `postgres://…` and applies the migrations it lacks. Errors name the URL without its
    /// password.
    pub async fn open(url: &str) -> Result<StateStore, String> {
        let (pool, pg) = sql::open(url).await?;
        let name = sql::redacted(url);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let listener = match (&pool, &pg) {
            (Pool::Postgres(p), Some(options)) => Some(
                bus::listen(options, p.clone(), events.clone(), name.clone())
                    .await
                    .map_err(|e| format!("state store {name}: LISTEN: {e}"))?,
            ),
            _ => None,
        };
        Ok(StateStore {
            inner: Arc::new(Inner {
                pool,
                name,
                pg,
                events,
                enqueued: Notify::new(),
                outbox_queued: Notify::new(),
                listener,
            }),
        })
    }

    /// True when other instances may share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.inner.pool, Pool::Postgres(_))
    }

    fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// A database error as the store's callers see it: with the store named.
    fn fail(&self, e: sqlx::Error) -> String {
        format!("state store {}: {e}", self.inner.name)
    }
}
