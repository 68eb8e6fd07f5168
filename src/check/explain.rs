//! `simpul check --explain Type.field`: how one field is resolved, in words: the view that
//! sees it, its connector, statement or request, parameters, batch key, cache policy, and
//! the columns its rows carry when the source can be asked.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::fit::possible_types;
use super::shape::{self, Seen, field_of};
use crate::access::Access;
use crate::blueprint::template::{Scope, Segment, Template};
use crate::blueprint::{
    Binding, Blueprint, FieldDef, FieldPlan, Lookup, Operation, TypeDefKind, named,
};
use crate::connectors::Source;

/// The explanation of `target` ("Type.field") in the deployment at `dir`.
pub async fn explain(dir: &Path, target: &str) -> Result<String, String> {
    let bp = crate::compile::compile_dir(dir).map_err(|diags| {
        format!(
            "{} problem(s) in the deployment; run `simpul check` first",
            diags.len()
        )
    })?;
    let (ty, field) = find(&bp, target)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{ty}.{}: {}  (schema.graphql:{}:{})",
        field.name, field.ty, field.at.0, field.at.1
    );
    let type_access = bp
        .types
        .iter()
        .find(|t| t.name == ty)
        .map_or(Access::Public, |t| t.access.clone());
    let _ = writeln!(out, "  seen by: {}", seen_by(&type_access, &field.access));
    match &field.plan {
        FieldPlan::Bound(i) => {
            let b = bp.bindings.get(*i).ok_or("unknown binding")?;
            bound(&mut out, &bp, b);
            let mut sources = Vec::new();
            for c in &bp.connectors {
                sources.push(Arc::new(Source::build(c.clone(), dir).await?));
            }
            let probed = shape::probe(&bp, &sources, false).await;
            match probed.seen.get(*i) {
                Some(Seen::Shape(s)) => {
                    let cols: Vec<String> = s
                        .columns
                        .iter()
                        .map(|c| format!("{} ({})", c.name, c.type_name))
                        .collect();
                    let _ = writeln!(out, "  rows carry: {}", cols.join(", "));
                }
                Some(Seen::Rejected(m)) => {
                    let _ = writeln!(
                        out,
                        "  rows carry: unknown, the source rejects the query: {m}"
                    );
                }
                _ => {
                    let reason = probed
                        .unreachable
                        .iter()
                        .find(|u| u.connector == b.connector)
                        .map_or("not known before a request", |u| u.reason.as_str());
                    let _ = writeln!(out, "  rows carry: {reason}");
                }
            }
            for conn in probed.conns.into_iter().flatten() {
                conn.close().await;
            }
            children(&mut out, &bp, named(&field.ty));
        }
        FieldPlan::Property(lookup) => {
            let producers: Vec<&str> = producers(&bp, ty);
            let from = if producers.is_empty() {
                "the parent object".to_string()
            } else {
                format!("the parent's rows (from {})", producers.join(", "))
            };
            let _ = writeln!(out, "  read from: {} of {from}", read_text(lookup));
        }
        FieldPlan::Const(v) => {
            let _ = writeln!(out, "  constant: {v} (@const)");
        }
        FieldPlan::Namespace => {
            let _ = writeln!(out, "  namespace: an empty object whose fields are bound");
        }
        FieldPlan::Sources => {
            let _ = writeln!(
                out,
                "  built in: every connector's health, read live, never cached"
            );
        }
        FieldPlan::Builtin(b) => {
            let _ = writeln!(
                out,
                "  built in ({b:?}): read live from the alerts' state store (rules/), never cached"
            );
        }
    }
    Ok(out)
}

fn find<'b>(bp: &'b Blueprint, target: &str) -> Result<(&'b str, &'b FieldDef), String> {
    let (ty, field) = target
        .split_once('.')
        .ok_or_else(|| format!("'{target}': name a field as Type.field"))?;
    let t = bp
        .types
        .iter()
        .find(|t| t.name == ty)
        .ok_or_else(|| format!("no type '{ty}' in schema.graphql"))?;
    let fields = match &t.kind {
        TypeDefKind::Object { fields, .. } | TypeDefKind::Interface { fields, .. } => fields,
        _ => return Err(format!("'{ty}' has no fields")),
    };
    let f = fields.iter().find(|f| f.name == field).ok_or_else(|| {
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        format!("{ty} has no field '{field}'; it has {}", names.join(", "))
    })?;
    Ok((t.name.as_str(), f))
}

fn seen_by(type_access: &Access, field: &Access) -> String {
    let strictest = match (type_access, field) {
        (Access::Restricted(o), _) | (_, Access::Restricted(o)) => Access::Restricted(o.clone()),
        (Access::Internal, _) | (_, Access::Internal) => Access::Internal,
        _ => Access::Public,
    };
    match strictest {
        Access::Public => "every caller (PUBLIC view and above)".into(),
        Access::Internal => {
            "staff tokens (INTERNAL and RESTRICTED views); left out of PUBLIC".into()
        }
        Access::Restricted(opd) => {
            format!("only staff of OPD '{opd}' (its RESTRICTED view); left out of every other view")
        }
    }
}

