//! Startup only: `schema.graphql` + `connectors/*.toml` + `simpul.toml` -> [`Blueprint`],
//! collecting every problem as a [`Diagnostic`] instead of stopping at the first.

mod binding;
pub mod directives;
pub mod federation;
mod fields;
mod health;
mod interfaces;
mod outbox;
mod page;
mod remote;
pub mod template;
mod upload;

use std::collections::HashMap;
use std::path::Path;

use async_graphql_parser::types::{ServiceDocument, Type, TypeKind, TypeSystemDefinition};
use async_graphql_parser::{Positioned, parse_schema};

use crate::blueprint::{Blueprint, EnumValueDef, InputDef, TypeDef, TypeDefKind};
use crate::config::{self, ConnectorConfig, env::EnvLookup};
use crate::diagnostic::{Diagnostic, sorted};
use directives::Args;

pub const SCHEMA_FILE: &str = "schema.graphql";
/// The alerts' types, `Query.alerts`, its mutations and subscriptions.
const ALERTS_SDL: &str = include_str!("alerts.graphql");
const BUILTIN_SCALARS: &[&str] = &["Int", "Float", "String", "Boolean", "ID"];

/// Compiles the deployment in `dir` with the process environment.
pub fn compile_dir(dir: &Path) -> Result<Blueprint, Vec<Diagnostic>> {
    compile_dir_with_env(dir, &config::env::process_env)
}

pub fn compile_dir_with_env(dir: &Path, env: EnvLookup) -> Result<Blueprint, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let gateway = config::load_gateway(dir, env, &mut diags);
    let connectors = config::load_connectors(dir, env, &mut diags);
    let sdl = match std::fs::read_to_string(dir.join(SCHEMA_FILE)) {
        Ok(s) => s,
        Err(e) => {
            diags.push(
                Diagnostic::new(SCHEMA_FILE, 1, 1, format!("cannot read {SCHEMA_FILE}: {e}"))
                    .hint("a deployment directory holds schema.graphql and connectors/*.toml"),
            );
            return Err(sorted(diags));
        }
    };
    let rules = crate::alerts::rule::load(dir, env, &mut diags);
    // The alerts' types and fields exist when the deployment has rules: appended, so the
    // positions of schema.graphql's own definitions stay as written.
    // The receipt types exist when a field uses @outbox; the alerts' when the deployment
    // has rules, or an outbox (a write given up on is an alert for the staff).
    let outbox_used = async_graphql_parser::parse_schema(&sdl).is_ok_and(|doc| outbox::used(&doc));
    let mut sdl = sdl;
    if !rules.is_empty() || outbox_used {
        sdl.push('\n');
        sdl.push_str(ALERTS_SDL);
    }
    if outbox_used {
        sdl.push('\n');
        sdl.push_str(outbox::SDL);
    }
    if gateway.federation {
        let plumbing = federation::plumbing(&sdl, "Query");
        sdl.push_str(&plumbing);
    }
    let blueprint = compile_schema(&sdl, connectors, &mut diags).map(
        |(q, m, sub, types, bindings, connectors, outboxes, entities)| Blueprint {
            entities,
            outboxes,
            dashboard: gateway.dashboard,
            query_type: q,
            mutation_type: m,
            subscription_type: sub,
            rules,
            state: gateway.state,
            types,
            bindings,
            connectors,
            limits: gateway.limits,
            auth: gateway.auth,
            security: gateway.security,
            listen: gateway.listen,
            cache: gateway.cache,
            admin_token: gateway.admin_token,
            reload: gateway.reload,
        },
    );
    match blueprint {
        Some(bp) if diags.is_empty() => Ok(bp),
        _ => Err(sorted(diags)),
    }
}

type Compiled = (
    String,
    Option<String>,
    Option<String>,
    Vec<TypeDef>,
    Vec<std::sync::Arc<crate::blueprint::Binding>>,
    Vec<ConnectorConfig>,
    Vec<crate::blueprint::OutboxField>,
    Vec<crate::blueprint::EntityLookup>,
);

