//! Running a plan: fetch level by level (one call per bound field per level), then write the
//! response bytes in one pass.

use std::io::Write;
use std::sync::Arc;

use async_graphql_parser::types::BaseType;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Kind, Plan, PlanField, Selection};
use crate::blueprint::Lookup;
use crate::connectors::derived::DerivedKey;
use crate::error::{ErrorCode, SourceError};
use crate::resolve::node::{Group, Node, get_path};
use crate::resolve::request::{ByKey, RequestState};
use crate::resolve::value::{Out, OutKind, scalar};
use crate::resolve::{self, Engine};

/// A parent value: row `index` of the answer in slot `slot` of its level.
#[derive(Clone, Copy)]
struct NodeRef {
    slot: u32,
    index: u32,
}

/// The parent values of one level: the answers they are rows of, and which rows. Nodes
/// name their answer by slot, so a level of a thousand rows costs no reference counting.
struct Level {
    groups: Vec<Arc<Group>>,
    nodes: Vec<NodeRef>,
}

impl Level {
    fn row(&self, n: NodeRef) -> &Value {
        self.groups
            .get(n.slot as usize)
            .and_then(|g| g.rows().get(n.index as usize))
            .unwrap_or(&Value::Null)
    }

    /// The node as the resolvers take it.
    fn node(&self, n: NodeRef) -> Option<Node> {
        Some(Node {
            group: self.groups.get(n.slot as usize)?.clone(),
            index: n.index as usize,
        })
    }

    /// A level of fresh values, one answer of its own each.
    fn push_owned(&mut self, rows: Vec<Value>) {
        let slot = self.groups.len() as u32;
        self.nodes
            .extend((0..rows.len() as u32).map(|index| NodeRef { slot, index }));
        self.groups
            .push(Group::new(crate::resolve::node::GroupRows::Owned(rows)));
    }
}

/// Which rows of which answer a bound field has for one parent.
#[derive(Clone, Copy)]
struct Pick {
    slot: u32,
    rows: Picked,
}

#[derive(Clone, Copy)]
enum Picked {
    /// Every row: the call was made for this parent alone.
    All,
    /// The rows of the parent's key in a batched answer's index (start, length).
    Keyed(u32, u32),
}

/// What a bound field fetched for every node of its level.
struct Bound {
    groups: Vec<Arc<Group>>,
    /// Per slot of a batched answer: its rows by key.
    indexes: Vec<Option<Arc<ByKey>>>,
    /// Per node: its rows, or the index of its error in `errors` (kept small: one entry
    /// per node of a long level).
    per_node: Vec<Result<Pick, u32>>,
    errors: Vec<SourceError>,
}

impl Bound {
    /// Keeps `e` (once per distinct failure, not per node) and returns its index.
    fn error(&mut self, e: SourceError) -> u32 {
        self.errors.push(e);
        self.errors.len() as u32 - 1
    }

    fn rows(&self, p: Pick) -> &[Value] {
        self.groups
            .get(p.slot as usize)
            .map(|g| g.rows())
            .unwrap_or_default()
    }

    /// The indexes of the picked rows.
    fn picked(&self, p: Pick) -> PickedRows<'_> {
        match p.rows {
            Picked::All => PickedRows::Range(0..self.rows(p).len()),
            Picked::Keyed(start, len) => PickedRows::Slice(
                self.indexes
                    .get(p.slot as usize)
                    .and_then(Option::as_ref)
                    .map(|ix| ix.slice((start, len)))
                    .unwrap_or_default()
                    .iter(),
            ),
        }
    }
}

/// An iterator over picked row indexes.
enum PickedRows<'a> {
    Range(std::ops::Range<usize>),
    Slice(std::slice::Iter<'a, usize>),
}

impl Iterator for PickedRows<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            PickedRows::Range(r) => r.next(),
            PickedRows::Slice(s) => s.next().copied(),
        }
    }
}

/// What one field fetched for every node of its level.
enum Fetched {
    Nothing,
    Bound {
        bound: Bound,
        children: Option<Children>,
    },
    Nested(Children),
}

