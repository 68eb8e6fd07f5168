//! What the process's reloads came to: counts by outcome (for `/metrics`'
//! `simpul_reloads_total{outcome}`) and the last one's outcome (in `/readyz`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// Reloads so far, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reloads {
    /// Swapped in.
    pub ok: u64,
    /// Refused: the old model kept serving.
    pub failed: u64,
}

/// One per process, handed from model to model.
#[derive(Default)]
pub struct Status {
    ok: AtomicU64,
    failed: AtomicU64,
    last: Mutex<Option<Value>>,
}

impl Status {
    pub fn counts(&self) -> Reloads {
        Reloads {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    pub(super) fn succeeded(&self, generation: u64, summary: &str) {
        self.ok.fetch_add(1, Ordering::Relaxed);
        self.set(json!({
            "outcome": "ok",
            "at": now(),
            "generation": generation,
            "summary": summary,
        }));
    }

    pub(super) fn refused(&self, serving: u64, problems: &[String]) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.set(json!({
            "outcome": "failed",
            "at": now(),
            "generation": serving,
            "problems": problems,
        }));
    }

    fn set(&self, last: Value) {
        if let Ok(mut slot) = self.last.lock() {
            *slot = Some(last);
        }
    }

    /// `{"ok": n, "failed": n, "last": {...} | null}` for `/readyz`.
    pub fn json(&self) -> Value {
        let Reloads { ok, failed } = self.counts();
        let last = self.last.lock().ok().and_then(|l| l.clone());
        json!({ "ok": ok, "failed": failed, "last": last })
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
