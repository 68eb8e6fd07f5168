//! GraphQL over HTTP (graphql-over-http spec): content negotiation, the 4xx the spec asks
//! for, GET never running a mutation, and `extensions.sources` on every response.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql_parser::types::{DocumentOperations, OperationType};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::caller::admit;
use super::http::{
    self, MediaType, Params, PostHead, csrf_refused, negotiate, not_acceptable, over_limit, params,
    params_from_slice, preflighted, request_error, request_errors, respond, too_long,
};
use super::limits;
use super::persisted::Refusal;
use crate::auth::Caller;
use crate::cache::response::{ResponseCache, Validity};
use crate::error::ErrorCode;
use crate::resolve::request::RequestState;
use crate::resolve::request::write_cached_sources;

pub async fn post(State(state): State<AppState>, head: PostHead, body: Bytes) -> Response {
    let Some(media) = head.media else {
        return not_acceptable();
    };
    // Only `application/json`: a page cannot send it cross-site without a preflight, so this
    // is also the CSRF defence of POST.
    if !head.json {
        return http::error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadRequest,
            "POST /graphql needs content-type: application/json",
        );
    }
    let caller = match admit(&state, head.authorization.as_ref(), head.ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match params_from_slice(&body) {
        Ok(p) => execute(&state, media, p, caller, false).await,
        Err(msg) => request_error(media, msg),
    }
}

pub async fn get(State(state): State<AppState>, parts: Parts) -> Response {
    let headers = &parts.headers;
    let query: HashMap<String, String> = match Query::try_from_uri(&parts.uri) {
        Ok(Query(q)) => q,
        Err(_) => HashMap::new(),
    };
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !query.contains_key("query") && !query.contains_key("extensions") {
        return Html(
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .title("Simpul")
                .finish(),
        )
        .into_response();
    }
    let Some(media) = negotiate(headers) else {
        return not_acceptable();
    };
    if state.engine.blueprint.security.csrf_prevention && !preflighted(headers) {
        return csrf_refused();
    }
    let mut body = serde_json::Map::new();
    for key in ["query", "operationName", "documentId"] {
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
    let ip = http::client_ip(&parts, &state);
    let caller = match admit(&state, headers.get(header::AUTHORIZATION), ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    execute(&state, media, p, caller, true).await
}

/// The text to run: the request's own, or the persisted operation it names; for a GET,
/// only a query (405 otherwise).
fn operation_text<'a>(
    state: &AppState,
    media: MediaType,
    p: &mut Params<'a>,
    caller: &Caller,
    is_get: bool,
) -> Result<Cow<'a, str>, Box<Response>> {
    let query = match state
        .persisted
        .resolve(&caller.view, p.query.take(), p.persisted.as_deref())
    {
        Ok(q) => q,
        Err(Refusal::NotFound) => {
            return Err(Box::new(request_errors(
                media,
                vec![
                    json!({ "message": Refusal::NotFound.message(), "extensions": { "code": ErrorCode::BadRequest.as_str() } }),
                ],
            )));
        }
        Err(refusal @ Refusal::NotListed) => {
            let body = json!({ "errors": [{ "message": refusal.message(), "extensions": { "code": ErrorCode::Forbidden.as_str() } }] });
            return Err(Box::new(respond(
                StatusCode::FORBIDDEN,
                media,
                body.to_string().into_bytes(),
            )));
        }
        Err(refusal) => return Err(Box::new(request_error(media, refusal.message()))),
    };
    if is_get {
        // Finding the operation's type parses the text: the scan makes that safe first.
        if let Err(refused) = limits::scan(&query, &state.engine.blueprint.limits) {
            return Err(Box::new(over_limit(media, &refused)));
        }
        if let Some(kind) = operation_kind(&query, p.operation_name.as_deref())
            && kind != OperationType::Query
        {
            let mut r = http::error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::BadRequest,
                "GET runs queries only: send mutations with POST",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return Err(Box::new(r));
        }
    }
    Ok(query)
}

