//! Rate limits per client and tier (`[security.rate_limits]`): one GCRA token bucket per
//! client, the token's `sub` when it has one, else the client's address. Past its budget a
//! client is answered 429 `RATE_LIMITED` with `Retry-After`, before its request is parsed.
//!
//! The buckets are bounded: a table of at most [`MAX_CLIENTS`] per tier (moka: rarely seen
//! clients leave first), each forgotten once idle for its whole period, when it would be
//! full again anyway. A client pushed out by addresses made up by the million comes back
//! with a full bucket; nobody else's budget changes.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::access::Tier;
use crate::auth::Caller;
use crate::config::{Rate, Security};

/// Clients remembered per tier (a few hundred bytes each).
pub const MAX_CLIENTS: u64 = 100_000;

/// One budget: a bucket per client key, at most [`MAX_CLIENTS`] of them.
pub struct Budget {
    quota: Quota,
    buckets: moka::sync::Cache<String, Arc<DefaultDirectRateLimiter>>,
    clock: DefaultClock,
}

impl Budget {
    pub fn new(rate: Rate) -> Option<Budget> {
        Some(Budget {
            quota: quota(rate)?,
            buckets: moka::sync::Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(rate.per)
                .build(),
            clock: DefaultClock::default(),
        })
    }

    /// Spends one of `client`'s budget; `Err` holds how long until the next is allowed.
    pub fn spend(&self, client: &str) -> Result<(), Duration> {
        self.buckets
            .get_with_by_ref(client, || Arc::new(RateLimiter::direct(self.quota)))
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The key a client's buckets are kept under: its token's `sub`, else its address.
pub fn client_key(caller: &Caller, ip: Option<IpAddr>) -> String {
    match (&caller.sub, ip) {
        (Some(sub), _) => format!("s:{sub}"),
        (None, Some(ip)) => format!("a:{ip}"),
        (None, None) => "a:unknown".to_string(),
    }
}

/// One budget per tier that has one.
pub struct Limits {
    tiers: [Option<Budget>; 3],
}

fn quota(rate: Rate) -> Option<Quota> {
    let burst = NonZeroU32::new(rate.count)?;
    Quota::with_period(rate.per / rate.count).map(|q| q.allow_burst(burst))
}

impl Limits {
    pub fn new(security: &Security) -> Limits {
        let limiter = |tier| Budget::new(security.rate(tier)?);
        Limits {
            tiers: [
                limiter(Tier::Public),
                limiter(Tier::Internal),
                limiter(Tier::Restricted),
            ],
        }
    }

    /// Spends one request of `caller`'s budget; `Err` holds how long until the next one is
    /// allowed. `ip` is the client's address (`None` when unknown: those share a bucket).
    pub fn check(&self, caller: &Caller, ip: Option<IpAddr>) -> Result<(), Duration> {
        let Some(limiter) = self
            .tiers
            .get(caller.view.tier().index())
            .and_then(Option::as_ref)
        else {
            return Ok(());
        };
        limiter.spend(&client_key(caller, ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::View;

    fn limits(public: &str) -> Limits {
        Limits::new(&Security {
            rates: [crate::config::parse_rate(public).ok().flatten(), None, None],
            ..Security::default()
        })
    }

    fn anonymous() -> Caller {
        Caller::anonymous()
    }

    #[test]
    fn a_client_gets_its_budget_then_waits() {
        let l = limits("3/m");
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(l.check(&anonymous(), Some(ip)).is_ok());
        }
        let wait = l.check(&anonymous(), Some(ip)).err();
        assert!(
            wait.is_some_and(|w| w > Duration::from_secs(10) && w <= Duration::from_secs(20)),
            "{wait:?}"
        );
        // Another address has its own budget.
        assert!(l.check(&anonymous(), Some([10, 0, 0, 2].into())).is_ok());
    }

    #[test]
    fn a_token_is_limited_by_its_sub_whatever_its_address() {
        let l = limits("1/m");
        let mut caller = anonymous();
        caller.sub = Some("warga-1".into());
        assert!(l.check(&caller, Some([10, 0, 0, 1].into())).is_ok());
        assert!(l.check(&caller, Some([10, 0, 0, 2].into())).is_err());
    }

    #[test]
    fn tiers_without_a_budget_are_not_limited() {
        let l = limits("1/m");
        let staff = Caller {
            view: View::Internal,
            sub: Some("staff".into()),
            claims: serde_json::Value::Null,
            client: None,
        };
        for _ in 0..100 {
            assert!(l.check(&staff, None).is_ok());
        }
    }

    #[test]
    fn made_up_addresses_never_grow_the_table_past_its_bound() {
        let l = limits("5/h");
        for i in 0..(MAX_CLIENTS as u32 + 20_000) {
            let _ = l.check(&anonymous(), Some(IpAddr::from(i.to_be_bytes())));
        }
        let t = l.tiers.first().and_then(Option::as_ref).map(|t| {
            t.buckets.run_pending_tasks();
            t.buckets.entry_count()
        });
        assert!(t.is_some_and(|n| n <= MAX_CLIENTS), "{t:?}");
    }
}
