//! `[reload]` in simpul.toml: whether the running gateway watches its deployment's files
//! (schema.graphql, connectors/, rules/, simpul.toml) and reloads when they change.
//! `SIGHUP` reloads either way.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::blueprint::settings::ReloadSettings;

/// `[reload]`, as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadFile {
    /// Watch schema.graphql, connectors/, rules/ and simpul.toml and reload when they change
    /// (default true). Off, only `SIGHUP` reloads: for deployments whose files are replaced
    /// by a tool that signals when it is done.
    pub watch: bool,
    /// How long the files must stay unchanged before a reload starts, a duration such as
    /// "300ms" (the default) or "2s": editors and deploy tools write in several steps.
    pub debounce: String,
}

impl Default for ReloadFile {
    fn default() -> Self {
        ReloadFile {
            watch: true,
            debounce: "300ms".into(),
        }
    }
}

impl ReloadFile {
    /// The settings, or the problem with `debounce`.
    pub fn settings(&self) -> Result<ReloadSettings, String> {
        let debounce =
            super::duration::parse(&self.debounce).map_err(|e| format!("reload.debounce: {e}"))?;
        Ok(ReloadSettings {
            watch: self.watch,
            debounce: debounce.max(Duration::from_millis(10)),
        })
    }
}
