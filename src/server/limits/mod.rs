//! What one request may cost, checked before any work is done on it: `[limits]` in
//! simpul.toml.
//!
//! The text is scanned first (`scan`: tokens, and how deep brackets nest), because the
//! parser has no token limit and recurses on nesting. The parsed document is then measured
//! (`measure`) in one pass over its definitions, without ever being expanded. Both run on
//! every new request, so here and below nothing may panic.

mod measure;
mod scan;

use std::fmt;

use async_graphql_parser::types::ExecutableDocument;

use crate::blueprint::settings::Limits;
pub use scan::{scan, without_comments};

/// Why a document is refused before any work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A count over its configured limit; `found` says what was counted.
    Over {
        limit: &'static str,
        max: usize,
        found: String,
    },
    /// A fragment that spreads itself, directly or through others.
    Cycle { fragment: String },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Over { limit, max, found } => write!(f, "{found} (limit {limit} = {max})"),
            Refused::Cycle { fragment } => write!(f, "fragment `{fragment}` spreads itself"),
        }
    }
}

impl Refused {
    /// The name of the limit in simpul.toml (a cycle is refused whatever the limits).
    pub fn limit(&self) -> &'static str {
        match self {
            Refused::Over { limit, .. } => limit,
            Refused::Cycle { .. } => "fragment_cycle",
        }
    }
}

fn over(limit: &'static str, max: usize, found: String) -> Refused {
    Refused::Over { limit, max, found }
}

/// Scans, parses (without its comments) and measures `query`. `Ok(None)` when it does not
/// parse: the executor parses it again to report the syntax error, which the scan made safe
/// to do.
pub fn admit(query: &str, limits: &Limits) -> Result<Option<ExecutableDocument>, Refused> {
    scan(query, limits)?;
    let Ok(doc) = async_graphql_parser::parse_query(&*without_comments(query)) else {
        return Ok(None);
    };
    check(&doc, limits)?;
    Ok(Some(doc))
}

