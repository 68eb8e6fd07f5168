//! `/graphql`: GraphQL over HTTP (graphql-over-http spec: content negotiation, the 4xx the
//! spec asks for, GET never running a mutation), and the doors to the streaming transports
//! on the same URL: SSE (`Accept: text/event-stream`) and graphql-ws (a websocket upgrade).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::caller::admit;
use super::http::{
    self, MediaType, Params, PostHead, csrf_refused, negotiate, not_acceptable, params,
    params_from_slice, preflighted, rejected, request_error, respond, wants_event_stream,
};
use super::metrics::Observed;
use super::operation::{self, Rejected, Sent};
use super::{multipart, overload, sse, ws};
use crate::auth::Caller;
use crate::error::ErrorCode;
use crate::metrics::Outcome;

pub async fn post(State(state): State<AppState>, head: PostHead, request: Request) -> Response {
    // An SSE client's request errors are still JSON (answered before any stream starts).
    let media = match (head.media, head.stream) {
        (Some(media), _) => media,
        (None, true) => MediaType::Json,
        (None, false) => return not_acceptable(),
    };
    if head.multipart.is_some() {
        return uploads(&state, media, head, request).await;
    }
    // Only `application/json`: a page cannot send it cross-site without a preflight, so this
    // is also the CSRF defence of POST.
    if !head.json {
        return http::error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadRequest,
            "POST /graphql needs content-type: application/json (or multipart/form-data \
             for file uploads)",
        );
    }
    let body = match Bytes::from_request(request, &state).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    let caller = match admit(&state, head.authorization.as_ref(), head.ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match params_from_slice(&body) {
        Ok(p) if head.stream => sse::respond(&state, &caller, p.into_owned(), Sent::Body).await,
        Ok(p) => execute(&state, media, p, caller, Sent::Body).await,
        Err(msg) => request_error(media, msg),
    }
}

/// A GraphQL multipart request (file uploads). A form can send `multipart/form-data`
/// cross-site, so with `csrf_prevention` it needs a header only a preflight allows, as
/// Apollo Server asks; the caller is admitted before a byte of its files is read. A refused
/// request's body is drained (bounded) so the client reads the answer.
async fn uploads(state: &AppState, media: MediaType, head: PostHead, request: Request) -> Response {
    let body = request.into_body();
    let refused = async |answer: Response, body: Body| {
        overload::drain(&mut body.into_data_stream()).await;
        answer
    };
    if state.engine.blueprint.security.csrf_prevention && !head.preflighted {
        return refused(csrf_refused(), body).await;
    }
    let caller = match admit(state, head.authorization.as_ref(), head.ip).await {
        Ok(c) => c,
        Err(r) => return refused(r, body).await,
    };
    let limits = &state.engine.blueprint.limits;
    let boundary = head.multipart.flatten();
    match multipart::read(boundary, body, limits).await {
        Ok(p) if head.stream => sse::respond(state, &caller, p, Sent::Body).await,
        Ok(p) => execute(state, media, p, caller, Sent::Body).await,
        Err(refused) => refused,
    }
}

pub async fn get(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if ws::is_upgrade(&parts.headers) {
        return ws::upgrade(state, parts).await;
    }
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
        return super::assets::graphiql_page();
    }
    let stream = wants_event_stream(headers);
    let media = match (negotiate(headers), stream) {
        (Some(media), _) => media,
        (None, true) => MediaType::Json,
        (None, false) => return not_acceptable(),
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
    if stream {
        return sse::respond(&state, &caller, p, Sent::Url).await;
    }
    execute(&state, media, p, caller, Sent::Url).await
}

/// A query or mutation over plain HTTP, answered as one JSON response. A subscription needs
/// a transport that can carry its events.
async fn execute(
    state: &AppState,
    media: MediaType,
    p: Params<'_>,
    caller: Caller,
    sent: Sent,
) -> Response {
    let view = caller.view.to_string();
    let observed = |operation: Option<&str>, kind, outcome| Observed {
        operation: operation.map(str::to_string),
        kind,
        view: view.clone(),
        outcome,
    };
    let sent_name = p.operation_name.as_deref().map(str::to_string);
    let ready = match operation::prepare(state, &caller, p, sent).await {
        Ok(ready) => ready,
        Err(r) => {
            let o = observed(sent_name.as_deref(), "unknown", Outcome::Rejected);
            return o.on(rejected(media, r));
        }
    };
    let (name, kind) = (ready.name().map(str::to_string), ready.kind());
    if ready.is_subscription() {
        let o = observed(name.as_deref(), kind, Outcome::Rejected);
        return o.on(rejected(
            media,
            Rejected::bad_request(
                "a subscription needs a stream: use graphql-ws (a websocket with the \
                 subprotocol graphql-transport-ws) or SSE (accept: text/event-stream)",
            ),
        ));
    }
    match operation::run(state, &caller, ready).await {
        Ok(answered) => {
            let outcome = match answered.errors {
                true => Outcome::Errors,
                false => Outcome::Ok,
            };
            observed(name.as_deref(), kind, outcome).on(respond(
                StatusCode::OK,
                media,
                answered.body,
            ))
        }
        Err(r) => observed(name.as_deref(), kind, Outcome::Rejected).on(rejected(media, r)),
    }
}
