//! `[limits]`: a document over any limit is answered 400 with BAD_REQUEST, naming the limit
//! and its value, before it is validated or run, and the gateway keeps serving meanwhile.

use std::time::{Duration, Instant};

use reqwest::header::ACCEPT;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::{TestApp, copy_deployment, repo_root};

/// The repository's deployment, with `[limits]` set to `limits` (nothing: the defaults).
async fn deploy(limits: &str) -> (TempDir, TestApp) {
    let dir = copy_deployment(&repo_root());
    std::fs::write(
        dir.path().join("simpul.toml"),
        format!("[limits]\n{limits}"),
    )
    .expect("write simpul.toml");
    let app = TestApp::spawn(dir.path(), &[]).await;
    (dir, app)
}

/// Room for documents of any length, so the limit under test is the one that refuses.
const ROOMY: &str = "max_tokens = 1000000\nmax_body_bytes = 4194304\n";

async fn post(app: &TestApp, query: &str, operation: Option<&str>, accept: &str) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .header(ACCEPT, accept)
        .json(&json!({ "query": query, "operationName": operation }))
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn ask(app: &TestApp, query: &str) -> (u16, Value) {
    post(app, query, None, "application/json").await
}

/// A 400 with BAD_REQUEST, no data, and a message holding `needle`.
#[track_caller]
fn assert_refused((status, body): &(u16, Value), needle: &str) {
    assert_eq!(*status, 400, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[track_caller]
fn assert_answered((status, body): &(u16, Value)) {
    assert_eq!(*status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert!(body["data"].is_object(), "{body}");
}

async fn healthy(app: &TestApp) -> bool {
    let healthz = app.client.get(format!("{}/healthz", app.url)).send();
    matches!(
        tokio::time::timeout(Duration::from_secs(1), healthz).await,
        Ok(Ok(r)) if r.status().as_u16() == 200
    )
}

/// `levels` fragments on Query, each spreading the one before twice: 2^levels fields.
pub fn bomb(levels: usize) -> String {
    let mut q = format!("query {{ ...F{levels} }}\nfragment F0 on Query {{ __typename }}\n");
    for i in 1..=levels {
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{0} ...F{0} }}\n",
            i - 1
        ));
    }
    q
}

