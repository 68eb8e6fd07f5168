//! Introspection (`__schema`, `__type`) is answered by async-graphql from the caller's view:
//! the root field is printed back as a document of its own (fragments inlined, variables
//! written as their values) and run against the view's schema, whose data fields are
//! never reached from it.

use std::fmt::Write;

use async_graphql_parser::Positioned;
use async_graphql_parser::types::{Directive, ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql_value::{ConstValue, Value as GqlValue};
use serde_json::{Map, Value};

/// The text of a document selecting `field` alone.
pub(super) fn document(
    field: &Field,
    doc: &ExecutableDocument,
    vars: &Map<String, Value>,
) -> String {
    let mut out = String::from("{");
    print_field(field, doc, vars, &mut out);
    out.push('}');
    out
}

fn print_field(f: &Field, doc: &ExecutableDocument, vars: &Map<String, Value>, out: &mut String) {
    if let Some(alias) = &f.alias {
        let _ = write!(out, "{}:", alias.node);
    }
    out.push_str(f.name.node.as_str());
    if !f.arguments.is_empty() {
        out.push('(');
        for (i, (name, value)) in f.arguments.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:{}", name.node, literal(&value.node, vars));
        }
        out.push(')');
    }
    print_directives(&f.directives, vars, out);
    if !f.selection_set.node.items.is_empty() {
        print_set(&f.selection_set.node, doc, vars, out);
    }
    out.push(' ');
}

fn print_directives(
    directives: &[Positioned<Directive>],
    vars: &Map<String, Value>,
    out: &mut String,
) {
    for d in directives {
        let _ = write!(out, " @{}", d.node.name.node);
        if !d.node.arguments.is_empty() {
            out.push('(');
            for (i, (name, value)) in d.node.arguments.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:{}", name.node, literal(&value.node, vars));
            }
            out.push(')');
        }
    }
}

fn print_set(
    set: &SelectionSet,
    doc: &ExecutableDocument,
    vars: &Map<String, Value>,
    out: &mut String,
) {
    out.push('{');
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => print_field(&f.node, doc, vars, out),
            Selection::FragmentSpread(s) => {
                let Some(frag) = doc.fragments.get(&s.node.fragment_name.node) else {
                    continue;
                };
                let _ = write!(out, "... on {}", frag.node.type_condition.node.on.node);
                print_directives(&s.node.directives, vars, out);
                print_set(&frag.node.selection_set.node, doc, vars, out);
            }
            Selection::InlineFragment(i) => {
                out.push_str("...");
                if let Some(c) = &i.node.type_condition {
                    let _ = write!(out, " on {}", c.node.on.node);
                }
                print_directives(&i.node.directives, vars, out);
                print_set(&i.node.selection_set.node, doc, vars, out);
            }
        }
    }
    out.push('}');
}

/// A value as a GraphQL literal, its variables replaced by their values.
fn literal(v: &GqlValue, vars: &Map<String, Value>) -> String {
    let c = v.clone().into_const_with(|name| {
        Ok::<_, std::convert::Infallible>(
            vars.get(name.as_str())
                .cloned()
                .and_then(|j| ConstValue::from_json(j).ok())
                .unwrap_or(ConstValue::Null),
        )
    });
    match c {
        Ok(c) => c.to_string(),
        Err(e) => match e {},
    }
}
