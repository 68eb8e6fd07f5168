//! `@graphql` bindings against the remote service's schema: asked by introspection in
//! `simpul check` when the service answers, else read from the connector's stored SDL
//! (`[graphql] schema`); a starting gateway reads only the stored SDL. The remote field
//! exists, takes the arguments forwarded and gets those it requires; every field the
//! selection forwards exists on the remote type, with the same scalar where both are
//! GraphQL's own.

use std::collections::{HashMap, HashSet};

use async_graphql_parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use serde_json::{Value, json};

use super::shape::field_of;
use crate::blueprint::{
    Binding, Blueprint, FieldPlan, GraphqlOperation, Lookup, Operation, TypeDefKind, named,
};
use crate::config::{ConnectorConfig, ConnectorKind};
use crate::diagnostic::Diagnostic;

/// A remote schema: its root types and, per type, its fields.
#[derive(Default)]
struct Remote {
    query: String,
    mutation: String,
    types: HashMap<String, HashMap<String, RemoteField>>,
    /// Object types of each interface or union.
    possible: HashMap<String, Vec<String>>,
}

struct RemoteField {
    /// The named type.
    ty: String,
    list: bool,
    /// Each argument: its name and whether it is required (non-null, no default).
    args: Vec<(String, bool)>,
}

const INTROSPECTION: &str = "{ __schema { queryType { name } mutationType { name } types { name kind possibleTypes { name } fields { name type { ...T } args { name defaultValue type { ...T } } } } } } fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }";

/// Problems of the `@graphql` bindings, and the services neither reached nor stored.
pub async fn problems(bp: &Blueprint, live: bool) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut problems = Vec::new();
    let mut unreachable = Vec::new();
    for (i, c) in bp.connectors.iter().enumerate() {
        let ConnectorKind::Graphql {
            url,
            headers,
            schema,
        } = &c.kind
        else {
            continue;
        };
        let bindings: Vec<&Binding> = bp
            .bindings
            .iter()
            .filter(|b| b.connector == i)
            .map(|b| b.as_ref())
            .collect();
        if bindings.is_empty() {
            continue;
        }
        let introspected = match live {
            true => introspect(c, url, headers).await,
            false => Err("not asked".into()),
        };
        let remote = match (introspected, schema) {
            (Ok(r), _) => r,
            (Err(_), Some(path)) => match std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|text| from_sdl(&text))
            {
                Ok(r) => r,
                Err(e) => {
                    problems.push(Diagnostic::new(
                        &c.file,
                        1,
                        1,
                        format!("[graphql] schema {path}: {e}"),
                    ));
                    continue;
                }
            },
            (Err(reason), None) => {
                if live {
                    unreachable.push(
                        Diagnostic::new(
                            &c.file,
                            1,
                            1,
                            format!(
                                "cannot reach graphql source '{}': {reason}; its bindings were not checked",
                                c.name
                            ),
                        )
                        .hint("check url and the network, or keep the service's SDL beside the deployment: [graphql] schema = \"connectors/NAME.graphql\""),
                    );
                }
                continue;
            }
        };
        for b in bindings {
            if let Operation::Graphql(op) = &b.operation {
                binding(bp, b, op, &remote, &mut problems);
            }
        }
    }
    (problems, unreachable)
}

fn binding(
    bp: &Blueprint,
    b: &Binding,
    op: &GraphqlOperation,
    remote: &Remote,
    out: &mut Vec<Diagnostic>,
) {
    let Some((owner, def)) = field_of(bp, b.id) else {
        return;
    };
    let (l, c) = b.places.directive;
    let mut problem = |m: String, hint: &str| {
        out.push(Diagnostic::new("schema.graphql", l, c, m).hint(hint));
    };
    let (parent, field) = match &op.entity {
        Some(e) => (e.typename.as_str(), op.field.as_str()),
        None => match op.mutation {
            true => (remote.mutation.as_str(), op.field.as_str()),
            false => (remote.query.as_str(), op.field.as_str()),
        },
    };
    let Some(fields) = remote.types.get(parent) else {
        problem(
            format!(
                "{owner}.{}: the remote service has no type {parent}",
                def.name
            ),
            "name a type of the remote schema (see `simpul check --explain`)",
        );
        return;
    };
    let Some(rf) = fields.get(field) else {
        problem(
            format!(
                "{owner}.{}: the remote {parent} has no field {field}",
                def.name
            ),
            "name the remote field with field: \"...\"",
        );
        return;
    };
    if op.entity.is_none() {
        let forwarded: Vec<&str> = match &op.args {
            Some(args) => args.iter().map(|(n, _)| n.as_str()).collect(),
            None => def.args.iter().map(|a| a.name.as_str()).collect(),
        };
        for a in &forwarded {
            if !rf.args.iter().any(|(n, _)| n == a) {
                problem(
                    format!(
                        "{owner}.{}: the remote {parent}.{field} takes no argument {a}",
                        def.name
                    ),
                    "map the arguments with args: {remoteName: \"{{args.name}}\"}",
                );
            }
        }
        for (n, required) in &rf.args {
            if *required && !forwarded.contains(&n.as_str()) {
                problem(
                    format!(
                        "{owner}.{}: the remote {parent}.{field} requires argument {n}",
                        def.name
                    ),
                    "give it with args: {NAME: \"{{args.x}}\"} or declare it on the field",
                );
            }
        }
    }
    let mut seen = HashSet::new();
    fits(
        bp,
        named(&def.ty),
        &def.ty,
        rf,
        remote,
        &mut seen,
        &mut |m| {
            problem(
                m,
                "declare only fields the remote type has, with its scalar types",
            )
        },
    );
}

