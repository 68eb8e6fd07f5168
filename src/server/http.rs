//! The GraphQL-over-HTTP side of `/graphql`: content negotiation, the request parameters,
//! and the status codes the spec asks for.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::limits::Refused;
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

pub(super) fn respond(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    r
}

/// A request-level failure: no `data`, 400 under graphql-response+json, 200 under JSON.
pub(super) fn request_error(media: MediaType, message: &str) -> Response {
    let status = match media {
        MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
        MediaType::Json => StatusCode::OK,
    };
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": ErrorCode::BadRequest.as_str() } }] });
    respond(status, media, body.to_string().into_bytes())
}

/// A document over one of `[limits]`: 400 under either media type, because nothing of it
/// was validated or run; the message names the limit and its value.
pub(super) fn over_limit(media: MediaType, refused: &Refused) -> Response {
    let body = json!({ "errors": [{ "message": refused.to_string(), "extensions": { "code": ErrorCode::BadRequest.as_str() } }] });
    respond(
        StatusCode::BAD_REQUEST,
        media,
        body.to_string().into_bytes(),
    )
}

pub(super) fn too_long(media: MediaType) -> Response {
    let body = json!({ "errors": [{ "message": "the request took too long", "extensions": { "code": ErrorCode::SourceTimeout.as_str() } }] });
    respond(StatusCode::OK, media, body.to_string().into_bytes())
}

pub(super) fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        "accept application/graphql-response+json or application/json",
    )
        .into_response()
}

pub(super) struct Params<'a> {
    pub query: Cow<'a, str>,
    pub operation_name: Option<Cow<'a, str>>,
    pub variables: Option<Value>,
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
}

pub(super) fn params_from_slice(body: &[u8]) -> Result<Params<'_>, &'static str> {
    if let Ok(b) = serde_json::from_slice::<Borrowed>(body)
        && body.first() == Some(&b'{')
        && b.extensions.is_none()
    {
        return Ok(Params {
            query: b.query,
            operation_name: b.operation_name,
            variables: b.variables.map(Value::Object),
        });
    }
    match serde_json::from_slice(body) {
        Ok(v) => params(v),
        Err(_) => Err("the request body is not valid JSON"),
    }
}

/// Checks the GraphQL request parameters the spec defines.
pub(super) fn params(body: Value) -> Result<Params<'static>, &'static str> {
    let Value::Object(mut map) = body else {
        return Err("the request body must be a JSON object");
    };
    let query = match map.remove("query") {
        Some(Value::String(q)) => Cow::Owned(q),
        Some(_) => return Err("'query' must be a string"),
        None => return Err("the request has no 'query'"),
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
    match map.remove("extensions") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err("'extensions' must be an object"),
    }
    Ok(Params {
        query,
        operation_name,
        variables,
    })
}

/// What `POST /graphql` needs of the request head, read in place (the `HeaderMap`
/// extractor would copy every header).
pub struct PostHead {
    pub media: Option<MediaType>,
    pub json: bool,
    pub authorization: Option<HeaderValue>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PostHead {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        Ok(PostHead {
            media: negotiate(&parts.headers),
            json: essence.eq_ignore_ascii_case(JSON),
            authorization: parts.headers.get(header::AUTHORIZATION).cloned(),
        })
    }
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
