//! Source faults are named at once: a database that refuses connections, has no address or
//! rejects the connector's credentials answers SOURCE_UNAVAILABLE without waiting for the
//! timeout, with the cause in the log; a source unreachable at startup is DOWN from the
//! first request; values a field's type rejects and batches whose rows match no parent
//! are logged with the field, the connector and the values.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestApp, capture_logs, logged, mysql_url, pg_url};

/// A port nothing listens on: bound, noted, released.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A deployment of one SQL connector `name` (kind table `kind`, holding the line `target`),
/// read by `Query.items`. The timeout is long, so an answer that waits for it is plain.
fn one_source(name: &str, kind: &str, target: &str, circuit_open: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("connectors")).expect("connectors");
    std::fs::write(
        dir.path().join("schema.graphql"),
        format!(
            "type Query {{ items: [Item!] @sql(connector: \"{name}\", query: \"SELECT 1 AS id\") }}\ntype Item {{ id: Int }}\n"
        ),
    )
    .expect("schema");
    std::fs::write(
        dir.path().join(format!("connectors/{name}.toml")),
        format!("timeout = \"3s\"\ncircuit_open = \"{circuit_open}\"\n[{kind}]\n{target}\n"),
    )
    .expect("connector");
    dir
}

fn code(r: &Value) -> &str {
    r["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

/// `url` with its database (the last path segment) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    format!("{}/{db}", &base[..base.rfind('/').unwrap_or(base.len())])
}

/// `url` with its user replaced by `user`.
fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

/// Queries `Query.items` of a one-source deployment whose circuit opened at startup (its
/// open period is 1ms, so the request is the call that probes it) and returns the
/// response and how long it took.
async fn query_items(dir: &Path) -> (Value, Duration) {
    let app = TestApp::spawn(dir, &[]).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let started = Instant::now();
    let r = app.query("{ items { id } }").await;
    (r, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_source_unavailable_within_100ms_with_the_cause_logged() {
    capture_logs();
    let port = free_port();
    for (name, kind, url) in [
        (
            "faults_refused_pg",
            "postgres",
            format!("postgres://postgres@127.0.0.1:{port}/test"),
        ),
        (
            "faults_refused_my",
            "mysql",
            format!("mysql://root@127.0.0.1:{port}/test"),
        ),
    ] {
        let dir = one_source(name, kind, &format!("url = \"{url}\""), "1ms");
        let (r, took) = query_items(dir.path()).await;
        assert_eq!(code(&r), "SOURCE_UNAVAILABLE", "{name}: {r}");
        assert!(
            took < Duration::from_millis(100),
            "{name}: answered after {took:?}, not at once"
        );
        let cause = format!("connection refused (127.0.0.1:{port})");
        let lines = logged(&["upstream call failed", &format!("connector={name}"), &cause]);
        assert!(!lines.is_empty(), "{name}: no log line names the cause");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_host_is_source_unavailable_at_once_naming_the_host() {
    capture_logs();
    let name = "faults_dns_pg";
    let url = "postgres://postgres@nonexistent.invalid:5432/test";
    let dir = one_source(name, "postgres", &format!("url = \"{url}\""), "1ms");
    let (r, took) = query_items(dir.path()).await;
    assert_eq!(code(&r), "SOURCE_UNAVAILABLE", "{r}");
    assert!(
        took < Duration::from_millis(500),
        "answered after {took:?}: not retried, not waited for"
    );
    let lines = logged(&[
        "upstream call failed",
        &format!("connector={name}"),
        "nonexistent.invalid",
    ]);
    assert!(!lines.is_empty(), "no log line names the host");
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_credentials_and_an_unknown_database_are_source_unavailable_at_once() {
    capture_logs();
    let cases = [
        (
            "faults_no_db_pg",
            "postgres",
            with_database(&pg_url(), "no_such_db_simpul"),
            "no_such_db_simpul",
        ),
        (
            "faults_no_role_pg",
            "postgres",
            with_user(&pg_url(), "no_such_role"),
            "no_such_role",
        ),
        (
            "faults_no_db_my",
            "mysql",
            with_database(&mysql_url(), "no_such_db_simpul"),
            "no_such_db_simpul",
        ),
        (
            "faults_no_role_my",
            "mysql",
            with_user(&mysql_url(), "no_such_role"),
            "no_such_role",
        ),
    ];
    for (name, kind, url, named) in cases {
        let dir = one_source(name, kind, &format!("url = \"{url}\""), "1ms");
        let (r, took) = query_items(dir.path()).await;
        assert_eq!(code(&r), "SOURCE_UNAVAILABLE", "{name}: {r}");
        assert!(
            took < Duration::from_millis(500),
            "{name}: answered after {took:?}"
        );
        let lines = logged(&["upstream call failed", &format!("connector={name}"), named]);
        assert!(!lines.is_empty(), "{name}: no log line names {named}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_sqlite_file_is_source_unavailable_naming_the_file() {
    capture_logs();
    let name = "faults_missing_file";
    let dir = one_source(name, "sqlite", "path = \"data/missing.db\"", "1ms");
    let (r, took) = query_items(dir.path()).await;
    assert_eq!(code(&r), "SOURCE_UNAVAILABLE", "{r}");
    assert!(took < Duration::from_millis(500), "answered after {took:?}");
    let lines = logged(&[
        "upstream call failed",
        &format!("connector={name}"),
        "missing.db",
    ]);
    assert!(!lines.is_empty(), "no log line names the file");
}

async fn status(app: &TestApp) -> (Value, Value) {
    let sources = app.query("{ sources { name status lastError } }").await;
    let ready = reqwest::get(format!("{}/readyz", app.url))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200, "ready while a source is down");
    let ready: Value = ready.json().await.expect("json");
    (
        sources["data"]["sources"][0].clone(),
        ready["sources"][0]["status"].clone(),
    )
}

/// Forwards connections from `listener` to PostgreSQL: the database "comes up".
fn forward_to_postgres(listener: tokio::net::TcpListener) {
    let pg = pg_url();
    let host = pg
        .split("://")
        .nth(1)
        .and_then(|r| r.rsplit_once('@').map_or(Some(r), |(_, h)| Some(h)))
        .and_then(|h| h.split('/').next())
        .expect("pg host")
        .to_string();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let host = host.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(host).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_down_at_startup_is_down_from_the_first_request_and_up_once_it_answers() {
    capture_logs();
    let name = "faults_down_at_start";
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let dir = one_source(name, "postgres", &format!("url = \"{url}\""), "300ms");
    let started = Instant::now();
    let app = TestApp::spawn(dir.path(), &[]).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "startup does not wait for the timeout of a refused source"
    );
    let (source, ready) = status(&app).await;
    assert_eq!(source["name"], name);
    assert_eq!(source["status"], "DOWN", "{source}");
    assert_eq!(source["lastError"], "SOURCE_UNAVAILABLE", "{source}");
    assert_eq!(ready, "DOWN");
    let cause = format!("connection refused (127.0.0.1:{port})");
    assert!(
        !logged(&[
            "unreachable at startup",
            &format!("connector={name}"),
            &cause
        ])
        .is_empty(),
        "the reason is logged"
    );

    // The database comes up on that port: after the open period, the first call probes it.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind the port");
    forward_to_postgres(listener);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = app.query("{ items { id } }").await;
    assert_eq!(r["data"]["items"][0]["id"], 1, "{r}");
    let (source, ready) = status(&app).await;
    assert_eq!(source["status"], "UP", "{source}");
    assert_eq!(ready, "UP");
}

const SEED: &str = "CREATE TABLE districts (code TEXT, name TEXT, population TEXT);
INSERT INTO districts VALUES ('35.03.01', 'Panggul', 'banyak'), ('35.03.02', 'Munjungan', 'sedikit'), ('35.03.03', 'Watulimo', '41000');
CREATE TABLE villages (code TEXT, name TEXT, district_code TEXT, kode_kec TEXT);
INSERT INTO villages VALUES ('35.03.01.2001', 'Besuki', '35.03.01', '3503010'), ('35.03.02.2001', 'Ngulungwetan', '35.03.02', '3503020'), ('35.03.03.2001', 'Prigi', '35.03.03', '3503030');
";

/// Districts whose population is text, and villages batched by a key column in another
/// format than the parents' codes (`villages`) or missing from the rows (`hamlets`).
fn regions(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["connectors", "data"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    std::fs::write(dir.path().join("data/seed.sql"), SEED).expect("seed");
    std::fs::write(
        dir.path().join(format!("connectors/{name}.toml")),
        "[sqlite]\npath = \"data/regions.db\"\nseed = \"data/seed.sql\"\n",
    )
    .expect("connector");
    std::fs::write(
        dir.path().join("schema.graphql"),
        format!(
            r#"type Query {{
  districts: [District] @sql(connector: "{name}", query: "SELECT * FROM districts ORDER BY code")
}}
type District {{
  code: ID!
  name: String!
  population: Int!
  villages: [Village!]! @sql(connector: "{name}", query: "SELECT * FROM villages WHERE district_code IN ({{{{parent.code}}}}) ORDER BY code", batch: {{key: "kode_kec"}})
  hamlets: [Village!]! @sql(connector: "{name}", query: "SELECT code, name FROM villages WHERE district_code IN ({{{{parent.code}}}}) ORDER BY code", batch: {{key: "district_code"}})
}}
type Village {{ code: ID! name: String! }}
"#
        ),
    )
    .expect("schema");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_its_type_rejects_is_logged_once_with_field_connector_and_value() {
    capture_logs();
    let name = "faults_coerce";
    let dir = regions(name);
    let app = TestApp::spawn(dir.path(), &[]).await;
    for _ in 0..2 {
        let r = app.query("{ districts { code population } }").await;
        assert_eq!(code(&r), "SOURCE_BAD_RESPONSE", "{r}");
        assert_eq!(r["data"]["districts"][2]["population"], 41000, "{r}");
        assert_eq!(r["data"]["districts"][0], Value::Null, "{r}");
    }
    let lines = logged(&["field=District.population", &format!("connector={name}")]);
    assert_eq!(
        lines.len(),
        1,
        "two bad rows, two requests: one line\n{lines:#?}"
    );
    let line = &lines[0];
    assert!(
        line.contains("binding=Query.districts") && line.contains("banyak"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_rows_match_no_parent_is_logged_with_keys_from_both_sides() {
    capture_logs();
    let name = "faults_batch_key";
    let dir = regions(name);
    let app = TestApp::spawn(dir.path(), &[]).await;
    for _ in 0..2 {
        let r = app
            .query("{ districts { code villages { code } hamlets { code } } }")
            .await;
        assert!(r.get("errors").is_none(), "{r}");
        assert_eq!(r["data"]["districts"][0]["villages"], serde_json::json!([]));
    }
    let connector = format!("connector={name}");
    let villages = logged(&["District.villages: none of 3 rows matched", &connector]);
    assert_eq!(villages.len(), 1, "logged once: {villages:#?}");
    for part in [
        "the 3 keys asked",
        "\"kode_kec\"",
        "asked 35.03.01, 35.03.02, 35.03.03",
        "rows have 3503010, 3503020, 3503030",
    ] {
        assert!(villages[0].contains(part), "{part} in {}", villages[0]);
    }
    let hamlets = logged(&["District.hamlets", &connector]);
    assert_eq!(hamlets.len(), 1, "logged once: {hamlets:#?}");
    assert!(
        hamlets[0].contains("none of 3 rows has the batch key column \"district_code\""),
        "{}",
        hamlets[0]
    );
}
