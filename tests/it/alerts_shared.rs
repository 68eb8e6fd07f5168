//! Several instances on one PostgreSQL state store: exactly one evaluates the rules (the
//! store's advisory lock), evaluation moves when that instance dies, every instance serves
//! the same alerts, and each webhook is delivered once with a valid signature, also to a
//! receiver that was down when the alerts were raised.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::alerts::{SECRET as JWT_SECRET, staff_token};
use crate::harness::live::{sse, ws_connect};
use crate::harness::{Instance, ScratchDatabase, TestApp, Upstream, repo_root};

const SECRET: &str = "hook-secret-for-the-test";

fn deployment() -> std::path::PathBuf {
    repo_root().join("tests/alerts/shared")
}

async fn alerts(instance: &Instance) -> Value {
    let body = instance
        .post(None, "{ alerts { id key status message } }", Value::Null)
        .await;
    body["data"]["alerts"].clone()
}

/// What the webhook receiver got: (delivery id, signature, body).
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

async fn receive(port: u16, got: Received) {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let got = got.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                got.lock()
                    .unwrap()
                    .push((h("x-simpul-delivery"), h("x-simpul-signature"), body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind hook");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

/// The id of the open alert of `key` on `instance`.
async fn on_a_alert_with_key(instance: &Instance, key: &str) -> String {
    let alerts = alerts(instance).await;
    alerts
        .as_array()
        .and_then(|l| l.iter().find(|a| a["key"] == key && a["status"] == "OPEN"))
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("no open alert {key}: {alerts}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_going_down_and_back_is_pushed_to_subscribers() {
    let upstream = Upstream::start().await;
    let url = upstream.url.clone();
    let app = TestApp::spawn(
        &deployment(),
        &[
            ("BLOG_URL", &url),
            ("HOOK_URL", "http://127.0.0.1:9/hook"),
            ("HOOK_SECRET", SECRET),
        ],
    )
    .await;
    let mut ws = ws_connect(&app.url, None).await;
    ws.ready().await;
    ws.subscribe(
        "s",
        "subscription { sourceStatusChanged { name status previous lastError } }",
        Value::Null,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    upstream.kill();
    let down = ws.next().await;
    assert_eq!(
        down["payload"]["data"]["sourceStatusChanged"]["name"], "blog",
        "{down}"
    );
    assert_eq!(
        down["payload"]["data"]["sourceStatusChanged"]["previous"], "UP",
        "{down}"
    );
    assert_ne!(
        down["payload"]["data"]["sourceStatusChanged"]["status"], "UP",
        "{down}"
    );
    // Why, by its code: a subscriber need not read `sources` again to say it.
    assert_eq!(
        down["payload"]["data"]["sourceStatusChanged"]["lastError"], "SOURCE_UNAVAILABLE",
        "{down}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_evaluate_once_hand_over_and_deliver_each_webhook_once() {
    // A database of its own, dropped at the end.
    let db = ScratchDatabase::create(&format!("simpul_alerts_{}", std::process::id())).await;
    let state = db.url.clone();

    let upstream = Upstream::start().await;
    // The receiver's port, closed until later: the first deliveries are refused.
    let hook_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = vec![
        ("BLOG_URL".to_string(), upstream.url.clone()),
        ("SIMPUL_STATE_URL".to_string(), state.clone()),
        (
            "HOOK_URL".to_string(),
            format!("http://127.0.0.1:{hook_port}/hook"),
        ),
        ("HOOK_SECRET".to_string(), SECRET.to_string()),
        ("SIMPUL_JWT_SECRET".to_string(), JWT_SECRET.to_string()),
    ];

    let a = Instance::start(&deployment(), env.clone());
    for _ in 0..100 {
        if upstream.calls() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = Instance::start(&deployment(), env.clone());

    // One evaluator: about one call a second, not two.
    upstream.reset();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let calls = upstream.calls();
    assert!(
        (2..=6).contains(&calls),
        "one evaluation per interval: {calls} calls in 4 s"
    );

    // Both serve the same three alerts.
    let (on_a, on_b) = (alerts(&a).await, alerts(&b).await);
    assert_eq!(on_a.as_array().map(Vec::len), Some(3), "{on_a}");
    assert_eq!(on_a, on_b);

    // The receiver comes up: each alert arrives once, signed.
    let got: Received = Arc::default();
    receive(hook_port, got.clone()).await;
    for _ in 0..300 {
        if got.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "each alert once: {got:?}");
    let mut ids: Vec<&str> = got.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    for (_, signature, body) in &got {
        assert_eq!(
            signature,
            &format!("sha256={}", simpul::state::sign(SECRET, body.as_bytes())),
            "signature of {body}"
        );
        let event: Value = serde_json::from_str(body).expect("json body");
        assert_eq!(event["event"], "alert.raised");
        assert!(
            event["alert"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Post ")
        );
    }

    // Subscribers on both instances receive an alert raised by the one evaluating: post 1's
    // alert resolved by hand is raised again at the next evaluation.
    let staff = staff_token("petugas");
    let query = "subscription { alertRaised { key status } }";
    let mut on_a = ws_connect(&a.url, Some(&staff)).await;
    on_a.ready().await;
    on_a.subscribe("raised", query, Value::Null).await;
    let mut on_b = sse(&b.url, Some(&staff), query, Value::Null).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = on_a_alert_with_key(&a, "1").await;
    let resolved: Value = reqwest::Client::new()
        .post(format!("{}/graphql", b.url))
        .bearer_auth(&staff)
        .json(&json!({ "query": format!("mutation {{ resolveAlert(id: \"{first}\") {{ status }} }}") }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        resolved["data"]["resolveAlert"]["status"], "RESOLVED",
        "{resolved}"
    );
    let over_ws = on_a.next().await;
    assert_eq!(
        over_ws["payload"]["data"]["alertRaised"],
        json!({ "key": "1", "status": "OPEN" }),
        "{over_ws}"
    );
    let over_sse = on_b.event().await.expect("an event on the other instance");
    assert_eq!(over_sse.json()["data"], over_ws["payload"]["data"]);

    // The evaluator dies: the other instance takes over.
    drop(a);
    upstream.reset();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        upstream.calls() >= 2,
        "evaluation moved: {} calls",
        upstream.calls()
    );
    let after = alerts(&b).await;
    let open = after
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "OPEN")
        .count();
    assert_eq!(
        (after.as_array().unwrap().len(), open),
        (4, 3),
        "post 1's resolved alert and the three open: {after}"
    );

    drop(b);
}
