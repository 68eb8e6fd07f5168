//! Writes that are never lost: a call of an `@outbox` mutation is kept in the state store
//! (`crate::state`, one committed row) before its caller gets a receipt; this module's
//! loop then delivers it through the field's binding with an `Idempotency-Key` (the
//! receipt id), retries with exponential backoff and jitter while the upstream fails, and
//! settles it DELIVERED (the upstream's tracking id kept, the call's arguments erased) or,
//! after its tries, FAILED, which raises an alert for the staff.
//!
//! Delivery is at least once to the upstream and exactly once to an upstream that
//! honours the key: a process killed between the upstream's answer and the settling
//! sends the row again after its lease, with the same key.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::access::Tier;
use crate::blueprint::{Binding, OutboxField};
use crate::connectors::Call;
use crate::error::ErrorCode;
use crate::resolve::Engine;
use crate::resolve::node::get_path;
use crate::resolve::render::Values;
use crate::state::{Claimed, Firing, Settled, StateStore, rfc3339};

/// The longest client idempotency key kept.
const MAX_CLIENT_KEY: usize = 200;
/// The header that carries the receipt id to an HTTP upstream.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The outcome of a call as its caller sees it: rows, or a code and a message.
type Answer = Result<Vec<Value>, (ErrorCode, String)>;

