//! Apollo Federation v2: the directives a subgraph schema carries (kept on types and fields,
//! printed into `_service { sdl }`), the plumbing `[federation] enabled` adds to the schema
//! (`_Any`, `_Service`, `_Entity`, `Query._service`, `Query._entities`), and `@lookup`, the
//! Query fields `_entities` resolves representations through.

use async_graphql_parser::Positioned;
use async_graphql_parser::types::{ConstDirective, TypeKind, TypeSystemDefinition};
use async_graphql_value::ConstValue;

use super::SCHEMA_FILE;
use crate::access::View;
use crate::blueprint::{EntityLookup, FieldDef, FieldPlan, InputDef, TypeDef, TypeDefKind, named};
use crate::diagnostic::Diagnostic;

/// The federation spec this subgraph links.
pub const SPEC: &str = "https://specs.apollo.dev/federation/v2.5";

/// Federation directives allowed on a type (object or interface).
pub const TYPE_DIRECTIVES: &[&str] = &[
    "key",
    "shareable",
    "inaccessible",
    "tag",
    "interfaceObject",
    "extends",
    "authenticated",
    "requiresScopes",
    "policy",
];

/// Federation directives allowed on a field.
pub const FIELD_DIRECTIVES: &[&str] = &[
    "shareable",
    "inaccessible",
    "tag",
    "external",
    "requires",
    "provides",
    "override",
    "authenticated",
    "requiresScopes",
    "policy",
];

/// A federation directive as written, for the subgraph's SDL: `@key(fields: "code")`.
pub fn print_directive(d: &Positioned<ConstDirective>) -> String {
    let mut out = format!("@{}", d.node.name.node);
    if !d.node.arguments.is_empty() {
        let args: Vec<String> = d
            .node
            .arguments
            .iter()
            .map(|(n, v)| format!("{}: {}", n.node, v.node))
            .collect();
        out.push('(');
        out.push_str(&args.join(", "));
        out.push(')');
    }
    out
}

/// The key fields of each `@key(fields:)` on a type, top-level names only (`"code year"`
/// is two fields), with whether the key is resolvable here (`resolvable: false` is not).
pub fn keys(directives: &[Positioned<ConstDirective>]) -> Vec<(Vec<String>, bool)> {
    directives
        .iter()
        .filter(|d| d.node.name.node == "key")
        .filter_map(|d| {
            let fields = match d.node.get_argument("fields") {
                Some(Positioned {
                    node: ConstValue::String(s),
                    ..
                }) => s,
                _ => return None,
            };
            let resolvable = !matches!(
                d.node.get_argument("resolvable"),
                Some(Positioned {
                    node: ConstValue::Boolean(false),
                    ..
                })
            );
            Some((top_level(fields), resolvable))
        })
        .collect()
}

/// The top-level field names of a selection `"id region { code }"`: `id`, `region`.
fn top_level(fields: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for token in fields
        .replace('{', " { ")
        .replace('}', " } ")
        .split_whitespace()
    {
        match token {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            name if depth == 0 => out.push(name.to_string()),
            _ => {}
        }
    }
    out
}

/// The SDL `[federation] enabled` appends to schema.graphql: `_Any`, `_Service`, the
/// `_Entity` union of the object types with a resolvable `@key`, and the two Query fields.
pub(super) fn plumbing(sdl: &str, query_type: &str) -> String {
    let mut entities: Vec<String> = Vec::new();
    if let Ok(doc) = async_graphql_parser::parse_schema(sdl) {
        for def in &doc.definitions {
            if let TypeSystemDefinition::Type(t) = def
                && matches!(t.node.kind, TypeKind::Object(_))
                && keys(&t.node.directives).iter().any(|(_, r)| *r)
            {
                let name = t.node.name.node.to_string();
                if !entities.contains(&name) {
                    entities.push(name);
                }
            }
        }
    }
    let mut out = String::from(
        "\n\"\"\"An entity's representation: its __typename and key fields\"\"\"\nscalar _Any\n\
         \"\"\"This subgraph's schema, for a federation router\"\"\"\n\
         type _Service {\n  sdl: String\n}\n",
    );
    if !entities.is_empty() {
        out.push_str(&format!("union _Entity = {}\n", entities.join(" | ")));
    }
    out.push_str(&format!(
        "extend type {query_type} {{\n  _service: _Service!\n"
    ));
    if !entities.is_empty() {
        out.push_str(
            "  _entities(representations: [_Any!]!): [_Entity]! @builtin(name: \"entities\")\n",
        );
    }
    out.push_str("}\n");
    out
}

/// Whether a type or field name is federation plumbing, never printed in `_service.sdl`.
fn plumbing_name(name: &str) -> bool {
    matches!(
        name,
        "_Any" | "_Service" | "_Entity" | "_service" | "_entities"
    )
}

/// A `@lookup` field met while compiling: `Query.<field>` resolves entities of its type.
pub struct PendingLookup {
    pub field: String,
    pub at: (usize, usize),
}

