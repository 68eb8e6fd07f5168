//! Runs every folder in tests/cases/: schema.graphql, connectors/, optional data/, a
//! request.graphql (+ variables.json), and case.toml with the expected upstream calls. The
//! response is compared with the folder's response.snap.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::harness::{TestApp, Upstream, copy_deployment, redact, repo_root};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    /// Requests the loopback HTTP upstream must receive.
    upstream_requests: Option<usize>,
    /// Upstream calls per connector, as reported in `extensions.sources`.
    #[serde(default)]
    calls: BTreeMap<String, u64>,
}

#[tokio::test(flavor = "multi_thread")]
async fn case_folders() {
    let root = repo_root().join("tests/cases");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 3,
        "expected case folders in {}",
        root.display()
    );
    for dir in dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let case: Case =
            toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).expect("case.toml"))
                .expect("case.toml is valid");
        let upstream = Upstream::start().await;
        let copy = copy_deployment(&dir);
        let app = TestApp::spawn(copy.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
        let query = std::fs::read_to_string(dir.join("request.graphql")).expect("request.graphql");
        let variables: Value = std::fs::read_to_string(dir.join("variables.json"))
            .map(|t| serde_json::from_str(&t).expect("variables.json"))
            .unwrap_or(Value::Null);
        let response = app.query_vars(&query, variables).await;

        if let Some(expected) = case.upstream_requests {
            assert_eq!(
                upstream.calls(),
                expected,
                "case {name} ({}): upstream requests {:?}",
                case.description,
                upstream.requests()
            );
        }
        for (connector, expected) in &case.calls {
            let got = response["extensions"]["sources"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == connector.as_str()))
                .and_then(|s| s["calls"].as_u64())
                .unwrap_or(0);
            assert_eq!(
                got, *expected,
                "case {name} ({}): calls to connector {connector}",
                case.description
            );
        }
        insta::with_settings!({ snapshot_path => dir.clone(), prepend_module_to_snapshot => false, description => case.description.clone(), omit_expression => true }, {
            insta::assert_json_snapshot!("response", redact(response));
        });
    }
}
