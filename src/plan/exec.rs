//! Running a plan, first half: fetch level by level (one call per bound field per level).
//! `write` then writes the response bytes in one pass.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::bound::{Bound, bound_rows};
use super::input::Inputs;
use super::projection::{Projection, projections};
use super::write::Writer;
use super::{Kind, PlanField, Selection, VarArg};
use crate::blueprint::Lookup;
use crate::blueprint::page::Window;
use crate::error::ErrorCode;
use crate::resolve::Engine;
use crate::resolve::node::{Group, Node, get_path};
use crate::resolve::request::RequestState;

/// A parent value: row `index` of the answer in slot `slot` of its level.
#[derive(Clone, Copy)]
pub(super) struct NodeRef {
    pub slot: u32,
    pub index: u32,
}

/// The parent values of one level: the answers they are rows of, and which rows. Nodes
/// name their answer by slot, so a level of a thousand rows costs no reference counting.
pub(super) struct Level {
    pub groups: Vec<Arc<Group>>,
    pub nodes: Vec<NodeRef>,
}

impl Level {
    pub fn row(&self, n: NodeRef) -> &Value {
        self.groups
            .get(n.slot as usize)
            .and_then(|g| g.rows().get(n.index as usize))
            .unwrap_or(&Value::Null)
    }

    /// The node as the resolvers take it.
    pub(super) fn node(&self, n: NodeRef) -> Option<Node> {
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

/// What one field fetched for every node of its level.
pub(super) enum Fetched {
    Nothing,
    /// An introspection field's value and errors, as async-graphql answered them.
    Introspected(Value, Vec<Value>),
    Bound {
        bound: Bound,
        children: Option<Children>,
    },
    Nested(Children),
    /// A built-in field refused: its code and the message the client reads.
    Failed(crate::error::ErrorCode, String),
}

/// The child nodes of a level, flattened in parent order, and their fetched fields.
pub(super) struct Children {
    /// `offsets[i]..offsets[i + 1]` are the children of node `i`.
    pub offsets: Vec<usize>,
    pub level: Level,
    pub fetched: Vec<Fetched>,
    /// Per parent node: its value was null (not an empty list). Empty when none was.
    pub null: Vec<bool>,
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
            null: Vec::new(),
            projections,
        }
    }

    pub fn projection(&self, slot: u32) -> Option<&Projection> {
        self.projections
            .get(slot as usize)
            .and_then(Option::as_ref)
            .and_then(|p| p.as_ref().as_ref())
    }
}

/// Runs the selection `root`, appending its `data` to `out`; returns its errors.
pub(super) async fn execute(cx: &Cx<'_>, root: &Selection, out: &mut Vec<u8>) -> Vec<Value> {
    let mut level = Level {
        groups: Vec::with_capacity(1),
        nodes: Vec::with_capacity(1),
    };
    level.push_owned(vec![Value::Object(Default::default())]);
    let fetched = fetch_children(cx, root, &level, true).await;
    let mut w = Writer::reporting(out, cx.engine.blueprint.limits.max_errors, cx.engine);
    w.root(root, &fetched, &level);
    w.finish()
}

/// What every fetch of one request reads.
pub(super) struct Cx<'a> {
    pub engine: &'a Engine,
    pub inputs: Inputs<'a>,
    pub schema: &'a async_graphql::dynamic::Schema,
    pub state: &'a Arc<RequestState>,
    /// The operation's variables, coerced.
    pub vars: &'a serde_json::Map<String, Value>,
    /// A mutation: its root fields run one after another.
    pub serial: bool,
    /// The caller's view: built-in fields filter what they answer by it.
    pub view: &'a crate::access::View,
}

