//! HTTP connector: JSON APIs of OPDs (and `file:` snapshots of them for offline demos).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::blueprint::settings::HttpFormat;
use crate::error::{ErrorCode, SourceError};

/// Characters left as they are in a path segment or query value: RFC 3986 unreserved.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes a request value for a URL path segment or query value: `/`, `?`, `#`, `%`, `&`
/// and everything else outside the unreserved set are escaped, so a value can never add a
/// segment or a parameter.
pub fn encode(value: &str, out: &mut String) {
    out.extend(utf8_percent_encode(value, UNRESERVED));
}

#[derive(Clone, Debug)]
pub struct HttpCall {
    pub method: reqwest::Method,
    /// Path and query, already encoded, relative to the base URL.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub select: Arc<[String]>,
}

impl HttpCall {
    pub fn key(&self) -> String {
        format!(
            "{} {}\u{1f}{:?}\u{1f}{:?}\u{1f}{}",
            self.method,
            self.target,
            self.headers,
            self.body,
            self.select.join(".")
        )
    }
}

enum Base {
    Url(String),
    Snapshots(PathBuf),
}

pub struct HttpSource {
    client: reqwest::Client,
    base: Base,
    headers: Vec<(String, String)>,
    format: HttpFormat,
    max_response_bytes: u64,
}

