//! A plain retrier: a maximum number of attempts, a set of retryable statuses, a backoff (the
//! AWS variants, see [`super::backoff`]), and optionally a budget ([`super::budget`]).
//!
//! Per-try timeouts follow Envoy's `per_try_timeout`: an attempt cut by a `timeout` layer below
//! this one counts as a retryable failure whatever its status list says. Server pushback
//! (`grpc-retry-pushback-ms`) is honoured when asked, with A6's meaning.
//!
//! Order after a failed attempt: pushback that says no; a status not retried; the attempt
//! limit; the wait, which must end before the call's deadline; then the budget, consulted only
//! for a retry that will happen, so no budget is spent in vain.

use std::sync::Arc;
use std::time::Duration;

use super::backoff::{Backoff, BackoffState, Draws, Keyed};
use super::budget::{ActiveRequest, EnvoyBudget, RetryInFlight, TpsBudget};
use super::grpc::Codes;
use super::{Denied, Policy, Wait, draw_index};
use crate::call::{Call, Failure, FailureSource, Outcome};
use crate::protocol::Pushback;

/// Which budget, if any.
#[derive(Debug)]
pub enum Budget {
    /// No budget: only the attempt limit.
    None,
    /// Finagle's TPS budget.
    Tps(TpsBudget),
    /// Envoy's retries-in-flight budget.
    Envoy(Arc<EnvoyBudget>),
}

/// A plain retry policy, its jitter drawn from `D`.
#[derive(Debug)]
pub struct GenericPolicy<D = Keyed> {
    /// Most attempts per call, the first included.
    pub max_attempts: u32,
    /// Statuses retried.
    pub retry_on: Codes,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// Honour `grpc-retry-pushback-ms`.
    pub pushback: bool,
    /// The budget.
    pub budget: Budget,
    /// Where the jitter's draws come from.
    pub draws: D,
}

/// What a call keeps.
#[derive(Debug, Default)]
pub struct CallState {
    backoff: BackoffState,
    /// The attempt in flight, counted as an active request by an Envoy budget.
    active: Option<ActiveRequest>,
    /// The retry in flight (from its scheduling to its end), for an Envoy budget.
    retry: Option<RetryInFlight>,
}

impl<D: Draws> Policy for GenericPolicy<D> {
    type CallState = CallState;

    fn begin(&self, _: &Call) -> CallState {
        if let Budget::Tps(b) = &self.budget {
            b.deposit();
        }
        CallState::default()
    }

    fn attempt(&self, state: &mut CallState) {
        if let Budget::Envoy(b) = &self.budget {
            state.active = Some(b.request());
        }
    }

    fn retry(
        &self,
        state: &mut CallState,
        call: &Call,
        failure: &Failure,
        attempts: u32,
        left: Duration,
    ) -> Result<Wait, Denied> {
        // The attempt has ended, and with it the retry that was in flight (if any), as
        // Envoy's `resetRetry` counts it.
        state.active = None;
        state.retry = None;
        if self.pushback && failure.pushback.is_some_and(Pushback::says_stop) {
            return Err(Denied::Pushback);
        }
        let timed_out = failure.source == FailureSource::AttemptTimeout;
        if !(timed_out || self.retry_on.contains(failure.code)) {
            return Err(Denied::NotRetryable);
        }
        if attempts >= self.max_attempts {
            return Err(Denied::MaxAttempts);
        }
        let pushback_ms = failure.pushback.and_then(Pushback::a6_wait_ms);
        let wait = match (self.pushback, pushback_ms) {
            (true, Some(ms)) => {
                state.backoff = BackoffState::default();
                Wait {
                    delay: Duration::from_millis(u64::from(ms)),
                    pushback: true,
                }
            }
            _ => Wait {
                delay: self.backoff.next(
                    &mut state.backoff,
                    self.draws.draw(call.id, draw_index(call)),
                ),
                pushback: false,
            },
        };
        // A wait that outlasts the deadline ends the call; it must not spend the budget.
        if wait.delay >= left {
            return Err(Denied::Deadline);
        }
        match &self.budget {
            Budget::None => {}
            Budget::Tps(b) => {
                if !b.withdraw() {
                    return Err(Denied::Budget);
                }
            }
            Budget::Envoy(b) => state.retry = Some(b.retry().ok_or(Denied::Budget)?),
        }
        Ok(wait)
    }

    fn end(&self, _: CallState, _: &Outcome) {}
}
