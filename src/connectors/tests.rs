//! A source's calls end, and give back what they took, whatever happens to their callers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Call, Param, Source};
use crate::blueprint::settings::{CachePolicy, ConnectorConfig, ConnectorKind};
use crate::error::ErrorCode;

/// A SQLite source of at most `max_connections`, each call bounded by `timeout`.
async fn sqlite(dir: &std::path::Path, max_connections: u32, timeout: Duration) -> Arc<Source> {
    std::fs::write(
        dir.join("seed.sql"),
        "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
    )
    .expect("seed");
    let config = ConnectorConfig {
        name: "lite".into(),
        file: "connectors/lite.toml".into(),
        title: "lite".into(),
        opd: "diskominfo".into(),
        timeout,
        max_concurrency: 32,
        retries: 0,
        circuit_failures: 1000,
        circuit_open: Duration::from_secs(1),
        max_response_bytes: crate::blueprint::settings::DEFAULT_MAX_RESPONSE_BYTES,
        kind: ConnectorKind::Sqlite {
            path: "lite.db".into(),
            seed: Some("seed.sql".into()),
            max_connections,
        },
        cache: CachePolicy::default(),
    };
    Arc::new(Source::build(config, dir).await.expect("source"))
}

fn select(sql: &str, k: i64) -> Call {
    Call::Sql {
        sql: sql.into(),
        params: vec![Param::Int(k)],
    }
}

const QUICK: &str = "SELECT ? AS k FROM t";
/// About 60 ms of work for SQLite.
const BUSY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT ? AS k, count(*) AS n FROM c";
/// Several hundred ms of work for SQLite even on an idle core of a fast machine (a million
/// rows took under 100 ms there: the statement beat the deadline it was meant to miss).
const SLOW: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000) SELECT ? AS k, count(*) AS n FROM c";

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_whose_connection_never_comes_back_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = sqlite(dir.path(), 1, Duration::from_millis(200)).await;
    let super::AnySource::Sql(sql) = &source.kind else {
        panic!("a SQL source");
    };
    // What a driver bug looks like: the pool's only connection is checked out for good.
    let leaked = match sql.pool() {
        super::sql::Pool::Sqlite(p) => p.acquire().await.expect("connection").leak(),
        _ => panic!("a SQLite pool"),
    };
    for k in 0..super::sql::RECYCLE_AFTER {
        let e = source
            .fetch(select(QUICK, k.into()), true)
            .await
            .expect_err("no connection is free");
        assert_eq!(e.code, ErrorCode::SourceTimeout, "{e:?}");
        assert!(e.detail.contains("no connection came free"), "{}", e.detail);
    }
    let rows = source
        .fetch(select(QUICK, 7), true)
        .await
        .expect("the fresh pool answers");
    assert_eq!(rows.rows[0]["k"], 7);
    let health = source.health_json();
    assert_eq!(health["poolRecycles"], 1, "{health}");
    assert!(health["poolRecycledAt"].is_string(), "{health}");
    assert_eq!(health["inFlight"], 0, "{health}");
    drop(leaked);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_pool_is_not_taken_for_a_wedged_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = sqlite(dir.path(), 1, Duration::from_millis(1500)).await;
    // Calls of ~60 ms for one connection, three timeouts' worth of them (measured, so a
    // fast machine gets more): the last ones wait past their timeout, but a connection is
    // handed out many times a second all along (even on a loaded machine).
    source
        .fetch(select(BUSY, -2), true)
        .await
        .expect("a first call");
    let started = std::time::Instant::now();
    source
        .fetch(select(BUSY, -1), true)
        .await
        .expect("one call");
    let one = started.elapsed().max(Duration::from_millis(1));
    let n = (3 * 1500 / one.as_millis().max(1)).clamp(40, 2000) as i64;
    let calls: Vec<_> = (0..n)
        .map(|k| {
            let source = source.clone();
            tokio::spawn(async move { source.fetch(select(BUSY, k), true).await })
        })
        .collect();
    let mut timed_out = 0;
    for c in calls {
        if c.await.expect("task").is_err() {
            timed_out += 1;
        }
    }
    assert!(timed_out > 0, "the pool was busy");
    let health = source.health_json();
    assert_eq!(health["poolRecycles"], 0, "{health}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_nobody_waits_for_runs_to_its_end_and_gives_everything_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A deadline no statement here comes near, even on a loaded machine (two connections
    // run the four slow statements in two rounds): the test is about giving back, not time.
    let source = sqlite(dir.path(), 2, Duration::from_secs(30)).await;
    // Callers that give up at once, with distinct and with shared keys.
    for k in 0..20 {
        let call = source.fetch(select(SLOW, k % 4), true);
        let _ = tokio::time::timeout(Duration::from_millis(5), call).await;
    }
    assert!(source.health_json()["inFlight"].as_u64() > Some(0));
    let settled = async {
        loop {
            let h = source.health_json();
            if h["inFlight"] == 0 && h["concurrencyInUse"] == 0 && h["poolOpen"] == h["poolIdle"] {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let h = tokio::time::timeout(Duration::from_secs(30), settled)
        .await
        .expect("the abandoned calls end and give back their permits and connections");
    assert_eq!(h["status"], "UP", "{h}");
    let rows = source.fetch(select(QUICK, 9), true).await.expect("answers");
    assert_eq!(rows.rows.first().map(|r| &r["k"]), Some(&Value::from(9)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_past_its_deadline_loses_its_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = sqlite(dir.path(), 1, Duration::from_millis(100)).await;
    let e = source
        .fetch(select(SLOW, 1), true)
        .await
        .expect_err("past the deadline");
    assert_eq!(e.code, ErrorCode::SourceTimeout);
    assert!(e.detail.contains("connection was closed"), "{}", e.detail);
    // The pool's one connection was still busy with that statement: it was let go, and the
    // next call gets a new one at once instead of waiting behind the old statement.
    let started = std::time::Instant::now();
    let rows = source.fetch(select(QUICK, 3), true).await.expect("answers");
    assert_eq!(rows.rows[0]["k"], 3);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}