impl HttpSource {
    pub fn new(
        base_url: &str,
        headers: &[(String, String)],
        format: HttpFormat,
        timeout: Duration,
        max_response_bytes: u64,
        dir: &Path,
    ) -> Result<HttpSource, String> {
        let base = match base_url.strip_prefix("file:") {
            Some(path) => Base::Snapshots(dir.join(path)),
            None => {
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    return Err(format!(
                        "base_url '{base_url}' must start with http://, https:// or file:"
                    ));
                }
                Base::Url(base_url.trim_end_matches('/').to_string())
            }
        };
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(HttpSource {
            client,
            base,
            headers: headers.to_vec(),
            format,
            max_response_bytes,
        })
    }

    /// Whether it answers from `file:` snapshots rather than a live API.
    pub fn is_snapshot(&self) -> bool {
        matches!(self.base, Base::Snapshots(_))
    }

    pub async fn call(&self, name: &Arc<str>, call: HttpCall) -> Result<Vec<Value>, SourceError> {
        let body = match &self.base {
            Base::Url(base) => self.send(name, base, &call).await?,
            Base::Snapshots(dir) => {
                snapshot(name, dir, &call.target, self.max_response_bytes).await?
            }
        };
        let Some(body) = body else {
            return Ok(Vec::new());
        };
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            SourceError::new(
                ErrorCode::SourceBadResponse,
                name,
                format!("invalid JSON: {e}"),
            )
        })?;
        let value = match self.format {
            HttpFormat::Json => value,
            HttpFormat::BpsWebApi => super::bps::decode(&value)
                .map_err(|e| SourceError::new(ErrorCode::SourceBadResponse, name, e))?,
        };
        let selected = select(value, &call.select).ok_or_else(|| {
            SourceError::new(
                ErrorCode::SourceBadResponse,
                name,
                format!(
                    "select path '{}' not found in response",
                    call.select.join(".")
                ),
            )
        })?;
        Ok(match selected {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => vec![other],
        })
    }

    /// `Ok(None)` for 404: a lookup that found nothing is an empty answer, not a failure.
    async fn send(
        &self,
        name: &Arc<str>,
        base: &str,
        call: &HttpCall,
    ) -> Result<Option<bytes::Bytes>, SourceError> {
        let mut req = self
            .client
            .request(call.method.clone(), format!("{base}{}", call.target))
            .header("accept", "application/json");
        for (k, v) in self.headers.iter().chain(&call.headers) {
            req = req.header(k.as_str(), v.as_str());
        }
        if crate::telemetry::enabled() {
            let mut trace = reqwest::header::HeaderMap::new();
            crate::telemetry::inject(&mut trace);
            req = req.headers(trace);
        }
        if let Some(body) = &call.body {
            req = req
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let resp = req.send().await.map_err(|e| {
            let code = if e.is_timeout() {
                ErrorCode::SourceTimeout
            } else if e.is_builder() {
                ErrorCode::SourceError
            } else {
                ErrorCode::SourceUnavailable
            };
            SourceError::new(code, name, e)
        })?;
        let status = resp.status();
        // A read of nothing is no rows; a write that found no resource has failed.
        if status == reqwest::StatusCode::NOT_FOUND && call.method == reqwest::Method::GET {
            return Ok(None);
        }
        if !status.is_success() {
            let code = match status.as_u16() {
                502 | 503 => ErrorCode::SourceUnavailable,
                504 => ErrorCode::SourceTimeout,
                _ => ErrorCode::SourceError,
            };
            return Err(SourceError::new(
                code,
                name,
                format!("HTTP {status} for {} {}", call.method, call.target),
            )
            .with_status(status.as_u16()));
        }
        self.read_bounded(name, resp).await.map(Some)
    }

    /// The body of `resp`, refused as soon as it passes `max_response_bytes` (announced or
    /// read so far): an oversized answer is never held whole.
    async fn read_bounded(
        &self,
        name: &Arc<str>,
        mut resp: reqwest::Response,
    ) -> Result<bytes::Bytes, SourceError> {
        let max = self.max_response_bytes;
        let too_large = |n: u64| {
            SourceError::new(
                ErrorCode::SourceBadResponse,
                name,
                format!("answer of {n} bytes or more is over max_response_bytes = {max}"),
            )
        };
        if let Some(n) = resp.content_length()
            && n > max
        {
            return Err(too_large(n));
        }
        let read_error = |e: reqwest::Error| {
            let code = if e.is_timeout() {
                ErrorCode::SourceTimeout
            } else {
                ErrorCode::SourceBadResponse
            };
            SourceError::new(code, name, e)
        };
        let mut body = bytes::BytesMut::with_capacity(
            resp.content_length()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
        );
        while let Some(chunk) = resp.chunk().await.map_err(read_error)? {
            let read = (body.len() + chunk.len()) as u64;
            if read > max {
                return Err(too_large(read));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// Answers a call from a JSON snapshot: `DIR/<path>/<query>.json` when the call has a query
/// string (e.g. `datastore_search/resource_id=abc.json`), else `DIR/<path>.json`.
async fn snapshot(
    name: &Arc<str>,
    dir: &Path,
    target: &str,
    max: u64,
) -> Result<Option<bytes::Bytes>, SourceError> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let path = decode(path.trim_matches('/'));
    let query = decode(query);
    let unsafe_path = path
        .split('/')
        .any(|p| p == ".." || p == "." || p.contains('\\'));
    if unsafe_path || query.contains('/') || query.contains('\\') || query.starts_with('.') {
        return Err(SourceError::new(
            ErrorCode::SourceError,
            name,
            format!("refused snapshot path {target}"),
        ));
    }
    let mut candidates = Vec::with_capacity(2);
    if !query.is_empty() {
        candidates.push(dir.join(&path).join(format!("{query}.json")));
    }
    candidates.push(dir.join(format!("{path}.json")));
    for file in candidates {
        if let Ok(meta) = tokio::fs::metadata(&file).await
            && meta.len() > max
        {
            return Err(SourceError::new(
                ErrorCode::SourceBadResponse,
                name,
                format!(
                    "{}: {} bytes is over max_response_bytes = {max}",
                    file.display(),
                    meta.len()
                ),
            ));
        }
        match tokio::fs::read(&file).await {
            Ok(bytes) => return Ok(Some(bytes.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(SourceError::new(
                    ErrorCode::SourceUnavailable,
                    name,
                    format!("{}: {e}", file.display()),
                ));
            }
        }
    }
    Ok(None)
}

/// Follows `path` (object keys or array indexes) into `value`.
pub fn select(mut value: Value, path: &[String]) -> Option<Value> {
    for seg in path {
        value = match value {
            Value::Object(mut m) => m.remove(seg)?,
            Value::Array(mut a) => {
                let i: usize = seg.parse().ok()?;
                if i < a.len() {
                    a.swap_remove(i)
                } else {
                    return None;
                }
            }
            _ => return None,
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_traversal_and_separators() {
        let mut s = String::new();
        encode("../admin?x=1&y=2#f", &mut s);
        assert_eq!(s, "..%2Fadmin%3Fx%3D1%26y%3D2%23f");
        let mut s = String::new();
        encode("%27; DROP", &mut s);
        assert_eq!(s, "%2527%3B%20DROP");
    }

    #[test]
    fn selects_nested_paths() {
        let v = serde_json::json!({"result": {"records": [{"a": 1}, {"a": 2}]}});
        assert_eq!(
            select(v.clone(), &["result".into(), "records".into(), "1".into()]),
            Some(serde_json::json!({"a": 2}))
        );
        assert_eq!(select(v, &["nope".into()]), None);
    }
}
