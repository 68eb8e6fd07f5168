//! `Query._entities(representations:)` of a federation subgraph: representations in,
//! entities out in the same order (null for a key nothing has). Each entity type is found
//! through its `@lookup` Query field: one call for a list lookup (rows matched by key),
//! or one call per distinct representation for a lookup by key arguments, all at once.

use serde_json::{Map, Value};

use super::exec::Cx;
use crate::blueprint::{EntityLookup, TypeDefKind};
use crate::error::ErrorCode;
use crate::resolve;
use crate::resolve::node::key_string;

type Refusal = (ErrorCode, String);

/// The entity rows for `args.representations`, each with its `__typename`.
pub(super) async fn entities(cx: &Cx<'_>, args: &Value) -> Result<Vec<Value>, Refusal> {
    let reps = args
        .get("representations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut by_type: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, rep) in reps.iter().enumerate() {
        let Some(t) = rep.get("__typename").and_then(Value::as_str) else {
            return Err((
                ErrorCode::BadRequest,
                format!("representations[{i}] has no __typename"),
            ));
        };
        match by_type.iter_mut().find(|(n, _)| *n == t) {
            Some((_, idx)) => idx.push(i),
            None => by_type.push((t, vec![i])),
        }
    }
    let mut out = vec![Value::Null; reps.len()];
    let found = futures::future::join_all(
        by_type
            .iter()
            .map(|(typename, idx)| of_type(cx, typename, idx, reps)),
    )
    .await;
    for r in found {
        for (i, row) in r? {
            if let Some(slot) = out.get_mut(i) {
                *slot = row;
            }
        }
    }
    Ok(out)
}

/// The lookup of `typename`: its own, or that of an interface it implements.
fn lookup_of<'a>(cx: &'a Cx<'_>, typename: &str) -> Option<&'a EntityLookup> {
    let bp = &cx.engine.blueprint;
    let ty = bp.types.iter().find(|t| t.name == typename)?;
    if !cx.view.reads(&ty.access) {
        return None;
    }
    bp.entities
        .iter()
        .find(|l| l.typename == typename)
        .or_else(|| match &ty.kind {
            TypeDefKind::Object { implements, .. } => bp
                .entities
                .iter()
                .find(|l| implements.contains(&l.typename)),
            _ => None,
        })
}

/// The values of `key`'s fields in `row`, when it has them all.
fn key_of(key: &[String], row: &Value) -> Option<Vec<String>> {
    if key.is_empty() {
        return None;
    }
    key.iter()
        .map(|k| row.get(k).filter(|v| !v.is_null()).and_then(key_string))
        .collect()
}

/// Whether `row` has the key values of `rep` for one of the lookup's keys.
fn matches(lookup: &EntityLookup, rep: &Value, row: &Value) -> bool {
    lookup
        .key
        .iter()
        .any(|key| key_of(key, rep).is_some_and(|k| key_of(key, row) == Some(k)))
}

/// The entity of each representation `idx` of `typename`, by position.
async fn of_type(
    cx: &Cx<'_>,
    typename: &str,
    idx: &[usize],
    reps: &[Value],
) -> Result<Vec<(usize, Value)>, Refusal> {
    let Some(lookup) = lookup_of(cx, typename) else {
        return Err((
            ErrorCode::BadRequest,
            format!("{typename} is not an entity of this subgraph"),
        ));
    };
    let failed = |e: crate::error::SourceError| (e.code, e.code.public_message(&e.connector));
    // The row, named: of the type asked for, or of one implementing the interface asked
    // for; an entity of another type is none of this representation's.
    let object = cx
        .engine
        .blueprint
        .types
        .iter()
        .any(|t| t.name == typename && matches!(t.kind, TypeDefKind::Object { .. }));
    let named = |row: &Value| {
        let mut row = row.clone();
        let Value::Object(m) = &mut row else {
            return None;
        };
        match m.get("__typename").and_then(Value::as_str) {
            Some(t) if object && t != typename => return None,
            Some(_) => {}
            None => {
                m.insert("__typename".into(), Value::String(typename.to_string()));
            }
        }
        Some(row)
    };
    let no_args = Value::Object(Map::new());
    if lookup.list {
        let group = resolve::unbatched(cx.engine, &lookup.binding, cx.state, &no_args, None)
            .await
            .map_err(failed)?;
        let rows = group.rows();
        // Each key's values of every row, looked up once per representation.
        let index: Vec<std::collections::HashMap<Vec<String>, usize>> = lookup
            .key
            .iter()
            .map(|key| {
                let mut by = std::collections::HashMap::new();
                for (n, row) in rows.iter().enumerate() {
                    if let Some(k) = key_of(key, row) {
                        by.entry(k).or_insert(n);
                    }
                }
                by
            })
            .collect();
        return Ok(idx
            .iter()
            .filter_map(|&i| {
                let rep = reps.get(i)?;
                let n = lookup
                    .key
                    .iter()
                    .zip(&index)
                    .find_map(|(key, by)| by.get(&key_of(key, rep)?))?;
                Some((i, named(rows.get(*n)?)?))
            })
            .collect());
    }
    let calls = idx.iter().map(|&i| {
        let rep = reps.get(i).cloned().unwrap_or(Value::Null);
        let args: Map<String, Value> = lookup
            .args
            .iter()
            .filter_map(|a| Some((a.clone(), rep.get(a)?.clone())))
            .collect();
        async move {
            let r = resolve::unbatched(
                cx.engine,
                &lookup.binding,
                cx.state,
                &Value::Object(args),
                None,
            )
            .await;
            (i, rep, r)
        }
    });
    let mut out = Vec::with_capacity(idx.len());
    for (i, rep, r) in futures::future::join_all(calls).await {
        let group = r.map_err(failed)?;
        if let Some(row) = group
            .rows()
            .iter()
            .find(|row| matches(lookup, &rep, row))
            .and_then(named)
        {
            out.push((i, row));
        }
    }
    Ok(out)
}
