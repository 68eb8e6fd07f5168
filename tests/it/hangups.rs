//! A client that hangs up never breaks a source: calls whose requests went away still run to
//! their end or their timeout, and give back every permit, connection and in-flight entry.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{
    TestApp, Upstream, copy_deployment, dashboard_operations, mysql_url, pg_url, repo_root,
    without_rate_limits,
};

/// Sends `query` and closes the connection `after` it, before the answer: with a reset
/// (`abrupt`) as a killed browser tab does, or with an orderly close as a proxy does.
async fn hang_up(addr: &str, query: &str, after: Duration, abrupt: bool) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let body = json!({ "query": query }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    tokio::time::sleep(after).await;
    if abrupt {
        let _ = stream.set_zero_linger();
    }
    drop(stream);
}

/// The sources as `/readyz` reports them.
async fn sources(app: &TestApp) -> Vec<Value> {
    let r: Value = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("readyz json");
    r["sources"].as_array().cloned().unwrap_or_default()
}

/// Whether `s` holds nothing: no call in flight, no permit taken, every connection idle.
fn settled(s: &Value) -> bool {
    s["inFlight"] == 0 && s["concurrencyInUse"] == 0 && s["poolOpen"] == s["poolIdle"]
}

/// Waits until every source has given back everything it took; panics with the sources'
/// state if one still holds something after `within`.
async fn settle(app: &TestApp, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let all = sources(app).await;
        assert!(!all.is_empty(), "readyz lists the sources");
        if all.iter().all(settled) {
            return;
        }
        if Instant::now() > until {
            let held: Vec<_> = all.iter().filter(|s| !settled(s)).collect();
            panic!("sources still hold calls, permits or connections after {within:?}: {held:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A deployment with one slow field per connector kind; `{{args.k}}` makes calls distinct.
fn slow_deployment(dir: &Path) {
    let connectors = dir.join("connectors");
    std::fs::create_dir_all(&connectors).expect("mkdir");
    std::fs::create_dir_all(dir.join("data/files")).expect("mkdir");
    std::fs::write(
        dir.join("schema.graphql"),
        r#"type Query {
  pg(ms: Int!, k: Int!): [Row!]! @sql(connector: "pg", query: "SELECT CAST({{args.k}} AS INTEGER) AS k FROM pg_sleep(CAST({{args.ms}} AS FLOAT8) / 1000)")
  maria(ms: Int!, k: Int!): [Row!]! @sql(connector: "maria", query: "SELECT {{args.k}} AS k, SLEEP({{args.ms}} / 1000) AS s")
  lite(ms: Int!, k: Int!): [Row!]! @sql(connector: "lite", query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {{args.ms}} * 3500) SELECT {{args.k}} AS k, count(*) AS n FROM c")
  file(ms: Int!, k: Int!): [Row!]! @sql(connector: "file", query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {{args.ms}} * 3500) SELECT {{args.k}} + (SELECT count(*) FROM numbers) - 3 AS k, count(*) AS n FROM c")
  web(k: Int!): Row @http(connector: "web", path: "/users/{{args.k}}")
}
type Row { k: Int id: Int }
"#,
    )
    .expect("schema");
    // The breaker has tests of its own; here it must not hide what the pools do.
    let common = "timeout = \"1s\"\ncircuit_failures = 100000\n";
    let write = |name: &str, kind: &str| {
        std::fs::write(
            connectors.join(format!("{name}.toml")),
            format!("title = \"{name}\"\nopd = \"diskominfo\"\n{common}\n{kind}\n"),
        )
        .expect("connector")
    };
    write("pg", "[postgres]\nurl = \"${env.PG_URL}\"");
    write("maria", "[mysql]\nurl = \"${env.MYSQL_URL}\"");
    write(
        "lite",
        "[sqlite]\npath = \"data/lite.db\"\nseed = \"data/seed.sql\"",
    );
    write("file", "[file]\npath = \"data/files\"");
    write("web", "[http]\nbase_url = \"${env.WEB_URL}\"");
    std::fs::write(
        dir.join("data/seed.sql"),
        "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
    )
    .expect("seed");
    std::fs::write(dir.join("data/files/numbers.csv"), "n\n1\n2\n3\n").expect("csv");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_calls_whose_clients_hang_up_leave_every_kind_of_source_answering() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    slow_deployment(dir.path());
    let (pg, my) = (pg_url(), mysql_url());
    let app = TestApp::spawn(
        dir.path(),
        &[
            ("PG_URL", &pg),
            ("MYSQL_URL", &my),
            ("WEB_URL", &upstream.url),
        ],
    )
    .await;
    let addr = app.url.trim_start_matches("http://").to_string();

    // Each kind first answers, so a failure below is the hang-ups' doing.
    let normal = "{ pg(ms: 0, k: 1) { k } maria(ms: 0, k: 1) { k } lite(ms: 0, k: 1) { k } file(ms: 0, k: 1) { k } web(k: 1) { id } }";
    let check = |r: &Value, k: i64| {
        assert!(r.get("errors").is_none(), "{r}");
        for field in ["pg", "maria", "lite", "file"] {
            assert_eq!(r["data"][field][0]["k"], k, "{field}: {r}");
        }
        assert_eq!(r["data"]["web"]["id"], k, "{r}");
    };
    check(&app.query(normal).await, 1);

    upstream.delay_ms.store(400, Ordering::SeqCst);
    // 100 requests per kind: half with distinct keys, half sharing one key; each client
    // hangs up while its call is running.
    let mut clients = Vec::new();
    for i in 0..100u64 {
        let k = if i % 2 == 0 { 1000 + i } else { 7 };
        for q in [
            format!("{{ pg(ms: 400, k: {k}) {{ k }} }}"),
            format!("{{ maria(ms: 400, k: {k}) {{ k }} }}"),
            format!("{{ lite(ms: 400, k: {k}) {{ k }} }}"),
            format!("{{ file(ms: 400, k: {k}) {{ k }} }}"),
            format!("{{ web(k: {k}) {{ id }} }}"),
        ] {
            let addr = addr.clone();
            let after = Duration::from_millis(20 + i % 80);
            clients.push(tokio::spawn(async move {
                hang_up(&addr, &q, after, i % 3 == 0).await
            }));
        }
    }
    for c in clients {
        c.await.expect("client");
    }
    upstream.delay_ms.store(0, Ordering::SeqCst);

    // Every call ends by its own 1 s timeout at the latest; then nothing is held.
    settle(&app, Duration::from_secs(5)).await;
    let started = Instant::now();
    check(&app.query(&normal.replace("k: 1)", "k: 2)")).await, 2);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "a normal query took {:?} after the hang-ups",
        started.elapsed()
    );
    settle(&app, Duration::from_secs(2)).await;
}

/// Reads one HTTP/1.1 response with a content-length body from `stream`.
async fn read_response(stream: &mut tokio::net::TcpStream) -> Option<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let status = head.get(9..12)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))?
            .trim()
            .parse()
            .ok()?;
        while buf.len() < end + 4 + len {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Some((status, buf[end + 4..end + 4 + len].to_vec()));
    }
}

