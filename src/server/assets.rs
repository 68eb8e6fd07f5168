//! The pages the gateway serves itself, from memory and with nothing from the internet: the
//! deployment's dashboard (`/` and `/ui/<path>`, read from its folder at startup) and
//! GraphiQL (`/graphql` for a browser, its scripts at `/assets/graphiql/<file>`, embedded in
//! the binary from `assets/graphiql/`).
//!
//! Every page carries a Content-Security-Policy that lets it load and call only its own
//! origin, so a page that tried to reach a CDN would fail in the browser, not silently work
//! online and break offline.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// What the dashboard and GraphiQL pages may load and call: their own origin only (inline
/// styles are allowed: chart and editor libraries set them).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const GRAPHIQL_HTML: &str = include_str!("graphiql.html");

/// GraphiQL's files: (name, media type, bytes).
const GRAPHIQL: [(&str, &str, &[u8]); 5] = [
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/init.js"),
    ),
];

/// The GraphiQL page (for a browser's GET of `/graphql`).
pub fn graphiql_page() -> Response {
    page(
        "text/html; charset=utf-8",
        bytes::Bytes::from_static(GRAPHIQL_HTML.as_bytes()),
        None,
    )
}

/// `GET /assets/graphiql/<file>`.
pub async fn graphiql_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    static ETAGS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        GRAPHIQL
            .iter()
            .map(|(_, _, bytes)| format!("\"{}\"", crate::digest::sha256_hex(bytes)))
            .collect()
    });
    let Some(i) = GRAPHIQL.iter().position(|(name, _, _)| *name == file) else {
        return not_found();
    };
    let (Some((_, media, bytes)), Some(etag)) = (GRAPHIQL.get(i), ETAGS.get(i)) else {
        return not_found();
    };
    if fresh(&headers, etag) {
        return not_modified(etag);
    }
    page(media, bytes::Bytes::from_static(bytes), Some(etag))
}

/// `GET /`: the dashboard's `index.html`, or a pointer to GraphiQL when there is none.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.engine.blueprint.dashboard.is_none() {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This deployment has no dashboard (a dashboard/ folder with index.html); \
             GraphiQL is at /graphql.\n",
        )
            .into_response();
    }
    file(&state, "index.html", &headers)
}

/// `GET /ui/<path>`: a file of the dashboard's folder.
pub async fn ui(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    file(&state, &path, &headers)
}

fn file(state: &AppState, path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = state
        .engine
        .blueprint
        .dashboard
        .as_ref()
        .and_then(|d| d.files.get(path))
    else {
        return not_found();
    };
    if fresh(headers, &asset.etag) {
        return not_modified(&asset.etag);
    }
    page(asset.content_type, asset.bytes.clone(), Some(&asset.etag))
}

/// Whether the client's copy (`If-None-Match`) is `etag`.
fn fresh(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// A page or file; revalidated on every load (`no-cache` with its ETag), so a new binary's or
/// deployment's files are seen at once and unchanged ones cost a 304.
fn page(media: &str, body: bytes::Bytes, etag: Option<&str>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(media)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert(header::ETAG, tag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(h);
    response
}

fn not_modified(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(tag) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

fn not_found() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response();
    secure(response.headers_mut());
    response
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded GraphiQL files are the ones assets/graphiql/README.md names.
    #[test]
    fn vendored_graphiql_is_what_its_readme_says() {
        let readme = include_str!("../../assets/graphiql/README.md");
        for (name, _, bytes) in GRAPHIQL.iter().filter(|(n, _, _)| *n != "init.js") {
            let sum = crate::digest::sha256_hex(bytes);
            assert!(
                readme.contains(&format!("{sum}  {name}")),
                "{name} is not the file assets/graphiql/README.md lists (sha256 {sum})"
            );
        }
    }

    #[test]
    fn the_graphiql_page_loads_only_embedded_files() {
        for src in GRAPHIQL_HTML
            .split(['"', '\''])
            .filter(|s| s.starts_with("assets/"))
        {
            let name = src.trim_start_matches("assets/graphiql/");
            assert!(
                GRAPHIQL.iter().any(|(n, _, _)| *n == name),
                "{src} is not embedded"
            );
        }
        assert!(
            !GRAPHIQL_HTML.contains("http"),
            "no page loads from elsewhere"
        );
    }
}
