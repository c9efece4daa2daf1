//! A token-bucket quota in front of the backend, on the run's clock.
//!
//! The quota is `governor`'s GCRA rate limiter (a token bucket: `rate` requests per second on
//! average, `burst` at once). governor reads time through its own `Clock` trait; here that
//! clock is the run's [`Clock`], so on a simulated clock the quota refills in simulated time.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota as GovernorQuota, RateLimiter};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::profile::backend::QuotaPlan;

/// governor's view of the run's clock: time since the quota was created.
#[derive(Debug, Clone)]
struct RunClock {
    clock: Clock,
    origin: Instant,
}

impl GovernorClock for RunClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.clock.now().saturating_duration_since(self.origin)
    }
}

/// The quota of one backend.
pub struct Quota {
    limiter: RateLimiter<NotKeyed, InMemoryState, RunClock, NoOpMiddleware<Duration>>,
    clock: RunClock,
}

impl std::fmt::Debug for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quota").finish_non_exhaustive()
    }
}

impl Quota {
    /// A full bucket for `plan`, starting now on `clock`.
    pub fn new(plan: &QuotaPlan, clock: &Clock) -> Self {
        let clock = RunClock {
            clock: clock.clone(),
            origin: clock.now(),
        };
        let period = Duration::from_secs_f64(1.0 / plan.rate).max(Duration::from_nanos(1));
        let quota = GovernorQuota::with_period(period)
            .expect("the period is above zero")
            .allow_burst(NonZeroU32::new(plan.burst).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Takes one request's token; `Err(wait)` when the quota is spent, with the time until the
    /// next token.
    pub fn check(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::sim::SimClock;

    #[test]
    fn the_bucket_refills_on_the_run_clock() {
        let rt = crate::clock::test_runtime(true);
        rt.block_on(async {
            let clock = Clock::Sim(SimClock::start());
            let q = Quota::new(
                &QuotaPlan {
                    rate: 10.0,
                    burst: 3,
                    pushback: true,
                },
                &clock,
            );
            assert!(
                (0..3).all(|_| q.check().is_ok()),
                "a full bucket lets a burst through"
            );
            let wait = q.check().unwrap_err();
            assert_eq!(wait, Duration::from_millis(100), "one token every 100 ms");
            clock.sleep(Duration::from_millis(100)).await;
            assert!(q.check().is_ok());
            assert!(q.check().is_err());
        });
    }
}
