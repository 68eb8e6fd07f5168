//! Webhook deliveries against real HTTP receivers on loopback: retries, signatures, a
//! receiver that comes up late, and two instances sharing one queue.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{PgDb, backends, deliveries, firing, until};
use crate::state::{StateStore, sign};

const T0: i64 = 1_750_000_000_000;

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Seen {
    delivery: String,
    event: String,
    signature: Option<String>,
    content_type: Option<String>,
    body: String,
}

#[derive(Default)]
struct Inbox {
    seen: Mutex<Vec<Seen>>,
    /// Requests still to be answered 503.
    failures: AtomicUsize,
}

impl Inbox {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    inbox.seen.lock().unwrap().push(Seen {
        delivery: header("x-simpul-delivery").unwrap(),
        event: header("x-simpul-event").unwrap(),
        signature: header("x-simpul-signature"),
        content_type: header("content-type"),
        body,
    });
    let fail = inbox
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if fail.is_ok() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Serves an inbox on `listener` that answers 503 to its first `failures` requests.
fn serve(listener: TcpListener, failures: usize) -> (Arc<Inbox>, JoinHandle<()>) {
    let inbox = Arc::new(Inbox::default());
    inbox.failures.store(failures, Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(inbox.clone());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (inbox, task)
}

fn client() -> reqwest::Client {
    crate::install_crypto();
    reqwest::Client::new()
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn a_failing_receiver_gets_the_signed_alert_once_it_answers() {
    for backend in backends().await {
        let on = backend.name();
        let store = backend.open().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = url(listener.local_addr().unwrap());
        let (inbox, server) = serve(listener, 2);
        let secrets = Arc::new(HashMap::from([(hook.clone(), "s3cret".to_string())]));
        let loop_ = store.spawn_deliveries(client(), secrets, 5);

        let mut f = firing("stunting", "3503010", "", T0);
        f.webhooks = vec![hook.clone()];
        let alert = store.fire(&f).await.unwrap().unwrap();
        // 503, retry after ~1 s, 503, retry after ~2 s, 200.
        until("three requests", Duration::from_secs(15), || {
            inbox.seen().len() >= 3
        })
        .await;
        // Wait a few polls: a delivered row is never posted again.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let seen = inbox.seen();
        assert_eq!(seen.len(), 3, "{on}: {seen:?}");
        let rows = deliveries(&store).await;
        let [(id, status, tries, error)] = &rows[..] else {
            panic!("{on}: {rows:?}")
        };
        assert_eq!(
            (status.as_str(), *tries, error),
            ("DELIVERED", 3, &None),
            "{on}"
        );
        for request in &seen {
            assert_eq!(request.delivery, id.to_string(), "{on}");
            assert_eq!(request.event, "alert.raised");
            assert_eq!(request.content_type.as_deref(), Some("application/json"));
            let expected = format!("sha256={}", sign("s3cret", request.body.as_bytes()));
            assert_eq!(
                request.signature.as_deref(),
                Some(expected.as_str()),
                "{on}"
            );
            let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
            assert_eq!(body["event"], "alert.raised");
            assert_eq!(body["alert"]["id"], alert.id);
            assert_eq!(body["alert"]["status"], "OPEN");
            assert_eq!(body["alert"]["evidence"]["value"], 1);
        }
        // A later event about the same alert, queued by the caller.
        store
            .enqueue(&alert, "alert.resolved", std::slice::from_ref(&hook))
            .await
            .unwrap();
        until("the resolved event", Duration::from_secs(5), || {
            inbox.seen().len() == 4
        })
        .await;
        assert_eq!(inbox.seen().last().unwrap().event, "alert.resolved");
        loop_.abort();
        server.abort();
    }
}

#[tokio::test]
async fn a_receiver_that_comes_up_later_still_gets_the_delivery() {
    for backend in backends().await {
        let on = backend.name();
        let store = backend.open().await;
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let loop_ = store.spawn_deliveries(client(), Arc::default(), 10);
        let mut f = firing("flood", "3503010", "", T0);
        f.webhooks = vec![url(addr)];
        store.fire(&f).await.unwrap().unwrap();

        tokio::time::sleep(Duration::from_millis(1500)).await;
        let rows = deliveries(&store).await;
        let [(_, status, tries, error)] = &rows[..] else {
            panic!("{on}: {rows:?}")
        };
        assert_eq!(status, "PENDING", "{on}");
        assert!(*tries >= 1, "{on}: {rows:?}");
        assert!(
            error.as_deref().unwrap().contains("connect"),
            "{on}: {error:?}"
        );

        let (inbox, server) = serve(TcpListener::bind(addr).await.unwrap(), 0);
        until("the late delivery", Duration::from_secs(15), || {
            !inbox.seen().is_empty()
        })
        .await;
        let seen = inbox.seen();
        assert_eq!(
            seen.first().unwrap().signature,
            None,
            "{on}: no secret, no signature"
        );
        let done = tokio::time::Instant::now() + Duration::from_secs(2);
        while deliveries(&store).await.first().unwrap().1 != "DELIVERED" {
            assert!(
                tokio::time::Instant::now() < done,
                "{on}: not marked delivered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        loop_.abort();
        server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_row_exactly_once() {
    let db = PgDb::create().await;
    let one = StateStore::open(&db.url).await.unwrap();
    let two = StateStore::open(&db.url).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = url(listener.local_addr().unwrap());
    let (inbox, server) = serve(listener, 0);
    for i in 0..30 {
        let mut f = firing("r", "3503010", &format!("k{i}"), T0);
        f.webhooks = vec![hook.clone()];
        let store = if i % 2 == 0 { &one } else { &two };
        store.fire(&f).await.unwrap().unwrap();
    }
    // Both start on a full queue, so they race for the same rows.
    let loops = [
        one.spawn_deliveries(client(), Arc::default(), 5),
        two.spawn_deliveries(client(), Arc::default(), 5),
    ];
    until("30 deliveries", Duration::from_secs(20), || {
        inbox.seen().len() >= 30
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let mut per_delivery: HashMap<String, usize> = HashMap::new();
    for request in inbox.seen() {
        *per_delivery.entry(request.delivery).or_default() += 1;
    }
    assert_eq!(per_delivery.len(), 30);
    assert!(per_delivery.values().all(|&n| n == 1), "{per_delivery:?}");
    let rows = deliveries(&one).await;
    assert!(
        rows.iter().all(|r| r.1 == "DELIVERED" && r.2 == 1),
        "{rows:?}"
    );
    for task in loops {
        task.abort();
    }
    server.abort();
}
