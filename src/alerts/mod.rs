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
    /// The alerts of `rules`, kept in `store`.
    pub fn new(store: StateStore, rules: Vec<Arc<Rule>>) -> Alerts {
        let (sources, _) = broadcast::channel(256);
        Alerts {
            store,
            rules,
            sources,
        }
    }

    pub fn rule(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
