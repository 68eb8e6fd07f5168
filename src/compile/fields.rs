//! Compiling one field definition: its plan (property, constant, binding) and every check of
//! its directives and placeholders.

use std::collections::HashMap;
use std::sync::Arc;

use crate::access::{Access, Tier};
use async_graphql_parser::Positioned;
use async_graphql_parser::types::{ConstDirective, FieldDefinition, InputValueDefinition};
use async_graphql_value::ConstValue;

use super::binding::FieldCx;
use super::directives::{self, Args};
use super::{NamedKind, SCHEMA_FILE, named};
use crate::blueprint::{Binding, FieldDef, FieldPlan, InputDef, Lookup, Suppress};
use crate::config::{CachePolicy, ConnectorConfig, duration};
use crate::diagnostic::Diagnostic;

pub struct Cx<'a> {
    /// `@cache` on the object type whose fields are being compiled.
    pub type_cache: Option<CachePolicy>,
    pub connectors: &'a [ConnectorConfig],
    pub connector_index: HashMap<&'a str, usize>,
    pub kinds: &'a HashMap<String, NamedKind>,
    pub query_type: &'a str,
    pub mutation_type: Option<&'a str>,
    pub subscription_type: Option<&'a str>,
    pub bindings: Vec<Arc<Binding>>,
    /// `@outbox` mutation fields, in the order met.
    pub outboxes: Vec<crate::blueprint::OutboxField>,
    /// `@receipt(of:)` fields, resolved against `outboxes` once every field is compiled.
    pub receipts: Vec<super::outbox::PendingReceipt>,
    /// The `@key` field sets of the type whose fields are being compiled.
    pub type_keys: Vec<Vec<String>>,
    /// `@lookup` fields, resolved into entity resolvers once every field is compiled.
    pub lookups: Vec<super::federation::PendingLookup>,
    pub diags: Vec<Diagnostic>,
}

pub fn deprecation(directives: &[Positioned<ConstDirective>]) -> Option<String> {
    directives
        .iter()
        .find(|d| d.node.name.node == "deprecated")
        .map(|d| match d.node.get_argument("reason") {
            Some(Positioned {
                node: ConstValue::String(s),
                ..
            }) => s.clone(),
            _ => "No longer supported".to_string(),
        })
}

/// `@cache` and `@access` are read here for their checks; they act in later stages.
pub fn check_type_directive(args: &Args, diags: &mut Vec<Diagnostic>) {
    match args.name() {
        "cache" => {
            args.check_names(&["ttl", "staleWhileRevalidate", "staleIfError"], diags);
            for name in ["ttl", "staleWhileRevalidate", "staleIfError"] {
                if let Some((text, at)) = args.string(name, false, diags)
                    && let Err(e) = duration::parse(&text)
                {
                    diags.push(args.diag_at(at, format!("@cache({name}:) {e}")));
                }
            }
        }
        "access" => {
            args.check_names(&["tier", "opd"], diags);
            match args.get("tier") {
                Some(Positioned {
                    node: ConstValue::Enum(t),
                    ..
                }) if ["PUBLIC", "INTERNAL", "RESTRICTED"].contains(&t.as_str()) => {}
                Some(v) => {
                    diags.push(args.diag_at(v, "@access(tier:) is PUBLIC, INTERNAL or RESTRICTED"))
                }
                None => diags.push(args.diag("@access needs tier: PUBLIC, INTERNAL or RESTRICTED")),
            }
        }
        _ => {}
    }
}

/// The policy of an `@cache` among `directives` (already checked by `check_type_directive`).
pub fn cache_policy(directives: &[Positioned<ConstDirective>]) -> Option<CachePolicy> {
    let d = directives.iter().find(|d| d.node.name.node == "cache")?;
    let get = |name: &str| match d.node.get_argument(name) {
        Some(Positioned {
            node: ConstValue::String(s),
            ..
        }) => duration::parse(s).unwrap_or_default(),
        _ => std::time::Duration::ZERO,
    };
    Some(CachePolicy {
        ttl: get("ttl"),
        stale_while_revalidate: get("staleWhileRevalidate"),
        stale_if_error: get("staleIfError"),
    })
}

