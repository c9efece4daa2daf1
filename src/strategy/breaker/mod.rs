//! Circuit breakers: stop calling a backend that keeps failing, probe it after a while, and
//! resume when it answers again.
//!
//! One service, [`Breaker`], runs a state machine ([`Machine`]) that follows a reference
//! implementation to the letter:
//! - [`pybreaker::PyBreaker`]: danielfm/pybreaker's `CircuitBreaker` (consecutive failures);
//! - [`resilience4j::Resilience4j`]: resilience4j's `CircuitBreakerStateMachine` (failure and
//!   slow-call rates over a count- or time-based sliding window).
//!
//! A call's outcome is classified by its status: one of `failures` is a failure, one of
//! `ignore` (resilience4j only) is not recorded at all, anything else (OK included) is a
//! success. A call cancelled from above is recorded with the status its caller saw:
//! DEADLINE_EXCEEDED once its deadline has passed, CANCELLED before (the loser of a hedge race
//! above the breaker), which is a success unless `failures` lists it. (Both references see a
//! cancellation as an exception, a failure by default: list CANCELLED to match them.) A call the breaker refuses fails at once with
//! UNAVAILABLE, decided locally, and is counted as `short_circuited` (and as `fallback` when
//! the strategy answers refused calls with a fallback).
//!
//! Where the breaker sits decides what it sees: above a retry layer it sees each call's final
//! outcome; below it, each attempt. Both reference implementations serialise or synchronise
//! their callers; with calls in flight concurrently, an outcome counts for the state the
//! breaker is in when it arrives (as resilience4j's state machine does).

pub mod pybreaker;
pub mod resilience4j;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tonic::Code;
use tower::Layer;

use super::retry::grpc::Codes;
use super::{Event, EventSink};
use crate::call::BoxFuture;
use crate::call::{Call, CallService, Failure, Outcome, Reply, call_service, outcome_code};
use crate::clock::Clock;

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls are refused.
    Open,
    /// Trial calls go through.
    HalfOpen,
}

impl State {
    /// The name used in results.json.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

/// How a breaker counts an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A success.
    Success,
    /// A failure.
    Failure,
    /// Not recorded (resilience4j's ignored exceptions).
    Ignored,
}

/// A breaker's state machine.
pub trait Machine: Send + 'static {
    /// May a call start at `now`? (A transition may happen here: open → half-open.)
    fn admit(&mut self, now: Instant) -> bool;

    /// A call admitted earlier ended at `now` after `duration`, counted as `verdict`.
    fn record(&mut self, now: Instant, verdict: Verdict, duration: Duration);

    /// The state now.
    fn state(&self) -> State;
}

/// The statuses a breaker counts.
#[derive(Debug, Clone, Copy)]
pub struct Classes {
    /// Statuses that are failures.
    pub failures: Codes,
    /// Statuses not recorded at all.
    pub ignore: Codes,
}

impl Classes {
    /// The verdict on a call that ended with `code`.
    pub fn verdict(&self, code: Code) -> Verdict {
        if self.ignore.contains(code) {
            Verdict::Ignored
        } else if self.failures.contains(code) {
            Verdict::Failure
        } else {
            Verdict::Success
        }
    }
}

/// Builds [`Breaker`] services sharing one state machine.
pub struct BreakerLayer<M> {
    shared: Arc<Shared<M>>,
}

struct Shared<M> {
    machine: Mutex<M>,
    classes: Classes,
    fallback: bool,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl<M: Machine> Shared<M> {
    /// Runs `f` on the machine and reports a change of state.
    fn with<R>(&self, f: impl FnOnce(&mut M) -> R) -> R {
        let mut m = self.machine.lock().unwrap_or_else(|e| e.into_inner());
        let before = m.state();
        let out = f(&mut m);
        let after = m.state();
        drop(m);
        if after != before {
            self.sink.record(Event::BreakerState {
                at: self.clock.now(),
                state: after,
            });
        }
        out
    }
}

impl<M: Machine> BreakerLayer<M> {
    /// A breaker run by `machine`, counting outcomes by `classes`; refused calls are reported
    /// as answered by a fallback when `fallback` is set.
    pub fn new(
        machine: M,
        classes: Classes,
        fallback: bool,
        sink: Arc<dyn EventSink>,
        clock: Clock,
    ) -> Self {
        sink.record(Event::BreakerState {
            at: clock.now(),
            state: machine.state(),
        });
        Self {
            shared: Arc::new(Shared {
                machine: Mutex::new(machine),
                classes,
                fallback,
                sink,
                clock,
            }),
        }
    }
}

impl<S, M> Layer<S> for BreakerLayer<M> {
    type Service = Breaker<S, M>;

    fn layer(&self, inner: S) -> Breaker<S, M> {
        Breaker {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Lets calls through, or refuses them, as its state machine says.
pub struct Breaker<S, M> {
    inner: S,
    shared: Arc<Shared<M>>,
}

impl<S: Clone, M> Clone for Breaker<S, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Records an admitted call's outcome when it ends, or, if it is dropped first (its deadline
/// passed above the breaker), the status its caller saw.
struct Pending<M: Machine> {
    shared: Arc<Shared<M>>,
    started: Instant,
    deadline: Instant,
    done: bool,
}

impl<M: Machine> Pending<M> {
    fn finish(&mut self, code: Code) {
        self.done = true;
        let now = self.shared.clock.now();
        let verdict = self.shared.classes.verdict(code);
        let duration = now.saturating_duration_since(self.started);
        self.shared.with(|m| m.record(now, verdict, duration));
    }
}

impl<M: Machine> Drop for Pending<M> {
    fn drop(&mut self) {
        if !self.done {
            let code = if self.shared.clock.now() >= self.deadline {
                Code::DeadlineExceeded
            } else {
                Code::Cancelled
            };
            self.finish(code);
        }
    }
}

call_service! {
    impl<S, M> for Breaker<S, M>, ready = inner,
    where
        S: CallService,
        M: Machine,
}

impl<S, M> Breaker<S, M>
where
    S: CallService,
    M: Machine,
{
    /// Its work on one call (its `Service::call`).
    fn serve(&mut self, call: Call) -> BoxFuture<Outcome> {
        let shared = &self.shared;
        let now = shared.clock.now();
        if !shared.with(|m| m.admit(now)) {
            shared.sink.record(Event::ShortCircuited {
                call: &call,
                fallback: shared.fallback,
            });
            let refused = if shared.fallback {
                Ok(Reply {
                    fallback: true,
                    ..Reply::default()
                })
            } else {
                Err(Failure::local(Code::Unavailable))
            };
            return Box::pin(std::future::ready(refused));
        }
        let mut pending = Pending {
            shared: Arc::clone(shared),
            started: now,
            deadline: call.deadline,
            done: false,
        };
        let inner = self.inner.call(call);
        Box::pin(async move {
            let outcome = inner.await;
            pending.finish(outcome_code(&outcome));
            outcome
        })
    }
}
