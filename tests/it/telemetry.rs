//! Traces as a collector receives them: the gateway, run as its binary with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP/HTTP receiver on loopback, exports
//! the spans of a query with a batched connector call, in the trace of the client's
//! `traceparent`; the HTTP upstream receives the trace in its own `traceparent`; the JSON
//! log carries the trace id. Without an endpoint, no trace is sent on to upstreams and the
//! log still carries the client's trace id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use crate::cli::start_logging;
use crate::harness::{Upstream, copy_deployment, repo_root};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP receiver: every span posted to `/v1/traces`, decoded as protobuf.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    posts: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let spans: Arc<Mutex<Vec<Span>>> = Default::default();
        let posts: Arc<Mutex<Vec<String>>> = Default::default();
        let (into, seen) = (spans.clone(), posts.clone());
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let (into, seen) = (into.clone(), seen.clone());
                async move {
                    let kind = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.lock().expect("posts").push(kind);
                    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    let mut into = into.lock().expect("spans");
                    for r in request.resource_spans {
                        let service = r
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|a| a.key == "service.name")
                            .and_then(|a| a.value.as_ref()?.value.clone());
                        assert_eq!(
                            service,
                            Some(Any::StringValue("simpul-test".into())),
                            "the resource names the service"
                        );
                        for s in r.scope_spans {
                            into.extend(s.spans);
                        }
                    }
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
        let url = crate::harness::serve_loopback(app).await;
        Receiver { url, spans, posts }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("spans").clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<Any> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.clone())
}

fn text(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        Any::StringValue(s) => Some(s),
        other => Some(format!("{other:?}")),
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        Any::IntValue(i) => Some(i),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batched_query_is_traced_from_the_clients_traceparent_to_the_upstream() {
    let receiver = Receiver::start().await;
    let upstream = Upstream::start().await;
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    std::fs::write(dir.path().join("simpul.toml"), "[log]\nformat = \"json\"\n")
        .expect("simpul.toml");
    let log = dir.path().join("gateway.log");
    let (server, url) = start_logging(
        dir.path(),
        &[
            ("UPSTREAM_URL", &upstream.url),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_SERVICE_NAME", "simpul-test"),
            // Spans are sent 100 ms after they end, not the SDK's default 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "info,simpul::access=debug"),
        ],
        &log,
    )
    .await;
    let answer: Value = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({ "query": "query PostsWithUsers { posts { id user { name } } }" }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["data"]["posts"].as_array().map(Vec::len), Some(100));
    assert_eq!(answer["data"]["posts"][99]["user"]["name"], "User 10");
    assert_eq!(upstream.calls(), 2, "posts, then one batch of users");

    // Wait for the request's span and both connector spans.
    let mut spans = Vec::new();
    for _ in 0..100 {
        // The client's trace only (the harness's /readyz polls are traces of their own).
        spans = receiver
            .spans()
            .into_iter()
            .filter(|s| hex(&s.trace_id) == TRACE)
            .collect();
        let named = |n: &str| spans.iter().any(|s| s.name == n);
        if named("POST /graphql")
            && spans.iter().filter(|s| s.name.starts_with("blog ")).count() == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {names:?}"))
    };
    assert!(
        receiver
            .posts
            .lock()
            .expect("posts")
            .iter()
            .all(|k| k == "application/x-protobuf"),
        "OTLP/HTTP with protobuf"
    );
    let request = find("POST /graphql");
    assert_eq!(
        hex(&request.parent_span_id),
        CLIENT_SPAN,
        "child of the client's span"
    );
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(
        text(request, "graphql.operation.name").as_deref(),
        Some("PostsWithUsers")
    );
    assert_eq!(
        text(request, "graphql.operation.type").as_deref(),
        Some("query")
    );
    assert_eq!(text(request, "simpul.view").as_deref(), Some("PUBLIC"));
    assert_eq!(int(request, "http.response.status_code"), Some(200));
    let (parse, validate, plan, execute) = (
        find("graphql.parse"),
        find("graphql.validate"),
        find("graphql.plan"),
        find("graphql.execute"),
    );
    for phase in [parse, validate, plan, execute] {
        assert_eq!(
            phase.parent_span_id, request.span_id,
            "{} under the request",
            phase.name
        );
    }
    let posts = find("blog Query.posts");
    let users = find("blog Post.user");
    for call in [posts, users] {
        assert_eq!(
            call.parent_span_id, execute.span_id,
            "{} under execute",
            call.name
        );
        assert_eq!(call.kind, 3, "a client span");
        assert_eq!(text(call, "simpul.connector").as_deref(), Some("blog"));
        assert_eq!(text(call, "simpul.connector.kind").as_deref(), Some("http"));
        assert_eq!(text(call, "simpul.outcome").as_deref(), Some("ok"));
        assert_eq!(text(call, "simpul.cache").as_deref(), Some("MISS"));
    }
    assert_eq!(int(posts, "simpul.rows"), Some(100));
    assert_eq!(int(posts, "simpul.batch.size"), None, "not batched");
    assert_eq!(
        int(users, "simpul.batch.size"),
        Some(10),
        "10 distinct user ids"
    );
    assert_eq!(int(users, "simpul.rows"), Some(10));

    // The upstream got the trace: the same trace id, the call's span as its parent.
    let sent = upstream.traceparents.lock().expect("log").clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let ids: Vec<String> = [posts, users].iter().map(|s| hex(&s.span_id)).collect();
    for t in &sent {
        let parts: Vec<&str> = t.split('-').collect();
        assert_eq!(parts.len(), 4, "{t}");
        assert_eq!(parts[1], TRACE, "{t}");
        assert!(
            ids.iter().any(|id| id == parts[2]),
            "{t} names a call span of {ids:?}"
        );
        assert_eq!(parts[3], "01", "sampled");
    }

    // The JSON log carries the trace id beside the request id.
    let lines = std::fs::read_to_string(&log).expect("log");
    let access = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "request" && l["path"] == "/graphql")
        .unwrap_or_else(|| panic!("no access line in:\n{lines}"));
    assert_eq!(access["span"]["trace_id"], TRACE, "{access}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_no_trace_is_sent_on_and_the_log_keeps_the_clients_trace_id() {
    let upstream = Upstream::start().await;
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    std::fs::write(dir.path().join("simpul.toml"), "[log]\nformat = \"json\"\n")
        .expect("simpul.toml");
    let log = dir.path().join("gateway.log");
    let (server, url) = start_logging(
        dir.path(),
        &[
            ("UPSTREAM_URL", &upstream.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "info,simpul::access=debug"),
        ],
        &log,
    )
    .await;
    let answer: Value = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({ "query": "{ posts { id user { name } } }" }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["data"]["posts"][0]["user"]["name"], "User 1");
    assert!(
        upstream.traceparents.lock().expect("log").is_empty(),
        "no trace is propagated when none is exported"
    );
    let mut access = Value::Null;
    for _ in 0..50 {
        let lines = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = lines
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["message"] == "request" && l["path"] == "/graphql")
        {
            access = l;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(access["span"]["trace_id"], TRACE, "{access}");
    assert!(access["span"].get("otel.name").is_none(), "{access}");
    drop(server);
}
