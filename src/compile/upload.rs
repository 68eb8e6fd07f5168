//! The built-in `Upload` scalar (`upload.graphql`, coerced by `plan::upload`): added when
//! the schema uses it without declaring it. Declared, it must be `scalar Upload`; and it is
//! an input type only: a file is something a client sends, never an answer.

use std::collections::HashMap;

use async_graphql_parser::types::{
    FieldDefinition, TypeDefinition, TypeKind, TypeSystemDefinition,
};
use async_graphql_parser::{Positioned, parse_schema};

use super::SCHEMA_FILE;
use crate::blueprint::named;
use crate::diagnostic::Diagnostic;
use crate::plan::upload::NAME;

const UPLOAD_SDL: &str = include_str!("upload.graphql");

/// Adds `scalar Upload` to `defs` when an argument or input field uses it and the schema
/// does not declare it; reports a declaration of another kind and fields that return it.
pub(super) fn add_type(
    defs: &mut HashMap<String, Positioned<TypeDefinition>>,
    order: &mut Vec<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut used = false;
    for def in defs.values() {
        let fields: &[Positioned<FieldDefinition>] = match &def.node.kind {
            TypeKind::Object(o) => &o.fields,
            TypeKind::Interface(i) => &i.fields,
            TypeKind::InputObject(i) => {
                used |= i.fields.iter().any(|f| named(&f.node.ty.node) == NAME);
                continue;
            }
            _ => continue,
        };
        for f in fields {
            used |= f
                .node
                .arguments
                .iter()
                .any(|a| named(&a.node.ty.node) == NAME);
            if named(&f.node.ty.node) == NAME {
                // Added all the same, so the field gets this one diagnostic, not "unknown".
                used = true;
                let at = f.node.ty.pos;
                diags.push(
                    Diagnostic::new(
                        SCHEMA_FILE,
                        at.line,
                        at.column,
                        format!(
                            "{}.{} returns {NAME}, a file a client sends: it is an input type only",
                            def.node.name.node, f.node.name.node
                        ),
                    )
                    .hint("return the file's stored form instead, e.g. an object with its url and sha256"),
                );
            }
        }
    }
    if let Some(def) = defs.get(NAME) {
        if !matches!(def.node.kind, TypeKind::Scalar) {
            let at = def.node.name.pos;
            diags.push(
                Diagnostic::new(
                    SCHEMA_FILE,
                    at.line,
                    at.column,
                    format!(
                        "{NAME} is the built-in file scalar; it cannot be another kind of type"
                    ),
                )
                .hint("declare it as `scalar Upload`, or leave it undeclared"),
            );
        }
        return;
    }
    if !used {
        return;
    }
    let Ok(doc) = parse_schema(UPLOAD_SDL) else {
        return;
    };
    for def in doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            order.push(t.node.name.node.to_string());
            defs.insert(t.node.name.node.to_string(), t);
        }
    }
}
