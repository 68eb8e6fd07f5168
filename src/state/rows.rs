//! Rows of the state tables into the store's values, for either database, and the column
//! lists the statements select them with.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::model::{Alert, FollowUp, RuleRun, rfc3339};

/// The columns [`alert`] reads, in a form `concat!` takes (so statements stay static).
macro_rules! alert_columns {
    () => {
        "id, rule_id, title, severity, opd, tier, region_code, region_name, alert_key, \
         status, message, recommendation, evidence, raised_at_ms, last_seen_at_ms, \
         acknowledged_at_ms, acknowledged_by, resolved_at_ms, resolved_by, resolution"
    };
}
pub(super) use alert_columns;

/// An alert without its follow-ups (loaded apart, for a whole list at once).
pub(super) fn alert<'r, R>(row: &'r R) -> sqlx::Result<Alert>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let text = |name: &str| row.try_get::<String, _>(name);
    let maybe = |name: &str| row.try_get::<Option<String>, _>(name);
    let time = |name: &str| row.try_get::<i64, _>(name).map(rfc3339);
    let maybe_time = |name: &str| {
        row.try_get::<Option<i64>, _>(name)
            .map(|ms| ms.map(rfc3339))
    };
    let evidence = text("evidence")?;
    Ok(Alert {
        id: row.try_get("id")?,
        rule: text("rule_id")?,
        title: text("title")?,
        severity: text("severity")?,
        opd: text("opd")?,
        tier: text("tier")?,
        region_code: text("region_code")?,
        region_name: text("region_name")?,
        key: text("alert_key")?,
        status: text("status")?,
        message: text("message")?,
        recommendation: text("recommendation")?,
        // Written by `fire` from a serde_json::Value, so it parses; were it ever edited by
        // hand into something else, the text is still shown rather than the alert lost.
        evidence: serde_json::from_str(&evidence).unwrap_or(serde_json::Value::String(evidence)),
        raised_at: time("raised_at_ms")?,
        last_seen_at: time("last_seen_at_ms")?,
        acknowledged_at: maybe_time("acknowledged_at_ms")?,
        acknowledged_by: maybe("acknowledged_by")?,
        resolved_at: maybe_time("resolved_at_ms")?,
        resolved_by: maybe("resolved_by")?,
        resolution: maybe("resolution")?,
        follow_ups: Vec::new(),
    })
}

/// A follow-up row (`alert_id, author, at_ms, note, kind`) with the alert it belongs to.
pub(super) fn follow_up<'r, R>(row: &'r R) -> sqlx::Result<(i64, FollowUp)>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok((
        row.try_get("alert_id")?,
        FollowUp {
            by: row.try_get("author")?,
            at: row.try_get::<i64, _>("at_ms").map(rfc3339)?,
            note: row.try_get("note")?,
            kind: row.try_get("kind")?,
        },
    ))
}

/// A `simpul_rule_runs` row.
pub(super) fn rule_run<'r, R>(row: &'r R) -> sqlx::Result<RuleRun>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(RuleRun {
        rule: row.try_get("rule_id")?,
        last_run_at: row.try_get::<i64, _>("last_run_at_ms").map(rfc3339)?,
        duration_ms: row.try_get("duration_ms")?,
        error: row.try_get("error")?,
        firing: row.try_get("firing")?,
    })
}

/// Puts each follow-up (oldest first) on its alert.
pub(super) fn attach(alerts: &mut [Alert], follow_ups: Vec<(i64, FollowUp)>) {
    let at: std::collections::HashMap<i64, usize> =
        alerts.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
    for (alert_id, follow_up) in follow_ups {
        if let Some(alert) = at.get(&alert_id).and_then(|&i| alerts.get_mut(i)) {
            alert.follow_ups.push(follow_up);
        }
    }
}
