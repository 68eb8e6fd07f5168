//! Reading the arguments of the binding directives (`@sql`, `@http`, `@map`, `@const`,
//! `@cache`, `@access`, `@suppress`, `@listSize`, `@page`, `@cursor`, `@discriminator`; `@outbox` and `@receipt` in
//! `outbox.rs`) into plain structs, reporting each
//! misuse at its place.

use async_graphql_parser::Positioned;
use async_graphql_parser::types::ConstDirective;
use async_graphql_value::ConstValue;

use crate::diagnostic::Diagnostic;

/// The directives Simpul reads; any other (but GraphQL's own) is an error.
pub const KNOWN: &[&str] = &[
    "sql",
    "http",
    "graphql",
    "map",
    "const",
    "cache",
    "access",
    "suppress",
    "listSize",
    "page",
    "cursor",
    "discriminator",
    "outbox",
    "receipt",
    "validate",
    "length",
    "builtin",
    "lookup",
];

/// The hint of an unknown directive: every directive Simpul reads.
pub fn known_hint() -> String {
    // `@builtin` marks the alerts' own fields (compile/alerts.graphql), not a deployment's.
    let names: Vec<String> = KNOWN
        .iter()
        .filter(|d| **d != "builtin")
        .map(|d| format!("@{d}"))
        .collect();
    match names.split_last() {
        Some((last, rest)) => format!("Simpul knows {} and {last}", rest.join(", ")),
        None => String::new(),
    }
}
/// Directives of the GraphQL specification, passed through.
pub const STANDARD: &[&str] = &["deprecated", "specifiedBy", "oneOf"];

/// A directive's arguments with the file name, for diagnostics.
pub struct Args<'a> {
    pub file: &'a str,
    pub directive: &'a Positioned<ConstDirective>,
}

impl<'a> Args<'a> {
    pub fn name(&self) -> &str {
        self.directive.node.name.node.as_str()
    }

    pub fn at(&self) -> (usize, usize) {
        (self.directive.pos.line, self.directive.pos.column)
    }

    pub fn diag(&self, message: impl Into<String>) -> Diagnostic {
        let (l, c) = self.at();
        Diagnostic::new(self.file, l, c, message)
    }

    pub fn diag_at(&self, arg: &Positioned<ConstValue>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.file, arg.pos.line, arg.pos.column, message)
    }

    pub fn get(&self, name: &str) -> Option<&'a Positioned<ConstValue>> {
        self.directive.node.get_argument(name)
    }

    /// Reports arguments not in `allowed`.
    pub fn check_names(&self, allowed: &[&str], diags: &mut Vec<Diagnostic>) {
        for (name, value) in &self.directive.node.arguments {
            if !allowed.contains(&name.node.as_str()) {
                diags.push(
                    self.diag_at(
                        value,
                        format!("@{} has no argument '{}'", self.name(), name.node),
                    )
                    .hint(format!(
                        "@{} takes: {}",
                        self.name(),
                        allowed.join(", ")
                    )),
                );
            }
        }
    }

    pub fn string(
        &self,
        name: &str,
        required: bool,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<(String, &'a Positioned<ConstValue>)> {
        match self.get(name) {
            Some(v) => match &v.node {
                ConstValue::String(s) => Some((s.clone(), v)),
                _ => {
                    diags.push(
                        self.diag_at(v, format!("@{}({name}:) must be a string", self.name())),
                    );
                    None
                }
            },
            None if required => {
                diags.push(
                    self.diag(format!("@{} needs the argument '{name}'", self.name()))
                        .hint(format!("write @{}({name}: \"...\")", self.name())),
                );
                None
            }
            None => None,
        }
    }
}

/// `batch: {key, separator, maxSize}`.
pub struct BatchArgs {
    pub key: String,
    pub separator: Option<String>,
    pub max_size: Option<usize>,
}

pub fn batch(args: &Args, diags: &mut Vec<Diagnostic>) -> Option<BatchArgs> {
    let value = args.get("batch")?;
    let ConstValue::Object(obj) = &value.node else {
        diags.push(args.diag_at(value, "batch must be an object: batch: {key: \"column\"}"));
        return None;
    };
    for k in obj.keys() {
        if !["key", "separator", "maxSize"].contains(&k.as_str()) {
            diags.push(
                args.diag_at(value, format!("batch has no field '{k}'"))
                    .hint("batch takes key, separator and maxSize"),
            );
        }
    }
    let key = match obj.get("key") {
        Some(ConstValue::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            diags.push(
                args.diag_at(
                    value,
                    "batch needs a key: the result column matched to each parent",
                )
                .hint("write batch: {key: \"parent_code\"}"),
            );
            return None;
        }
    };
    let separator = match obj.get("separator") {
        Some(ConstValue::String(s)) => Some(s.clone()),
        None => None,
        Some(_) => {
            diags.push(args.diag_at(value, "batch.separator must be a string"));
            None
        }
    };
    let max_size = match obj.get("maxSize") {
        Some(ConstValue::Number(n)) => match n.as_u64() {
            Some(n) if n > 0 => Some(n as usize),
            _ => {
                diags.push(args.diag_at(value, "batch.maxSize must be a positive integer"));
                None
            }
        },
        None => None,
        Some(_) => {
            diags.push(args.diag_at(value, "batch.maxSize must be a positive integer"));
            None
        }
    };
    Some(BatchArgs {
        key,
        separator,
        max_size,
    })
}

