//! deploy/ checked by real tools and against this binary (tests/deploy/check.py): the
//! Kubernetes manifests by kubernetes-validate, the compose file by the Compose
//! Specification's schema, the Dockerfile by hadolint; every env var, port, path, mount and
//! grace period they name against the binary and the repository, every probe and scrape
//! path answering 200 from the binary started with the Deployment's settings on a
//! PostgreSQL database of its own and Redis. With Podman (scripts/services.sh installs it)
//! the image is built on a Debian base made by mmdebstrap and its container answers
//! /readyz; `SIMPUL_DEPLOY_IMAGE=0` leaves that part out.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{pg_url, redis_url, repo_root, run_bounded};

/// The image's first build makes the Debian base (minutes); later ones reuse it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs the checker, at most [`SCRIPT_TIMEOUT`]: (exited 0, its checks, its stderr).
fn run_checker(state_url: &str) -> (bool, Vec<Value>, String) {
    let root = repo_root();
    let python = root.join("target/deploy-tools/venv/bin/python");
    assert!(
        python.exists(),
        "the deploy checkers are not installed: python3 -m venv target/deploy-tools/venv && \
         target/deploy-tools/venv/bin/pip install -r tests/deploy/requirements.txt (scripts/test.sh does)"
    );
    let mut cmd = Command::new(python);
    cmd.arg(root.join("tests/deploy/check.py"))
        .args(["--binary", env!("CARGO_BIN_EXE_simpul")])
        .args(["--pg-url", state_url])
        .args(["--redis-url", &redis_url()])
        .arg("--tools")
        .arg(root.join("target/deploy-tools"));
    if std::env::var("SIMPUL_DEPLOY_IMAGE").as_deref() != Ok("0") {
        cmd.arg("--image");
    }
    cmd.current_dir(&root);
    let ran = run_bounded(cmd, SCRIPT_TIMEOUT, "tests/deploy/check.py");
    let checks = ran
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("check").is_some())
        .collect();
    (ran.success, checks, ran.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deploy_files_pass_their_tools_and_agree_with_the_binary() {
    // A state database of its own: the Deployment's SIMPUL_STATE_URL points here.
    let admin = sqlx::PgPool::connect(&pg_url()).await.expect("postgres");
    let db = format!("simpul_deploy_{}", std::process::id());
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}")))
        .execute(&admin)
        .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&admin)
        .await
        .expect("create database");
    let state_url = format!("{}/{db}", pg_url().rsplit_once('/').expect("a /db").0);

    let (success, checks, stderr) = tokio::task::spawn_blocking(move || run_checker(&state_url))
        .await
        .expect("checker");

    // The gateway kept its state in PostgreSQL: what makes instances share it.
    let state = sqlx::PgPool::connect(&format!(
        "{}/{db}",
        pg_url().rsplit_once('/').expect("a /db").0
    ))
    .await
    .expect("state database");
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&state)
    .await
    .expect("count tables");
    state.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
    )))
    .execute(&admin)
    .await;

    for c in &checks {
        eprintln!("deploy: {c}");
    }
    let failed: Vec<_> = checks.iter().filter(|c| c["ok"] != true).collect();
    assert!(
        success && failed.is_empty() && checks.len() >= 10,
        "{} of {} deploy checks failed:\n{}\n--- stderr:\n{stderr}",
        failed.len(),
        checks.len(),
        failed
            .iter()
            .map(|c| format!("  {}: {}", c["check"], c["detail"]))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    assert!(
        tables > 0,
        "the gateway started with the Deployment's SIMPUL_STATE_URL left no table in {db}"
    );
}