/// A bound field's arguments for this request: the constant ones, plus those that read
/// variables (coerced to the argument's type; a variable not given leaves the argument
/// to its default).
pub(super) fn with_variables<'v>(
    cx: &Cx<'_>,
    args: &'v Value,
    var_args: &[VarArg],
) -> std::borrow::Cow<'v, Value> {
    if var_args.is_empty() {
        return std::borrow::Cow::Borrowed(args);
    }
    let mut all = args.as_object().cloned().unwrap_or_default();
    for a in var_args {
        if let async_graphql_value::Value::Variable(v) = &a.value
            && !cx.vars.contains_key(v.as_str())
        {
            if let Some(d) = &a.default {
                all.insert(a.name.clone(), d.clone());
            }
            continue;
        }
        let value = a
            .value
            .clone()
            .into_const_with(|var| {
                async_graphql_value::ConstValue::from_json(
                    cx.vars.get(var.as_str()).cloned().unwrap_or(Value::Null),
                )
            })
            .ok()
            .and_then(|c| c.into_json().ok())
            .unwrap_or(Value::Null);
        let value = cx.inputs.coerce(&a.ty, &value).unwrap_or(Value::Null);
        all.insert(a.name.clone(), value);
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
        // In an interface or union: the position of each node's type.
        let types: Option<Vec<Option<u16>>> = sel.abstract_.as_ref().map(|a| {
            level
                .nodes
                .iter()
                .map(|&n| a.type_of(level.row(n)))
                .collect()
        });
        let types = types.as_deref();
        if let [i] = sel.nested.as_slice() {
            if let (Some(f), Some(slot)) = (sel.fields.get(*i), fetched.get_mut(*i)) {
                *slot = fetch_field(cx, f, level, types, root).await;
            }
        } else if root && cx.serial {
            // A mutation's root fields run one after another, in selection order.
            for (i, f) in nested {
                let r = fetch_field(cx, f, level, types, root).await;
                if let Some(slot) = fetched.get_mut(i) {
                    *slot = r;
                }
            }
        } else {
            // `@graphql` fields are asked together: one request per remote service.
            let remote = |f: &PlanField| {
                matches!(
                    f.kind,
                    Kind::Bound {
                        forward: Some(_),
                        ..
                    }
                )
            };
            let (remotes, locals): (Vec<_>, Vec<_>) = nested.partition(|(_, f)| remote(f));
            let remote_fields: Vec<&PlanField> = remotes.iter().map(|(_, f)| *f).collect();
            let (remote_results, results) = futures::future::join(
                async {
                    match remote_fields.is_empty() {
                        true => Vec::new(),
                        false => {
                            super::remote::fetch_remote(cx, &remote_fields, level, types, root)
                                .await
                        }
                    }
                },
                futures::future::join_all(
                    locals
                        .iter()
                        .map(|(_, f)| fetch_field(cx, f, level, types, root)),
                ),
            )
            .await;
            for ((i, _), r) in remotes
                .iter()
                .chain(&locals)
                .zip(remote_results.into_iter().chain(results))
            {
                if let Some(slot) = fetched.get_mut(*i) {
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

/// `__schema` or `__type`, answered by the view's async-graphql schema.
async fn introspect(
    cx: &Cx<'_>,
    f: &async_graphql_parser::types::Field,
    doc: &async_graphql_parser::types::ExecutableDocument,
) -> Fetched {
    let text = super::introspect::document(f, doc, cx.vars);
    let response = cx.schema.execute(async_graphql::Request::new(text)).await;
    let key = f.response_key().node.as_str();
    let data = serde_json::to_value(&response.data).unwrap_or(Value::Null);
    let errors = response
        .errors
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    Fetched::Introspected(data.get(key).cloned().unwrap_or(Value::Null), errors)
}

/// Whether node `i` of a level is of the type `field` is selected on.
pub(super) fn applies(field: &PlanField, types: Option<&[Option<u16>]>, i: usize) -> bool {
    match (field.only, types) {
        (Some(t), Some(types)) => types.get(i).copied().flatten() == Some(t),
        _ => true,
    }
}

async fn fetch_field(
    cx: &Cx<'_>,
    field: &PlanField,
    level: &Level,
    types: Option<&[Option<u16>]>,
    root: bool,
) -> Fetched {
    let applies = |i: usize| applies(field, types, i);
    match &field.kind {
        Kind::Bound {
            binding,
            args,
            var_args,
            out,
            children,
            page,
            forward,
        } => {
            if forward.is_some() {
                let mut one = super::remote::fetch_remote(cx, &[field], level, types, root).await;
                return one.pop().unwrap_or(Fetched::Nothing);
            }
            let args = with_variables(cx, args, var_args);
            let paging = match paging(page, &args) {
                Ok(p) => p,
                Err(message) => return Fetched::Failed(ErrorCode::BadRequest, message),
            };
            let bound =
                bound_rows(cx.engine, cx.state, binding, &args, level, root, &applies).await;
            finish_bound(cx, out, children.as_ref(), &args, paging, bound).await
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
            let mut null = Vec::new();
            for (i, &n) in level.nodes.iter().enumerate() {
                offsets.push(child.nodes.len());
                if !applies(i) {
                    continue;
                }
                match read(lookup, level.row(n)) {
                    Some(Value::Array(items)) => child.push_owned(items.clone()),
                    Some(v) if !v.is_null() => child.push_owned(vec![v.clone()]),
                    _ => {
                        null.resize(level.nodes.len(), false);
                        if let Some(x) = null.get_mut(i) {
                            *x = true;
                        }
                    }
                }
            }
            offsets.push(child.nodes.len());
            let fetched = fetch_children(cx, sel, &child, false).await;
            let mut children = Children::new(sel, offsets, child, fetched);
            children.null = null;
            Fetched::Nested(children)
        }
        Kind::Sources { children } => {
            // Live health is never served from the response cache.
            cx.state.mark_uncacheable();
            let rows: Vec<Value> = cx.engine.sources.iter().map(|s| s.health_json()).collect();
            same_rows(cx, children, level, rows).boxed().await
        }
        Kind::Builtin {
            which,
            args,
            var_args,
            children,
            ..
        } => {
            builtin(
                cx,
                *which,
                &with_variables(cx, args, var_args),
                children,
                level,
            )
            .boxed()
            .await
        }
        // Boxed: async-graphql's execution is a large future, and every other field's
        // fetch would otherwise carry (and move) its size.
        Kind::Introspection { field: f, doc } => introspect(cx, &f.node, doc).boxed().await,
        _ => Fetched::Nothing,
    }
}

/// A paged field's page and the caller's window on it (`Err`: the arguments are refused).
pub(super) fn paging<'p>(
    page: &'p Option<Arc<crate::blueprint::page::Page>>,
    args: &Value,
) -> Result<Option<(&'p crate::blueprint::page::Page, Window)>, String> {
    page.as_deref()
        .map(|p| p.window(args).map(|w| (p, w)))
        .transpose()
}

/// A bound field's value for the level, from its rows: the items each parent keeps (all,
/// the first, or a page) and their own fields, fetched.
pub(super) async fn finish_bound(
    cx: &Cx<'_>,
    out: &crate::resolve::value::Out,
    children: Option<&Selection>,
    args: &Value,
    paging: Option<(&crate::blueprint::page::Page, Window)>,
    bound: Bound,
) -> Fetched {
    let children = match children {
        Some(sel) => {
            let take = if out.is_list() { usize::MAX } else { 1 };
            let mut offsets = Vec::with_capacity(bound.per_node.len() + 1);
            let mut nodes = Vec::with_capacity(bound.per_node.len());
            // Whether some parent's items hold the cursor `after` names.
            let mut after_found = false;
            for pick in &bound.per_node {
                offsets.push(nodes.len());
                let Ok(p) = pick else { continue };
                let node = |i: usize| NodeRef {
                    slot: p.slot,
                    index: i as u32,
                };
                match &paging {
                    Some((page, w)) => {
                        let rows = bound.rows(*p);
                        if let Some(items) = page.select(args, w, rows, bound.picked(*p)) {
                            after_found = true;
                            nodes.extend(items.into_iter().map(node));
                        }
                    }
                    None => nodes.extend(bound.picked(*p).take(take).map(node)),
                }
            }
            if let Some((
                _,
                Window {
                    after: Some(after), ..
                },
            )) = &paging
                && !after_found
                && bound.errors.is_empty()
            {
                return Fetched::Failed(
                    ErrorCode::BadRequest,
                    format!("after: no item of this list has the cursor {after}"),
                );
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

pub(super) fn read<'v>(lookup: &Lookup, row: &'v Value) -> Option<&'v Value> {
    match lookup {
        Lookup::Keys(keys) => keys.iter().find_map(|k| row.get(k)),
        Lookup::Path(p) => get_path(row, p),
        // Made of several columns: written by `Writer::leaf`, never read as one value.
        Lookup::Cursor(_) => None,
    }
}

/// A built-in field (a root field: one node) answered by the alerts or the outbox.
async fn builtin(
    cx: &Cx<'_>,
    which: crate::blueprint::Builtin,
    args: &Value,
    children: &Selection,
    level: &Level,
) -> Fetched {
    // Alerts and receipts are live: never served from the response cache.
    cx.state.mark_uncacheable();
    let outbox = match which {
        crate::blueprint::Builtin::Accept(i) => Some(
            crate::outbox::accept(cx.engine, i, args, &cx.state.auth, cx.state.client.as_ref())
                .await,
        ),
        crate::blueprint::Builtin::Receipt(i) => {
            Some(crate::outbox::receipt(cx.engine, i, args).await)
        }
        _ => None,
    };
    // Answered by Simpul itself, without the alerts.
    let own = match which {
        crate::blueprint::Builtin::Entities => Some(super::entities::entities(cx, args).await),
        _ => outbox,
    };
    if let Some(answer) = own {
        return match answer {
            Ok(rows) => same_rows(cx, children, level, rows).await,
            Err((code, message)) => Fetched::Failed(code, message),
        };
    }
    let Some(alerts) = &cx.engine.alerts else {
        return Fetched::Failed(
            crate::error::ErrorCode::Internal,
            "this deployment has no rules".into(),
        );
    };
    let sub = cx.state.auth.get("sub").and_then(Value::as_str);
    let rows = match alerts
        .answer(which, args, cx.view, sub, cx.state.event.as_ref())
        .await
    {
        Ok(rows) => rows,
        Err((code, message)) => return Fetched::Failed(code, message),
    };
    same_rows(cx, children, level, rows).await
}

/// Children of a root field Simpul answers itself: the same `rows` under every node.
async fn same_rows(cx: &Cx<'_>, children: &Selection, level: &Level, rows: Vec<Value>) -> Fetched {
    let mut child = Level {
        groups: Vec::with_capacity(level.nodes.len()),
        nodes: Vec::new(),
    };
    let mut offsets = Vec::with_capacity(level.nodes.len() + 1);
    for _ in &level.nodes {
        offsets.push(child.nodes.len());
        child.push_owned(rows.clone());
    }
    offsets.push(child.nodes.len());
    let fetched = fetch_children(cx, children, &child, false).await;
    Fetched::Nested(Children::new(children, offsets, child, fetched))
}
