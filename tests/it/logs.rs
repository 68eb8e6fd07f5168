//! The log as a log collector reads it: with `[log] format = "json"` every line the gateway
//! writes is one JSON object, each request's events carry its request id (the client's
//! `x-request-id`, or one the gateway makes and sends back), and what the client sent
//! (query text, variables) is not in it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::start_logging;
use crate::harness::{Upstream, copy_deployment, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_each_requests_id_and_nothing_the_client_sent() {
    let upstream = Upstream::start().await;
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    std::fs::write(dir.path().join("simpul.toml"), "[log]\nformat = \"json\"\n")
        .expect("simpul.toml");
    let log = dir.path().join("gateway.log");
    let (_server, url) = start_logging(
        dir.path(),
        &[
            ("UPSTREAM_URL", &upstream.url),
            ("RUST_LOG", "info,simpul::access=debug"),
        ],
        &log,
    )
    .await;
    let client = reqwest::Client::new();
    let secret = "Budi Santoso 0812-3456-7890";
    let body = json!({
        "query": "query Posts { posts { id title } }",
        "variables": { "note": secret },
    });
    let named = client
        .post(format!("{url}/graphql"))
        .header("x-request-id", "req-42")
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(named.headers()["x-request-id"], "req-42");
    let made = client
        .post(format!("{url}/graphql"))
        .header("x-request-id", "not a plain id")
        .json(&body)
        .send()
        .await
        .expect("POST");
    let made_id = made.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    assert_eq!(made_id.len(), 16, "{made_id}");
    assert!(made_id.bytes().all(|b| b.is_ascii_hexdigit()), "{made_id}");

    // The access lines are written as the responses leave: wait for both.
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !text.contains(secret),
            "the log holds what the client sent:\n{text}"
        );
        assert!(
            !text.contains("query Posts"),
            "the log holds the query:\n{text}"
        );
        lines = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let of = |id: &str| {
            lines
                .iter()
                .any(|l| l["span"]["request_id"] == id && l["message"] == "request")
        };
        if of("req-42") && of(&made_id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "simpul::access")
        .collect();
    let named_line = access
        .iter()
        .find(|l| l["span"]["request_id"] == "req-42")
        .unwrap_or_else(|| panic!("no access line of req-42: {lines:#?}"));
    assert_eq!(named_line["method"], "POST");
    assert_eq!(named_line["path"], "/graphql");
    assert_eq!(named_line["status"], 200);
    assert!(
        access
            .iter()
            .any(|l| l["span"]["request_id"] == made_id.as_str()),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l["message"] == "simpul listening"),
        "startup lines are JSON too: {lines:#?}"
    );
}
