//! The GraphQL-over-HTTP side of `/graphql`: content negotiation, the request parameters,
//! and the status codes the spec asks for.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::operation::{Answer, Rejected};
use crate::error::ErrorCode;

pub(super) const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
pub(super) const JSON: &str = "application/json";

/// The media type the client accepts, or `None` when it accepts neither JSON type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum MediaType {
    GraphqlResponse,
    Json,
}

impl MediaType {
    fn content_type(self) -> &'static str {
        match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }
}

pub(super) fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        let ty = match media.as_str() {
            GRAPHQL_RESPONSE => MediaType::GraphqlResponse,
            JSON | "*/*" | "application/*" => MediaType::Json,
            _ => continue,
        };
        if q > 0.0
            && best.is_none_or(|(bq, bt)| {
                q > bq || (q == bq && ty == MediaType::GraphqlResponse && bt == MediaType::Json)
            })
        {
            best = Some((q, ty));
        }
    }
    best.map(|(_, t)| t)
}

/// Whether the client asks for an event stream (GraphQL over SSE) rather than one JSON
/// response.
pub(super) fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut pieces = range.split(';');
            let media = pieces.next().unwrap_or("").trim();
            let refused = pieces.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case(EVENT_STREAM) && !refused
        })
}

const EVENT_STREAM: &str = "text/event-stream";

pub(super) fn respond(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    r
}

/// A request that is not a GraphQL request (a body that is not JSON, parameters of the wrong
/// type): 400 whatever the client accepts, as the GraphQL-over-HTTP spec recommends.
pub(super) fn request_error(media: MediaType, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": ErrorCode::BadRequest.as_str() } }] });
    respond(
        StatusCode::BAD_REQUEST,
        media,
        body.to_string().into_bytes(),
    )
}

/// How HTTP answers an operation refused before it ran.
pub(super) fn rejected(media: MediaType, r: Rejected) -> Response {
    let status = match r.answer {
        Answer::BadRequest => StatusCode::BAD_REQUEST,
        Answer::RequestErrors => return request_errors(media, r.errors),
        Answer::Forbidden => StatusCode::FORBIDDEN,
        Answer::PostOnly => {
            let body = json!({ "errors": r.errors }).to_string().into_bytes();
            let mut r = respond(StatusCode::METHOD_NOT_ALLOWED, MediaType::Json, body);
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
    };
    let body = json!({ "errors": r.errors }).to_string().into_bytes();
    respond(status, media, body)
}

/// A refusal outside GraphQL (wrong method, content type or size): JSON with a code, so
/// that every client can read why.
pub(super) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body =
        json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

pub(super) fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        "accept application/graphql-response+json or application/json",
    )
        .into_response()
}

pub(super) struct Params<'a> {
    /// `None` when the client sent only the id of a persisted operation.
    pub query: Option<Cow<'a, str>>,
    pub operation_name: Option<Cow<'a, str>>,
    pub variables: Option<Value>,
    /// `extensions.persistedQuery.sha256Hash`, or `documentId`.
    pub persisted: Option<String>,
    /// `extensions.cost`: the client asks for the operation's estimated cost.
    pub wants_cost: bool,
}

impl Params<'_> {
    /// The same parameters, owning their text: for an operation that outlives its request
    /// body (a stream).
    pub(super) fn into_owned(self) -> Params<'static> {
        Params {
            query: self.query.map(|q| Cow::Owned(q.into_owned())),
            operation_name: self.operation_name.map(|n| Cow::Owned(n.into_owned())),
            variables: self.variables,
            persisted: self.persisted,
            wants_cost: self.wants_cost,
        }
    }
}

/// The request parameters as most clients send them, read without building a JSON tree;
/// anything else goes through [`params`], which says what is wrong.
#[derive(serde::Deserialize)]
struct Borrowed<'a> {
    #[serde(borrow)]
    query: Cow<'a, str>,
    #[serde(rename = "operationName", default, borrow)]
    operation_name: Option<Cow<'a, str>>,
    #[serde(default)]
    variables: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    extensions: Option<serde::de::IgnoredAny>,
    #[serde(rename = "documentId", default)]
    document_id: Option<serde::de::IgnoredAny>,
}

pub(super) fn params_from_slice(body: &[u8]) -> Result<Params<'_>, &'static str> {
    if let Ok(b) = serde_json::from_slice::<Borrowed>(body)
        && body.first() == Some(&b'{')
        && b.extensions.is_none()
        && b.document_id.is_none()
    {
        return Ok(Params {
            query: Some(b.query),
            operation_name: b.operation_name,
            variables: b.variables.map(Value::Object),
            persisted: None,
            wants_cost: false,
        });
    }
    match serde_json::from_slice(body) {
        Ok(v) => params(v),
        Err(_) => Err("the request body is not valid JSON"),
    }
}

