//! The Trenggalek deployment served from SQLite, and from PostgreSQL and MariaDB copies of
//! the same seeds, answers identically: the slice query and every dashboard query in queries/.

use serde_json::Value;

use crate::harness::{
    Backend, TestApp, copy_deployment, dashboard_operations, move_to_server, repo_root,
};

pub const SLICE: &str = "{ regency { code name districts { code name villages { code name } } } }";

/// The slice query plus every operation in queries/.
fn operations() -> Vec<(String, String)> {
    let mut ops = vec![("slice".to_string(), SLICE.to_string())];
    ops.extend(
        dashboard_operations()
            .into_iter()
            .map(|(name, query, _)| (name, query)),
    );
    ops
}

async fn answers(app: &TestApp) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, q) in operations() {
        let r = app.query(&q).await;
        assert!(r.get("errors").is_none(), "{name}: {}", r["errors"]);
        out.push((name, r["data"].clone()));
    }
    out
}

async fn on(backend: Backend) -> Vec<(String, Value)> {
    let dir = copy_deployment(&repo_root());
    let copy = move_to_server(dir.path(), backend).await;
    let app = TestApp::spawn(dir.path(), &[]).await;
    let a = answers(&app).await;
    copy.drop_all().await;
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_postgres_and_mariadb_copies_answer_identically() {
    let dir = copy_deployment(&repo_root());
    let sqlite = answers(&TestApp::spawn(dir.path(), &[]).await).await;
    let regency = &sqlite[0].1["regency"];
    assert_eq!(regency["code"], "35.03");
    assert_eq!(regency["districts"].as_array().map(Vec::len), Some(14));
    let villages: usize = regency["districts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["villages"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(villages, 157);

    for backend in [Backend::Postgres, Backend::Mariadb] {
        let other = on(backend).await;
        for ((name, a), (_, b)) in sqlite.iter().zip(&other) {
            assert_eq!(a, b, "{name} differs between SQLite and {backend:?}");
        }
    }
}
