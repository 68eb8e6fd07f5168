//! Blueprint -> one `async_graphql::dynamic::Schema` per view, built once at startup. They
//! parse and validate documents (with messages and suggestions from the caller's view) and
//! answer introspection; data is executed by `plan` alone, so their field resolvers are
//! never reached by a data operation. Binding directives never reach a served schema.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, InputObject, InputValue, Interface, InterfaceField, Object,
    Scalar, Schema, TypeRef, Union,
};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql_parser::types::{BaseType, Type};

use crate::access::View;
use crate::blueprint::named;
use crate::blueprint::{FieldDef, InputDef, TypeDefKind};
use crate::resolve::value::OutKind;

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

/// Marks a request that is to be parsed and validated only: the plan runs it.
pub struct ValidateOnly;

struct StopBeforeExecution;

impl ExtensionFactory for StopBeforeExecution {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(StopBeforeExecution)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for StopBeforeExecution {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        match ctx.data_opt::<ValidateOnly>() {
            Some(_) => async_graphql::Response::default(),
            None => next.run(ctx, operation_name).await,
        }
    }
}

/// Builds the schema of `view`: types and fields it may not read are left out entirely, so
/// they cannot be queried, introspected or suggested.
///
/// What a view shows: the one rule of both this schema and a subgraph's `_service.sdl`.
pub struct Shown<'a> {
    view: &'a View,
    /// The types the view may not read.
    pub hidden: HashSet<&'a str>,
    /// Fields an interface declares: (interface, field).
    interface_fields: HashSet<(&'a str, &'a str)>,
}

impl<'a> Shown<'a> {
    pub fn new(types: &'a [crate::blueprint::TypeDef], view: &'a View) -> Self {
        let hidden = types
            .iter()
            .filter(|t| !view.reads(&t.access))
            .map(|t| t.name.as_str())
            .collect();
        let interface_fields = types
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
        Shown {
            view,
            hidden,
            interface_fields,
        }
    }

    /// A field the view reads, of a type it reads.
    pub fn field(&self, f: &FieldDef) -> bool {
        self.view.reads(&f.access) && !self.hidden.contains(named(&f.ty))
    }

    /// A field of an object type implementing `implements`: fields an interface declares
    /// must stay on its implementors, so a hidden one is kept there and denied when run
    /// (null with FORBIDDEN) instead of being left out.
    pub fn object_field(&self, implements: &[String], f: &FieldDef) -> bool {
        self.field(f)
            || (!self.hidden.contains(named(&f.ty))
                && implements.iter().any(|i| {
                    self.interface_fields
                        .contains(&(i.as_str(), f.name.as_str()))
                }))
    }

    pub fn interface_field(&self, f: &FieldDef) -> bool {
        !self.hidden.contains(named(&f.ty))
    }

    pub fn type_name(&self, name: &str) -> bool {
        !self.hidden.contains(name)
    }
}

