//! Retries: one service, [`Retry`], driven by a [`Policy`] that decides after each failed
//! attempt whether to try again and how long to wait.
//!
//! Two policies follow their references to the letter:
//! - [`grpc::GrpcPolicy`]: gRFC A6's retry policy with its throttling and server pushback, in
//!   the decision order grpc-go implements, or as a client library departs from it (its
//!   flavor, `profile::flavor`; see that module);
//! - [`generic::GenericPolicy`]: a plain retrier (max attempts, retryable statuses) with the AWS
//!   backoff variants, Envoy's per-try-timeout semantics, and an optional budget
//!   (Finagle/tower's TPS budget or Envoy's concurrency budget, in [`budget`]).
//!
//! Shared by both, in the service: an attempt is sent with `grpc-previous-rpc-attempts` set
//! (A6 "Exposed Retry Metadata"); a stream that failed after its first message is *committed*
//! and never retried (A6 "When Retries are Valid"); the call's deadline covers every attempt and
//! every wait, so a wait that would outlast the deadline ends the call at its deadline with
//! DEADLINE_EXCEEDED, as a gRPC client's does (its backoff timer loses to the deadline).
//! Layers stack: an application retrier above a mesh retrier multiplies attempts.

pub mod backoff;
pub mod budget;
pub mod generic;
pub mod grpc;
pub mod pushback;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use tonic::Code;
use tower::{Layer, ServiceExt};

use super::{Event, EventSink};
use crate::call::{AttemptKind, Call, CallService, Failure, Outcome, call_service};
use crate::clock::Clock;

/// Why a failed attempt was not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// The status is not one the policy retries.
    NotRetryable,
    /// The policy's maximum number of attempts was reached.
    MaxAttempts,
    /// A6 retry throttling: too few tokens left.
    Throttled,
    /// A retry budget had nothing left.
    Budget,
    /// The wait would have outlasted the call's deadline.
    Deadline,
    /// The server's pushback said not to retry.
    Pushback,
    /// A stream failed after its first message: committed, not retryable.
    Committed,
    /// The client library neither retries nor reports the failure: the call waits for its
    /// deadline (a client flavor's departure: C-core's pushback of 0, grpc-js 1.8–1.13.0's
    /// throttled retry).
    Hang,
}

impl Denied {
    /// The name used in results.json's `retry_denied`.
    pub fn name(self) -> &'static str {
        match self {
            Denied::NotRetryable => "not_retryable",
            Denied::MaxAttempts => "max_attempts",
            Denied::Throttled => "throttle",
            Denied::Budget => "budget",
            Denied::Deadline => "deadline",
            Denied::Pushback => "pushback",
            Denied::Committed => "committed",
            Denied::Hang => "hang",
        }
    }
}

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// The wait.
    pub delay: Duration,
    /// Whether the server's pushback set it (rather than the backoff).
    pub pushback: bool,
}

/// Decides, after each failed attempt, whether to retry. One policy value serves every call of
/// a strategy (it holds what is shared: throttle tokens, budgets); [`Policy::CallState`] is
/// what each call keeps (its backoff position, its budget slots).
pub trait Policy: Send + Sync + 'static {
    /// Per-call state.
    type CallState: Send + 'static;

    /// A call begins.
    fn begin(&self, call: &Call) -> Self::CallState;

    /// An attempt is about to be sent.
    fn attempt(&self, _state: &mut Self::CallState) {}

    /// Attempt number `attempts` (1 = the first) of `call` failed with `failure`, `left`
    /// before the call's deadline: the wait before the next attempt, or why there is none.
    /// A wait of `left` or more ends the call at its deadline; a policy may say so itself
    /// ([`Denied::Deadline`]) before it spends anything on the retry.
    fn retry(
        &self,
        state: &mut Self::CallState,
        call: &Call,
        failure: &Failure,
        attempts: u32,
        left: Duration,
    ) -> Result<Wait, Denied>;

    /// The wait before a retry is over: whether the retry may go after all (grpc-js checks
    /// its throttle only now). A refusal ends the call with the failure that was to be
    /// retried, or at its deadline for [`Denied::Hang`].
    fn before_retry(&self, _state: &mut Self::CallState) -> Result<(), Denied> {
        Ok(())
    }

    /// The call ended (OK or not) and will not be retried further.
    fn end(&self, state: Self::CallState, outcome: &Outcome);

    /// A6 throttle tokens now, if the policy has a throttle.
    fn tokens(&self) -> Option<f64> {
        None
    }
}

/// The index of a call's next random draw: the attempts it has sent so far, whatever layer sent
/// them. For a single retry layer this is the retry's number (1 for the first retry); with
/// stacked layers each layer's draws differ, where a per-layer count would repeat them.
pub fn draw_index(call: &Call) -> u32 {
    call.meter.attempts()
}

