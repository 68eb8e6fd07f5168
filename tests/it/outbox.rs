//! The outbox of mutations (tests/outbox): a submission is answered with a receipt only once
//! it is committed to the state store, and the gateway's worker delivers it to the complaint
//! desk once as the desk counts (by Idempotency-Key), across SIGKILLs of the gateway, a desk
//! that fails half its requests, and two instances sharing PostgreSQL. The contact a citizen
//! leaves is personal data: it reaches the desk and nothing else (no answer, no log line,
//! and not the state store once delivered).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::alerts::{SECRET as JWT_SECRET, staff_token};
use crate::cli;
use crate::harness::{ScratchDatabase, TestApp, capture_logs, copy_deployment, logged, repo_root};

const SUBMIT: &str = "mutation Submit($input: ComplaintInput!) { \
                      submitComplaint(input: $input) { id status acceptedAt } }";

const STATUS: &str = "query Status($receipt: ID!) { \
                      complaintStatus(receipt: $receipt) { id status acceptedAt deliveredAt trackingId } }";

/// Longer than `[outbox] max_backoff` (1 s): a delivery still to come has been tried by then.
const SETTLE: Duration = Duration::from_millis(1500);

fn deployment() -> std::path::PathBuf {
    repo_root().join("tests/outbox")
}

// ---------------------------------------------------------------------------------------
// The complaint desk

/// A complaint desk on loopback that behaves as real ones do: `POST /complaints` with an
/// `Idempotency-Key` header; the first 2xx for a key is the complaint accepted (201 and a
/// new `trackingId`); a later post of that key is answered 200 with the same `trackingId`
/// and counted as a duplicate delivery. `fail_percent` % of the posts (any key) are
/// answered 503 before the desk looks at them, as a flaky proxy in front of it would.
#[derive(Clone)]
struct Desk {
    url: String,
    log: Arc<Mutex<DeskLog>>,
}

#[derive(Default)]
struct DeskLog {
    /// Every post, whatever it carried.
    posts: u32,
    /// Every post per Idempotency-Key, whatever it was answered: raw receipts, no dedup.
    received: HashMap<String, u32>,
    /// The complaint each accepted key carried and the trackingId it was given.
    accepted: HashMap<String, Accepted>,
    /// Posts of an already accepted key (answered 2xx again, nothing accepted).
    duplicates: u32,
    /// Posts refused 400: without an Idempotency-Key, or whose body is not a JSON object.
    malformed: Vec<String>,
}

#[derive(Clone, Debug)]
struct Accepted {
    tracking_id: String,
    body: Value,
}

