//! The built-in fields' answers: rows (JSON objects) for the executor, filtered by the
//! caller's view. An error here is the client's to read: its message names no internal.

use serde_json::{Value, json};

use super::{Alerts, now_ms};
use crate::access::View;
use crate::blueprint::Builtin;
use crate::error::ErrorCode;
use crate::state::{Alert, AlertFilter};

/// The longest note a follow-up, acknowledgement or resolution keeps.
const MAX_NOTE: usize = 4000;

/// A built-in field's failure, as the client sees it.
pub type Refusal = (ErrorCode, String);

impl Alerts {
    /// The rows of built-in field `which` for a caller reading through `view`; `event` is
    /// the subscription event being answered.
    pub async fn answer(
        &self,
        which: Builtin,
        args: &Value,
        view: &View,
        sub: Option<&str>,
        event: Option<&Value>,
    ) -> Result<Vec<Value>, Refusal> {
        let by = sub.unwrap_or("anonymous");
        let id = || {
            args["id"]
                .as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| args["id"].as_i64())
                .ok_or((
                    ErrorCode::BadRequest,
                    "id is not an alert number".to_string(),
                ))
        };
        let note = args["note"].as_str();
        match which {
            Builtin::Alerts => {
                let first = args["first"].as_i64().unwrap_or(100).clamp(0, 1000) as usize;
                let filter = AlertFilter {
                    status: args["status"].as_str().map(str::to_string),
                    severity: args["severity"].as_str().map(str::to_string),
                    region: args["region"].as_str().map(str::to_string),
                    opd: args["opd"].as_str().map(str::to_string),
                    limit: Some(first as i64),
                };
                let alerts = self.store.alerts(&filter).await.map_err(internal)?;
                Ok(visible(alerts, view).take(first).collect())
            }
            Builtin::Alert => {
                let alert = self.store.alert(id()?).await.map_err(internal)?;
                Ok(visible(alert, view).collect())
            }
            Builtin::Rules => self.rules_rows().await,
            Builtin::AcknowledgeAlert | Builtin::ResolveAlert | Builtin::AddFollowUp => {
                let id = id()?;
                // A caller acts only on alerts it may read: others are "not found".
                let found = self.store.alert(id).await.map_err(internal)?;
                if visible(found, view).next().is_none() {
                    return Err((ErrorCode::BadRequest, format!("no alert {id}")));
                }
                // Notes are kept for good: each is bounded.
                if note.is_some_and(|n| n.len() > MAX_NOTE) {
                    return Err((
                        ErrorCode::BadRequest,
                        format!("a note holds at most {MAX_NOTE} bytes"),
                    ));
                }
                let now = now_ms();
                let done = match which {
                    Builtin::AcknowledgeAlert => self.store.acknowledge(id, by, note, now).await,
                    Builtin::ResolveAlert => self.store.resolve(id, by, note, now).await,
                    _ => {
                        let note = note.filter(|n| !n.trim().is_empty()).ok_or((
                            ErrorCode::BadRequest,
                            "a follow-up needs a note".to_string(),
                        ))?;
                        self.store.add_follow_up(id, by, note, now).await
                    }
                };
                let alert = done.map_err(|r| (ErrorCode::BadRequest, r.to_string()))?;
                if let Err(e) = self
                    .store
                    .publish(crate::state::EventKind::Changed, id)
                    .await
                {
                    tracing::warn!(alert = id, error = %e, "alert change not published");
                }
                Ok(alert.iter().map(row).collect())
            }
            Builtin::AlertRaised | Builtin::AlertChanged | Builtin::SourceStatusChanged => {
                Ok(event.cloned().into_iter().collect())
            }
            // The outbox's fields are answered by `crate::outbox`, never here.
            Builtin::Accept(_) | Builtin::Receipt(_) | Builtin::Entities => Err((
                ErrorCode::Internal,
                "an outbox field reached the alerts".to_string(),
            )),
            Builtin::OpenAlerts => {
                let mut rows = Vec::new();
                for status in ["OPEN", "ACKNOWLEDGED"] {
                    let filter = AlertFilter {
                        status: Some(status.into()),
                        ..AlertFilter::default()
                    };
                    let alerts = self.store.alerts(&filter).await.map_err(internal)?;
                    rows.extend(visible(alerts, view));
                }
                Ok(rows)
            }
        }
    }

    async fn rules_rows(&self) -> Result<Vec<Value>, Refusal> {
        let runs = self.store.runs().await.map_err(internal)?;
        Ok(self
            .rules
            .iter()
            .map(|r| {
                let run = runs.iter().find(|x| x.rule == r.id);
                json!({
                    "id": r.id, "title": r.title, "severity": r.severity, "opd": r.opd,
                    "tier": r.tier, "interval": humantime(r.interval),
                    "last_run_at": run.map(|x| x.last_run_at.clone()),
                    "duration_ms": run.map(|x| x.duration_ms),
                    "error": run.and_then(|x| x.error.clone()),
                    "firing": run.map(|x| x.firing),
                })
            })
            .collect())
    }
}

/// Whether `view` may read an alert (its rule's tier and owning OPD).
pub fn may_read(view: &View, alert: &Alert) -> bool {
    view.reads(&super::rule::access_of(&alert.tier, &alert.opd))
}

fn visible(alerts: impl IntoIterator<Item = Alert>, view: &View) -> impl Iterator<Item = Value> {
    alerts
        .into_iter()
        .filter(move |a| may_read(view, a))
        .map(|a| row(&a))
}

/// An alert as the executor reads it.
pub fn row(a: &Alert) -> Value {
    serde_json::to_value(a).unwrap_or(Value::Null)
}

fn internal(e: String) -> Refusal {
    tracing::error!(error = %e, "state store");
    (
        ErrorCode::Internal,
        "the alert store cannot be read now".to_string(),
    )
}

fn humantime(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
