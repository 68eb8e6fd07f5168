//! Hot reload of a running gateway (`server::reload`): edits of the deployment's files are
//! picked up without dropping a request, a broken edit keeps the old model serving and is
//! reported, `SIGHUP` reloads the binary, and what did not change is kept.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{
    TestApp, capture_logs, copy_deployment, logged, repo_root, without_rate_limits,
};

const REGIONS: &str = "{ regions { code name } }";
const LARGEST: &str = "{ largest { code name population } }";

fn fixture(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/reload").join(name)
}

/// Writes the edit `name` over `target` in the deployment `dir` as editors and deploy
/// tools do: a new file renamed over the old one (the temporary name is not watched).
fn edit(dir: &Path, target: &str, name: &str) {
    let text = std::fs::read_to_string(fixture("edits").join(name)).expect("edit");
    let tmp = dir.join(format!("{target}.tmp"));
    std::fs::write(&tmp, text).expect("write the edit");
    std::fs::rename(&tmp, dir.join(target)).expect("rename the edit");
}

fn regions_answer() -> Value {
    json!({ "regions": [
        { "code": "35.03.01", "name": "Panggul" },
        { "code": "35.03.07", "name": "Kampak" },
        { "code": "35.03.11", "name": "Trenggalek" },
    ] })
}

fn largest_answer() -> Value {
    json!({ "largest": { "code": "35.03.01", "name": "Panggul", "population": 76000 } })
}

/// Waits up to 15 s for `done`, checking every 25 ms.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: not within 15 s");
}

async fn readyz(url: &str) -> Value {
    reqwest::get(format!("{url}/readyz"))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("readyz json")
}

