//! GraphQL over HTTP (graphql-over-http spec): content negotiation, the 4xx the spec asks
//! for, GET never running a mutation, and `extensions.sources` on every response.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Variables;
use async_graphql_parser::types::{DocumentOperations, OperationType};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::limits::{self, Refused};
use crate::cache::response::{ResponseCache, Validity};
use crate::error::ErrorCode;
use crate::resolve::request::RequestState;
use crate::resolve::request::write_cached_sources;

/// Set when a compiled plan answered, not the generic executor.
const SIMPUL_PLAN: header::HeaderName = header::HeaderName::from_static("simpul-plan");
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type the client accepts, or `None` when it accepts neither JSON type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
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

fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
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

fn respond(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    r
}

/// A request-level failure: no `data`, 400 under graphql-response+json, 200 under JSON.
fn request_error(media: MediaType, message: &str) -> Response {
    let status = match media {
        MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
        MediaType::Json => StatusCode::OK,
    };
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": ErrorCode::BadRequest.as_str() } }] });
    respond(status, media, body.to_string().into_bytes())
}

/// A document over one of `[limits]`: 400 under either media type, because nothing of it
/// was validated or run; the message names the limit and its value.
fn over_limit(media: MediaType, refused: &Refused) -> Response {
    let body = json!({ "errors": [{ "message": refused.to_string(), "extensions": { "code": ErrorCode::BadRequest.as_str() } }] });
    respond(
        StatusCode::BAD_REQUEST,
        media,
        body.to_string().into_bytes(),
    )
}

fn too_long(media: MediaType) -> Response {
    let body = json!({ "errors": [{ "message": "the request took too long", "extensions": { "code": ErrorCode::SourceTimeout.as_str() } }] });
    respond(StatusCode::OK, media, body.to_string().into_bytes())
}

fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        "accept application/graphql-response+json or application/json",
    )
        .into_response()
}

struct Params<'a> {
    query: Cow<'a, str>,
    operation_name: Option<Cow<'a, str>>,
    variables: Option<Value>,
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

fn params_from_slice(body: &[u8]) -> Result<Params<'_>, &'static str> {
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
fn params(body: Value) -> Result<Params<'static>, &'static str> {
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
    media: Option<MediaType>,
    json: bool,
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
        })
    }
}

pub async fn post(State(state): State<AppState>, head: PostHead, body: Bytes) -> Response {
    let Some(media) = head.media else {
        return not_acceptable();
    };
    if !head.json {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST /graphql needs content-type: application/json",
        )
            .into_response();
    }
    match params_from_slice(&body) {
        Ok(p) => execute(&state, media, p).await,
        Err(msg) => request_error(media, msg),
    }
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !query.contains_key("query") {
        return Html(
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .title("Simpul")
                .finish(),
        )
        .into_response();
    }
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let mut body = serde_json::Map::new();
    for key in ["query", "operationName"] {
        if let Some(v) = query.get(key) {
            body.insert(key.into(), Value::String(v.clone()));
        }
    }
    for key in ["variables", "extensions"] {
        if let Some(v) = query.get(key) {
            match serde_json::from_str(v) {
                Ok(parsed) => body.insert(key.into(), parsed),
                Err(_) => {
                    return request_error(
                        media,
                        "GET parameters 'variables' and 'extensions' must be JSON",
                    );
                }
            };
        }
    }
    let p = match params(Value::Object(body)) {
        Ok(p) => p,
        Err(msg) => return request_error(media, msg),
    };
    // Finding the operation's type parses the text: the scan makes that safe first.
    if let Err(refused) = limits::scan(&p.query, &state.engine.blueprint.limits) {
        return over_limit(media, &refused);
    }
    if let Some(kind) = operation_kind(&p.query, p.operation_name.as_deref())
        && kind != OperationType::Query
    {
        let mut r = (
            StatusCode::METHOD_NOT_ALLOWED,
            "GET runs queries only: send mutations with POST",
        )
            .into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    execute(&state, media, p).await
}