/// Checks the GraphQL request parameters the spec defines, and the extensions Simpul reads.
pub(super) fn params(body: Value) -> Result<Params<'static>, &'static str> {
    let Value::Object(mut map) = body else {
        return Err("the request body must be a JSON object");
    };
    let query = match map.remove("query") {
        Some(Value::String(q)) => Some(Cow::Owned(q)),
        None | Some(Value::Null) => None,
        Some(_) => return Err("'query' must be a string"),
    };
    let operation_name = match map.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Cow::Owned(s)),
        Some(_) => return Err("'operationName' must be a string"),
    };
    let variables = match map.remove("variables") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => return Err("'variables' must be an object"),
    };
    let mut persisted = match map.remove("documentId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => return Err("'documentId' must be a string"),
    };
    let mut wants_cost = false;
    match map.remove("extensions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(ext)) => {
            if let Some(pq) = ext.get("persistedQuery") {
                match (pq.get("version"), pq.get("sha256Hash")) {
                    (Some(v), Some(Value::String(hash))) if v == 1 => {
                        persisted = Some(hash.clone())
                    }
                    _ => {
                        return Err(
                            "'extensions.persistedQuery' must be {\"version\": 1, \"sha256Hash\": \"…\"}",
                        );
                    }
                }
            }
            wants_cost = ext.get("cost").is_some_and(|c| c == true);
        }
        Some(_) => return Err("'extensions' must be an object"),
    }
    if query.is_none() && persisted.is_none() {
        return Err("the request has no 'query'");
    }
    Ok(Params {
        query,
        operation_name,
        variables,
        persisted,
        wants_cost,
    })
}

/// Whether a browser must have asked the server (CORS preflight) before sending this
/// request: it has a content type other than the three a form can send, or one of the
/// headers that clients add for this purpose. Without it a cross-site page could make a
/// visitor's browser send the request (CSRF).
pub(super) fn preflighted(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let simple = matches!(
        content_type.as_deref(),
        None | Some("text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data")
    );
    !simple
        || PREFLIGHT_HEADERS
            .iter()
            .any(|h| headers.get(*h).is_some_and(|v| !v.is_empty()))
}

const MULTIPART: &str = "multipart/form-data";

/// Whether the body is `multipart/form-data` (a GraphQL multipart request).
pub(super) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(MULTIPART))
}

/// Headers a page cannot send cross-site without a preflight; Apollo clients send them.
pub(super) const PREFLIGHT_HEADERS: [&str; 2] =
    ["apollo-require-preflight", "x-apollo-operation-name"];

pub(super) fn csrf_refused() -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        "this request could be a cross-site request forgery: send it with content-type \
         application/json, or with a header `apollo-require-preflight: true`",
    )
}

/// What `POST /graphql` needs of the request head, read in place (the `HeaderMap`
/// extractor would copy every header).
pub struct PostHead {
    pub media: Option<MediaType>,
    /// The client asks for an event stream (GraphQL over SSE).
    pub stream: bool,
    pub json: bool,
    /// `multipart/form-data`: a GraphQL multipart request (file uploads), with its
    /// boundary when the content type names one.
    pub multipart: Option<Option<String>>,
    /// The request could not have been sent cross-site without a preflight ([`preflighted`]).
    pub preflighted: bool,
    pub authorization: Option<HeaderValue>,
    pub ip: Option<IpAddr>,
}

impl axum::extract::FromRequestParts<AppState> for PostHead {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        Ok(PostHead {
            media: negotiate(&parts.headers),
            stream: wants_event_stream(&parts.headers),
            json: essence.eq_ignore_ascii_case(JSON),
            multipart: essence
                .eq_ignore_ascii_case(MULTIPART)
                .then(|| multer::parse_boundary(content_type).ok()),
            preflighted: preflighted(&parts.headers),
            authorization: parts.headers.get(header::AUTHORIZATION).cloned(),
            ip: client_ip(parts, state),
        })
    }
}

/// The client's address: the last entry of `[security] client_ip_header` when set (what the
/// trusted proxy appended), else the connection's peer.
pub(super) fn client_ip(parts: &axum::http::request::Parts, state: &AppState) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(name) = &state.engine.blueprint.security.client_ip_header else {
        return peer;
    };
    parts
        .headers
        .get_all(name.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .rfind(|v| !v.trim().is_empty())
        .and_then(|v| v.trim().parse().ok())
        .or(peer)
}

/// Request errors (nothing ran): 400 under graphql-response+json, 200 under JSON, no `data`.
pub(super) fn request_errors(media: MediaType, errors: Vec<Value>) -> Response {
    let status = match media {
        MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
        MediaType::Json => StatusCode::OK,
    };
    respond(
        status,
        media,
        json!({ "errors": errors }).to_string().into_bytes(),
    )
}