/// Whether Simpul's type `local` reads only what the remote type of `rf` has.
fn fits(
    bp: &Blueprint,
    local: &str,
    ty: &Type,
    rf: &RemoteField,
    remote: &Remote,
    seen: &mut HashSet<(String, String)>,
    problem: &mut dyn FnMut(String),
) {
    let list = matches!(ty.base, BaseType::List(_));
    if list != rf.list {
        problem(format!(
            "{local}: a {} here, a {} in the remote schema",
            if list { "list" } else { "single value" },
            if rf.list { "list" } else { "single value" }
        ));
        return;
    }
    let Some(t) = bp.types.iter().find(|t| t.name == local) else {
        const OWN: [&str; 5] = ["Int", "Float", "String", "Boolean", "ID"];
        if OWN.contains(&local) && OWN.contains(&rf.ty.as_str()) && local != rf.ty {
            let compatible = local == "ID" && matches!(rf.ty.as_str(), "String" | "Int");
            if !compatible {
                problem(format!("{local} here, {} in the remote schema", rf.ty));
            }
        }
        return;
    };
    if !seen.insert((local.to_string(), rf.ty.clone())) {
        return;
    }
    // An abstract type: each of its object types against the remote type of that name.
    let objects: Vec<(&crate::blueprint::TypeDef, String)> = match &t.kind {
        TypeDefKind::Object { .. } => vec![(t, rf.ty.clone())],
        TypeDefKind::Interface { .. } | TypeDefKind::Union { .. } => bp
            .types
            .iter()
            .filter(|o| match &o.kind {
                TypeDefKind::Object { implements, .. } => {
                    implements.contains(&t.name)
                        || matches!(&t.kind, TypeDefKind::Union { members, .. } if members.contains(&o.name))
                }
                _ => false,
            })
            .map(|o| (o, o.name.clone()))
            .collect(),
        _ => return,
    };
    for (o, remote_name) in objects {
        let TypeDefKind::Object { fields, .. } = &o.kind else {
            continue;
        };
        let Some(remote_fields) = remote.types.get(&remote_name) else {
            if remote
                .possible
                .get(&rf.ty)
                .is_none_or(|p| p.contains(&remote_name))
            {
                problem(format!(
                    "{}: the remote schema has no type {remote_name}",
                    o.name
                ));
            }
            continue;
        };
        for f in fields {
            let name = match &f.plan {
                FieldPlan::Property(Lookup::Keys(keys)) => keys.first(),
                FieldPlan::Property(Lookup::Path(path)) => path.first(),
                _ => None,
            };
            let Some(name) = name else { continue };
            match remote_fields.get(name) {
                None => problem(format!(
                    "{}.{}: the remote type {remote_name} has no field {name}",
                    o.name, f.name
                )),
                Some(inner) => fits(bp, named(&f.ty), &f.ty, inner, remote, seen, problem),
            }
        }
    }
}

