//! Per-caller views over the Trenggalek deployment: an access matrix generated from the
//! schema (every field, through every view), introspection per view, the response cache in
//! both orders, and bearer tokens refused with 401.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use simpul::access::{Access, Tier, View};
use simpul::blueprint::{Blueprint, TypeDef, TypeDefKind};
use simpul::compile::named;

use crate::harness::{TestApp, copy_deployment, repo_root, without_rate_limits};

const SECRET: &str = "views-test-secret-that-is-long-enough-0123456789";

fn token(view: &View) -> Option<String> {
    let (tier, opd) = match view {
        View::Public => return None,
        View::Internal => (Tier::Internal, None),
        View::Restricted(opd) => (Tier::Restricted, Some(&**opd)),
    };
    Some(
        simpul::auth::mint(
            SECRET,
            tier,
            opd,
            Some("tester"),
            Duration::from_secs(3600),
            None,
            None,
        )
        .expect("mint"),
    )
}

async fn send(app: &TestApp, view: &View, query: &str) -> (u16, Value) {
    let mut r = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("accept", "application/graphql-response+json");
    if let Some(t) = token(view) {
        r = r.bearer_auth(t);
    }
    let r = r
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

async fn spawn() -> (tempfile::TempDir, TestApp, Blueprint) {
    let dir = copy_deployment(&repo_root());
    // The matrix is 1,632 requests from one address.
    without_rate_limits(dir.path());
    let env = [("SIMPUL_JWT_SECRET", SECRET)];
    let app = TestApp::spawn(dir.path(), &env).await;
    let lookup = |name: &str| (name == "SIMPUL_JWT_SECRET").then(|| SECRET.to_string());
    let bp = simpul::compile::compile_dir_with_env(dir.path(), &lookup).expect("compiles");
    (dir, app, bp)
}

/// The views a deployment has: PUBLIC, INTERNAL, one RESTRICTED per owning OPD, and one
/// RESTRICTED for an OPD that owns nothing (it reads what INTERNAL reads).
fn views(bp: &Blueprint) -> Vec<View> {
    let mut v = vec![View::Public];
    v.extend(simpul::server::views(bp));
    v.push(View::Restricted("bappeda".into()));
    v
}

/// One way to reach an object type from the root: selections (a field or `... on T`) and
/// what each needs.
#[derive(Clone, Default)]
struct Path {
    selections: Vec<String>,
    access: Vec<Access>,
}

fn types(bp: &Blueprint) -> HashMap<&str, &TypeDef> {
    bp.types.iter().map(|t| (t.name.as_str(), t)).collect()
}

/// The shortest path to each object type, through fields without required arguments.
fn paths(bp: &Blueprint) -> Vec<(&TypeDef, Path)> {
    let by_name = types(bp);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::new();
    queue.push_back((bp.query_type.as_str(), Path::default()));
    while let Some((name, path)) = queue.pop_front() {
        if !seen.insert(name) {
            continue;
        }
        let Some(t) = by_name.get(name) else { continue };
        let TypeDefKind::Object { fields, .. } = &t.kind else {
            continue;
        };
        out.push((*t, path.clone()));
        for f in fields {
            if f.name == "sources" || f.args.iter().any(|a| !a.ty.nullable && a.default.is_none()) {
                continue;
            }
            let child = named(&f.ty);
            let Some(ct) = by_name.get(child) else {
                continue;
            };
            let mut next = path.clone();
            next.selections.push(f.name.clone());
            next.access.push(f.access.clone());
            next.access.push(ct.access.clone());
            match &ct.kind {
                TypeDefKind::Object { .. } => queue.push_back((child, next)),
                TypeDefKind::Interface { .. } | TypeDefKind::Union { .. } => {
                    for t in &bp.types {
                        let member = match (&ct.kind, &t.kind) {
                            (TypeDefKind::Union { members, .. }, _) => members.contains(&t.name),
                            (_, TypeDefKind::Object { implements, .. }) => {
                                implements.iter().any(|i| i == child)
                            }
                            _ => false,
                        };
                        if member {
                            let mut p = next.clone();
                            p.selections.push(format!("... on {}", t.name));
                            p.access.push(t.access.clone());
                            queue.push_back((t.name.as_str(), p));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn query_of(path: &Path, leaf: &str) -> String {
    let mut q = String::from("{ ");
    for s in &path.selections {
        q.push_str(s);
        q.push_str(" { ");
    }
    q.push_str(leaf);
    for _ in 0..=path.selections.len() {
        q.push_str(" }");
    }
    q
}

/// The values at `selections` in `data`, lists flattened.
fn values_at<'v>(data: &'v Value, keys: &[&str]) -> Vec<&'v Value> {
    let mut cur = vec![data];
    for k in keys {
        let mut next = Vec::new();
        for v in cur {
            match v {
                Value::Array(items) => {
                    for i in items {
                        next.extend(i.get(*k));
                    }
                }
                other => next.extend(other.get(*k)),
            }
        }
        cur = next;
    }
    cur
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_matrix_holds_for_every_field_and_view() {
    let (_dir, app, bp) = spawn().await;
    let by_name = types(&bp);
    let views = views(&bp);
    assert!(
        views.contains(&View::Restricted("dinsos".into())),
        "Trenggalek has a field only Dinas Sosial reads"
    );
    let mut checked = 0;
    let mut denied = 0;
    let mut failures = Vec::new();
    for (ty, path) in paths(&bp) {
        let TypeDefKind::Object { fields, .. } = &ty.kind else {
            continue;
        };
        for f in fields {
            if f.name == "sources" || f.args.iter().any(|a| !a.ty.nullable && a.default.is_none()) {
                continue;
            }
            let child = by_name.get(named(&f.ty));
            let leaf = match child.map(|c| &c.kind) {
                Some(
                    TypeDefKind::Object { .. }
                    | TypeDefKind::Interface { .. }
                    | TypeDefKind::Union { .. },
                ) => {
                    format!("{} {{ __typename }}", f.name)
                }
                _ => f.name.clone(),
            };
            let query = query_of(&path, &leaf);
            let mut needs = path.access.clone();
            needs.push(f.access.clone());
            if let Some(c) = child {
                needs.push(c.access.clone());
            }
            // Response keys on the way to the field (fragments add none).
            let keys: Vec<&str> = path
                .selections
                .iter()
                .filter(|s| !s.starts_with("..."))
                .map(String::as_str)
                .chain([f.name.as_str()])
                .collect();
            for view in &views {
                let readable = needs.iter().all(|a| view.reads(a));
                let (status, body) = send(&app, view, &query).await;
                checked += 1;
                let values = body
                    .get("data")
                    .map(|d| values_at(d, &keys))
                    .unwrap_or_default();
                if readable {
                    let refused = body["errors"].as_array().into_iter().flatten().any(|e| {
                        matches!(
                            e["extensions"]["code"].as_str(),
                            Some("FORBIDDEN" | "BAD_REQUEST" | "INTERNAL")
                        )
                    });
                    if status != 200 || refused {
                        failures.push(format!("{view} cannot read {query}: {status} {body}"));
                    }
                    continue;
                }
                denied += 1;
                if values.iter().any(|v| !v.is_null()) {
                    failures.push(format!("{view} read {query}: {body}"));
                }
                // Refused as an unknown field (never suggested), or denied in place.
                let text = body.to_string();
                let ok = match status {
                    400 => body.get("data").is_none() && !text.contains("Did you mean"),
                    200 => body["errors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|e| e["extensions"]["code"] == "FORBIDDEN"),
                    _ => false,
                };
                if !ok {
                    failures.push(format!("{view} on {query}: {status} {body}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked > 500 && denied > 20,
        "checked {checked}, denied {denied}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_shows_each_view_exactly_what_it_reads() {
    let (_dir, app, bp) = spawn().await;
    let q = "{ __schema { types { name fields { name } } } }";
    let interface_fields: HashSet<(&str, &str)> = bp
        .types
        .iter()
        .filter_map(|t| match &t.kind {
            TypeDefKind::Interface { fields, .. } => Some(fields.iter().map(|f| f.name.as_str())),
            _ => None,
        })
        .flatten()
        .flat_map(|f| {
            bp.types.iter().filter_map(move |t| match &t.kind {
                TypeDefKind::Object { fields, .. } if fields.iter().any(|x| x.name == f) => {
                    Some((t.name.as_str(), f))
                }
                _ => None,
            })
        })
        .collect();
    for view in views(&bp) {
        let (status, body) = send(&app, &view, q).await;
        assert_eq!(status, 200, "{body}");
        let shown: HashMap<&str, HashSet<&str>> = body["data"]["__schema"]["types"]
            .as_array()
            .expect("types")
            .iter()
            .filter_map(|t| {
                let fields = t["fields"]
                    .as_array()?
                    .iter()
                    .filter_map(|f| f["name"].as_str())
                    .collect();
                Some((t["name"].as_str()?, fields))
            })
            .collect();
        for t in &bp.types {
            let TypeDefKind::Object { fields, .. } = &t.kind else {
                continue;
            };
            if !view.reads(&t.access) {
                assert!(
                    !shown.contains_key(t.name.as_str()),
                    "{view} sees type {}",
                    t.name
                );
                let (_, one) = send(
                    &app,
                    &view,
                    &format!("{{ __type(name: \"{}\") {{ name }} }}", t.name),
                )
                .await;
                assert_eq!(one["data"]["__type"], Value::Null, "{view}: {one}");
                continue;
            }
            // A type reachable only through fields the view may not read is left out too.
            let Some(names) = shown.get(t.name.as_str()) else {
                assert!(
                    !["Query", "Regency", "District", "Village"].contains(&t.name.as_str()),
                    "{view} does not see type {}",
                    t.name
                );
                continue;
            };
            for f in fields {
                let child_hidden = bp
                    .types
                    .iter()
                    .any(|c| c.name == named(&f.ty) && !view.reads(&c.access));
                let readable = view.reads(&f.access) && !child_hidden;
                let kept =
                    interface_fields.contains(&(t.name.as_str(), f.name.as_str())) && !child_hidden;
                assert_eq!(
                    names.contains(f.name.as_str()),
                    readable || kept,
                    "{view}: {}.{} shown {}",
                    t.name,
                    f.name,
                    names.contains(f.name.as_str())
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dtsen_deciles_answer_staff_tokens_and_are_unknown_to_the_public() {
    let (_dir, app, _) = spawn().await;
    let q = "{ regency { welfareDeciles { decile households } } }";
    let (status, public) = send(&app, &View::Public, q).await;
    assert_eq!(status, 400, "{public}");
    let message = public["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Unknown field \"welfareDeciles\""),
        "{public}"
    );
    let (status, internal) = send(&app, &View::Internal, q).await;
    assert_eq!(status, 200, "{internal}");
    let deciles = internal["data"]["regency"]["welfareDeciles"]
        .as_array()
        .expect("deciles");
    assert!(
        !deciles.is_empty() && deciles.iter().all(|d| d["households"].is_number()),
        "{internal}"
    );

    // Decile 1 per village: Dinas Sosial only.
    let q = "{ districts { villages { poorestHouseholds { households } } } }";
    let dinsos = View::Restricted("dinsos".into());
    let (status, body) = send(&app, &dinsos, q).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    for other in [
        View::Public,
        View::Internal,
        View::Restricted("dinkes".into()),
    ] {
        let (status, body) = send(&app, &other, q).await;
        assert_eq!(status, 400, "{other}: {body}");
    }
}

/// An answer for one view is never replayed to another: exact small counts for the staff,
/// suppressed ones for the public, whichever asks first.
#[tokio::test(flavor = "multi_thread")]
async fn the_response_cache_never_serves_one_view_to_another() {
    let q = "{ districts { code complaintsByMonth { period received resolved slaBreached } } }";
    for order in [
        [View::Internal, View::Public],
        [View::Public, View::Internal],
    ] {
        let (_dir, app, _) = spawn().await;
        let mut answers = HashMap::new();
        for view in &order {
            for _ in 0..2 {
                let (status, body) = send(&app, view, q).await;
                assert_eq!(status, 200, "{body}");
                answers.insert(view.to_string(), body["data"].clone());
            }
        }
        let internal = &answers["INTERNAL"];
        let public = &answers["PUBLIC"];
        // Keyed by district and month: the public rows leave confidential reports out, so
        // a month whose reports are all confidential is no public row.
        let cells = |data: &Value| -> HashMap<(String, String), Value> {
            let mut cells = HashMap::new();
            for d in data["districts"].as_array().into_iter().flatten() {
                for m in d["complaintsByMonth"].as_array().into_iter().flatten() {
                    let key = (d["code"].to_string(), m["period"].to_string());
                    cells.insert(key, m["received"].clone());
                }
            }
            cells
        };
        let (exact, shown) = (cells(internal), cells(public));
        assert!(shown.keys().all(|k| exact.contains_key(k)));
        let mut small = 0;
        for (key, e) in &exact {
            let s = shown.get(key).unwrap_or(&Value::Null);
            match e.as_i64() {
                Some(n) if (1..5).contains(&n) => {
                    small += 1;
                    assert_eq!(
                        *s,
                        Value::Null,
                        "{order:?}: a count of {n} reached the public"
                    );
                }
                Some(n) => assert!(s.is_null() || s.as_i64().is_some_and(|p| p <= n), "{key:?}"),
                None => panic!("{order:?}: staff read every count exactly, not {key:?}"),
            }
        }
        assert!(small > 0, "the data has small counts to suppress");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_are_refused_with_401_before_anything_runs() {
    let (_dir, app, _) = spawn().await;
    let good = token(&View::Internal).expect("token");
    let other_secret = simpul::auth::mint(
        "another-secret-that-is-long-enough-0123456789",
        Tier::Internal,
        None,
        None,
        Duration::from_secs(3600),
        None,
        None,
    )
    .expect("mint");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "tier": "internal", "exp": now - 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode");
    let none = {
        use base64::Engine;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b.encode(r#"{"tier":"internal","exp":4102444800}"#)
        )
    };
    for (what, header) in [
        ("malformed", "Bearer not-a-token".to_string()),
        ("wrong scheme", format!("Basic {good}")),
        ("wrong secret", format!("Bearer {other_secret}")),
        ("alg none", format!("Bearer {none}")),
        ("expired past the leeway", format!("Bearer {expired}")),
    ] {
        let r = app
            .client
            .post(format!("{}/graphql", app.url))
            .header("authorization", header)
            .json(&json!({ "query": "{ regency { name } }" }))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 401, "{what}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{what}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{what}"
        );
        assert!(body.get("data").is_none(), "{what}: nothing ran");
    }
}
