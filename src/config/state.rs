//! `[state]` and `[rules]` in simpul.toml: where alerts are kept, and what rules without a
//! region of their own point at.

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

pub(super) fn settings(
    state: &StateFile,
    rules: &RulesFile,
    expand: impl Fn(&str) -> String,
) -> StateSettings {
    StateSettings {
        url: expand(&state.url),
        region: rules.region.clone().unwrap_or_default(),
        region_name: rules.region_name.clone().unwrap_or_default(),
        webhook_max_tries: rules.webhook_max_tries.unwrap_or(12).max(1),
    }
}