/// The child nodes of a level, flattened in parent order, and their fetched fields.
struct Children {
    /// `offsets[i]..offsets[i + 1]` are the children of node `i`.
    offsets: Vec<usize>,
    level: Level,
    fetched: Vec<Fetched>,
    /// Per slot of `level`: its answer's rows serialized once.
    projections: Vec<Option<Arc<Option<Projection>>>>,
}

impl Children {
    fn new(sel: &Selection, offsets: Vec<usize>, level: Level, fetched: Vec<Fetched>) -> Self {
        let projections = projections(sel, &level);
        Children {
            offsets,
            level,
            fetched,
            projections,
        }
    }

    fn projection(&self, slot: u32) -> Option<&Projection> {
        self.projections
            .get(slot as usize)
            .and_then(Option::as_ref)
            .and_then(|p| p.as_ref().as_ref())
    }
}

/// Runs `plan`, appending its `data` to `out`; returns its errors.
pub async fn execute(
    engine: &Engine,
    plan: &Plan,
    vars: &serde_json::Map<String, Value>,
    state: &Arc<RequestState>,
    out: &mut Vec<u8>,
) -> Vec<Value> {
    let cx = Cx {
        engine,
        state,
        vars,
    };
    let mut root = Level {
        groups: Vec::with_capacity(1),
        nodes: Vec::with_capacity(1),
    };
    root.push_owned(vec![Value::Object(Default::default())]);
    let fetched = fetch_children(&cx, &plan.root, &root, true).await;
    let mut errors = Vec::new();
    for &node in &root.nodes {
        write_object(
            &plan.root,
            &fetched,
            &root,
            node,
            0,
            None,
            &mut Vec::new(),
            out,
            &mut errors,
        );
    }
    errors
}

/// What every fetch of one request reads.
struct Cx<'a> {
    engine: &'a Engine,
    state: &'a Arc<RequestState>,
    /// The operation's variables, coerced.
    vars: &'a serde_json::Map<String, Value>,
}

/// A bound field's arguments for this request: the constant ones, plus those that read
/// variables.
fn with_variables<'v>(
    args: &'v Value,
    var_args: &[(String, async_graphql_value::Value)],
    vars: &serde_json::Map<String, Value>,
) -> std::borrow::Cow<'v, Value> {
    if var_args.is_empty() {
        return std::borrow::Cow::Borrowed(args);
    }
    let mut all = args.as_object().cloned().unwrap_or_default();
    for (name, template) in var_args {
        let value = template
            .clone()
            .into_const_with(|var| {
                async_graphql_value::ConstValue::from_json(
                    vars.get(var.as_str()).cloned().unwrap_or(Value::Null),
                )
            })
            .ok()
            .and_then(|c| c.into_json().ok())
            .unwrap_or(Value::Null);
        all.insert(name.clone(), value);
    }
    std::borrow::Cow::Owned(Value::Object(all))
}

/// Fetches every nested field of `sel` for the nodes of `level`, concurrently. Fields read
/// from the row get no future at all.
fn fetch_level<'a>(
    cx: &'a Cx<'a>,
    sel: &'a Selection,
    level: &'a Level,
    root: bool,
) -> BoxFuture<'a, Vec<Fetched>> {
    async move {
        let mut fetched: Vec<Fetched> = sel.fields.iter().map(|_| Fetched::Nothing).collect();
        let nested = sel
            .nested
            .iter()
            .filter_map(|&i| Some((i, sel.fields.get(i)?)));
        if let [i] = sel.nested.as_slice() {
            if let (Some(f), Some(slot)) = (sel.fields.get(*i), fetched.get_mut(*i)) {
                *slot = fetch_field(cx, f, level, root).await;
            }
        } else {
            let results = futures::future::join_all(
                nested.clone().map(|(_, f)| fetch_field(cx, f, level, root)),
            )
            .await;
            for ((i, _), r) in nested.zip(results) {
                if let Some(slot) = fetched.get_mut(i) {
                    *slot = r;
                }
            }
        }
        fetched
    }
    .boxed()
}

/// [`fetch_level`], without boxing a future when nothing of `sel` needs fetching.
async fn fetch_children(cx: &Cx<'_>, sel: &Selection, level: &Level, root: bool) -> Vec<Fetched> {
    if sel.nested.is_empty() {
        return sel.fields.iter().map(|_| Fetched::Nothing).collect();
    }
    fetch_level(cx, sel, level, root).await
}

