//! One GraphQL operation, whatever carried it (POST, GET, graphql-ws, SSE): its text,
//! limits, plan, variables and cost checked by one implementation, then run (a query or
//! mutation) or opened (a subscription).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_graphql_parser::types::{DocumentOperations, OperationType};
use futures::stream::BoxStream;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::AppState;
use super::http::Params;
use super::limits;
use super::persisted::Refusal;
use crate::auth::Caller;
use crate::cache::response::{ResponseCache, Validity};
use crate::error::ErrorCode;
use crate::plan::Gap;
use crate::plan::{Plan, Planner};
use crate::resolve::request::{RequestState, write_cached_sources};

/// What an operation became.
pub(super) enum Started {
    /// A query or mutation's whole response body, as `POST /graphql` answers it.
    Single(Vec<u8>),
    /// A subscription: one execution result body per event.
    Stream(BoxStream<'static, Vec<u8>>),
    /// Request errors (nothing ran), each with `extensions.code`.
    Refused(Vec<Value>),
}

/// Where the operation came: a GET's URL never runs a mutation (GraphQL over HTTP); a
/// request body or a websocket message may.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    Url,
    Body,
}

/// An operation refused before it ran: its request errors, and how HTTP answers them.
pub(super) struct Rejected {
    pub answer: Answer,
    pub errors: Vec<Value>,
}

/// The HTTP status of a [`Rejected`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Answer {
    /// 400 whatever the client accepts: not a GraphQL request, or over a limit.
    BadRequest,
    /// GraphQL request errors: 400 under graphql-response+json, 200 under JSON.
    RequestErrors,
    /// 403: a PUBLIC caller's operation off the safelist.
    Forbidden,
    /// 405 with `Allow: POST`: a mutation sent with GET.
    PostOnly,
}