/// What an `@access` among `directives` asks (already checked by `check_type_directive`).
/// RESTRICTED belongs to `@access(opd:)`, else to `owner`, the OPD of the field's connector;
/// `Err` when neither names one.
pub fn access(
    directives: &[Positioned<ConstDirective>],
    owner: Option<&str>,
) -> Result<Access, String> {
    let Some(d) = directives.iter().find(|d| d.node.name.node == "access") else {
        return Ok(Access::Public);
    };
    let tier = match d.node.get_argument("tier") {
        Some(Positioned {
            node: ConstValue::Enum(t),
            ..
        }) => Tier::parse(t.as_str()),
        _ => None,
    };
    let opd = match d.node.get_argument("opd") {
        Some(Positioned {
            node: ConstValue::String(s),
            ..
        }) => Some(s.as_str()),
        _ => owner,
    };
    Ok(match tier {
        None | Some(Tier::Public) => Access::Public,
        Some(Tier::Internal) => Access::Internal,
        Some(Tier::Restricted) => match opd.filter(|o| !o.is_empty()) {
            Some(opd) => Access::Restricted(opd.into()),
            None => {
                return Err("@access(tier: RESTRICTED) needs the owning OPD: add opd: \"dinsos\" or bind the field to a connector with opd set".into());
            }
        },
    })
}

