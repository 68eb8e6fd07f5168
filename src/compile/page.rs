//! `@page` once every type is compiled: an interface field's page applies to each
//! implementation that declares none, its cursor columns come from the item type's
//! `@cursor` field, and the field declares the arguments the page reads.

use std::collections::HashMap;
use std::sync::Arc;

use super::SCHEMA_FILE;
use crate::blueprint::page::{AFTER, FIRST, Page};
use crate::blueprint::{FieldDef, FieldPlan, Lookup, TypeDef, TypeDefKind};
use crate::diagnostic::Diagnostic;

pub(super) fn resolve(types: &mut [TypeDef], diags: &mut Vec<Diagnostic>) {
    // Interface fields' pages, by interface and field.
    let inherited: HashMap<(String, String), Arc<Page>> = types
        .iter()
        .filter_map(|t| match &t.kind {
            TypeDefKind::Interface { fields, .. } => Some((t, fields)),
            _ => None,
        })
        .flat_map(|(t, fields)| {
            fields.iter().filter_map(|f| {
                let page = f.page.clone()?;
                Some(((t.name.clone(), f.name.clone()), page))
            })
        })
        .collect();
    // Item types' cursor columns.
    let cursors: HashMap<String, Vec<String>> = types
        .iter()
        .filter_map(|t| match &t.kind {
            TypeDefKind::Object { fields, .. } => fields.iter().find_map(|f| match &f.plan {
                FieldPlan::Property(Lookup::Cursor(columns)) => {
                    Some((t.name.clone(), columns.clone()))
                }
                _ => None,
            }),
            _ => None,
        })
        .collect();
    for t in types.iter_mut() {
        let (TypeDefKind::Object { fields, implements }
        | TypeDefKind::Interface {
            fields, implements, ..
        }) = &mut t.kind
        else {
            continue;
        };
        for f in fields.iter_mut() {
            if f.page.is_none() {
                f.page = implements
                    .iter()
                    .find_map(|i| inherited.get(&(i.clone(), f.name.clone())).cloned());
            }
            let Some(page) = f.page.take() else {
                continue;
            };
            f.page = complete(&t.name, f, page, &cursors, diags);
        }
    }
}

/// The page with its cursor columns, or `None` and a diagnostic when the field cannot be
/// paged.
fn complete(
    owner: &str,
    f: &FieldDef,
    page: Arc<Page>,
    cursors: &HashMap<String, Vec<String>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Arc<Page>> {
    let diag = |message: String| Diagnostic::new(SCHEMA_FILE, f.at.0, f.at.1, message);
    let async_graphql_parser::types::BaseType::List(item) = &f.ty.base else {
        diags.push(diag(format!(
            "@page applies to list fields, not {owner}.{}",
            f.name
        )));
        return None;
    };
    let item = crate::blueprint::named(item);
    let Some(columns) = cursors.get(item) else {
        diags.push(
            diag(format!("@page on {owner}.{}: {item} has no @cursor field", f.name))
                .hint(format!("add to {item} a field such as cursor: String! @cursor(from: [\"id\"]), the columns that name one item")),
        );
        return None;
    };
    let mut wanted = vec![FIRST, AFTER];
    wanted.extend(page.filters.iter().map(|x| x.arg.as_str()));
    for arg in wanted {
        if !f.args.iter().any(|a| a.name == arg) {
            diags.push(
                diag(format!("@page on {owner}.{} reads the argument '{arg}', which the field does not declare", f.name))
                    .hint("a paged field declares first: Int, after: String and every argument its filters name"),
            );
        }
    }
    Some(Arc::new(Page {
        cursor: columns.clone(),
        ..(*page).clone()
    }))
}
