//! A `@graphql` field for every node of a level, in one request to the remote service:
//! each distinct call an alias (`_0: districtStats(code: "35.03.01") { … }`), or, for an
//! entity field, one `_entities` call with every parent's representation. The selection
//! under the field is forwarded (fragments already applied by the plan, `__typename` and
//! inline fragments where the type is abstract), variables as the values they hold, and
//! the remote's errors come back at their paths under the field.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::bound::{Bound, NestedError};
use super::exec::{Cx, Fetched, Level, finish_bound, paging, with_variables};
use super::{Kind, PlanField, Selection};
use crate::blueprint::{Binding, GraphqlOperation, Lookup, Operation};
use crate::connectors::Call;
use crate::connectors::http::HttpCall;
use crate::error::{ErrorCode, SourceError};
use crate::resolve;
use crate::resolve::render::{self, Values};
use crate::resolve::request::RequestState;

/// The selection forwarded under a `@graphql` field: `{ … }`, empty for a scalar.
pub(super) fn forwarded(children: Option<&Selection>) -> String {
    let mut out = String::new();
    if let Some(sel) = children {
        write_selection(sel, &mut out);
    }
    out
}

fn write_selection(sel: &Selection, out: &mut String) {
    out.push_str(" {");
    match &sel.abstract_ {
        Some(a) => {
            out.push_str(" __typename");
            for (i, ty) in a.types.iter().enumerate() {
                let mut inner = String::new();
                write_fields(sel, Some(i as u16), &mut inner);
                if !inner.is_empty() {
                    let _ = write!(out, " ... on {ty} {{{inner} }}");
                }
            }
        }
        None => {
            let mut inner = String::new();
            write_fields(sel, None, &mut inner);
            if inner.is_empty() {
                inner.push_str(" __typename");
            }
            out.push_str(&inner);
        }
    }
    out.push_str(" }");
}