/// One burst: `clients` keep-alive connections send dashboard operations for `length`; most
/// answers are read and checked, the others are hung up on mid-request, and at the end every
/// connection closes with its request still in flight, as a load generator's do.
async fn burst(
    addr: &str,
    ops: &Arc<Vec<(String, String, Value)>>,
    clients: usize,
    length: Duration,
) -> (usize, usize) {
    let (checked, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let until = Instant::now() + length;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (addr, ops) = (addr.to_string(), ops.clone());
            let (checked, dropped) = (checked.clone(), dropped.clone());
            tokio::spawn(async move {
                let mut n = c;
                'connect: while Instant::now() < until {
                    let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else {
                        continue;
                    };
                    loop {
                        n += 1;
                        let (name, query, expected) = &ops[n % ops.len()];
                        let body = json!({ "query": query }).to_string();
                        let request = format!(
                            "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(request.as_bytes()).await.is_err() {
                            continue 'connect;
                        }
                        if Instant::now() >= until || n % 4 == 0 {
                            // Hang up mid-request: sometimes at once, sometimes a little later.
                            tokio::time::sleep(Duration::from_micros((n as u64 * 397) % 3000))
                                .await;
                            if n % 8 == 0 {
                                let _ = stream.set_zero_linger();
                            }
                            dropped.fetch_add(1, Ordering::Relaxed);
                            continue 'connect;
                        }
                        let Some((status, body)) = read_response(&mut stream).await else {
                            continue 'connect;
                        };
                        let r: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        assert_eq!(status, 200, "{name}: {r}");
                        assert!(r.get("errors").is_none(), "{name}: {:.400}", r["errors"]);
                        assert_eq!(&r["data"], expected, "{name}");
                        checked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("burst client");
    }
    (
        checked.load(Ordering::Relaxed),
        dropped.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bursts_of_clients_that_hang_up_leave_every_trenggalek_source_answering() {
    let dir = copy_deployment(&repo_root());
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[admin]\ntoken = \"${env.ADMIN_TOKEN}\"\n",
    )
    .expect("simpul.toml");
    // Hundreds of clients, all on 127.0.0.1: one address, one budget.
    without_rate_limits(dir.path());
    let token = "burst-test-token";
    let app = TestApp::spawn(dir.path(), &[("ADMIN_TOKEN", token)]).await;
    let addr = app.url.trim_start_matches("http://").to_string();
    let ops = Arc::new(dashboard_operations());
    assert!(ops.len() >= 10, "one operation per domain");
    let invalidate = || async {
        let r = app
            .client
            .post(format!("{}/admin/cache/invalidate", app.url))
            .bearer_auth(token)
            .json(&json!({ "all": true }))
            .send()
            .await
            .expect("invalidate");
        assert!(r.status().is_success(), "invalidate: {}", r.status());
    };
    for round in 0..3 {
        // Invalidations during the burst make requests miss and load from the sources while
        // their clients hang up, as an OPD's update does under dashboard traffic.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flusher = {
            let (stop, url, client) = (stop.clone(), app.url.clone(), app.client.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let _ = client
                        .post(format!("{url}/admin/cache/invalidate"))
                        .bearer_auth(token)
                        .json(&json!({ "all": true }))
                        .send()
                        .await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let (checked, dropped) = burst(&addr, &ops, 100, Duration::from_millis(1500)).await;
        stop.store(true, Ordering::SeqCst);
        flusher.await.expect("flusher");
        assert!(
            checked > 0 && dropped > 0,
            "round {round}: {checked} checked, {dropped} hung up"
        );

        settle(&app, Duration::from_secs(10)).await;
        // A load ends a moment after its source call: its answer is stored first.
        let until = Instant::now() + Duration::from_secs(5);
        let cache = loop {
            let cache: Value = app
                .client
                .get(format!("{}/admin/cache", app.url))
                .bearer_auth(token)
                .send()
                .await
                .expect("cache stats")
                .json()
                .await
                .expect("cache stats json");
            if cache["loading"] == 0 || Instant::now() > until {
                break cache;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            cache["loading"], 0,
            "round {round}: cache loads left: {cache}"
        );
        // Every source answers again, from the source and not from the cache.
        invalidate().await;
        for (name, query, expected) in ops.iter() {
            let started = Instant::now();
            let r = app.query(query).await;
            assert!(
                r.get("errors").is_none(),
                "round {round}, {name}: {}",
                r["errors"]
            );
            assert_eq!(&r["data"], expected, "round {round}, {name}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "round {round}, {name} took {:?}",
                started.elapsed()
            );
        }
        for s in sources(&app).await {
            assert_eq!(s["status"], "UP", "round {round}: {s}");
        }
    }
}