fn bound(out: &mut String, bp: &Blueprint, b: &Binding) {
    let Some(c) = bp.connectors.get(b.connector) else {
        return;
    };
    let _ = writeln!(
        out,
        "  connector: '{}' ({}, {}; {}), timeout {:?}, {} retries, at most {} calls at once",
        c.name,
        c.kind.name(),
        c.title,
        c.file,
        c.timeout,
        c.retries,
        c.max_concurrency
    );
    match &b.operation {
        Operation::Sql { query } => {
            let _ = writeln!(out, "  statement: {}", template_text(query));
        }
        Operation::Http(h) => {
            let _ = writeln!(out, "  request: {} {}", h.method, template_text(&h.path));
            for (name, t) in &h.query {
                let _ = writeln!(out, "    query {name} = {}", template_text(t));
            }
            for (name, _) in &h.headers {
                let _ = writeln!(out, "    header {name}");
            }
            if let Some(body) = &h.body {
                let _ = writeln!(out, "    body {}", template_text(body));
            }
            if !h.select.is_empty() {
                let _ = writeln!(out, "    rows at: {}", h.select.join("."));
            }
        }
        Operation::Graphql(g) => match &g.entity {
            Some(e) => {
                let _ = writeln!(
                    out,
                    "  remote: _entities of {} by {} -> {}",
                    e.typename,
                    e.key.join(" "),
                    g.field
                );
            }
            None => {
                let _ = writeln!(out, "  remote field: {}", g.field);
                for (name, t) in g.args.iter().flatten() {
                    let _ = writeln!(out, "    argument {name} = {}", template_text(t));
                }
            }
        },
    }
    let templates: Vec<&Template> = match &b.operation {
        Operation::Sql { query } => vec![query],
        Operation::Http(h) => std::iter::once(&h.path)
            .chain(h.query.iter().map(|(_, t)| t))
            .chain(h.headers.iter().map(|(_, t)| t))
            .chain(h.body.iter())
            .collect(),
        Operation::Graphql(g) => g.args.iter().flatten().map(|(_, t)| t).collect(),
    };
    let parents = field_of(bp, b.id)
        .map(|(owner, _)| producers(bp, owner).join(", "))
        .unwrap_or_default();
    for p in templates.iter().flat_map(|t| t.placeholders()) {
        let what = match p.scope {
            Scope::Args => format!("argument `{}`", p.path.join(".")),
            Scope::Outbox => format!("`{}` of the outbox row delivered", p.path.join(".")),
            Scope::View => "the caller's tier (PUBLIC, INTERNAL or RESTRICTED)".to_string(),
            Scope::Auth => format!(
                "claim `{}` of the caller's token (cached per caller)",
                p.path.join(".")
            ),
            Scope::Parent => format!(
                "column `{}` of the parent's rows{}",
                p.path.join("."),
                if parents.is_empty() {
                    String::new()
                } else {
                    format!(" (from {parents})")
                }
            ),
        };
        let bound_as = if matches!(b.operation, Operation::Sql { .. }) {
            "a bound parameter"
        } else if matches!(b.operation, Operation::Graphql(_)) {
            "a GraphQL literal"
        } else {
            "percent-encoded"
        };
        let _ = writeln!(out, "  {} <- {what}, {bound_as}", p.display());
    }
    match &b.batch {
        Some(batch) => {
            let _ = writeln!(
                out,
                "  batch: one call per level for all parents: {} receives every distinct parent value (at most {} per call); rows are handed back by their column `{}`",
                batch.parent.display(),
                batch.max_size,
                batch.key
            );
        }
        None => {
            let _ = writeln!(out, "  batch: none (one call per parent)");
        }
    }
    let cache = &b.cache;
    if cache.is_on() {
        let _ = writeln!(
            out,
            "  cache: fresh {}, then served stale while refreshing for {}, and on source errors for {}{}",
            human(cache.ttl),
            human(cache.stale_while_revalidate),
            human(cache.stale_if_error),
            if b.uses_auth { "; per caller" } else { "" }
        );
    } else {
        let _ = writeln!(
            out,
            "  cache: none{}",
            if b.shareable {
                ""
            } else {
                " (a call with side effects is never cached or shared)"
            }
        );
    }
}

/// How the fields of the rows' type read them.
fn children(out: &mut String, bp: &Blueprint, type_name: &str) {
    for t in possible_types(bp, type_name) {
        let TypeDefKind::Object { fields, .. } = &t.kind else {
            continue;
        };
        let _ = writeln!(out, "  fields of {} from each row:", t.name);
        for f in fields {
            let how = match &f.plan {
                FieldPlan::Property(l) => read_text(l),
                FieldPlan::Bound(i) => bp.bindings.get(*i).map_or(String::new(), |b| {
                    format!("its own call (`simpul check --explain {}`)", b.name)
                }),
                FieldPlan::Const(v) => format!("constant {v}"),
                FieldPlan::Namespace | FieldPlan::Sources | FieldPlan::Builtin(_) => {
                    "built in".into()
                }
            };
            let _ = writeln!(out, "    {}: {} <- {how}", f.name, f.ty);
        }
    }
}

fn read_text(l: &Lookup) -> String {
    match l {
        Lookup::Keys(keys) => {
            let names: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            format!("column {}", names.join(" or "))
        }
        Lookup::Path(path) => format!("path `{}` (@map)", path.join(".")),
        Lookup::Cursor(columns) => {
            format!("cursor of columns `{}` (@cursor)", columns.join("`, `"))
        }
    }
}

/// The bindings whose rows are objects of `type_name` (directly or as a member).
fn producers<'b>(bp: &'b Blueprint, type_name: &str) -> Vec<&'b str> {
    bp.bindings
        .iter()
        .filter(|b| {
            field_of(bp, b.id).is_some_and(|(_, f)| {
                let n = named(&f.ty);
                n == type_name || possible_types(bp, n).iter().any(|t| t.name == type_name)
            })
        })
        .map(|b| b.name.as_str())
        .collect()
}

fn template_text(t: &Template) -> String {
    t.segments
        .iter()
        .map(|s| match s {
            Segment::Text(t) => t.clone(),
            Segment::Var(p) => p.display(),
        })
        .collect()
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
