//! What a parsed document costs once its fragments are expanded, computed without expanding
//! them: each fragment is costed once, after the fragments it spreads, and its cost is added
//! wherever it is spread, so a fragment spread twice counts twice. Counts saturate instead
//! of overflowing; a fragment cycle is refused.

use std::collections::{HashMap, HashSet};

use async_graphql_parser::Positioned;
use async_graphql_parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};

use super::Refused;

/// What a selection set costs once its fragments are expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cost {
    /// Fields, at every level.
    fields: usize,
    /// Fields with an alias, at every level.
    aliases: usize,
    /// Fields at the top level: an operation's root fields.
    top: usize,
    /// Deepest field nesting: `{ a { b } }` is 2.
    depth: usize,
    /// Deepest selection set, counting fragment spreads and inline fragments as levels too
    /// (the recursion async-graphql's validator goes through).
    nesting: usize,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.fields = self.fields.saturating_add(other.fields);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.top = self.top.saturating_add(other.top);
        self.depth = self.depth.max(other.depth);
        self.nesting = self.nesting.max(other.nesting);
    }
}

/// The costs of every fragment, and the most directives seen in one place.
#[derive(Default)]
struct Walk<'d> {
    fragments: HashMap<&'d str, Cost>,
    directives: usize,
}

impl<'d> Walk<'d> {
    fn directives(&mut self, list: &[Positioned<Directive>]) {
        self.directives = self.directives.max(list.len());
    }

    /// The cost of `set`; every fragment it spreads is already in `self.fragments` (an
    /// unknown one costs nothing here: validation reports it).
    fn selection_set(&mut self, set: &'d SelectionSet) -> Cost {
        let mut cost = Cost::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    self.directives(&f.directives);
                    let children = self.selection_set(&f.selection_set.node);
                    let has_set = !f.selection_set.node.items.is_empty();
                    cost.add(Cost {
                        fields: children.fields.saturating_add(1),
                        aliases: children
                            .aliases
                            .saturating_add(usize::from(f.alias.is_some())),
                        top: 1,
                        depth: children.depth.saturating_add(1),
                        nesting: children.nesting.saturating_add(usize::from(has_set)),
                    });
                }
                Selection::FragmentSpread(s) => {
                    self.directives(&s.node.directives);
                    let name = s.node.fragment_name.node.as_str();
                    if let Some(&inner) = self.fragments.get(name) {
                        cost.add(Cost {
                            nesting: inner.nesting.saturating_add(1),
                            ..inner
                        });
                    }
                }
                Selection::InlineFragment(i) => {
                    self.directives(&i.node.directives);
                    let inner = self.selection_set(&i.node.selection_set.node);
                    cost.add(Cost {
                        nesting: inner.nesting.saturating_add(1),
                        ..inner
                    });
                }
            }
        }
        cost
    }

    /// Costs every fragment once, each after the fragments it spreads (an explicit stack,
    /// since a chain of fragments can be as long as the document allows).
    fn fragments(&mut self, doc: &'d ExecutableDocument) -> Result<(), Refused> {
        let mut on_path = HashSet::new();
        for start in doc.fragments.keys() {
            if self.fragments.contains_key(start.as_str()) {
                continue;
            }
            let mut stack = vec![(start.as_str(), spreads(doc, start.as_str()), 0)];
            on_path.insert(start.as_str());
            while let Some((name, names, next)) = stack.last_mut() {
                let name = *name;
                let spread = names.get(*next).copied();
                *next += 1;
                match spread {
                    Some(s) if self.fragments.contains_key(s) => {}
                    Some(s) if on_path.contains(s) => {
                        return Err(Refused::Cycle {
                            fragment: s.to_string(),
                        });
                    }
                    Some(s) if doc.fragments.contains_key(s) => {
                        on_path.insert(s);
                        stack.push((s, spreads(doc, s), 0));
                    }
                    Some(_) => {}
                    None => {
                        if let Some(def) = doc.fragments.get(name) {
                            self.directives(&def.node.directives);
                            let cost = self.selection_set(&def.node.selection_set.node);
                            self.fragments.insert(name, cost);
                        }
                        on_path.remove(name);
                        stack.pop();
                    }
                }
            }
        }
        Ok(())
    }
}

/// The fragments `name`'s selection set spreads, at any level.
fn spreads<'d>(doc: &'d ExecutableDocument, name: &str) -> Vec<&'d str> {
    fn walk<'d>(set: &'d SelectionSet, out: &mut Vec<&'d str>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => walk(&f.node.selection_set.node, out),
                Selection::FragmentSpread(s) => out.push(s.node.fragment_name.node.as_str()),
                Selection::InlineFragment(i) => walk(&i.node.selection_set.node, out),
            }
        }
    }
    let mut out = Vec::new();
    if let Some(def) = doc.fragments.get(name) {
        walk(&def.node.selection_set.node, &mut out);
    }
    out
}

