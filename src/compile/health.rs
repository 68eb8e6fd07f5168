//! `Query.sources`: the health of every connector, a field like any other of the schema
//! (its types from `sources.graphql`), answered live by the executor.

use std::collections::HashMap;

use async_graphql_parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use async_graphql_parser::{Positioned, parse_schema};

/// `Query.sources` and its types, added unless the schema has a `sources` query field.
const HEALTH_SDL: &str = include_str!("sources.graphql");

/// Adds the types of `Query.sources` to `defs`; true when the field is to be added.
pub(super) fn add_types(
    query_type: &str,
    defs: &mut HashMap<String, Positioned<async_graphql_parser::types::TypeDefinition>>,
    order: &mut Vec<String>,
) -> bool {
    let has_sources = defs.get(query_type).is_some_and(|q| match &q.node.kind {
        TypeKind::Object(o) => o.fields.iter().any(|f| f.node.name.node == "sources"),
        _ => false,
    });
    let Ok(doc) = parse_schema(HEALTH_SDL) else {
        return false;
    };
    if has_sources {
        return false;
    }
    for def in doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            let name = t.node.name.node.to_string();
            if let std::collections::hash_map::Entry::Vacant(e) = defs.entry(name.clone()) {
                order.push(name);
                e.insert(t);
            }
        }
    }
    true
}

pub(super) fn sources_field() -> crate::blueprint::FieldDef {
    crate::blueprint::FieldDef {
        name: "sources".into(),
        description: Some(
            "Kesehatan setiap sumber data OPD: status, keberhasilan terakhir, latensi, sirkuit"
                .into(),
        ),
        deprecation: None,
        ty: Type::new("[SourceHealth!]!").unwrap_or_else(|| Type {
            base: BaseType::Named(async_graphql_value::Name::new("SourceHealth")),
            nullable: false,
        }),
        args: Vec::new(),
        plan: crate::blueprint::FieldPlan::Sources,
        access: crate::access::Access::Public,
        suppress: None,
        list_size: None,
        page: None,
        at: (0, 0),
        federation: Vec::new(),
    }
}