impl Cx<'_> {
    fn check_type_exists(
        &mut self,
        ty: &Positioned<async_graphql_parser::types::Type>,
        input: bool,
    ) {
        let name = named(&ty.node);
        match self.kinds.get(name) {
            None => self.diags.push(
                Diagnostic::new(
                    SCHEMA_FILE,
                    ty.pos.line,
                    ty.pos.column,
                    format!("unknown type {name}"),
                )
                .hint("define it in schema.graphql, or use Int, Float, String, Boolean or ID"),
            ),
            Some(k) if input && k.is_output_composite() => self.diags.push(Diagnostic::new(
                SCHEMA_FILE,
                ty.pos.line,
                ty.pos.column,
                format!(
                    "{name} is an output type and cannot be used for an argument or input field"
                ),
            )),
            Some(NamedKind::InputObject) if !input => self.diags.push(Diagnostic::new(
                SCHEMA_FILE,
                ty.pos.line,
                ty.pos.column,
                format!("{name} is an input type and cannot be a field's type"),
            )),
            _ => {}
        }
    }

    /// An argument, or a field of an input object (`input_field`), which may carry
    /// `@length(min:, max:)`.
    pub fn input_value(
        &mut self,
        owner: &str,
        v: Positioned<InputValueDefinition>,
        input_field: bool,
    ) -> InputDef {
        self.check_type_exists(&v.node.ty, true);
        let mut length = None;
        for d in &v.node.directives {
            let args = Args {
                file: SCHEMA_FILE,
                directive: d,
            };
            if args.name() == "length" && input_field {
                length = self.length(&args, owner, &v.node);
            } else if !directives::STANDARD.contains(&args.name()) {
                self.diags.push(args.diag(format!(
                    "@{} cannot be used on {owner}.{}: arguments and input fields take no binding{}",
                    args.name(),
                    v.node.name.node,
                    if args.name() == "length" { " (@length goes on the fields of an input type)" } else { "" }
                )));
            }
        }
        let mut def = super::input_def(
            v.node.name.node.to_string(),
            v.node.description.map(|d| d.node),
            v.node.ty.node,
            v.node.default_value.map(|d| d.node),
        );
        def.length = length;
        def
    }

    /// `@length(min: 1, max: 4000)` on a String or ID input field: its bounds in
    /// characters.
    fn length(
        &mut self,
        args: &Args,
        owner: &str,
        v: &InputValueDefinition,
    ) -> Option<(usize, usize)> {
        args.check_names(&["min", "max"], &mut self.diags);
        if !matches!(named(&v.ty.node), "String" | "ID") {
            self.diags.push(args.diag(format!(
                "@length bounds String or ID fields, not {owner}.{}",
                v.name.node
            )));
            return None;
        }
        let bound = |name: &str| match args.get(name) {
            None => Ok(None),
            Some(Positioned {
                node: ConstValue::Number(n),
                ..
            }) if n.as_u64().is_some() => Ok(n.as_u64().and_then(|n| usize::try_from(n).ok())),
            Some(_) => Err(format!("@length({name}:) must be a whole number")),
        };
        match (bound("min"), bound("max")) {
            (Ok(min), Ok(Some(max))) if min.unwrap_or(0) <= max => Some((min.unwrap_or(0), max)),
            (Err(e), _) | (_, Err(e)) => {
                self.diags.push(args.diag(e));
                None
            }
            _ => {
                self.diags.push(
                    args.diag(
                        "@length needs max: at least its min, e.g. @length(min: 1, max: 4000)",
                    ),
                );
                None
            }
        }
    }

    pub fn interface_field(
        &mut self,
        owner: &str,
        f: Positioned<FieldDefinition>,
    ) -> Option<FieldDef> {
        self.check_type_exists(&f.node.ty, false);
        let mut page = None;
        let mut federation = Vec::new();
        for d in &f.node.directives {
            let args = Args {
                file: SCHEMA_FILE,
                directive: d,
            };
            if args.name() == "page" {
                page = directives::page(&args, &mut self.diags).map(std::sync::Arc::new);
                continue;
            }
            if super::federation::FIELD_DIRECTIVES.contains(&args.name()) {
                federation.push(super::federation::print_directive(d));
                continue;
            }
            if !directives::STANDARD.contains(&args.name()) {
                self.diags.push(
                    args.diag(format!(
                        "@{} cannot be used on interface field {owner}.{}",
                        args.name(),
                        f.node.name.node
                    ))
                    .hint("bind the field on each object type that implements the interface"),
                );
            }
        }
        let at = (f.pos.line, f.pos.column);
        let f = f.node;
        let args = f
            .arguments
            .into_iter()
            .map(|a| self.input_value(owner, a, false))
            .collect();
        Some(FieldDef {
            at,
            deprecation: deprecation(&f.directives),
            name: f.name.node.to_string(),
            description: f.description.map(|d| d.node),
            ty: f.ty.node,
            args,
            plan: FieldPlan::Property(Lookup::Keys(Vec::new())),
            access: Access::Public,
            suppress: None,
            list_size: None,
            page,
            federation,
        })
    }

    pub fn object_field(
        &mut self,
        owner: &str,
        f: Positioned<FieldDefinition>,
    ) -> Option<FieldDef> {
        self.check_type_exists(&f.node.ty, false);
        let field_name = f.node.name.node.to_string();
        let is_root = owner == self.query_type || Some(owner) == self.mutation_type;
        let arg_names: Vec<String> = f
            .node
            .arguments
            .iter()
            .map(|a| a.node.name.node.to_string())
            .collect();

        let mut source: Option<&Positioned<ConstDirective>> = None;
        let mut map_from: Option<(String, &Positioned<ConstDirective>)> = None;
        let mut constant: Option<serde_json::Value> = None;
        let mut builtin: Option<crate::blueprint::Builtin> = None;
        let mut outbox: Option<&Positioned<ConstDirective>> = None;
        let mut receipt: Option<&Positioned<ConstDirective>> = None;
        let mut validates: Vec<&Positioned<ConstDirective>> = Vec::new();
        let mut suppress: Option<Suppress> = None;
        let mut page = None;
        let mut cursor: Option<Vec<String>> = None;
        let mut federation = Vec::new();
        for d in &f.node.directives {
            let args = Args {
                file: SCHEMA_FILE,
                directive: d,
            };
            match args.name() {
                "sql" | "http" | "graphql" | "const" => {
                    if let Some(prev) = source {
                        self.diags.push(args.diag(format!(
                            "{owner}.{field_name} already has @{}; a field has one source",
                            prev.node.name.node
                        )));
                        continue;
                    }
                    source = Some(d);
                    if args.name() == "const" {
                        args.check_names(&["value"], &mut self.diags);
                        match args.get("value") {
                            Some(v) => constant = Some(directives::const_to_json(&v.node)),
                            None => self
                                .diags
                                .push(args.diag("@const needs value: @const(value: \"...\")")),
                        }
                    }
                }
                "map" => {
                    args.check_names(&["from"], &mut self.diags);
                    if let Some((from, _)) = args.string("from", true, &mut self.diags) {
                        map_from = Some((from, d));
                    }
                }
                "cache" | "access" => check_type_directive(&args, &mut self.diags),
                "suppress" => {
                    if !matches!(named(&f.node.ty.node), "Int" | "Float") {
                        self.diags.push(args.diag(format!("@suppress applies to Int or Float count fields, not {owner}.{field_name}")));
                    }
                    suppress = directives::suppress(&args, &mut self.diags);
                }
                "page" => page = directives::page(&args, &mut self.diags).map(std::sync::Arc::new),
                "cursor" => {
                    if !matches!(named(&f.node.ty.node), "String" | "ID") {
                        self.diags.push(args.diag(format!(
                            "@cursor gives a String or ID field, not {owner}.{field_name}"
                        )));
                    }
                    cursor = directives::cursor(&args, &mut self.diags);
                }
                "deprecated" => {}
                "lookup" => {
                    args.check_names(&[], &mut self.diags);
                    self.lookups.push(super::federation::PendingLookup {
                        field: if owner == self.query_type {
                            field_name.clone()
                        } else {
                            format!("{owner}.{field_name}")
                        },
                        at: args.at(),
                    });
                }
                name if super::federation::FIELD_DIRECTIVES.contains(&name) => {
                    federation.push(super::federation::print_directive(d));
                }
                "outbox" => outbox = Some(d),
                "receipt" => receipt = Some(d),
                "validate" => validates.push(d),
                "builtin" => {
                    args.check_names(&["name"], &mut self.diags);
                    if let Some((name, _)) = args.string("name", true, &mut self.diags) {
                        builtin = crate::blueprint::Builtin::from_name(&name);
                        if builtin.is_none() {
                            self.diags.push(
                                args.diag(format!("@builtin: no field named {name} is built in")),
                            );
                        }
                    }
                }
                "discriminator" => self
                    .diags
                    .push(args.diag("@discriminator goes on an interface or union type")),
                "listSize" => {
                    args.check_names(&["max"], &mut self.diags);
                    match args.get("max") {
                        Some(Positioned { node: ConstValue::Number(n), .. }) if n.as_u64().is_some_and(|n| n >= 1) => {}
                        _ => self.diags.push(args.diag("@listSize needs max: the most items the list holds, e.g. @listSize(max: 14)")),
                    }
                    if !matches!(
                        f.node.ty.node.base,
                        async_graphql_parser::types::BaseType::List(_)
                    ) {
                        self.diags.push(args.diag(format!(
                            "@listSize applies to list fields, not {owner}.{field_name}"
                        )));
                    }
                }
                other => self.diags.push(
                    args.diag(format!("unknown directive @{other}"))
                        .hint(directives::known_hint()),
                ),
            }
        }

        let output_kind = self.kinds.get(named(&f.node.ty.node)).copied();
        let is_subscription = Some(owner) == self.subscription_type;
        if is_subscription != builtin.is_some_and(crate::blueprint::Builtin::is_subscription) {
            self.diags.push(
                Diagnostic::new(SCHEMA_FILE, f.pos.line, f.pos.column, format!("{owner}.{field_name}: subscriptions are Simpul's own"))
                    .hint("Subscription serves alertRaised, alertChanged, openAlerts and sourceStatusChanged when the deployment has rules/; it cannot be bound to a connector"),
            );
        }
        let plan = match (builtin, source) {
            (Some(b), None) => FieldPlan::Builtin(b),
            (Some(_), Some(d)) => {
                self.diags.push(
                    Args {
                        file: SCHEMA_FILE,
                        directive: d,
                    }
                    .diag(format!(
                        "{owner}.{field_name} is built in and takes no @{}",
                        d.node.name.node
                    )),
                );
                FieldPlan::Property(Lookup::Keys(Vec::new()))
            }
            (None, source) => match source {
                Some(d) if d.node.name.node == "const" => {
                    if let Some((_, m)) = &map_from {
                        self.diags.push(
                            Args {
                                file: SCHEMA_FILE,
                                directive: m,
                            }
                            .diag("@map has no effect on a field answered by @const"),
                        );
                    }
                    FieldPlan::Const(constant.unwrap_or(serde_json::Value::Null))
                }
                Some(d) => {
                    if let Some((_, m)) = &map_from {
                        self.diags.push(
                        Args { file: SCHEMA_FILE, directive: m }
                            .diag(format!("@map cannot be combined with @{} on {owner}.{field_name}", d.node.name.node))
                            .hint("@map reads a field from its parent's row; a bound field gets its rows from its connector"),
                    );
                    }
                    let ctx = FieldCx {
                        owner,
                        field: &field_name,
                        is_root,
                        args: &arg_names,
                        mutation: Some(owner) == self.mutation_type,
                        outbox: outbox.is_some(),
                        cache: cache_policy(&f.node.directives),
                    };
                    match self.binding(d, &ctx) {
                        Some(b) => FieldPlan::Bound(b),
                        None => FieldPlan::Property(Lookup::Keys(Vec::new())),
                    }
                }
                None if is_root => {
                    if output_kind == Some(NamedKind::Object) {
                        FieldPlan::Namespace
                    } else {
                        self.diags.push(
                            Diagnostic::new(
                                SCHEMA_FILE,
                                f.pos.line,
                                f.pos.column,
                                format!("{owner}.{field_name} has no binding"),
                            )
                            .hint("add @sql(...), @http(...), @graphql(...) or @const(value: ...) to answer it"),
                        );
                        FieldPlan::Property(Lookup::Keys(Vec::new()))
                    }
                }
                None => match (cursor.take(), map_from) {
                    (Some(columns), _) => FieldPlan::Property(Lookup::Cursor(columns)),
                    (None, Some((from, _))) => FieldPlan::Property(Lookup::Path(
                        from.split('.').map(str::to_string).collect(),
                    )),
                    (None, None) => {
                        let snake = to_snake(&field_name);
                        let mut keys = vec![field_name.clone()];
                        if snake != field_name {
                            keys.push(snake);
                        }
                        FieldPlan::Property(Lookup::Keys(keys))
                    }
                },
            },
        };
        let connector_opd = match &plan {
            FieldPlan::Bound(b) => self
                .bindings
                .get(*b)
                .and_then(|b| self.connectors.get(b.connector))
                .map(|c| c.opd.as_str()),
            _ => None,
        };
        let access = match access(&f.node.directives, connector_opd) {
            Ok(a) => a,
            Err(e) => {
                self.diags.push(Diagnostic::new(
                    SCHEMA_FILE,
                    f.pos.line,
                    f.pos.column,
                    format!("{owner}.{field_name}: {e}"),
                ));
                Access::Public
            }
        };
        let plan = match (outbox, receipt, validates.is_empty()) {
            (None, None, true) => plan,
            (outbox, receipt, _) => {
                let place = super::outbox::Place {
                    owner,
                    field: &field_name,
                    ty: &f.node.ty.node,
                    args: &f.node.arguments,
                    bound: source.is_some_and(|d| d.node.name.node != "const"),
                };
                let checks = self.validations(&place, &validates, outbox.is_some());
                self.outbox_plan(place, plan, outbox, receipt, checks)
            }
        };
        let at = (f.pos.line, f.pos.column);
        let f = f.node;
        let args = f
            .arguments
            .into_iter()
            .map(|a| self.input_value(owner, a, false))
            .collect();
        let number = |directive: &str, argument: &str| {
            f.directives
                .iter()
                .find(|d| d.node.name.node == directive)
                .and_then(|d| match d.node.get_argument(argument) {
                    Some(Positioned {
                        node: ConstValue::Number(n),
                        ..
                    }) => Some(n.clone()),
                    _ => None,
                })
        };
        let list_size = number("listSize", "max").and_then(|n| n.as_u64());
        Some(FieldDef {
            at,
            deprecation: deprecation(&f.directives),
            access,
            suppress,
            list_size,
            page,
            name: field_name,
            description: f.description.map(|d| d.node),
            ty: f.ty.node,
            args,
            plan,
            federation,
        })
    }
}
/// `userId` -> `user_id`.
pub fn to_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case() {
        assert_eq!(to_snake("userId"), "user_id");
        assert_eq!(to_snake("poorCount"), "poor_count");
        assert_eq!(to_snake("name"), "name");
    }
}
