//! Scale-out on one machine (tests/scale): three instances on loopback ports sharing one
//! PostgreSQL state store and one Redis behave as one service. A cached answer one fetched
//! is served by the others; an invalidation on one reaches all; one instance evaluates the
//! rules; an alert reaches subscribers of every instance, once; each outbox row is
//! delivered once, whichever instance accepted it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::alerts::{SECRET as JWT_SECRET, staff_token};
use crate::harness::live::{sse, ws_connect};
use crate::harness::{Instance, ScratchDatabase, redis_url, repo_root};

const ADMIN_TOKEN: &str = "scale-admin-token";
const PRICES: &str = "{ prices { item rupiah } }";
const RAISED: &str = "subscription { alertRaised { id rule key status message } }";
const SUBMIT: &str = "mutation Submit($input: ComplaintInput!) { \
                      submitComplaint(input: $input) { id status } }";
const STATUS: &str = "query Status($receipt: ID!) { \
                      complaintStatus(receipt: $receipt) { id status trackingId } }";
/// The rule's interval (tests/scale/rules/flood.toml).
const INTERVAL: Duration = Duration::from_secs(1);

/// What the town's upstreams answer, and what they were asked.
#[derive(Default)]
struct Town {
    /// What `GET /prices` answers, and how often it was asked.
    prices: Value,
    price_calls: usize,
    /// The level `GET /gauges` answers for the Ngasinan, and the `x-instance` header of
    /// each call: each one an evaluation of the flood rule, by that instance.
    level: i64,
    evaluators: Vec<String>,
    /// `POST /complaints`: the posts of each Idempotency-Key, and the body and trackingId
    /// of its first.
    posts: HashMap<String, u32>,
    accepted: HashMap<String, (Value, String)>,
}

/// The price list, the river gauges and the complaint desk on one loopback port.
#[derive(Clone)]
struct Upstreams {
    url: String,
    town: Arc<Mutex<Town>>,
}

impl Upstreams {
    async fn start() -> Upstreams {
        let town = Arc::new(Mutex::new(Town {
            prices: prices(4_500),
            level: 120,
            ..Town::default()
        }));
        let shared = town.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let town = shared.clone();
            async move { answer(&town, req).await }
        });
        let url = crate::harness::serve_loopback(app).await;
        Upstreams { url, town }
    }

    fn town(&self) -> MutexGuard<'_, Town> {
        self.town.lock().unwrap()
    }
}

fn prices(rice: i64) -> Value {
    json!([{ "item": "beras", "rupiah": rice }, { "item": "cabai", "rupiah": 52_000 }])
}

/// Answers by the last path segment: the connectors' base URL carries the run's own prefix.
async fn answer(town: &Mutex<Town>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (instance, key) = (header("x-instance"), header("idempotency-key"));
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut town = town.lock().unwrap();
    match parts.uri.path().rsplit('/').next() {
        Some("prices") => {
            town.price_calls += 1;
            axum::Json(town.prices.clone()).into_response()
        }
        Some("gauges") => {
            town.evaluators.push(instance);
            let level = town.level;
            axum::Json(json!([
                { "river": "Ngasinan", "level": level },
                { "river": "Keser", "level": 80 },
            ]))
            .into_response()
        }
        Some("complaints") if !key.is_empty() => {
            *town.posts.entry(key.clone()).or_default() += 1;
            let tracking = format!("ADU-{:03}", town.accepted.len() + 1);
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (_, tracking) = town.accepted.entry(key).or_insert((body, tracking));
            let answer = json!({ "trackingId": tracking.clone() });
            (StatusCode::CREATED, axum::Json(answer)).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "{}").into_response(),
    }
}

