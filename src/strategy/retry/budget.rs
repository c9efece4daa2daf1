//! Retry budgets: a cap on retries relative to the traffic, instead of (or besides) a cap per
//! call. A fixed "3 retries per call" triples the load on a backend that is already failing; a
//! budget lets a few calls retry when failures are rare and stops retrying when they are not.
//!
//! - [`TpsBudget`]: Finagle's `RetryBudget` (twitter/finagle, `RetryBudget.apply`; tower's
//!   `retry::budget::TpsBudget` is the same design). Each call deposits `retry_percent` of a
//!   retry; each retry withdraws one; deposits expire after `ttl`; a reserve allows
//!   `min_per_sec` retries per second whatever the traffic. Defaults (Finagle's): ttl 10 s,
//!   min_per_sec 10, retry_percent 0.2. As in both, the window moves in tenths of the ttl.
//!   tower's own type is not reused because it reads `tokio::time::Instant::now()`, which on a
//!   simulated clock is not the run's time.
//! - [`EnvoyBudget`]: Envoy's cluster `retry_budget`: retries in flight may not exceed
//!   `max(budget_percent × active requests, min_retry_concurrency)`. Defaults (Envoy's): 20%, 3.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::Clock;

/// Finagle's `ScaleFactor`: the units of one deposit.
const SCALE: i64 = 1000;

/// Finagle's windowed retry budget, on the run's clock.
#[derive(Debug)]
pub struct TpsBudget {
    clock: Clock,
    state: Mutex<Window>,
    reserve: i64,
    deposit: i64,
    withdraw: i64,
    slot: Duration,
}

#[derive(Debug)]
struct Window {
    slots: [i64; 10],
    current: usize,
    since: Instant,
}

impl TpsBudget {
    /// A budget of `retry_percent` retries per call (0 to 1000 %), deposits living `ttl`
    /// (1 to 60 s), with a reserve of `min_per_sec` retries per second.
    pub fn new(clock: Clock, ttl: Duration, min_per_sec: u32, retry_percent: f64) -> Self {
        // As Finagle scales it (`RetryBudget.apply`): 1000 units per deposit and
        // 1000 / percent per withdrawal, so 40% is 40 retries per 100 calls. (tower scales by
        // 1 and 1 / percent below 100%, which truncates: 40% would be 50.)
        let (deposit, withdraw) = if retry_percent <= 0.0 {
            (0, 1)
        } else {
            (SCALE, ((SCALE as f64 / retry_percent) as i64).max(1))
        };
        let secs = ttl.as_secs().clamp(1, 60) as i64;
        Self {
            state: Mutex::new(Window {
                slots: [0; 10],
                current: 0,
                since: clock.now(),
            }),
            clock,
            reserve: i64::from(min_per_sec)
                .saturating_mul(secs)
                .saturating_mul(withdraw),
            deposit,
            withdraw,
            slot: Duration::from_secs(secs as u64) / 10,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Window) -> R) -> R {
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        // Slots older than the ttl are forgotten, one tenth of the ttl at a time.
        while now.saturating_duration_since(w.since) >= self.slot {
            w.current = (w.current + 1) % w.slots.len();
            let current = w.current;
            w.slots[current] = 0;
            w.since += self.slot;
            if now.saturating_duration_since(w.since) > self.slot * 10 {
                w.slots = [0; 10];
                w.since = now;
            }
        }
        f(&mut w)
    }

    /// A call was made.
    pub fn deposit(&self) {
        self.with(|w| w.slots[w.current] = w.slots[w.current].saturating_add(self.deposit));
    }

    /// Takes a retry from the budget; `false` if there is none left.
    pub fn withdraw(&self) -> bool {
        self.with(|w| {
            let balance = w
                .slots
                .iter()
                .fold(self.reserve, |sum, s| sum.saturating_add(*s));
            if balance >= self.withdraw {
                w.slots[w.current] -= self.withdraw;
                true
            } else {
                false
            }
        })
    }
}

/// Envoy's retry budget: a cap on retries in flight.
#[derive(Debug)]
pub struct EnvoyBudget {
    percent: f64,
    min_concurrency: u64,
    active: AtomicI64,
    retries: AtomicU64,
}

