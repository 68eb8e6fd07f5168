//! Execution plans: an operation compiled once into the fields to fetch and write, so a hot
//! operation skips parsing, validation and the generic executor on every later request.
//!
//! async-graphql still parses and validates each operation the first time (and answers every
//! operation this module does not plan: variables other than built-in scalars, directives,
//! introspection, interfaces and unions). Once an operation has run through it without an
//! error, its plan is compiled; later requests with the same text are fetched level by level
//! and written straight into the response bytes. Their variables are coerced per request;
//! a value the plan cannot be sure async-graphql would accept as is (a null, a float for an
//! Int, an undeclared variable) sends that request through async-graphql.

mod exec;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql_parser::Positioned;
use async_graphql_parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, OperationType, Selection as Item,
    SelectionSet,
};
use async_graphql_value::Name;
use serde_json::Value;

use crate::blueprint::{Binding, FieldPlan, Lookup, TypeDef, TypeDefKind};
use crate::compile::named;
use crate::resolve::Engine;
use crate::resolve::value::{Out, OutKind};
pub use exec::execute;

/// A compiled operation.
pub struct Plan {
    /// The operation's variables: built-in scalars only.
    variables: Vec<Variable>,
    root: Selection,
    /// False once a run read a binding without a cache policy (or one that reads the
    /// caller): its responses are never replayed, so their key is not even built.
    replayable: std::sync::atomic::AtomicBool,
    /// Size of the last answer, so the next one's buffer is allocated once.
    size_hint: std::sync::atomic::AtomicUsize,
}

/// A variable a plan accepts: `Int`, `Float`, `String`, `Boolean` or `ID`, with an optional
/// default. Anything else is left to async-graphql.
struct Variable {
    name: String,
    scalar: String,
    default: Option<Value>,
}

impl Variable {
    fn new(d: &async_graphql_parser::types::VariableDefinition) -> Option<Variable> {
        if !d.directives.is_empty() {
            return None;
        }
        let ty = &d.var_type.node;
        let async_graphql_parser::types::BaseType::Named(scalar) = &ty.base else {
            return None;
        };
        if !matches!(
            scalar.as_str(),
            "Int" | "Float" | "String" | "Boolean" | "ID"
        ) {
            return None;
        }
        let default = match &d.default_value {
            Some(v) => Some(v.node.clone().into_json().ok()?),
            None => None,
        };
        Some(Variable {
            name: d.name.node.to_string(),
            scalar: scalar.to_string(),
            default,
        })
    }

    /// The value as async-graphql would coerce it, or `None` when it might not simply
    /// accept it (the request then goes through async-graphql, which says what is wrong).
    fn coerce(&self, given: Option<&Value>) -> Option<Value> {
        let v = match given {
            None => self.default.clone()?,
            Some(v) => v.clone(),
        };
        match (self.scalar.as_str(), &v) {
            // A null is an error where the variable meets a non-null argument: the plan does
            // not know where it goes, so async-graphql decides.
            (_, Value::Null) => None,
            ("Int", Value::Number(n)) => n
                .as_i64()
                .filter(|i| i32::try_from(*i).is_ok())
                .map(Value::from),
            ("Float", Value::Number(_)) | ("String" | "ID", Value::String(_)) => Some(v),
            ("Boolean", Value::Bool(_)) => Some(v),
            ("ID", Value::Number(n)) => n.as_i64().map(|i| Value::from(i.to_string())),
            _ => None,
        }
    }
}

impl Plan {
    /// This request's variables, coerced; `None` when the plan cannot take them.
    pub fn variables(&self, given: Option<&Value>) -> Option<serde_json::Map<String, Value>> {
        let given = match given {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return None,
        };
        if let Some(m) = given
            && m.keys()
                .any(|k| !self.variables.iter().any(|v| &v.name == k))
        {
            return None;
        }
        self.variables
            .iter()
            .map(|v| {
                Some((
                    v.name.clone(),
                    v.coerce(given.and_then(|m| m.get(&v.name)))?,
                ))
            })
            .collect()
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
}

/// The fields selected on one object type.
struct Selection {
    /// Unique among every selection ever compiled: the key of its serialized fields in an
    /// answer's derived values.
    id: u64,
    fields: Vec<PlanField>,
    /// Positions of the fields whose value is not a function of the row alone (bound
    /// fields, nested objects); the others can be serialized once per shared answer.
    nested: Vec<usize>,
    /// False when a field always answers with an error (a non-public field): such a
    /// selection is written field by field.
    projectable: bool,
}

static NEXT_SELECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Selection {
    fn new(fields: Vec<PlanField>) -> Selection {
        let nested = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind.is_nested())
            .map(|(i, _)| i)
            .collect();
        let projectable = !fields.iter().any(|f| matches!(f.kind, Kind::Forbidden));
        Selection {
            id: NEXT_SELECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            fields,
            nested,
            projectable,
        }
    }
}

