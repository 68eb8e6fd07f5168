//! `GET /metrics` as Prometheus reads it: parsed by a Prometheus text parser, its counters
//! move as requests are made (by operation, type, view and outcome; connector calls; cache
//! lookups; limits), its gauges say the gateway's state now (sources, open alerts by
//! severity as the API lists them), and only a scraper with the token reads it once one is
//! set. Each test runs the binary, so the process's counters are its own.

use std::collections::HashMap;
use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value as Metric};
use serde_json::{Value, json};

use crate::cli::start;
use crate::harness::{Upstream, copy_deployment, repo_root};

/// The samples of `/metrics`, parsed.
async fn scrape(url: &str, token: Option<&str>) -> Vec<Sample> {
    let mut request = reqwest::Client::new().get(format!("{url}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.expect("text");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    Scrape::parse(lines)
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"))
        .samples
}

/// The value of the sample `metric` whose labels include `labels` (0 when absent).
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
            Metric::Histogram(_) | Metric::Summary(_) => f64::NAN,
        })
        .sum()
}

async fn post(url: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_move_as_requests_are_made() {
    let upstream = Upstream::start().await;
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    std::fs::write(dir.path().join("simpul.toml"), "[limits]\nmax_depth = 2\n")
        .expect("simpul.toml");
    let (_server, url) = start(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    let before = scrape(&url, None).await;
    let ok = [
        ("operation", "PostsWithUsers"),
        ("type", "query"),
        ("view", "PUBLIC"),
        ("outcome", "ok"),
    ];
    assert_eq!(value(&before, "simpul_requests_total", &ok), 0.0);

    let query = json!({ "query": "query PostsWithUsers { posts { id title } }" });
    for _ in 0..3 {
        let answer = post(&url, query.clone()).await;
        assert_eq!(answer["data"]["posts"].as_array().map(Vec::len), Some(100));
    }
    // Refused before it ran: over max_depth, and a syntax error.
    let deep = post(
        &url,
        json!({ "query": "query Deep { posts { user { name } } }", "operationName": "Deep" }),
    )
    .await;
    assert_eq!(
        deep["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{deep}"
    );
    let broken = post(
        &url,
        json!({ "query": "query Broken { posts { id ", "operationName": "Broken" }),
    )
    .await;
    assert_eq!(
        broken["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{broken}"
    );

    let after = scrape(&url, None).await;
    assert_eq!(value(&after, "simpul_requests_total", &ok), 3.0);
    let rejected = |name| {
        value(
            &after,
            "simpul_requests_total",
            &[("operation", name), ("outcome", "rejected")],
        )
    };
    assert_eq!((rejected("Deep"), rejected("Broken")), (1.0, 1.0));
    assert_eq!(
        value(&after, "simpul_limits_hit_total", &[("limit", "max_depth")]),
        1.0
    );
    let histogram = after
        .iter()
        .find(|s| {
            s.metric == "simpul_request_duration_seconds"
                && s.labels.get("type") == Some("query")
                && s.labels.get("view") == Some("PUBLIC")
        })
        .expect("a latency histogram of the queries");
    let Metric::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram: {histogram:?}");
    };
    let le_inf = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
    assert_eq!(le_inf, 3.0, "three queries observed");
    // Every query called the upstream (no cache policy): one call each, all ok.
    let calls = [("connector", "blog"), ("kind", "http"), ("outcome", "ok")];
    assert_eq!(value(&after, "simpul_connector_calls_total", &calls), 3.0);
    assert_eq!(upstream.calls(), 3);
    assert_eq!(
        value(
            &after,
            "simpul_source_status",
            &[("connector", "blog"), ("status", "UP")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "simpul_connector_circuit",
            &[("connector", "blog"), ("state", "CLOSED")]
        ),
        1.0
    );

    // The upstream fails: the calls are counted by their error code, the source degrades.
    upstream
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let failed = post(&url, query.clone()).await;
    assert!(failed["errors"].is_array(), "{failed}");
    let after = scrape(&url, None).await;
    let errors = value(
        &after,
        "simpul_requests_total",
        &[("operation", "PostsWithUsers"), ("outcome", "errors")],
    );
    assert_eq!(errors, 1.0);
    let failed_calls = value(
        &after,
        "simpul_connector_calls_total",
        &[("connector", "blog"), ("outcome", "SOURCE_ERROR")],
    );
    assert_eq!(failed_calls, 1.0);
    assert_eq!(
        value(
            &after,
            "simpul_source_status",
            &[("connector", "blog"), ("status", "UP")]
        ),
        0.0,
        "no longer UP"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_lookups_and_the_token_of_the_scraper() {
    let upstream = Upstream::start().await;
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    let schema = dir.path().join("schema.graphql");
    let sdl = std::fs::read_to_string(&schema).expect("schema");
    let cached = sdl.replace(
        "@http(connector: \"blog\", path: \"/posts\")",
        "@http(connector: \"blog\", path: \"/posts\") @cache(ttl: \"1m\")",
    );
    assert_ne!(sdl, cached);
    std::fs::write(&schema, cached).expect("schema");
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[auth]\nmetrics_token = \"${env.SIMPUL_METRICS_TOKEN}\"\n\
         [cache]\nresponse = false\n",
    )
    .expect("simpul.toml");
    let token = "a-token-for-prometheus-only";
    let (_server, url) = start(
        dir.path(),
        &[
            ("UPSTREAM_URL", &upstream.url),
            ("SIMPUL_METRICS_TOKEN", token),
        ],
    )
    .await;
    let refused = reqwest::get(format!("{url}/metrics")).await.expect("GET");
    assert_eq!(
        refused.status(),
        401,
        "a token is set: loopback is not enough"
    );
    let wrong = reqwest::Client::new()
        .get(format!("{url}/metrics"))
        .bearer_auth("a-token-for-prometheus-onlx")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);

    for _ in 0..3 {
        let answer = post(&url, json!({ "query": "{ posts { id } }" })).await;
        assert_eq!(answer["data"]["posts"][0]["id"], 1, "{answer}");
    }
    let samples = scrape(&url, Some(token)).await;
    let lookups: HashMap<&str, f64> = ["hit", "miss", "stale"]
        .into_iter()
        .map(|r| {
            let n = value(
                &samples,
                "simpul_cache_lookups_total",
                &[("connector", "blog"), ("result", r)],
            );
            (r, n)
        })
        .collect();
    assert_eq!(
        (lookups["miss"], lookups["hit"], lookups["stale"]),
        (1.0, 2.0, 0.0)
    );
    assert_eq!(upstream.calls(), 1);
    assert_eq!(value(&samples, "simpul_cache_entries", &[]), 1.0);
    assert!(value(&samples, "simpul_cache_bytes", &[]) > 1000.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn open_alerts_by_severity_are_those_the_api_lists() {
    let dir = copy_deployment(&repo_root());
    let secret = crate::alerts::SECRET;
    let state = dir.path().join("metrics-state.db");
    let state_url = format!("sqlite://{}", state.display());
    let (_server, url) = start(
        dir.path(),
        &[
            ("SIMPUL_JWT_SECRET", secret),
            ("SIMPUL_STATE_URL", &state_url),
        ],
    )
    .await;
    let token = crate::alerts::staff_token("metrics-test");
    let open_by_severity = async || -> HashMap<String, f64> {
        let answer: Value = reqwest::Client::new()
            .post(format!("{url}/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ alerts(first: 1000) { severity status } }" }))
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON");
        let mut by: HashMap<String, f64> = HashMap::new();
        for a in answer["data"]["alerts"].as_array().expect("alerts") {
            if a["status"] != "RESOLVED" {
                *by.entry(a["severity"].as_str().expect("severity").to_string())
                    .or_default() += 1.0;
            }
        }
        by
    };
    let published = |samples: &[Sample]| -> HashMap<String, f64> {
        samples
            .iter()
            .filter(|s| s.metric == "simpul_alerts_open")
            .filter_map(|s| match s.value {
                Metric::Gauge(v) => Some((s.labels.get("severity")?.to_string(), v)),
                _ => None,
            })
            .collect()
    };
    // The rules run at startup and raise their alerts over a few evaluations: compare
    // once the API's answer is the same before and after the scrape.
    let mut samples = Vec::new();
    let mut compared = false;
    for _ in 0..60 {
        let before = open_by_severity().await;
        samples = scrape(&url, None).await;
        let after = open_by_severity().await;
        if before == after && before.values().sum::<f64>() > 5.0 {
            assert_eq!(published(&samples), before);
            compared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(compared, "the demo data's alerts never settled");
    assert_eq!(value(&samples, "simpul_outbox_pending", &[]), 0.0);
    assert!(
        samples
            .iter()
            .any(|s| s.metric == "simpul_outbox_oldest_age_seconds"),
        "the outbox's age is published"
    );
}