/// Whether `doc` asks for `__schema` or `__type` anywhere (validation allows them on the
/// query root only, so any mention is introspection). Linear in the document.
pub fn introspects(doc: &ExecutableDocument) -> bool {
    use async_graphql_parser::types::{Selection, SelectionSet};
    fn set(s: &SelectionSet) -> bool {
        s.items.iter().any(|item| match &item.node {
            Selection::Field(f) => {
                matches!(f.node.name.node.as_str(), "__schema" | "__type")
                    || set(&f.node.selection_set.node)
            }
            Selection::InlineFragment(i) => set(&i.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    doc.operations
        .iter()
        .any(|(_, op)| set(&op.node.selection_set.node))
        || doc
            .fragments
            .values()
            .any(|f| set(&f.node.selection_set.node))
}

/// Refuses `doc` over any limit, naming the first one passed.
fn check(doc: &ExecutableDocument, limits: &Limits) -> Result<(), Refused> {
    let m = measure::document(doc)?;
    let l = limits;
    // When several are passed, the most specific is named: ten thousand aliases are also ten
    // thousand fields and root fields, a fragment bomb at the root also root fields.
    let checks = [
        (
            m.operations,
            l.max_operations,
            "max_operations",
            "operations in the document",
        ),
        (
            m.aliases,
            l.max_aliases,
            "max_aliases",
            "aliases after fragment expansion",
        ),
        (
            m.fields,
            l.max_fields,
            "max_fields",
            "fields after fragment expansion",
        ),
        (m.depth, l.max_depth, "max_depth", "levels of nested fields"),
        (
            m.root_fields,
            l.max_root_fields,
            "max_root_fields",
            "root fields in one operation",
        ),
        (
            m.directives,
            l.max_directives_per_field,
            "max_directives_per_field",
            "directives on one field, fragment or operation",
        ),
    ];
    if let Some((found, max, limit, what)) = checks.into_iter().find(|(f, max, ..)| f > max) {
        return Err(over(limit, max, format!("{found} {what}")));
    }
    // Fragments and inline fragments nest selection sets without nesting fields; they get the
    // same spare levels as the scan gives brackets.
    if m.nesting > l.max_nesting() {
        return Err(over(
            "max_depth",
            l.max_depth,
            format!(
                "selection sets nest {} deep through fields and fragments, more than {}",
                m.nesting,
                l.max_nesting()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
// A test fails by panicking.
#[allow(clippy::panic)]
mod tests {
    use super::*;

    /// The defaults, as a deployment without simpul.toml gets them.
    pub(super) fn defaults() -> Limits {
        let mut diags = Vec::new();
        let gateway = crate::config::load_gateway(
            std::path::Path::new("/nonexistent"),
            &|_| None,
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
        gateway.limits
    }

    /// `levels` fragments, each spreading the one before twice, over `{ __typename }`.
    pub(super) fn bomb(levels: usize) -> String {
        let mut q = format!("query {{ ...F{levels} }}\nfragment F0 on Query {{ __typename }}\n");
        for i in 1..=levels {
            let p = i - 1;
            q.push_str(&format!("fragment F{i} on Query {{ ...F{p} ...F{p} }}\n"));
        }
        q
    }

    fn limit_named(query: &str, limits: &Limits) -> &'static str {
        match admit(query, limits) {
            Err(Refused::Over { limit, .. }) => limit,
            other => panic!("{query}: expected a limit, got {other:?}"),
        }
    }

    #[test]
    fn a_bomb_is_refused_naming_max_fields_and_quickly() {
        let started = std::time::Instant::now();
        let refused = admit(&bomb(30), &defaults());
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        match refused {
            Err(Refused::Over { limit, found, .. }) => {
                assert_eq!(limit, "max_fields");
                assert!(found.starts_with("1073741824 fields"), "{found}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_limit_is_named_just_past_its_default() {
        let l = defaults();
        let many = |n: usize, item: &dyn Fn(usize) -> String| {
            (0..n).map(item).collect::<Vec<_>>().join(" ")
        };
        let at = |q: String| admit(&q, &l).map(|d| d.is_some());
        let aliases = |n| format!("{{ a {{ {} }} }}", many(n, &|i| format!("a{i}: b")));
        assert_eq!(at(aliases(l.max_aliases)), Ok(true));
        assert_eq!(limit_named(&aliases(l.max_aliases + 1), &l), "max_aliases");
        let roots = |n| format!("{{ {} }}", many(n, &|_| "__typename".into()));
        assert_eq!(at(roots(l.max_root_fields)), Ok(true));
        assert_eq!(
            limit_named(&roots(l.max_root_fields + 1), &l),
            "max_root_fields"
        );
        let ops = |n| many(n, &|i| format!("query Q{i} {{ __typename }}"));
        assert_eq!(at(ops(l.max_operations)), Ok(true));
        assert_eq!(
            limit_named(&ops(l.max_operations + 1), &l),
            "max_operations"
        );
        let directives = |n| format!("{{ __typename {} }}", many(n, &|_| "@d".into()));
        assert_eq!(at(directives(l.max_directives_per_field)), Ok(true));
        assert_eq!(
            limit_named(&directives(l.max_directives_per_field + 1), &l),
            "max_directives_per_field"
        );
        let deep = |n| format!("{}x{}", "{ a ".repeat(n - 1) + "{ ", " }".repeat(n));
        assert_eq!(at(deep(l.max_depth)), Ok(true));
        assert_eq!(limit_named(&deep(l.max_depth + 1), &l), "max_depth");
        let fields = |n| {
            let per = 40;
            let sets = many(n / per, &|i| {
                format!("r{i}: a {{ {} }}", "b ".repeat(per - 1))
            });
            format!("{{ {sets} }}")
        };
        assert_eq!(at(fields(l.max_fields)), Ok(true));
        assert_eq!(limit_named(&fields(l.max_fields + 40), &l), "max_fields");
    }

    #[test]
    fn messages_name_the_limit_and_its_value() {
        let refused = admit(&bomb(12), &defaults()).err().map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("4096 fields after fragment expansion (limit max_fields = 2000)")
        );
    }

    #[test]
    fn the_deepest_document_the_scan_lets_through_parses_on_a_worker_stack() {
        let limits = Limits {
            max_depth: crate::blueprint::settings::MAX_DEPTH_CEILING,
            ..defaults()
        };
        let n = limits.max_nesting();
        let deepest = [
            format!("{}{}", "{ a ".repeat(n), "}".repeat(n)),
            format!("{{ a(x: {}1{}) }}", "[".repeat(n - 2), "]".repeat(n - 2)),
            format!("{{ a(x: {}1{}) }}", "{a: ".repeat(n - 2), "}".repeat(n - 2)),
        ];
        for q in deepest {
            let limits = limits.clone();
            // Tokio's worker threads have 2 MiB stacks.
            let parsed = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || admit(&q, &limits).is_ok())
                .map(|t| t.join());
            assert!(matches!(parsed, Ok(Ok(true))));
        }
    }

    #[test]
    fn a_document_that_does_not_parse_is_left_to_the_executor() {
        assert_eq!(admit("{ a", &defaults()).map(|d| d.is_some()), Ok(false));
    }
}
