//! Live data that survives OPD outages: stale-if-error, timeouts, the circuit breaker,
//! coalesced misses, the memory bound, the whole-response cache.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{TestApp, Upstream, copy_deployment, redis_url, repo_root};

/// The blog deployment with `extra` settings: connector TOML lines, @cache on its bindings.
fn blog(cache: &str, connector_extra: &str, simpul_toml: &str) -> tempfile::TempDir {
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    std::fs::write(
        dir.path().join("schema.graphql"),
        format!(
            r#"type Query {{
  posts: [Post!] @http(connector: "blog", path: "/posts") {cache}
  page(n: Int!): [Post!] @http(connector: "blog", path: "/pages/{{{{args.n}}}}") {cache}
  greet: String! @const(value: "Hello World!")
  live: [Post!] @http(connector: "blog", path: "/posts", query: [{{name: "live", value: "1"}}])
}}
type Post {{
  id: Int!
  userId: Int!
  title: String!
  user: User @http(connector: "blog", path: "/users", query: [{{name: "id", value: "{{{{parent.userId}}}}"}}], batch: {{key: "id"}}) {cache}
}}
type User {{ id: Int! name: String! }}
"#
        ),
    )
    .expect("schema");
    std::fs::write(dir.path().join("connectors/blog.toml"), format!("title = \"Blog\"\nopd = \"kominfo\"\n{connector_extra}\n[http]\nbase_url = \"${{env.UPSTREAM_URL}}\"\n")).expect("connector");
    std::fs::write(dir.path().join("simpul.toml"), simpul_toml).expect("simpul.toml");
    dir
}

