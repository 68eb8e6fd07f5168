//! Snapshots of every `simpul check` message: each mistake is reported with its place and a
//! hint, all at once.

use crate::harness::{copy_deployment, repo_root};

async fn check_output(name: &str) -> String {
    simpul::install_crypto();
    let dir = copy_deployment(&repo_root().join("tests/check").join(name));
    let diags = simpul::check::check(dir.path()).await;
    assert!(!diags.is_empty(), "{name} must have problems");
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_binding_mistake_is_reported_with_its_place() {
    let out = check_output("broken").await;
    insta::assert_snapshot!("check_broken", out);
}

#[tokio::test]
async fn a_syntax_error_points_at_its_line() {
    let out = check_output("syntax").await;
    assert!(out.starts_with("schema.graphql:7:"), "{out}");
    insta::assert_snapshot!("check_syntax", out);
}

#[tokio::test]
async fn config_file_mistakes_are_reported_per_file() {
    let out = check_output("config").await;
    insta::assert_snapshot!("check_config", out);
}

#[tokio::test]
async fn the_repository_deployment_has_no_problems() {
    simpul::install_crypto();
    let dir = copy_deployment(&repo_root());
    let diags = simpul::check::check(dir.path()).await;
    assert!(
        diags.is_empty(),
        "{}",
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn sql_the_database_rejects_is_reported_at_its_binding() {
    let out = check_output("sql").await;
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("schema.graphql:"))
            .count(),
        2,
        "{out}"
    );
    insta::assert_snapshot!("check_sql", out);
}

#[tokio::test]
async fn type_interface_union_and_argument_mistakes_are_reported() {
    let out = check_output("more").await;
    insta::assert_snapshot!("check_more", out);
}
