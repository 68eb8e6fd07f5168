//! The streaming transports of `/graphql`: graphql-ws (`graphql-transport-ws`) and GraphQL
//! over SSE (distinct connections), with real clients: the answers they carry, the
//! protocol's close codes, views and tokens, and the bounds on what clients can hold.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use simpul::access::Tier;

use crate::harness::live::{WsClient, sse, sse_get, subscribe_message, ws_connect, ws_try};
use crate::harness::{TestApp, Upstream, copy_deployment, repo_root};

const SECRET: &str = "live-test-secret-that-is-long-enough-0123456789";
const REGENCY: &str = "{ regency { name } }";
const POSTS: &str = "{ posts { id title } }";

fn token(tier: Tier, ttl: Duration) -> String {
    simpul::auth::mint(SECRET, tier, None, Some("live"), ttl, None, None).expect("mint")
}

/// The repository's deployment with `limits` in `[limits]`, tokens verified without leeway.
async fn trenggalek(limits: &str) -> (tempfile::TempDir, TestApp) {
    let dir = copy_deployment(&repo_root());
    let toml = format!(
        "[auth]\njwt_secret = \"${{env.SIMPUL_JWT_SECRET:-}}\"\nleeway = \"0s\"\n\
         [limits]\n{limits}\n\
         [security.rate_limits]\npublic = \"off\"\ninternal = \"off\"\nrestricted = \"off\"\n"
    );
    std::fs::write(dir.path().join("simpul.toml"), toml).expect("simpul.toml");
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    (dir, app)
}

/// The blog example over `upstream` (slow when told to), with `simpul_toml`.
fn blog(simpul_toml: &str, upstream: &Upstream) -> (tempfile::TempDir, Vec<(String, String)>) {
    let dir = copy_deployment(&repo_root().join("examples/blog"));
    std::fs::write(dir.path().join("simpul.toml"), simpul_toml).expect("simpul.toml");
    (dir, vec![("BLOG_URL".into(), upstream.url.clone())])
}

