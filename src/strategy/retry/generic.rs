//! A plain retrier: a maximum number of attempts, a set of retryable statuses, a backoff (the
//! AWS variants, see [`super::backoff`]), and optionally a budget ([`super::budget`]).
//!
//! Per-try timeouts follow Envoy's `per_try_timeout`: an attempt cut by a `timeout` layer below
//! this one counts as a retryable failure whatever its status list says. Server pushback
//! (`grpc-retry-pushback-ms`) is honoured when asked, with A6's meaning.
//!
//! Order after a failed attempt: pushback that says no; a status not retried; the attempt
//! limit; the budget (only consulted for a retry that would otherwise happen, so no budget is
//! spent in vain); then the wait.

use std::sync::Arc;

use super::backoff::{Backoff, BackoffState, Draws, Keyed};
use super::budget::{ActiveCall, EnvoyBudget, RetryInFlight, TpsBudget};
use super::grpc::Codes;
use super::{Denied, Policy, Wait};
use crate::call::{Call, Failure, FailureSource, Outcome};
use crate::status::Pushback;

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
    _active: Option<ActiveCall>,
    retry: Option<RetryInFlight>,
}

impl<D: Draws> Policy for GenericPolicy<D> {
    type CallState = CallState;

    fn begin(&self, _: &Call) -> CallState {
        let active = match &self.budget {
            Budget::Tps(b) => {
                b.deposit();
                None
            }
            Budget::Envoy(b) => Some(b.call()),
            Budget::None => None,
        };
        CallState {
            _active: active,
            ..CallState::default()
        }
    }

    fn retry(
        &self,
        state: &mut CallState,
        call: &Call,
        failure: &Failure,
        attempts: u32,
    ) -> Result<Wait, Denied> {
        // The retry that was in flight (if any) has ended.
        state.retry = None;
        if self.pushback && failure.pushback == Some(Pushback::DontRetry) {
            return Err(Denied::Pushback);
        }
        let timed_out = failure.source == FailureSource::AttemptTimeout;
        if !(timed_out || self.retry_on.contains(failure.code)) {
            return Err(Denied::NotRetryable);
        }
        if attempts >= self.max_attempts {
            return Err(Denied::MaxAttempts);
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
        if let (true, Some(Pushback::RetryAfterMs(ms))) = (self.pushback, failure.pushback) {
            state.backoff = BackoffState::default();
            return Ok(Wait {
                delay: std::time::Duration::from_millis(u64::from(ms)),
                pushback: true,
            });
        }
        let u = self.draws.draw(call.id, attempts);
        Ok(Wait {
            delay: self.backoff.next(&mut state.backoff, u),
            pushback: false,
        })
    }

    fn end(&self, _: CallState, _: &Outcome) {}
}
