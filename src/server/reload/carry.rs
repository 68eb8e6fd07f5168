//! What the next model takes over from the one it replaces, and what changed between them.
//!
//! A connector whose settings are equal keeps its `Source` (pools, breaker, health, a file
//! source's loaded data); the binding cache is kept when its own settings are, minus the
//! entries of bindings and connectors that changed; the state store when its URL is.
//! Settings are compared whole, by their `Debug` text: every field is in it, and a field
//! added later cannot be forgotten by a hand-written comparison.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::blueprint::settings::ConnectorConfig;
use crate::blueprint::{Binding, Blueprint};
use crate::cache::{Cache, Invalidation};
use crate::connectors::Source;
use crate::resolve::Engine;
use crate::server::AppState;
use crate::state::StateStore;

/// The parts of the previous model (if any) the next one may take over.
pub(crate) struct Carried<'a> {
    previous: Option<&'a AppState>,
    next: &'a Blueprint,
}

impl<'a> Carried<'a> {
    pub(crate) fn from(previous: Option<&'a AppState>, next: &'a Blueprint) -> Carried<'a> {
        Carried { previous, next }
    }

    fn engine(&self) -> Option<&'a Engine> {
        self.previous.map(|p| &*p.engine)
    }

    /// The previous model's source of `config`'s name, when its settings are the same.
    pub(crate) fn source(&self, config: &ConnectorConfig) -> Option<Arc<Source>> {
        self.engine()?
            .sources
            .iter()
            .find(|s| s.config.name == config.name && same(&s.config, config))
            .cloned()
    }

    /// The binding cache, when its memory bound and Redis level are the same.
    pub(crate) fn cache(&self) -> Option<Arc<Cache>> {
        let engine = self.engine()?;
        let (old, new) = (&engine.blueprint.cache, &self.next.cache);
        (old.max_memory == new.max_memory && old.redis == new.redis).then(|| engine.cache.clone())
    }

    /// The state store, when its URL is the same.
    pub(crate) fn store(&self) -> Option<StateStore> {
        let engine = self.engine()?;
        (engine.blueprint.state.url == self.next.state.url)
            .then(|| engine.state.clone())
            .flatten()
    }

    /// The channel `sourceStatusChanged` subscribers listen on.
    pub(crate) fn source_events(&self) -> Option<broadcast::Sender<Value>> {
        self.engine()?.alerts.as_ref().map(|a| a.sources.clone())
    }
}

fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// What a reload changed.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Connectors added, changed or removed (a new `Source` each, their entries dropped).
    pub connectors: Vec<String>,
    /// Bindings changed or removed whose cache entries are dropped.
    pub bindings: Vec<String>,
    /// Bindings that are new.
    pub added: usize,
    /// False when the cache's own settings changed: a new, empty cache.
    pub cache_kept: bool,
    /// Settings read only when the process starts, which changed.
    pub need_restart: Vec<&'static str>,
}

impl Changes {
    pub(crate) fn between(old: &Engine, new: &Engine) -> Changes {
        let (before, after) = (&old.blueprint, &new.blueprint);
        let mut connectors: Vec<String> = after
            .connectors
            .iter()
            .filter(|c| {
                !before
                    .connectors
                    .iter()
                    .any(|o| o.name == c.name && same(o, *c))
            })
            .map(|c| c.name.clone())
            .collect();
        connectors.extend(
            before
                .connectors
                .iter()
                .filter(|o| !after.connectors.iter().any(|c| c.name == o.name))
                .map(|o| o.name.clone()),
        );
        let mut bindings = Vec::new();
        for b in &before.bindings {
            match after.bindings.iter().find(|n| n.name == b.name) {
                Some(n) if fingerprint(before, b) == fingerprint(after, n) => {}
                _ => bindings.push(b.name.clone()),
            }
        }
        let added = after
            .bindings
            .iter()
            .filter(|n| !before.bindings.iter().any(|b| b.name == n.name))
            .count();
        let mut need_restart = Vec::new();
        let (lb, la) = (&before.limits, &after.limits);
        for (changed, what) in [
            (before.listen != after.listen, "listen"),
            (la.max_in_flight != lb.max_in_flight, "limits.max_in_flight"),
            (
                la.max_live_connections != lb.max_live_connections,
                "limits.max_live_connections",
            ),
            (
                la.shutdown_grace != lb.shutdown_grace,
                "limits.shutdown_grace",
            ),
            (before.reload.watch != after.reload.watch, "reload.watch"),
        ] {
            if changed {
                need_restart.push(what);
            }
        }
        Changes {
            connectors,
            bindings,
            added,
            cache_kept: Arc::ptr_eq(&old.cache, &new.cache),
            need_restart,
        }
    }

    /// Drops the kept cache's entries of what changed (here, in Redis and, through it, in
    /// the other instances, which reload the same files).
    pub(crate) async fn drop_entries(&self, cache: &Cache) {
        if !self.cache_kept {
            return;
        }
        for c in &self.connectors {
            cache.invalidate(Invalidation::Connector(c.clone())).await;
        }
        for b in &self.bindings {
            cache.invalidate(Invalidation::Binding(b.clone())).await;
        }
    }

    /// "2 connectors changed, 1 binding's cache dropped, 1 binding added".
    pub(crate) fn summary(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {many}"),
        };
        let mut parts = vec![
            format!(
                "{} changed",
                plural(self.connectors.len(), "connector", "connectors")
            ),
            match self.cache_kept {
                true => format!(
                    "{} cache dropped",
                    plural(self.bindings.len(), "binding's", "bindings'")
                ),
                false => "the whole cache dropped ([cache] changed)".to_string(),
            },
        ];
        if self.added > 0 {
            parts.push(format!(
                "{} added",
                plural(self.added, "binding", "bindings")
            ));
        }
        parts.join(", ")
    }
}

/// Everything that decides a binding's answers, without where it is written (its id and
/// positions move when other fields are added).
fn fingerprint(bp: &Blueprint, b: &Binding) -> String {
    let connector = bp.connectors.get(b.connector).map(|c| c.name.as_str());
    format!(
        "{connector:?}|{:?}|{:?}|{}|{:?}|{}",
        b.operation, b.batch, b.shareable, b.cache, b.uses_auth
    )
}
