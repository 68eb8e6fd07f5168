//! Blueprint -> `async_graphql::dynamic::Schema`: one dynamic type per SDL type, one resolver
//! closure per field, built once. Binding directives never reach the served schema.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Interface,
    InterfaceField, Object, Scalar, Schema, TypeRef, Union,
};
use async_graphql_parser::types::{BaseType, Type};
use serde_json::Value;

use crate::blueprint::{FieldDef, FieldPlan, InputDef, Lookup, TypeDefKind};
use crate::compile::named;
use crate::resolve::node::{Node, get_path};
use crate::resolve::value::{self, Out, OutKind};
use crate::resolve::{self, Engine};

pub fn type_ref(ty: &Type) -> TypeRef {
    let inner = match &ty.base {
        BaseType::Named(n) => TypeRef::Named(n.to_string().into()),
        BaseType::List(t) => TypeRef::List(Box::new(type_ref(t))),
    };
    if ty.nullable {
        inner
    } else {
        TypeRef::NonNull(Box::new(inner))
    }
}

/// Builds the schema served to public callers: types and fields marked `@access` above
/// PUBLIC are left out entirely, so they cannot be queried or introspected.
pub fn build(engine: Arc<Engine>) -> Result<Schema, String> {
    let bp = engine.blueprint.clone();
    let hidden: HashSet<&str> = bp
        .types
        .iter()
        .filter(|t| !t.public)
        .map(|t| t.name.as_str())
        .collect();
    let visible = |f: &FieldDef| f.public && !hidden.contains(named(&f.ty));
    let mut builder = Schema::build(&bp.query_type, bp.mutation_type.as_deref(), None);
    for t in bp.types.iter().filter(|t| t.public) {
        builder = match &t.kind {
            TypeDefKind::Object { fields, implements } => {
                let mut o = Object::new(&t.name);
                if let Some(d) = &t.description {
                    o = o.description(d);
                }
                for i in implements {
                    o = o.implement(i);
                }
                for f in fields.iter().filter(|f| visible(f)) {
                    o = o.field(field(&engine, f));
                }
                builder.register(o)
            }
            TypeDefKind::Interface {
                fields, implements, ..
            } => {
                let mut i = Interface::new(&t.name);
                if let Some(d) = &t.description {
                    i = i.description(d);
                }
                for imp in implements {
                    i = i.implement(imp);
                }
                for f in fields.iter().filter(|f| visible(f)) {
                    let mut field = InterfaceField::new(&f.name, type_ref(&f.ty));
                    if let Some(d) = &f.description {
                        field = field.description(d);
                    }
                    for a in &f.args {
                        field = field.argument(input(a));
                    }
                    i = i.field(field);
                }
                builder.register(i)
            }
            TypeDefKind::Union { members, .. } => {
                let mut u = Union::new(&t.name);
                if let Some(d) = &t.description {
                    u = u.description(d);
                }
                for m in members.iter().filter(|m| !hidden.contains(m.as_str())) {
                    u = u.possible_type(m);
                }
                builder.register(u)
            }
            TypeDefKind::Enum { values } => {
                let mut e = Enum::new(&t.name);
                if let Some(d) = &t.description {
                    e = e.description(d);
                }
                for v in values {
                    let mut item = EnumItem::new(&v.name);
                    if let Some(d) = &v.description {
                        item = item.description(d);
                    }
                    if let Some(r) = &v.deprecation {
                        item = item.deprecation(Some(r.as_str()));
                    }
                    e = e.item(item);
                }
                builder.register(e)
            }
            TypeDefKind::InputObject { fields } => {
                let mut i = InputObject::new(&t.name);
                if let Some(d) = &t.description {
                    i = i.description(d);
                }
                for f in fields {
                    i = i.field(input(f));
                }
                builder.register(i)
            }
            TypeDefKind::Scalar { specified_by } => {
                let mut s = Scalar::new(&t.name);
                if let Some(d) = &t.description {
                    s = s.description(d);
                }
                if let Some(u) = specified_by {
                    s = s.specified_by_url(u);
                }
                builder.register(s)
            }
        };
    }
    let limits = &bp.limits;
    builder
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(16)
        .finish()
        .map_err(|e| e.0)
}

