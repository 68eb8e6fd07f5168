//! Issue 12, a public endpoint no client can freeze, exhaust or abuse: every request of the
//! hostile corpus below is refused with a 4xx within seconds, while a dashboard client keeps
//! getting its exact answers, and afterwards the gateway is healthy and its memory has not
//! grown past a bound. Ten thousand distinct 1 MB queries leave memory bounded too: the plan
//! caches must not keep what they were asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::{
    TestApp, copy_deployment, dashboard_operations, repo_root, without_rate_limits,
};
use crate::limits::bomb;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";
const MB: usize = 1 << 20;

/// How long one hostile request may take to be refused, sending its body included.
const PER_CASE: Duration = Duration::from_secs(5);

/// Each hostile request is sent this many times at once: more than the worker threads, so
/// one that held its thread would stall the dashboard client.
const COPIES: usize = 4;

/// How much the resident memory of the test process (gateway, clients and the corpus
/// itself) may grow. The corpus holds a few 10 MB bodies at a time and the caches are
/// bounded in the tens of MB (response cache: a quarter of 256 MiB); a gateway that keeps
/// what it was sent, or expands a bomb, grows by gigabytes.
const RSS_GROWTH: u64 = 300 * MB as u64;

/// The resident memory of this process: the gateway runs in it.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

/// The two tests read the memory of one process: one at a time, so neither sees the other.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The repository's deployment with its default limits.
async fn deploy() -> (TempDir, TestApp) {
    let dir = copy_deployment(&repo_root());
    // Every client here is 127.0.0.1: the defences under test are the others
    // (security::each_client_gets_its_tiers_budget_then_429 tests the rate limits).
    without_rate_limits(dir.path());
    let app = TestApp::spawn(dir.path(), &[]).await;
    (dir, app)
}

