//! Execution: every data operation runs here, and only here. async-graphql parses and
//! validates a document against the caller's view (and answers introspection); the
//! operation is then compiled into a plan on first sight, cached per view by its text,
//! and run: fetched level by level (one call per bound field per level) and written
//! straight into the response bytes, with the spec's null propagation, error paths and
//! locations, input coercion, `@include`/`@skip`, and fragments on interfaces and unions.
//!
//! A plan is compiled once per combination of the values of the variables its
//! `@include`/`@skip` read (usually none, so once).

mod bound;
mod build;
mod cost;
mod entities;
mod exec;
mod faults;
mod gap;
mod input;
mod introspect;
mod leaf;
mod projection;
mod remote;
pub mod upload;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql_parser::types::{ExecutableDocument, OperationDefinition, OperationType};
use async_graphql_value::Name;
use serde_json::{Map, Value};

use crate::access::View;
use crate::blueprint::{Binding, Lookup};
use crate::resolve::Engine;
use crate::resolve::request::RequestState;
use crate::resolve::value::Out;
pub use gap::Gap;
pub use input::VariableError;

/// A compiled operation.
pub struct Plan {
    /// The operation's name, when it has one.
    name: Option<Arc<str>>,
    doc: Arc<ExecutableDocument>,
    op: OperationDefinition,
    /// The variables `@include`/`@skip` read: one variant per combination of their values.
    conditions: Vec<Name>,
    variants: Mutex<Vec<(Vec<bool>, Arc<Selection>)>>,
    /// False once a run read a binding without a cache policy (or one that reads the
    /// caller): its responses are never replayed, so their key is not even built.
    replayable: std::sync::atomic::AtomicBool,
    /// Size of the last answer, so the next one's buffer is allocated once.
    size_hint: std::sync::atomic::AtomicUsize,
}

/// At most this many condition variants are kept per plan; others are compiled per request.
const MAX_VARIANTS: usize = 16;

impl Plan {
    pub fn is_query(&self) -> bool {
        self.op.ty == OperationType::Query
    }

    pub fn is_subscription(&self) -> bool {
        self.op.ty == OperationType::Subscription
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// "query", "mutation" or "subscription".
    pub fn kind(&self) -> &'static str {
        match self.op.ty {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        }
    }

    /// The built-in root field a subscription answers (the spec allows exactly one).
    pub fn subscribed(&self, planner: &Planner) -> Option<crate::blueprint::Builtin> {
        let root = self.variant(planner, &Map::new()).ok()?;
        root.fields.iter().find_map(|f| match &f.kind {
            Kind::Builtin { which, .. } => Some(*which),
            _ => None,
        })
    }