impl Desk {
    async fn start(fail_percent: u32) -> Desk {
        assert!(fail_percent <= 100);
        let log: Arc<Mutex<DeskLog>> = Arc::default();
        let shared = log.clone();
        let app = axum::Router::new().route(
            "/complaints",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let log = shared.clone();
                async move { Desk::answer(&log, fail_percent, &headers, &body) }
            }),
        );
        let url = crate::harness::serve_loopback(app).await;
        Desk { url, log }
    }

    /// One post, decided under the log's lock: two posts of one key never both accept it.
    fn answer(
        log: &Mutex<DeskLog>,
        fail_percent: u32,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (StatusCode, axum::Json<Value>) {
        let mut log = log.lock().unwrap();
        log.posts += 1;
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .filter(|k| !k.is_empty());
        let Some(key) = key else {
            log.malformed.push(format!(
                "no Idempotency-Key: {}",
                String::from_utf8_lossy(body)
            ));
            let refusal = json!({ "error": "an Idempotency-Key header is required" });
            return (StatusCode::BAD_REQUEST, axum::Json(refusal));
        };
        *log.received.entry(key.to_string()).or_default() += 1;
        if rand::random_ratio(fail_percent, 100) {
            let busy = json!({ "error": "the desk is busy, try again" });
            return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(busy));
        }
        let body = match serde_json::from_slice::<Value>(body) {
            Ok(body) if body.is_object() => body,
            _ => {
                log.malformed.push(format!(
                    "{key}: not a JSON object: {}",
                    String::from_utf8_lossy(body)
                ));
                let refusal = json!({ "error": "the body is not a JSON object" });
                return (StatusCode::BAD_REQUEST, axum::Json(refusal));
            }
        };
        if let Some(before) = log.accepted.get(key) {
            let tracking_id = before.tracking_id.clone();
            log.duplicates += 1;
            return (
                StatusCode::OK,
                axum::Json(json!({ "trackingId": tracking_id, "status": "received" })),
            );
        }
        let tracking_id = format!("ADU-{:05}", log.accepted.len() + 1);
        let accepted = Accepted {
            tracking_id: tracking_id.clone(),
            body,
        };
        log.accepted.insert(key.to_string(), accepted);
        (
            StatusCode::CREATED,
            axum::Json(json!({ "trackingId": tracking_id, "status": "received" })),
        )
    }

    fn received(&self) -> HashMap<String, u32> {
        self.log.lock().unwrap().received.clone()
    }

    fn posts(&self) -> u32 {
        self.log.lock().unwrap().posts
    }

    fn accepted(&self) -> HashMap<String, Accepted> {
        self.log.lock().unwrap().accepted.clone()
    }

    fn duplicates(&self) -> u32 {
        self.log.lock().unwrap().duplicates
    }

    fn malformed(&self) -> Vec<String> {
        self.log.lock().unwrap().malformed.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Submissions, and where their contacts turn up

/// Every contact is `0812-SSSS-NNNN`: a series per test (the log buffer of in-process
/// apps is shared by the whole binary) and the submission's number.
const CONTACT_PREFIX: &str = "0812-";
const CONTACT_LEN: usize = "0812-0000-0000".len();

const CATEGORIES: [&str; 4] = ["jalan rusak", "sampah", "lampu jalan", "banjir"];

/// One citizen's complaint, with the key its client sends it (and resends it) under.
#[derive(Clone, Debug)]
struct Submission {
    key: String,
    category: &'static str,
    description: String,
    contact: String,
}

impl Submission {
    fn new(series: u32, n: usize) -> Submission {
        assert!(series < 10_000 && n < 10_000);
        Submission {
            key: format!("warga-{series}-{n}"),
            category: CATEGORIES[n % CATEGORIES.len()],
            // Quotes and a non-ASCII letter: the body template must write JSON strings.
            description: format!("Jalan \"berlubang\" di RT {n}, dekat warung Bu Siti — {n}"),
            contact: format!("{CONTACT_PREFIX}{series:04}-{n:04}"),
        }
    }

    fn many(series: u32, count: usize) -> Vec<Submission> {
        (0..count).map(|n| Submission::new(series, n)).collect()
    }

    fn variables(&self) -> Value {
        json!({ "input": {
            "category": self.category,
            "description": self.description,
            "contact": self.contact,
            "idempotencyKey": self.key,
        } })
    }

    /// The body the desk must receive for it.
    fn desk_body(&self) -> Value {
        json!({
            "category": self.category,
            "description": self.description,
            "contact": self.contact,
        })
    }
}

/// The contacts of a test's submissions, and every place one of them was seen.
struct Witness {
    contacts: HashSet<String>,
    leaks: Mutex<Vec<String>>,
}

impl Witness {
    fn new(submissions: &[Submission]) -> Witness {
        let contacts: HashSet<String> = submissions.iter().map(|s| s.contact.clone()).collect();
        assert!(
            contacts
                .iter()
                .all(|c| c.starts_with(CONTACT_PREFIX) && c.len() == CONTACT_LEN)
        );
        Witness {
            contacts,
            leaks: Mutex::default(),
        }
    }

    /// The contacts in `text`: each occurrence of the prefix, read to a contact's length.
    fn found_in<'t>(&self, text: &'t str) -> Vec<&'t str> {
        text.match_indices(CONTACT_PREFIX)
            .filter_map(|(at, _)| text.get(at..at + CONTACT_LEN))
            .filter(|c| self.contacts.contains(*c))
            .collect()
    }

    /// Records what `where_` showed if it names a contact.
    fn see(&self, where_: &str, text: &str) {
        let found = self.found_in(text);
        if !found.is_empty() {
            self.leaks
                .lock()
                .unwrap()
                .push(format!("{where_}: {found:?} in {text}"));
        }
    }

    /// Panics naming the first few places a contact was seen, if any.
    fn assert_none_seen(&self) {
        let leaks = self.leaks.lock().unwrap();
        assert!(
            leaks.is_empty(),
            "contacts seen in {} answers, the first: {:#?}",
            leaks.len(),
            &leaks[..leaks.len().min(3)]
        );
    }
}

// ---------------------------------------------------------------------------------------
// Clients

/// Where clients send: the gateway's URL, changed when it is restarted on another port.
#[derive(Clone)]
struct Address(Arc<RwLock<String>>);

impl Address {
    fn new(url: &str) -> Address {
        Address(Arc::new(RwLock::new(url.to_string())))
    }

    fn get(&self) -> String {
        self.0.read().unwrap().clone()
    }

    fn set(&self, url: &str) {
        *self.0.write().unwrap() = url.to_string();
    }
}

/// What a submission was answered: `{ id status acceptedAt }`.
#[derive(Clone, Debug)]
struct Receipt {
    id: String,
    status: String,
}