/// How a hostile request is sent.
enum Request {
    /// POST /graphql with this content type (none when `None`) and these raw bytes.
    Post {
        content_type: Option<&'static str>,
        body: Vec<u8>,
    },
    /// GET /graphql with these query parameters.
    Get(Vec<(&'static str, String)>),
}

struct Case {
    name: &'static str,
    request: Request,
}

fn post_json(body: impl Into<Vec<u8>>) -> Request {
    Request::Post {
        content_type: Some(JSON),
        body: body.into(),
    }
}

fn post_query(query: String) -> Request {
    post_json(json!({ "query": query }).to_string())
}

fn repeat(n: usize, item: impl Fn(usize) -> String) -> String {
    (0..n).map(item).collect::<Vec<_>>().join(" ")
}

/// `n` nested arrays around `inner`, as JSON text.
fn nested_json(n: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(n), "]".repeat(n))
}

/// The corpus: each request must be refused with a 4xx.
fn corpus() -> Vec<Case> {
    let ten_mb = "x".repeat(10 * MB);
    let case = |name, request| Case { name, request };
    vec![
        case(
            "selections nested 10,000 deep",
            post_query(format!("{}{}", "{ a ".repeat(10_000), "}".repeat(10_000))),
        ),
        case(
            "input values nested 10,000 deep",
            post_query(format!(
                "{{ __type(name: {}) {{ name }} }}",
                nested_json(10_000, "\"Query\"")
            )),
        ),
        case(
            "variables nested 10,000 deep",
            post_json(format!(
                r#"{{"query":"query($v: [String]) {{ __typename }}","variables":{{"v":{}}}}}"#,
                nested_json(10_000, "\"x\"")
            )),
        ),
        case("fragment bomb, 30 levels", post_query(bomb(30))),
        case(
            "fragment spreading itself",
            post_query("{ ...A } fragment A on Query { ...A }".into()),
        ),
        case(
            "fragment cycle through another",
            post_query(
                "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }"
                    .into(),
            ),
        ),
        case(
            "100,000 aliases",
            post_query(format!(
                "{{ {} }}",
                repeat(100_000, |i| format!("a{i}: __typename"))
            )),
        ),
        case(
            "100,000 duplicated fields",
            post_query(format!("{{ {} }}", "__typename ".repeat(100_000))),
        ),
        case(
            "10,000 directives on a field",
            post_query(format!(
                "{{ __typename {} }}",
                "@skip(if: false) ".repeat(10_000)
            )),
        ),
        case(
            "10 MB string literal",
            post_query(format!("{{ __type(name: \"{ten_mb}\") {{ name }} }}")),
        ),
        case(
            "10 MB comment",
            post_query(format!("#{ten_mb}\n{{ __typename }}")),
        ),
        case(
            "10 MB of variables",
            post_json(
                json!({ "query": "query($v: String) { __typename }", "variables": { "v": ten_mb } })
                    .to_string(),
            ),
        ),
        case(
            "10,000 operations in one document",
            post_json(
                json!({
                    "query": repeat(10_000, |i| format!("query Q{i} {{ __typename }}")),
                    "operationName": "Q7",
                })
                .to_string(),
            ),
        ),
        case(
            "a batch of 1,000 requests",
            post_json(format!(
                "[{}]",
                vec![r#"{"query":"{ __typename }"}"#; 1_000].join(",")
            )),
        ),
        case("truncated JSON", post_json(r#"{"query":"{ __typen"#)),
        case("empty body", post_json("")),
        case("JSON number", post_json("42")),
        case("JSON string", post_json(r#""{ __typename }""#)),
        case("JSON null", post_json("null")),
        case("JSON array", post_json(r#"[{"query":"{ __typename }"}]"#)),
        case("JSON empty array", post_json("[]")),
        case(
            "invalid UTF-8",
            post_json(b"{\"query\":\"{ __typename \xff\xfe }\"}".to_vec()),
        ),
        case(
            "UTF-8 BOM before the JSON",
            post_json(b"\xef\xbb\xbf{\"query\":\"{ __typename }\"}".to_vec()),
        ),
        case(
            "NUL escaped in the query",
            post_json(r#"{"query":"{ __typename \u0000 }"}"#),
        ),
        case(
            "raw NUL byte in the query",
            post_json(b"{\"query\":\"{ __typename \0 }\"}".to_vec()),
        ),
        case(
            "content type text/plain",
            Request::Post {
                content_type: Some("text/plain"),
                body: br#"{"query":"{ __typename }"}"#.to_vec(),
            },
        ),
        case(
            "content type application/x-www-form-urlencoded",
            Request::Post {
                content_type: Some("application/x-www-form-urlencoded"),
                body: b"query=%7B+__typename+%7D".to_vec(),
            },
        ),
        case(
            "content type multipart/form-data",
            Request::Post {
                content_type: Some("multipart/form-data; boundary=XyZ"),
                body: b"--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n\
                        {\"query\":\"{ __typename }\"}\r\n--XyZ--\r\n"
                    .to_vec(),
            },
        ),
        case(
            "no content type",
            Request::Post {
                content_type: None,
                body: br#"{"query":"{ __typename }"}"#.to_vec(),
            },
        ),
        case(
            "__type with an ofType chain 200 deep",
            post_query(format!(
                "{{ __type(name: \"Query\") {{ {}name{} }} }}",
                "ofType { ".repeat(200),
                " }".repeat(200)
            )),
        ),
        case(
            "GET carrying a mutation",
            Request::Get(vec![("query", "mutation { regency { code } }".into())]),
        ),
        case(
            "GET carrying a named mutation among queries",
            Request::Get(vec![
                ("query", "query A { __typename } mutation B { x }".into()),
                ("operationName", "B".into()),
            ]),
        ),
        case("query a number", post_json(r#"{"query":1}"#)),
        case(
            "query an object",
            post_json(r#"{"query":{"query":"{ __typename }"}}"#),
        ),
        case("query missing", post_json(r#"{"variables":{}}"#)),
        case(
            "variables a string",
            post_json(r#"{"query":"{ __typename }","variables":"{}"}"#),
        ),
        case(
            "variables an array",
            post_json(r#"{"query":"{ __typename }","variables":[1]}"#),
        ),
        case(
            "GET variables not JSON",
            Request::Get(vec![
                ("query", "{ __typename }".into()),
                ("variables", "{nope".into()),
            ]),
        ),
    ]
}

/// Sends `request` and returns status, content type and body.
async fn send(app: &TestApp, request: &Request) -> Result<(u16, String, Vec<u8>), reqwest::Error> {
    let url = format!("{}/graphql", app.url);
    let builder = match request {
        Request::Post { content_type, body } => {
            let b = app.client.post(url).body(body.clone());
            match content_type {
                Some(ct) => b.header(CONTENT_TYPE, *ct),
                None => b,
            }
        }
        Request::Get(params) => app.client.get(url).query(params),
    };
    let r = builder.header(ACCEPT, GRAPHQL_RESPONSE).send().await?;
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok((status, ct, r.bytes().await?.to_vec()))
}

/// A 4xx; when the answer is JSON, a request error: a code and no `data`.
fn check_refused(name: &str, status: u16, ct: &str, body: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    let shown: String = text.chars().take(300).collect();
    if !(400..500).contains(&status) {
        return Err(format!("{name}: answered {status}, not a 4xx: {shown}"));
    }
    if ct.contains("json") {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{name}: {status} {ct} is not JSON ({e}): {shown}"))?;
        if !v["errors"][0]["extensions"]["code"].is_string() {
            return Err(format!("{name}: {status} without an error code: {shown}"));
        }
        if v.get("data").is_some() {
            return Err(format!("{name}: {status} with data: {shown}"));
        }
    }
    Ok(())
}

/// A dashboard client: sends every dashboard operation in turn until `stop`, and checks
/// each answer is exactly the data of its snapshot. Returns how many it checked.
fn dashboard_client(
    app: &TestApp,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<usize, String>> {
    let (client, url) = (app.client.clone(), format!("{}/graphql", app.url));
    let operations = dashboard_operations();
    tokio::spawn(async move {
        let mut checked = 0;
        while !stop.load(Ordering::SeqCst) {
            for (name, query, data) in &operations {
                let r = client
                    .post(&url)
                    .header(ACCEPT, GRAPHQL_RESPONSE)
                    .json(&json!({ "query": query }))
                    .timeout(PER_CASE)
                    .send()
                    .await
                    .map_err(|e| format!("dashboard {name}: {e}"))?;
                let status = r.status().as_u16();
                let body: Value = r.json().await.map_err(|e| format!("{name}: {e}"))?;
                if status != 200 || body.get("errors").is_some() || body["data"] != *data {
                    let shown: String = body.to_string().chars().take(500).collect();
                    return Err(format!("dashboard {name} answered {status}: {shown}"));
                }
                checked += 1;
            }
        }
        Ok(checked)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hostile_corpus_is_refused_while_a_dashboard_keeps_its_answers() {
    let _one_at_a_time = MEMORY.lock().await;
    let (_dir, app) = deploy().await;
    let operations = dashboard_operations();
    assert!(operations.len() >= 10, "one dashboard query per domain");
    // Baseline: each dashboard operation answers its snapshot before any hostile request.
    for (name, query, data) in &operations {
        let r = app.query(query).await;
        assert!(r.get("errors").is_none(), "{name}: {r}");
        assert_eq!(r["data"], *data, "{name}");
    }
    let base = rss();

    let stop = Arc::new(AtomicBool::new(false));
    let dashboard = dashboard_client(&app, stop.clone());
    let mut failures = Vec::new();
    let mut timings = Vec::new();
    for Case { name, request } in corpus() {
        let started = Instant::now();
        let copies = (0..COPIES).map(|_| send(&app, &request));
        let answers = tokio::time::timeout(PER_CASE, futures::future::join_all(copies)).await;
        let took = started.elapsed();
        let Ok(answers) = answers else {
            failures.push(format!("{name}: no answer within {PER_CASE:?}"));
            continue;
        };
        let mut statuses = Vec::new();
        for answer in answers {
            match answer {
                Err(e) => failures.push(format!("{name}: no answer: {e:?}")),
                Ok((status, ct, body)) => {
                    statuses.push(status);
                    if let Err(e) = check_refused(name, status, &ct, &body) {
                        failures.push(e);
                    }
                }
            }
        }
        statuses.dedup();
        timings.push(format!("{statuses:?} {took:>10.1?}  {name}"));
    }
    stop.store(true, Ordering::SeqCst);
    let checked = dashboard.await.expect("dashboard client");
    eprintln!(
        "hostile corpus, status and time to each refusal:\n{}",
        timings.join("\n")
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let checked = checked.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("dashboard answers checked meanwhile: {checked}");
    assert!(checked > 0, "the dashboard client got answers meanwhile");

    let health = app.client.get(format!("{}/healthz", app.url)).send();
    let health = tokio::time::timeout(PER_CASE, health).await;
    assert!(
        matches!(&health, Ok(Ok(r)) if r.status() == 200),
        "/healthz answers: {health:?}"
    );
    let (_, query, data) = &operations[0];
    let r = app.query(query).await;
    assert_eq!(r["data"], *data, "the server task still answers: {r}");
    let grown = rss().saturating_sub(base);
    eprintln!("hostile corpus: RSS grew by {} MiB", grown >> 20);
    assert!(grown < RSS_GROWTH, "RSS grew by {} MiB", grown >> 20);
}

/// How many distinct queries, and the size of each: together ten times the response
/// cache and far more than any cache of plans should hold.
const BIG_QUERIES: usize = 10_000;
const BIG_QUERY_BYTES: usize = 1_000_000;

/// A valid query of the deployment, within every default limit (`max_body_bytes` is 1 MiB),
/// made distinct and about 1 MB long by a comment.
fn big_query_body(i: usize, padding: &str) -> Vec<u8> {
    format!(r##"{{"query":"# {i:08} {padding}\n{{ __typename regency {{ code name }} }}"}}"##)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_distinct_one_megabyte_queries_keep_memory_bounded() {
    let _one_at_a_time = MEMORY.lock().await;
    let (_dir, app) = deploy().await;
    let padding = "x".repeat(BIG_QUERY_BYTES - 100);
    assert!(big_query_body(BIG_QUERIES, &padding).len() < MB);
    let expected = json!({ "__typename": "Query", "regency": { "code": "35.03", "name": "Kabupaten Trenggalek" } });
    let warm = app
        .client
        .post(format!("{}/graphql", app.url))
        .header(CONTENT_TYPE, JSON)
        .body(big_query_body(0, &padding))
        .send()
        .await
        .expect("send");
    let warm: Value = warm.json().await.expect("json");
    assert_eq!(warm["data"], expected, "{warm}");
    let base = rss();

    let started = Instant::now();
    let url = format!("{}/graphql", app.url);
    let answers = futures::stream::iter(1..=BIG_QUERIES)
        .map(|i| {
            let request = app
                .client
                .post(&url)
                .header(CONTENT_TYPE, JSON)
                .header(ACCEPT, GRAPHQL_RESPONSE)
                .body(big_query_body(i, &padding));
            async move {
                let r = request.send().await.expect("every query is answered");
                let status = r.status().as_u16();
                (i, status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        })
        .buffer_unordered(8);
    let mut peak = base;
    let mut answers = std::pin::pin!(answers);
    while let Some((i, status, body)) = answers.next().await {
        assert_eq!(status, 200, "query {i}: {body}");
        assert!(body.get("errors").is_none(), "query {i}: {body}");
        assert_eq!(body["data"], expected, "query {i}");
        if i % 500 == 0 {
            peak = peak.max(rss());
        }
    }
    let took = started.elapsed();
    let after = rss();
    peak = peak.max(after);
    eprintln!(
        "{BIG_QUERIES} distinct 1 MB queries in {took:?}: RSS {} MiB before, {} MiB peak, {} MiB after",
        base >> 20,
        peak >> 20,
        after >> 20
    );
    assert!(
        peak.saturating_sub(base) < RSS_GROWTH,
        "RSS grew by {} MiB (peak {} MiB, after {} MiB)",
        peak.saturating_sub(base) >> 20,
        peak >> 20,
        after >> 20
    );
}
