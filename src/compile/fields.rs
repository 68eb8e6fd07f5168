//! Compiling one field definition: its plan (property, constant, binding) and every check of
//! its directives and placeholders.

use std::collections::HashMap;
use std::sync::Arc;

use crate::access::{Access, Tier};
use async_graphql_parser::Positioned;
use async_graphql_parser::types::{ConstDirective, FieldDefinition, InputValueDefinition};
use async_graphql_value::ConstValue;

use super::directives::{self, Args};
use super::template::{Placeholder, Scope, Segment, Template};
use super::{NamedKind, SCHEMA_FILE, named};
use crate::blueprint::{
    Batch, Binding, FieldDef, FieldPlan, HttpOperation, InputDef, Lookup, Operation,
};
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
    pub bindings: Vec<Arc<Binding>>,
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

    pub fn input_value(&mut self, owner: &str, v: Positioned<InputValueDefinition>) -> InputDef {
        self.check_type_exists(&v.node.ty, true);
        for d in &v.node.directives {
            let args = Args {
                file: SCHEMA_FILE,
                directive: d,
            };
            if !directives::STANDARD.contains(&args.name()) {
                self.diags.push(args.diag(format!(
                    "@{} cannot be used on {owner}.{}: arguments and input fields take no binding",
                    args.name(),
                    v.node.name.node
                )));
            }
        }
        super::input_def(
            v.node.name.node.to_string(),
            v.node.description.map(|d| d.node),
            v.node.ty.node,
            v.node.default_value.map(|d| d.node),
        )
    }

    pub fn interface_field(
        &mut self,
        owner: &str,
        f: Positioned<FieldDefinition>,
    ) -> Option<FieldDef> {
        self.check_type_exists(&f.node.ty, false);
        for d in &f.node.directives {
            let args = Args {
                file: SCHEMA_FILE,
                directive: d,
            };
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
        let f = f.node;
        let args = f
            .arguments
            .into_iter()
            .map(|a| self.input_value(owner, a))
            .collect();
        Some(FieldDef {
            deprecation: deprecation(&f.directives),
            name: f.name.node.to_string(),
            description: f.description.map(|d| d.node),
            ty: f.ty.node,
            args,
            plan: FieldPlan::Property(Lookup::Keys(Vec::new())),
            access: Access::Public,
            suppress_below: None,
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
        for d in &f.node.directives {
            let args = Args {
                file: SCHEMA_FILE,
                directive: d,
            };
            match args.name() {
                "sql" | "http" | "const" => {
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
                            None => self.diags.push(args.diag("@const needs value: @const(value: \"...\")")),
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
                    args.check_names(&["below"], &mut self.diags);
                    match args.get("below") {
                        Some(Positioned { node: ConstValue::Number(n), .. }) if n.as_u64().is_some_and(|n| n > 1) => {}
                        _ => self.diags.push(args.diag("@suppress needs below: an integer above 1, e.g. @suppress(below: 5)")),
                    }
                    if !matches!(named(&f.node.ty.node), "Int" | "Float") {
                        self.diags.push(args.diag(format!("@suppress applies to Int or Float count fields, not {owner}.{field_name}")));
                    }
                }
                "deprecated" => {}
                "discriminator" => self.diags.push(args.diag("@discriminator goes on an interface or union type")),
                other => self.diags.push(
                    args.diag(format!("unknown directive @{other}"))
                        .hint("Simpul knows @sql, @http, @map, @const, @cache, @access, @suppress and @discriminator"),
                ),
            }
        }

        let output_kind = self.kinds.get(named(&f.node.ty.node)).copied();
        let plan = match source {
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
                        .hint("add @sql(...), @http(...) or @const(value: ...) to answer it"),
                    );
                    FieldPlan::Property(Lookup::Keys(Vec::new()))
                }
            }
            None => match map_from {
                Some((from, _)) => {
                    FieldPlan::Property(Lookup::Path(from.split('.').map(str::to_string).collect()))
                }
                None => {
                    let snake = to_snake(&field_name);
                    let mut keys = vec![field_name.clone()];
                    if snake != field_name {
                        keys.push(snake);
                    }
                    FieldPlan::Property(Lookup::Keys(keys))
                }
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
        let f = f.node;
        let args = f
            .arguments
            .into_iter()
            .map(|a| self.input_value(owner, a))
            .collect();
        let suppress_below = f
            .directives
            .iter()
            .find(|d| d.node.name.node == "suppress")
            .and_then(|d| match d.node.get_argument("below") {
                Some(Positioned {
                    node: ConstValue::Number(n),
                    ..
                }) => n.as_i64(),
                _ => None,
            });
        Some(FieldDef {
            deprecation: deprecation(&f.directives),
            access,
            suppress_below,
            name: field_name,
            description: f.description.map(|d| d.node),
            ty: f.ty.node,
            args,
            plan,
        })
    }

    fn binding(&mut self, d: &Positioned<ConstDirective>, f: &FieldCx) -> Option<usize> {
        let args = Args {
            file: SCHEMA_FILE,
            directive: d,
        };
        let is_sql = args.name() == "sql";
        let allowed: &[&str] = if is_sql {
            &["connector", "query", "batch"]
        } else {
            &[
                "connector",
                "method",
                "path",
                "query",
                "headers",
                "body",
                "select",
                "batch",
            ]
        };
        args.check_names(allowed, &mut self.diags);
        let (connector_name, connector_at) = args.string("connector", true, &mut self.diags)?;
        let Some(&connector) = self.connector_index.get(connector_name.as_str()) else {
            let known: Vec<&str> = self.connectors.iter().map(|c| c.name.as_str()).collect();
            self.diags.push(
                args.diag_at(
                    connector_at,
                    format!("unknown connector '{connector_name}'"),
                )
                .hint(if known.is_empty() {
                    format!("create connectors/{connector_name}.toml")
                } else {
                    format!(
                        "known connectors: {}; or create connectors/{connector_name}.toml",
                        known.join(", ")
                    )
                }),
            );
            return None;
        };
        let kind = &self.connectors[connector].kind;
        if is_sql != kind.is_sql() {
            let mut diag = args.diag_at(
                connector_at,
                format!(
                    "connector '{connector_name}' is [{}]; @{} needs {}",
                    kind.name(),
                    args.name(),
                    if is_sql {
                        "a SQL or [file] connector"
                    } else {
                        "an [http] connector"
                    }
                ),
            );
            if !is_sql && args.get("select").is_some() {
                diag.message
                    .push_str(" (select: picks a path in an HTTP response)");
            }
            self.diags.push(diag.hint(if is_sql {
                "use @http(connector: ..., path: ...)"
            } else {
                "use @sql(connector: ..., query: \"SELECT ...\")"
            }));
            return None;
        }
        let batch_args = directives::batch(&args, &mut self.diags);
        if batch_args.is_some() && f.is_root {
            self.diags.push(
                args.diag(format!(
                    "{}.{} is a root field: batch needs a parent list",
                    f.owner, f.field
                ))
                .hint("remove batch:, or move the field to the type whose list it belongs to"),
            );
        }
        let before = self.diags.len();
        let (operation, templates) = if is_sql {
            let (text, at) = args.string("query", true, &mut self.diags)?;
            let template = self.template(&args, at, &text)?;
            self.check_sql_quotes(&args, at, &text, &template);
            (
                Operation::Sql {
                    query: template.clone(),
                },
                vec![(template, at, text, Place::Sql)],
            )
        } else {
            self.http_operation(&args)?
        };
        for (t, at, text, _) in &templates {
            self.check_placeholders(&args, at, text, t, f);
        }
        let batch = match batch_args {
            Some(b) if !f.is_root => self.batch(&args, b, &templates, is_sql),
            _ => None,
        };
        if self.diags.len() > before {
            return None;
        }
        let shareable = !f.mutation
            && match &operation {
                Operation::Http(h) => h.method == reqwest::Method::GET,
                Operation::Sql { .. } => true,
            };
        let uses_auth = templates
            .iter()
            .any(|(t, ..)| t.placeholders().any(|p| p.scope == Scope::Auth));
        // A call with side effects is never served from a cache.
        let cache = if shareable {
            f.cache
                .or(self.type_cache)
                .unwrap_or(self.connectors[connector].cache)
        } else {
            CachePolicy::default()
        };
        let id = self.bindings.len();
        self.bindings.push(Arc::new(Binding {
            id,
            name: format!("{}.{}", f.owner, f.field),
            connector,
            operation,
            batch,
            shareable,
            cache,
            uses_auth,
        }));
        Some(id)
    }

    fn http_operation<'d>(&mut self, args: &Args<'d>) -> Option<(Operation, Vec<Located<'d>>)> {
        let mut templates = Vec::new();
        let (path_text, path_at) = args.string("path", true, &mut self.diags)?;
        if !path_text.starts_with('/') {
            self.diags.push(
                args.diag_at(path_at, "path must start with '/'")
                    .hint("write path: \"/users\"; the host comes from the connector's base_url"),
            );
        }
        let path = self.template(args, path_at, &path_text)?;
        templates.push((path.clone(), path_at, path_text, Place::Path));
        let method = match args.string("method", false, &mut self.diags) {
            None => reqwest::Method::GET,
            Some((m, at)) => match m.to_ascii_uppercase().as_str() {
                "GET" => reqwest::Method::GET,
                "POST" => reqwest::Method::POST,
                "PUT" => reqwest::Method::PUT,
                "PATCH" => reqwest::Method::PATCH,
                "DELETE" => reqwest::Method::DELETE,
                _ => {
                    self.diags.push(
                        args.diag_at(at, format!("unknown HTTP method '{m}'"))
                            .hint("use GET, POST, PUT, PATCH or DELETE"),
                    );
                    reqwest::Method::GET
                }
            },
        };
        let at = args.get("query").unwrap_or(path_at);
        let mut query = Vec::new();
        for (name, value, _) in directives::name_values(args, "query", &mut self.diags) {
            let t = self.template(args, at, &value)?;
            templates.push((t.clone(), at, value, Place::Query(name.clone())));
            query.push((name, t));
        }
        let at = args.get("headers").unwrap_or(path_at);
        let mut headers = Vec::new();
        for (name, value, _) in directives::name_values(args, "headers", &mut self.diags) {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.diags
                    .push(args.diag_at(at, format!("'{name}' is not a valid header name")));
            }
            let t = self.template(args, at, &value)?;
            templates.push((t.clone(), at, value, Place::Header));
            headers.push((name, t));
        }
        let body = match args.string("body", false, &mut self.diags) {
            Some((text, at)) => {
                let t = self.template(args, at, &text)?;
                templates.push((t.clone(), at, text, Place::Body));
                Some(t)
            }
            None => None,
        };
        let select = args
            .string("select", false, &mut self.diags)
            .map(|(s, _)| {
                s.split('.')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some((
            Operation::Http(HttpOperation {
                method,
                path,
                query,
                headers,
                body,
                select,
            }),
            templates,
        ))
    }

    fn template(
        &mut self,
        args: &Args,
        at: &Positioned<ConstValue>,
        text: &str,
    ) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                let (l, c) = position_in(at, text, e.offset);
                self.diags
                    .push(Diagnostic::new(args.file, l, c, e.message).hint(e.hint));
                None
            }
        }
    }

    fn check_placeholders(
        &mut self,
        args: &Args,
        at: &Positioned<ConstValue>,
        text: &str,
        t: &Template,
        f: &FieldCx,
    ) {
        for p in t.placeholders() {
            let (l, c) = position_in(at, text, p.offset);
            match p.scope {
                Scope::Args if !f.args.iter().any(|a| a == &p.path[0]) => {
                    self.diags.push(
                        Diagnostic::new(
                            args.file,
                            l,
                            c,
                            format!(
                                "{} names no argument of {}.{}",
                                p.display(),
                                f.owner,
                                f.field
                            ),
                        )
                        .hint(if f.args.is_empty() {
                            format!("declare it: {}({}: String)", f.field, p.path[0])
                        } else {
                            format!("arguments of {}: {}", f.field, f.args.join(", "))
                        }),
                    );
                }
                Scope::Parent if f.is_root => {
                    self.diags.push(
                        Diagnostic::new(
                            args.file,
                            l,
                            c,
                            format!(
                                "{} on root field {}.{}: a root field has no parent",
                                p.display(),
                                f.owner,
                                f.field
                            ),
                        )
                        .hint("use {{args.X}} with an argument instead"),
                    );
                }
                _ => {}
            }
        }
    }

    /// A placeholder inside '...' would be bound as a parameter, not spliced; the quotes are a mistake.
    fn check_sql_quotes(
        &mut self,
        args: &Args,
        at: &Positioned<ConstValue>,
        text: &str,
        t: &Template,
    ) {
        let mut quotes = 0usize;
        for s in &t.segments {
            match s {
                Segment::Text(txt) => quotes += txt.matches('\'').count(),
                Segment::Var(p) if quotes % 2 == 1 => {
                    let (l, c) = position_in(at, text, p.offset);
                    self.diags.push(
                        Diagnostic::new(args.file, l, c, format!("{} is inside a quoted SQL string", p.display()))
                            .hint("placeholders are bound parameters: write code = {{args.code}} without quotes"),
                    );
                }
                Segment::Var(_) => {}
            }
        }
    }

    fn batch(
        &mut self,
        args: &Args,
        b: directives::BatchArgs,
        templates: &[(Template, &Positioned<ConstValue>, String, Place)],
        is_sql: bool,
    ) -> Option<Batch> {
        let parents: Vec<(&Placeholder, &Place, &Template)> = templates
            .iter()
            .flat_map(|(t, _, _, place)| {
                t.placeholders()
                    .filter(|p| p.scope == Scope::Parent)
                    .map(move |p| (p, place, t))
            })
            .collect();
        let Some(&(parent, place, template)) = parents.first() else {
            self.diags.push(
                args.diag(format!("batched @{} has no {{{{parent.X}}}} placeholder to receive the parent values", args.name()))
                    .hint(if is_sql { "write WHERE column IN ({{parent.code}}) with batch: {key: \"column\"}" } else { "write query: [{name: \"id\", value: \"{{parent.userId}}\"}] with batch: {key: \"id\"}" }),
            );
            return None;
        };
        if parents.len() > 1 {
            self.diags.push(
                args.diag("a batched binding uses exactly one {{parent.X}} placeholder")
                    .hint("the parent values of the whole level go into that one placeholder"),
            );
            return None;
        }
        if is_sql && !in_list(template, parent) {
            self.diags.push(
                args.diag(format!(
                    "batched SQL must use {} inside IN (...)",
                    parent.display()
                ))
                .hint(format!("write WHERE {} IN ({})", b.key, parent.display())),
            );
            return None;
        }
        if !is_sql && !matches!(place, Place::Query(_)) {
            self.diags.push(
                args.diag(format!("batched @http must put {} in a query parameter", parent.display()))
                    .hint("write query: [{name: \"id\", value: \"{{parent.userId}}\"}]; a path placeholder cannot carry a list"),
            );
            return None;
        }
        Some(Batch {
            key: b.key,
            parent: parent.clone(),
            separator: b.separator,
            max_size: b.max_size.unwrap_or(if is_sql { 500 } else { 100 }),
        })
    }
}