async fn introspect(
    c: &ConnectorConfig,
    url: &str,
    headers: &[(String, String)],
) -> Result<Remote, String> {
    let client = reqwest::Client::builder()
        .timeout(c.timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client.post(url).json(&json!({ "query": INTROSPECTION }));
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!(
            "HTTP {} for the introspection query",
            resp.status()
        ));
    }
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    let schema = pick(pick(&body, "data"), "__schema");
    if schema.is_null() {
        return Err("introspection refused".into());
    }
    let mut remote = Remote {
        query: pick(pick(schema, "queryType"), "name")
            .as_str()
            .unwrap_or("Query")
            .to_string(),
        mutation: pick(pick(schema, "mutationType"), "name")
            .as_str()
            .unwrap_or("Mutation")
            .to_string(),
        ..Remote::default()
    };
    for t in pick(schema, "types").as_array().into_iter().flatten() {
        let Some(name) = pick(t, "name").as_str() else {
            continue;
        };
        let possible: Vec<String> = pick(t, "possibleTypes")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| pick(p, "name").as_str().map(str::to_string))
            .collect();
        if !possible.is_empty() {
            remote.possible.insert(name.to_string(), possible);
        }
        let fields = pick(t, "fields")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let (ty, list, _) = unwrap_type(pick(f, "type"));
                let args = pick(f, "args")
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| {
                        let (_, _, non_null) = unwrap_type(pick(a, "type"));
                        Some((
                            pick(a, "name").as_str()?.to_string(),
                            non_null && pick(a, "defaultValue").is_null(),
                        ))
                    })
                    .collect();
                Some((
                    pick(f, "name").as_str()?.to_string(),
                    RemoteField { ty, list, args },
                ))
            })
            .collect();
        remote.types.insert(name.to_string(), fields);
    }
    Ok(remote)
}

/// `v[key]`, or null.
fn pick<'v>(v: &'v Value, key: &str) -> &'v Value {
    v.get(key).unwrap_or(&Value::Null)
}

/// An introspected type reference: its named type, whether a list, whether non-null.
fn unwrap_type(t: &Value) -> (String, bool, bool) {
    let non_null = pick(t, "kind") == "NON_NULL";
    let mut list = false;
    let mut t = t;
    while let Some(inner) = t.get("ofType").filter(|o| !o.is_null()) {
        if pick(t, "kind") == "LIST" {
            list = true;
        }
        t = inner;
    }
    if pick(t, "kind") == "LIST" {
        list = true;
    }
    (
        pick(t, "name").as_str().unwrap_or_default().to_string(),
        list,
        non_null,
    )
}

/// A remote schema from its SDL (a federation subgraph's included: `extend schema @link`).
fn from_sdl(text: &str) -> Result<Remote, String> {
    let doc = async_graphql_parser::parse_schema(text).map_err(|e| e.to_string())?;
    let mut remote = Remote {
        query: "Query".into(),
        mutation: "Mutation".into(),
        ..Remote::default()
    };
    for def in doc.definitions {
        match def {
            TypeSystemDefinition::Schema(s) => {
                if let Some(q) = &s.node.query {
                    remote.query = q.node.to_string();
                }
                if let Some(m) = &s.node.mutation {
                    remote.mutation = m.node.to_string();
                }
            }
            TypeSystemDefinition::Type(t) => {
                let name = t.node.name.node.to_string();
                let fields = match &t.node.kind {
                    TypeKind::Object(o) => Some(&o.fields),
                    TypeKind::Interface(i) => Some(&i.fields),
                    TypeKind::Union(u) => {
                        remote
                            .possible
                            .entry(name.clone())
                            .or_default()
                            .extend(u.members.iter().map(|m| m.node.to_string()));
                        None
                    }
                    _ => None,
                };
                if let TypeKind::Object(o) = &t.node.kind {
                    for i in &o.implements {
                        remote
                            .possible
                            .entry(i.node.to_string())
                            .or_default()
                            .push(name.clone());
                    }
                }
                let entry = remote.types.entry(name).or_default();
                for f in fields.into_iter().flatten() {
                    entry.insert(
                        f.node.name.node.to_string(),
                        RemoteField {
                            ty: named(&f.node.ty.node).to_string(),
                            list: matches!(f.node.ty.node.base, BaseType::List(_)),
                            args: f
                                .node
                                .arguments
                                .iter()
                                .map(|a| {
                                    (
                                        a.node.name.node.to_string(),
                                        !a.node.ty.node.nullable && a.node.default_value.is_none(),
                                    )
                                })
                                .collect(),
                        },
                    );
                }
            }
            TypeSystemDefinition::Directive(_) => {}
        }
    }
    Ok(remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdl_and_introspection_read_alike() {
        let r = from_sdl(
            "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\"])
             type Query { stats(code: ID!, year: Int = 2025, note: String): [Stats!]! }
             type Stats @key(fields: \"code\") { code: ID! }",
        )
        .expect("sdl");
        let f = &r.types["Query"]["stats"];
        assert_eq!((f.ty.as_str(), f.list), ("Stats", true));
        assert_eq!(
            f.args,
            vec![
                ("code".into(), true),
                ("year".into(), false),
                ("note".into(), false)
            ]
        );
        let t = json!({"kind": "NON_NULL", "ofType": {"kind": "LIST", "ofType": {"kind": "NON_NULL", "ofType": {"kind": "OBJECT", "name": "Stats"}}}});
        assert_eq!(unwrap_type(&t), ("Stats".into(), true, true));
    }
}