/// The entry of `connector` in an answer's `extensions.sources`.
fn source<'a>(answer: &'a Value, connector: &str) -> &'a Value {
    answer["extensions"]["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == connector))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_postgresql_and_one_redis_are_one_service() {
    let db = ScratchDatabase::create(&format!("simpul_scale_{}", std::process::id())).await;
    let up = Upstreams::start().await;
    // A path of this run's own: a cache key carries the call, so no entry another run left
    // in Redis (the same port, later) is ever read here, and none of this run's there.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let town_url = format!("{}/run-{}-{nanos}", up.url, std::process::id());
    let env = |n: usize| {
        [
            ("TOWN_URL", town_url.clone()),
            ("INSTANCE", n.to_string()),
            ("SIMPUL_STATE_URL", db.url.clone()),
            ("REDIS_URL", redis_url()),
            ("SIMPUL_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("SIMPUL_JWT_SECRET", JWT_SECRET.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let instances =
        Instance::start_all(&repo_root().join("tests/scale"), (1..=3).map(env).collect());
    // Evaluations are counted from here, once every instance runs.
    up.town().evaluators.clear();
    let counting = Instant::now();

    one_cache(&instances, &up).await;
    one_invalidation(&instances, &up).await;
    let evaluator = one_evaluator(&up, counting).await;
    one_alert_for_every_subscriber(&instances, &up, &evaluator).await;
    each_row_delivered_once(&instances, &up).await;
    drop(instances);
    drop(db);
}

/// Step 1: What instance 1 fetched, instances 2 and 3 answer from Redis: the same answer, the
/// upstream asked once.
async fn one_cache(instances: &[Instance], up: &Upstreams) {
    let first = instances[0].post(None, PRICES, Value::Null).await;
    assert_eq!(first["data"]["prices"], prices(4_500), "{first}");
    assert_eq!(source(&first, "catalog")["cache"], "MISS", "{first}");
    assert_eq!(up.town().price_calls, 1);
    for other in &instances[1..] {
        let answer = other.post(None, PRICES, Value::Null).await;
        assert_eq!(answer["data"], first["data"], "{answer}");
        assert_eq!(
            source(&answer, "catalog")["cache"],
            "HIT",
            "{} answers from the shared cache: {answer}",
            other.url
        );
    }
    assert_eq!(up.town().price_calls, 1, "no instance but the first asked");
}

/// Step 2: The price changes upstream; the instances keep their cached answer until an
/// invalidation through instance 3, then every one answers the new price, one fetch for all.
async fn one_invalidation(instances: &[Instance], up: &Upstreams) {
    up.town().prices = prices(4_800);
    for instance in instances {
        let cached = instance.post(None, PRICES, Value::Null).await;
        assert_eq!(cached["data"]["prices"], prices(4_500), "{cached}");
    }
    assert_eq!(up.town().price_calls, 1);
    let invalidated = reqwest::Client::new()
        .post(format!("{}/admin/cache/invalidate", instances[2].url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "connector": "catalog" }))
        .send()
        .await
        .expect("invalidate");
    assert_eq!(invalidated.status().as_u16(), 200);
    // The other instances hear of it on Redis' channel, a moment after the answer.
    for instance in instances {
        let since = Instant::now();
        loop {
            let answer = instance.post(None, PRICES, Value::Null).await;
            if answer["data"]["prices"] == prices(4_800) {
                break;
            }
            assert_eq!(answer["data"]["prices"], prices(4_500), "{answer}");
            assert!(
                since.elapsed() < Duration::from_secs(3),
                "the invalidation on instance 3 reaches {}: {answer}",
                instance.url
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        up.town().price_calls,
        2,
        "one fetch of the new price for all"
    );
}

/// Step 3: Every evaluation of the rule since `since` was made by one instance, at most one per
/// interval (and some were made). Returns that instance's number.
async fn one_evaluator(up: &Upstreams, since: Instant) -> String {
    let watched = 3 * INTERVAL;
    if let Some(left) = watched.checked_sub(since.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let elapsed = since.elapsed();
    let evaluators = up.town().evaluators.clone();
    let by: BTreeSet<&String> = evaluators.iter().collect();
    assert_eq!(by.len(), 1, "one instance evaluates: {evaluators:?}");
    let most = (elapsed.as_secs_f64() / INTERVAL.as_secs_f64()).ceil() as usize + 1;
    assert!(
        (1..=most).contains(&evaluators.len()),
        "{} evaluations in {elapsed:?}: once per interval",
        evaluators.len()
    );
    evaluators[0].clone()
}

/// Step 4: The Ngasinan rises over the mark: whichever instance evaluates raises one alert, and
/// subscribers on all three (a websocket on instance 2, event streams on 1 and 3) receive
/// it once; all three list it.
async fn one_alert_for_every_subscriber(instances: &[Instance], up: &Upstreams, evaluator: &str) {
    let staff = staff_token("petugas");
    let mut on_1 = sse(&instances[0].url, Some(&staff), RAISED, Value::Null).await;
    let mut on_2 = ws_connect(&instances[1].url, Some(&staff)).await;
    on_2.ready().await;
    on_2.subscribe("raised", RAISED, Value::Null).await;
    let mut on_3 = sse(&instances[2].url, Some(&staff), RAISED, Value::Null).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    up.town().level = 340;
    let over_ws = on_2.next().await;
    assert_eq!(over_ws["type"], "next", "{over_ws}");
    let raised = over_ws["payload"]["data"]["alertRaised"].clone();
    assert_eq!(raised["rule"], "flood", "{raised}");
    assert_eq!(raised["key"], "Ngasinan", "{raised}");
    assert_eq!(raised["status"], "OPEN", "{raised}");
    assert_eq!(raised["message"], "Ngasinan at 340 cm", "{raised}");
    for (n, stream) in [(1, &mut on_1), (3, &mut on_3)] {
        let event = stream.event().await.expect("an event");
        assert_eq!(
            event.json()["data"]["alertRaised"],
            raised,
            "instance {n}'s subscriber (instance {evaluator} evaluates)"
        );
    }

    // Two more evaluations while the river stays high raise nothing again.
    let seen = up.town().evaluators.len();
    while up.town().evaluators.len() < seen + 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let quiet = Duration::from_millis(300);
    assert!(
        tokio::time::timeout(quiet, on_2.next()).await.is_err(),
        "raised once"
    );
    assert!(
        tokio::time::timeout(quiet, on_1.event()).await.is_err(),
        "raised once"
    );
    assert!(
        tokio::time::timeout(quiet, on_3.event()).await.is_err(),
        "raised once"
    );
    let listed = json!([{ "id": raised["id"], "key": "Ngasinan", "status": "OPEN" }]);
    for instance in instances {
        let alerts = instance
            .post(Some(&staff), "{ alerts { id key status } }", Value::Null)
            .await;
        assert_eq!(
            alerts["data"]["alerts"], listed,
            "{}: {alerts}",
            instance.url
        );
    }
}

/// Step 5: Complaints submitted to the three instances in turn are each posted to the desk once
/// (by Idempotency-Key, the receipt's id), with their own body, and each receipt, asked of
/// another instance, is DELIVERED with the desk's trackingId.
async fn each_row_delivered_once(instances: &[Instance], up: &Upstreams) {
    const N: usize = 45;
    let category = |i: usize| ["jalan rusak", "sampah", "banjir"][i % 3];
    let description = |i: usize| format!("Keluhan nomor {i}");
    let receipts: Vec<String> = futures::stream::iter(0..N)
        .map(|i| async move {
            let input = json!({
                "category": category(i),
                "description": description(i),
                "idempotencyKey": format!("warga-{i}"),
            });
            let answer = instances[i % 3]
                .post(None, SUBMIT, json!({ "input": input }))
                .await;
            let id = answer["data"]["submitComplaint"]["id"].as_str();
            id.unwrap_or_else(|| panic!("a receipt: {answer}"))
                .to_string()
        })
        .buffered(9)
        .collect()
        .await;

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut statuses: Vec<Value> = vec![Value::Null; N];
    while statuses.iter().any(|s| s["status"] != "DELIVERED") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (i, receipt) in receipts.iter().enumerate() {
            if statuses[i]["status"] != "DELIVERED" {
                let vars = json!({ "receipt": receipt });
                let answer = instances[(i + 1) % 3].post(None, STATUS, vars).await;
                statuses[i] = answer["data"]["complaintStatus"].clone();
            }
        }
    }
    // A second post of a row, had two instances claimed it, would come about as the first.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let town = up.town();
    let once: HashMap<String, u32> = receipts.iter().map(|r| (r.clone(), 1)).collect();
    assert_eq!(town.posts, once, "each row posted once");
    for (i, receipt) in receipts.iter().enumerate() {
        let (body, tracking) = &town.accepted[receipt];
        assert_eq!(
            body,
            &json!({ "category": category(i), "description": description(i) })
        );
        assert_eq!(
            statuses[i],
            json!({ "id": receipt, "status": "DELIVERED", "trackingId": tracking }),
            "receipt {i}"
        );
    }
}