impl Rejected {
    fn new(answer: Answer, code: ErrorCode, message: impl Into<String>) -> Rejected {
        let error = json!({ "message": message.into(), "extensions": { "code": code.as_str() } });
        Rejected {
            answer,
            errors: vec![error],
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Rejected {
        Rejected::new(Answer::BadRequest, ErrorCode::BadRequest, message)
    }

    fn request_errors(errors: Vec<Value>) -> Rejected {
        Rejected {
            answer: Answer::RequestErrors,
            errors,
        }
    }
}

/// Starts the operation in `p` for `caller`: a query or mutation runs to its whole
/// response; a subscription is opened. Every transport that can carry a stream calls this.
pub(super) async fn start(
    state: &AppState,
    caller: &Caller,
    p: Params<'static>,
    sent: Sent,
) -> Started {
    let ready = match prepare(state, caller, p, sent).await {
        Ok(ready) => ready,
        Err(r) => return Started::Refused(r.errors),
    };
    if ready.is_subscription() {
        return match super::subscribe::open(state, caller, ready.plan, ready.vars).await {
            Ok(events) => Started::Stream(events),
            Err(gap) => Started::Refused(cannot_execute(&Gap::Missing(gap)).errors),
        };
    }
    match run(state, caller, ready).await {
        Ok(answered) => Started::Single(answered.body),
        Err(r) => Started::Refused(r.errors),
    }
}

/// A query or mutation's response body, and whether it has errors.
pub(super) struct Answered {
    pub body: Vec<u8>,
    pub errors: bool,
}

/// An operation planned, its variables coerced and its cost within `max_cost`: ready to run.
pub(super) struct Ready<'s, 'a> {
    planner: &'s Planner,
    plan: Arc<Plan>,
    vars: Map<String, Value>,
    query: Cow<'a, str>,
    p: Params<'a>,
    /// The estimated cost, when the client asked for it.
    cost: Option<u64>,
}

impl Ready<'_, '_> {
    pub(super) fn is_subscription(&self) -> bool {
        self.plan.is_subscription()
    }

    /// The operation's name (the request's `operationName`, else the document's).
    pub(super) fn name(&self) -> Option<&str> {
        self.p.operation_name.as_deref().or(self.plan.name())
    }

    /// "query", "mutation" or "subscription".
    pub(super) fn kind(&self) -> &'static str {
        self.plan.kind()
    }
}

/// Everything before running: the text (the request's or the persisted one), the plan of
/// the caller's view, the variables and the cost.
pub(super) async fn prepare<'s, 'a>(
    state: &'s AppState,
    caller: &Caller,
    mut p: Params<'a>,
    sent: Sent,
) -> Result<Ready<'s, 'a>, Rejected> {
    let query = operation_text(state, &mut p, caller, sent)?;
    let planner = state.planner(&caller.view);
    let limits = &state.engine.blueprint.limits;
    let plan = plan(state, planner, &query, &p).await?;
    let vars = planner
        .variables(&plan, p.variables.as_ref())
        .map_err(|errors| {
            Rejected::request_errors(
                errors
                    .into_iter()
                    .map(|e| json!({ "message": e.message, "locations": [{ "line": e.at.0, "column": e.at.1 }], "extensions": { "code": ErrorCode::BadRequest.as_str() } }))
                    .collect(),
            )
        })?;
    let cost = planner
        .cost(&plan, &vars)
        .map_err(|gap| cannot_execute(&gap))?;
    if cost > limits.max_cost {
        let refused = limits::Refused::Over {
            limit: "max_cost",
            max: usize::try_from(limits.max_cost).unwrap_or(usize::MAX),
            found: format!("an estimated cost of {cost}"),
        };
        return Err(refused_by(&refused));
    }
    let cost = p.wants_cost.then_some(cost);
    Ok(Ready {
        planner,
        plan,
        vars,
        query,
        p,
        cost,
    })
}

/// The text to run: the request's own, or the persisted operation it names; from a URL,
/// never a mutation (405).
fn operation_text<'a>(
    state: &AppState,
    p: &mut Params<'a>,
    caller: &Caller,
    sent: Sent,
) -> Result<Cow<'a, str>, Rejected> {
    let query = state
        .persisted
        .resolve(&caller.view, p.query.take(), p.persisted.as_deref())
        .map_err(|refusal| match refusal {
            Refusal::NotFound => {
                let mut r = Rejected::bad_request(refusal.message());
                r.answer = Answer::RequestErrors;
                r
            }
            Refusal::NotListed => {
                Rejected::new(Answer::Forbidden, ErrorCode::Forbidden, refusal.message())
            }
            refusal => Rejected::bad_request(refusal.message()),
        })?;
    if sent == Sent::Url {
        // Finding the operation's type parses the text: the scan makes that safe first.
        if let Err(refused) = limits::scan(&query, &state.engine.blueprint.limits) {
            return Err(refused_by(&refused));
        }
        if operation_kind(&query, p.operation_name.as_deref()) == Some(OperationType::Mutation) {
            return Err(Rejected::new(
                Answer::PostOnly,
                ErrorCode::BadRequest,
                "GET runs no mutations: send mutations with POST",
            ));
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
    planner: &Planner,
    query: &str,
    p: &Params<'_>,
) -> Result<Arc<Plan>, Rejected> {
    if let Some(plan) = planner.get(query, p.operation_name.as_deref()) {
        return Ok(plan);
    }
    let bp = &state.engine.blueprint;
    // Parsing is linear in the text but slow per byte (strings, white space): a long text is
    // parsed on the blocking pool, so the workers keep answering other requests meanwhile.
    let parse = tracing::info_span!(target: crate::telemetry::TARGET, "graphql.parse");
    let admitted = if query.len() > PARSE_OFF_WORKER {
        let (text, limits) = (query.to_owned(), bp.limits.clone());
        tokio::task::spawn_blocking(move || parse.in_scope(|| limits::admit(&text, &limits)))
            .await
            .unwrap_or(Ok(None))
    } else {
        parse.in_scope(|| limits::admit(query, &bp.limits))
    };
    let doc = admitted.map_err(|refused| refused_by(&refused))?;
    let tier = planner.view().tier();
    if let Some(doc) = &doc
        && !bp.security.introspection.contains(&tier)
        && limits::introspects(doc)
    {
        let message = format!("introspection is disabled for {} callers", planner.view());
        let mut r = Rejected::bad_request(message);
        r.answer = Answer::RequestErrors;
        return Err(r);
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
    let response = planner
        .schema()
        .execute(request)
        .instrument(tracing::info_span!(target: crate::telemetry::TARGET, "graphql.validate"))
        .await;
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
            return Err(Rejected::request_errors(errors));
        }
    };
    tracing::info_span!(target: crate::telemetry::TARGET, "graphql.plan")
        .in_scope(|| planner.insert(query, p.operation_name.as_deref(), doc))
        .map_err(Rejected::bad_request)
}

