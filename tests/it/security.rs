//! `[security]` on the public endpoint, each with the case that must be refused: CSRF
//! prevention, CORS, rate limits per client and tier (behind a trusted proxy too),
//! automatic persisted queries, the PUBLIC safelist, and introspection and suggestions per
//! tier.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use simpul::access::Tier;
use tempfile::TempDir;

use crate::harness::{TestApp, copy_deployment, repo_root};

const SECRET: &str = "security-test-secret-that-is-long-enough-0123";
const QUERY: &str = "{ regency { code name } }";

/// The repository's deployment with `settings` as its simpul.toml (plus the token secret).
async fn deploy(settings: &str) -> (TempDir, TestApp) {
    let dir = copy_deployment(&repo_root());
    std::fs::write(
        dir.path().join("simpul.toml"),
        format!("[auth]\njwt_secret = \"${{env.SIMPUL_JWT_SECRET}}\"\n{settings}"),
    )
    .expect("write simpul.toml");
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    (dir, app)
}

fn staff(sub: &str) -> String {
    simpul::auth::mint(
        SECRET,
        Tier::Internal,
        None,
        Some(sub),
        Duration::from_secs(600),
        None,
        None,
    )
    .expect("mint")
}

async fn post(app: &TestApp, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut r = app
        .client
        .post(format!("{}/graphql", app.url))
        .header(ACCEPT, "application/graphql-response+json")
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The answer `QUERY` must get.
#[track_caller]
fn assert_regency((status, body): &(u16, Value)) {
    assert_eq!(*status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["regency"]["code"], "35.03", "{body}");
    assert_eq!(
        body["data"]["regency"]["name"], "Kabupaten Trenggalek",
        "{body}"
    );
}

#[track_caller]
fn assert_code(body: &Value, code: &str) {
    assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_a_page_could_forge_are_refused() {
    let (_dir, app) = deploy("").await;
    let url = format!("{}/graphql", app.url);
    let get = |extra: Option<(&'static str, &'static str)>| {
        let mut r = app
            .client
            .get(&url)
            .query(&[("query", QUERY)])
            .header(ACCEPT, "application/json");
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.send()
    };
    // A plain GET (an <img> or a link could send it) is refused before anything runs…
    let r = get(None).await.expect("send");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap_or_default().contains("cross-site"));
    // …but one that forced a preflight runs.
    for header in [
        ("apollo-require-preflight", "true"),
        ("x-apollo-operation-name", "Regency"),
        ("content-type", "application/json"),
    ] {
        let r = get(Some(header)).await.expect("send");
        let status = r.status().as_u16();
        assert_regency(&(status, r.json().await.expect("json")));
    }
    // POSTs a form or a page can send without a preflight are refused: multipart (file
    // uploads) for want of a preflight header, the others as unsupported.
    for (content_type, status, says) in [
        ("text/plain", 415, "needs content-type: application/json"),
        (
            "application/x-www-form-urlencoded",
            415,
            "needs content-type: application/json",
        ),
        ("multipart/form-data; boundary=x", 400, "cross-site"),
    ] {
        let r = app
            .client
            .post(&url)
            .header(CONTENT_TYPE, content_type)
            .body(json!({ "query": QUERY }).to_string())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), status, "{content_type}");
        let body = r.text().await.unwrap_or_default();
        assert!(body.contains(says), "{content_type}: {body}");
    }

    // Switched off, plain GETs run.
    let (_dir, open) = deploy("[security]\ncsrf_prevention = false\n").await;
    let r = open
        .client
        .get(format!("{}/graphql", open.url))
        .query(&[("query", QUERY)])
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    assert_regency(&(status, r.json().await.expect("json")));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_configured_origins_get_a_cors_grant() {
    let (_dir, app) = deploy("[security]\ncors_origins = [\"https://apps.example.id\"]\n").await;
    let url = format!("{}/graphql", app.url);
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let ok = preflight("https://apps.example.id").await.expect("send");
    assert!(ok.status().is_success(), "{}", ok.status());
    let h = ok.headers();
    assert_eq!(
        h.get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://apps.example.id")
    );
    let allowed = h
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );

    let evil = preflight("https://evil.example").await.expect("send");
    assert!(
        evil.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        evil.headers()
    );

    // The request itself carries the grant for the allowed origin only.
    for (origin, granted) in [
        ("https://apps.example.id", true),
        ("https://evil.example", false),
    ] {
        let r = app
            .client
            .post(&url)
            .header("origin", origin)
            .json(&json!({ "query": QUERY }))
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.headers().get("access-control-allow-origin").is_some(),
            granted,
            "{origin}"
        );
        let status = r.status().as_u16();
        assert_regency(&(status, r.json().await.expect("json")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_client_gets_its_tiers_budget_then_429() {
    let (_dir, app) =
        deploy("[security.rate_limits]\npublic = \"5/m\"\ninternal = \"3/m\"\n").await;
    let body = json!({ "query": QUERY });
    for _ in 0..5 {
        assert_regency(&post(&app, body.clone(), None).await);
    }
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 429);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=12).contains(&retry), "{retry}");
    assert_code(&r.json().await.expect("json"), "RATE_LIMITED");

    // Staff are counted by their token's sub, with their tier's budget, whatever the
    // address: the public budget being spent does not touch them.
    let (ani, budi) = (staff("ani"), staff("budi"));
    for _ in 0..3 {
        assert_regency(&post(&app, body.clone(), Some(&ani)).await);
    }
    let (status, refused) = post(&app, body.clone(), Some(&ani)).await;
    assert_eq!(status, 429, "{refused}");
    assert_regency(&post(&app, body, Some(&budi)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_proxy_the_client_is_the_last_forwarded_address() {
    let (_dir, app) = deploy(
        "[security]\nclient_ip_header = \"x-forwarded-for\"\n[security.rate_limits]\npublic = \"2/m\"\n",
    )
    .await;
    let send = |xff: &'static str| {
        app.client
            .post(format!("{}/graphql", app.url))
            .header("x-forwarded-for", xff)
            .json(&json!({ "query": QUERY }))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(send("203.0.113.7").await.expect("send").status(), 200);
    }
    assert_eq!(send("203.0.113.7").await.expect("send").status(), 429);
    // A client cannot escape by prepending addresses: the proxy appends the real one.
    assert_eq!(
        send("198.51.100.1, 203.0.113.7")
            .await
            .expect("send")
            .status(),
        429
    );
    // Another client behind the same proxy has its own budget.
    assert_eq!(send("203.0.113.8").await.expect("send").status(), 200);
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_persisted_queries_register_by_hash_then_run_by_hash() {
    let (_dir, app) = deploy("").await;
    let hash = sha256(QUERY);
    let by_hash =
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    let (status, body) = post(&app, by_hash.clone(), None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");

    let mut register = by_hash.clone();
    register["query"] = json!(QUERY);
    assert_regency(&post(&app, register, None).await);
    assert_regency(&post(&app, by_hash.clone(), None).await);

    // GET, as Apollo clients send it once the hash is known.
    let r = app
        .client
        .get(format!("{}/graphql", app.url))
        .query(&[("extensions", by_hash["extensions"].to_string())])
        .header("apollo-require-preflight", "true")
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    assert_regency(&(status, r.json().await.expect("json")));

    // A hash that is not the text's is refused, and registers nothing.
    let other = "{ regency { code } }";
    let lie = json!({ "query": other, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256("{ x }") } } });
    let (status, body) = post(&app, lie, None).await;
    assert_eq!(status, 400, "{body}");
    assert_code(&body, "BAD_REQUEST");
    let probe = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256("{ x }") } } });
    assert_eq!(
        post(&app, probe, None).await.1["errors"][0]["message"],
        "PersistedQueryNotFound"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_safelist_anonymous_callers_run_only_listed_operations() {
    let dir = copy_deployment(&repo_root());
    std::fs::create_dir_all(dir.path().join("persisted")).expect("mkdir");
    std::fs::write(
        dir.path().join("persisted/regency.graphql"),
        format!("{QUERY}\n"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[auth]\njwt_secret = \"${env.SIMPUL_JWT_SECRET}\"\n[security]\nsafelist = \"persisted\"\n",
    )
    .expect("write");
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;

    // Listed: by exact text, by file name, by hash.
    assert_regency(&post(&app, json!({ "query": QUERY }), None).await);
    assert_regency(&post(&app, json!({ "documentId": "regency" }), None).await);
    let hash = sha256(QUERY);
    assert_regency(
        &post(
            &app,
            json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } }),
            None,
        )
        .await,
    );

    // Not listed: refused for the public, whether sent as text or registered by APQ.
    let other = "{ regency { code name level } }";
    let (status, body) = post(&app, json!({ "query": other }), None).await;
    assert_eq!(status, 403, "{body}");
    assert_code(&body, "FORBIDDEN");
    let apq = json!({ "query": other, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256(other) } } });
    assert_eq!(post(&app, apq, None).await.0, 403);

    // Staff run anything.
    let (status, body) = post(&app, json!({ "query": other }), Some(&staff("ani"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["regency"]["level"], "REGENCY", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_and_suggestions_are_switched_per_tier() {
    let (_dir, app) = deploy(
        "[security]\nintrospection = [\"internal\", \"restricted\"]\nsuggestions = [\"internal\"]\n",
    )
    .await;
    let schema = json!({ "query": "{ __schema { queryType { name } } }" });
    let fragment = json!({ "query": "query { ...T } fragment T on Query { __type(name: \"Region\") { name } }" });
    for body in [&schema, &fragment] {
        let (status, refused) = post(&app, body.clone(), None).await;
        assert_eq!(status, 400, "{refused}");
        assert_code(&refused, "BAD_REQUEST");
        assert!(
            refused["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("introspection is disabled for PUBLIC"),
            "{refused}"
        );
    }
    let (status, body) = post(&app, schema, Some(&staff("ani"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");

    let typo = json!({ "query": "{ regency { nam } }" });
    let (_, public) = post(&app, typo.clone(), None).await;
    let (_, internal) = post(&app, typo, Some(&staff("ani"))).await;
    let message = |b: &Value| {
        b["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(message(&public).contains("Unknown field"), "{public}");
    assert!(!message(&public).contains("Did you mean"), "{public}");
    assert!(message(&internal).contains("Did you mean"), "{internal}");
}
