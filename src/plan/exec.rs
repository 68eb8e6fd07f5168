//! Running a plan: fetch level by level (one call per bound field per level), then write the
//! response bytes in one pass.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use async_graphql_parser::types::BaseType;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Kind, Plan, PlanField};
use crate::blueprint::Lookup;
use crate::error::{ErrorCode, SourceError};
use crate::resolve::node::{Group, Node, get_path};
use crate::resolve::request::RequestState;
use crate::resolve::value::{Out, OutKind, scalar};
use crate::resolve::{self, Engine};

type Rows = Result<(Arc<Group>, Arc<[usize]>), SourceError>;

/// What one field fetched for every node of its level.
enum Fetched {
    Nothing,
    Bound {
        per_node: Vec<Rows>,
        children: Option<Children>,
    },
    Nested(Children),
}

/// The child nodes of a level, flattened in parent order, and their fetched fields.
struct Children {
    /// `offsets[i]..offsets[i + 1]` are the children of node `i`.
    offsets: Vec<usize>,
    nodes: Vec<Node>,
    level: Vec<Fetched>,
}

/// Runs `plan`, appending its `data` to `out`; returns its errors.
pub async fn execute(
    engine: &Engine,
    plan: &Plan,
    state: &Arc<RequestState>,
    out: &mut Vec<u8>,
) -> Vec<Value> {
    let root = [Node::single(Value::Object(Default::default()))];
    let level = fetch_level(engine, state, &plan.root, &root, true).await;
    let mut errors = Vec::new();
    write_object(
        &plan.root,
        &level,
        &root[0],
        0,
        &mut Vec::new(),
        out,
        &mut errors,
    );
    errors
}

fn fetch_level<'a>(
    engine: &'a Engine,
    state: &'a Arc<RequestState>,
    fields: &'a [PlanField],
    nodes: &'a [Node],
    root: bool,
) -> BoxFuture<'a, Vec<Fetched>> {
    async move {
        let fetches = fields
            .iter()
            .map(|f| fetch_field(engine, state, f, nodes, root));
        futures::future::join_all(fetches).await
    }
    .boxed()
}

async fn fetch_field(
    engine: &Engine,
    state: &Arc<RequestState>,
    field: &PlanField,
    nodes: &[Node],
    root: bool,
) -> Fetched {
    match &field.kind {
        Kind::Bound {
            binding,
            args,
            out,
            children,
        } => {
            let per_node = bound_rows(engine, state, binding, args, nodes, root).await;
            let children = match children {
                Some(fields) => {
                    let list = out.is_list();
                    let mut offsets = Vec::with_capacity(nodes.len() + 1);
                    let mut child_nodes = Vec::new();
                    for rows in &per_node {
                        offsets.push(child_nodes.len());
                        if let Ok((group, idx)) = rows {
                            let take = if list { idx.len() } else { idx.len().min(1) };
                            child_nodes.extend(idx[..take].iter().map(|&i| Node {
                                group: group.clone(),
                                index: i,
                            }));
                        }
                    }
                    offsets.push(child_nodes.len());
                    let level = fetch_level(engine, state, fields, &child_nodes, false).await;
                    Some(Children {
                        offsets,
                        nodes: child_nodes,
                        level,
                    })
                }
                None => None,
            };
            Fetched::Bound { per_node, children }
        }
        Kind::Namespace { children } => {
            let child_nodes: Vec<Node> = nodes
                .iter()
                .map(|_| Node::single(Value::Object(Default::default())))
                .collect();
            let offsets = (0..=child_nodes.len()).collect();
            let level = fetch_level(engine, state, children, &child_nodes, root).await;
            Fetched::Nested(Children {
                offsets,
                nodes: child_nodes,
                level,
            })
        }
        Kind::Property {
            lookup,
            children: Some(fields),
            ..
        } => {
            let mut offsets = Vec::with_capacity(nodes.len() + 1);
            let mut child_nodes = Vec::new();
            for n in nodes {
                offsets.push(child_nodes.len());
                match read(lookup, n.row()) {
                    Some(Value::Array(items)) => {
                        let group =
                            Group::new(crate::resolve::node::GroupRows::Owned(items.clone()));
                        child_nodes.extend((0..items.len()).map(|i| Node {
                            group: group.clone(),
                            index: i,
                        }));
                    }
                    Some(v) if !v.is_null() => child_nodes.push(Node::single(v.clone())),
                    _ => {}
                }
            }
            offsets.push(child_nodes.len());
            let level = fetch_level(engine, state, fields, &child_nodes, false).await;
            Fetched::Nested(Children {
                offsets,
                nodes: child_nodes,
                level,
            })
        }
        _ => Fetched::Nothing,
    }
}

