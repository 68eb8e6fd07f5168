//! What the state store hands out and takes in: alerts, their follow-ups, firings, filters,
//! rule runs, events and refusals, and the one conversion of stored times to text.

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};

/// What happened to an alert, as subscribers and the NOTIFY payload name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Raised,
    Changed,
}

/// One alert event as every instance's subscribers receive it: the alert as loaded after
/// the change, never the payload's copy.
#[derive(Clone, Debug, Serialize)]
pub struct AlertEvent {
    pub kind: EventKind,
    pub alert: Alert,
}

/// A lifecycle change the alert's state does not allow (or that the store could not
/// make); the text is meant for the person who asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// A rule that holds for one (region, key) at one evaluation.
#[derive(Clone, Debug)]
pub struct Firing {
    pub rule: String,
    pub title: String,
    /// INFO | WARNING | CRITICAL
    pub severity: String,
    pub opd: String,
    /// PUBLIC | INTERNAL | RESTRICTED
    pub tier: String,
    pub region_code: String,
    pub region_name: String,
    /// "" when the rule has none.
    pub key: String,
    pub message: String,
    pub recommendation: String,
    pub evidence: serde_json::Value,
    /// Webhook URLs told when this firing raises an alert.
    pub webhooks: Vec<String>,
    pub now_ms: i64,
}

/// An alert with its history. Field names are the GraphQL layer's (snake_case).
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    pub id: i64,
    pub rule: String,
    pub title: String,
    pub severity: String,
    pub opd: String,
    pub tier: String,
    pub region_code: String,
    pub region_name: String,
    pub key: String,
    /// OPEN | ACKNOWLEDGED | RESOLVED
    pub status: String,
    pub message: String,
    pub recommendation: String,
    pub evidence: serde_json::Value,
    pub raised_at: String,
    pub last_seen_at: String,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    /// AUTO | MANUAL
    pub resolution: Option<String>,
    /// Oldest first.
    pub follow_ups: Vec<FollowUp>,
}

/// One entry of an alert's history: who did what, when.
#[derive(Clone, Debug, Serialize)]
pub struct FollowUp {
    pub by: String,
    pub at: String,
    pub note: String,
    /// NOTE | ACKNOWLEDGED | RESOLVED
    pub kind: String,
}

/// Which alerts to list; every field is compared as a bound parameter.
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    pub status: Option<String>,
    pub severity: Option<String>,
    /// A region code.
    pub region: Option<String>,
    pub opd: Option<String>,
    /// At most this many (default [`DEFAULT_LIMIT`], never more than [`MAX_LIMIT`]).
    pub limit: Option<i64>,
}

/// Alerts listed when the filter names no limit.
pub const DEFAULT_LIMIT: i64 = 200;
/// The most alerts one listing returns, whatever the filter asks.
pub const MAX_LIMIT: i64 = 1000;

impl AlertFilter {
    pub(super) fn bounded_limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// A rule's last evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct RuleRun {
    pub rule: String,
    /// RFC 3339 (see [`rfc3339`]).
    pub last_run_at: String,
    pub duration_ms: f64,
    pub error: Option<String>,
    pub firing: i64,
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds, the form every time leaves the
/// store in ("" for a time chrono cannot represent, which no stored time is).
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// RFC 3339 text back to epoch milliseconds.
pub(super) fn epoch_ms(text: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))
}

/// The wall clock in epoch milliseconds (webhook schedules; alert times come from callers).
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
