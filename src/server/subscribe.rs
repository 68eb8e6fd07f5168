//! Subscriptions: a plan run once per event. The events are the state store's (alerts
//! raised or changed, from whichever instance evaluated them) and this instance's source
//! status changes; each is filtered by the subscriber's view before it runs, so a PUBLIC
//! subscriber never receives an INTERNAL alert.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use super::AppState;
use crate::alerts::api::{may_read, row};
use crate::auth::Caller;
use crate::blueprint::Builtin;
use crate::plan::Plan;
use crate::resolve::request::RequestState;
use crate::state::{AlertEvent, EventKind};

/// The stream of `plan`'s results, one per event the caller may see.
pub(super) async fn open(
    state: &AppState,
    caller: &Caller,
    plan: Arc<Plan>,
    vars: Map<String, Value>,
) -> Result<BoxStream<'static, Vec<u8>>, String> {
    let alerts = state
        .engine
        .alerts
        .clone()
        .ok_or("this deployment has no rules: there is nothing to subscribe to")?;
    crate::metrics::get().subscription(&caller.view.to_string());
    let which = plan
        .subscribed(state.planner(&caller.view))
        .ok_or("a subscription must select one of Simpul's subscription fields")?;
    let events: BoxStream<'static, Value> = match which {
        Builtin::SourceStatusChanged => lagging(alerts.sources.subscribe()).boxed(),
        Builtin::OpenAlerts => {
            // The list at once, then again on every change the subscriber may see.
            let view = caller.view.clone();
            let changes = lagging(alerts.store.events())
                .filter(move |e: &AlertEvent| std::future::ready(may_read(&view, &e.alert)))
                .map(|_| Value::Null);
            futures::stream::once(async { Value::Null })
                .chain(changes)
                .boxed()
        }
        kind => {
            let wanted = match kind {
                Builtin::AlertRaised => EventKind::Raised,
                _ => EventKind::Changed,
            };
            let view = caller.view.clone();
            lagging(alerts.store.events())
                .filter(move |e: &AlertEvent| {
                    std::future::ready(e.kind == wanted && may_read(&view, &e.alert))
                })
                .map(|e| row(&e.alert))
                .boxed()
        }
    };
    let app = state.clone();
    let caller = caller.clone();
    let vars = Arc::new(vars);
    Ok(events
        .then(move |event| {
            let (app, caller, plan, vars) =
                (app.clone(), caller.clone(), plan.clone(), vars.clone());
            async move { run(&app, &caller, &plan, &vars, event).await }
        })
        .boxed())
}

/// One result: the plan run with `event` as its root field's value.
async fn run(
    app: &AppState,
    caller: &Caller,
    plan: &Plan,
    vars: &Map<String, Value>,
    event: Value,
) -> Vec<u8> {
    let planner = app.planner(&caller.view);
    let mut state = RequestState::for_event(caller.claims.clone(), event);
    state.view = caller.view.tier();
    let state = Arc::new(state);
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(b"{\"data\":");
    let timeout = app.engine.blueprint.limits.request_timeout;
    let errors =
        match tokio::time::timeout(timeout, planner.run(plan, vars, &state, &mut body)).await {
            Ok(Ok(errors)) => errors,
            Ok(Err(gap)) => {
                return error_body(&format!("this subscription cannot be executed: {gap}"));
            }
            Err(_) => return error_body("the event took longer than request_timeout to answer"),
        };
    if !errors.is_empty() {
        body.extend_from_slice(b",\"errors\":");
        let _ = serde_json::to_writer(&mut body, &errors);
    }
    if state.demo() {
        body.extend_from_slice(b",\"extensions\":{");
        super::operation::write_demo(&mut body);
        body.push(b'}');
    }
    body.push(b'}');
    body
}

fn error_body(message: &str) -> Vec<u8> {
    let code = crate::error::ErrorCode::Internal.as_str();
    serde_json::json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": code } }] })
        .to_string()
        .into_bytes()
}

/// A broadcast receiver as a stream; a subscriber too slow to keep up skips what it
/// missed (logged) rather than holding the sender back.
fn lagging<T: Clone + Send + 'static>(rx: broadcast::Receiver<T>) -> BoxStream<'static, T> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(v) => return Some((v, rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a slow subscriber skipped events");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}
