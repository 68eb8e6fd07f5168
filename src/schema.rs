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
    // Fields an interface declares must stay on its implementors: a non-public one is kept
    // there and denied at resolve time (null with FORBIDDEN) instead of being left out.
    let interface_fields: HashSet<(&str, &str)> = bp
        .types
        .iter()
        .filter_map(|t| match &t.kind {
            TypeDefKind::Interface { fields, .. } => Some(
                fields
                    .iter()
                    .map(move |f| (t.name.as_str(), f.name.as_str())),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    let declared_by_interface = |implements: &[String], f: &FieldDef| {
        implements
            .iter()
            .any(|i| interface_fields.contains(&(i.as_str(), f.name.as_str())))
    };
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
                for f in fields {
                    if visible(f) {
                        o = o.field(field(&engine, f));
                    } else if declared_by_interface(implements, f) && !hidden.contains(named(&f.ty))
                    {
                        o = o.field(forbidden(f));
                    }
                }
                if t.name == bp.query_type && !fields.iter().any(|f| f.name == "sources") {
                    o = o.field(sources_field(&engine));
                    builder = register_health_types(builder);
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
                for f in fields.iter().filter(|f| !hidden.contains(named(&f.ty))) {
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
    // Depth, fields and directives are checked before a document reaches the schema
    // (`server::limits`), in linear time; async-graphql's own checks expand fragments. Its
    // recursion check stays, as the bound of its recursive validator.
    builder
        .limit_recursive_depth(bp.limits.max_nesting())
        .finish()
        .map_err(|e| e.0)
}

/// A non-public field that an interface requires: present, always null with FORBIDDEN.
fn forbidden(def: &FieldDef) -> Field {
    let mut f = Field::new(&def.name, type_ref(&def.ty), |ctx| {
        let e = crate::error::graphql_error(
            crate::error::ErrorCode::Forbidden,
            "this field is not public",
        );
        ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
        FieldFuture::Value(None)
    });
    if let Some(d) = &def.description {
        f = f.description(d);
    }
    for a in &def.args {
        f = f.argument(input(a));
    }
    f
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

pub(crate) fn out_kind(engine: &Engine, ty: &Type) -> OutKind {
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
        enum_values: None,
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

/// `Query.sources`: the health of every connector (added unless the schema defines it).
fn sources_field(engine: &Arc<Engine>) -> Field {
    let engine = engine.clone();
    Field::new(
        "sources",
        TypeRef::named_nn_list_nn("SourceHealth"),
        move |ctx| {
            // Live health is never served from the response cache.
            if let Ok(state) = ctx.data::<Arc<crate::resolve::request::RequestState>>() {
                state.mark_uncacheable();
            }
            let items: Vec<FieldValue> = engine
                .sources
                .iter()
                .map(|s| FieldValue::owned_any(Node::single(s.health_json())))
                .collect();
            FieldFuture::Value(Some(FieldValue::list(items)))
        },
    )
    .description(
        "Kesehatan setiap sumber data OPD: status, keberhasilan terakhir, latensi, sirkuit",
    )
}

fn register_health_types(
    builder: async_graphql::dynamic::SchemaBuilder,
) -> async_graphql::dynamic::SchemaBuilder {
    let prop = |name: &'static str, ty: TypeRef, desc: &'static str| {
        let kind = match &ty {
            TypeRef::NonNull(inner) if matches!(inner.as_ref(), TypeRef::Named(n) if n == "String") => {
                OutKind::String
            }
            TypeRef::Named(n) if n == "String" => OutKind::String,
            TypeRef::Named(n) if n == "Float" => OutKind::Float,
            TypeRef::NonNull(inner) if matches!(inner.as_ref(), TypeRef::Named(n) if n == "Int") => {
                OutKind::Int
            }
            TypeRef::Named(n) if n == "Int" => OutKind::Int,
            _ => OutKind::Enum,
        };
        Field::new(name, ty, move |ctx| {
            let v = ctx
                .parent_value
                .try_downcast_ref::<Node>()
                .ok()
                .and_then(|n| n.row().get(name).and_then(|v| value::scalar(&kind, v)));
            FieldFuture::Value(v.map(FieldValue::value))
        })
        .description(desc)
    };
    let health = Object::new("SourceHealth")
        .description("Keadaan satu sumber data (konektor) menurut panggilan terakhirnya")
        .field(prop(
            "name",
            TypeRef::named_nn(TypeRef::STRING),
            "Nama konektor",
        ))
        .field(prop(
            "title",
            TypeRef::named_nn(TypeRef::STRING),
            "Judul sumber data",
        ))
        .field(prop(
            "opd",
            TypeRef::named_nn(TypeRef::STRING),
            "OPD pemilik",
        ))
        .field(prop(
            "kind",
            TypeRef::named_nn(TypeRef::STRING),
            "Jenis konektor: postgres, mysql, sqlite, http, file",
        ))
        .field(prop(
            "status",
            TypeRef::named_nn("SourceStatus"),
            "Status: UP, DEGRADED atau DOWN",
        ))
        .field(prop(
            "lastSuccessAt",
            TypeRef::named(TypeRef::STRING),
            "Waktu panggilan berhasil terakhir (RFC 3339)",
        ))
        .field(prop(
            "latencyMs",
            TypeRef::named(TypeRef::FLOAT),
            "Latensi panggilan terakhir (milidetik)",
        ))
        .field(prop(
            "circuit",
            TypeRef::named_nn("CircuitState"),
            "Keadaan pemutus sirkuit",
        ))
        .field(prop(
            "lastError",
            TypeRef::named(TypeRef::STRING),
            "Kode galat panggilan terakhir, bila gagal",
        ))
        .field(prop(
            "inFlight",
            TypeRef::named_nn(TypeRef::INT),
            "Panggilan ke sumber yang sedang berjalan",
        ))
        .field(prop(
            "concurrencyInUse",
            TypeRef::named_nn(TypeRef::INT),
            "Slot panggilan serentak yang sedang terpakai",
        ))
        .field(prop(
            "concurrencyLimit",
            TypeRef::named_nn(TypeRef::INT),
            "Batas panggilan serentak konektor (max_concurrency)",
        ))
        .field(prop(
            "poolOpen",
            TypeRef::named(TypeRef::INT),
            "Koneksi basis data yang terbuka (konektor SQL dan berkas)",
        ))
        .field(prop(
            "poolIdle",
            TypeRef::named(TypeRef::INT),
            "Koneksi terbuka yang menganggur di pool",
        ))
        .field(prop(
            "poolMax",
            TypeRef::named(TypeRef::INT),
            "Batas koneksi pool (max_connections)",
        ))
        .field(prop(
            "poolRecycles",
            TypeRef::named(TypeRef::INT),
            "Berapa kali pool diganti baru karena tidak ada koneksi yang bebas",
        ))
        .field(prop(
            "poolRecycledAt",
            TypeRef::named(TypeRef::STRING),
            "Waktu pool terakhir diganti baru (RFC 3339)",
        ));
    let status = Enum::new("SourceStatus")
        .description("Status sumber data")
        .item(EnumItem::new("UP").description("Menjawab normal"))
        .item(EnumItem::new("DEGRADED").description("Gagal baru-baru ini, masih dicoba"))
        .item(EnumItem::new("DOWN").description(
            "Sirkuit terbuka: tidak dipanggil sementara, data basi dilayani bila ada",
        ));
    let circuit = Enum::new("CircuitState")
        .description("Keadaan pemutus sirkuit")
        .item(EnumItem::new("CLOSED").description("Panggilan diteruskan"))
        .item(EnumItem::new("OPEN").description("Panggilan ditolak seketika"))
        .item(EnumItem::new("HALF_OPEN").description("Satu panggilan percobaan"));
    builder.register(health).register(status).register(circuit)
}