fn repeat(n: usize, item: impl Fn(usize) -> String) -> String {
    (0..n).map(item).collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragment_bomb_is_refused_at_once_while_healthz_answers() {
    let (_dir, app) = deploy("").await;
    let bomb = bomb(30);
    let started = Instant::now();
    // More bombs than worker threads: each one, expanded, would hold its thread for minutes.
    let bombs = (0..4).map(|_| ask(&app, &bomb));
    let answers = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(bombs))
        .await
        .expect("a fragment bomb is answered within 2 s");
    for r in &answers {
        assert_refused(
            r,
            "1073741824 fields after fragment expansion (limit max_fields = 2000)",
        );
    }
    assert!(healthy(&app).await, "/healthz answers");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn fragment_cycles_are_refused() {
    let (_dir, app) = deploy("").await;
    for q in [
        "{ ...A } fragment A on Query { ...A }",
        "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }",
    ] {
        assert_refused(&ask(&app, q).await, "spreads itself");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_aliases_are_refused() {
    let aliases = |n| format!("{{ {} }}", repeat(n, |i| format!("a{i}: __typename")));
    let (_dir, app) = deploy("").await;
    // 30,000 tokens: the scan refuses it before it is parsed.
    assert_refused(
        &ask(&app, &aliases(10_000)).await,
        "(limit max_tokens = 15000)",
    );
    let (_roomy, roomy) = deploy(ROOMY).await;
    assert_refused(
        &ask(&roomy, &aliases(10_000)).await,
        "10000 aliases after fragment expansion (limit max_aliases = 100)",
    );
    let nested = |n| {
        format!(
            "{{ __schema {{ {} }} }}",
            repeat(n, |i| format!("a{i}: description"))
        )
    };
    assert_answered(&ask(&app, &nested(100)).await);
    assert_refused(&ask(&app, &nested(101)).await, "(limit max_aliases = 100)");
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_operations_are_refused() {
    let ops = |n| repeat(n, |i| format!("query Q{i} {{ __typename }}"));
    let (_dir, app) = deploy("").await;
    assert_refused(&ask(&app, &ops(10_000)).await, "(limit max_tokens = 15000)");
    let (_roomy, roomy) = deploy(ROOMY).await;
    assert_refused(
        &ask(&roomy, &ops(10_000)).await,
        "10000 operations in the document (limit max_operations = 100)",
    );
    assert_answered(&post(&app, &ops(100), Some("Q7"), "application/json").await);
    assert_refused(
        &post(&app, &ops(101), Some("Q7"), "application/json").await,
        "(limit max_operations = 100)",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_directives_on_a_field_are_refused() {
    let directives = |n| {
        format!(
            "{{ __typename {} }}",
            repeat(n, |_| "@skip(if: false)".into())
        )
    };
    let (_dir, app) = deploy("").await;
    assert_refused(
        &ask(&app, &directives(10_000)).await,
        "(limit max_tokens = 15000)",
    );
    let (_roomy, roomy) = deploy(ROOMY).await;
    assert_refused(
        &ask(&roomy, &directives(10_000)).await,
        "10000 directives on one field, fragment or operation (limit max_directives_per_field = 10)",
    );
    assert_refused(
        &ask(&app, &directives(11)).await,
        "(limit max_directives_per_field = 10)",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nesting_ten_thousand_deep_is_refused_and_the_gateway_lives_on() {
    let (_dir, app) = deploy("").await;
    let selections = |n| format!("{}{}", "{ a ".repeat(n), "}".repeat(n));
    let values = |n| {
        format!(
            "{{ __type(name: {}\"Query\"{}) {{ name }} }}",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    let objects = |n| {
        format!(
            "{{ __type(name: {}\"Query\"{}) {{ name }} }}",
            "{a: ".repeat(n),
            "}".repeat(n)
        )
    };
    // Unchecked, 2,000 nested input objects overflow the parser's stack on a worker thread
    // and abort the process.
    for nested in [selections, values, objects] {
        for n in [2_000, 10_000] {
            assert_refused(&ask(&app, &nested(n)).await, "(limit max_depth = 16)");
        }
        // A URL holds fewer: GET finds the operation's type by parsing, after the scan.
        let get = app
            .client
            .get(format!("{}/graphql", app.url))
            .header("apollo-require-preflight", "true")
            .query(&[("query", nested(1_000))])
            .send()
            .await
            .expect("get");
        let status = get.status().as_u16();
        assert_refused(
            &(status, get.json().await.unwrap_or(Value::Null)),
            "(limit max_depth = 16)",
        );
    }
    assert!(healthy(&app).await);
    assert_answered(&ask(&app, "{ __typename }").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_400_whatever_the_client_accepts() {
    let (_dir, app) = deploy("").await;
    for accept in [
        "application/json",
        "application/graphql-response+json",
        "*/*",
    ] {
        assert_refused(
            &post(&app, &bomb(12), None, accept).await,
            "(limit max_fields = 2000)",
        );
    }
}

/// Operations the default limits accept, each just over one of the strict limits below,
/// whose message names it with its configured value.
const OVER_ONE_LIMIT: &[(&str, &str)] = &[
    (
        r#"{ __type(name: "Query") { name kind description fields { name } interfaces { name } possibleTypes { name } } }"#,
        "10 fields after fragment expansion (limit max_fields = 8)",
    ),
    (
        r#"{ __type(name: "Query") { ofType { ofType { name } } } }"#,
        "4 levels of nested fields (limit max_depth = 3)",
    ),
    (
        "{ a: __typename b: __typename }",
        "2 aliases after fragment expansion (limit max_aliases = 1)",
    ),
    (
        r#"{ __typename __schema { description } __type(name: "Query") { name } }"#,
        "3 root fields in one operation (limit max_root_fields = 2)",
    ),
    (
        "{ __typename @include(if: true) @skip(if: false) }",
        "2 directives on one field, fragment or operation (limit max_directives_per_field = 1)",
    ),
    (
        "{ ... on Query { ... on Query { ... on Query { ... on Query { ... on Query { ... on Query { ... on Query { ... on Query { __typename } } } } } } } } }",
        "more than 40 tokens (limit max_tokens = 40)",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_limit_is_configurable() {
    let (_dir, default) = deploy("").await;
    let (_strict_dir, strict) = deploy(
        "max_fields = 8\nmax_depth = 3\nmax_aliases = 1\nmax_root_fields = 2\n\
         max_directives_per_field = 1\nmax_tokens = 40\nmax_operations = 1\n",
    )
    .await;
    for (query, refusal) in OVER_ONE_LIMIT {
        assert_answered(&ask(&default, query).await);
        assert_refused(&ask(&strict, query).await, refusal);
    }
    let two = "query A { __typename } query B { __typename }";
    assert_answered(&post(&default, two, Some("A"), "application/json").await);
    assert_refused(
        &post(&strict, two, Some("A"), "application/json").await,
        "2 operations in the document (limit max_operations = 1)",
    );
    assert_answered(&ask(&strict, "{ __typename }").await);
    // The former name of max_fields still sets it.
    let (_old_dir, old) = deploy("max_complexity = 1\n").await;
    assert_refused(
        &ask(&old, "{ __schema { description } }").await,
        "(limit max_fields = 1)",
    );
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery`).
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType {
    kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_defaults_admit_graphiql_introspection() {
    let (_dir, app) = deploy("").await;
    assert_answered(&ask(&app, INTROSPECTION).await);
}

/// Districts, each with its villages: lists in a list, both with a declared `@listSize`
/// (14 kecamatan, at most 17 desa in one).
const NESTED_LISTS: &str = "{ regency { code districts { code villages { code } } } }";

/// Districts (`@listSize(max: 14)`), each with its destinations (no declared size).
const UNDECLARED: &str = "{ regency { districts { destinations { name } } } }";

async fn with_cost(app: &TestApp, query: &str) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .header(ACCEPT, "application/graphql-response+json")
        .json(&json!({ "query": query, "extensions": { "cost": true } }))
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_multiply_the_cost_and_an_operation_over_max_cost_is_refused() {
    // regency 1 + code 1 + districts 14 × (1 + code 1 + villages 17 × (1 + code 1)) = 506
    let (_dir, app) = deploy("").await;
    let answered = with_cost(&app, NESTED_LISTS).await;
    assert_answered(&answered);
    assert_eq!(answered.1["extensions"]["cost"], 506, "{}", answered.1);
    // Not asked for: not reported.
    let (_, plain) = ask(&app, NESTED_LISTS).await;
    assert!(plain["extensions"].get("cost").is_none(), "{plain}");
    // A replayed answer reports it too.
    let replayed = with_cost(&app, NESTED_LISTS).await;
    assert_eq!(replayed.1["extensions"]["cost"], 506, "{}", replayed.1);
    // regency 1 + districts 14 × (1 + destinations 20 (the default) × (1 + name 1)) = 575
    let undeclared = with_cost(&app, UNDECLARED).await;
    assert_eq!(undeclared.1["extensions"]["cost"], 575, "{}", undeclared.1);

    let (_strict_dir, strict) = deploy("max_cost = 505\n").await;
    assert_refused(
        &with_cost(&strict, NESTED_LISTS).await,
        "an estimated cost of 506 (limit max_cost = 505)",
    );
    assert_answered(&ask(&strict, "{ regency { code districts { code } } }").await);

    // Only lists without a declared size take the default: 1 + 14 × (1 + 5 × 2) = 155.
    let (_small_dir, small) = deploy("default_list_size = 5\n").await;
    let answered = with_cost(&small, UNDECLARED).await;
    assert_eq!(answered.1["extensions"]["cost"], 155, "{}", answered.1);
    let declared = with_cost(&small, NESTED_LISTS).await;
    assert_eq!(declared.1["extensions"]["cost"], 506, "{}", declared.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_operation_is_within_the_default_cost() {
    let (_dir, app) = deploy("").await;
    for (name, query, _) in crate::harness::dashboard_operations() {
        let (status, body) = with_cost(&app, &query).await;
        assert_eq!(status, 200, "{name}: {body}");
        let cost = body["extensions"]["cost"].as_u64().unwrap_or(u64::MAX);
        // Half the default: room for dashboards to grow before anyone meets it.
        assert!(cost <= 50_000, "{name} costs {cost}");
        eprintln!("{name}: cost {cost}");
    }
}

#[test]
fn a_misused_list_size_is_a_compile_error_at_its_place() {
    let dir = copy_deployment(&repo_root());
    let path = dir.path().join("schema.graphql");
    let schema = std::fs::read_to_string(&path).expect("schema");
    let schema = schema
        .replacen("@listSize(max: 14)", "@listSize(max: 0)", 1)
        .replacen(
            "regency: Regency! @sql(",
            "regency: Regency! @listSize(max: 3) @sql(",
            1,
        );
    std::fs::write(&path, schema).expect("write");
    let diags = simpul::compile::compile_dir_with_env(dir.path(), &|_| None)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(diags.contains("@listSize needs max"), "{diags}");
    assert!(
        diags.contains("@listSize applies to list fields, not Query.regency"),
        "{diags}"
    );
}
