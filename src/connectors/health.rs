//! What the gateway knows about a source's state: the record of its recent calls, the
//! report of `Query.sources` and `/readyz`, and the probe that connects to it once.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{AnySource, Source, breaker, sql};
use crate::error::{ErrorCode, SourceError};

/// What the gateway knows about a source's state from its recent calls.
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub last_success: Option<SystemTime>,
    pub last_error: Option<ErrorCode>,
    pub latency: Option<Duration>,
    pub consecutive_failures: u32,
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Source {
    /// The health report of `Query.sources` and `/readyz`.
    pub fn health_json(&self) -> Value {
        let h = self.health();
        let circuit = self.breaker.circuit();
        let file = match &self.kind {
            AnySource::File(f) => Some(f.health()),
            _ => None,
        };
        // A file that failed to reload: its last good copy serves.
        let problem = file.as_ref().and_then(|f| f.problem.as_ref());
        let status = match circuit {
            breaker::Circuit::Open => "DOWN",
            _ if problem.is_some() => "STALE",
            breaker::Circuit::HalfOpen => "DEGRADED",
            breaker::Circuit::Closed if h.consecutive_failures > 0 => "DEGRADED",
            breaker::Circuit::Closed => "UP",
        };
        let (calls, permits) = self.in_flight();
        let (pool, recycles, recycled_at) = match &self.kind {
            AnySource::Sql(s) => {
                let (n, at) = s.recycles();
                (Some(s.pool().usage()), Some(n), at)
            }
            AnySource::File(f) => (f.pool().map(|p| sql::Pool::Sqlite(p).usage()), None, None),
            AnySource::Http(_) => (None, None, None),
        };
        let mode = match &self.kind {
            AnySource::Sql(_) => "LIVE",
            AnySource::Http(h) if !h.is_snapshot() => "LIVE",
            AnySource::Http(_) | AnySource::File(_) => "SNAPSHOT",
        };
        serde_json::json!({
            "name": self.config.name,
            "mode": mode,
            "title": self.config.title,
            "opd": self.config.opd,
            "kind": self.config.kind.name(),
            "status": status,
            "lastSuccessAt": h.last_success.map(rfc3339),
            "latencyMs": h.latency.map(|d| d.as_secs_f64() * 1000.0),
            "circuit": circuit.as_str(),
            "lastError": h.last_error.map(|e| e.as_str()),
            "inFlight": calls,
            "concurrencyInUse": permits,
            "concurrencyLimit": self.config.max_concurrency,
            "poolOpen": pool.map(|p| p.size),
            "poolIdle": pool.map(|p| p.idle),
            "poolMax": pool.map(|p| p.max),
            "poolRecycles": recycles,
            "poolRecycledAt": recycled_at.map(rfc3339),
            "loadedAt": file.as_ref().map(|f| rfc3339(f.loaded_at)),
            "staleSince": problem.map(|p| rfc3339(p.1)),
            "staleSeconds": problem.map(|p| p.1.elapsed().unwrap_or_default().as_secs()),
            "problem": problem.map(|p| p.0.as_str()),
        })
    }

    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }
    /// Whether the source can be reached now, bounded by its timeout: a database is
    /// connected to (the connection then stays in its pool), a SQLite file opened. `Err`
    /// says why not, in words. HTTP and file sources are not probed (an HTTP endpoint has
    /// no request that is neutral to send; files were read when the source was built).
    pub async fn probe(&self) -> Result<(), String> {
        let AnySource::Sql(s) = &self.kind else {
            return Ok(());
        };
        let timeout = self.config.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        match s.pool().reachable(&self.name, deadline).await {
            Ok(()) => Ok(()),
            Err(sql::Failure::Unreachable(cause)) => Err(cause),
            Err(sql::Failure::Source(e)) => Err(e.detail.to_string()),
            Err(sql::Failure::NoConnection | sql::Failure::Timeout) => {
                Err(format!("no connection within {timeout:?}"))
            }
        }
    }

    /// [`Source::probe`] at startup: a source that cannot be reached is DOWN (its circuit
    /// open) from the first request, and the log says why. It recovers as after an outage:
    /// the first call after the open period probes it.
    pub async fn probe_at_start(&self) {
        if let Err(cause) = self.probe().await {
            self.breaker.trip();
            if let Ok(mut h) = self.health.lock() {
                h.last_error = Some(ErrorCode::SourceUnavailable);
                h.consecutive_failures += 1;
            }
            tracing::warn!(connector = %self.name, %cause, "source unreachable at startup: DOWN until a call succeeds");
        }
    }

    pub(super) fn record(&self, result: &Result<Vec<Value>, SourceError>, took: Duration) {
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        h.latency = Some(took);
        match result {
            Ok(_) => {
                h.last_success = Some(SystemTime::now());
                h.last_error = None;
                h.consecutive_failures = 0;
            }
            Err(e) => {
                h.last_error = Some(e.code);
                h.consecutive_failures += 1;
                tracing::warn!(connector = %self.name, code = %e.code, detail = %e.detail, "upstream call failed");
            }
        }
    }
}
