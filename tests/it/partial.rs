//! A failing source costs only its own fields: they are null with an error naming the
//! connector and a closed code; the rest of the response is served, and
//! `extensions.sources` says what happened.

use std::sync::atomic::Ordering;

use crate::harness::{TestApp, Upstream, copy_deployment, repo_root};

/// A deployment with a SQLite source and an HTTP source.
fn mixed(dir: &std::path::Path, timeout: &str) {
    std::fs::write(
        dir.join("schema.graphql"),
        r#"type Query {
  greet: String! @const(value: "Hello World!")
  posts: [Post!] @http(connector: "blog", path: "/posts")
  district(code: ID!): District @sql(connector: "db", query: "SELECT * FROM regions WHERE code = {{args.code}}")
}
type Post { id: Int! user: User @http(connector: "blog", path: "/users", query: [{name: "id", value: "{{parent.userId}}"}], batch: {key: "id"}) }
type User { name: String! }
type District { code: ID! name: String! }
"#,
    )
    .expect("schema");
    std::fs::write(dir.join("connectors/blog.toml"), format!("title = \"Blog\"\nopd = \"kominfo\"\ntimeout = \"{timeout}\"\n[http]\nbase_url = \"${{env.UPSTREAM_URL}}\"\n")).expect("connector");
    std::fs::create_dir_all(dir.join("data")).expect("data");
    std::fs::copy(
        repo_root().join("tests/cases/wilayah_levels/data/seed.sql"),
        dir.join("data/seed.sql"),
    )
    .expect("seed");
    std::fs::write(
        dir.join("connectors/db.toml"),
        "[sqlite]\npath = \"data/db.db\"\nseed = \"data/seed.sql\"\n",
    )
    .expect("db");
}

const Q: &str = r#"{ greet district(code: "35.03.11") { name } posts { id user { name } } }"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_erroring_upstream_nulls_only_its_fields() {
    let upstream = Upstream::start().await;
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    mixed(dir.path(), "2s");
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    upstream.fail.store(true, Ordering::SeqCst);
    let r = app.query(Q).await;
    assert_eq!(r["data"]["greet"], "Hello World!");
    assert_eq!(r["data"]["district"]["name"], "Trenggalek");
    assert_eq!(r["data"]["posts"], serde_json::Value::Null);
    let e = &r["errors"][0];
    assert_eq!(e["extensions"]["code"], "SOURCE_ERROR");
    assert_eq!(e["extensions"]["connector"], "blog");
    assert_eq!(e["path"], serde_json::json!(["posts"]));
    assert!(
        !e["message"].as_str().unwrap_or("").contains("boom"),
        "upstream details stay in the log: {e}"
    );
    let sources = r["extensions"]["sources"].as_array().expect("sources");
    let blog = sources
        .iter()
        .find(|s| s["name"] == "blog")
        .expect("blog source");
    assert_eq!(blog["error"], "SOURCE_ERROR");
    assert_eq!(blog["opd"], "kominfo");
    let db = sources
        .iter()
        .find(|s| s["name"] == "db")
        .expect("db source");
    assert_eq!(db["cache"], "MISS");
    assert!(db.get("error").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_upstream_is_source_unavailable() {
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    mixed(dir.path(), "2s");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let app = TestApp::spawn(
        dir.path(),
        &[("UPSTREAM_URL", &format!("http://127.0.0.1:{port}"))],
    )
    .await;
    let r = app.query(Q).await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "SOURCE_UNAVAILABLE",
        "{r}"
    );
    assert_eq!(r["data"]["district"]["name"], "Trenggalek");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_upstream_times_out_at_the_connector_timeout() {
    let upstream = Upstream::start().await;
    upstream.delay_ms.store(2_000, Ordering::SeqCst);
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    mixed(dir.path(), "300ms");
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    let started = std::time::Instant::now();
    let r = app.query(Q).await;
    let took = started.elapsed();
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "SOURCE_TIMEOUT",
        "{r}"
    );
    assert!(
        took < std::time::Duration::from_millis(1_500),
        "answered after {took:?}, not the upstream's 2s"
    );
    assert_eq!(r["data"]["greet"], "Hello World!");
}