fn compile_schema(
    sdl: &str,
    connectors: Vec<ConnectorConfig>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Compiled> {
    let doc: ServiceDocument = match parse_schema(sdl) {
        Ok(doc) => doc,
        Err(e) => {
            let pos = e.positions().next();
            let (l, c) = pos.map_or((1, 1), |p| (p.line, p.column));
            // The parser's message is a code frame; keep its "= expected ..." line.
            let text = e.to_string();
            let reason = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("= "))
                .unwrap_or(text.trim())
                .to_string();
            diags.push(
                Diagnostic::new(SCHEMA_FILE, l, c, format!("syntax error: {reason}"))
                    .hint("fix the SDL here; definitions look like: type Name { field: Type @directive(...) }"),
            );
            return None;
        }
    };

    // Merge `extend type` into the base definition, keep source order of first appearance.
    let mut order: Vec<String> = Vec::new();
    let mut defs: HashMap<String, Positioned<async_graphql_parser::types::TypeDefinition>> =
        HashMap::new();
    let mut roots: (
        Option<String>,
        Option<String>,
        Option<Positioned<async_graphql_value::Name>>,
    ) = (None, None, None);
    for def in doc.definitions {
        match def {
            TypeSystemDefinition::Schema(s) => {
                if let Some(q) = &s.node.query {
                    roots.0 = Some(q.node.to_string());
                }
                if let Some(m) = &s.node.mutation {
                    roots.1 = Some(m.node.to_string());
                }
                if s.node.subscription.is_some() {
                    roots.2 = s.node.subscription.clone();
                }
            }
            TypeSystemDefinition::Directive(_) => {}
            TypeSystemDefinition::Type(t) => {
                let name = t.node.name.node.to_string();
                match defs.get_mut(&name) {
                    Some(base) => merge_extension(base, t, diags),
                    None => {
                        order.push(name.clone());
                        defs.insert(name, t);
                    }
                }
            }
        }
    }
    let query_type = roots.0.unwrap_or_else(|| "Query".to_string());
    let mutation_type = roots.1.or_else(|| {
        defs.contains_key("Mutation")
            .then(|| "Mutation".to_string())
    });
    if let Some(sub) = roots.2.filter(|s| s.node != "Subscription") {
        diags.push(Diagnostic::new(
            SCHEMA_FILE,
            sub.pos.line,
            sub.pos.column,
            "the subscription type is Subscription, Simpul's own",
        ));
    }
    let subscription_type = defs
        .contains_key("Subscription")
        .then(|| "Subscription".to_string());
    let add_sources = health::add_types(&query_type, &mut defs, &mut order);
    upload::add_type(&mut defs, &mut order, diags);
    if !defs.contains_key(&query_type) {
        diags.push(
            Diagnostic::new(
                SCHEMA_FILE,
                1,
                1,
                format!("the schema has no {query_type} type"),
            )
            .hint("define type Query { ... } with at least one bound field"),
        );
        return None;
    }

    let kinds: HashMap<String, NamedKind> = defs
        .iter()
        .map(|(n, d)| (n.clone(), NamedKind::of(&d.node.kind)))
        .chain(
            BUILTIN_SCALARS
                .iter()
                .map(|s| (s.to_string(), NamedKind::Scalar)),
        )
        .collect();
    let connector_index: HashMap<&str, usize> = connectors
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();

    let mut cx = fields::Cx {
        type_cache: None,
        connectors: &connectors,
        connector_index,
        kinds: &kinds,
        query_type: &query_type,
        mutation_type: mutation_type.as_deref(),
        subscription_type: subscription_type.as_deref(),
        bindings: Vec::new(),
        outboxes: Vec::new(),
        receipts: Vec::new(),
        type_keys: Vec::new(),
        lookups: Vec::new(),
        diags: Vec::new(),
    };
    let mut types = Vec::new();
    for name in &order {
        let Some(def) = defs.remove(name) else {
            continue;
        };
        if let Some(t) = compile_type(def, &mut cx) {
            types.push(t);
        }
    }
    diags.append(&mut cx.diags);
    if add_sources
        && let Some(TypeDefKind::Object { fields, .. }) = types
            .iter_mut()
            .find(|t| t.name == query_type)
            .map(|t| &mut t.kind)
    {
        fields.push(health::sources_field());
    }
    let bindings = std::mem::take(&mut cx.bindings);
    let outboxes = std::mem::take(&mut cx.outboxes);
    outbox::resolve_receipts(
        std::mem::take(&mut cx.receipts),
        &outboxes,
        mutation_type.as_deref(),
        &mut types,
        diags,
    );
    interfaces::check(&types, diags, &kinds);
    page::resolve(&mut types, diags);
    let entities = federation::lookups(
        std::mem::take(&mut cx.lookups),
        &types,
        &query_type,
        &bindings,
        diags,
    );
    let sdl = federation::subgraph_sdl(&types, subscription_type.as_deref());
    if let Some(TypeDefKind::Object { fields, .. }) = types
        .iter_mut()
        .find(|t| t.name == "_Service")
        .map(|t| &mut t.kind)
        && let Some(f) = fields.iter_mut().find(|f| f.name == "sdl")
    {
        f.plan = crate::blueprint::FieldPlan::Const(serde_json::Value::String(sdl));
    }
    Some((
        query_type,
        mutation_type,
        subscription_type,
        types,
        bindings,
        connectors,
        outboxes,
        entities,
    ))
}