/// The receipt in a `submitComplaint` answer, checked: no errors, an id, a known status and
/// an RFC 3339 `acceptedAt`.
fn receipt_of(answer: &Value) -> Option<Receipt> {
    if answer.get("errors").is_some() {
        return None;
    }
    let r = &answer["data"]["submitComplaint"];
    let id = r["id"].as_str().filter(|id| !id.is_empty())?;
    let status = r["status"]
        .as_str()
        .filter(|s| ["PENDING", "DELIVERED", "FAILED"].contains(s))?;
    let accepted_at = r["acceptedAt"].as_str()?;
    chrono::DateTime::parse_from_rfc3339(accepted_at).ok()?;
    Some(Receipt {
        id: id.to_string(),
        status: status.to_string(),
    })
}

/// Sends `s` until the gateway answers it with a receipt, as a client that cannot tell a
/// lost answer from a lost request does: the same idempotencyKey again after a connection
/// error, a cut answer or a 5xx. Any other answer without a receipt is the error returned.
async fn submit(
    http: &reqwest::Client,
    address: &Address,
    s: &Submission,
    witness: &Witness,
    deadline: Instant,
) -> Result<Receipt, String> {
    let body = json!({ "query": SUBMIT, "variables": s.variables() });
    let mut last = String::from("nothing sent");
    while Instant::now() < deadline {
        let sent = http
            .post(format!("{}/graphql", address.get()))
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let answered = match sent {
            Ok(response) => {
                let status = response.status();
                response.text().await.map(|text| (status, text))
            }
            Err(e) => Err(e),
        };
        let (status, text) = match answered {
            Ok(answer) => answer,
            Err(e) => {
                last = format!("{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        witness.see(&format!("the answer to {}", s.key), &text);
        if status.is_server_error() {
            last = format!("{status}: {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        return receipt_of(&answer).ok_or_else(|| format!("{}: {status}: {text}", s.key));
    }
    Err(format!("{}: no receipt in time; last: {last}", s.key))
}

/// Submits every one of `submissions` from `clients` concurrent clients, each to the
/// address `route` gives for the submission's index; a receipt or an error per submission,
/// in order. `finished` counts the submissions that ended either way.
async fn submit_all(
    submissions: &Arc<Vec<Submission>>,
    clients: usize,
    route: impl Fn(usize) -> Address,
    witness: &Arc<Witness>,
    finished: &Arc<AtomicUsize>,
    within: Duration,
) -> Vec<Result<Receipt, String>> {
    let deadline = Instant::now() + within;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (submissions, witness, finished) =
            (submissions.clone(), witness.clone(), finished.clone());
        let mine: Vec<(usize, Address)> = (client..submissions.len())
            .step_by(clients)
            .map(|i| (i, route(i)))
            .collect();
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            let mut got = Vec::new();
            for (i, address) in mine {
                let r = submit(&http, &address, &submissions[i], &witness, deadline).await;
                finished.fetch_add(1, Ordering::SeqCst);
                got.push((i, r));
            }
            got
        });
    }
    let mut results: Vec<Option<Result<Receipt, String>>> = vec![None; submissions.len()];
    while let Some(done) = tasks.join_next().await {
        for (i, r) in done.expect("a client panicked") {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every submission sent"))
        .collect()
}

/// The receipts, in submission order; panics naming the first few submissions without one.
fn all_receipts(results: Vec<Result<Receipt, String>>) -> Vec<Receipt> {
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} submissions without a receipt, the first: {:#?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    results.into_iter().flatten().collect()
}

/// The `complaintStatus` of `receipt` (the whole answer when it has errors or no data).
async fn status_of(
    http: &reqwest::Client,
    url: &str,
    receipt: &str,
    witness: &Witness,
) -> Result<Value, String> {
    let response = http
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": STATUS, "variables": { "receipt": receipt } }))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let text = response.text().await.map_err(|e| e.to_string())?;
    witness.see(&format!("the status of {receipt}"), &text);
    let answer: Value = serde_json::from_str(&text).map_err(|_| text.clone())?;
    if answer.get("errors").is_some() || answer["data"]["complaintStatus"].is_null() {
        return Err(text);
    }
    Ok(answer["data"]["complaintStatus"].clone())
}

/// Polls the receipts' statuses until each is settled (DELIVERED or FAILED) or `within` has
/// passed: the last status seen for each (an error is an object `{ "error": ... }`). `url`
/// gives the address to ask about a receipt.
async fn settled(
    receipts: &[String],
    url: impl Fn(&str) -> String,
    within: Duration,
    witness: &Witness,
) -> HashMap<String, Value> {
    let deadline = Instant::now() + within;
    let http = reqwest::Client::new();
    let mut last: HashMap<String, Value> = HashMap::new();
    let is_settled = |s: &Value| s["status"] == "DELIVERED" || s["status"] == "FAILED";
    loop {
        let pending: Vec<&String> = receipts
            .iter()
            .filter(|r| !last.get(*r).is_some_and(is_settled))
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return last;
        }
        let seen: Vec<(String, Value)> = futures::stream::iter(pending)
            .map(|r| {
                let (http, url) = (&http, url(r.as_str()));
                async move {
                    let status = status_of(http, &url, r, witness).await;
                    (r.clone(), status.unwrap_or_else(|e| json!({ "error": e })))
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        last.extend(seen);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The receipts whose last status is not `want`, with it: at most five, for a message.
fn not_yet(statuses: &HashMap<String, Value>, receipts: &[String], want: &str) -> Vec<String> {
    receipts
        .iter()
        .filter(|r| statuses.get(*r).is_none_or(|s| s["status"] != want))
        .take(5)
        .map(|r| format!("{r}: {}", statuses.get(r).unwrap_or(&Value::Null)))
        .collect()
}

/// `id` with its last letter or digit changed to another of its kind (a digit, a hex
/// letter, another letter): an id of the same shape that names something else.
fn another_id(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let last = chars
        .iter()
        .rposition(char::is_ascii_alphanumeric)
        .expect("an id with a letter or digit");
    let cycle =
        |c: char, first: char, len: u8| (first as u8 + (c as u8 - first as u8 + 1) % len) as char;
    chars[last] = match chars[last] {
        c @ '0'..='9' => cycle(c, '0', 10),
        c @ 'a'..='f' => cycle(c, 'a', 6),
        c @ 'A'..='F' => cycle(c, 'A', 6),
        c @ 'g'..='z' => cycle(c, 'g', 20),
        c => cycle(c, 'G', 20),
    };
    chars.into_iter().collect()
}

async fn post_as(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> String {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("answer")
}

/// Every text value in every table of the SQLite database at `path`.
async fn texts_in_sqlite(path: &Path) -> Vec<String> {
    use sqlx::{AssertSqlSafe, Row};
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let db = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the state store");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&db)
            .await
            .expect("tables");
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let mut texts = Vec::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
            .bind(&table)
            .fetch_all(&db)
            .await
            .expect("columns");
        for column in columns {
            let sql = format!(
                "SELECT CAST({} AS TEXT) FROM {}",
                quote(&column),
                quote(&table)
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .fetch_all(&db)
                .await
                .expect("rows");
            texts.extend(
                rows.iter()
                    .filter_map(|r| r.try_get::<Option<String>, _>(0).ok().flatten())
                    .map(|v| format!("{table}.{column}: {v}")),
            );
        }
    }
    db.close().await;
    texts
}

// ---------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_submissions_survive_two_sigkills_and_a_flaky_desk() {
    simpul::install_crypto();
    const SUBMISSIONS: usize = 1000;
    const CLIENTS: usize = 20;
    let desk = Desk::start(50).await;
    let dir = copy_deployment(&deployment());
    let state = dir.path().join("state.db");
    let log = dir.path().join("gateway.log");
    let state_url = format!("sqlite://{}", state.display());
    let env = [
        ("SIMPUL_STATE_URL", state_url.as_str()),
        ("DESK_URL", desk.url.as_str()),
        // Everything the gateway says about its work, so the search for contacts below
        // reads more than startup lines.
        ("RUST_LOG", "info,simpul=debug,sqlx=warn"),
        ("NO_COLOR", "1"),
    ];
    let (mut server, url) = cli::start_logging(dir.path(), &env, &log).await;
    let address = Address::new(&url);

    let submissions = Arc::new(Submission::many(1, SUBMISSIONS));
    let witness = Arc::new(Witness::new(&submissions));
    let finished = Arc::new(AtomicUsize::new(0));
    let clients = {
        let (submissions, witness, finished, address) = (
            submissions.clone(),
            witness.clone(),
            finished.clone(),
            address.clone(),
        );
        tokio::spawn(async move {
            let route = move |_: usize| address.clone();
            let within = Duration::from_secs(60);
            submit_all(&submissions, CLIENTS, route, &witness, &finished, within).await
        })
    };

    // SIGKILL with submissions in flight, twice; each time a new gateway on the same state
    // file, on a port of its own: the clients follow the address.
    let mut killed_after = Vec::new();
    for threshold in [SUBMISSIONS * 3 / 10, SUBMISSIONS * 65 / 100] {
        let waiting = Instant::now();
        while finished.load(Ordering::SeqCst) < threshold
            && waiting.elapsed() < Duration::from_secs(60)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.sigkill();
        killed_after.push(finished.load(Ordering::SeqCst));
        let (next, url) = cli::start_logging(dir.path(), &env, &log).await;
        server = next;
        address.set(&url);
    }
    let receipts = all_receipts(clients.await.expect("clients"));
    let ids: Vec<String> = receipts.iter().map(|r| r.id.clone()).collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), SUBMISSIONS, "one receipt per complaint");
    for r in &receipts {
        assert_ne!(r.status, "FAILED", "{r:?}: failed with tries to spare");
    }

    // Every receipt delivered, with the desk's trackingId.
    let url = address.get();
    let last = settled(&ids, |_| url.clone(), Duration::from_secs(60), &witness).await;
    let undelivered = not_yet(&last, &ids, "DELIVERED");
    assert!(undelivered.is_empty(), "not delivered: {undelivered:#?}");

    // The same key again, after the kills and the delivery: the same receipt, no new post.
    let posts = desk.posts();
    let again = submit_all(
        &submissions,
        CLIENTS,
        |_| address.clone(),
        &witness,
        &Arc::default(),
        Duration::from_secs(30),
    )
    .await;
    for ((s, first), again) in submissions.iter().zip(&receipts).zip(all_receipts(again)) {
        assert_eq!(again.id, first.id, "{} submitted again", s.key);
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        desk.posts(),
        posts,
        "a submission again is not delivered again"
    );
    server.sigkill();

    // At the desk: the keys accepted are exactly the receipts the clients hold, each with
    // the complaint submitted under it and the trackingId its status shows.
    let accepted = desk.accepted();
    let accepted_keys: HashSet<&String> = accepted.keys().collect();
    assert_eq!(accepted_keys, distinct, "accepted keys == receipts held");
    for (s, r) in submissions.iter().zip(&receipts) {
        let a = &accepted[&r.id];
        assert_eq!(a.body, s.desk_body(), "what the desk got for {}", s.key);
        let status = &last[&r.id];
        assert_eq!(status["id"], r.id.as_str());
        assert_eq!(status["trackingId"], a.tracking_id.as_str(), "{status}");
        assert!(status["deliveredAt"].is_string(), "{status}");
    }
    let received = desk.received();
    let unknown: Vec<&String> = received.keys().filter(|k| !distinct.contains(k)).collect();
    assert!(unknown.is_empty(), "posted under no receipt: {unknown:?}");
    assert_eq!(desk.malformed(), Vec::<String>::new());
    // A repeat is only a delivery the desk answered and a killed gateway never recorded:
    // at most what the worker had in flight at the two kills.
    let duplicates = desk.duplicates();
    eprintln!(
        "outbox: {SUBMISSIONS} receipts; killed after {killed_after:?} had finished; \
         {} posts to the desk, {duplicates} repeated an accepted key",
        desk.posts()
    );
    assert!(
        duplicates <= 50,
        "{duplicates} deliveries repeated an accepted key"
    );

    // The contacts went to the desk and nowhere else: not in an answer, not in the log,
    // not in the state store once delivered.
    witness.assert_none_seen();
    let logged = String::from_utf8_lossy(&std::fs::read(&log).expect("the log")).into_owned();
    assert!(!logged.trim().is_empty(), "the gateway logged nothing");
    let in_log = witness.found_in(&logged);
    assert!(
        in_log.is_empty(),
        "{} contacts in the log, e.g. {:?}",
        in_log.len(),
        &in_log[..in_log.len().min(5)]
    );
    let stored: Vec<String> = texts_in_sqlite(&state)
        .await
        .into_iter()
        .filter(|t| !witness.found_in(t).is_empty())
        .take(5)
        .collect();
    assert!(
        stored.is_empty(),
        "contacts kept after delivery: {stored:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_submit_with_the_same_key_is_one_complaint() {
    simpul::install_crypto();
    capture_logs();
    let desk = Desk::start(0).await;
    let app = TestApp::spawn(&deployment(), &[("DESK_URL", &desk.url)]).await;
    let address = Address::new(&app.url);
    let submissions = Submission::many(2, 3);
    let witness = Witness::new(&submissions);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let send = |i: usize| submit(&http, &address, &submissions[i], &witness, deadline);

    // One after the other, and two at once (a client retrying while its first try runs).
    let first = send(0).await.expect("a receipt");
    assert_eq!(first.status, "PENDING");
    let second = send(0).await.expect("a receipt");
    let (a, b) = tokio::join!(send(1), send(1));
    let (a, b) = (a.expect("a receipt"), b.expect("a receipt"));
    let other = send(2).await.expect("a receipt");
    assert_eq!(second.id, first.id, "the same key is the same receipt");
    assert_eq!(a.id, b.id, "the same key at once is the same receipt");
    let ids = [first.id.clone(), a.id.clone(), other.id.clone()];
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        3,
        "another key is another receipt: {ids:?}"
    );

    let last = settled(&ids, |_| app.url.clone(), Duration::from_secs(20), &witness).await;
    assert_eq!(
        not_yet(&last, &ids, "DELIVERED"),
        Vec::<String>::new(),
        "delivered"
    );
    let after = send(0).await.expect("a receipt");
    assert_eq!(after.id, first.id, "the same key after its delivery");
    tokio::time::sleep(SETTLE).await;

    let received = desk.received();
    let expected: HashMap<String, u32> = ids.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(received, expected, "each complaint posted once");
    assert_eq!(desk.duplicates(), 0);
    let accepted = desk.accepted();
    assert_eq!(accepted[&first.id].body, submissions[0].desk_body());
    assert_eq!(accepted[&a.id].body, submissions[1].desk_body());
    witness.assert_none_seen();
    for s in &submissions {
        assert_eq!(logged(&[&s.contact]), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_end_failed_after_their_tries() {
    simpul::install_crypto();
    capture_logs();
    let desk = Desk::start(100).await;
    let dir = copy_deployment(&deployment());
    let schema = dir.path().join("schema.graphql");
    let text = std::fs::read_to_string(&schema).expect("schema");
    assert!(text.contains("tries: 50"));
    std::fs::write(&schema, text.replace("tries: 50", "tries: 3")).expect("write schema");
    let app = TestApp::spawn(
        dir.path(),
        &[("DESK_URL", &desk.url), ("SIMPUL_JWT_SECRET", JWT_SECRET)],
    )
    .await;
    let submissions = Submission::many(3, 1);
    let witness = Witness::new(&submissions);
    let deadline = Instant::now() + Duration::from_secs(20);
    let receipt = submit(
        &reqwest::Client::new(),
        &Address::new(&app.url),
        &submissions[0],
        &witness,
        deadline,
    )
    .await
    .expect("a receipt");
    assert_eq!(receipt.status, "PENDING");

    // Three tries ~100 ms and ~200 ms apart, then FAILED: no trackingId, never delivered.
    let ids = [receipt.id.clone()];
    let last = settled(&ids, |_| app.url.clone(), Duration::from_secs(15), &witness).await;
    let status = &last[&receipt.id];
    assert_eq!(status["status"], "FAILED", "{status}");
    assert_eq!(status["deliveredAt"], Value::Null, "{status}");
    assert_eq!(status["trackingId"], Value::Null, "{status}");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        desk.received(),
        HashMap::from([(receipt.id.clone(), 3)]),
        "tries: 3 is three posts, then none"
    );
    assert!(desk.accepted().is_empty());

    // A delivery that failed for good is an alert for staff, naming the mutation's field
    // and never the contact.
    let staff = staff_token("petugas");
    let query = "{ alerts(status: OPEN) { rule title message } }";
    let mut answer = Value::Null;
    let waiting = Instant::now();
    while waiting.elapsed() < Duration::from_secs(15) {
        let text = post_as(&app, Some(&staff), query, Value::Null).await;
        witness.see("the alerts", &text);
        answer = serde_json::from_str(&text).expect("json");
        let raised = answer["data"]["alerts"].as_array().is_some_and(|alerts| {
            alerts.iter().any(|a| {
                a["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("submitComplaint"))
            })
        });
        if raised {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(answer.get("errors"), None, "{answer}");
    let alerts = answer["data"]["alerts"].as_array().expect("alerts");
    let alert = alerts
        .iter()
        .find(|a| {
            a["message"]
                .as_str()
                .is_some_and(|m| m.contains("submitComplaint"))
        })
        .unwrap_or_else(|| panic!("no open alert names submitComplaint: {answer}"));
    assert!(
        alert["rule"].as_str().is_some_and(|r| !r.is_empty()),
        "{alert}"
    );
    assert!(
        alert["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{alert}"
    );
    witness.assert_none_seen();
    assert_eq!(logged(&[&submissions[0].contact]), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgresql_deliver_each_row_once() {
    simpul::install_crypto();
    // A database of its own, dropped when the test ends.
    let db = ScratchDatabase::create(&format!("simpul_outbox_{}", std::process::id())).await;
    let desk = Desk::start(0).await;
    let env = [
        ("DESK_URL", desk.url.as_str()),
        ("SIMPUL_STATE_URL", &db.url),
    ];
    let a = TestApp::spawn(&deployment(), &env).await;
    let b = TestApp::spawn(&deployment(), &env).await;
    let (on_a, on_b) = (Address::new(&a.url), Address::new(&b.url));

    // Even submissions to one instance, odd ones to the other; both workers deliver.
    let submissions = Arc::new(Submission::many(4, 200));
    let witness = Arc::new(Witness::new(&submissions));
    let route = |i: usize| [&on_a, &on_b][i % 2].clone();
    let results = submit_all(
        &submissions,
        16,
        route,
        &witness,
        &Arc::default(),
        Duration::from_secs(30),
    )
    .await;
    let receipts = all_receipts(results);
    let ids: Vec<String> = receipts.iter().map(|r| r.id.clone()).collect();
    let submitted_to: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i % 2))
        .collect();

    // Each receipt asked of the instance it was not submitted to: one store.
    let last = settled(
        &ids,
        |id| [&b.url, &a.url][submitted_to[id]].clone(),
        Duration::from_secs(30),
        &witness,
    )
    .await;
    tokio::time::sleep(SETTLE).await;
    let received = desk.received();
    let undelivered = not_yet(&last, &ids, "DELIVERED");

    assert!(undelivered.is_empty(), "not delivered: {undelivered:#?}");
    let expected: HashMap<String, u32> = ids.iter().map(|id| (id.clone(), 1)).collect();
    let twice: Vec<(&String, &u32)> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
    assert_eq!(received, expected, "each row posted exactly once");
    assert_eq!(desk.malformed(), Vec::<String>::new());
    witness.assert_none_seen();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaint_status_tells_no_personal_data() {
    simpul::install_crypto();
    capture_logs();
    let desk = Desk::start(0).await;
    let app = TestApp::spawn(&deployment(), &[("DESK_URL", &desk.url)]).await;
    let submissions = Submission::many(5, 1);
    let witness = Witness::new(&submissions);
    let deadline = Instant::now() + Duration::from_secs(20);
    let receipt = submit(
        &reqwest::Client::new(),
        &Address::new(&app.url),
        &submissions[0],
        &witness,
        deadline,
    )
    .await
    .expect("a receipt");
    let ids = [receipt.id.clone()];
    let last = settled(&ids, |_| app.url.clone(), Duration::from_secs(20), &witness).await;
    assert_eq!(last[&receipt.id]["status"], "DELIVERED", "{last:?}");

    // Everything a receipt has: five fields, none of them the complaint or its contact.
    let text = post_as(
        &app,
        None,
        "query Status($receipt: ID!) { complaintStatus(receipt: $receipt) { \
         __typename id status acceptedAt deliveredAt trackingId } }",
        json!({ "receipt": receipt.id }),
    )
    .await;
    witness.see("the status", &text);
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer.get("errors"), None, "{answer}");
    let status = answer["data"]["complaintStatus"]
        .as_object()
        .expect("a receipt");
    let mut keys: Vec<&str> = status.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "__typename",
            "acceptedAt",
            "deliveredAt",
            "id",
            "status",
            "trackingId"
        ]
    );
    assert_eq!(status["__typename"], "Receipt");
    assert_eq!(status["id"], receipt.id.as_str());
    let tracking_id = desk.accepted()[&receipt.id].tracking_id.clone();
    assert_eq!(status["trackingId"], tracking_id.as_str());
    assert!(
        status["acceptedAt"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );
    assert!(
        status["deliveredAt"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    );

    // The type has no other field to ask for, and says so without the contact.
    let text = post_as(
        &app,
        None,
        r#"{ receipt: __type(name: "Receipt") { fields { name } }
             status: __type(name: "DeliveryStatus") { enumValues { name } } }"#,
        Value::Null,
    )
    .await;
    let answer: Value = serde_json::from_str(&text).expect("json");
    let names = |list: &Value, key: &str| -> Vec<String> {
        let mut names: Vec<String> = list[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} in {answer}"))
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&answer["data"]["receipt"], "fields"),
        ["acceptedAt", "deliveredAt", "id", "status", "trackingId"]
    );
    assert_eq!(
        names(&answer["data"]["status"], "enumValues"),
        ["DELIVERED", "FAILED", "PENDING"]
    );
    let text = post_as(
        &app,
        None,
        "query Status($receipt: ID!) { complaintStatus(receipt: $receipt) { id contact } }",
        json!({ "receipt": receipt.id }),
    )
    .await;
    witness.see("a question for the contact", &text);
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert!(answer["errors"][0]["message"].is_string(), "{answer}");
    assert_eq!(answer["data"]["complaintStatus"], Value::Null, "{answer}");

    // A receipt nobody was given (shaped like the one given) is null, not an error.
    let unknown = another_id(&receipt.id);
    let text = post_as(&app, None, STATUS, json!({ "receipt": unknown })).await;
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer.get("errors"), None, "{unknown}: {answer}");
    assert_eq!(
        answer["data"],
        json!({ "complaintStatus": null }),
        "{unknown}: {answer}"
    );

    witness.assert_none_seen();
    assert_eq!(logged(&[&submissions[0].contact]), Vec::<String>::new());
}

/// The desk the tests above rely on, on its own: it dedups by key, fails as told, refuses
/// posts without a key, and the contact search finds exactly the contacts.
#[tokio::test]
async fn the_test_desk_dedups_by_key_and_fails_as_told() {
    simpul::install_crypto();
    let http = reqwest::Client::new();
    let post = |url: String, key: Option<&'static str>, body: &'static str| {
        let http = http.clone();
        async move {
            let mut request = http
                .post(format!("{url}/complaints"))
                .header("content-type", "application/json")
                .body(body);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            let response = request.send().await.expect("desk");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let desk = Desk::start(0).await;
    let body = r#"{"category": "sampah", "description": "x", "contact": null}"#;
    let (s1, a1) = post(desk.url.clone(), Some("r-1"), body).await;
    let (s2, a2) = post(desk.url.clone(), Some("r-1"), body).await;
    let (s3, a3) = post(desk.url.clone(), Some("r-2"), body).await;
    assert_eq!((s1, s2, s3), (201, 200, 201));
    assert_eq!(a1["trackingId"], a2["trackingId"]);
    assert_ne!(a1["trackingId"], a3["trackingId"]);
    assert_eq!(post(desk.url.clone(), None, body).await.0, 400);
    assert_eq!(post(desk.url.clone(), Some("r-3"), "[1]").await.0, 400);
    assert_eq!(
        desk.received(),
        HashMap::from([("r-1".into(), 2), ("r-2".into(), 1), ("r-3".into(), 1)])
    );
    assert_eq!(desk.accepted().len(), 2);
    assert_eq!(
        desk.accepted()["r-1"].body,
        serde_json::from_str::<Value>(body).unwrap()
    );
    assert_eq!(
        (desk.duplicates(), desk.malformed().len(), desk.posts()),
        (1, 2, 5)
    );

    let flaky = Desk::start(50).await;
    let mut answered = HashMap::new();
    for _ in 0..100 {
        *answered
            .entry(post(flaky.url.clone(), Some("k"), body).await.0)
            .or_insert(0) += 1;
    }
    let failed = answered.get(&503).copied().unwrap_or(0);
    assert!((20..=80).contains(&failed), "{answered:?}");
    assert_eq!(answered.get(&201), Some(&1), "{answered:?}");
    let down = Desk::start(100).await;
    assert_eq!(post(down.url.clone(), Some("k"), body).await.0, 503);
    assert!(down.accepted().is_empty());

    for (id, other) in [
        ("7f3a", "7f3b"),
        ("r-19", "r-10"),
        ("AF", "AA"),
        ("xyz-", "xyg-"),
    ] {
        assert_eq!(another_id(id), other);
    }

    let submissions = Submission::many(9, 12);
    let witness = Witness::new(&submissions);
    let text = format!(
        "{{\"a\":\"{}\",\"b\":\"0812-9999-0001 0812-0009-0011\"}} 0812-0009-00",
        submissions[3].contact
    );
    assert_eq!(
        witness.found_in(&text),
        ["0812-0009-0003", "0812-0009-0011"]
    );
    // What the desk must get escapes the description's quotes: the template writes JSON.
    let body = submissions[7].desk_body();
    assert!(
        serde_json::to_string(&body)
            .unwrap()
            .contains(r#"\"berlubang\""#)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desk_that_refuses_a_complaint_outright_is_tried_once() {
    // 422: the desk read the complaint and will never take it; retrying cannot help.
    let posts = Arc::new(AtomicUsize::new(0));
    let counted = posts.clone();
    let app = axum::Router::new().route(
        "/complaints",
        axum::routing::post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::UNPROCESSABLE_ENTITY, "category unknown here") }
        }),
    );
    let url = crate::harness::serve_loopback(app).await;
    let gateway = TestApp::spawn(&deployment(), &[("DESK_URL", &url)]).await;
    let query = "mutation { submitComplaint(input: {category: \"JALAN\", description: \"Jalan rusak\"}) { id } }";
    let text = post_as(&gateway, None, query, Value::Null).await;
    let answer: Value = serde_json::from_str(&text).expect("json");
    let id = answer["data"]["submitComplaint"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    let status = format!("{{ complaintStatus(receipt: \"{id}\") {{ status }} }}");
    let mut last = Value::Null;
    for _ in 0..100 {
        let text = post_as(&gateway, None, &status, Value::Null).await;
        last = serde_json::from_str(&text).expect("json");
        if last["data"]["complaintStatus"]["status"] == "FAILED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        last["data"]["complaintStatus"]["status"], "FAILED",
        "{last}"
    );
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        posts.load(Ordering::SeqCst),
        1,
        "tries: 50, but a refusal ends them"
    );
}