struct PlanField {
    /// `"key":`, ready to write.
    key: Vec<u8>,
    /// The response key, for error paths.
    name: Arc<str>,
    kind: Kind,
}

enum Kind {
    /// `__typename`: the JSON string, ready to write.
    Typename(Vec<u8>),
    /// Read from the parent row; `children` when the value is an object or a list of them.
    Property {
        lookup: Lookup,
        out: Out,
        suppress: Option<i64>,
        children: Option<Selection>,
    },
    Const {
        value: Value,
        out: Out,
    },
    Bound {
        binding: Arc<Binding>,
        /// The arguments written as constants (and argument defaults).
        args: Value,
        /// Arguments that read operation variables, filled in per request.
        var_args: Vec<(String, async_graphql_value::Value)>,
        out: Out,
        children: Option<Selection>,
    },
    Namespace {
        children: Selection,
    },
    /// A non-public field an interface requires: null with FORBIDDEN.
    Forbidden,
}

impl Kind {
    /// Whether the value needs more than the parent row: a fetch, or a level of its own.
    pub(super) fn is_nested(&self) -> bool {
        matches!(
            self,
            Kind::Bound { .. }
                | Kind::Namespace { .. }
                | Kind::Property {
                    children: Some(_),
                    ..
                }
        )
    }
}

/// What was learned of an operation: its plan, or `None` when it cannot be planned.
type Learned = Option<Arc<Plan>>;

/// Compiles plans against one engine's blueprint.
pub struct Planner {
    engine: Arc<Engine>,
    types: HashMap<String, usize>,
    /// Operations sent without `operationName`, by their text: looked up without building
    /// a key.
    unnamed: moka::sync::Cache<Arc<str>, Learned, rustc_hash::FxBuildHasher>,
    /// Operations picked by name, by text and name.
    named: moka::sync::Cache<(Arc<str>, Arc<str>), Learned, rustc_hash::FxBuildHasher>,
}

impl Planner {
    pub fn new(engine: Arc<Engine>) -> Planner {
        let types = engine
            .blueprint
            .types
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Planner {
            engine,
            types,
            unnamed: moka::sync::Cache::builder()
                .max_capacity(4096)
                .build_with_hasher(rustc_hash::FxBuildHasher),
            named: moka::sync::Cache::builder()
                .max_capacity(4096)
                .build_with_hasher(rustc_hash::FxBuildHasher),
        }
    }

    /// The plan of an operation seen before: `Some(None)` when it cannot be planned.
    pub fn get(&self, query: &str, operation: Option<&str>) -> Option<Option<Arc<Plan>>> {
        match operation {
            None => self.unnamed.get(query),
            Some(name) => self.named.get(&(Arc::from(query), Arc::from(name))),
        }
    }

    /// Compiles `query` after async-graphql ran it without an error.
    pub fn learn(&self, query: &str, operation: Option<&str>) {
        let plan = async_graphql_parser::parse_query(query)
            .ok()
            .and_then(|doc| self.compile(&doc, operation))
            .map(Arc::new);
        match operation {
            None => self.unnamed.insert(query.into(), plan),
            Some(name) => self.named.insert((query.into(), name.into()), plan),
        }
    }

    fn compile(&self, doc: &ExecutableDocument, operation: Option<&str>) -> Option<Plan> {
        let op = match (&doc.operations, operation) {
            (DocumentOperations::Single(op), _) => op,
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
            _ => return None,
        };
        let op = &op.node;
        if op.ty != OperationType::Query || !op.directives.is_empty() {
            return None;
        }
        let variables = op
            .variable_definitions
            .iter()
            .map(|d| Variable::new(&d.node))
            .collect::<Option<Vec<_>>>()?;
        let query = self.type_def(&self.engine.blueprint.query_type)?;
        let root = self.selection(
            &op.selection_set.node,
            query,
            &doc.fragments,
            &mut HashSet::new(),
        )?;
        Some(Plan {
            variables,
            root: Selection::new(root),
            replayable: std::sync::atomic::AtomicBool::new(true),
            size_hint: Default::default(),
        })
    }

    fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types
            .get(name)
            .map(|&i| &self.engine.blueprint.types[i])
    }

    fn selection(
        &self,
        set: &SelectionSet,
        ty: &TypeDef,
        fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
        seen: &mut HashSet<Vec<u8>>,
    ) -> Option<Vec<PlanField>> {
        let TypeDefKind::Object { fields, implements } = &ty.kind else {
            return None;
        };
        let applies = |cond: &str| cond == ty.name || implements.iter().any(|i| i == cond);
        let mut out = Vec::new();
        for item in &set.items {
            match &item.node {
                Item::Field(f) => {
                    let f = &f.node;
                    if !f.directives.is_empty() {
                        return None;
                    }
                    let name: &str = f.name.node.as_str();
                    let response_key = f.response_key().node.as_str();
                    let key =
                        format!("{}:", serde_json::to_string(response_key).ok()?).into_bytes();
                    // Merging repeated keys is left to async-graphql.
                    if !seen.insert(key.clone()) {
                        return None;
                    }
                    let kind = if name == "__typename" {
                        Kind::Typename(serde_json::to_vec(&ty.name).ok()?)
                    } else {
                        let def = fields.iter().find(|d| d.name == name)?;
                        self.field(def, f, fragments)?
                    };
                    out.push(PlanField {
                        key,
                        name: response_key.into(),
                        kind,
                    });
                }
                Item::FragmentSpread(s) => {
                    let frag = &fragments.get(&s.node.fragment_name.node)?.node;
                    if !s.node.directives.is_empty() || !frag.directives.is_empty() {
                        return None;
                    }
                    if applies(frag.type_condition.node.on.node.as_str()) {
                        out.extend(self.selection(
                            &frag.selection_set.node,
                            ty,
                            fragments,
                            seen,
                        )?);
                    }
                }
                Item::InlineFragment(i) => {
                    if !i.node.directives.is_empty() {
                        return None;
                    }
                    if i.node
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| applies(c.node.on.node.as_str()))
                    {
                        out.extend(self.selection(
                            &i.node.selection_set.node,
                            ty,
                            fragments,
                            seen,
                        )?);
                    }
                }
            }
        }
        Some(out)
    }

    fn field(
        &self,
        def: &crate::blueprint::FieldDef,
        f: &async_graphql_parser::types::Field,
        fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
    ) -> Option<Kind> {
        if !def.public {
            return Some(Kind::Forbidden);
        }
        let kind = crate::schema::out_kind(&self.engine, &def.ty);
        if matches!(kind, OutKind::Abstract { .. }) {
            return None;
        }
        let children = match kind {
            OutKind::Object => {
                let child = self.type_def(named(&def.ty))?;
                if !child.public {
                    return None;
                }
                Some(Selection::new(self.selection(
                    &f.selection_set.node,
                    child,
                    fragments,
                    &mut HashSet::new(),
                )?))
            }
            _ => None,
        };
        let enum_values = match (&kind, self.type_def(named(&def.ty)).map(|t| &t.kind)) {
            (OutKind::Enum, Some(TypeDefKind::Enum { values })) => {
                Some(values.iter().map(|v| v.name.clone()).collect())
            }
            _ => None,
        };
        let out = Out {
            enum_values,
            ty: def.ty.clone(),
            kind,
            field: def.name.as_str().into(),
        };
        Some(match &def.plan {
            FieldPlan::Property(lookup) => Kind::Property {
                lookup: lookup.clone(),
                out,
                suppress: def.suppress_below,
                children,
            },
            FieldPlan::Const(value) if children.is_none() => Kind::Const {
                value: value.clone(),
                out,
            },
            FieldPlan::Const(_) => return None,
            FieldPlan::Namespace => Kind::Namespace {
                children: children?,
            },
            FieldPlan::Bound(id) => {
                let mut args = serde_json::Map::new();
                let mut var_args = Vec::new();
                for (name, value) in &f.arguments {
                    match value.node.clone().into_const() {
                        Some(c) => {
                            args.insert(name.node.to_string(), c.into_json().ok()?);
                        }
                        None => var_args.push((name.node.to_string(), value.node.clone())),
                    }
                }
                for a in &def.args {
                    if !args.contains_key(&a.name)
                        && let Some(d) = &a.default
                    {
                        args.insert(a.name.clone(), d.clone().into_json().ok()?);
                    }
                }
                Kind::Bound {
                    binding: self.engine.blueprint.bindings[*id].clone(),
                    args: Value::Object(args),
                    var_args,
                    out,
                    children,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn var(scalar: &str, default: Option<Value>) -> Variable {
        Variable {
            name: "v".into(),
            scalar: scalar.into(),
            default,
        }
    }

    #[test]
    fn variables_are_taken_only_as_async_graphql_would_simply_accept_them() {
        let int = var("Int", None);
        assert_eq!(int.coerce(Some(&json!(7))), Some(json!(7)));
        assert_eq!(
            int.coerce(Some(&json!(3_000_000_000u64))),
            None,
            "Int is 32-bit"
        );
        assert_eq!(int.coerce(Some(&json!(1.5))), None);
        assert_eq!(int.coerce(Some(&json!("7"))), None);
        assert_eq!(int.coerce(Some(&Value::Null)), None, "non-null");
        assert_eq!(int.coerce(None), None, "missing, no default");
        let with_default = var("Int", Some(json!(3)));
        assert_eq!(with_default.coerce(None), Some(json!(3)));
        assert_eq!(
            with_default.coerce(Some(&Value::Null)),
            None,
            "async-graphql decides"
        );
        let id = var("ID", None);
        assert_eq!(id.coerce(Some(&json!(5))), Some(json!("5")));
        assert_eq!(id.coerce(Some(&json!(true))), None);
        let float = var("Float", None);
        assert_eq!(float.coerce(Some(&json!(2))), Some(json!(2)));
        let boolean = var("Boolean", None);
        assert_eq!(boolean.coerce(Some(&json!(1))), None);
    }
}