async fn fetch_field(cx: &Cx<'_>, field: &PlanField, level: &Level, root: bool) -> Fetched {
    match &field.kind {
        Kind::Bound {
            binding,
            args,
            var_args,
            out,
            children,
        } => {
            let args = with_variables(args, var_args, cx.vars);
            let bound = bound_rows(cx.engine, cx.state, binding, &args, level, root).await;
            let children = match children {
                Some(sel) => {
                    let take = if out.is_list() { usize::MAX } else { 1 };
                    let mut offsets = Vec::with_capacity(level.nodes.len() + 1);
                    let mut nodes = Vec::with_capacity(level.nodes.len());
                    for pick in &bound.per_node {
                        offsets.push(nodes.len());
                        if let Ok(p) = pick {
                            nodes.extend(bound.picked(*p).take(take).map(|i| NodeRef {
                                slot: p.slot,
                                index: i as u32,
                            }));
                        }
                    }
                    offsets.push(nodes.len());
                    let child = Level {
                        groups: bound.groups.clone(),
                        nodes,
                    };
                    let fetched = fetch_children(cx, sel, &child, false).await;
                    Some(Children::new(sel, offsets, child, fetched))
                }
                None => None,
            };
            Fetched::Bound { bound, children }
        }
        Kind::Namespace { children } => {
            let mut child = Level {
                groups: Vec::with_capacity(1),
                nodes: Vec::with_capacity(level.nodes.len()),
            };
            child.push_owned(vec![Value::Object(Default::default()); level.nodes.len()]);
            let offsets = (0..=level.nodes.len()).collect();
            let fetched = fetch_children(cx, children, &child, root).await;
            Fetched::Nested(Children::new(children, offsets, child, fetched))
        }
        Kind::Property {
            lookup,
            children: Some(sel),
            ..
        } => {
            let mut offsets = Vec::with_capacity(level.nodes.len() + 1);
            let mut child = Level {
                groups: Vec::new(),
                nodes: Vec::new(),
            };
            for &n in &level.nodes {
                offsets.push(child.nodes.len());
                match read(lookup, level.row(n)) {
                    Some(Value::Array(items)) => child.push_owned(items.clone()),
                    Some(v) if !v.is_null() => child.push_owned(vec![v.clone()]),
                    _ => {}
                }
            }
            offsets.push(child.nodes.len());
            let fetched = fetch_children(cx, sel, &child, false).await;
            Fetched::Nested(Children::new(sel, offsets, child, fetched))
        }
        _ => Fetched::Nothing,
    }
}

