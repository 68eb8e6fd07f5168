//! Early warning: rules over the unified graph (`rule.rs`), evaluated by the same executor
//! as any request (`run.rs`, `eval.rs`), their alerts kept in the state store
//! (`crate::state`) and served by the built-in fields of `compile/alerts.graphql`
//! (`api.rs`) and their subscriptions (`server/subscribe.rs`).

pub mod api;
pub mod eval;
pub mod rule;
pub mod run;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::state::StateStore;
use rule::Rule;

/// The alerts of a running gateway: its rules, their store, and this instance's source
/// events.
pub struct Alerts {
    pub store: StateStore,
    pub rules: Vec<Arc<Rule>>,
    /// `sourceStatusChanged` events of this instance's sources (each instance watches its
    /// own connections).
    pub sources: broadcast::Sender<Value>,
}

impl Alerts {
    /// Opens the state store of `[state] url` (a relative SQLite path is the deployment
    /// directory's) and runs its migrations.
    pub async fn open(
        url: &str,
        dir: &std::path::Path,
        rules: Vec<Arc<Rule>>,
    ) -> Result<Alerts, String> {
        let url = match url.strip_prefix("sqlite://") {
            Some(path) if !path.starts_with('/') && !path.starts_with(':') => {
                format!("sqlite://{}", dir.join(path).display())
            }
            _ => url.to_string(),
        };
        let store = StateStore::open(&url).await?;
        let (sources, _) = broadcast::channel(256);
        Ok(Alerts {
            store,
            rules,
            sources,
        })
    }

    pub fn rule(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