/// The type of the operation that would run, when the document parses.
fn operation_kind(query: &str, name: Option<&str>) -> Option<OperationType> {
    let doc = async_graphql_parser::parse_query(query).ok()?;
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

async fn execute(state: &AppState, media: MediaType, p: Params<'_>) -> Response {
    let plans = state.engine.blueprint.compiled_plans;
    // A plan, and this request's variables coerced for it; variables it cannot take
    // simply send the request through async-graphql.
    let known = match plans {
        true => state.planner.get(&p.query, p.operation_name.as_deref()),
        false => None,
    };
    let plan = known
        .clone()
        .flatten()
        .and_then(|plan| Some((plan.variables(p.variables.as_ref())?, plan)));
    // An operation whose plan reads a binding without a cache policy is never replayed:
    // skip building its response key.
    let replayable = plan.as_ref().is_none_or(|(_, plan)| plan.replayable());
    let response_key = match (&state.responses, replayable) {
        (Some(_), true) => Some(ResponseCache::key(
            &p.query,
            p.operation_name.as_deref(),
            p.variables.as_ref(),
        )),
        _ => None,
    };
    let validity = response_key.as_ref().map(|_| Validity {
        epoch: state.engine.cache.epoch(),
        generations: state
            .engine
            .sources
            .iter()
            .map(|s| s.generation())
            .fold(0u64, u64::wrapping_add),
    });
    if let (Some(cache), Some(key), Some(now)) = (&state.responses, &response_key, validity)
        && let Some(hit) = cache.get(key, now)
    {
        let mut body = Vec::with_capacity(hit.data.len() + 256);
        body.extend_from_slice(b"{\"data\":");
        body.extend_from_slice(&hit.data);
        body.extend_from_slice(b",\"extensions\":{\"sources\":");
        write_cached_sources(&hit.uses, &state.engine.sources, &mut body);
        body.extend_from_slice(b"}}");
        return respond(StatusCode::OK, media, body);
    }
    let request_state = Arc::new(RequestState::new(Value::Object(Default::default())));
    let timeout = state.engine.blueprint.limits.request_timeout;
    if let Some((vars, plan)) = plan {
        let mut body = Vec::with_capacity(plan.size_hint() + 512);
        body.extend_from_slice(b"{\"data\":");
        let data_start = body.len();
        let Ok(errors) = tokio::time::timeout(
            timeout,
            crate::plan::execute(&state.engine, &plan, &vars, &request_state, &mut body),
        )
        .await
        else {
            return too_long(media);
        };
        plan.note_replayable(!request_state.never_cacheable());
        if let (Some(cache), Some(key), Some(validity)) = (&state.responses, response_key, validity)
            && errors.is_empty()
            && let Some(ttl) = request_state.response_ttl(Duration::from_secs(60))
        {
            cache.insert(
                key,
                bytes::Bytes::copy_from_slice(&body[data_start..]),
                request_state.uses(),
                ttl,
                validity,
            );
        }
        if !errors.is_empty() {
            body.extend_from_slice(b",\"errors\":");
            let _ = serde_json::to_writer(&mut body, &errors);
        }
        body.extend_from_slice(b",\"extensions\":{\"sources\":");
        request_state.write_sources(&state.engine.sources, &mut body);
        body.extend_from_slice(b"}}");
        plan.note_size(body.len());
        let mut r = respond(StatusCode::OK, media, body);
        // Tells operators (and tests) the compiled plan answered, not the generic executor.
        r.headers_mut()
            .insert(SIMPUL_PLAN, HeaderValue::from_static("compiled"));
        return r;
    }
    // A text the planner knows ran before, so it was admitted then (the response cache and
    // the plans hold only such texts). Any other is measured against `[limits]` before
    // async-graphql sees it, and handed over parsed.
    let parsed = match known {
        Some(_) => None,
        None => match limits::admit(&p.query, &state.engine.blueprint.limits) {
            Ok(doc) => doc,
            Err(refused) => return over_limit(media, &refused),
        },
    };
    // Learned once: an operation already planned (or known not to be) is not compiled again.
    let learn = (plans && known.is_none()).then(|| (p.query.to_string(), p.operation_name.clone()));
    let mut request = async_graphql::Request::new(p.query.into_owned()).data(request_state.clone());
    if let Some(doc) = parsed {
        request.set_parsed_query(doc);
    }
    if let Some(name) = &p.operation_name {
        request = request.operation_name(name.as_ref());
    }
    if let Some(vars) = p.variables {
        request = request.variables(Variables::from_json(vars));
    }
    let mut response = match tokio::time::timeout(timeout, state.schema.execute(request)).await {
        Ok(r) => r,
        Err(_) => return too_long(media),
    };
    if response.errors.is_empty()
        && let Some((query, operation)) = learn
    {
        state.planner.learn(&query, operation.as_deref());
    }
    // A failed non-null bound field was already reported with its path; the executor's own
    // "non-null" complaint about the same path adds nothing for a client.
    let reported: Vec<_> = response
        .errors
        .iter()
        .filter(|e| {
            e.extensions
                .as_ref()
                .is_some_and(|x| x.get("code").is_some())
        })
        .map(|e| e.path.clone())
        .collect();
    response.errors.retain(|e| {
        !(e.message.starts_with("internal: non-null types require") && reported.contains(&e.path))
    });
    // Parse and validation errors have no path and no data: a request error for the spec.
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if let Ok(sources) =
        async_graphql::Value::from_json(request_state.sources_json(&state.engine.sources))
    {
        response.extensions.insert("sources".to_string(), sources);
    }
    if let (Some(cache), Some(key), Some(validity)) = (&state.responses, response_key, validity)
        && !request_failed
        && response.errors.is_empty()
        && let Some(ttl) = request_state.response_ttl(Duration::from_secs(60))
        && let Ok(data) = serde_json::to_vec(&response.data)
    {
        cache.insert(key, data.into(), request_state.uses(), ttl, validity);
    }
    let status = if request_failed && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = if request_failed {
        // A request error has no `data` entry at all.
        serde_json::to_value(&response).map(|mut v| {
            if let Some(m) = v.as_object_mut() {
                m.remove("data");
            }
            v.to_string().into_bytes()
        })
    } else {
        serde_json::to_vec(&response)
    };
    match body {
        Ok(body) => respond(status, media, body),
        Err(e) => {
            tracing::error!(error = %e, "response serialization failed");
            request_error(media, "internal error")
        }
    }
}