/// One client's request and what was wrong with its answer, if anything.
async fn ask(client: &reqwest::Client, url: &str, n: usize) -> Result<(), String> {
    // Both a cacheable list and a query with an argument, so plans are made on both sides
    // of the swap.
    let (query, variables, expected) = match n % 2 {
        0 => (REGIONS.to_string(), Value::Null, regions_answer()),
        _ => (
            "query($c: ID!) { region(code: $c) { code name } }".to_string(),
            json!({ "c": "35.03.07" }),
            json!({ "region": { "code": "35.03.07", "name": "Kampak" } }),
        ),
    };
    let response = client
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .map_err(|e| format!("request {n}: {e}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("request {n}: body: {e}"))?;
    if status != 200 || body.get("errors").is_some() || body["data"] != expected {
        return Err(format!("request {n}: {status} {body}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_field_added_while_50_clients_query_drops_none_of_their_requests() {
    let dir = copy_deployment(&fixture("base"));
    // One loopback client making thousands of requests: no per-client budget.
    without_rate_limits(dir.path());
    let (app, gateway) = TestApp::spawn_reloading(dir.path(), &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for c in 0..50 {
        let (url, stop, answered, failures) = (
            app.url.clone(),
            stop.clone(),
            answered.clone(),
            failures.clone(),
        );
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = c;
            let mut mine = 0;
            while !stop.load(Ordering::Relaxed) {
                match ask(&client, &url, n).await {
                    Ok(()) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        mine += 1;
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
                n += 1;
            }
            mine
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = answered.load(Ordering::Relaxed);
    edit(dir.path(), "schema.graphql", "added.graphql");
    eventually("the added field answers", async || {
        app.query(LARGEST).await.get("data") == Some(&largest_answer())
    })
    .await;
    // The clients go on querying the new model for a while.
    let swapped = answered.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut per_client = Vec::new();
    for c in clients {
        per_client.push(c.await.expect("client"));
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} requests failed across the reload, first: {:?}",
        failures.len(),
        failures.first()
    );
    let after = answered.load(Ordering::Relaxed);
    assert!(
        before > 0 && swapped > before && after > swapped,
        "{before} {swapped} {after}"
    );
    assert!(
        per_client.iter().all(|&n| n > 0),
        "every client was answered"
    );
    // An editor may save in steps the debounce does not join: one reload or more, none
    // failed.
    let generation = gateway.current().generation;
    assert!(generation >= 2);
    let counts = gateway.reloads();
    assert_eq!((counts.ok, counts.failed), (generation - 1, 0));
    let ready = readyz(&app.url).await;
    assert_eq!(ready["generation"], generation);
    assert_eq!(ready["reloads"]["last"]["outcome"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_edit_keeps_the_old_schema_serving_and_is_reported() {
    capture_logs();
    let dir = copy_deployment(&fixture("base"));
    let (app, gateway) = TestApp::spawn_reloading(dir.path(), &[]).await;

    edit(dir.path(), "schema.graphql", "broken.graphql");
    eventually("the broken edit is refused", async || {
        gateway.reloads().failed >= 1
    })
    .await;
    assert_eq!(app.query(REGIONS).await["data"], regions_answer());
    let unknown = app.query(LARGEST).await;
    assert!(
        unknown["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("largest")),
        "{unknown}"
    );
    let ready = readyz(&app.url).await;
    assert_eq!(ready["generation"], 1, "{ready}");
    assert_eq!(ready["reloads"]["ok"], 0);
    assert_eq!(ready["reloads"]["last"]["outcome"], "failed");
    let problems = ready["reloads"]["last"]["problems"].to_string();
    assert!(problems.contains("schema.graphql:"), "{problems}");
    assert!(!logged(&["reload refused", "still serving generation 1"]).is_empty());
    assert!(!logged(&["reload: problem in the deployment", "schema.graphql:"]).is_empty());

    // A binding naming a connector that does not exist: refused as well.
    edit(dir.path(), "schema.graphql", "unknown_connector.graphql");
    eventually("the unknown connector is refused", async || {
        readyz(&app.url).await["reloads"]["last"]["problems"]
            .to_string()
            .contains("warehouse")
    })
    .await;
    assert_eq!(gateway.current().generation, 1);
    assert_eq!(app.query(REGIONS).await["data"], regions_answer());

    // The next good edit is picked up.
    edit(dir.path(), "schema.graphql", "added.graphql");
    eventually("the good edit answers", async || {
        app.query(LARGEST).await.get("data") == Some(&largest_answer())
    })
    .await;
    let counts = gateway.reloads();
    assert!(counts.ok >= 1 && counts.failed >= 2, "{counts:?}");
    assert_eq!(gateway.current().generation, 1 + counts.ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_connector_keeps_its_source_and_a_changed_one_is_replaced() {
    let dir = copy_deployment(&fixture("base"));
    let (app, gateway) = TestApp::spawn_reloading(dir.path(), &[]).await;
    assert_eq!(app.query(REGIONS).await["data"], regions_answer());
    let first = gateway.current().engine.sources[0].clone();

    edit(dir.path(), "schema.graphql", "added.graphql");
    eventually("the schema edit", async || {
        app.query(LARGEST).await.get("data") == Some(&largest_answer())
    })
    .await;
    let kept = gateway.current().engine.sources[0].clone();
    assert!(
        Arc::ptr_eq(&first, &kept),
        "the db source (its pool, health) is kept"
    );
    let ready = readyz(&app.url).await;
    assert!(
        ready["reloads"]["last"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("0 connectors changed")),
        "{ready}"
    );

    edit(dir.path(), "connectors/db.toml", "db_slower.toml");
    eventually("the connector edit", async || {
        gateway.current().engine.sources[0].config.timeout == Duration::from_secs(7)
    })
    .await;
    let replaced = gateway.current().engine.sources[0].clone();
    assert!(!Arc::ptr_eq(&first, &replaced));
    let ready = readyz(&app.url).await;
    assert!(
        ready["reloads"]["last"]["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("1 connector changed")),
        "{ready}"
    );
    assert_eq!(app.query(LARGEST).await["data"], largest_answer());
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_binary() {
    let dir = copy_deployment(&fixture("base"));
    // Watching off: only the signal can reload.
    std::fs::write(dir.path().join("simpul.toml"), "[reload]\nwatch = false\n").expect("write");
    let log = dir.path().join("simpul.log");
    let (server, url) = crate::cli::start_logging(dir.path(), &[], &log).await;
    edit(dir.path(), "schema.graphql", "added.graphql");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let unknown = crate::cli::post(&url, LARGEST).await;
    assert!(unknown.get("errors").is_some(), "not watching: {unknown}");
    assert_eq!(readyz(&url).await["generation"], 1);

    let sent = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(sent.success());
    eventually("SIGHUP reloads", async || {
        crate::cli::post(&url, LARGEST).await.get("data") == Some(&largest_answer())
    })
    .await;
    let ready = readyz(&url).await;
    assert_eq!(ready["generation"], 2);
    assert_eq!(ready["reloads"]["ok"], 1);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("trigger=\"SIGHUP\"") || text.contains("SIGHUP"),
        "{text}"
    );
    assert!(text.contains("reloaded: 0 connectors changed"), "{text}");
    assert_eq!(
        crate::cli::post(&url, REGIONS).await["data"],
        regions_answer()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_websocket_stays_on_its_model_and_a_new_one_sees_the_reload() {
    use crate::harness::live::ws_connect;
    let dir = copy_deployment(&fixture("base"));
    let (app, gateway) = TestApp::spawn_reloading(dir.path(), &[]).await;
    let mut open = ws_connect(&app.url, None).await;
    open.ready().await;
    open.subscribe("1", REGIONS, Value::Null).await;
    assert_eq!(
        open.until_done("1").await[0]["payload"]["data"],
        regions_answer()
    );

    edit(dir.path(), "schema.graphql", "added.graphql");
    eventually("the reload", async || gateway.current().generation >= 2).await;

    // The socket opened before the reload is still served, by the model it opened on.
    open.subscribe("2", REGIONS, Value::Null).await;
    assert_eq!(
        open.until_done("2").await[0]["payload"]["data"],
        regions_answer()
    );
    open.subscribe("3", LARGEST, Value::Null).await;
    let old = open.until_done("3").await;
    assert!(old[0]["payload"].to_string().contains("largest"), "{old:?}");
    assert!(
        old[0]["payload"].get("data").is_none_or(Value::is_null),
        "{old:?}"
    );
    // A socket opened after it reads the new model.
    let mut new = ws_connect(&app.url, None).await;
    new.ready().await;
    new.subscribe("1", LARGEST, Value::Null).await;
    assert_eq!(
        new.until_done("1").await[0]["payload"]["data"],
        largest_answer()
    );
}