/// The rows of a bound field for every node: one batched call per parent group.
async fn bound_rows(
    engine: &Engine,
    state: &Arc<RequestState>,
    binding: &crate::blueprint::Binding,
    args: &Value,
    nodes: &[Node],
    root: bool,
) -> Vec<Rows> {
    match (&binding.batch, root) {
        (Some(batch), false) => {
            state.note_binding(binding.cache.ttl, binding.shareable && !binding.uses_auth);
            let mut indexes: HashMap<u64, Result<Arc<resolve::request::BatchIndex>, SourceError>> =
                HashMap::new();
            for n in nodes {
                if let std::collections::hash_map::Entry::Vacant(slot) = indexes.entry(n.group.id) {
                    slot.insert(resolve::batched(engine, binding, state, args, n).await);
                }
            }
            nodes
                .iter()
                .map(|n| match indexes.get(&n.group.id) {
                    Some(Ok(index)) => Ok(index.rows_of(batch, n)),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err(SourceError::new(
                        ErrorCode::Internal,
                        &engine.sources[binding.connector].name,
                        "batch missing",
                    )),
                })
                .collect()
        }
        _ => {
            futures::future::join_all(
                nodes
                    .iter()
                    .map(|n| resolve::rows(engine, binding, state, args, (!root).then_some(n))),
            )
            .await
        }
    }
}

fn read<'v>(lookup: &Lookup, row: &'v Value) -> Option<&'v Value> {
    match lookup {
        Lookup::Keys(keys) => keys.iter().find_map(|k| row.get(k)),
        Lookup::Path(p) => get_path(row, p),
    }
}

enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

fn error(path: &[Seg], message: String, code: ErrorCode, connector: Option<&str>) -> Value {
    let path: Vec<Value> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => Value::from(*k),
            Seg::Index(i) => Value::from(*i),
        })
        .collect();
    let mut ext = json!({ "code": code.as_str() });
    if let Some(c) = connector {
        ext["connector"] = json!(c);
    }
    json!({ "message": message, "path": path, "extensions": ext })
}

fn write_object<'p>(
    fields: &'p [PlanField],
    level: &[Fetched],
    node: &Node,
    pos: usize,
    path: &mut Vec<Seg<'p>>,
    out: &mut Vec<u8>,
    errors: &mut Vec<Value>,
) {
    out.push(b'{');
    for (i, (f, fetched)) in fields.iter().zip(level).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&f.key);
        path.push(Seg::Key(&f.name));
        match (&f.kind, fetched) {
            (Kind::Typename(t), _) => out.extend_from_slice(t),
            (Kind::Const { value, out: o }, _) => write_value(o, &o.ty, value, out),
            (
                Kind::Property {
                    lookup,
                    out: o,
                    suppress,
                    children: None,
                },
                _,
            ) => {
                let v = read(lookup, node.row());
                let v = match (v, suppress) {
                    (Some(v), Some(below))
                        if v.as_f64().is_some_and(|n| n >= 1.0 && n < *below as f64) =>
                    {
                        None
                    }
                    (v, _) => v,
                };
                match v {
                    Some(v) if o.invalid_enum(v) => {
                        out.extend_from_slice(b"null");
                        errors.push(error(
                            path,
                            format!("internal: invalid item for enum at {}", f.name),
                            ErrorCode::Internal,
                            None,
                        ));
                    }
                    Some(v) => write_value(o, &o.ty, v, out),
                    None => out.extend_from_slice(b"null"),
                }
            }
            (Kind::Property { out: o, .. }, Fetched::Nested(ch)) => {
                write_children(o.is_list(), f, ch, pos, path, out, errors)
            }
            (Kind::Namespace { .. }, Fetched::Nested(ch)) => {
                write_children(false, f, ch, pos, path, out, errors)
            }
            (Kind::Bound { out: o, .. }, Fetched::Bound { per_node, children }) => {
                match (per_node.get(pos), children) {
                    (Some(Err(e)), _) => {
                        out.extend_from_slice(b"null");
                        let message = e.to_graphql().message;
                        errors.push(error(path, message, e.code, Some(&e.connector)));
                    }
                    (Some(Ok(_)), Some(ch)) => {
                        write_children(o.is_list(), f, ch, pos, path, out, errors)
                    }
                    (Some(Ok((group, idx))), None) => write_scalar_rows(o, group, idx, out),
                    (None, _) => out.extend_from_slice(b"null"),
                }
            }
            (Kind::Forbidden, _) => {
                out.extend_from_slice(b"null");
                errors.push(error(
                    path,
                    "this field is not public".into(),
                    ErrorCode::Forbidden,
                    None,
                ));
            }
            _ => out.extend_from_slice(b"null"),
        }
        path.pop();
    }
    out.push(b'}');
}

