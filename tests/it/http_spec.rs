//! GraphQL over HTTP: media types, the status codes the spec prescribes, GET rules, GraphiQL,
//! health endpoints.

use reqwest::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::harness::{TestApp, repo_root};

async fn app() -> TestApp {
    TestApp::spawn(
        &repo_root().join("tests/cases/blog_batched"),
        &[("UPSTREAM_URL", "http://127.0.0.1:9")],
    )
    .await
}

async fn post(app: &TestApp, accept: Option<&str>, body: &str) -> (u16, String, Value) {
    let mut req = app
        .client
        .post(format!("{}/graphql", app.url))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, ct, body)
}

const GREET: &str = r#"{"query":"{ greet }"}"#;

#[tokio::test]
async fn negotiates_the_response_media_type() {
    let app = app().await;
    let (s, ct, b) = post(&app, Some("application/graphql-response+json"), GREET).await;
    assert_eq!(
        (s, ct.as_str()),
        (200, "application/graphql-response+json; charset=utf-8")
    );
    assert_eq!(b["data"]["greet"], "Hello World!");
    let (_, ct, _) = post(&app, Some("application/json"), GREET).await;
    assert_eq!(ct, "application/json; charset=utf-8");
    let (_, ct, _) = post(&app, None, GREET).await;
    assert_eq!(
        ct, "application/json; charset=utf-8",
        "no Accept means application/json"
    );
    let (_, ct, _) = post(&app, Some("*/*"), GREET).await;
    assert_eq!(ct, "application/json; charset=utf-8");
    let (s, _, _) = post(&app, Some("text/plain"), GREET).await;
    assert_eq!(s, 406);
}

/// Not a GraphQL request (unparsable JSON, parameters of the wrong type): 400 whatever the
/// client accepts. A GraphQL request that fails (parse, validation): 400 under
/// graphql-response+json, 200 under legacy JSON, as the spec recommends.
#[tokio::test]
async fn request_errors_answer_as_the_spec_recommends() {
    let app = app().await;
    let not_graphql = [
        "{not json",
        "[]",
        r#"{"query": 1}"#,
        r#"{"variables": {}}"#,
        r#"{"query":"{ greet }","variables":"x"}"#,
        r#"{"query":"{ greet }","operationName":3}"#,
    ];
    let failing = [r#"{"query":"{ nope }"}"#, r#"{"query":"{ greet"}"#];
    for body in not_graphql.iter().chain(&failing) {
        let (s, _, b) = post(&app, Some("application/graphql-response+json"), body).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert!(
            b.get("data").is_none(),
            "{body}: a request error has no data: {b}"
        );
        assert!(
            b["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        let (s, _, b) = post(&app, Some("application/json"), body).await;
        let expected = if not_graphql.contains(body) { 400 } else { 200 };
        assert_eq!(s, expected, "{body}");
        assert!(
            b["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let (s, _, b) = post(
        &app,
        None,
        r#"{"query":"{ greet }","variables":null,"operationName":null,"extensions":null}"#,
    )
    .await;
    assert_eq!(
        (s, b["data"]["greet"].as_str()),
        (200, Some("Hello World!")),
        "null parameters are allowed"
    );
}

#[tokio::test]
async fn post_without_json_content_type_is_refused() {
    let app = app().await;
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .body(GREET)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 415);
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .header(CONTENT_TYPE, "text/plain")
        .body(GREET)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 415);
}

#[tokio::test]
async fn get_runs_queries_never_mutations() {
    let app = TestApp::spawn(
        &repo_root().join("tests/cases/blog_batched"),
        &[("UPSTREAM_URL", "http://127.0.0.1:9")],
    )
    .await;
    let r = app
        .client
        .get(format!("{}/graphql", app.url))
        // CSRF prevention: a GET must force a preflight (security::requests_a_page_could_forge_are_refused).
        .header("apollo-require-preflight", "true")
        .query(&[("query", "{ greet }")])
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json")["data"]["greet"],
        "Hello World!"
    );
    let r = app
        .client
        .get(format!("{}/graphql", app.url))
        // CSRF prevention: a GET must force a preflight (security::requests_a_page_could_forge_are_refused).
        .header("apollo-require-preflight", "true")
        .query(&[
            ("query", "query Q($n: Int) { greet }"),
            ("variables", r#"{"n": 1}"#),
            ("operationName", "Q"),
        ])
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.status().as_u16(),
        200,
        "URL-encoded JSON variables are accepted"
    );
    let r = app
        .client
        .get(format!("{}/graphql", app.url))
        // CSRF prevention: a GET must force a preflight (security::requests_a_page_could_forge_are_refused).
        .header("apollo-require-preflight", "true")
        .query(&[("query", "mutation { greet }")])
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get(ALLOW).and_then(|v| v.to_str().ok()),
        Some("POST")
    );
}

#[tokio::test]
async fn browsers_get_graphiql_and_probes_get_health() {
    let app = app().await;
    let r = app
        .client
        .get(format!("{}/graphql", app.url))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.expect("html").contains("graphiql"));
    let r = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status().as_u16(), 200);
    let r = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("json")["sources"][0]["name"],
        "blog"
    );
}

#[tokio::test]
async fn introspection_shows_descriptions_but_never_binding_directives() {
    let app = TestApp::spawn(&repo_root(), &[]).await;
    let r = app
        .query(r#"{ __type(name: "District") { description fields { name description } } }"#)
        .await;
    assert!(
        r["data"]["__type"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{r}"
    );
    assert!(
        r["data"]["__type"]["fields"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["description"].is_string())),
        "{r}"
    );
    let sdl = app.query("{ __schema { directives { name } } }").await;
    let names: Vec<&str> = sdl["data"]["__schema"]["directives"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["name"].as_str())
        .collect();
    for hidden in ["sql", "http", "map", "const"] {
        assert!(
            !names.contains(&hidden),
            "@{hidden} is not shown to clients: {names:?}"
        );
    }
    let _ = json!(null);
}
