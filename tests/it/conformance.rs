//! Execution conformance: every folder in tests/conformance/cases/ is a request against
//! the deployment in tests/conformance/deployment/ and the exact response it must get
//! (`expected.json`, compared byte for byte without `extensions`: key order and key
//! presence included). Each runs twice, on first sight and again, and both answers must be
//! the same bytes. `SIMPUL_BLESS=1` writes a missing expected.json for review.

use serde::Deserialize;
use serde_json::Value;

use crate::harness::{TestApp, copy_deployment, repo_root};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    /// The HTTP status, when not 200 (a request error under graphql-response+json).
    status: Option<u16>,
}

/// The response body without its `extensions` (timings and calls differ between runs).
pub fn without_extensions(body: &str) -> String {
    match body.rfind(",\"extensions\":{\"sources\":") {
        Some(i) => format!("{}}}", &body[..i]),
        None => body.to_string(),
    }
}

async fn send(app: &TestApp, query: &str, variables: &Value) -> (u16, String) {
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("accept", "application/graphql-response+json")
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn execution_conformance_cases() {
    let dir = copy_deployment(&repo_root().join("tests/conformance/deployment"));
    // The second run must execute the plan, not replay the first answer.
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[cache]\nresponse = false\n",
    )
    .expect("simpul.toml");
    let app = TestApp::spawn(dir.path(), &[]).await;
    let root = repo_root().join("tests/conformance/cases");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "conformance cases in {}", root.display());
    let bless = std::env::var_os("SIMPUL_BLESS").is_some();
    let mut failures = Vec::new();
    for case_dir in cases {
        let name = case_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let case: Case = toml::from_str(
            &std::fs::read_to_string(case_dir.join("case.toml")).expect("case.toml"),
        )
        .expect("case.toml");
        let query = std::fs::read_to_string(case_dir.join("request.graphql")).expect("request");
        let variables: Value = std::fs::read_to_string(case_dir.join("variables.json"))
            .map(|t| serde_json::from_str(&t).expect("variables.json"))
            .unwrap_or(Value::Null);
        let (first_status, first) = send(&app, &query, &variables).await;
        let (second_status, second) = send(&app, &query, &variables).await;
        let first = without_extensions(&first);
        let second = without_extensions(&second);
        let expected_status = case.status.unwrap_or(200);
        if first_status != expected_status || second_status != expected_status {
            failures.push(format!(
                "{name} ({}): status {first_status} then {second_status}, expected {expected_status}",
                case.description
            ));
        }
        if first != second {
            failures.push(format!(
                "{name} ({}): first sight and again differ\n  first:  {first}\n  second: {second}",
                case.description
            ));
        }
        let path = case_dir.join("expected.json");
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected.trim() == first => {}
            Ok(expected) => failures.push(format!(
                "{name} ({}):\n  expected: {}\n  got:      {first}",
                case.description,
                expected.trim()
            )),
            Err(_) if bless => std::fs::write(&path, format!("{first}\n")).expect("bless"),
            Err(_) => failures.push(format!("{name}: no expected.json; got {first}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
