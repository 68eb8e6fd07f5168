//! Faults in a source's data that a client sees only as a closed code, or not at all: a
//! value its field's type rejects (SOURCE_BAD_RESPONSE), and a batched answer none of whose
//! rows matches a parent (every child list empty, no error). Both are logged for whoever
//! runs the gateway, with the field, the binding and connector, and the values; each
//! (field or binding, connector, kind) at most once a minute, so a bad column in 10,000
//! rows is one line. What was logged is remembered in a bounded table.

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::PlanField;
use super::leaf::shown;
use super::write::Writer;
use crate::blueprint::Binding;
use crate::resolve::Engine;
use crate::resolve::node::key_string;

/// How long a logged fault stays quiet.
const WINDOW: Duration = Duration::from_secs(60);
/// Faults remembered at once. When all are within their window, a new one goes unlogged:
/// a thousand distinct faults a minute are a flood already.
const MAX_REMEMBERED: usize = 1024;

static LOGGED: LazyLock<Throttle> = LazyLock::new(|| Throttle::new(WINDOW, MAX_REMEMBERED));

#[derive(Clone, Copy, Hash)]
enum Fault {
    Value,
    NoBatchMatch,
}

/// Decides which occurrences of a fault are logged: the first, then the first after each
/// window, counting those in between.
struct Throttle {
    window: Duration,
    max: usize,
    seen: Mutex<rustc_hash::FxHashMap<u64, Seen>>,
}

struct Seen {
    at: Instant,
    unlogged: u64,
}

impl Throttle {
    fn new(window: Duration, max: usize) -> Throttle {
        Throttle {
            window,
            max,
            seen: Mutex::new(Default::default()),
        }
    }

    /// Whether the fault `key`, happening `now`, is to be logged: `Some(n)` with the `n`
    /// occurrences left unlogged since its last line.
    fn due(&self, key: u64, now: Instant) -> Option<u64> {
        let mut seen = crate::connectors::lock(&self.seen);
        if let Some(s) = seen.get_mut(&key) {
            if now.saturating_duration_since(s.at) < self.window {
                s.unlogged += 1;
                return None;
            }
            let unlogged = s.unlogged;
            *s = Seen {
                at: now,
                unlogged: 0,
            };
            return Some(unlogged);
        }
        if seen.len() >= self.max {
            seen.retain(|_, s| now.saturating_duration_since(s.at) < self.window);
            if seen.len() >= self.max {
                return None;
            }
        }
        seen.insert(
            key,
            Seen {
                at: now,
                unlogged: 0,
            },
        );
        Some(0)
    }
}

fn key(fault: Fault, name: &str, connector: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one((fault, name, connector))
}

impl Writer<'_, '_> {
    /// Logs a value of `f` its type rejects (`problem` says how; `v` is null when the
    /// source gave none), naming the binding whose answer the row is, when it is one.
    pub(super) fn report(&self, f: &PlanField, v: &Value, problem: &str) {
        let Some(engine) = self.engine else {
            return;
        };
        let from = self.from.map(|b| (b, engine.source_name(b)));
        let connector = from.as_ref().map_or("", |(_, c)| c);
        let Some(repeats) = LOGGED.due(key(Fault::Value, &f.field, connector), Instant::now())
        else {
            return;
        };
        let value = shown(v);
        match from {
            Some((binding, connector)) => tracing::warn!(
                field = %f.field,
                %connector,
                binding = %binding.name,
                %value,
                repeats,
                "{}: {problem}; the client gets SOURCE_BAD_RESPONSE",
                f.field
            ),
            None => tracing::warn!(
                field = %f.field,
                %value,
                repeats,
                "{}: {problem}; the client gets SOURCE_BAD_RESPONSE",
                f.field
            ),
        }
    }
}

/// How many keys of each side a log line shows.
const SHOWN_KEYS: usize = 3;

/// Logs a batched answer that has rows of which none matched any of the keys `asked` (one
/// per parent row): every child list is then empty without an error, which is almost
/// always a batch key naming the wrong column, or codes written differently on each side
/// (`35.03.08.2001` against `3503082001`).
pub(super) fn no_batch_match(
    engine: &Engine,
    binding: &Binding,
    batch_key: &str,
    asked: &[Option<Box<str>>],
    rows: &[Value],
) {
    let connector = engine.source_name(binding);
    if LOGGED
        .due(
            key(Fault::NoBatchMatch, &binding.name, &connector),
            Instant::now(),
        )
        .is_none()
    {
        return;
    }
    let mut distinct: Vec<&str> = asked.iter().flatten().map(|k| &**k).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let shown = first_distinct(asked.iter().flatten().map(|k| k.to_string())).join(", ");
    let (name, n, keys) = (&binding.name, rows.len(), distinct.len());
    let found = first_distinct(rows.iter().filter_map(|r| key_string(r.get(batch_key)?)));
    let message = if rows.iter().all(|r| r.get(batch_key).is_none()) {
        let columns = rows
            .first()
            .and_then(Value::as_object)
            .map(|o| o.keys().take(8).cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        format!(
            "{name}: none of {n} rows has the batch key column \"{batch_key}\", so none matched the {keys} keys asked ({shown}); the rows have columns {columns}: a misspelt batch.key, or a query that does not select it?"
        )
    } else if found.is_empty() {
        format!(
            "{name}: none of {n} rows matched the {keys} keys asked ({shown}): their batch key column \"{batch_key}\" is null in every row"
        )
    } else {
        format!(
            "{name}: none of {n} rows matched the {keys} keys asked (batch key \"{batch_key}\"): asked {shown}; rows have {} — a misspelt batch.key or codes in another format?",
            found.join(", ")
        )
    };
    tracing::warn!(binding = %binding.name, %connector, batch_key, "{message}");
}

/// The first few distinct values of `keys`, in order.
fn first_distinct(keys: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(SHOWN_KEYS);
    for k in keys {
        if out.len() == SHOWN_KEYS {
            break;
        }
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_logged_once_per_window_with_the_count_in_between() {
        let t = Throttle::new(Duration::from_secs(60), 8);
        let start = Instant::now();
        assert_eq!(t.due(1, start), Some(0));
        for s in 1..=10 {
            assert_eq!(t.due(1, start + Duration::from_secs(s)), None);
        }
        assert_eq!(t.due(2, start), Some(0), "another fault is its own");
        assert_eq!(t.due(1, start + Duration::from_secs(61)), Some(10));
        assert_eq!(t.due(1, start + Duration::from_secs(62)), None);
    }

    #[test]
    fn the_table_stays_bounded_and_makes_room_from_expired_entries() {
        let t = Throttle::new(Duration::from_secs(60), 4);
        let start = Instant::now();
        for k in 0..4 {
            assert_eq!(t.due(k, start), Some(0));
        }
        assert_eq!(t.due(99, start), None, "full of faults within their window");
        assert_eq!(crate::connectors::lock(&t.seen).len(), 4);
        let later = start + Duration::from_secs(61);
        assert_eq!(t.due(99, later), Some(0), "expired entries make room");
        assert_eq!(crate::connectors::lock(&t.seen).len(), 1);
    }

    #[test]
    fn concurrent_faults_of_one_kind_log_one_line() {
        let t = std::sync::Arc::new(Throttle::new(Duration::from_secs(60), 16));
        let now = Instant::now();
        let logged: usize = (0..8)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || (0..1000).filter(|_| t.due(7, now).is_some()).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap_or(0))
            .sum();
        assert_eq!(logged, 1);
    }
}
