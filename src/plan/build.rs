//! Compiling one operation, for one view and one set of `@include`/`@skip` conditions, into
//! the [`Selection`] tree the executor runs: fields collected and merged by response key
//! in selection order (the spec's CollectFields), fragments and inline fragments applied by
//! type, interfaces and unions compiled per possible type.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql_parser::Positioned;
use async_graphql_parser::types::{
    ExecutableDocument, Field, OperationType, Selection as Item, SelectionSet,
};
use async_graphql_value::{Name, Value as GqlValue};
use serde_json::Value;

use super::input::Inputs;
use super::{Abstract, Kind, PlanField, Selection};
use crate::access::View;
use crate::blueprint::named;
use crate::blueprint::{FieldDef, FieldPlan, TypeDef, TypeDefKind};
use crate::resolve::Engine;
use crate::resolve::value::{Out, OutKind};

/// What compiling one operation reads.
pub(super) struct Builder<'a> {
    pub engine: &'a Engine,
    pub view: &'a View,
    pub types: &'a HashMap<String, usize>,
    pub doc: &'a Arc<ExecutableDocument>,
    /// The values of the variables `@include`/`@skip` read.
    pub conditions: &'a serde_json::Map<String, Value>,
}

pub(super) use super::Gap;

impl<'a> Builder<'a> {
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types
            .get(name)
            .and_then(|&i| self.engine.blueprint.types.get(i))
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            engine: self.engine,
            types: self.types,
        }
    }

    /// The root selection of `op`.
    pub fn root(&self, ty: OperationType, set: &'a SelectionSet) -> Result<Selection, Gap> {
        let root = match ty {
            OperationType::Query => self.engine.blueprint.query_type.as_str(),
            OperationType::Mutation => self
                .engine
                .blueprint
                .mutation_type
                .as_deref()
                .ok_or("the schema has no mutations")?,
            OperationType::Subscription => self
                .engine
                .blueprint
                .subscription_type
                .as_deref()
                .ok_or("the schema has no subscriptions")?,
        };
        let ty = self.type_def(root).ok_or("no root type")?;
        self.selection(&[set], ty, true)
    }

    /// The selection of `sets` (merged) on `ty`, an object, interface or union type.
    fn selection(
        &self,
        sets: &[&'a SelectionSet],
        ty: &TypeDef,
        root: bool,
    ) -> Result<Selection, Gap> {
        match &ty.kind {
            TypeDefKind::Object { .. } => {
                let fields = self.object_fields(sets, ty, None, root)?;
                Ok(Selection::new(fields, None))
            }
            TypeDefKind::Interface { discriminator, .. }
            | TypeDefKind::Union { discriminator, .. } => {
                let possible = self.possible_types(ty);
                let mut fields = Vec::new();
                for (i, t) in possible.iter().enumerate() {
                    let i = u16::try_from(i).map_err(|_| "too many possible types")?;
                    fields.extend(self.object_fields(sets, t, Some(i), false)?);
                }
                Ok(Selection::new(
                    fields,
                    Some(Abstract {
                        name: ty.name.as_str().into(),
                        discriminator: discriminator.as_str().into(),
                        types: possible.iter().map(|t| t.name.as_str().into()).collect(),
                    }),
                ))
            }
            _ => Err(format!("{} has no fields to select", ty.name).into()),
        }
    }

    /// The object types a value of `ty` can be, as this view sees them.
    fn possible_types(&self, ty: &TypeDef) -> Vec<&TypeDef> {
        let bp = &self.engine.blueprint;
        bp.types
            .iter()
            .filter(|t| self.view.reads(&t.access))
            .filter(|t| match (&ty.kind, &t.kind) {
                (TypeDefKind::Union { members, .. }, TypeDefKind::Object { .. }) => {
                    members.contains(&t.name)
                }
                (TypeDefKind::Interface { .. }, TypeDefKind::Object { implements, .. }) => {
                    implements.contains(&ty.name)
                }
                _ => false,
            })
            .collect()
    }

    /// Whether a fragment on `condition` applies to an object of type `ty`.
    fn applies(&self, condition: &str, ty: &TypeDef) -> bool {
        if condition == ty.name {
            return true;
        }
        let TypeDefKind::Object { implements, .. } = &ty.kind else {
            return false;
        };
        implements.iter().any(|i| i == condition)
            || self.type_def(condition).is_some_and(|c| match &c.kind {
                TypeDefKind::Union { members, .. } => members.contains(&ty.name),
                _ => false,
            })
    }

    /// The spec's CollectFields: the fields of `sets` that apply to `ty`, grouped by response
    /// key in the order each key first appears.
    fn collect(
        &self,
        sets: &[&'a SelectionSet],
        ty: &TypeDef,
        groups: &mut Vec<(&'a str, Vec<&'a Positioned<Field>>)>,
        visited: &mut HashSet<&'a str>,
    ) {
        for set in sets {
            for item in &set.items {
                match &item.node {
                    Item::Field(f) => {
                        if !self.included(&f.node.directives) {
                            continue;
                        }
                        let key = f.node.response_key().node.as_str();
                        match groups.iter_mut().find(|(k, _)| *k == key) {
                            Some((_, fs)) => fs.push(f),
                            None => groups.push((key, vec![f])),
                        }
                    }
                    Item::FragmentSpread(s) => {
                        let name = s.node.fragment_name.node.as_str();
                        if !self.included(&s.node.directives) || !visited.insert(name) {
                            continue;
                        }
                        let Some(frag) = self.doc.fragments.get(&s.node.fragment_name.node) else {
                            continue;
                        };
                        if self.applies(frag.node.type_condition.node.on.node.as_str(), ty) {
                            self.collect(&[&frag.node.selection_set.node], ty, groups, visited);
                        }
                    }
                    Item::InlineFragment(i) => {
                        if !self.included(&i.node.directives) {
                            continue;
                        }
                        if i.node
                            .type_condition
                            .as_ref()
                            .is_none_or(|c| self.applies(c.node.on.node.as_str(), ty))
                        {
                            self.collect(&[&i.node.selection_set.node], ty, groups, visited);
                        }
                    }
                }
            }
        }
    }

    /// `@skip(if:)` and `@include(if:)`, with this variant's condition values.
    fn included(&self, directives: &[Positioned<async_graphql_parser::types::Directive>]) -> bool {
        directives.iter().all(|d| {
            let name = d.node.name.node.as_str();
            if name != "skip" && name != "include" {
                return true;
            }
            let value = match d.node.get_argument("if").map(|v| &v.node) {
                Some(GqlValue::Boolean(b)) => *b,
                Some(GqlValue::Variable(v)) => self
                    .conditions
                    .get(v.as_str())
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                _ => false,
            };
            if name == "skip" { !value } else { value }
        })
    }

    fn object_fields(
        &self,
        sets: &[&'a SelectionSet],
        ty: &TypeDef,
        only: Option<u16>,
        root: bool,
    ) -> Result<Vec<PlanField>, Gap> {
        let TypeDefKind::Object { fields, .. } = &ty.kind else {
            return Err(format!("{} is not an object type", ty.name).into());
        };
        let mut groups = Vec::new();
        self.collect(sets, ty, &mut groups, &mut HashSet::new());
        let mut out = Vec::with_capacity(groups.len());
        for (key, group) in groups {
            let Some(first) = group.first() else { continue };
            let name = first.node.name.node.as_str();
            let kind = match name {
                "__typename" => {
                    Kind::Typename(serde_json::to_vec(&ty.name).map_err(|e| e.to_string())?)
                }
                "__schema" | "__type" if root => Kind::Introspection {
                    field: (*first).clone(),
                    doc: self.doc.clone(),
                },
                _ => {
                    let def = fields
                        .iter()
                        .find(|d| d.name == name)
                        .ok_or_else(|| format!("{}.{name} is not in the schema", ty.name))?;
                    self.field(def, &group)?
                }
            };
            let size = match fields.iter().find(|d| d.name == name) {
                Some(d) if matches!(d.ty.base, async_graphql_parser::types::BaseType::List(_)) => {
                    let default = d
                        .list_size
                        .unwrap_or(self.engine.blueprint.limits.default_list_size);
                    match &kind {
                        Kind::Bound { args, var_args, .. } => super::cost::Size::of_list(
                            args.as_object(),
                            var_args.iter().map(|v| (v.name.as_str(), &v.value)),
                            default,
                        ),
                        _ => super::cost::Size::of_list(None, [], default),
                    }
                }
                _ => super::cost::Size::One,
            };
            let non_null = match name {
                "__typename" | "__schema" => true,
                "__type" => false,
                _ => fields
                    .iter()
                    .find(|d| d.name == name)
                    .is_some_and(|d| !d.ty.nullable),
            };
            out.push(PlanField {
                key: format!(
                    "{}:",
                    serde_json::to_string(key).map_err(|e| e.to_string())?
                )
                .into_bytes(),
                name: key.into(),
                kind,
                only,
                non_null,
                at: (first.pos.line, first.pos.column),
                owner: ty.name.as_str().into(),
                field: format!("{}.{name}", ty.name).into(),
                size,
            });
        }
        Ok(out)
    }

    fn field(&self, def: &FieldDef, group: &[&'a Positioned<Field>]) -> Result<Kind, Gap> {
        let child_type = self.type_def(named(&def.ty));
        if !self.view.reads(&def.access) || child_type.is_some_and(|t| !self.view.reads(&t.access))
        {
            return Ok(Kind::Forbidden);
        }
        let kind = crate::schema::out_kind(&self.engine.blueprint, &def.ty);
        let sets: Vec<&'a SelectionSet> =
            group.iter().map(|f| &f.node.selection_set.node).collect();
        let children = match (&kind, child_type) {
            (OutKind::Object | OutKind::Abstract { .. }, Some(child)) => {
                if matches!(&def.ty.base, async_graphql_parser::types::BaseType::List(inner) if matches!(inner.base, async_graphql_parser::types::BaseType::List(_)))
                {
                    return Err(format!("{}: lists of lists of objects", def.name).into());
                }
                Some(self.selection(&sets, child, false)?)
            }
            _ => None,
        };
        let enum_values = match (&kind, child_type.map(|t| &t.kind)) {
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
        let suppress = match self.view.suppresses() {
            true => def.suppress.clone(),
            false => None,
        };
        let first = group.first().ok_or("empty field group")?;
        Ok(match &def.plan {
            FieldPlan::Property(lookup) => Kind::Property {
                lookup: lookup.clone(),
                out,
                suppress,
                children,
            },
            FieldPlan::Const(value) if children.is_none() => Kind::Const {
                value: value.clone(),
                out,
            },
            FieldPlan::Const(_) => {
                return Err(format!("{}: an object answered by @const", def.name).into());
            }
            FieldPlan::Namespace => Kind::Namespace {
                children: children.ok_or("a namespace field without a selection")?,
            },
            FieldPlan::Sources => Kind::Sources {
                children: children.ok_or("Query.sources without a selection")?,
            },
            FieldPlan::Builtin(which) => {
                let (args, var_args) = self.arguments(def, &first.node.arguments)?;
                Kind::Builtin {
                    which: *which,
                    args: Value::Object(args),
                    var_args,
                    out,
                    children: children.ok_or("a built-in field without a selection")?,
                }
            }
            FieldPlan::Bound(id) => {
                let (args, var_args) = self.arguments(def, &first.node.arguments)?;
                let binding = self
                    .engine
                    .blueprint
                    .bindings
                    .get(*id)
                    .ok_or("binding missing")?
                    .clone();
                let forward = matches!(binding.operation, crate::blueprint::Operation::Graphql(_))
                    .then(|| super::remote::forwarded(children.as_ref()).into());
                Kind::Bound {
                    binding,
                    args: Value::Object(args),
                    var_args,
                    out,
                    children,
                    page: def.page.clone(),
                    forward,
                }
            }
        })
    }

    /// A bound field's arguments: those written as constants, coerced now (with the
    /// defaults of arguments not given), and those that read variables, per request.
    #[allow(clippy::type_complexity)]
    fn arguments(
        &self,
        def: &FieldDef,
        given: &[(Positioned<Name>, Positioned<GqlValue>)],
    ) -> Result<(serde_json::Map<String, Value>, Vec<super::VarArg>), Gap> {
        let mut args = serde_json::Map::new();
        let mut var_args = Vec::new();
        for a in &def.args {
            let value = given
                .iter()
                .find(|(n, _)| n.node.as_str() == a.name)
                .map(|(_, v)| &v.node);
            match value {
                Some(v) => match v.clone().into_const() {
                    Some(c) => {
                        let json = c.into_json().map_err(|e| e.to_string())?;
                        let coerced = self
                            .inputs()
                            .coerce(&a.ty, &json)
                            .map_err(|e| Gap::Refused(format!("argument {}: {e}", a.name)))?;
                        args.insert(a.name.clone(), coerced);
                    }
                    None => var_args.push(super::VarArg {
                        name: a.name.clone(),
                        value: v.clone(),
                        ty: a.ty.clone(),
                        default: match &a.default {
                            Some(d) => Some(d.clone().into_json().map_err(|e| e.to_string())?),
                            None => None,
                        },
                    }),
                },
                None => {
                    if let Some(d) = &a.default {
                        args.insert(
                            a.name.clone(),
                            d.clone().into_json().map_err(|e| e.to_string())?,
                        );
                    }
                }
            }
        }
        Ok((args, var_args))
    }
}

/// The variables `@include(if:)` and `@skip(if:)` read anywhere in `doc`, in first-seen
/// order: a plan keeps one compiled variant per combination of their values.
pub(super) fn condition_variables(doc: &ExecutableDocument) -> Vec<Name> {
    fn walk(set: &SelectionSet, out: &mut Vec<Name>) {
        for item in &set.items {
            let (directives, children) = match &item.node {
                Item::Field(f) => (&f.node.directives, Some(&f.node.selection_set.node)),
                Item::FragmentSpread(s) => (&s.node.directives, None),
                Item::InlineFragment(i) => (&i.node.directives, Some(&i.node.selection_set.node)),
            };
            for d in directives {
                if let Some(Positioned {
                    node: GqlValue::Variable(v),
                    ..
                }) = d.node.get_argument("if")
                    && !out.contains(v)
                {
                    out.push(v.clone());
                }
            }
            if let Some(c) = children {
                walk(c, out);
            }
        }
    }
    let mut out = Vec::new();
    for (_, op) in doc.operations.iter() {
        walk(&op.node.selection_set.node, &mut out);
    }
    for f in doc.fragments.values() {
        walk(&f.node.selection_set.node, &mut out);
    }
    out
}
