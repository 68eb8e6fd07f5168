//! A circuit breaker per connector: after N consecutive failures the source is left alone for
//! a while (callers fail fast and the cache serves stale data), then one probe decides.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Circuit {
    Closed,
    Open,
    HalfOpen,
}

impl Circuit {
    pub fn as_str(self) -> &'static str {
        match self {
            Circuit::Closed => "CLOSED",
            Circuit::Open => "OPEN",
            Circuit::HalfOpen => "HALF_OPEN",
        }
    }
}

enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe call is out; everyone else fails fast until it returns.
    HalfOpen,
}

pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold,
            open_for,
        }
    }

    /// Whether a call may go to the source now.
    pub fn allow(&self) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        match *s {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *s = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn success(&self) {
        if let Ok(mut s) = self.state.lock() {
            *s = State::Closed { failures: 0 };
        }
    }

    pub fn failure(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        *s = match *s {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            State::Open { until } => State::Open { until },
            _ => State::Open {
                until: Instant::now() + self.open_for,
            },
        };
    }

    /// Opens the circuit now, whatever the count: the source is known to be down (it was
    /// unreachable at startup). After the open period one call probes it, as after failures.
    pub fn trip(&self) {
        if let Ok(mut s) = self.state.lock() {
            *s = State::Open {
                until: Instant::now() + self.open_for,
            };
        }
    }

    pub fn circuit(&self) -> Circuit {
        match self.state.lock().map(|s| match *s {
            State::Closed { .. } => Circuit::Closed,
            State::Open { until } if Instant::now() >= until => Circuit::HalfOpen,
            State::Open { .. } => Circuit::Open,
            State::HalfOpen => Circuit::HalfOpen,
        }) {
            Ok(c) => c,
            Err(_) => Circuit::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_once() {
        let b = Breaker::new(2, Duration::from_millis(20));
        b.failure();
        assert!(b.allow());
        b.failure();
        assert_eq!(b.circuit(), Circuit::Open);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow(), "one probe after the open period");
        assert!(!b.allow(), "only one");
        b.success();
        assert_eq!(b.circuit(), Circuit::Closed);
        assert!(b.allow());
    }

    #[test]
    fn a_tripped_circuit_is_open_at_once_then_probes_once() {
        let b = Breaker::new(5, Duration::from_millis(20));
        b.trip();
        assert_eq!(b.circuit(), Circuit::Open);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow(), "one probe after the open period");
        assert!(!b.allow(), "only one");
        b.success();
        assert_eq!(b.circuit(), Circuit::Closed);
    }
}