fn input(def: &InputDef) -> InputValue {
    let mut v = InputValue::new(&def.name, type_ref(&def.ty));
    if let Some(d) = &def.description {
        v = v.description(d);
    }
    if let Some(default) = &def.default {
        v = v.default_value(default.clone());
    }
    v
}

fn out_kind(engine: &Engine, ty: &Type) -> OutKind {
    let name = named(ty);
    match name {
        "Int" => OutKind::Int,
        "Float" => OutKind::Float,
        "String" => OutKind::String,
        "Boolean" => OutKind::Boolean,
        "ID" => OutKind::Id,
        _ => match engine
            .blueprint
            .types
            .iter()
            .find(|t| t.name == name)
            .map(|t| &t.kind)
        {
            Some(TypeDefKind::Enum { .. }) => OutKind::Enum,
            Some(TypeDefKind::Object { .. }) => OutKind::Object,
            Some(
                TypeDefKind::Interface { discriminator, .. }
                | TypeDefKind::Union { discriminator, .. },
            ) => OutKind::Abstract {
                discriminator: discriminator.as_str().into(),
            },
            _ => OutKind::CustomScalar,
        },
    }
}

fn field(engine: &Arc<Engine>, def: &FieldDef) -> Field {
    let out = Arc::new(Out {
        ty: def.ty.clone(),
        kind: out_kind(engine, &def.ty),
        field: def.name.as_str().into(),
    });
    let mut f = match &def.plan {
        FieldPlan::Bound(id) => {
            let engine = engine.clone();
            let binding = engine.blueprint.bindings[*id].clone();
            Field::new(&def.name, type_ref(&def.ty), move |ctx| {
                let (engine, binding, out) = (engine.clone(), binding.clone(), out.clone());
                FieldFuture::new(async move {
                    match resolve::bound(&engine, &binding, &out, &ctx).await {
                        Ok(v) => Ok(v),
                        Err(e) => {
                            // Report with the field's path and answer null, so the key stays in
                            // `data` (the dynamic executor would drop the key and the path).
                            ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
                            Ok(None)
                        }
                    }
                })
            })
        }
        FieldPlan::Const(v) => {
            let v = v.clone();
            Field::new(&def.name, type_ref(&def.ty), move |_| {
                FieldFuture::Value(value::from_json(&out, &out.ty, &v))
            })
        }
        FieldPlan::Namespace => Field::new(&def.name, type_ref(&def.ty), |_| {
            FieldFuture::Value(Some(FieldValue::owned_any(Node::single(Value::Object(
                Default::default(),
            )))))
        }),
        FieldPlan::Property(lookup) => {
            let lookup = Arc::new(match lookup {
                Lookup::Keys(k) => Lookup::Keys(k.clone()),
                Lookup::Path(p) => Lookup::Path(p.clone()),
            });
            let suppress = def.suppress_below;
            Field::new(&def.name, type_ref(&def.ty), move |ctx| {
                let Ok(node) = ctx.parent_value.try_downcast_ref::<Node>() else {
                    return FieldFuture::Value(None);
                };
                let row = node.row();
                let v = match lookup.as_ref() {
                    Lookup::Keys(keys) => keys.iter().find_map(|k| row.get(k)),
                    Lookup::Path(p) => get_path(row, p),
                };
                let v = match (v, suppress) {
                    (Some(v), Some(below))
                        if v.as_f64().is_some_and(|n| n >= 1.0 && n < below as f64) =>
                    {
                        None
                    }
                    (v, _) => v,
                };
                FieldFuture::Value(v.and_then(|v| value::from_json(&out, &out.ty, v)))
            })
        }
    };
    if let Some(d) = &def.description {
        f = f.description(d);
    }
    if let Some(r) = &def.deprecation {
        f = f.deprecation(Some(r.as_str()));
    }
    for a in &def.args {
        f = f.argument(input(a));
    }
    f
}