/// Runs a query or mutation to its whole response body (replayed from the response cache
/// when it may be). A run past `request_timeout` is a response of its own, without data.
pub(super) async fn run(
    state: &AppState,
    caller: &Caller,
    ready: Ready<'_, '_>,
) -> Result<Answered, Rejected> {
    let Ready {
        planner,
        plan,
        vars,
        query,
        p,
        cost,
    } = ready;
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
        end_extensions(&mut body, hit.demo, cost);
        return Ok(Answered {
            body,
            errors: false,
        });
    }
    let mut request_state = RequestState::new(caller.claims.clone());
    request_state.client = caller.client.clone().map(|c| (c, caller.view.tier()));
    request_state.view = caller.view.tier();
    let request_state = Arc::new(request_state);
    let mut body = Vec::with_capacity(plan.size_hint() + 512);
    body.extend_from_slice(b"{\"data\":");
    let data_start = body.len();
    let execute = tracing::info_span!(target: crate::telemetry::TARGET, "graphql.execute");
    let run = planner
        .run(&plan, &vars, &request_state, &mut body)
        .instrument(execute);
    let timeout = state.engine.blueprint.limits.request_timeout;
    let errors = match tokio::time::timeout(timeout, run).await {
        Err(_) => {
            crate::metrics::get().limit_hit("request_timeout");
            let body = json!({ "errors": [{ "message": "the request took too long", "extensions": { "code": ErrorCode::SourceTimeout.as_str() } }] });
            return Ok(Answered {
                body: body.to_string().into_bytes(),
                errors: true,
            });
        }
        Ok(Err(gap)) => return Err(cannot_execute(&gap)),
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
            request_state.demo(),
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
    end_extensions(&mut body, request_state.demo(), cost);
    plan.note_size(body.len());
    Ok(Answered {
        body,
        errors: !errors.is_empty(),
    })
}

/// A document refused by `[limits]`: 400, and counted by the limit's name.
fn refused_by(refused: &limits::Refused) -> Rejected {
    crate::metrics::get().limit_hit(refused.limit());
    Rejected::bad_request(refused.to_string())
}

/// Writes the member `"demo":<notice>` of an `extensions` object.
pub(super) fn write_demo(body: &mut Vec<u8>) {
    body.extend_from_slice(b"\"demo\":");
    let _ = serde_json::to_writer(&mut *body, DEMO_NOTICE);
}

/// What `extensions.demo` says of an answer that holds synthetic rows.
pub const DEMO_NOTICE: &str = "This answer holds DATA DEMO (synthetic values, not official statistics): rows with demo: true are synthetic. See docs/data-trust.md.";

/// Closes `extensions` (after `sources`) and the response, with the demo notice when the data
/// holds synthetic rows, and the cost when asked for.
fn end_extensions(body: &mut Vec<u8>, demo: bool, cost: Option<u64>) {
    if demo {
        body.push(b',');
        write_demo(body);
    }
    if let Some(cost) = cost {
        body.extend_from_slice(b",\"cost\":");
        body.extend_from_slice(itoa::Buffer::new().format(cost).as_bytes());
    }
    body.extend_from_slice(b"}}");
}

/// An operation the executor cannot run (a gap in it, never the client's fault): INTERNAL;
/// or one whose arguments its types refuse: BAD_REQUEST.
fn cannot_execute(gap: &Gap) -> Rejected {
    let gap = match gap {
        Gap::Refused(refusal) => {
            return Rejected::new(
                Answer::RequestErrors,
                ErrorCode::BadRequest,
                refusal.clone(),
            );
        }
        Gap::Missing(gap) => gap,
    };
    tracing::error!(reason = %gap, "operation cannot be executed");
    let message = format!("this operation cannot be executed: {gap}");
    Rejected::new(Answer::RequestErrors, ErrorCode::Internal, message)
}