/// `[{name: "id", value: "{{parent.userId}}"}]` lists of `@http(query:, headers:)`.
pub fn name_values(
    args: &Args,
    arg: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(String, String, &'static str)> {
    let Some(value) = args.get(arg) else {
        return Vec::new();
    };
    let items: Vec<&ConstValue> = match &value.node {
        ConstValue::List(items) => items.iter().collect(),
        obj @ ConstValue::Object(_) => vec![obj],
        _ => {
            diags.push(
                args.diag_at(value, format!("{arg} must be a list of {{name, value}}"))
                    .hint(format!(
                        "write {arg}: [{{name: \"id\", value: \"{{{{args.id}}}}\"}}]"
                    )),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            ConstValue::Object(o) => match (o.get("name"), o.get("value")) {
                (Some(ConstValue::String(n)), Some(ConstValue::String(v))) if o.len() == 2 => {
                    out.push((n.clone(), v.clone(), ""));
                }
                _ => diags.push(args.diag_at(
                    value,
                    format!("each {arg} entry is {{name: String, value: String}}"),
                )),
            },
            _ => diags.push(args.diag_at(
                value,
                format!("each {arg} entry is {{name: String, value: String}}"),
            )),
        }
    }
    out
}

/// Converts a GraphQL literal to JSON (enum values become strings).
pub fn const_to_json(value: &ConstValue) -> serde_json::Value {
    value.clone().into_json().unwrap_or(serde_json::Value::Null)
}

/// `@page(max:, equal:, atLeast:, atMost:)`. Its cursor columns are the item type's
/// `@cursor`, filled in once every type is compiled (`compile::page`).
pub fn page(args: &Args, diags: &mut Vec<Diagnostic>) -> Option<crate::blueprint::page::Page> {
    use crate::blueprint::page::{Compare, Filter, Page};
    args.check_names(&["max", "equal", "atLeast", "atMost"], diags);
    let max = match args.get("max") {
        Some(Positioned {
            node: ConstValue::Number(n),
            ..
        }) => n.as_u64().filter(|n| *n >= 1),
        _ => None,
    };
    let Some(max) = max else {
        diags.push(
            args.diag("@page needs max: the most items one page holds, e.g. @page(max: 1000)"),
        );
        return None;
    };
    let mut filters = Vec::new();
    for (name, compare) in [
        ("equal", Compare::Equal),
        ("atLeast", Compare::AtLeast),
        ("atMost", Compare::AtMost),
    ] {
        let Some(value) = args.get(name) else {
            continue;
        };
        let ConstValue::Object(obj) = &value.node else {
            diags.push(args.diag_at(
                value,
                format!("@page({name}:) maps arguments to columns: {name}: {{region: \"vervar\"}}"),
            ));
            continue;
        };
        for (arg, column) in obj {
            match column {
                ConstValue::String(c) if !c.trim().is_empty() => filters.push(Filter {
                    arg: arg.to_string(),
                    column: c.clone(),
                    compare,
                }),
                _ => diags.push(args.diag_at(
                    value,
                    format!("@page({name}:): the column of argument '{arg}' must be a string"),
                )),
            }
        }
    }
    Some(Page {
        cursor: Vec::new(),
        max: usize::try_from(max).unwrap_or(usize::MAX),
        filters,
    })
}

/// `@cursor(from: ["a", "b"])`: the columns an item's cursor is made of.
pub fn cursor(args: &Args, diags: &mut Vec<Diagnostic>) -> Option<Vec<String>> {
    args.check_names(&["from"], diags);
    let columns: Option<Vec<String>> = match args.get("from").map(|v| &v.node) {
        Some(ConstValue::List(items)) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                ConstValue::String(s) if !s.trim().is_empty() => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    if columns.is_none() {
        diags.push(args.diag("@cursor needs from: the columns that name an item, e.g. @cursor(from: [\"vervar\", \"year\"])"));
    }
    columns
}

/// `@suppress(below:, of:, when:, withheld:)`; `None` (and a diagnostic) without a valid
/// `below`.
pub fn suppress(args: &Args, diags: &mut Vec<Diagnostic>) -> Option<crate::blueprint::Suppress> {
    args.check_names(&["below", "of", "when", "withheld"], diags);
    let below = match args.get("below") {
        Some(Positioned {
            node: ConstValue::Number(n),
            ..
        }) => n.as_i64().filter(|n| *n > 1),
        _ => None,
    };
    if below.is_none() {
        diags
            .push(args.diag("@suppress needs below: an integer above 1, e.g. @suppress(below: 5)"));
    }
    let mut column = |name| {
        args.string(name, false, diags)
            .map(|(c, _)| c)
            .filter(|c| !c.trim().is_empty())
    };
    let (of, when, withheld) = (column("of"), column("when"), column("withheld"));
    Some(crate::blueprint::Suppress {
        below: below?,
        of,
        when,
        withheld,
    })
}