/// `Mutation.x` with `@outbox`: keeps the call of `client` and answers its receipt.
pub async fn accept(
    engine: &Engine,
    index: usize,
    args: &Value,
    auth: &Value,
    client: Option<&(String, Tier)>,
) -> Answer {
    let (field, binding, store) = parts(engine, index)?;
    if let (Some(budget), Some((client, Tier::Public))) = (&engine.public_writes, client)
        && let Err(wait) = budget.spend(client)
    {
        return Err((
            ErrorCode::RateLimited,
            format!(
                "too many submissions from this client: try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let client_key = match &field.key {
        None => None,
        Some(path) => match get_path(args, path) {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_CLIENT_KEY => {
                Some(k.as_str())
            }
            Some(_) => {
                return Err((
                    ErrorCode::BadRequest,
                    format!(
                        "{} must be a string of 1 to {MAX_CLIENT_KEY} bytes",
                        path.join(".")
                    ),
                ));
            }
        },
    };
    check(engine, field, args, auth).await?;
    // What cannot be sent is refused now, not after the receipt.
    let sample = json!({ "id": "", "acceptedAt": "" });
    let values = Values {
        args,
        parent: None,
        auth,
        outbox: Some(&sample),
        view: crate::access::Tier::Public,
    };
    if let Err(e) = crate::resolve::render_call(engine, binding, &values) {
        return Err((e.code, e.detail.to_string()));
    }
    let receipt = store
        .accept(&field.name, client_key, args, auth)
        .await
        .map_err(|e| {
            tracing::error!(field = %field.name, error = %e, "a write was not kept");
            (
                ErrorCode::Internal,
                "the write could not be kept; nothing was accepted, send it again".to_string(),
            )
        })?;
    Ok(vec![receipt.json()])
}

/// Runs the field's `@validate` reads: a call any of them finds no row for is refused
/// with its message; one that cannot be checked now is refused too (nothing kept).
async fn check(
    engine: &Engine,
    field: &OutboxField,
    args: &Value,
    auth: &Value,
) -> Result<(), (ErrorCode, String)> {
    let values = Values {
        args,
        parent: None,
        auth,
        outbox: None,
        view: crate::access::Tier::Public,
    };
    for c in &field.checks {
        let Some(binding) = engine.blueprint.bindings.get(c.binding) else {
            return Err((ErrorCode::Internal, "check binding missing".into()));
        };
        let refused = |e: crate::error::SourceError| {
            tracing::warn!(field = %field.name, connector = %e.connector, code = e.code.as_str(), detail = %e.detail, "a write could not be checked");
            (
                e.code,
                format!(
                    "{} cannot be checked now; nothing was kept, send it again later",
                    field.name
                ),
            )
        };
        let call = crate::resolve::render_call(engine, binding, &values).map_err(refused)?;
        let source = engine.source(binding).map_err(refused)?;
        let answer = source.fetch(call, true).await.map_err(refused)?;
        if answer.rows.is_empty() {
            return Err((ErrorCode::BadRequest, c.message.clone()));
        }
    }
    Ok(())
}

/// `Query.x(receipt:)` with `@receipt(of:)`: the receipt, or nothing for an unknown id.
pub async fn receipt(engine: &Engine, index: usize, args: &Value) -> Answer {
    let (field, _, store) = parts(engine, index)?;
    let Some(id) = args.get("receipt").and_then(Value::as_str) else {
        return Ok(Vec::new());
    };
    match store.receipt(&field.name, id).await {
        Ok(found) => Ok(found.iter().map(|r| r.json()).collect()),
        Err(e) => {
            tracing::warn!(field = %field.name, error = %e, "a receipt was not read");
            Err((
                ErrorCode::Internal,
                "the receipt could not be read now".to_string(),
            ))
        }
    }
}

fn parts(
    engine: &Engine,
    index: usize,
) -> Result<(&OutboxField, &Arc<Binding>, &StateStore), (ErrorCode, String)> {
    let internal = |what: &str| (ErrorCode::Internal, what.to_string());
    let field = engine
        .blueprint
        .outboxes
        .get(index)
        .ok_or_else(|| internal("outbox field missing"))?;
    let binding = engine
        .blueprint
        .bindings
        .get(field.binding)
        .ok_or_else(|| internal("outbox binding missing"))?;
    let store = engine
        .state
        .as_ref()
        .ok_or_else(|| internal("no state store"))?;
    Ok((field, binding, store))
}

/// Delivers kept calls until `retired` completes (a reload replaced this model) or the
/// runtime ends: every 500 ms, and at once when this process keeps one. `first`: the
/// process's first loop, which releases the leases a previous run of it left (on SQLite,
/// where this process is the only deliverer); a reload's loop must not, as the last
/// model's deliveries may still be in flight.
pub fn spawn(
    engine: &Arc<Engine>,
    first: bool,
    retired: impl Future<Output = ()> + Send + 'static,
) {
    let Some(store) = engine.state.clone() else {
        return;
    };
    if engine.blueprint.outboxes.is_empty() {
        return;
    }
    let engine = engine.clone();
    tokio::spawn(async move {
        if first && let Err(e) = store.release_outbox().await {
            tracing::warn!(error = %e, "outbox leases not released");
        }
        let lease_ms = lease_ms(&engine);
        let claim = |free| store.claim_outbox(free, lease_ms);
        let deliver = |row| {
            let (engine, store) = (engine.clone(), store.clone());
            async move { deliver(&engine, &store, row).await }
        };
        crate::state::pump::pump("outbox", store.outbox_queued(), claim, deliver, retired).await;
    });
}

/// A claim outlives its delivery: the slowest outbox connector's timeout and a margin.
fn lease_ms(engine: &Engine) -> i64 {
    let slowest = engine
        .blueprint
        .outboxes
        .iter()
        .filter_map(|o| engine.blueprint.bindings.get(o.binding))
        .filter_map(|b| engine.blueprint.connectors.get(b.connector))
        .map(|c| c.timeout)
        .max()
        .unwrap_or(Duration::from_secs(30));
    i64::try_from((slowest + Duration::from_secs(10)).as_millis()).unwrap_or(i64::MAX)
}

/// Sends one claimed row and records how it went.
async fn deliver(engine: &Engine, store: &StateStore, row: Claimed) {
    let field = engine
        .blueprint
        .outboxes
        .iter()
        .find(|o| o.name == row.field);
    let (outcome, mut tries) = match field {
        Some(field) => (send(engine, field, &row).await, field.tries),
        // The deployment no longer has the field: kept until its tries are spent, then
        // FAILED for the staff to see.
        None => (
            Err((
                format!("{} is not in this deployment's schema", row.field),
                false,
            )),
            engine
                .blueprint
                .outboxes
                .iter()
                .map(|o| o.tries)
                .max()
                .unwrap_or(1),
        ),
    };
    let outcome = outcome.map_err(|(error, refused)| {
        // Refused outright (a 4xx such as 400 or 422): the same request cannot succeed
        // later, so this try is the last.
        if refused {
            tries = u32::try_from(row.tries + 1).unwrap_or(u32::MAX);
        }
        error
    });
    if let Err(error) = &outcome {
        tracing::debug!(receipt = %row.id, field = %row.field, tries = row.tries + 1, %error, "outbox delivery failed");
    }
    let backoff = backoff_ms(engine.blueprint.state.outbox_backoff, row.tries + 1);
    match store
        .settle_outbox(&row, outcome.clone(), tries, backoff)
        .await
    {
        Ok(Settled::Failed) => raise(engine, store, &row, outcome.err().unwrap_or_default()).await,
        Ok(Settled::Delivered) => {
            tracing::info!(receipt = %row.id, field = %row.field, "outbox write delivered");
        }
        Ok(Settled::Retry | Settled::Lost) => {}
        Err(e) => tracing::warn!(receipt = %row.id, error = %e, "outbox outcome not recorded"),
    }
}

/// The call of `row` made to its upstream: Ok with the upstream's tracking id (when the
/// field names one) once it accepted the call, else why not and whether the upstream
/// refused the request itself.
async fn send(
    engine: &Engine,
    field: &OutboxField,
    row: &Claimed,
) -> Result<Option<String>, (String, bool)> {
    let binding = engine
        .blueprint
        .bindings
        .get(field.binding)
        .ok_or(("outbox binding missing".to_string(), false))?;
    let outbox = json!({ "id": row.id, "acceptedAt": rfc3339(row.accepted_at_ms) });
    let values = Values {
        args: &row.args,
        parent: None,
        auth: &row.auth,
        outbox: Some(&outbox),
        view: crate::access::Tier::Public,
    };
    let mut call = crate::resolve::render_call(engine, binding, &values)
        .map_err(|e| (format!("{}: {}", e.code.as_str(), e.detail), false))?;
    if let Call::Http(h) = &mut call {
        h.headers
            .push((IDEMPOTENCY_KEY.to_string(), row.id.clone()));
    }
    let source = engine
        .source(binding)
        .map_err(|e| (e.detail.to_string(), false))?;
    let fetched = source
        .fetch(call, false)
        .await
        .map_err(|e| (format!("{}: {}", e.code.as_str(), e.detail), e.is_refusal()))?;
    Ok(field.tracking.as_ref().and_then(|path| {
        let value = get_path(fetched.rows.first()?, path)?;
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }))
}

/// The staff's alert for a write given up on: one per receipt, INTERNAL, naming the field
/// and the cause, never the call's arguments.
async fn raise(engine: &Engine, store: &StateStore, row: &Claimed, error: String) {
    let connector = engine
        .blueprint
        .outboxes
        .iter()
        .find(|o| o.name == row.field)
        .and_then(|o| engine.blueprint.bindings.get(o.binding))
        .and_then(|b| engine.blueprint.connectors.get(b.connector));
    let (source, opd) = connector
        .map(|c| (c.name.as_str(), c.opd.as_str()))
        .unwrap_or(("?", ""));
    let state = &engine.blueprint.state;
    let firing = Firing {
        rule: "outbox-failed".into(),
        title: "Kiriman gagal terkirim".into(),
        severity: "CRITICAL".into(),
        opd: opd.to_string(),
        tier: "INTERNAL".into(),
        region_code: state.region.clone(),
        region_name: state.region_name.clone(),
        key: row.id.clone(),
        message: format!(
            "Kiriman {} ({}) tidak diterima {source} setelah {} percobaan: {error}",
            row.id,
            row.field,
            row.tries + 1
        ),
        recommendation: format!(
            "Periksa layanan {source}; kiriman tersimpan di outbox dan dapat dikirim ulang setelah layanan pulih."
        ),
        evidence: json!({ "receipt": row.id, "field": row.field, "tries": row.tries + 1, "error": error }),
        webhooks: Vec::new(),
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    match store.fire(&firing).await {
        Ok(Some(alert)) => {
            if let Err(e) = store
                .publish(crate::state::EventKind::Raised, alert.id)
                .await
            {
                tracing::warn!(alert = alert.id, error = %e, "alert not published");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(receipt = %row.id, error = %e, "the alert of a failed write was not raised")
        }
    }
    tracing::warn!(receipt = %row.id, field = %row.field, "outbox write FAILED after its tries");
}

/// The wait before try `tries + 1`: the first backoff, doubled each try, at most the
/// longest, ±20% so upstreams that came back are not hit by every row at once.
fn backoff_ms((first, longest): (Duration, Duration), tries: i64) -> i64 {
    let exponent = u32::try_from((tries - 1).clamp(0, 30)).unwrap_or(30);
    let base = first
        .saturating_mul(1_u32.checked_shl(exponent).unwrap_or(u32::MAX))
        .min(longest);
    let jitter: f64 = rand::random_range(0.8..=1.2);
    (base.as_millis() as f64 * jitter) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_bound_with_jitter() {
        let bounds = (Duration::from_secs(1), Duration::from_secs(300));
        for (tries, secs) in [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (60, 300)] {
            let ms = backoff_ms(bounds, tries);
            let base = secs * 1000;
            assert!(ms >= base * 8 / 10 && ms <= base * 12 / 10, "{tries}: {ms}");
        }
        let fast = (Duration::from_millis(100), Duration::from_secs(1));
        assert!(backoff_ms(fast, 1) <= 120);
        assert!(backoff_ms(fast, 20) <= 1200);
    }
}
