//! The rules' queries checked against the schema: each validates in the INTERNAL view
//! (the one they run in), and `items` and the item paths name fields the query selects.

use async_graphql_parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::alerts::rule::Rule;
use crate::blueprint::Blueprint;
use crate::diagnostic::Diagnostic;

/// Every rule problem of `bp`; `schema` is its INTERNAL view's.
pub async fn problems(bp: &Blueprint, schema: &async_graphql::dynamic::Schema) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rule in &bp.rules {
        let place = |l: usize, c: usize| {
            let (ql, qc) = rule.query_at;
            if l <= 1 {
                (ql, qc + c.saturating_sub(1))
            } else {
                (ql + l - 1, c)
            }
        };
        let errors = crate::alerts::run::validate(schema, &rule.query).await;
        for (message, l, c) in &errors {
            let (l, c) = place(*l, *c);
            out.push(
                Diagnostic::new(&rule.file, l, c, format!("query: {message}"))
                    .hint("the query runs in the INTERNAL view: only its fields can be read"),
            );
        }
        if !errors.is_empty() {
            continue;
        }
        if let Ok(doc) = async_graphql_parser::parse_query(&rule.query) {
            paths(rule, &doc, &mut out);
        }
    }
    out
}

/// `items` must lead through selected fields, and the item paths start at a field
/// selected on the items.
fn paths(rule: &Rule, doc: &ExecutableDocument, out: &mut Vec<Diagnostic>) {
    let Some((_, op)) = doc.operations.iter().next() else {
        return;
    };
    let mut set = &op.node.selection_set.node;
    for seg in &rule.items {
        match selected(set, seg) {
            Some(next) => set = next,
            None => {
                let (l, c) = rule.items_at;
                out.push(
                    Diagnostic::new(
                        &rule.file,
                        l,
                        c,
                        format!("items: the query selects no `{seg}` there"),
                    )
                    .hint(format!("selected: {}", keys(set).join(", "))),
                );
                return;
            }
        }
    }
    let paths = [
        ("region", &rule.region),
        ("region_name", &rule.region_name),
        ("key", &rule.key),
    ];
    for ((what, path), (l, c)) in paths.into_iter().zip(rule.paths_at) {
        let Some(first) = path.as_ref().and_then(|p| p.first()) else {
            continue;
        };
        if selected(set, first).is_none() {
            out.push(
                Diagnostic::new(
                    &rule.file,
                    l,
                    c,
                    format!("{what}: the items carry no `{first}`"),
                )
                .hint(format!("each item has: {}", keys(set).join(", "))),
            );
        }
    }
}

/// The selection of the field whose response key is `key` (scalars have an empty one).
fn selected<'a>(set: &'a SelectionSet, key: &str) -> Option<&'a SelectionSet> {
    set.items.iter().find_map(|s| match &s.node {
        Selection::Field(f) => {
            let name = f.node.alias.as_ref().unwrap_or(&f.node.name).node.as_str();
            (name == key).then_some(&f.node.selection_set.node)
        }
        Selection::InlineFragment(i) => selected(&i.node.selection_set.node, key),
        Selection::FragmentSpread(_) => None,
    })
}

fn keys(set: &SelectionSet) -> Vec<String> {
    set.items
        .iter()
        .filter_map(|s| match &s.node {
            Selection::Field(f) => Some(
                f.node
                    .alias
                    .as_ref()
                    .unwrap_or(&f.node.name)
                    .node
                    .to_string(),
            ),
            _ => None,
        })
        .collect()
}