/// The type of the operation that would run, when the document parses.
fn operation_kind(query: &str, name: Option<&str>) -> Option<OperationType> {
    let doc = async_graphql_parser::parse_query(&*limits::without_comments(query)).ok()?;
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

/// Texts longer than this are parsed off the async workers.
const PARSE_OFF_WORKER: usize = 64 << 10;

/// The plan of the operation in `p` for this view: cached, or (on first sight) admitted by
/// `[limits]`, validated by async-graphql against the view's schema, and compiled.
async fn plan(
    state: &AppState,
    planner: &crate::plan::Planner,
    media: MediaType,
    query: &str,
    p: &Params<'_>,
) -> Result<Arc<crate::plan::Plan>, Response> {
    if let Some(plan) = planner.get(query, p.operation_name.as_deref()) {
        return Ok(plan);
    }
    let bp = &state.engine.blueprint;
    // Parsing is linear in the text but slow per byte (strings, white space): a long text is
    // parsed on the blocking pool, so the workers keep answering other requests meanwhile.
    let admitted = if query.len() > PARSE_OFF_WORKER {
        let (text, limits) = (query.to_owned(), bp.limits.clone());
        tokio::task::spawn_blocking(move || limits::admit(&text, &limits))
            .await
            .unwrap_or(Ok(None))
    } else {
        limits::admit(query, &bp.limits)
    };
    let doc = match admitted {
        Ok(doc) => doc,
        Err(refused) => return Err(over_limit(media, &refused)),
    };
    let tier = planner.view().tier();
    if let Some(doc) = &doc
        && !bp.security.introspection.contains(&tier)
        && limits::introspects(doc)
    {
        let message = format!("introspection is disabled for {} callers", planner.view());
        return Err(request_errors(
            media,
            vec![
                json!({ "message": message, "extensions": { "code": ErrorCode::BadRequest.as_str() } }),
            ],
        ));
    }
    // Validated without the request's variables: their values are checked by the plan's
    // coercion, the same on every request.
    // Without comments, as it was parsed: a syntax error is reported at the same place.
    let mut request = async_graphql::Request::new(limits::without_comments(query).into_owned())
        .data(crate::schema::ValidateOnly);
    if let Some(doc) = &doc {
        request.set_parsed_query(doc.clone());
    }
    if let Some(name) = &p.operation_name {
        request = request.operation_name(name.as_ref());
    }
    let response = planner.schema().execute(request).await;
    let doc = match doc {
        Some(doc) if response.errors.is_empty() => doc,
        _ => {
            let mut errors: Vec<Value> = response
                .errors
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .collect();
            for e in &mut errors {
                e["extensions"] = json!({ "code": ErrorCode::BadRequest.as_str() });
            }
            if errors.is_empty() {
                errors.push(json!({ "message": "the document does not parse", "extensions": { "code": ErrorCode::BadRequest.as_str() } }));
            }
            return Err(request_errors(media, errors));
        }
    };
    planner
        .insert(query, p.operation_name.as_deref(), doc)
        .map_err(|e| request_error(media, &e))
}

async fn execute(
    state: &AppState,
    media: MediaType,
    mut p: Params<'_>,
    caller: Caller,
    is_get: bool,
) -> Response {
    let query = match operation_text(state, media, &mut p, &caller, is_get) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let planner = state.planner(&caller.view);
    let limits = &state.engine.blueprint.limits;
    let plan = match plan(state, planner, media, &query, &p).await {
        Ok(plan) => plan,
        Err(response) => return response,
    };
    let vars = match planner.variables(&plan, p.variables.as_ref()) {
        Ok(vars) => vars,
        Err(errors) => {
            let errors = errors
                .into_iter()
                .map(|e| json!({ "message": e.message, "locations": [{ "line": e.at.0, "column": e.at.1 }], "extensions": { "code": ErrorCode::BadRequest.as_str() } }))
                .collect();
            return request_errors(media, errors);
        }
    };
    let cost = match planner.cost(&plan, &vars) {
        Ok(cost) => cost,
        Err(gap) => return cannot_execute(media, &gap),
    };
    if cost > limits.max_cost {
        let refused = limits::Refused::Over {
            limit: "max_cost",
            max: usize::try_from(limits.max_cost).unwrap_or(usize::MAX),
            found: format!("an estimated cost of {cost}"),
        };
        return over_limit(media, &refused);
    }
    let cost = p.wants_cost.then_some(cost);
    // An operation whose plan reads a binding without a cache policy (or the caller) is
    // never replayed: skip building its response key.
    let keep = plan.replayable() && plan.is_query() && planner.keeps(&query);
    let response_key = match (&state.responses, keep) {
        (Some(_), true) => Some(ResponseCache::key(
            planner.view(),
            &query,
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
        end_extensions(&mut body, cost);
        return respond(StatusCode::OK, media, body);
    }
    let request_state = Arc::new(RequestState::new(caller.claims));
    let mut body = Vec::with_capacity(plan.size_hint() + 512);
    body.extend_from_slice(b"{\"data\":");
    let data_start = body.len();
    let run = planner.run(&plan, &vars, &request_state, &mut body);
    let errors = match tokio::time::timeout(limits.request_timeout, run).await {
        Err(_) => return too_long(media),
        Ok(Err(gap)) => return cannot_execute(media, &gap),
        Ok(Ok(errors)) => errors,
    };
    plan.note_replayable(!request_state.never_cacheable());
    if let (Some(cache), Some(key), Some(validity)) = (&state.responses, response_key, validity)
        && errors.is_empty()
        && let Some(ttl) = request_state.response_ttl(Duration::from_secs(60))
    {
        cache.insert(
            key,
            bytes::Bytes::copy_from_slice(body.get(data_start..).unwrap_or_default()),
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
    end_extensions(&mut body, cost);
    plan.note_size(body.len());
    respond(StatusCode::OK, media, body)
}

/// Closes `extensions` (after `sources`) and the response, with the cost when asked for.
fn end_extensions(body: &mut Vec<u8>, cost: Option<u64>) {
    if let Some(cost) = cost {
        body.extend_from_slice(b",\"cost\":");
        body.extend_from_slice(itoa::Buffer::new().format(cost).as_bytes());
    }
    body.extend_from_slice(b"}}");
}

/// An operation the executor cannot run (a gap in it, never the client's fault): INTERNAL.
fn cannot_execute(media: MediaType, gap: &str) -> Response {
    tracing::error!(reason = %gap, "operation cannot be executed");
    let message = format!("this operation cannot be executed: {gap}");
    request_errors(
        media,
        vec![json!({ "message": message, "extensions": { "code": ErrorCode::Internal.as_str() } })],
    )
}