/// The rows of a bound field for every node: one batched call per parent answer, or one
/// call per node.
async fn bound_rows(
    engine: &Engine,
    state: &Arc<RequestState>,
    binding: &crate::blueprint::Binding,
    args: &Value,
    level: &Level,
    root: bool,
) -> Bound {
    state.note_binding(binding.cache.ttl, binding.shareable && !binding.uses_auth);
    let mut bound = Bound {
        groups: Vec::new(),
        indexes: Vec::new(),
        per_node: Vec::with_capacity(level.nodes.len()),
        errors: Vec::new(),
    };
    match (&binding.batch, root) {
        (Some(batch), false) => {
            // Per parent slot: the batched answer's slot and, for each parent row, where its
            // rows are in that answer (computed once per pair of shared answers).
            type ParentSlot = Result<(u32, Arc<Vec<(u32, u32)>>), u32>;
            let mut first = vec![None; level.groups.len()];
            for n in &level.nodes {
                if let Some(f @ None) = first.get_mut(n.slot as usize) {
                    *f = Some(*n);
                }
            }
            let mut parents: Vec<Option<ParentSlot>> = Vec::with_capacity(first.len());
            for n in first {
                let Some(node) = n.and_then(|n| level.node(n)) else {
                    parents.push(None);
                    continue;
                };
                let parent = match resolve::batched(engine, binding, state, args, &node).await {
                    Ok(index) => {
                        let picks = || {
                            let keys = match node.group.derived() {
                                Some(d) => d
                                    .get_or_init(DerivedKey::ParentKeys(binding.id), || {
                                        resolve::parent_keys(&node.group, &batch.parent.path)
                                    }),
                                None => {
                                    Arc::new(resolve::parent_keys(&node.group, &batch.parent.path))
                                }
                            };
                            keys.iter()
                                .map(|k| {
                                    k.as_deref()
                                        .and_then(|k| index.by_key.range(k))
                                        .unwrap_or((0, 0))
                                })
                                .collect::<Vec<_>>()
                        };
                        let picks = match (node.group.derived(), index.group.answer_id()) {
                            (Some(d), Some(child)) => {
                                d.get_or_init(DerivedKey::Picks(binding.id, child), picks)
                            }
                            _ => Arc::new(picks()),
                        };
                        let slot = bound.groups.len() as u32;
                        bound.groups.push(index.group.clone());
                        bound.indexes.push(Some(index.by_key.clone()));
                        Ok((slot, picks))
                    }
                    Err(e) => Err(bound.error(e)),
                };
                parents.push(Some(parent));
            }
            for n in &level.nodes {
                let pick = match parents.get(n.slot as usize) {
                    Some(Some(Ok((slot, picks)))) => {
                        let (start, len) = picks.get(n.index as usize).copied().unwrap_or((0, 0));
                        Ok(Pick {
                            slot: *slot,
                            rows: Picked::Keyed(start, len),
                        })
                    }
                    Some(Some(Err(i))) => Err(*i),
                    _ => Err(bound.error(SourceError::new(
                        ErrorCode::Internal,
                        &engine.sources[binding.connector].name,
                        "batch missing",
                    ))),
                };
                bound.per_node.push(pick);
            }
        }
        _ => {
            let parents: Vec<Option<Node>> = level
                .nodes
                .iter()
                .map(|&n| if root { None } else { level.node(n) })
                .collect();
            let results = futures::future::join_all(
                parents
                    .iter()
                    .map(|p| resolve::unbatched(engine, binding, state, args, p.as_ref())),
            )
            .await;
            for r in results {
                let pick = match r {
                    Ok(group) => {
                        let slot = bound.groups.len() as u32;
                        bound.groups.push(group);
                        bound.indexes.push(None);
                        Ok(Pick {
                            slot,
                            rows: Picked::All,
                        })
                    }
                    Err(e) => Err(bound.error(e)),
                };
                bound.per_node.push(pick);
            }
        }
    }
    bound
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

/// Writes one object: from its projection (serialized once per shared answer) when there
/// is one, field by field otherwise.
#[allow(clippy::too_many_arguments)]
fn write_object<'p>(
    sel: &'p Selection,
    fetched: &[Fetched],
    level: &Level,
    node: NodeRef,
    pos: usize,
    proj: Option<&Projection>,
    path: &mut Vec<Seg<'p>>,
    out: &mut Vec<u8>,
    errors: &mut Vec<Value>,
) {
    if let Some(p) = proj
        && let Some(first) = p.segment(node.index as usize, 0)
    {
        out.extend_from_slice(first);
        for (k, &i) in sel.nested.iter().enumerate() {
            if let (Some(f), Some(fetched)) = (sel.fields.get(i), fetched.get(i)) {
                path.push(Seg::Key(&f.name));
                write_field(f, fetched, level, node, pos, path, out, errors);
                path.pop();
            }
            out.extend_from_slice(p.segment(node.index as usize, k + 1).unwrap_or(b"null"));
        }
        return;
    }
    out.push(b'{');
    for (i, (f, fetched)) in sel.fields.iter().zip(fetched).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&f.key);
        path.push(Seg::Key(&f.name));
        write_field(f, fetched, level, node, pos, path, out, errors);
        path.pop();
    }
    out.push(b'}');
}

/// Why a field of the row alone cannot be written.
enum LeafError {
    InvalidEnum,
    Forbidden,
}

/// Writes a field whose value depends on the row alone; `Ok(false)` when `f` is not such
/// a field.
fn write_leaf(f: &PlanField, row: &Value, out: &mut Vec<u8>) -> Result<bool, LeafError> {
    match &f.kind {
        Kind::Typename(t) => out.extend_from_slice(t),
        Kind::Const { value, out: o } => write_value(o, &o.ty, value, out),
        Kind::Property {
            lookup,
            out: o,
            suppress,
            children: None,
        } => {
            let v = read(lookup, row);
            let v = match (v, suppress) {
                (Some(v), Some(below))
                    if v.as_f64().is_some_and(|n| n >= 1.0 && n < *below as f64) =>
                {
                    None
                }
                (v, _) => v,
            };
            match v {
                Some(v) if o.invalid_enum(v) => return Err(LeafError::InvalidEnum),
                Some(v) => write_value(o, &o.ty, v, out),
                None => out.extend_from_slice(b"null"),
            }
        }
        Kind::Forbidden => return Err(LeafError::Forbidden),
        _ => return Ok(false),
    }
    Ok(true)
}

