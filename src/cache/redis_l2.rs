//! Redis as the shared second cache level and the invalidation bus between instances.
//!
//! Redis is optional and never on the critical path: every call has a short timeout, and
//! after a failure the gateway stops asking for a few seconds and serves from L1 only.

use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Cache, Entry};
use crate::connectors::Fetched;

const TIMEOUT: Duration = Duration::from_millis(250);
const BACKOFF: Duration = Duration::from_secs(3);

/// What an invalidation drops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "name", rename_all = "lowercase")]
pub enum Invalidation {
    All,
    Connector(String),
    Binding(String),
}

#[derive(Serialize, Deserialize)]
struct Stored {
    rows: Vec<Value>,
    fetched_at_ms: u64,
    fresh_until_ms: u64,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub struct RedisL2 {
    client: redis::Client,
    /// `<namespace>:v1:`, before every key.
    prefix: String,
    /// `<namespace>:invalidate`, where invalidations travel between instances.
    channel: String,
    conn: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    down_until: Mutex<Option<Instant>>,
}

impl RedisL2 {
    pub fn new(url: &str, namespace: &str) -> Result<RedisL2, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(RedisL2 {
            client,
            prefix: format!("{namespace}:v1:"),
            channel: format!("{namespace}:invalidate"),
            conn: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(None),
        })
    }

    fn is_down(&self) -> bool {
        self.down_until
            .lock()
            .ok()
            .and_then(|d| *d)
            .is_some_and(|until| Instant::now() < until)
    }

    fn mark_down(&self, e: impl std::fmt::Display) {
        tracing::warn!(error = %e, "redis unavailable; serving from the in-process cache only");
        if let Ok(mut d) = self.down_until.lock() {
            *d = Some(Instant::now() + BACKOFF);
        }
    }

    async fn connection(&self) -> Option<redis::aio::ConnectionManager> {
        if self.is_down() {
            return None;
        }
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Some(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(0);
        match tokio::time::timeout(
            TIMEOUT * 2,
            self.client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(c)) => {
                *slot = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.mark_down(e);
                None
            }
            Err(_) => {
                self.mark_down("connect timed out");
                None
            }
        }
    }

    /// Rows and their fresh deadline, if another instance (or this one) stored them.
    pub async fn get(&self, key: &str) -> Option<(Fetched, SystemTime)> {
        let mut conn = self.connection().await?;
        let got: Result<Option<Vec<u8>>, _> =
            match tokio::time::timeout(TIMEOUT, conn.get(format!("{}{key}", self.prefix))).await {
                Ok(r) => r,
                Err(_) => {
                    self.mark_down("GET timed out");
                    return None;
                }
            };
        let bytes = match got {
            Ok(b) => b?,
            Err(e) => {
                self.mark_down(e);
                return None;
            }
        };
        let stored: Stored = serde_json::from_slice(&bytes).ok()?;
        Some((
            Fetched::new(
                stored.rows,
                UNIX_EPOCH + Duration::from_millis(stored.fetched_at_ms),
            ),
            UNIX_EPOCH + Duration::from_millis(stored.fresh_until_ms),
        ))
    }

    pub async fn put(&self, key: &str, entry: &Entry) {
        let Some(mut conn) = self.connection().await else {
            return;
        };
        let stored = Stored {
            rows: entry.fetched.rows.clone(),
            fetched_at_ms: ms(entry.fetched.fetched_at),
            fresh_until_ms: ms(entry.fresh_until),
        };
        let Ok(bytes) = serde_json::to_vec(&stored) else {
            return;
        };
        let ttl = entry
            .evict_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .as_millis()
            .max(1) as u64;
        let set: Result<Result<(), _>, _> = tokio::time::timeout(
            TIMEOUT,
            conn.pset_ex(format!("{}{key}", self.prefix), bytes, ttl),
        )
        .await;
        match set {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.mark_down(e),
            Err(_) => self.mark_down("SET timed out"),
        }
    }

    /// Deletes matching keys and tells every instance to drop them from memory.
    pub async fn invalidate(&self, what: &Invalidation) {
        let Some(mut conn) = self.connection().await else {
            return;
        };
        let pattern = match what {
            Invalidation::All => format!("{}*", self.prefix),
            Invalidation::Connector(c) => format!("{}{c}\u{1f}*", self.prefix),
            Invalidation::Binding(b) => format!("{}*\u{1f}{b}\u{1f}*", self.prefix),
        };
        let keys: Vec<String> = match conn.scan_match::<_, String>(&pattern).await {
            Ok(iter) => iter.filter_map(|k| async move { k.ok() }).collect().await,
            Err(e) => {
                self.mark_down(e);
                return;
            }
        };
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = conn.del(chunk).await;
        }
        let message = serde_json::to_string(what).unwrap_or_default();
        let _: Result<(), _> = conn.publish(&self.channel, message).await;
    }

    /// Listens for invalidations from other instances for as long as the cache lives.
    pub fn subscribe(&self, cache: Weak<Cache>) {
        let client = self.client.clone();
        let channel = self.channel.clone();
        tokio::spawn(async move {
            loop {
                if cache.upgrade().is_none() {
                    return;
                }
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(&channel).await.is_ok() {
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                let Some(cache) = cache.upgrade() else { return };
                                let payload: String = msg.get_payload().unwrap_or_default();
                                if let Ok(what) = serde_json::from_str::<Invalidation>(&payload) {
                                    cache.invalidate_local(&what);
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "redis pub/sub unavailable"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}