pub fn build(
    bp: &std::sync::Arc<crate::blueprint::Blueprint>,
    view: &View,
) -> Result<Schema, String> {
    let bp = bp.clone();
    let shown = Shown::new(&bp.types, view);
    let hidden = &shown.hidden;
    let visible = |f: &FieldDef| shown.field(f);
    // A root type none of whose fields the view reads is left out (an object without
    // fields is not a valid schema): the view has no mutations, or no subscriptions.
    let has_fields = |root: &Option<String>| {
        root.as_ref().filter(|name| {
            bp.types.iter().any(|t| {
                &t.name == *name
                    && view.reads(&t.access)
                    && matches!(&t.kind, TypeDefKind::Object { fields, .. } if fields.iter().any(visible))
            })
        })
        .cloned()
    };
    let mutation = has_fields(&bp.mutation_type);
    let subscription = has_fields(&bp.subscription_type);
    let mut builder = Schema::build(&bp.query_type, mutation.as_deref(), subscription.as_deref())
        .extension(StopBeforeExecution);
    for t in bp.types.iter().filter(|t| view.reads(&t.access)) {
        let root_left_out = [&bp.mutation_type, &bp.subscription_type]
            .iter()
            .zip([&mutation, &subscription])
            .any(|(declared, kept)| declared.as_ref() == Some(&t.name) && kept.is_none());
        if root_left_out {
            continue;
        }
        if Some(&t.name) == subscription.as_ref()
            && let TypeDefKind::Object { fields, .. } = &t.kind
        {
            builder = builder.register(subscription_type(&t.name, fields, &visible));
            continue;
        }
        builder = match &t.kind {
            TypeDefKind::Object { fields, implements } => {
                let mut o = Object::new(&t.name);
                if let Some(d) = &t.description {
                    o = o.description(d);
                }
                for i in implements {
                    o = o.implement(i);
                }
                for f in fields.iter().filter(|f| shown.object_field(implements, f)) {
                    o = o.field(field(f));
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
                for f in fields.iter().filter(|f| shown.interface_field(f)) {
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
                if t.name == crate::plan::upload::NAME {
                    // A file written into the document itself: refused by validation (a
                    // client's mistake) rather than when its plan is compiled.
                    let max = bp.limits.max_upload_bytes;
                    s = s.validator(move |v| {
                        v.clone()
                            .into_json()
                            .is_ok_and(|v| crate::plan::upload::coerce(&v, max).is_ok())
                    });
                }
                builder.register(s)
            }
        };
    }
    // Depth, fields and directives are checked before a document reaches the schema
    // (`server::limits`), in linear time; async-graphql's own checks expand fragments. Its
    // recursion check stays, as the bound of its recursive validator.
    if !bp.security.suggestions.contains(&view.tier()) {
        builder = builder.disable_suggestions();
    }
    builder
        .limit_recursive_depth(bp.limits.max_nesting())
        .finish()
        .map_err(|e| e.0)
}

/// The subscription root: its fields validate documents; events are run by the plan.
fn subscription_type(
    name: &str,
    fields: &[FieldDef],
    visible: &dyn Fn(&FieldDef) -> bool,
) -> async_graphql::dynamic::Subscription {
    use async_graphql::dynamic::{Subscription, SubscriptionField, SubscriptionFieldFuture};
    let mut s = Subscription::new(name);
    for def in fields.iter().filter(|f| visible(f)) {
        let mut f = SubscriptionField::new(&def.name, type_ref(&def.ty), |_| {
            SubscriptionFieldFuture::new(async {
                Err::<
                    futures::stream::Empty<
                        async_graphql::Result<async_graphql::dynamic::FieldValue<'static>>,
                    >,
                    _,
                >("events are run by the plan".into())
            })
        });
        if let Some(d) = &def.description {
            f = f.description(d);
        }
        for a in &def.args {
            f = f.argument(input(a));
        }
        s = s.field(f);
    }
    s
}

/// A field as the view's schema declares it. Data is run by the plan, never here.
fn field(def: &FieldDef) -> Field {
    let mut f = Field::new(&def.name, type_ref(&def.ty), |_| {
        FieldFuture::new(async {
            Err::<Option<async_graphql::dynamic::FieldValue>, _>(
                "data is executed by the plan, not by the schema".into(),
            )
        })
    });
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

pub(crate) fn out_kind(bp: &crate::blueprint::Blueprint, ty: &Type) -> OutKind {
    let name = named(ty);
    match name {
        "Int" => OutKind::Int,
        "Float" => OutKind::Float,
        "String" => OutKind::String,
        "Boolean" => OutKind::Boolean,
        "ID" => OutKind::Id,
        _ => match bp.types.iter().find(|t| t.name == name).map(|t| &t.kind) {
            Some(TypeDefKind::Enum { .. }) => OutKind::Enum,
            Some(TypeDefKind::Object { .. }) => OutKind::Object,
            Some(
                TypeDefKind::Interface { discriminator, .. }
                | TypeDefKind::Union { discriminator, .. },
            ) => OutKind::Abstract {
                discriminator: discriminator.as_str().into(),
            },
            _ => OutKind::of_scalar(name),
        },
    }
}