/// The entity resolvers of the `@lookup` fields of `query_type`: each a bound field that
/// takes key fields as arguments (one call per representation) or none (one call, rows
/// matched by key).
pub(super) fn lookups(
    pending: Vec<PendingLookup>,
    types: &[TypeDef],
    query_type: &str,
    bindings: &[std::sync::Arc<crate::blueprint::Binding>],
    diags: &mut Vec<Diagnostic>,
) -> Vec<EntityLookup> {
    let mut out = Vec::new();
    let query = types.iter().find(|t| t.name == query_type);
    for p in pending {
        let def = query.and_then(|q| match &q.kind {
            TypeDefKind::Object { fields, .. } => fields.iter().find(|f| f.name == p.field),
            _ => None,
        });
        let mut problem = |m: String, hint: &str| {
            diags.push(Diagnostic::new(SCHEMA_FILE, p.at.0, p.at.1, m).hint(hint));
        };
        let Some(def) = def else {
            problem(
                format!(
                    "@lookup on {}: only fields of {query_type} resolve entities",
                    p.field
                ),
                "put @lookup on a Query field that returns the entity type",
            );
            continue;
        };
        let FieldPlan::Bound(id) = def.plan else {
            problem(
                format!("@lookup: {query_type}.{} has no binding", p.field),
                "a lookup is answered by its @sql, @http or @graphql binding",
            );
            continue;
        };
        let Some(binding) = bindings.get(id) else {
            continue;
        };
        let typename = named(&def.ty).to_string();
        let Some(ty) = types.iter().find(|t| t.name == typename) else {
            continue;
        };
        let key_fields: Vec<&str> = match &ty.kind {
            TypeDefKind::Object { .. } | TypeDefKind::Interface { .. } => ty
                .keys
                .iter()
                .flat_map(|k| k.iter().map(String::as_str))
                .collect(),
            _ => Vec::new(),
        };
        if key_fields.is_empty() {
            problem(
                format!("@lookup: {typename} has no @key"),
                "add @key(fields: \"id\") to the type the lookup returns",
            );
            continue;
        }
        let required: Vec<&InputDef> = def.args.iter().filter(|a| !a.ty.nullable).collect();
        if let Some(a) = def
            .args
            .iter()
            .find(|a| !key_fields.contains(&a.name.as_str()))
        {
            problem(
                format!(
                    "@lookup: argument {} of {query_type}.{} is not a key field of {typename}",
                    a.name, p.field
                ),
                "a lookup's arguments are named like the key fields of the type's @key",
            );
            continue;
        }
        let list = matches!(def.ty.base, async_graphql_parser::types::BaseType::List(_));
        if list && !required.is_empty() {
            problem(
                format!(
                    "@lookup: {query_type}.{} returns a list and takes arguments",
                    p.field
                ),
                "a list lookup returns every entity of the type (rows matched by key); a lookup with key arguments returns one",
            );
            continue;
        }
        if out.iter().any(|l: &EntityLookup| l.typename == typename) {
            problem(
                format!("@lookup: {typename} already has a lookup"),
                "keep @lookup on one Query field per entity type",
            );
            continue;
        }
        out.push(EntityLookup {
            typename,
            binding: binding.clone(),
            args: def.args.iter().map(|a| a.name.clone()).collect(),
            key: ty.keys.clone(),
            list,
        });
    }
    out
}