fn write_children<'p>(
    list: bool,
    f: &'p PlanField,
    ch: &Children,
    pos: usize,
    path: &mut Vec<Seg<'p>>,
    out: &mut Vec<u8>,
    errors: &mut Vec<Value>,
) {
    let fields = match &f.kind {
        Kind::Bound {
            children: Some(c), ..
        }
        | Kind::Property {
            children: Some(c), ..
        }
        | Kind::Namespace { children: c } => c,
        _ => {
            out.extend_from_slice(b"null");
            return;
        }
    };
    let (Some(&start), Some(&end)) = (ch.offsets.get(pos), ch.offsets.get(pos + 1)) else {
        out.extend_from_slice(b"null");
        return;
    };
    if list {
        out.push(b'[');
        for (k, child) in (start..end).enumerate() {
            if k > 0 {
                out.push(b',');
            }
            path.push(Seg::Index(k));
            write_object(
                fields,
                &ch.level,
                &ch.nodes[child],
                child,
                path,
                out,
                errors,
            );
            path.pop();
        }
        out.push(b']');
    } else if start < end {
        write_object(
            fields,
            &ch.level,
            &ch.nodes[start],
            start,
            path,
            out,
            errors,
        );
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A scalar (or list of scalars) bound field: the single column of each row.
fn write_scalar_rows(o: &Out, group: &Group, idx: &[usize], out: &mut Vec<u8>) {
    let rows = group.rows();
    let cell = |row: &'_ Value| -> Value {
        crate::resolve::value::cell(o, row)
            .cloned()
            .unwrap_or(Value::Null)
    };
    if o.is_list() {
        let inner = match &o.ty.base {
            BaseType::List(inner) => inner.as_ref(),
            BaseType::Named(_) => &o.ty,
        };
        out.push(b'[');
        for (k, &i) in idx.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            match rows.get(i) {
                Some(r) => write_value(o, inner, &cell(r), out),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b']');
    } else {
        match idx.first().and_then(|&i| rows.get(i)) {
            Some(r) => write_value(o, &o.ty, &cell(r), out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// A leaf value (or a list of them) coerced to the declared type.
fn write_value(o: &Out, ty: &async_graphql_parser::types::Type, v: &Value, out: &mut Vec<u8>) {
    match (&ty.base, v) {
        (_, Value::Null) => out.extend_from_slice(b"null"),
        (BaseType::List(inner), Value::Array(items)) => {
            out.push(b'[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_value(o, inner, item, out);
            }
            out.push(b']');
        }
        (BaseType::List(inner), single) => {
            out.push(b'[');
            write_value(o, inner, single, out);
            out.push(b']');
        }
        (BaseType::Named(_), v) if write_plain(&o.kind, v, out) => {}
        (BaseType::Named(_), v) => match scalar(&o.kind, v) {
            Some(g) => {
                if serde_json::to_writer(&mut *out, &g).is_err() {
                    let _ = out.write_all(b"null");
                }
            }
            None => out.extend_from_slice(b"null"),
        },
    }
}

/// Writes a value that needs no conversion for its declared type without building a
/// GraphQL value first (the common case: a string column for a String field, an integer
/// for an Int). Returns false when the value needs `scalar`'s coercion.
fn write_plain(kind: &OutKind, v: &Value, out: &mut Vec<u8>) -> bool {
    match (kind, v) {
        (OutKind::String | OutKind::Id | OutKind::Enum, Value::String(s)) => {
            serde_json::to_writer(&mut *out, s.as_str()).is_ok()
        }
        (OutKind::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let mut buf = itoa::Buffer::new();
            match n.as_i64() {
                Some(i) => out.extend_from_slice(buf.format(i).as_bytes()),
                None => return false,
            }
            true
        }
        (OutKind::Float, Value::Number(n)) => serde_json::to_writer(&mut *out, n).is_ok(),
        (OutKind::Boolean, Value::Bool(b)) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            true
        }
        _ => false,
    }
}