/// Writes the value of one field (its key is already written).
#[allow(clippy::too_many_arguments)]
fn write_field<'p>(
    f: &'p PlanField,
    fetched: &Fetched,
    level: &Level,
    node: NodeRef,
    pos: usize,
    path: &mut Vec<Seg<'p>>,
    out: &mut Vec<u8>,
    errors: &mut Vec<Value>,
) {
    if f.kind.is_nested() {
        return write_nested(f, fetched, pos, path, out, errors);
    }
    match write_leaf(f, level.row(node), out) {
        Ok(true) => return,
        Ok(false) => {}
        Err(LeafError::InvalidEnum) => {
            out.extend_from_slice(b"null");
            errors.push(error(
                path,
                format!("internal: invalid item for enum at {}", f.name),
                ErrorCode::Internal,
                None,
            ));
            return;
        }
        Err(LeafError::Forbidden) => {
            out.extend_from_slice(b"null");
            errors.push(error(
                path,
                "this field is not public".into(),
                ErrorCode::Forbidden,
                None,
            ));
            return;
        }
    }
    write_nested(f, fetched, pos, path, out, errors)
}

/// Writes the value of a field fetched for its level (a bound field, a nested object).
fn write_nested<'p>(
    f: &'p PlanField,
    fetched: &Fetched,
    pos: usize,
    path: &mut Vec<Seg<'p>>,
    out: &mut Vec<u8>,
    errors: &mut Vec<Value>,
) {
    match (&f.kind, fetched) {
        (Kind::Property { out: o, .. }, Fetched::Nested(ch)) => {
            write_children(o.is_list(), f, ch, pos, path, out, errors)
        }
        (Kind::Namespace { .. }, Fetched::Nested(ch)) => {
            write_children(false, f, ch, pos, path, out, errors)
        }
        (Kind::Bound { out: o, .. }, Fetched::Bound { bound, children }) => {
            match (bound.per_node.get(pos), children) {
                (Some(Err(i)), _) => {
                    out.extend_from_slice(b"null");
                    if let Some(e) = bound.errors.get(*i as usize) {
                        let message = e.to_graphql().message;
                        errors.push(error(path, message, e.code, Some(&e.connector)));
                    }
                }
                (Some(Ok(_)), Some(ch)) => {
                    write_children(o.is_list(), f, ch, pos, path, out, errors)
                }
                (Some(Ok(p)), None) => write_scalar_rows(o, bound.rows(*p), bound.picked(*p), out),
                (None, _) => out.extend_from_slice(b"null"),
            }
        }
        _ => out.extend_from_slice(b"null"),
    }
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
    let sel = match &f.kind {
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
    let Some(nodes) = ch.level.nodes.get(start..end) else {
        out.extend_from_slice(b"null");
        return;
    };
    if !list {
        match nodes.first() {
            Some(&node) => write_object(
                sel,
                &ch.fetched,
                &ch.level,
                node,
                start,
                ch.projection(node.slot),
                path,
                out,
                errors,
            ),
            None => out.extend_from_slice(b"null"),
        }
        return;
    }
    out.push(b'[');
    let mut k = 0;
    while let Some(&node) = nodes.get(k) {
        if k > 0 {
            out.push(b',');
        }
        let proj = ch.projection(node.slot);
        // Objects made of row fields only, over consecutive rows of one answer: their
        // serialized form is one slice.
        if sel.nested.is_empty()
            && let Some(p) = proj
        {
            let run = nodes
                .get(k..)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .take_while(|(j, n)| {
                    n.slot == node.slot && n.index as usize == node.index as usize + j
                })
                .count();
            let first = node.index as usize;
            if let Some(bytes) = p.run(first, first + run.max(1) - 1) {
                out.extend_from_slice(bytes);
                k += run;
                continue;
            }
        }
        path.push(Seg::Index(k));
        write_object(
            sel,
            &ch.fetched,
            &ch.level,
            node,
            start + k,
            proj,
            path,
            out,
            errors,
        );
        path.pop();
        k += 1;
    }
    out.push(b']');
}

/// The fields of a selection that depend on the row alone, serialized for every row of one
/// answer. Row `r` is `{` + segment 0 + value of nested field 0 + segment 1 + ... + `}`:
/// segment `k` ends with the key of nested field `k`, the last one with the `}`. Rows are
/// separated by a comma in `buf`, so consecutive rows of a selection without nested
/// fields are one slice.
pub(crate) struct Projection {
    buf: Vec<u8>,
    starts: Vec<u32>,
    ends: Vec<u32>,
    segments: usize,
}

impl Projection {
    /// `None` when a row cannot be written ahead (a value the field's type rejects, which
    /// must be reported with its path) or the answer is too large to index.
    fn build(sel: &Selection, rows: &[Value]) -> Option<Projection> {
        let segments = sel.nested.len() + 1;
        let mut p = Projection {
            buf: Vec::with_capacity(rows.len() * 64),
            starts: Vec::with_capacity(rows.len()),
            ends: Vec::with_capacity(rows.len() * segments),
            segments,
        };
        let at = |buf: &Vec<u8>| u32::try_from(buf.len()).ok();
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                p.buf.push(b',');
            }
            p.starts.push(at(&p.buf)?);
            p.buf.push(b'{');
            for (i, f) in sel.fields.iter().enumerate() {
                if i > 0 {
                    p.buf.push(b',');
                }
                p.buf.extend_from_slice(&f.key);
                if !write_leaf(f, row, &mut p.buf).ok()? {
                    p.ends.push(at(&p.buf)?);
                }
            }
            p.buf.push(b'}');
            p.ends.push(at(&p.buf)?);
        }
        Some(p)
    }

    /// Memory it holds.
    fn bytes(&self) -> usize {
        self.buf.capacity() + (self.starts.capacity() + self.ends.capacity()) * 4
    }

    fn segment(&self, row: usize, k: usize) -> Option<&[u8]> {
        let i = row.checked_mul(self.segments)?.checked_add(k)?;
        let start = if k == 0 {
            *self.starts.get(row)?
        } else {
            *self.ends.get(i - 1)?
        };
        let end = *self.ends.get(i)?;
        self.buf.get(start as usize..end as usize)
    }

    /// Rows `first..=last`, comma-separated, when the selection has no nested fields.
    fn run(&self, first: usize, last: usize) -> Option<&[u8]> {
        if self.segments != 1 {
            return None;
        }
        let start = *self.starts.get(first)?;
        let end = *self.ends.get(last)?;
        self.buf.get(start as usize..end as usize)
    }
}

