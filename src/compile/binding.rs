//! Compiling a field's binding (`@sql`, `@http`): its connector, its operation, its
//! placeholders checked against what the field can read, and its batch.

use std::sync::Arc;

use async_graphql_parser::Positioned;
use async_graphql_parser::types::ConstDirective;
use async_graphql_value::ConstValue;

use super::SCHEMA_FILE;
use super::directives::{self, Args};
use super::fields::Cx;
use super::template::{Placeholder, Scope, Segment, Template};
use crate::blueprint::{Batch, Binding, BindingPlaces, HttpOperation, Operation};
use crate::config::CachePolicy;
use crate::diagnostic::Diagnostic;

impl Cx<'_> {
    pub(super) fn binding(&mut self, d: &Positioned<ConstDirective>, f: &FieldCx) -> Option<usize> {
        let args = Args {
            file: SCHEMA_FILE,
            directive: d,
        };
        if args.name() == "graphql" {
            return self.graphql_binding(&args, f);
        }
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
        let (connector, connector_name, connector_at) = self.connector(&args)?;
        let connectors = self.connectors;
        let conn = connectors.get(connector)?;
        let kind = &conn.kind;
        if is_sql != kind.is_sql() || matches!(kind, crate::config::ConnectorKind::Graphql { .. }) {
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
            self.diags.push(diag.hint(
                if matches!(kind, crate::config::ConnectorKind::Graphql { .. }) {
                    "use @graphql(connector: ..., field: ...)"
                } else if is_sql {
                    "use @http(connector: ..., path: ...)"
                } else {
                    "use @sql(connector: ..., query: \"SELECT ...\")"
                },
            ));
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
                Operation::Sql { .. } | Operation::Graphql(_) => true,
            };
        let uses_auth = templates
            .iter()
            .any(|(t, ..)| t.placeholders().any(|p| p.scope == Scope::Auth));
        // A call with side effects is never served from a cache.
        let cache = if shareable {
            f.cache.or(self.type_cache).unwrap_or(conn.cache)
        } else {
            CachePolicy::default()
        };
        let places = BindingPlaces {
            directive: args.at(),
            batch: args.get("batch").map(|b| (b.pos.line, b.pos.column)),
            parents: templates
                .iter()
                .flat_map(|(t, at, text, _)| {
                    t.placeholders()
                        .filter(|p| p.scope == Scope::Parent)
                        .map(|p| (p.clone(), position_in(at, text, p.offset)))
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
            operation,
            batch,
            shareable,
            cache,
            uses_auth,
        }));
        Some(id)
    }

    /// The connector a binding directive names, reported when unknown.
    pub(super) fn connector<'d>(
        &mut self,
        args: &Args<'d>,
    ) -> Option<(usize, String, &'d Positioned<ConstValue>)> {
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
        Some((connector, connector_name, connector_at))
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

    pub(super) fn template(
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

    pub(super) fn check_placeholders(
        &mut self,
        args: &Args,
        at: &Positioned<ConstValue>,
        text: &str,
        t: &Template,
        f: &FieldCx,
    ) {
        for p in t.placeholders() {
            let (l, c) = position_in(at, text, p.offset);
            let first = p.path.first().map(String::as_str).unwrap_or_default();
            match p.scope {
                Scope::Args if !f.args.iter().any(|a| a == first) => {
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
                            format!("declare it: {}({first}: String)", f.field)
                        } else {
                            format!("arguments of {}: {}", f.field, f.args.join(", "))
                        }),
                    );
                }
                Scope::Outbox
                    if !f.outbox || !["id", "acceptedAt"].contains(&first) || p.path.len() > 1 =>
                {
                    self.diags.push(
                        Diagnostic::new(args.file, l, c, format!("{} is not an outbox value here", p.display()))
                            .hint("{{outbox.id}} (the receipt id, also sent as Idempotency-Key) and {{outbox.acceptedAt}} exist in the write of a mutation with @outbox"),
                    );
                }
                Scope::View if first != "tier" || p.path.len() > 1 => {
                    self.diags.push(
                        Diagnostic::new(
                            args.file,
                            l,
                            c,
                            format!("{} is not a value of the view", p.display()),
                        )
                        .hint("{{view.tier}} is the caller's tier: PUBLIC, INTERNAL or RESTRICTED"),
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

pub(super) struct FieldCx<'a> {
    /// `@cache` on the field itself.
    pub cache: Option<CachePolicy>,
    pub owner: &'a str,
    pub field: &'a str,
    pub is_root: bool,
    pub args: &'a [String],
    pub mutation: bool,
    /// Has `@outbox`: its templates may read `{{outbox.id}}` and `{{outbox.acceptedAt}}`.
    pub outbox: bool,
}

/// Whether `p` stands alone inside `IN ( ... )`.
fn in_list(t: &Template, p: &Placeholder) -> bool {
    let idx = t
        .segments
        .iter()
        .position(|s| matches!(s, Segment::Var(v) if v == p));
    let Some(idx) = idx else { return false };
    let before = match idx.checked_sub(1).and_then(|i| t.segments.get(i)) {
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
pub(super) fn position_in(
    at: &Positioned<ConstValue>,
    text: &str,
    offset: usize,
) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    match before.rfind('\n') {
        None => (at.pos.line, at.pos.column + 1 + before.chars().count()),
        Some(nl) => (
            at.pos.line + before.matches('\n').count(),
            before[nl + 1..].chars().count() + 1,
        ),
    }
}

/// Binding uids: unique across every blueprint the process compiles (reloads included).
pub(super) static NEXT_BINDING: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(1);

#[cfg(test)]
mod tests {
    use super::*;

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
