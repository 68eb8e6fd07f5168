//! The smallest deployment of the contract against a counting upstream: batching, request
//! memo, and sharing of identical calls across concurrent requests.

use std::sync::atomic::Ordering;

use crate::harness::{TestApp, Upstream, repo_root};

const QUERY: &str = "{ posts { id userId title user { id name email } } }";

#[tokio::test(flavor = "multi_thread")]
async fn batched_posts_with_users_cost_two_calls_and_match_each_parent() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn(
        &repo_root().join("tests/cases/blog_batched"),
        &[("UPSTREAM_URL", &upstream.url)],
    )
    .await;
    let r = app.query(QUERY).await;
    let posts = r["data"]["posts"].as_array().expect("posts");
    assert_eq!(posts.len(), 100);
    for p in posts {
        assert_eq!(p["user"]["id"], p["userId"], "each post gets its own user");
    }
    assert_eq!(upstream.calls(), 2, "{:?}", upstream.requests());
    let batched = upstream
        .requests()
        .into_iter()
        .find(|r| r.starts_with("/users"))
        .expect("users call");
    assert_eq!(
        batched.matches("id=").count(),
        10,
        "one id per distinct user: {batched}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unbatched_users_cost_one_call_per_distinct_user() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn(
        &repo_root().join("tests/cases/blog_unbatched"),
        &[("UPSTREAM_URL", &upstream.url)],
    )
    .await;
    let r = app.query(QUERY).await;
    assert_eq!(r["data"]["posts"][99]["user"]["name"], "User 10");
    assert_eq!(upstream.calls(), 1 + 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_identical_requests_share_upstream_calls() {
    let upstream = Upstream::start().await;
    // Slow enough that the 50 requests overlap.
    upstream.delay_ms.store(100, Ordering::SeqCst);
    let app = TestApp::spawn(
        &repo_root().join("tests/cases/blog_batched"),
        &[("UPSTREAM_URL", &upstream.url)],
    )
    .await;
    let requests = (0..50).map(|_| app.query(QUERY));
    let responses = futures::future::join_all(requests).await;
    for r in &responses {
        assert_eq!(r["data"]["posts"].as_array().map(Vec::len), Some(100));
        assert!(r.get("errors").is_none(), "{r}");
    }
    let calls = upstream.calls();
    assert!(
        calls < 50 * 2 / 5,
        "50 concurrent requests made {calls} upstream calls"
    );
}
