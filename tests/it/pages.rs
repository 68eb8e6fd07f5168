//! The pages the gateway serves itself: the Trenggalek dashboard at `/` (its files from
//! `dashboard/`, its operations by `documentId`) and GraphiQL at `/graphql`, all from the
//! gateway's own origin. The browser side is tests/it/dashboard.rs.

use reqwest::header;
use serde_json::{Value, json};

use crate::alerts::{SECRET, staff_token};
use crate::harness::{TestApp, copy_deployment, repo_root};

/// The `src`/`href` values of `html` that point inside the site (relative, not `data:`).
fn local_refs(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            if let Some(value) = part.split('"').next()
                && !value.starts_with("data:")
                && !value.starts_with('#')
            {
                refs.push(value.to_string());
            }
        }
    }
    refs
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.url))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The answer to running the persisted operation `id`, as staff when `token` is given.
async fn document(app: &TestApp, id: &str, token: Option<&str>) -> Value {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "documentId": id }));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_is_served_whole_from_the_gateway_with_a_strict_policy() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;
    let page = get(&app, "/").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    let refs = local_refs(&html);
    assert!(
        !refs.is_empty(),
        "the page loads its scripts and styles: {html}"
    );
    for r in &refs {
        assert!(
            !r.contains("://") && !r.starts_with("//"),
            "the page loads {r} from elsewhere"
        );
        let url = format!(
            "{}/{}",
            app.url,
            r.trim_start_matches("./").trim_start_matches('/')
        );
        let file = app.client.get(&url).send().await.expect("GET asset");
        assert_eq!(file.status(), 200, "{url}");
        let etag = file.headers()[header::ETAG].clone();
        // Unchanged files cost a 304 on the next load.
        let again = app
            .client
            .get(&url)
            .header(header::IF_NONE_MATCH, etag)
            .send()
            .await
            .expect("GET again");
        assert_eq!(again.status(), 304, "{url}");
    }
    for outside in [
        "/ui/../simpul.toml",
        "/ui/%2e%2e/simpul.toml",
        "/ui/operations/overview.graphql",
        "/ui/nothing.js",
    ] {
        let r = get(&app, outside).await;
        assert_eq!(r.status(), 404, "{outside}");
    }
}

/// Every operation of dashboard/operations is known by its `documentId` to any caller, and
/// every query without variables answers a staff caller without errors (the staff-only ones
/// read fields the public view does not have).
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboards_operations_run_by_document_id() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    let token = staff_token("pages");
    let folder = repo_root().join("dashboard/operations");
    let mut ran = 0;
    for entry in std::fs::read_dir(&folder)
        .expect("dashboard/operations")
        .flatten()
    {
        let path = entry.path();
        let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text: String = std::fs::read_to_string(&path)
            .expect("operation")
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let anonymous = document(&app, id, None).await;
        assert_ne!(
            anonymous["errors"][0]["message"], "PersistedQueryNotFound",
            "{id}: {anonymous}"
        );
        let needs_variables = text
            .split('{')
            .next()
            .is_some_and(|head| head.contains('$'));
        if text.trim_start().starts_with("query") && !needs_variables {
            let staff = document(&app, id, Some(&token)).await;
            assert!(staff["errors"].is_null(), "{id}: {staff}");
            assert!(staff["data"].is_object(), "{id}: {staff}");
            ran += 1;
        }
    }
    assert!(
        ran >= 3,
        "the dashboard reads through its own operations ({ran} ran)"
    );
    let unknown = document(&app, "no-such-operation", None).await;
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_comes_from_the_gateway_itself() {
    let app = TestApp::spawn(
        &repo_root().join("tests/cases/blog_batched"),
        &[("UPSTREAM_URL", "http://127.0.0.1:9")],
    )
    .await;
    let page = app
        .client
        .get(format!("{}/graphql", app.url))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .expect("GET /graphql");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .is_ok_and(|c| c.contains("script-src 'self'"))
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("GraphiQL"), "{html}");
    let refs = local_refs(&html);
    assert!(
        refs.iter().any(|r| r.ends_with("graphiql.min.js")),
        "{refs:?}"
    );
    for r in &refs {
        assert!(!r.contains("://"), "GraphiQL loads {r} from elsewhere");
        let file = get(&app, &format!("/{r}")).await;
        assert_eq!(file.status(), 200, "{r}");
        assert!(!file.bytes().await.expect("bytes").is_empty(), "{r}");
    }
    // A deployment without a dashboard says where to go instead.
    let root = get(&app, "/").await;
    assert_eq!(root.status(), 404);
    assert!(root.text().await.expect("text").contains("/graphql"));
}