/// Builds [`Retry`] services sharing one policy.
pub struct RetryLayer<P> {
    policy: Arc<P>,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl<P> RetryLayer<P> {
    /// Retries by `policy`, reporting to `sink`, waiting on `clock`.
    pub fn new(policy: P, sink: Arc<dyn EventSink>, clock: Clock) -> Self {
        Self {
            policy: Arc::new(policy),
            sink,
            clock,
        }
    }
}

impl<S, P> Layer<S> for RetryLayer<P> {
    type Service = Retry<S, P>;

    fn layer(&self, inner: S) -> Retry<S, P> {
        Retry {
            inner,
            policy: Arc::clone(&self.policy),
            sink: Arc::clone(&self.sink),
            clock: self.clock.clone(),
        }
    }
}

/// Sends a call, and again after failures, as its policy decides.
pub struct Retry<S, P> {
    inner: S,
    policy: Arc<P>,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl<S: Clone, P> Clone for Retry<S, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            policy: Arc::clone(&self.policy),
            sink: Arc::clone(&self.sink),
            clock: self.clock.clone(),
        }
    }
}

// Each attempt waits for the inner service's readiness itself (`oneshot`).
call_service! {
    impl<S, P> for Retry<S, P>, ready = always, serve = run,
    where
        S: CallService + Clone + Send + 'static,
        P: Policy,
}

impl<S, P> Retry<S, P>
where
    S: CallService + Clone + Send + 'static,
    P: Policy,
{
    /// Reports the throttle's tokens after a change (a failure takes one, a success adds).
    fn report_tokens(&self) {
        if let Some(tokens) = self.policy.tokens() {
            self.sink.record(Event::Tokens {
                at: self.clock.now(),
                tokens,
            });
        }
    }

    async fn run(self, call: Call) -> Outcome {
        let mut state = self.policy.begin(&call);
        let mut attempts = 0u32;
        loop {
            let mut attempt = call.clone();
            attempt.previous_attempts = attempts;
            if attempts > 0 {
                attempt.kind = AttemptKind::Retry;
            }
            self.policy.attempt(&mut state);
            let outcome = self.inner.clone().oneshot(attempt).await;
            attempts += 1;
            let Err(failure) = &outcome else {
                self.policy.end(state, &outcome);
                self.report_tokens();
                return outcome;
            };
            let now = self.clock.now();
            let left = call.deadline.saturating_duration_since(now);
            let decision = if failure.committed {
                Err(Denied::Committed)
            } else {
                self.policy
                    .retry(&mut state, &call, failure, attempts, left)
            };
            self.report_tokens();
            let wait = match decision {
                Ok(wait) if wait.delay < left => wait,
                // The backoff timer would lose to the deadline: the call ends then.
                Ok(_) | Err(Denied::Deadline) => {
                    return self.at_deadline(&call, state, Denied::Deadline).await;
                }
                Err(Denied::Hang) => return self.at_deadline(&call, state, Denied::Hang).await,
                Err(denied) => {
                    let committed = failure.committed;
                    let outcome = self.refused(&call, state, outcome, denied);
                    if committed {
                        // A library that counts response headers as a success did so.
                        self.report_tokens();
                    }
                    return outcome;
                }
            };
            self.sink.record(Event::Retry { call: &call, wait });
            self.clock.sleep(wait.delay).await;
            match self.policy.before_retry(&mut state) {
                Ok(()) => {}
                Err(Denied::Hang) => return self.at_deadline(&call, state, Denied::Hang).await,
                Err(denied) => return self.refused(&call, state, outcome, denied),
            }
        }
    }

    /// The call will not be retried, for `reason`: it ends with `outcome`, the failure that
    /// was not retried.
    fn refused(
        &self,
        call: &Call,
        state: P::CallState,
        outcome: Outcome,
        reason: Denied,
    ) -> Outcome {
        self.sink.record(Event::RetryDenied { call, reason });
        self.policy.end(state, &outcome);
        outcome
    }

    /// The call will not be retried and waits for its deadline, as a gRPC client's does
    /// when its backoff timer loses to the deadline (or, for [`Denied::Hang`], when the
    /// library never comes back to it): DEADLINE_EXCEEDED then.
    fn at_deadline(
        &self,
        call: &Call,
        state: P::CallState,
        reason: Denied,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        self.sink.record(Event::RetryDenied { call, reason });
        let (clock, policy, deadline) =
            (self.clock.clone(), Arc::clone(&self.policy), call.deadline);
        async move {
            clock.sleep_until(deadline).await;
            let late = Err(Failure::local(Code::DeadlineExceeded));
            policy.end(state, &late);
            late
        }
    }
}