/// The projections of `sel` over the answers of `level`, per slot, built once per answer.
/// Answers most of whose rows are not read here get none.
fn projections(sel: &Selection, level: &Level) -> Vec<Option<Arc<Option<Projection>>>> {
    if !sel.projectable {
        return Vec::new();
    }
    let mut used = vec![0usize; level.groups.len()];
    for n in &level.nodes {
        if let Some(u) = used.get_mut(n.slot as usize) {
            *u += 1;
        }
    }
    level
        .groups
        .iter()
        .zip(used)
        .map(|(g, used)| {
            let derived = g.derived()?;
            let rows = g.rows();
            (used > 0 && used * 2 >= rows.len()).then(|| {
                derived.get_or_init(DerivedKey::Projection(sel.id), || {
                    Projection::build(sel, rows).filter(|p| {
                        derived.reserve(p.bytes(), || {
                            rows.iter().map(crate::cache::approx_size).sum()
                        })
                    })
                })
            })
        })
        .collect()
}

/// A scalar (or list of scalars) bound field: the single column of each picked row.
fn write_scalar_rows(
    o: &Out,
    rows: &[Value],
    mut picked: impl Iterator<Item = usize>,
    out: &mut Vec<u8>,
) {
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
        for (k, i) in picked.enumerate() {
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
        match picked.next().and_then(|i| rows.get(i)) {
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