/// The remote fields that the plan's fields (those of type position `only`) read.
fn write_fields(sel: &Selection, only: Option<u16>, out: &mut String) {
    let mut seen: Vec<String> = Vec::new();
    let mut add = |name: &str, children: Option<&Selection>, out: &mut String| {
        if seen.iter().any(|s| s == name) {
            return;
        }
        seen.push(name.to_string());
        let _ = write!(out, " {name}");
        if let Some(c) = children {
            write_selection(c, out);
        }
    };
    for f in sel
        .fields
        .iter()
        .filter(|f| only.is_none() || f.only == only)
    {
        match &f.kind {
            Kind::Property {
                lookup, children, ..
            } => match lookup {
                Lookup::Keys(keys) => {
                    if let Some(k) = keys.first() {
                        add(k, children.as_ref(), out);
                    }
                }
                Lookup::Path(path) => {
                    if let Some(k) = path.first() {
                        add(k, None, out);
                    }
                }
                Lookup::Cursor(columns) => {
                    for c in columns {
                        add(c, None, out);
                    }
                }
            },
            // A field bound elsewhere reads the remote row's columns its templates name.
            Kind::Bound { binding, .. } => {
                for (p, _) in &binding.places.parents {
                    if let Some(k) = p.path.first() {
                        add(k, None, out);
                    }
                }
                if let crate::blueprint::Operation::Graphql(GraphqlOperation {
                    entity: Some(e),
                    ..
                }) = &binding.operation
                {
                    for k in &e.key {
                        add(k, None, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A JSON value written as a GraphQL literal (strings escaped as JSON strings are).
fn literal(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                literal(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if crate::blueprint::is_name(k) {
                    out.push_str(k);
                    out.push_str(": ");
                    literal(item, out);
                }
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What one parent asks the remote: the arguments of its call, or its representation.
fn asks(
    op: &GraphqlOperation,
    args: &Value,
    state: &RequestState,
    parent: Option<&Value>,
) -> Option<Value> {
    if let Some(e) = &op.entity {
        let row = parent?;
        let mut rep = Map::new();
        rep.insert("__typename".into(), Value::String(e.typename.clone()));
        for k in &e.key {
            let v = row.get(k).filter(|v| !v.is_null())?;
            rep.insert(k.clone(), v.clone());
        }
        return Some(Value::Object(rep));
    }
    Some(match &op.args {
        None => args.clone(),
        Some(templates) => {
            let values = Values {
                args,
                parent,
                auth: &state.auth,
                outbox: None,
                view: state.view,
            };
            let mut m = Map::new();
            for (name, t) in templates {
                m.insert(name.clone(), render::value(t, &values));
            }
            Value::Object(m)
        }
    })
}

/// Distinct values, each kept once, by position.
#[derive(Default)]
struct Distinct {
    values: Vec<Value>,
    index: HashMap<String, usize>,
}

impl Distinct {
    fn add(&mut self, v: Value) -> usize {
        let values = &mut self.values;
        *self.index.entry(v.to_string()).or_insert_with(|| {
            values.push(v);
            values.len() - 1
        })
    }
}

/// One `@graphql` field of a level, as asked in its connector's request.
struct Asked<'a> {
    field: &'a PlanField,
    binding: &'a Arc<Binding>,
    op: &'a GraphqlOperation,
    forward: &'a str,
    args: std::borrow::Cow<'a, Value>,
    paging: Option<(
        &'a crate::blueprint::page::Page,
        crate::blueprint::page::Window,
    )>,
    /// Per node: its call among `calls` (or its representation in the entity group).
    per_node: Vec<Option<usize>>,
    calls: Distinct,
    /// The entity group (by remote `__typename`) its representations are in.
    group: Option<usize>,
}

/// The document asking every field of `asked` (one connector), and its variables.
fn request(asked: &[Asked], groups: &[(String, Distinct)]) -> String {
    let mutation = asked.iter().any(|a| a.op.mutation);
    let mut q = String::new();
    let vars: Vec<String> = (0..groups.len())
        .map(|k| format!("$r{k}: [_Any!]!"))
        .collect();
    q.push_str(if mutation { "mutation" } else { "query" });
    if !vars.is_empty() {
        let _ = write!(q, "({})", vars.join(", "));
    }
    q.push_str(" {");
    for (k, (typename, _)) in groups.iter().enumerate() {
        let _ = write!(
            q,
            " _e{k}: _entities(representations: $r{k}) {{ ... on {typename} {{"
        );
        for (j, a) in asked.iter().enumerate() {
            if a.group == Some(k) {
                let _ = write!(q, " _{j}: {}{}", a.op.field, a.forward);
            }
        }
        q.push_str(" } }");
    }
    for (j, a) in asked.iter().enumerate().filter(|(_, a)| a.group.is_none()) {
        for (i, args) in a.calls.values.iter().enumerate() {
            let _ = write!(q, " _{j}_{i}: {}", a.op.field);
            if let Some(m) = args.as_object().filter(|m| !m.is_empty()) {
                q.push('(');
                for (n, (k, v)) in m.iter().enumerate() {
                    if n > 0 {
                        q.push_str(", ");
                    }
                    q.push_str(k);
                    q.push_str(": ");
                    literal(v, &mut q);
                }
                q.push(')');
            }
            q.push_str(a.forward);
        }
    }
    q.push_str(" }");
    let variables: Map<String, Value> = groups
        .iter()
        .enumerate()
        .map(|(k, (_, reps))| (format!("r{k}"), Value::Array(reps.values.clone())))
        .collect();
    json!({ "query": q, "variables": variables }).to_string()
}

/// Where an error's path points: field `j`'s call (or representation) `i`, the rest of
/// the path below the field; `None` for the field: every field of an entity that failed.
type Target = (Option<usize>, usize, Vec<Value>);

fn target(path: &[Value], asked: &[Asked]) -> Vec<Target> {
    let Some(Value::String(first)) = path.first() else {
        return Vec::new();
    };
    let rest = path.get(1..).unwrap_or_default();
    if let Some(k) = first
        .strip_prefix("_e")
        .and_then(|k| k.parse::<usize>().ok())
    {
        let Some(n) = rest.first().and_then(Value::as_u64).map(|n| n as usize) else {
            return Vec::new();
        };
        return match rest.get(1) {
            Some(Value::String(f)) => match f.strip_prefix('_').and_then(|j| j.parse().ok()) {
                Some(j) => vec![(Some(j), n, rest.get(2..).unwrap_or_default().to_vec())],
                None => Vec::new(),
            },
            _ => (0..asked.len())
                .filter(|&j| asked.get(j).is_some_and(|a| a.group == Some(k)))
                .map(|j| (Some(j), n, Vec::new()))
                .collect(),
        };
    }
    let mut parts = first.trim_start_matches('_').splitn(2, '_');
    match (
        parts.next().and_then(|j| j.parse().ok()),
        parts.next().and_then(|i| i.parse().ok()),
    ) {
        (Some(j), Some(i)) => vec![(Some(j), i, rest.to_vec())],
        _ => Vec::new(),
    }
}

/// Fetches the `@graphql` fields `fields` of one level: one request per connector (each
/// distinct call an alias, each entity type one `_entities`), then their children.
pub(super) async fn fetch_remote(
    cx: &Cx<'_>,
    fields: &[&PlanField],
    level: &Level,
    types: Option<&[Option<u16>]>,
    root: bool,
) -> Vec<Fetched> {
    let mut out: Vec<Option<Fetched>> = fields.iter().map(|_| None).collect();
    let mut asked: Vec<(usize, Asked)> = Vec::new();
    for (pos, f) in fields.iter().enumerate() {
        let Kind::Bound {
            binding,
            args,
            var_args,
            page,
            forward: Some(forward),
            ..
        } = &f.kind
        else {
            continue;
        };
        let Operation::Graphql(op) = &binding.operation else {
            continue;
        };
        let args = with_variables(cx, args, var_args);
        let paging = match paging(page, &args) {
            Ok(p) => p,
            Err(message) => {
                if let Some(slot) = out.get_mut(pos) {
                    *slot = Some(Fetched::Failed(ErrorCode::BadRequest, message));
                }
                continue;
            }
        };
        cx.state
            .note_binding(binding.cache.ttl, binding.shareable && !binding.uses_auth);
        asked.push((
            pos,
            Asked {
                field: f,
                binding,
                op,
                forward,
                args,
                paging,
                per_node: Vec::new(),
                calls: Distinct::default(),
                group: None,
            },
        ));
    }
    // One request per connector and cache policy.
    let mut requests: Vec<Vec<(usize, Asked)>> = Vec::new();
    for (pos, a) in asked {
        let same = |b: &Asked| {
            b.binding.connector == a.binding.connector
                && b.binding.cache == a.binding.cache
                && b.binding.uses_auth == a.binding.uses_auth
        };
        match requests
            .iter_mut()
            .find(|r| r.first().is_some_and(|(_, b)| same(b)))
        {
            Some(r) => r.push((pos, a)),
            None => requests.push(vec![(pos, a)]),
        }
    }
    let answered = futures::future::join_all(
        requests
            .into_iter()
            .map(|r| one_request(cx, r, level, types, root)),
    )
    .await;
    for (pos, fetched) in answered.into_iter().flatten() {
        if let Some(slot) = out.get_mut(pos) {
            *slot = Some(fetched);
        }
    }
    out.into_iter()
        .map(|f| f.unwrap_or(Fetched::Nothing))
        .collect()
}

async fn one_request(
    cx: &Cx<'_>,
    request_fields: Vec<(usize, Asked<'_>)>,
    level: &Level,
    types: Option<&[Option<u16>]>,
    root: bool,
) -> Vec<(usize, Fetched)> {
    let (positions, mut asked): (Vec<usize>, Vec<Asked>) = request_fields.into_iter().unzip();
    let mut groups: Vec<(String, Distinct)> = Vec::new();
    for a in &mut asked {
        if let Some(e) = &a.op.entity {
            a.group = Some(match groups.iter().position(|(t, _)| *t == e.typename) {
                Some(k) => k,
                None => {
                    groups.push((e.typename.clone(), Distinct::default()));
                    groups.len() - 1
                }
            });
        }
        a.per_node = level
            .nodes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                if !super::exec::applies(a.field, types, i) {
                    return None;
                }
                let parent = (!root).then(|| level.row(n));
                let ask = asks(a.op, &a.args, cx.state, parent)?;
                Some(match a.group.and_then(|k| groups.get_mut(k)) {
                    Some((_, reps)) => reps.add(ask),
                    None => a.calls.add(ask),
                })
            })
            .collect();
    }
    let Some(first) = asked.first() else {
        return Vec::new();
    };
    let engine = cx.engine;
    let name = engine.source_name(first.binding);
    // Per field, per call: its value or its failure; and errors inside values.
    let mut values: Vec<Vec<Result<Value, SourceError>>> = asked
        .iter()
        .map(|a| {
            let n = match a.group.and_then(|k| groups.get(k)) {
                Some((_, reps)) => reps.values.len(),
                None => a.calls.values.len(),
            };
            vec![Ok(Value::Null); n]
        })
        .collect();
    let mut nested: Vec<(usize, usize, Vec<Value>)> = Vec::new();
    // Entities (group, representation) the remote nulled with an error.
    let mut failed: Vec<(usize, usize, String)> = Vec::new();
    let asks_anything = values.iter().any(|v| !v.is_empty());
    if asks_anything {
        let call = Call::Http(HttpCall {
            method: reqwest::Method::POST,
            target: String::new(),
            headers: Vec::new(),
            body: Some(request(&asked, &groups)),
            select: Arc::from(Vec::new()),
        });
        match resolve::fetch_remote(engine, first.binding, cx.state, call).await {
            Err(e) => {
                for v in values.iter_mut().flatten() {
                    *v = Err(e.clone());
                }
            }
            Ok(group) => {
                let response = group.rows().first().cloned().unwrap_or(Value::Null);
                let data = response.get("data").cloned().unwrap_or(Value::Null);
                let errors = response
                    .get("errors")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for (j, a) in asked.iter().enumerate() {
                    let Some(vs) = values.get_mut(j) else {
                        continue;
                    };
                    for (i, v) in vs.iter_mut().enumerate() {
                        let found = match a.group {
                            Some(k) => data
                                .get(format!("_e{k}"))
                                .and_then(|e| e.get(i))
                                .and_then(|entity| entity.get(format!("_{j}"))),
                            None => data.get(format!("_{j}_{i}")),
                        };
                        *v = Ok(found.cloned().unwrap_or(Value::Null));
                    }
                }
                if data.is_null() {
                    let detail = errors
                        .first()
                        .and_then(|e| e.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("no data");
                    let e = SourceError::new(ErrorCode::SourceError, &name, detail);
                    for v in values.iter_mut().flatten() {
                        *v = Err(e.clone());
                    }
                }
                for e in &errors {
                    let message = e.get("message").and_then(Value::as_str).unwrap_or("error");
                    let path = e
                        .get("path")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    tracing::debug!(connector = %name, message, path = ?path, "remote GraphQL error");
                    for (j, i, rest) in target(path, &asked) {
                        let Some(j) = j else { continue };
                        // An entity nulled by an error: none of its fields has a value.
                        if let Some(k) = asked.get(j).and_then(|a| a.group)
                            && data
                                .get(format!("_e{k}"))
                                .and_then(|e| e.get(i))
                                .is_none_or(Value::is_null)
                        {
                            failed.push((k, i, message.to_string()));
                        }
                        let Some(v) = values.get_mut(j).and_then(|vs| vs.get_mut(i)) else {
                            continue;
                        };
                        match v {
                            Ok(Value::Null) => {
                                *v = Err(SourceError::new(ErrorCode::SourceError, &name, message))
                            }
                            Ok(_) if !rest.is_empty() => nested.push((j, i, rest)),
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    for (k, i, message) in failed {
        for (j, a) in asked.iter().enumerate() {
            if a.group == Some(k)
                && let Some(v @ Ok(Value::Null)) = values.get_mut(j).and_then(|vs| vs.get_mut(i))
            {
                *v = Err(SourceError::new(ErrorCode::SourceError, &name, &message));
            }
        }
    }
    let mut out = Vec::with_capacity(asked.len());
    let finishing = asked.into_iter().enumerate().map(|(j, a)| {
        let list = matches!(&a.field.kind, Kind::Bound { out, .. } if out.is_list());
        let vs = values.get(j).map(Vec::as_slice).unwrap_or_default();
        let mut errors_below = Vec::new();
        let per_node = a
            .per_node
            .iter()
            .enumerate()
            .map(|(node, c)| {
                let c = (*c)?;
                for (_, _, path) in nested.iter().filter(|(fj, i, _)| *fj == j && *i == c) {
                    errors_below.push(NestedError {
                        node: node as u32,
                        path: path.clone(),
                    });
                }
                Some(match vs.get(c) {
                    Some(Ok(v)) => Ok(rows_of(v, list)),
                    Some(Err(e)) => Err(e.clone()),
                    None => Ok(Vec::new()),
                })
            })
            .collect();
        let bound = Bound::owned(per_node, errors_below, name.clone());
        async move {
            let Kind::Bound { out, children, .. } = &a.field.kind else {
                return Fetched::Nothing;
            };
            finish_bound(cx, out, children.as_ref(), &a.args, a.paging, bound).await
        }
    });
    for (pos, f) in positions
        .into_iter()
        .zip(futures::future::join_all(finishing).await)
    {
        out.push((pos, f));
    }
    out
}

/// The rows of a field's value: a list's items, an object, nothing for null.
fn rows_of(v: &Value, list: bool) -> Vec<Value> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) if list => items.clone(),
        other => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_graphql() {
        let mut s = String::new();
        literal(
            &json!({"code": "35.03\"01", "n": [1, 2.5, null, true]}),
            &mut s,
        );
        assert_eq!(s, r#"{code: "35.03\"01", n: [1, 2.5, null, true]}"#);
    }

    #[test]
    fn error_paths_name_their_field_and_call() {
        assert_eq!(
            target(&[json!("_1_12"), json!("poor")], &[]),
            vec![(Some(1), 12, vec![json!("poor")])]
        );
        assert_eq!(
            target(&[json!("_e0"), json!(3), json!("_2"), json!("x")], &[]),
            vec![(Some(2), 3, vec![json!("x")])]
        );
        assert!(target(&[json!("other")], &[]).is_empty());
    }
}
