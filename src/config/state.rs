//! `[state]`, `[rules]` and `[outbox]` in simpul.toml: where alerts and the outbox are
//! kept, what rules without a region of their own point at, and how deliveries back off.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::blueprint::settings::StateSettings;

/// `[state]`: the store of alerts, their follow-ups and rule runs (and of webhook
/// deliveries).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StateFile {
    /// `sqlite://FILE` (relative to the deployment directory; created when missing) or
    /// `postgres://...` to share alerts between instances (one evaluates at a time,
    /// every instance's subscribers get every event). Default `sqlite://simpul-state.db`.
    pub url: String,
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            url: "sqlite://simpul-state.db".into(),
        }
    }
}

/// `[rules]`: settings shared by every `rules/*.toml`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RulesFile {
    /// The region code an alert concerns when its rule names no `region` (the deployment's
    /// own, e.g. "35.03").
    pub region: Option<String>,
    /// That region's name, e.g. "Kabupaten Trenggalek".
    pub region_name: Option<String>,
    /// Tries of a webhook delivery before it is marked FAILED (default 12: about an hour
    /// of backoff).
    pub webhook_max_tries: Option<u32>,
}

/// `[outbox]`: how the calls of `@outbox` mutations are retried while their upstream
/// fails.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxFile {
    /// The wait after a delivery's first failure; it doubles with each try (±20% jitter).
    /// Default "1s".
    pub min_backoff: String,
    /// The longest wait between two tries. Default "5m".
    pub max_backoff: String,
}

impl Default for OutboxFile {
    fn default() -> Self {
        OutboxFile {
            min_backoff: "1s".into(),
            max_backoff: "5m".into(),
        }
    }
}

pub(super) fn settings(
    state: &StateFile,
    rules: &RulesFile,
    outbox: &OutboxFile,
    expand: impl Fn(&str) -> String,
    problem: &mut dyn FnMut(String),
) -> StateSettings {
    let mut backoff = |key: &str, text: &str, default: Duration| {
        super::duration::parse(text).unwrap_or_else(|e| {
            problem(format!("outbox.{key}: {e}"));
            default
        })
    };
    let min = backoff("min_backoff", &outbox.min_backoff, Duration::from_secs(1));
    let max = backoff("max_backoff", &outbox.max_backoff, Duration::from_secs(300));
    StateSettings {
        url: expand(&state.url),
        region: rules.region.clone().unwrap_or_default(),
        region_name: rules.region_name.clone().unwrap_or_default(),
        webhook_max_tries: rules.webhook_max_tries.unwrap_or(12).max(1),
        outbox_backoff: (min.max(Duration::from_millis(10)), max.max(min)),
    }
}
