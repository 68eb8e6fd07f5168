//! Alerts pushed to subscribers over graphql-ws and SSE, through the subscriber's view: a
//! PUBLIC subscriber never receives an INTERNAL alert.

use std::time::Duration;

use serde_json::{Value, json};

use crate::alerts::{SECRET, post, staff_token};
use crate::harness::live::{sse, ws_connect};
use crate::harness::{TestApp, copy_deployment, repo_root};

/// Reads `next` messages until `done` holds for one's data; panics after 60 of them.
async fn ws_until(ws: &mut crate::harness::live::WsClient, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..60 {
        let m = ws.next().await;
        assert_eq!(m["type"], "next", "{m}");
        if done(&m["payload"]["data"]) {
            return m["payload"]["data"].clone();
        }
    }
    panic!("no matching event");
}

/// Nothing is queued for `ws`: a ping's pong is its next message.
async fn nothing_more(ws: &mut crate::harness::live::WsClient) {
    ws.send(json!({ "type": "ping" })).await;
    let m = ws.next().await;
    assert_eq!(m["type"], "pong", "the subscriber got {m}");
}

#[tokio::test]
async fn open_alerts_and_changes_reach_staff_subscribers_and_never_the_public() {
    let app = TestApp::spawn(&repo_root(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    let staff = staff_token("petugas");
    let query = "subscription { openAlerts { id rule tier regionName } }";
    let mut internal = ws_connect(&app.url, Some(&staff)).await;
    internal.ready().await;
    internal.subscribe("open", query, Value::Null).await;
    let mut public = ws_connect(&app.url, None).await;
    public.ready().await;
    public.subscribe("open", query, Value::Null).await;
    let mut stream = sse(&app.url, Some(&staff), query, Value::Null).await;
    assert_eq!(stream.status, 200);

    // The list at once, then again as the rules raise alerts.
    let seen = ws_until(&mut internal, |d| {
        d["openAlerts"].as_array().is_some_and(|a| a.len() >= 5)
    })
    .await;
    assert!(
        seen["openAlerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["tier"] == "INTERNAL")
    );
    let mut over_sse = Value::Null;
    while let Some(e) = stream.event().await {
        assert_eq!(e.event, "next");
        if e.json()["data"]["openAlerts"]
            .as_array()
            .is_some_and(|a| a.len() >= 5)
        {
            over_sse = e.json();
            break;
        }
    }
    assert!(
        over_sse["data"]["openAlerts"].is_array(),
        "the SSE subscriber got the open alerts"
    );
    let first = public.next().await;
    assert_eq!(
        first["payload"]["data"],
        json!({ "openAlerts": [] }),
        "{first}"
    );
    nothing_more(&mut public).await;

    // A change: staff subscribers of alertChanged hear it, the public does not.
    internal
        .subscribe(
            "changed",
            "subscription { alertChanged { id status acknowledgedBy } }",
            Value::Null,
        )
        .await;
    public
        .subscribe(
            "changed",
            "subscription { alertChanged { id status } }",
            Value::Null,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = seen["openAlerts"][0]["id"].as_str().unwrap().to_string();
    let ack = post(
        &app,
        Some(&staff),
        &format!("mutation {{ acknowledgeAlert(id: \"{id}\") {{ status }} }}"),
    )
    .await;
    assert_eq!(
        ack["data"]["acknowledgeAlert"]["status"], "ACKNOWLEDGED",
        "{ack}"
    );
    let changed = ws_until(&mut internal, |d| d.get("alertChanged").is_some()).await;
    assert_eq!(
        changed["alertChanged"],
        json!({ "id": id, "status": "ACKNOWLEDGED", "acknowledgedBy": "petugas" })
    );
    nothing_more(&mut public).await;
}

#[tokio::test]
async fn a_raised_alert_is_pushed_over_websocket_and_sse() {
    let dir = copy_deployment(&repo_root());
    let rule = dir.path().join("rules/poverty-rising.toml");
    let text = std::fs::read_to_string(&rule).unwrap();
    std::fs::write(
        &rule,
        text.replace("interval = \"1h\"", "interval = \"1s\""),
    )
    .unwrap();
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    let staff = staff_token("petugas");
    // Dongko's poverty alert, raised from the demo data.
    let mut dongko = Value::Null;
    for _ in 0..100 {
        let a = post(
            &app,
            Some(&staff),
            "{ alerts(region: \"35.03.04\", status: OPEN) { id rule } }",
        )
        .await;
        if let Some(found) = a["data"]["alerts"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["rule"] == "poverty-rising"))
        {
            dongko = found.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        dongko["id"].is_string(),
        "poverty rises in Dongko in the demo data"
    );

    let query = "subscription { alertRaised { id rule regionName status message } }";
    let mut internal = ws_connect(&app.url, Some(&staff)).await;
    internal.ready().await;
    internal.subscribe("raised", query, Value::Null).await;
    let mut public = ws_connect(&app.url, None).await;
    public.ready().await;
    public.subscribe("raised", query, Value::Null).await;
    let mut stream = sse(&app.url, Some(&staff), query, Value::Null).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Resolved by hand while poverty still rises: the next evaluation raises a new alert.
    let done = post(
        &app,
        Some(&staff),
        &format!(
            "mutation {{ resolveAlert(id: \"{}\") {{ status }} }}",
            dongko["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(done["data"]["resolveAlert"]["status"], "RESOLVED", "{done}");
    let raised = ws_until(&mut internal, |d| {
        d["alertRaised"]["rule"] == "poverty-rising"
    })
    .await;
    assert_eq!(raised["alertRaised"]["regionName"], "Dongko");
    assert_eq!(raised["alertRaised"]["status"], "OPEN");
    assert_ne!(raised["alertRaised"]["id"], dongko["id"]);
    // Other rules' first evaluations may still raise their alerts: skip those.
    let mut over_sse = Value::Null;
    for _ in 0..50 {
        let e = stream.event().await.expect("an SSE event");
        assert_eq!(e.event, "next");
        over_sse = e.json()["data"].clone();
        if over_sse["alertRaised"]["rule"] == "poverty-rising" {
            break;
        }
    }
    assert_eq!(over_sse, raised, "the same event over SSE");
    nothing_more(&mut public).await;
}