/// What a named type is, for checks that need to know before its definition is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedKind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

impl NamedKind {
    fn of(kind: &TypeKind) -> Self {
        match kind {
            TypeKind::Scalar => NamedKind::Scalar,
            TypeKind::Object(_) => NamedKind::Object,
            TypeKind::Interface(_) => NamedKind::Interface,
            TypeKind::Union(_) => NamedKind::Union,
            TypeKind::Enum(_) => NamedKind::Enum,
            TypeKind::InputObject(_) => NamedKind::InputObject,
        }
    }

    pub fn is_output_composite(self) -> bool {
        matches!(
            self,
            NamedKind::Object | NamedKind::Interface | NamedKind::Union
        )
    }
}

pub use crate::blueprint::named;

fn merge_extension(
    base: &mut Positioned<async_graphql_parser::types::TypeDefinition>,
    ext: Positioned<async_graphql_parser::types::TypeDefinition>,
    diags: &mut Vec<Diagnostic>,
) {
    let pos = ext.pos;
    let ext = ext.node;
    base.node.directives.extend(ext.directives);
    match (&mut base.node.kind, ext.kind) {
        (TypeKind::Object(b), TypeKind::Object(e)) => {
            b.fields.extend(e.fields);
            b.implements.extend(e.implements);
        }
        (TypeKind::Interface(b), TypeKind::Interface(e)) => {
            b.fields.extend(e.fields);
            b.implements.extend(e.implements);
        }
        (TypeKind::Union(b), TypeKind::Union(e)) => b.members.extend(e.members),
        (TypeKind::Enum(b), TypeKind::Enum(e)) => b.values.extend(e.values),
        (TypeKind::InputObject(b), TypeKind::InputObject(e)) => b.fields.extend(e.fields),
        (TypeKind::Scalar, TypeKind::Scalar) => {}
        _ => diags.push(Diagnostic::new(
            SCHEMA_FILE,
            pos.line,
            pos.column,
            format!(
                "type {} is defined twice with different kinds",
                base.node.name.node
            ),
        )),
    }
}