async fn spawn_blog(simpul_toml: &str, upstream: &Upstream) -> (tempfile::TempDir, TestApp) {
    let (dir, env) = blog(simpul_toml, upstream);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
    let app = TestApp::spawn(dir.path(), &env).await;
    (dir, app)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_over_graphql_ws_answers_what_post_answers_then_completes() {
    let (_dir, app) = trenggalek("").await;
    let posted = app.query(REGENCY).await;
    assert!(posted["data"]["regency"]["name"].is_string(), "{posted}");
    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    ws.subscribe("q1", REGENCY, Value::Null).await;
    let messages = ws.until_done("q1").await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["type"], "next");
    assert_eq!(messages[0]["payload"]["data"], posted["data"]);
    assert!(messages[0]["payload"]["extensions"]["sources"].is_array());
    assert_eq!(messages[1], json!({ "type": "complete", "id": "q1" }));
    // The id is free again once complete; a request error is an `error`, no `complete`.
    ws.subscribe("q1", "{ regency { nope } }", Value::Null)
        .await;
    let messages = ws.until_done("q1").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["type"], "error");
    assert_eq!(
        messages[0]["payload"][0]["extensions"]["code"],
        "BAD_REQUEST"
    );
    assert!(
        messages[0]["payload"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope")),
        "{messages:?}"
    );
    // Variables are coerced as over HTTP.
    let query = "query($c: ID!) { district(code: $c) { name } }";
    ws.subscribe("v", query, json!({ "c": [] })).await;
    let m = ws.until_done("v").await;
    assert_eq!(m[0]["type"], "error", "{m:?}");
    let posted = app.query_vars(query, json!({ "c": "35.03.04" })).await;
    assert!(posted["data"]["district"]["name"].is_string(), "{posted}");
    ws.subscribe("w", query, json!({ "c": "35.03.04" })).await;
    let m = ws.until_done("w").await;
    assert_eq!(m[0]["payload"]["data"], posted["data"], "{m:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_ws_closes_with_the_protocol_codes() {
    let (_dir, app) = trenggalek("connection_init_wait = \"300ms\"\nmax_body_bytes = 65536").await;

    let mut ws = ws_connect(&app.url, None).await;
    ws.subscribe("1", REGENCY, Value::Null).await;
    assert_eq!(ws.expect_close(4401).await, "Unauthorized");

    let mut ws = ws_connect(&app.url, None).await;
    ws.send_text("not json").await;
    ws.expect_close(4400).await;

    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    ws.send(json!({ "type": "subscription_start", "id": "1" }))
        .await;
    assert!(ws.expect_close(4400).await.contains("subscription_start"));

    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    ws.init(None).await;
    assert_eq!(
        ws.expect_close(4429).await,
        "Too many initialisation requests"
    );

    let started = Instant::now();
    let mut ws = ws_connect(&app.url, None).await;
    assert_eq!(
        ws.expect_close(4408).await,
        "Connection initialisation timeout"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));

    // Ping before and after init, its payload echoed; a pong is taken silently.
    let mut ws = ws_connect(&app.url, None).await;
    ws.send(json!({ "type": "ping", "payload": { "at": 1 } }))
        .await;
    assert_eq!(
        ws.next().await,
        json!({ "type": "pong", "payload": { "at": 1 } })
    );
    ws.ready().await;
    ws.send(json!({ "type": "pong" })).await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.next().await, json!({ "type": "pong" }));
    // A `complete` for an id never seen is no error.
    ws.send(json!({ "type": "complete", "id": "unknown" }))
        .await;
    ws.subscribe("after", REGENCY, Value::Null).await;
    assert_eq!(ws.until_done("after").await.len(), 2);
    // A client's close is answered (RFC 6455's closing handshake).
    assert_eq!(
        ws.close().await,
        Some(1000),
        "the server answers a close frame"
    );

    // A message over max_body_bytes.
    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    let big = format!("{{ regency {{ name }} }} # {}", "x".repeat(70_000));
    ws.subscribe("big", &big, Value::Null).await;
    let reason = ws.expect_close(4400).await;
    assert!(reason.contains("65536"), "{reason}");

    // A websocket that does not speak graphql-transport-ws is refused.
    let refused = ws_try(&app.url, None, None).await.err().expect("refused");
    assert_eq!(refused.0, 400);
    assert!(refused.1.contains("graphql-transport-ws"), "{}", refused.1);
    let refused = ws_try(&app.url, None, Some("graphql-ws")).await.err();
    assert_eq!(
        refused.map(|r| r.0),
        Some(400),
        "the legacy subscriptions-transport-ws"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_reads_through_its_token_view() {
    let (_dir, app) = trenggalek("").await;
    let internal = token(Tier::Internal, Duration::from_secs(3600));
    let query = "{ regency { welfareDeciles { decile } } }";
    let over_http = app
        .client
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&internal)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("post")
        .json::<Value>()
        .await
        .expect("json");
    assert!(
        over_http["data"]["regency"]["welfareDeciles"].is_array(),
        "{over_http}"
    );

    // Anonymous: the PUBLIC view has no such field.
    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    ws.subscribe("1", query, Value::Null).await;
    let m = ws.until_done("1").await;
    assert_eq!(m[0]["type"], "error", "{m:?}");
    assert_eq!(m[0]["payload"][0]["extensions"]["code"], "BAD_REQUEST");

    // The token in each place a client may put it.
    let payloads = [
        json!({ "Authorization": format!("Bearer {internal}") }),
        json!({ "authorization": format!("Bearer {internal}") }),
        json!({ "token": internal }),
    ];
    for payload in payloads {
        let mut ws = ws_connect(&app.url, None).await;
        ws.init(Some(payload.clone())).await;
        ws.ack().await;
        ws.subscribe("1", query, Value::Null).await;
        let m = ws.until_done("1").await;
        assert_eq!(
            m[0]["payload"]["data"], over_http["data"],
            "{payload}: {m:?}"
        );
    }
    let mut ws = ws_connect(&app.url, Some(&internal)).await;
    ws.ready().await;
    ws.subscribe("1", query, Value::Null).await;
    assert_eq!(
        ws.until_done("1").await[0]["payload"]["data"],
        over_http["data"]
    );

    // A token that does not verify: 4403 in the payload, 401 in the upgrade's header.
    let mut ws = ws_connect(&app.url, None).await;
    ws.init(Some(json!({ "token": "not.a.jwt" }))).await;
    let reason = ws.expect_close(4403).await;
    assert!(reason.starts_with("Forbidden"), "{reason}");
    let refused = ws_try(&app.url, Some("not.a.jwt"), Some("graphql-transport-ws")).await;
    assert_eq!(refused.err().map(|r| r.0), Some(401));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_ends_when_its_token_expires() {
    let (_dir, app) = trenggalek("").await;
    let short = token(Tier::Internal, Duration::from_secs(2));
    let mut ws = ws_connect(&app.url, None).await;
    let started = Instant::now();
    ws.init(Some(json!({ "token": short }))).await;
    ws.ack().await;
    ws.subscribe("1", REGENCY, Value::Null).await;
    assert_eq!(ws.until_done("1").await.len(), 2);
    assert_eq!(ws.expect_close(4403).await, "token expired");
    let took = started.elapsed();
    assert!(
        took > Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed {took:?} after a token of 2 s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_in_use_closes_4409_and_operations_per_connection_are_bounded() {
    let upstream = Upstream::start().await;
    // Slow: each operation is still running when the next message is read.
    upstream.delay_ms.store(1_000, Ordering::SeqCst);
    let (_dir, app) = spawn_blog(
        "[limits]\nmax_subscriptions_per_connection = 2\n",
        &upstream,
    )
    .await;

    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    let first = subscribe_message("a", POSTS, Value::Null);
    ws.send_together(&[first.clone(), first]).await;
    assert_eq!(
        ws.expect_close(4409).await,
        "Subscriber for a already exists"
    );

    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    let messages: Vec<Value> = ["a", "b", "c"]
        .into_iter()
        .map(|id| subscribe_message(id, &format!("query Q{id} {POSTS}"), Value::Null))
        .collect();
    ws.send_together(&messages).await;
    let third = ws.until_done("c").await;
    assert_eq!(third[0]["type"], "error", "{third:?}");
    assert_eq!(third[0]["payload"][0]["extensions"]["code"], "BAD_REQUEST");
    assert!(
        third[0]["payload"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_subscriptions_per_connection"))
    );
    for id in ["a", "b"] {
        let m = ws.until_done(id).await;
        assert_eq!(m[0]["payload"]["data"]["posts"][0]["id"], 1, "{m:?}");
    }
    // Both over: room again.
    ws.subscribe("c", POSTS, Value::Null).await;
    assert_eq!(ws.until_done("c").await[0]["type"], "next");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_subscribe_spends_the_callers_rate_and_the_connection_stays() {
    let upstream = Upstream::start().await;
    // The upgrade spends one request, each subscribe one.
    let (_dir, app) = spawn_blog("[security.rate_limits]\npublic = \"3/m\"\n", &upstream).await;
    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    for id in ["1", "2"] {
        ws.subscribe(id, POSTS, Value::Null).await;
        assert_eq!(ws.until_done(id).await[0]["type"], "next");
    }
    ws.subscribe("3", POSTS, Value::Null).await;
    let m = ws.until_done("3").await;
    assert_eq!(
        m[0]["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{m:?}"
    );
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.next().await["type"], "pong");
    let refused = ws_try(&app.url, None, Some("graphql-transport-ws")).await;
    assert_eq!(refused.err().map(|r| r.0), Some(429));
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_answers_a_query_as_next_then_complete() {
    let (_dir, app) = trenggalek("").await;
    let posted = app.query(REGENCY).await;
    for answer in [
        sse(&app.url, None, REGENCY, Value::Null).await,
        sse_get(&app.url, None, REGENCY).await,
    ] {
        assert_eq!(answer.status, 200);
        assert!(answer.content_type.starts_with("text/event-stream"));
        let events = answer.events().await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].event, "next");
        assert_eq!(events[0].json()["data"], posted["data"]);
        assert_eq!(events[1].event, "complete");
        assert_eq!(events[1].data, "");
    }

    // Errors of a GraphQL request come in the stream, as the protocol asks: a browser's
    // EventSource would see a 400 as a failure without its reason.
    let events = sse(&app.url, None, "{ regency { nope } }", Value::Null)
        .await
        .events()
        .await;
    assert_eq!(
        events[0].json()["errors"][0]["extensions"]["code"],
        "BAD_REQUEST"
    );
    assert!(events[0].json().get("data").is_none());
    assert_eq!(events[1].event, "complete");

    // What is not a GraphQL request is answered before any stream, as JSON.
    let bad = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("accept", "text/event-stream")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status().as_u16(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    // A GET a page could forge is refused under CSRF prevention, as without SSE.
    let forged = app
        .client
        .get(format!("{}/graphql", app.url))
        .header("accept", "text/event-stream")
        .query(&[("query", REGENCY)])
        .send()
        .await
        .expect("get");
    assert_eq!(forged.status().as_u16(), 400);
    // A mutation over GET is refused in the stream too.
    let refused = sse_get(&app.url, None, "mutation { x }")
        .await
        .events()
        .await;
    assert!(refused[0].data.contains("POST"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_live_connections_websockets_and_sse_get_503() {
    let upstream = Upstream::start().await;
    let (_dir, app) = spawn_blog("[limits]\nmax_live_connections = 1\n", &upstream).await;
    let mut held = ws_connect(&app.url, None).await;
    held.ready().await;
    let refused = ws_try(&app.url, None, Some("graphql-transport-ws")).await;
    let (status, body) = refused.err().expect("a second websocket is refused");
    assert_eq!(status, 503);
    assert!(body.contains("live connections"), "{body}");
    let answer = sse(&app.url, None, POSTS, Value::Null).await;
    assert_eq!(answer.status, 503);
    assert_eq!(
        answer.json().await["errors"][0]["extensions"]["code"],
        "RATE_LIMITED"
    );
    // Plain HTTP is not a live connection.
    assert_eq!(app.query(POSTS).await["data"]["posts"][0]["id"], 1);
    drop(held);

    // An SSE answer holds its place while it streams. The websocket's place is given
    // back once the server has read its close, so the stream retries until admitted;
    // it holds the place from the moment its upstream call arrives.
    upstream.delay_ms.store(1_500, Ordering::SeqCst);
    let before = upstream.calls();
    let url = app.url.clone();
    let slow = tokio::spawn(async move {
        for _ in 0..50 {
            let answer = sse(&url, None, POSTS, Value::Null).await;
            if answer.status != 503 {
                return answer.events().await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the live place was never given back");
    });
    while upstream.calls() == before {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = ws_try(&app.url, None, Some("graphql-transport-ws")).await;
    assert_eq!(refused.err().map(|r| r.0), Some(503));
    let events = slow.await.expect("slow SSE");
    assert_eq!(events[0].json()["data"]["posts"][0]["id"], 1);
    upstream.delay_ms.store(0, Ordering::SeqCst);
    let mut ws = reconnect(&app.url).await;
    ws.ready().await;
}

/// A websocket once the place of a closed one is free again (its close takes a moment).
async fn reconnect(url: &str) -> WsClient {
    for _ in 0..50 {
        if let Ok(ws) = ws_try(url, None, Some("graphql-transport-ws")).await {
            return ws;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the live place was never given back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draining_server_closes_its_websockets_with_1001() {
    let upstream = Upstream::start().await;
    let (dir, env) = blog("[limits]\nshutdown_grace = \"5s\"\n", &upstream);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
    let (mut server, url) = crate::cli::start(dir.path(), &env).await;
    let mut ws = ws_connect(&url, None).await;
    ws.ready().await;
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(ws.expect_close(1001).await, "the server is shutting down");
    assert!(
        server.wait_exit(Duration::from_secs(5)),
        "the process exits"
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "a socket closed on drain does not hold the exit until the grace: {:?}",
        signalled.elapsed()
    );
}