/// `_service { sdl }`: the schema as the PUBLIC view reads it, binding directives left out
/// and federation directives kept, linked to the federation spec. Subscriptions stay on
/// Simpul's own endpoint.
pub fn subgraph_sdl(types: &[TypeDef], subscription: Option<&str>) -> String {
    let view = View::Public;
    let shown = crate::schema::Shown::new(types, &view);
    let mut imports: Vec<String> = Vec::new();
    let mut body = String::new();
    for t in types {
        if plumbing_name(&t.name) || Some(t.name.as_str()) == subscription {
            continue;
        }
        if !view.reads(&t.access) {
            continue;
        }
        for d in &t.federation {
            note_import(d, &mut imports);
        }
        description(&t.description, "", &mut body);
        let directives = directive_list(&t.federation);
        match &t.kind {
            TypeDefKind::Object { fields, implements }
            | TypeDefKind::Interface {
                fields, implements, ..
            } => {
                let keyword = match &t.kind {
                    TypeDefKind::Object { .. } => "type",
                    _ => "interface",
                };
                let fields: Vec<&FieldDef> = fields
                    .iter()
                    .filter(|f| !plumbing_name(&f.name))
                    .filter(|f| match &t.kind {
                        TypeDefKind::Object { .. } => shown.object_field(implements, f),
                        _ => shown.interface_field(f),
                    })
                    .collect();
                if fields.is_empty() {
                    continue;
                }
                body.push_str(&format!("{keyword} {}", t.name));
                let implements: Vec<&String> =
                    implements.iter().filter(|i| shown.type_name(i)).collect();
                if !implements.is_empty() {
                    let names: Vec<&str> = implements.iter().map(|s| s.as_str()).collect();
                    body.push_str(&format!(" implements {}", names.join(" & ")));
                }
                body.push_str(&directives);
                body.push_str(" {\n");
                for f in fields {
                    for d in &f.federation {
                        note_import(d, &mut imports);
                    }
                    description(&f.description, "  ", &mut body);
                    body.push_str("  ");
                    body.push_str(&f.name);
                    arguments(&f.args, &mut body);
                    body.push_str(&format!(": {}", f.ty));
                    deprecated(&f.deprecation, &mut body);
                    body.push_str(&directive_list(&f.federation));
                    body.push('\n');
                }
                body.push_str("}\n\n");
            }
            TypeDefKind::Union { members, .. } => {
                let members: Vec<&str> = members
                    .iter()
                    .filter(|m| shown.type_name(m))
                    .map(String::as_str)
                    .collect();
                if members.is_empty() {
                    continue;
                }
                body.push_str(&format!(
                    "union {}{directives} = {}\n\n",
                    t.name,
                    members.join(" | ")
                ));
            }
            TypeDefKind::Enum { values } => {
                body.push_str(&format!("enum {}{directives} {{\n", t.name));
                for v in values {
                    description(&v.description, "  ", &mut body);
                    body.push_str("  ");
                    body.push_str(&v.name);
                    deprecated(&v.deprecation, &mut body);
                    body.push('\n');
                }
                body.push_str("}\n\n");
            }
            TypeDefKind::InputObject { fields } => {
                body.push_str(&format!("input {}{directives} {{\n", t.name));
                for f in fields {
                    description(&f.description, "  ", &mut body);
                    body.push_str(&format!("  {}: {}", f.name, f.ty));
                    if let Some(d) = &f.default {
                        body.push_str(&format!(" = {d}"));
                    }
                    body.push('\n');
                }
                body.push_str("}\n\n");
            }
            TypeDefKind::Scalar { specified_by } => {
                body.push_str(&format!("scalar {}", t.name));
                if let Some(url) = specified_by {
                    body.push_str(&format!(
                        " @specifiedBy(url: {})",
                        serde_json::to_string(url).unwrap_or_default()
                    ));
                }
                body.push_str(&directives);
                body.push_str("\n\n");
            }
        }
    }
    for always in ["@key", "@shareable"] {
        if !imports.iter().any(|i| i == always) {
            imports.push(always.to_string());
        }
    }
    imports.sort();
    let imports: Vec<String> = imports.iter().map(|i| format!("\"{i}\"")).collect();
    format!(
        "extend schema @link(url: \"{SPEC}\", import: [{}])\n\n{}",
        imports.join(", "),
        body.trim_end()
    ) + "\n"
}

fn note_import(directive: &str, imports: &mut Vec<String>) {
    let name = directive
        .split(['(', ' '])
        .next()
        .unwrap_or(directive)
        .to_string();
    if !imports.contains(&name) {
        imports.push(name);
    }
}

fn directive_list(directives: &[String]) -> String {
    directives.iter().map(|d| format!(" {d}")).collect()
}

fn description(text: &Option<String>, indent: &str, out: &mut String) {
    if let Some(d) = text {
        out.push_str(indent);
        out.push_str(&serde_json::to_string(d).unwrap_or_default());
        out.push('\n');
    }
}

fn deprecated(reason: &Option<String>, out: &mut String) {
    if let Some(r) = reason {
        out.push_str(&format!(
            " @deprecated(reason: {})",
            serde_json::to_string(r).unwrap_or_default()
        ));
    }
}

fn arguments(args: &[InputDef], out: &mut String) {
    if args.is_empty() {
        return;
    }
    let printed: Vec<String> = args
        .iter()
        .map(|a| {
            let mut s = String::new();
            if let Some(d) = &a.description {
                s.push_str(&serde_json::to_string(d).unwrap_or_default());
                s.push(' ');
            }
            s.push_str(&format!("{}: {}", a.name, a.ty));
            if let Some(d) = &a.default {
                s.push_str(&format!(" = {d}"));
            }
            s
        })
        .collect();
    out.push('(');
    out.push_str(&printed.join(", "));
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_fields_are_the_top_level_names() {
        assert_eq!(top_level("code"), vec!["code"]);
        assert_eq!(top_level("id year"), vec!["id", "year"]);
        assert_eq!(top_level("id region { code level }"), vec!["id", "region"]);
    }

    #[test]
    fn plumbing_lists_the_resolvable_entities() {
        let sdl = r#"type Query { a: Int }
            type District @key(fields: "code") { code: ID! }
            type Hidden @key(fields: "id", resolvable: false) { id: ID! }"#;
        let p = plumbing(sdl, "Query");
        assert!(p.contains("union _Entity = District\n"), "{p}");
        assert!(p.contains("_entities(representations: [_Any!]!): [_Entity]!"));
        let none = plumbing("type Query { a: Int }", "Query");
        assert!(!none.contains("_Entity") && none.contains("_service: _Service!"));
    }
}
