//! `[cache]` and `[cache.redis]` in simpul.toml.

use schemars::JsonSchema;
use serde::Deserialize;

/// `[cache]` in simpul.toml: the shared cache of every binding.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayCacheFile {
    /// Memory bound of the in-process cache, a size such as "256MiB" (the default), "1GiB"
    /// or "500MB"; entries are weighed by size.
    pub max_memory: String,
    /// Replay whole responses of anonymous operations whose bindings are all cacheable,
    /// until the first entry they were built from expires (default true).
    pub response: bool,
    /// `[cache.redis]`: an optional second level shared by every instance.
    pub redis: Option<RedisFile>,
    /// Memory the compiled plans of every view may hold together, a size such as "64MiB"
    /// (the default).
    pub plan_memory: String,
    /// Operations longer than this size (default "32KiB") are planned on every request and
    /// never kept, nor their responses.
    pub plan_max_text: String,
}

impl Default for GatewayCacheFile {
    fn default() -> Self {
        GatewayCacheFile {
            max_memory: "256MiB".into(),
            response: true,
            redis: None,
            plan_memory: "64MiB".into(),
            plan_max_text: "32KiB".into(),
        }
    }
}

/// `[cache.redis]`: the second cache level, and the channel invalidations travel on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisFile {
    /// `redis://host:port[/db]`, usually `"${env.REDIS_URL}"`.
    pub url: String,
    /// What this deployment's keys and invalidations are named under (`simpul` by
    /// default): deployments that share one Redis must each have their own, or they read
    /// each other's cached rows and drop each other's entries. 1–64 of `A-Z a-z 0-9 _ - .`.
    pub namespace: Option<String>,
}

impl RedisFile {
    /// The namespace, checked.
    pub(super) fn namespace(&self, expand: &dyn Fn(&str) -> String) -> Result<String, String> {
        let ns = self
            .namespace
            .as_deref()
            .map(expand)
            .unwrap_or_else(|| "simpul".into());
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if ns.is_empty() || ns.len() > 64 || !ns.chars().all(plain) {
            return Err(format!(
                "namespace '{ns}' must be 1 to 64 of A-Z a-z 0-9 _ - ."
            ));
        }
        Ok(ns)
    }
}