/// An attempt counted as an active request while it lives.
#[derive(Debug)]
pub struct ActiveRequest(Arc<EnvoyBudget>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A retry counted as in flight while it lives.
#[derive(Debug)]
pub struct RetryInFlight(Arc<EnvoyBudget>);

impl Drop for RetryInFlight {
    fn drop(&mut self) {
        self.0.retries.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EnvoyBudget {
    /// At most `max(budget_percent % of active requests, min_retry_concurrency)` retries in
    /// flight.
    pub fn new(budget_percent: f64, min_retry_concurrency: u32) -> Arc<Self> {
        Arc::new(Self {
            percent: budget_percent,
            min_concurrency: u64::from(min_retry_concurrency),
            active: AtomicI64::new(0),
            retries: AtomicU64::new(0),
        })
    }

    /// Counts an attempt as an active request until the returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveRequest(Arc::clone(self))
    }

    /// A slot for one more retry in flight, if the budget allows it.
    pub fn retry(self: &Arc<Self>) -> Option<RetryInFlight> {
        // Envoy's `RetryBudgetImpl::max`: `max<uint64_t>(percent / 100 * active,
        // min_retry_concurrency)`, the product truncated.
        let active = self.active.load(Ordering::Acquire).max(0) as f64;
        let limit = (((self.percent / 100.0) * active) as u64).max(self.min_concurrency);
        self.retries
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                (r < limit).then_some(r + 1)
            })
            .ok()
            .map(|_| RetryInFlight(Arc::clone(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::sim::SimClock;

    fn sim<F: std::future::Future>(f: impl FnOnce(Clock) -> F) -> F::Output {
        let rt = crate::clock::test_runtime(true);
        rt.block_on(async { f(Clock::Sim(SimClock::start())).await })
    }

    /// 20% of 100 calls is 20 retries, plus the reserve (min 0 here); deposits expire after
    /// the ttl.
    #[test]
    fn tps_budget_allows_its_percentage_and_forgets_old_deposits() {
        sim(|clock| async move {
            let b = TpsBudget::new(clock.clone(), Duration::from_secs(10), 0, 0.2);
            for _ in 0..100 {
                b.deposit();
            }
            let allowed = (0..50).filter(|_| b.withdraw()).count();
            assert_eq!(allowed, 20);
            for _ in 0..100 {
                b.deposit();
            }
            clock.sleep(Duration::from_secs(11)).await;
            assert!(!b.withdraw(), "the deposits are older than the ttl");
        });
    }

    /// Finagle's scaling keeps percentages whose reciprocal is not whole: 40% of 100 calls is
    /// 40 retries (tower's 1 / percent truncation would give 50), 30% is 30.
    #[test]
    fn tps_budget_percentages_are_exact() {
        for (percent, want) in [(0.4, 40), (0.3, 30), (0.6, 60), (2.5, 250)] {
            sim(|clock| async move {
                let b = TpsBudget::new(clock, Duration::from_secs(10), 0, percent);
                for _ in 0..100 {
                    b.deposit();
                }
                let allowed = (0..500).filter(|_| b.withdraw()).count();
                assert_eq!(allowed, want, "{percent}");
            });
        }
    }

    /// Inputs at the edge of validation do not overflow.
    #[test]
    fn tiny_percentages_and_big_reserves_saturate() {
        sim(|clock| async move {
            let b = TpsBudget::new(clock, Duration::from_secs(60), u32::MAX, 1e-18);
            b.deposit();
            assert!(b.withdraw());
        });
    }

    /// Finagle's reserve: min_per_sec × ttl retries with no traffic at all.
    #[test]
    fn tps_budget_reserve_allows_min_per_second_times_ttl() {
        sim(|clock| async move {
            let b = TpsBudget::new(clock, Duration::from_secs(10), 10, 0.2);
            let allowed = (0..500).filter(|_| b.withdraw()).count();
            assert_eq!(allowed, 100);
        });
    }

    /// 20% of 40 active requests is 8 retries in flight; with 5 active requests, the floor of 3.
    #[test]
    fn envoy_budget_caps_retries_in_flight() {
        let b = EnvoyBudget::new(20.0, 3);
        let calls: Vec<_> = (0..40).map(|_| b.request()).collect();
        let retries: Vec<_> = (0..20).filter_map(|_| b.retry()).collect();
        assert_eq!(retries.len(), 8);
        drop(retries);
        drop(calls);
        let _few: Vec<_> = (0..5).map(|_| b.request()).collect();
        let retries: Vec<_> = (0..20).filter_map(|_| b.retry()).collect();
        assert_eq!(retries.len(), 3);
    }
}
