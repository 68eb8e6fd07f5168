//! `simpul check`, and the same check when `serve` starts: the compile, then every binding
//! matched against what its source really returns (`shape`: statements prepared and
//! described, `[file]` tables read, HTTP answers sampled; `fit`: columns, types, values,
//! batch keys and `{{parent.X}}` against the fields that read them).
//!
//! A source that cannot be reached is not a problem of the deployment but is never "ok"
//! either: `check` reports it (exit 1 unless `--offline`), `serve` starts with it DOWN.

mod explain;
mod fit;
mod operations;
mod remote;
mod rules;
mod shape;

use std::path::Path;
use std::sync::Arc;

pub use explain::explain;

use crate::blueprint::Blueprint;
use crate::connectors::Source;
use crate::diagnostic::{Diagnostic, sorted};

/// What checking a deployment against its sources found.
#[derive(Debug, Default)]
pub struct Report {
    /// What would serve wrong or not at all: `serve` refuses to start on any.
    pub problems: Vec<Diagnostic>,
    /// Sources that could not be reached: their bindings are not checked.
    pub unreachable: Vec<Diagnostic>,
}

impl Report {
    /// Every finding, problems and unreachable sources alike, in file order.
    pub fn all(self) -> Vec<Diagnostic> {
        sorted(self.problems.into_iter().chain(self.unreachable).collect())
    }
}

/// Every problem in the deployment at `dir`, unreachable sources included; empty when it
/// is sound.
pub async fn check(dir: &Path) -> Vec<Diagnostic> {
    check_dir(dir, true).await.all()
}

/// The compile, then each binding against its source; `live_http` samples live HTTP APIs
/// too.
pub async fn check_dir(dir: &Path, live_http: bool) -> Report {
    let blueprint = match crate::compile::compile_dir(dir) {
        Ok(bp) => bp,
        Err(problems) => {
            return Report {
                problems,
                unreachable: Vec::new(),
            };
        }
    };
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for c in &blueprint.connectors {
        match Source::build(c.clone(), dir).await {
            Ok(s) => sources.push(Arc::new(s)),
            Err(e) => problems.push(Diagnostic::new(&c.file, 1, 1, e)),
        }
    }
    if !problems.is_empty() {
        return Report {
            problems: sorted(problems),
            unreachable: Vec::new(),
        };
    }
    verify(&Arc::new(blueprint), &sources, live_http).await
}

/// The rules' queries and the dashboard's operations, validated against the INTERNAL view's
/// schema (built once for both, and only when there is one of them).
async fn queries(bp: &Arc<Blueprint>) -> Vec<Diagnostic> {
    let operations = bp
        .dashboard
        .as_ref()
        .is_some_and(|d| !d.operations.is_empty());
    if bp.rules.is_empty() && !operations {
        return Vec::new();
    }
    match crate::schema::build(bp, &crate::access::View::Internal) {
        Ok(schema) => {
            let mut out = rules::problems(bp, &schema).await;
            out.extend(operations::problems(bp, &schema).await);
            out
        }
        Err(e) => vec![Diagnostic::new(
            "schema.graphql",
            1,
            1,
            format!("the INTERNAL view's schema cannot be built: {e}"),
        )],
    }
}

/// Each binding of a compiled deployment against its source (`sources` in connector
/// order, as the engine holds them).
pub async fn verify(bp: &Arc<Blueprint>, sources: &[Arc<Source>], live_http: bool) -> Report {
    let mut probed = shape::probe(bp, sources, live_http).await;
    let unreachable: Vec<Diagnostic> = probed
        .unreachable
        .iter()
        .filter_map(|u| {
            let c = bp.connectors.get(u.connector)?;
            Some(
                Diagnostic::new(
                    &c.file,
                    1,
                    1,
                    format!(
                        "cannot reach {} source '{}': {}; its bindings were not checked",
                        c.kind.name(),
                        c.name,
                        u.reason
                    ),
                )
                .hint(match c.kind.name() {
                    "http" | "graphql" => "check base_url and the network; run `simpul check --offline` to check without it",
                    "file" => "check the path and the file",
                    _ => "check the url (host, port, database name, user); run `simpul check --offline` to check without it",
                }),
            )
        })
        .collect();
    let mut fit = fit::Fit::new(bp);
    fit.bindings(&probed);
    fit.values(&mut probed).await;
    let mut problems = fit.problems;
    problems.extend(queries(bp).await);
    let (remote_problems, remote_unreachable) = remote::problems(bp, live_http).await;
    problems.extend(remote_problems);
    let unreachable: Vec<Diagnostic> = unreachable.into_iter().chain(remote_unreachable).collect();
    for conn in probed.conns.into_iter().flatten() {
        conn.close().await;
    }
    Report {
        problems: sorted(problems),
        unreachable: sorted(unreachable),
    }
}
