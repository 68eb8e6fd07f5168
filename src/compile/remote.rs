//! Compiling `@graphql(connector:, field:, args:, entity:)`: a field answered by a remote
//! GraphQL service (`[graphql]` connector), its selection forwarded by `plan::remote`.

use std::sync::Arc;

use async_graphql_value::ConstValue;

use super::binding::{FieldCx, NEXT_BINDING, position_in};
use super::directives::Args;
use super::template::{Scope, Template};
use crate::blueprint::{Binding, BindingPlaces, GraphqlOperation, Operation, RemoteEntity};
use crate::config::{CachePolicy, ConnectorKind};

impl super::fields::Cx<'_> {
    pub(super) fn graphql_binding(&mut self, args: &Args, f: &FieldCx) -> Option<usize> {
        args.check_names(&["connector", "field", "args", "entity"], &mut self.diags);
        let (connector, name, at) = self.connector(args)?;
        let conn = self.connectors.get(connector)?;
        if !matches!(conn.kind, ConnectorKind::Graphql { .. }) {
            self.diags.push(
                args.diag_at(
                    at,
                    format!(
                        "connector '{name}' is [{}]; @graphql needs a [graphql] connector",
                        conn.kind.name()
                    ),
                )
                .hint("write a connector file with [graphql] url = \"https://host/graphql\""),
            );
            return None;
        }
        let before = self.diags.len();
        let field = match args.string("field", false, &mut self.diags) {
            Some((field, at)) => {
                if !crate::blueprint::is_name(&field) {
                    self.diags.push(
                        args.diag_at(at, format!("field: '{field}' is not a GraphQL name"))
                            .hint("name the remote field, e.g. field: \"districtStats\""),
                    );
                }
                field
            }
            None => f.field.to_string(),
        };
        let mut templates: Vec<Template> = Vec::new();
        let remote_args = match args.get("args") {
            None => None,
            Some(value) => {
                let ConstValue::Object(entries) = &value.node else {
                    self.diags.push(
                        args.diag_at(value, "args: maps remote argument names to templates")
                            .hint("write args: {code: \"{{parent.code}}\"}"),
                    );
                    return None;
                };
                let mut out = Vec::new();
                for (remote, v) in entries {
                    let ConstValue::String(text) = v else {
                        self.diags.push(
                            args.diag_at(value, format!("args: {remote} is not a string template"))
                                .hint("write the value as a string: \"{{args.id}}\" keeps the argument's type"),
                        );
                        continue;
                    };
                    let Some(t) = self.template(args, value, text) else {
                        continue;
                    };
                    self.check_placeholders(args, value, text, &t, f);
                    templates.push(t.clone());
                    out.push((remote.to_string(), t));
                }
                Some(out)
            }
        };
        let entity = match args.string("entity", false, &mut self.diags) {
            None => None,
            Some((typename, at)) => {
                if f.is_root {
                    self.diags.push(
                        args.diag_at(
                            at,
                            format!(
                                "{}.{} is a root field: an entity field needs a parent",
                                f.owner, f.field
                            ),
                        )
                        .hint("put entity fields on the type with @key, e.g. District"),
                    );
                }
                match self.type_keys.first() {
                    Some(key) => Some(RemoteEntity {
                        typename,
                        key: key.clone(),
                    }),
                    None => {
                        self.diags.push(
                            args.diag_at(at, format!("@graphql(entity:) on {}.{}: {} has no @key", f.owner, f.field, f.owner))
                                .hint("add @key(fields: \"code\") to the type: its key fields make the representations"),
                        );
                        None
                    }
                }
            }
        };
        if entity.is_some() && remote_args.is_some() {
            self.diags.push(
                args.diag("@graphql takes entity: or args:, not both")
                    .hint("an entity field is read through _entities by the type's key"),
            );
        }
        if self.diags.len() > before {
            return None;
        }
        let uses_auth = templates
            .iter()
            .any(|t| t.placeholders().any(|p| p.scope == Scope::Auth));
        let shareable = !f.mutation;
        let cache = if shareable {
            f.cache.or(self.type_cache).unwrap_or(conn.cache)
        } else {
            CachePolicy::default()
        };
        let args_at = args.get("args");
        let places = BindingPlaces {
            directive: args.at(),
            batch: None,
            parents: templates
                .iter()
                .flat_map(|t| {
                    t.placeholders()
                        .filter(|p| p.scope == Scope::Parent)
                        .map(|p| {
                            let at = args_at.map(|a| position_in(a, "", 0)).unwrap_or(args.at());
                            (p.clone(), at)
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
        };
        let id = self.bindings.len();
        self.bindings.push(Arc::new(Binding {
            places,
            id,
            uid: NEXT_BINDING.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            name: format!("{}.{}", f.owner, f.field),
            connector,
            operation: Operation::Graphql(GraphqlOperation {
                field,
                args: remote_args,
                entity,
                mutation: f.mutation,
            }),
            batch: None,
            shareable,
            cache,
            uses_auth,
        }));
        Some(id)
    }
}