    pub fn size_hint(&self) -> usize {
        self.size_hint.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn replayable(&self) -> bool {
        self.replayable.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn note_replayable(&self, replayable: bool) {
        if !replayable {
            self.replayable
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn note_size(&self, size: usize) {
        self.size_hint
            .store(size, std::sync::atomic::Ordering::Relaxed);
    }

    /// The selection to run for these (coerced) variables.
    fn variant(&self, planner: &Planner, vars: &Map<String, Value>) -> Result<Arc<Selection>, Gap> {
        let key: Vec<bool> = self
            .conditions
            .iter()
            .map(|c| {
                vars.get(c.as_str())
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .collect();
        let variants = self.variants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, sel)) = variants.iter().find(|(k, _)| *k == key) {
            return Ok(sel.clone());
        }
        drop(variants);
        let conditions = self
            .conditions
            .iter()
            .zip(&key)
            .map(|(n, b)| (n.to_string(), Value::Bool(*b)))
            .collect();
        let builder = build::Builder {
            engine: &planner.engine,
            view: &planner.view,
            types: &planner.types,
            doc: &self.doc,
            conditions: &conditions,
        };
        let sel = Arc::new(builder.root(self.op.ty, &self.op.selection_set.node)?);
        let mut variants = self.variants.lock().unwrap_or_else(|p| p.into_inner());
        if variants.len() < MAX_VARIANTS {
            variants.push((key, sel.clone()));
        }
        Ok(sel)
    }
}

/// What running a plan failed on before writing anything.
pub enum Refusal {
    /// The variables cannot be coerced: a request error.
    Variables(Vec<VariableError>),
    /// The operation needs something the executor does not do: INTERNAL.
    Gap(String),
}

/// Compiles and runs plans for one view.
pub struct Planner {
    engine: Arc<Engine>,
    view: View,
    types: HashMap<String, usize>,
    /// The view's schema: introspection is answered from it.
    schema: async_graphql::dynamic::Schema,
    /// Operations sent without `operationName`, by their text: looked up without building
    /// a key.
    unnamed: moka::sync::Cache<Arc<str>, Arc<Plan>, rustc_hash::FxBuildHasher>,
    /// Operations picked by name, by text and name.
    named: moka::sync::Cache<(Arc<str>, Arc<str>), Arc<Plan>, rustc_hash::FxBuildHasher>,
    /// Texts longer than this are planned on every request, never kept.
    max_text: usize,
}

/// What a kept plan is taken to weigh per byte of its text (the text, its parsed document and
/// the compiled selections) and on top of it, so that the caches stay within their budget
/// in bytes. An upper estimate: a kept plan of a 12 KiB text was measured at 74 KB, about 6×
/// (tests/it/bounds.rs, `distinct_operations_keep_the_plan_caches_within_their_budget`).
const WEIGHT_PER_TEXT_BYTE: usize = 16;
const WEIGHT_BASE: usize = 4096;

fn weight(text: &str) -> u32 {
    u32::try_from(
        text.len()
            .saturating_mul(WEIGHT_PER_TEXT_BYTE)
            .saturating_add(WEIGHT_BASE),
    )
    .unwrap_or(u32::MAX)
}

impl Planner {
    /// A planner whose kept plans weigh at most `budget` bytes (half for operations sent
    /// with a name, half for those without).
    pub fn new(
        engine: Arc<Engine>,
        view: View,
        schema: async_graphql::dynamic::Schema,
        budget: u64,
    ) -> Planner {
        let types = engine
            .blueprint
            .types
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let max_text = engine.blueprint.cache.plan_max_text;
        Planner {
            engine,
            view,
            types,
            schema,
            unnamed: moka::sync::Cache::builder()
                .max_capacity(budget / 2)
                .weigher(|k: &Arc<str>, _: &Arc<Plan>| weight(k))
                .build_with_hasher(rustc_hash::FxBuildHasher),
            named: moka::sync::Cache::builder()
                .max_capacity(budget / 2)
                .weigher(|k: &(Arc<str>, Arc<str>), _: &Arc<Plan>| weight(&k.0))
                .build_with_hasher(rustc_hash::FxBuildHasher),
            max_text,
        }
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    pub fn schema(&self) -> &async_graphql::dynamic::Schema {
        &self.schema
    }

    /// The plan of an operation seen (and validated) before.
    pub fn get(&self, query: &str, operation: Option<&str>) -> Option<Arc<Plan>> {
        match operation {
            None => self.unnamed.get(query),
            Some(name) => self.named.get(&(Arc::from(query), Arc::from(name))),
        }
    }

    /// Whether plans and responses of `query` may be kept: not when it is longer than
    /// `[cache] plan_max_text`.
    pub fn keeps(&self, query: &str) -> bool {
        query.len() <= self.max_text
    }

    /// Keeps the plan of `doc`, which async-graphql validated against this view (unless the
    /// text is too long to keep).
    pub fn insert(
        &self,
        query: &str,
        operation: Option<&str>,
        doc: ExecutableDocument,
    ) -> Result<Arc<Plan>, String> {
        use async_graphql_parser::types::DocumentOperations;
        let (name, op) = match (&doc.operations, operation) {
            (DocumentOperations::Single(op), _) => (None, op.node.clone()),
            (DocumentOperations::Multiple(ops), Some(name)) => (
                Some(name.into()),
                ops.get(name).ok_or("unknown operation")?.node.clone(),
            ),
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                let (name, op) = ops.iter().next().ok_or("no operation")?;
                (Some(name.as_str().into()), op.node.clone())
            }
            _ => return Err("operationName is required".into()),
        };
        let plan = Arc::new(Plan {
            name,
            conditions: build::condition_variables(&doc),
            doc: Arc::new(doc),
            op,
            variants: Mutex::new(Vec::new()),
            replayable: std::sync::atomic::AtomicBool::new(true),
            size_hint: Default::default(),
        });
        if self.keeps(query) {
            match operation {
                None => self.unnamed.insert(query.into(), plan.clone()),
                Some(name) => self.named.insert((query.into(), name.into()), plan.clone()),
            }
        }
        Ok(plan)
    }

    /// This request's variables, coerced to the operation's definitions.
    pub fn variables(
        &self,
        plan: &Plan,
        given: Option<&Value>,
    ) -> Result<Map<String, Value>, Vec<VariableError>> {
        let given = match given {
            Some(Value::Object(m)) => Some(m),
            _ => None,
        };
        self.inputs()
            .variables(&plan.op.variable_definitions, given)
    }

    fn inputs(&self) -> input::Inputs<'_> {
        input::Inputs {
            engine: &self.engine,
            types: &self.types,
        }
    }

    /// The estimated cost of running `plan` with these variables (`cost`).
    pub fn cost(&self, plan: &Plan, vars: &Map<String, Value>) -> Result<u64, Gap> {
        let root = plan.variant(self, vars)?;
        Ok(cost::of(&root, vars))
    }

    /// Runs `plan`, appending its `data` to `out`; returns its errors.
    pub async fn run(
        &self,
        plan: &Plan,
        vars: &Map<String, Value>,
        state: &Arc<RequestState>,
        out: &mut Vec<u8>,
    ) -> Result<Vec<Value>, Gap> {
        let root = plan.variant(self, vars)?;
        let cx = exec::Cx {
            engine: &self.engine,
            inputs: self.inputs(),
            schema: &self.schema,
            state,
            vars,
            serial: plan.op.ty == OperationType::Mutation,
            view: &self.view,
        };
        Ok(exec::execute(&cx, &root, out).await)
    }
}

/// The fields selected on one object type, or on each possible type of an interface or
/// union (fields tagged with their type's position in [`Abstract::types`]).
pub(crate) struct Selection {
    /// Unique among every selection ever compiled: the key of its serialized fields in an
    /// answer's derived values.
    id: u64,
    fields: Vec<PlanField>,
    /// Positions of the fields whose value is not a function of the row alone (bound
    /// fields, nested objects); the others can be serialized once per shared answer.
    nested: Vec<usize>,
    /// False when rows cannot be serialized ahead: a field that always answers with an
    /// error (denied by the view), or rows of several types.
    projectable: bool,
    abstract_: Option<Abstract>,
}

/// An interface or union: each row names its type in `discriminator`.
struct Abstract {
    name: Arc<str>,
    discriminator: Arc<str>,
    types: Vec<Arc<str>>,
}

impl Abstract {
    /// The position of `row`'s type among the possible types.
    fn type_of(&self, row: &Value) -> Option<u16> {
        let name = row.get(&*self.discriminator)?.as_str()?;
        self.types
            .iter()
            .position(|t| &**t == name)
            .and_then(|i| u16::try_from(i).ok())
    }
}

static NEXT_SELECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Selection {
    fn new(fields: Vec<PlanField>, abstract_: Option<Abstract>) -> Selection {
        let nested = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind.is_nested())
            .map(|(i, _)| i)
            .collect();
        let projectable =
            abstract_.is_none() && !fields.iter().any(|f| matches!(f.kind, Kind::Forbidden));
        Selection {
            id: NEXT_SELECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            fields,
            nested,
            projectable,
            abstract_,
        }
    }
}

struct PlanField {
    /// `"key":`, ready to write.
    key: Vec<u8>,
    /// The response key, for error paths.
    name: Arc<str>,
    kind: Kind,
    /// In an abstract selection: the position of the type this field is selected on.
    only: Option<u16>,
    /// The declared type is non-null: a null here nulls the parent.
    non_null: bool,
    /// Line and column of the field in the document, for error `locations`.
    at: (usize, usize),
    /// The type the field is selected on, for messages.
    owner: Arc<str>,
    /// `Type.field` (the schema's name, not the response key), for the log.
    field: Arc<str>,
    /// How many values the field may hold, for the operation's estimated cost.
    size: cost::Size,
}

/// An argument that reads operation variables, coerced per request.
struct VarArg {
    name: String,
    value: async_graphql_value::Value,
    ty: async_graphql_parser::types::Type,
    default: Option<Value>,
}

enum Kind {
    /// `__typename`: the JSON string, ready to write.
    Typename(Vec<u8>),
    /// Read from the parent row; `children` when the value is an object or a list of them.
    Property {
        lookup: Lookup,
        out: Out,
        /// `@suppress`, for views below INTERNAL only.
        suppress: Option<crate::blueprint::Suppress>,
        children: Option<Selection>,
    },
    Const {
        value: Value,
        out: Out,
    },
    Bound {
        binding: Arc<Binding>,
        /// The arguments written as constants (and argument defaults), coerced.
        args: Value,
        /// Arguments that read operation variables, filled in per request.
        var_args: Vec<VarArg>,
        out: Out,
        children: Option<Selection>,
        /// `@page`: the items the arguments select, one page of them.
        page: Option<Arc<crate::blueprint::page::Page>>,
        /// `@graphql`: the selection forwarded to the remote service (`plan::remote`).
        forward: Option<Arc<str>>,
    },
    Namespace {
        children: Selection,
    },
    /// `Query.sources`: read live from the connectors.
    Sources {
        children: Selection,
    },
    /// A field Simpul answers itself (alerts, their mutations and events).
    Builtin {
        which: crate::blueprint::Builtin,
        args: Value,
        var_args: Vec<VarArg>,
        out: Out,
        children: Selection,
    },
    /// `__schema` or `__type`, answered by async-graphql from the view's schema.
    Introspection {
        field: async_graphql_parser::Positioned<async_graphql_parser::types::Field>,
        doc: Arc<ExecutableDocument>,
    },
    /// A field an interface requires that this view may not read: null with FORBIDDEN.
    Forbidden,
}

impl Kind {
    /// Whether the value needs more than the parent row: a fetch, or a level of its own.
    pub(super) fn is_nested(&self) -> bool {
        matches!(
            self,
            Kind::Bound { .. }
                | Kind::Namespace { .. }
                | Kind::Sources { .. }
                | Kind::Builtin { .. }
                | Kind::Introspection { .. }
                | Kind::Property {
                    children: Some(_),
                    ..
                }
        )
    }

    fn children(&self) -> Option<&Selection> {
        match self {
            Kind::Bound { children, .. } | Kind::Property { children, .. } => children.as_ref(),
            Kind::Namespace { children }
            | Kind::Sources { children }
            | Kind::Builtin { children, .. } => Some(children),
            _ => None,
        }
    }
}
