//! Strategies as tower layers over a typed [`Call`].
//!
//! A strategy is a stack, built once per run from its [`StrategyPlan`]:
//!
//! ```text
//! deadline (the call's deadline, covering every attempt)
//!   → the profile's layers, top to bottom (per-attempt timeout; retry, hedge, breaker: later)
//!     → instrument (one event per attempt start and end)
//!       → transport (gRPC, or the backend called directly)
//! ```
//!
//! Each layer is a plain `tower::Layer`, usable in any tower stack over `Call`. A layer reports
//! what it does through an [`EventSink`], never by reaching into the recorder. Adding a strategy
//! is a new module here, a [`LayerPlan`] variant, and one arm in [`build`].

pub mod instrument;
pub mod timeout;

use std::sync::Arc;

use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{Layer, Service};

use crate::call::{Call, Failure, Outcome, Reply};
use crate::clock::Clock;
use crate::profile::{LayerPlan, StrategyPlan};

/// A strategy stack with its type erased: what the driver calls.
pub type Stack = BoxCloneService<Call, Reply, Failure>;

/// Something a strategy did, reported to the [`EventSink`].
#[derive(Debug)]
pub enum Event<'a> {
    /// An attempt is about to be sent.
    AttemptStarted {
        /// The attempt (its kind and number are on the call).
        call: &'a Call,
        /// When.
        at: Instant,
    },
    /// An attempt ended: answered, failed, or abandoned by the client.
    AttemptFinished {
        /// The attempt.
        call: &'a Call,
        /// When it was sent.
        started: Instant,
        /// When it ended.
        ended: Instant,
        /// Its outcome. An abandoned attempt is CANCELLED, or DEADLINE_EXCEEDED if its
        /// deadline had passed.
        outcome: &'a Outcome,
    },
}

/// Where strategies report what they did.
pub trait EventSink: Send + Sync + 'static {
    /// Records one event. Called on the hot path: keep it short.
    fn record(&self, event: Event<'_>);
}

/// Builds the stack of a strategy over a transport; its clock reads and waits go through `clock`.
pub fn build<T>(
    strategy: &StrategyPlan,
    transport: T,
    sink: Arc<dyn EventSink>,
    clock: &Clock,
) -> Stack
where
    T: Service<Call, Response = Reply, Error = Failure> + Clone + Send + 'static,
    T::Future: Send + 'static,
{
    let mut stack =
        Stack::new(instrument::InstrumentLayer::new(sink, clock.clone()).layer(transport));
    for layer in strategy.layers.iter().rev() {
        stack = match layer {
            LayerPlan::Timeout { timeout } => {
                Stack::new(timeout::TimeoutLayer::per_attempt(*timeout, clock.clone()).layer(stack))
            }
        };
    }
    Stack::new(timeout::TimeoutLayer::call_deadline(clock.clone()).layer(stack))
}