/// A template with where it came from: its SDL argument, its text and its place.
type Located<'d> = (Template, &'d Positioned<ConstValue>, String, Place);

#[derive(Debug)]
enum Place {
    Sql,
    Path,
    Query(#[allow(dead_code)] String),
    Header,
    Body,
}

struct FieldCx<'a> {
    /// `@cache` on the field itself.
    cache: Option<CachePolicy>,
    owner: &'a str,
    field: &'a str,
    is_root: bool,
    args: &'a [String],
    mutation: bool,
}

/// Whether `p` stands alone inside `IN ( ... )`.
fn in_list(t: &Template, p: &Placeholder) -> bool {
    let idx = t
        .segments
        .iter()
        .position(|s| matches!(s, Segment::Var(v) if v == p));
    let Some(idx) = idx else { return false };
    let before = match idx.checked_sub(1).map(|i| &t.segments[i]) {
        Some(Segment::Text(s)) => s.trim_end().to_ascii_uppercase(),
        _ => return false,
    };
    let after = match t.segments.get(idx + 1) {
        Some(Segment::Text(s)) => s.trim_start(),
        _ => return false,
    };
    before.ends_with('(')
        && before[..before.len() - 1].trim_end().ends_with(" IN")
        && after.starts_with(')')
}

/// Position of byte `offset` of a string argument's text in the SDL file.
fn position_in(at: &Positioned<ConstValue>, text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    match before.rfind('\n') {
        None => (at.pos.line, at.pos.column + 1 + before.chars().count()),
        Some(nl) => (
            at.pos.line + before.matches('\n').count(),
            before[nl + 1..].chars().count() + 1,
        ),
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

    #[test]
    fn in_list_detection() {
        let t = Template::parse("SELECT * FROM r WHERE p in ( {{parent.code}} ) ORDER BY code")
            .unwrap();
        let p = t.placeholders().next().unwrap().clone();
        assert!(in_list(&t, &p));
        let t = Template::parse("SELECT * FROM r WHERE p = {{parent.code}}").unwrap();
        let p = t.placeholders().next().unwrap().clone();
        assert!(!in_list(&t, &p));
    }
}
