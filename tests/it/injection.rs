//! Request values are data, never code: SQL placeholders are bound parameters and HTTP path
//! and query values are percent-encoded, so injection attempts are inert.

use crate::harness::{TestApp, Upstream, copy_deployment, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn sql_injection_through_arguments_is_inert() {
    let dir = copy_deployment(&repo_root().join("tests/cases/wilayah_levels"));
    let app = TestApp::spawn(dir.path(), &[]).await;
    for attack in [
        "'; DROP TABLE regions; --",
        "35.03.11' OR '1'='1",
        "%27 OR 1=1 --",
        "35.03.11\" OR \"\"=\"",
    ] {
        let r = app
            .query_vars(
                "query($c: ID!) { district(code: $c) { name } }",
                serde_json::json!({ "c": attack }),
            )
            .await;
        assert_eq!(
            r["data"]["district"],
            serde_json::Value::Null,
            "{attack}: {r}"
        );
        assert!(r.get("errors").is_none(), "{attack}: {r}");
    }
    let r = app
        .query("{ district(code: \"35.03.11\") { name } regency { districts { code } } }")
        .await;
    assert_eq!(
        r["data"]["district"]["name"], "Trenggalek",
        "the table is still there"
    );
    assert_eq!(
        r["data"]["regency"]["districts"].as_array().map(Vec::len),
        Some(2)
    );
}

fn http_schema(dir: &std::path::Path) {
    std::fs::write(
        dir.join("schema.graphql"),
        r#"type Query {
  user(id: String!): User @http(connector: "blog", path: "/users/{{args.id}}")
  search(q: String!): [User!]! @http(connector: "blog", path: "/users", query: [{name: "id", value: "{{args.q}}"}])
}
type User { id: Int! name: String! }
"#,
    )
    .expect("schema");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_path_and_query_values_cannot_escape_their_place() {
    let upstream = Upstream::start().await;
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    http_schema(dir.path());
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;

    let r = app.query(r#"{ a: user(id: "../posts") { id } b: user(id: "1/../../posts") { id } c: user(id: "1?admin=1") { id } d: user(id: "%2e%2e") { id } }"#).await;
    for alias in ["a", "b", "c", "d"] {
        assert_eq!(r["data"][alias], serde_json::Value::Null, "{alias}: {r}");
    }
    let seen = upstream.requests();
    assert!(
        seen.iter().all(|p| p.starts_with("/users/")),
        "every request stayed under /users/: {seen:?}"
    );
    assert!(seen.contains(&"/users/..%2Fposts".to_string()), "{seen:?}");
    assert!(
        seen.contains(&"/users/1%3Fadmin%3D1".to_string()),
        "{seen:?}"
    );
    assert!(seen.contains(&"/users/%252e%252e".to_string()), "{seen:?}");

    let r = app.query(r#"{ user(id: "..") { id } }"#).await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "a bare '..' segment is refused: {r}"
    );

    upstream.reset();
    let r = app.query(r#"{ search(q: "1&id=2&id=3") { id } }"#).await;
    assert_eq!(r["data"]["search"], serde_json::json!([]), "{r}");
    assert_eq!(
        upstream.requests(),
        vec!["/users?id=1%26id%3D2%26id%3D3".to_string()]
    );
}