fn compile_type(
    def: Positioned<async_graphql_parser::types::TypeDefinition>,
    cx: &mut fields::Cx,
) -> Option<TypeDef> {
    let def = def.node;
    let at = (def.name.pos.line, def.name.pos.column);
    let name = def.name.node.to_string();
    let description = def.description.map(|d| d.node);
    let access = match fields::access(&def.directives, None) {
        Ok(a) => a,
        Err(e) => {
            cx.diags.push(Diagnostic::new(
                SCHEMA_FILE,
                at.0,
                at.1,
                format!("{name}: {e}"),
            ));
            crate::access::Access::Public
        }
    };
    let mut discriminator = "__typename".to_string();
    let mut specified_by = None;
    let mut federated = Vec::new();
    for d in &def.directives {
        let args = Args {
            file: SCHEMA_FILE,
            directive: d,
        };
        match args.name() {
            "discriminator" if matches!(def.kind, TypeKind::Interface(_) | TypeKind::Union(_)) => {
                args.check_names(&["field"], &mut cx.diags);
                if let Some((f, _)) = args.string("field", true, &mut cx.diags) {
                    discriminator = f;
                }
            }
            "specifiedBy" => specified_by = args.string("url", true, &mut cx.diags).map(|(u, _)| u),
            "cache" | "access" if matches!(def.kind, TypeKind::Object(_)) => {
                fields::check_type_directive(&args, &mut cx.diags);
            }
            "deprecated" | "oneOf" => {}
            other
                if federation::TYPE_DIRECTIVES.contains(&other)
                    && matches!(def.kind, TypeKind::Object(_) | TypeKind::Interface(_)) =>
            {
                if other == "key"
                    && !matches!(
                        args.get("fields").map(|v| &v.node),
                        Some(async_graphql_value::ConstValue::String(_))
                    )
                {
                    cx.diags.push(
                        args.diag(
                            "@key needs fields: the key's fields, e.g. @key(fields: \"code\")",
                        ),
                    );
                }
                federated.push(federation::print_directive(d));
            }
            other => {
                let known = directives::KNOWN.contains(&other);
                let mut diag = args.diag(if known {
                    format!("@{other} cannot be used on type {name}")
                } else {
                    format!("unknown directive @{other}")
                });
                diag = diag.hint(if known {
                    "binding directives (@sql, @http, @map, @const), @suppress and @listSize go on field definitions; @discriminator on interfaces and unions; @cache and @access on object types".to_string()
                } else {
                    directives::known_hint()
                });
                cx.diags.push(diag);
            }
        }
    }
    let keys: Vec<Vec<String>> = federation::keys(&def.directives)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    cx.type_keys = keys.clone();
    let kind = match def.kind {
        TypeKind::Scalar => TypeDefKind::Scalar { specified_by },
        TypeKind::Object(o) => {
            cx.type_cache = fields::cache_policy(&def.directives);
            let fields = o
                .fields
                .into_iter()
                .filter_map(|f| cx.object_field(&name, f))
                .collect();
            TypeDefKind::Object {
                fields,
                implements: o
                    .implements
                    .into_iter()
                    .map(|n| n.node.to_string())
                    .collect(),
            }
        }
        TypeKind::Interface(i) => {
            let fields = i
                .fields
                .into_iter()
                .filter_map(|f| cx.interface_field(&name, f))
                .collect();
            TypeDefKind::Interface {
                fields,
                implements: i
                    .implements
                    .into_iter()
                    .map(|n| n.node.to_string())
                    .collect(),
                discriminator,
            }
        }
        TypeKind::Union(u) => {
            for m in &u.members {
                if cx.kinds.get(m.node.as_str()) != Some(&NamedKind::Object) {
                    cx.diags.push(Diagnostic::new(
                        SCHEMA_FILE,
                        m.pos.line,
                        m.pos.column,
                        format!("union {name} member {} is not an object type", m.node),
                    ));
                }
            }
            TypeDefKind::Union {
                members: u.members.into_iter().map(|n| n.node.to_string()).collect(),
                discriminator,
            }
        }
        TypeKind::Enum(e) => TypeDefKind::Enum {
            values: e
                .values
                .into_iter()
                .map(|v| {
                    let deprecation = fields::deprecation(&v.node.directives);
                    EnumValueDef {
                        name: v.node.value.node.to_string(),
                        description: v.node.description.map(|d| d.node),
                        deprecation,
                    }
                })
                .collect(),
        },
        TypeKind::InputObject(i) => TypeDefKind::InputObject {
            fields: i
                .fields
                .into_iter()
                .map(|f| cx.input_value(&name, f, true))
                .collect(),
        },
    };
    Some(TypeDef {
        name,
        description,
        kind,
        access,
        at,
        keys,
        federation: federated,
    })
}

pub(crate) fn input_def(
    name: String,
    description: Option<String>,
    ty: Type,
    default: Option<async_graphql_value::ConstValue>,
) -> InputDef {
    InputDef {
        name,
        description,
        ty,
        default,
        length: None,
    }
}