/// What the whole document costs: fields and aliases summed over its operations (every
/// operation is validated), depth and root fields of the largest one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Measure {
    pub operations: usize,
    pub fields: usize,
    pub aliases: usize,
    pub root_fields: usize,
    pub depth: usize,
    pub nesting: usize,
    pub directives: usize,
}

/// Measures `doc` in time linear in its size; a fragment cycle is refused.
pub fn document(doc: &ExecutableDocument) -> Result<Measure, Refused> {
    let mut walk = Walk::default();
    walk.fragments(doc)?;
    let mut m = Measure::default();
    for (_, op) in doc.operations.iter() {
        let op = &op.node;
        walk.directives(&op.directives);
        for v in &op.variable_definitions {
            walk.directives(&v.node.directives);
        }
        let cost = walk.selection_set(&op.selection_set.node);
        m.operations += 1;
        m.fields = m.fields.saturating_add(cost.fields);
        m.aliases = m.aliases.saturating_add(cost.aliases);
        m.root_fields = m.root_fields.max(cost.top);
        m.depth = m.depth.max(cost.depth);
        m.nesting = m.nesting.max(cost.nesting);
    }
    m.directives = walk.directives;
    Ok(m)
}

#[cfg(test)]
// A test fails by panicking.
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::server::limits::tests::bomb;

    fn parse(query: &str) -> ExecutableDocument {
        match async_graphql_parser::parse_query(query) {
            Ok(doc) => doc,
            Err(e) => panic!("{query}: {e}"),
        }
    }

    fn measured(query: &str) -> Measure {
        match document(&parse(query)) {
            Ok(m) => m,
            Err(e) => panic!("{query}: {e}"),
        }
    }

    #[test]
    fn a_fragment_bomb_counts_two_to_the_n_fields_without_expanding() {
        for n in [1, 10, 30, 62] {
            let m = measured(&bomb(n));
            assert_eq!(m.fields, 1usize << n, "{n} levels");
            assert_eq!(m.root_fields, 1usize << n, "{n} levels");
            assert_eq!(m.depth, 1);
        }
        let m = measured(&bomb(200));
        assert_eq!(m.fields, usize::MAX, "saturates instead of overflowing");
    }

    #[test]
    fn each_fragment_is_costed_once_and_added_where_spread() {
        let m = measured(
            "query { a: x { ...Two } b: y { ...Two ...Two } }
             fragment Two on T { p q: r { s } }",
        );
        // x and y, then three copies of Two's three fields (p, r and s; r is aliased).
        assert_eq!(m.fields, 2 + 3 * 3);
        assert_eq!(m.aliases, 2 + 3);
        assert_eq!(m.root_fields, 2);
        assert_eq!(m.depth, 3);
        let mut walk = Walk::default();
        let doc = parse("{ ...B } fragment A on T { x } fragment B on T { ...A ...A }");
        assert!(walk.fragments(&doc).is_ok());
        assert_eq!(walk.fragments.len(), 2, "one entry per fragment");
        assert_eq!(walk.fragments.get("B").map(|c| c.fields), Some(2));
    }

    #[test]
    fn a_long_chain_of_fragments_needs_no_deep_recursion() {
        let mut q = String::from("query { ...F0 } fragment F5000 on Query { __typename }\n");
        for i in 0..5000 {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        let m = measured(&q);
        assert_eq!((m.fields, m.nesting), (1, 5001));
    }

    #[test]
    fn fragment_cycles_are_refused() {
        for q in [
            "query { ...A } fragment A on Query { ...A }",
            "query { ...A } fragment A on Query { x { ...B } } fragment B on T { ...C } fragment C on T { y { ...A } }",
            "query { x } fragment A on Query { ...B } fragment B on Query { ...A }",
        ] {
            assert!(
                matches!(document(&parse(q)), Err(Refused::Cycle { .. })),
                "{q}"
            );
        }
        assert!(document(&parse("query { ...A ...A } fragment A on Query { x }")).is_ok());
    }

    #[test]
    fn operations_depth_aliases_roots_and_directives_are_counted() {
        let m = measured(
            "query A($v: Int @d) @d { a { b { c } } } query B { x: a y: a z: a @d @d @e }
             fragment U on Query { u @skip(if: true) }",
        );
        assert_eq!(m.operations, 2);
        assert_eq!(m.fields, 6);
        assert_eq!(m.depth, 3);
        assert_eq!(m.aliases, 3);
        assert_eq!(m.root_fields, 3);
        assert_eq!(m.directives, 3);
        let m = measured("{ a { ... on T { ... on T { ...F } } } } fragment F on T { b }");
        assert_eq!((m.depth, m.nesting), (2, 4));
    }
}