fn source<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["extensions"]["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

const POSTS: &str = "{ posts { id user { name } } }";

/// Drops the `blog` connector's entries through the gateway at `url` (admin token `t0ken`).
async fn invalidate_blog(url: &str) {
    let r = reqwest::Client::new()
        .post(format!("{url}/admin/cache/invalidate"))
        .bearer_auth("t0ken")
        .json(&json!({ "connector": "blog" }))
        .send()
        .await
        .expect("invalidate");
    assert_eq!(r.status().as_u16(), 200, "invalidation of blog at {url}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_upstream_is_served_stale_to_50_clients_then_fresh_after_it_returns() {
    let upstream = Upstream::start().await;
    let dir = blog(
        r#"@cache(ttl: "1s", staleIfError: "1h")"#,
        "timeout = \"500ms\"\ncircuit_failures = 3\ncircuit_open = \"200ms\"",
        "",
    );
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    let warm = app.query(POSTS).await;
    assert_eq!(warm["data"]["posts"][0]["user"]["name"], "User 1");
    assert_eq!(source(&warm, "blog")["cache"], "MISS");

    upstream.kill();
    tokio::time::sleep(Duration::from_millis(1_100)).await; // past the TTL
    let client = reqwest::Client::new();
    let requests = (0..50).map(|_| {
        let client = client.clone();
        let url = format!("{}/graphql", app.url);
        async move {
            let r = client
                .post(url)
                .json(&json!({ "query": "{ posts { id user { name } } live { id } }" }))
                .send()
                .await
                .expect("send");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        }
    });
    for (status, r) in futures::future::join_all(requests).await {
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            r["data"]["posts"].as_array().map(Vec::len),
            Some(100),
            "{r}"
        );
        assert_eq!(r["data"]["posts"][99]["user"]["name"], "User 10");
        let blog = source(&r, "blog");
        assert_eq!(blog["cache"], "STALE", "{r}");
        assert!(
            blog["ageSeconds"].as_u64().is_some_and(|a| a >= 1),
            "the age is told: {blog}"
        );
        assert_eq!(
            r["data"]["live"],
            Value::Null,
            "an uncached field of the dead source is null"
        );
        let codes: Vec<&str> = r["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["extensions"]["code"].as_str())
            .collect();
        assert_eq!(codes, vec!["SOURCE_UNAVAILABLE"], "{r}");
    }

    upstream.restart().await;
    let started = Instant::now();
    loop {
        let r = app.query(POSTS).await;
        if source(&r, "blog")["cache"] == "MISS" {
            assert!(r.get("errors").is_none(), "{r}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "fresh data within one TTL of recovery: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_upstream_times_out_opens_the_circuit_and_closes_after_recovery() {
    let upstream = Upstream::start().await;
    upstream.delay_ms.store(2_000, Ordering::SeqCst);
    let dir = blog(
        "",
        "timeout = \"200ms\"\ncircuit_failures = 2\ncircuit_open = \"400ms\"\nretries = 0",
        "",
    );
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    for _ in 0..2 {
        let started = Instant::now();
        let r = app.query("{ live { id } }").await;
        let took = started.elapsed();
        assert_eq!(
            r["errors"][0]["extensions"]["code"], "SOURCE_TIMEOUT",
            "{r}"
        );
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_millis(1_000),
            "timed out at {took:?}"
        );
    }
    let health = app
        .query("{ sources { name status circuit lastError } }")
        .await;
    assert_eq!(
        health["data"]["sources"][0],
        json!({ "name": "blog", "status": "DOWN", "circuit": "OPEN", "lastError": "SOURCE_TIMEOUT" })
    );
    let started = Instant::now();
    let r = app.query("{ live { id } }").await;
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "an open circuit answers at once"
    );
    assert_eq!(r["errors"][0]["extensions"]["code"], "SOURCE_UNAVAILABLE");
    let ready = reqwest::get(format!("{}/readyz", app.url))
        .await
        .expect("readyz");
    assert_eq!(
        ready.status().as_u16(),
        200,
        "the gateway stays ready while a source is down"
    );
    assert_eq!(
        ready.json::<Value>().await.expect("json")["sources"][0]["status"],
        "DOWN"
    );

    upstream.delay_ms.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let r = app.query("{ live { id } }").await;
    assert_eq!(
        r["data"]["live"].as_array().map(Vec::len),
        Some(100),
        "the half-open probe succeeds: {r}"
    );
    let health = app
        .query("{ sources { status circuit lastSuccessAt latencyMs } }")
        .await;
    let s = &health["data"]["sources"][0];
    assert_eq!(
        (s["status"].as_str(), s["circuit"].as_str()),
        (Some("UP"), Some("CLOSED"))
    );
    assert!(
        s["lastSuccessAt"].is_string() && s["latencyMs"].is_number(),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_identical_misses_cost_one_upstream_call() {
    let upstream = Upstream::start().await;
    upstream.delay_ms.store(200, Ordering::SeqCst);
    let dir = blog(r#"@cache(ttl: "1m")"#, "", "");
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    let responses =
        futures::future::join_all((0..100).map(|_| app.query("{ posts { id } }"))).await;
    assert!(
        responses
            .iter()
            .all(|r| r["data"]["posts"].as_array().map(Vec::len) == Some(100))
    );
    assert_eq!(upstream.calls(), 1, "{:?}", upstream.requests());
    let r = app.query("{ posts { id } }").await;
    assert_eq!(source(&r, "blog")["cache"], "HIT");
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let upstream = Upstream::start().await;
    let dir = blog(
        r#"@cache(ttl: "300ms", staleWhileRevalidate: "1m")"#,
        "",
        "",
    );
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    app.query("{ posts { id } }").await;
    assert_eq!(upstream.calls(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    upstream.delay_ms.store(500, Ordering::SeqCst);
    let started = Instant::now();
    let r = app.query("{ posts { id } }").await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "served stale without waiting for the slow refresh"
    );
    assert_eq!(source(&r, "blog")["cache"], "STALE");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(upstream.calls(), 2, "one background refresh");
    let r = app.query("{ posts { id } }").await;
    assert_eq!(
        source(&r, "blog")["cache"],
        "HIT",
        "the refreshed value is fresh: {r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_memory_bound_holds_under_a_flood_of_distinct_keys() {
    let upstream = Upstream::start().await;
    let dir = blog(
        r#"@cache(ttl: "1h")"#,
        "",
        "[cache]\nmax_memory = \"2MiB\"\n[admin]\ntoken = \"${env.ADMIN_TOKEN}\"\n",
    );
    let app = TestApp::spawn(
        dir.path(),
        &[("UPSTREAM_URL", &upstream.url), ("ADMIN_TOKEN", "s3cret")],
    )
    .await;
    // About 20 KB per entry: 1,500 distinct pages would be ~30 MB unbounded.
    for chunk in (0..1_500).collect::<Vec<_>>().chunks(50) {
        futures::future::join_all(chunk.iter().map(|n| {
            app.query_vars(
                "query($n: Int!) { page(n: $n) { id title } }",
                json!({ "n": n }),
            )
        }))
        .await;
    }
    let stats: Value = app
        .client
        .get(format!("{}/admin/cache", app.url))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let bytes = stats["weightedBytes"].as_u64().expect("bytes");
    assert!(
        bytes <= 2 << 20,
        "cache holds {bytes} bytes, bound is 2 MiB: {stats}"
    );
    assert!(
        stats["entries"]
            .as_u64()
            .is_some_and(|e| e > 10 && e < 1_500),
        "{stats}"
    );
    let r = app
        .client
        .get(format!("{}/admin/cache", app.url))
        .send()
        .await
        .expect("stats");
    assert_eq!(r.status().as_u16(), 401, "admin needs the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_responses_of_cacheable_operations_are_reused_and_live_fields_are_not() {
    let upstream = Upstream::start().await;
    let dir = blog(r#"@cache(ttl: "1m")"#, "", "[cache]\nresponse = true\n");
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    let first = app.query(POSTS).await;
    assert_eq!(source(&first, "blog")["calls"], 2);
    let again = app.query("{  posts {\n id user { name } } }").await;
    assert_eq!(again["data"], first["data"], "same data");
    assert_eq!(source(&again, "blog")["cache"], "HIT");
    assert_eq!(
        source(&again, "blog")["calls"],
        0,
        "answered without running the operation"
    );
    assert_eq!(upstream.calls(), 2);
    // `live` has no cache policy: never reused whole.
    app.query("{ live { id } }").await;
    app.query("{ live { id } }").await;
    assert_eq!(upstream.calls(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_response_never_outlives_its_entries_and_invalidation_drops_it() {
    let upstream = Upstream::start().await;
    // The response cache is on by default: no [cache] section.
    let dir = blog(
        r#"@cache(ttl: "3s")"#,
        "",
        "[admin]\ntoken = \"${env.ADMIN_TOKEN}\"\n",
    );
    let app = TestApp::spawn(
        dir.path(),
        &[("UPSTREAM_URL", &upstream.url), ("ADMIN_TOKEN", "t0ken")],
    )
    .await;
    let posts_only = "{ posts { id title } }";
    let first = app.query(posts_only).await;
    assert_eq!(source(&first, "blog")["cache"], "MISS");
    let replayed = app.query(posts_only).await;
    assert_eq!(replayed["data"], first["data"]);
    assert_eq!(
        source(&replayed, "blog")["calls"],
        0,
        "replayed whole: {replayed}"
    );
    assert_eq!(upstream.calls(), 1);

    // Built 2 s into the posts entry's 3 s: kept only for what is left of it.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let other = "{ posts { title id } }";
    let built = app.query(other).await;
    assert_eq!(source(&built, "blog")["cache"], "HIT");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = app.query(other).await;
    assert_eq!(
        source(&after, "blog")["cache"],
        "MISS",
        "the posts entry expired, so its response did too: {after}"
    );
    assert_eq!(upstream.calls(), 2);

    // An invalidation drops whole responses too.
    app.query(other).await;
    assert_eq!(source(&app.query(other).await, "blog")["calls"], 0);
    invalidate_blog(&app.url).await;
    let fresh = app.query(other).await;
    assert_eq!(source(&fresh, "blog")["cache"], "MISS", "{fresh}");
    assert_eq!(upstream.calls(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateway_processes_share_redis_and_invalidations() {
    let upstream = Upstream::start().await;
    let dir = blog(
        r#"@cache(ttl: "1h")"#,
        "",
        "[cache.redis]\nurl = \"${env.REDIS_URL}\"\n[admin]\ntoken = \"${env.ADMIN_TOKEN}\"\n",
    );
    let env = [
        ("UPSTREAM_URL", upstream.url.as_str()),
        ("REDIS_URL", &redis_url()),
        ("ADMIN_TOKEN", "t0ken"),
    ];
    let (_a, a) = crate::cli::start(dir.path(), &env).await;
    let (_b, b) = crate::cli::start(dir.path(), &env).await;
    // Another run of this test may have left entries for this upstream's port: start clean.
    invalidate_blog(&a).await;
    upstream.reset();

    let first = crate::cli::post(&a, POSTS).await;
    assert_eq!(source(&first, "blog")["cache"], "MISS");
    assert_eq!(upstream.calls(), 2);
    let other = crate::cli::post(&b, POSTS).await;
    assert_eq!(other["data"], first["data"]);
    assert_eq!(
        source(&other, "blog")["cache"],
        "HIT",
        "b is served what a cached: {other}"
    );
    assert_eq!(upstream.calls(), 2, "no upstream call from b");

    invalidate_blog(&a).await;
    let started = Instant::now();
    loop {
        let r = crate::cli::post(&b, POSTS).await;
        if source(&r, "blog")["cache"] == "MISS" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the invalidation on a reaches b: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(upstream.calls(), 4);
    let r = crate::cli::post(&a, POSTS).await;
    assert_eq!(
        source(&r, "blog")["cache"],
        "HIT",
        "a reads what b fetched again through Redis: {r}"
    );
}

/// Two deployments on one Redis, each with its own `namespace`: neither reads the other's
/// entries nor hears its invalidations (without namespaces, b would HIT on what a fetched,
/// as in the test above, and drop its entry when a invalidates).
#[tokio::test(flavor = "multi_thread")]
async fn deployments_in_their_own_namespace_share_a_redis_and_nothing_else() {
    let upstream = Upstream::start().await;
    let dir = blog(
        r#"@cache(ttl: "1h")"#,
        "",
        "[cache.redis]\nurl = \"${env.REDIS_URL}\"\nnamespace = \"${env.NS}\"\n\
         [admin]\ntoken = \"${env.ADMIN_TOKEN}\"\n",
    );
    let (ns_a, ns_b) = (
        format!("test-a-{}", std::process::id()),
        format!("test-b-{}", std::process::id()),
    );
    let redis = redis_url();
    let shared = [
        ("UPSTREAM_URL", upstream.url.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("ADMIN_TOKEN", "t0ken"),
    ];
    let with = |ns| [shared.as_slice(), &[("NS", ns)]].concat();
    let (_a, a) = crate::cli::start(dir.path(), &with(ns_a.as_str())).await;
    let (_b, b) = crate::cli::start(dir.path(), &with(ns_b.as_str())).await;

    let first = crate::cli::post(&a, POSTS).await;
    assert_eq!(source(&first, "blog")["cache"], "MISS", "{first}");
    assert_eq!(upstream.calls(), 2);
    let other = crate::cli::post(&b, POSTS).await;
    assert_eq!(other["data"], first["data"]);
    assert_eq!(
        source(&other, "blog")["cache"],
        "MISS",
        "b does not read a's entries: {other}"
    );
    assert_eq!(upstream.calls(), 4, "b asked the upstream itself");

    invalidate_blog(&a).await;
    // Long enough for an invalidation on a shared channel to arrive (the test above
    // sees it within milliseconds).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kept = crate::cli::post(&b, POSTS).await;
    assert_eq!(
        source(&kept, "blog")["cache"],
        "HIT",
        "a's invalidation does not reach b: {kept}"
    );
    let dropped = crate::cli::post(&a, POSTS).await;
    assert_eq!(source(&dropped, "blog")["cache"], "MISS", "{dropped}");
    assert_eq!(upstream.calls(), 6);
}

#[tokio::test]
async fn a_namespace_that_is_not_a_plain_name_is_refused() {
    simpul::install_crypto();
    let dir = blog(
        r#"@cache(ttl: "1h")"#,
        "",
        "[cache.redis]\nurl = \"redis://127.0.0.1:6379\"\nnamespace = \"two words:*\"\n",
    );
    let problems: Vec<String> = simpul::check::check(dir.path())
        .await
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("simpul.toml:1:") && p.contains("namespace 'two words:*'")),
        "{problems:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_keeps_serving_from_memory_when_redis_is_down() {
    let upstream = Upstream::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let dir = blog(
        r#"@cache(ttl: "1h")"#,
        "",
        &format!("[cache.redis]\nurl = \"redis://127.0.0.1:{closed}\"\n"),
    );
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    let started = Instant::now();
    let first = app.query(POSTS).await;
    assert!(first.get("errors").is_none(), "{first}");
    let second = app.query(POSTS).await;
    assert_eq!(source(&second, "blog")["cache"], "HIT");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a dead Redis costs little: {:?}",
        started.elapsed()
    );
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_that_fails_to_connect_is_retried_within_its_timeout() {
    for (retries, recovers) in [(0, false), (5, true)] {
        let upstream = Upstream::start().await;
        let dir = blog("", &format!("timeout = \"3s\"\nretries = {retries}"), "");
        let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
        upstream.kill();
        let again = upstream.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            again.restart().await;
        });
        let r = app.query("{ live { id } }").await;
        if recovers {
            assert_eq!(
                r["data"]["live"].as_array().map(Vec::len),
                Some(100),
                "retried until the upstream came back: {r}"
            );
        } else {
            assert_eq!(
                r["errors"][0]["extensions"]["code"], "SOURCE_UNAVAILABLE",
                "no retry: {r}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_spreadsheet_is_reloaded_and_its_cached_answers_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("connectors")).expect("connectors");
    std::fs::create_dir_all(dir.path().join("data/sheet")).expect("data");
    std::fs::write(
        dir.path().join("schema.graphql"),
        "type Query { items: [Item!]! @sql(connector: \"sheet\", query: \"SELECT id, name FROM items ORDER BY id\") @cache(ttl: \"1h\") }\ntype Item { id: Int! name: String! }\n",
    )
    .expect("schema");
    std::fs::write(
        dir.path().join("connectors/sheet.toml"),
        "[file]\npath = \"data/sheet\"\n",
    )
    .expect("connector");
    let csv = dir.path().join("data/sheet/items.csv");
    std::fs::write(&csv, "id,name\n1,before\n").expect("csv");
    let app = TestApp::spawn(dir.path(), &[]).await;
    let r = app.query("{ items { id name } }").await;
    assert_eq!(
        r["data"]["items"],
        json!([{ "id": 1, "name": "before" }]),
        "{r}"
    );
    assert_eq!(
        source(&app.query("{ items { id name } }").await, "sheet")["cache"],
        "HIT"
    );

    std::fs::write(&csv, "id,name\n1,after\n2,new\n").expect("csv");
    let started = Instant::now();
    loop {
        let r = app.query("{ items { id name } }").await;
        if r["data"]["items"] == json!([{ "id": 1, "name": "after" }, { "id": 2, "name": "new" }]) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the new file is served despite the 1h TTL: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
