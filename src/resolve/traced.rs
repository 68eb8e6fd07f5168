//! The connector call's span: [`fetch`] wraps [`super::fetch_call`] in one when traces are
//! exported, and is a plain call otherwise.

use std::sync::Arc;

use tracing::Instrument;

use super::{Engine, GroupResult, RequestState, fetch_call};
use crate::blueprint::Binding;

/// [`fetch_call`], in a span of its own when traces are exported: the connector, its kind,
/// the binding, the batch's size, where the answer came from, the outcome and the rows.
pub(super) async fn fetch(
    engine: &Engine,
    binding: &Binding,
    state: &Arc<RequestState>,
    call: crate::connectors::Call,
    batch: Option<usize>,
) -> GroupResult {
    if !crate::telemetry::enabled() {
        return fetch_call(engine, binding, state, call).await;
    }
    let connector = engine.source(binding)?;
    let span = tracing::info_span!(
        target: crate::telemetry::TARGET,
        "connector",
        otel.name = %format_args!("{} {}", connector.name, binding.name),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        simpul.connector = %connector.name,
        simpul.connector.kind = connector.config.kind.name(),
        simpul.binding = %binding.name,
        simpul.batch.size = batch.and_then(|n| i64::try_from(n).ok()),
        simpul.cache = tracing::field::Empty,
        simpul.outcome = tracing::field::Empty,
        simpul.rows = tracing::field::Empty,
    );
    let result = fetch_call(engine, binding, state, call)
        .instrument(span.clone())
        .await;
    match &result {
        Ok(group) => {
            span.record("simpul.outcome", "ok");
            span.record(
                "simpul.rows",
                i64::try_from(group.rows().len()).unwrap_or(i64::MAX),
            );
        }
        Err(e) => {
            span.record("simpul.outcome", e.code.as_str());
            span.record("otel.status_code", "ERROR");
        }
    }
    result
}
