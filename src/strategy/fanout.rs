//! Fan-out (scatter-gather): one call becomes `n` sub-calls to the backend, sent at once, and
//! completes when `need` of them have succeeded (all of them by default).
//!
//! This is the shape "The Tail at Scale" (Dean and Barroso, CACM 2013) warns about: if each
//! sub-call is slow with probability p, a call that needs all N is slow with probability
//! 1 − (1 − p)^N. Completing on the first k of N ("good enough" results, or a quorum) is the
//! remedy the paper names.
//!
//! Each sub-call is a request of its own: request id `call id × n + i` (so the backend's draws
//! differ per sub-call and are the same under every strategy with the same `n`), its own
//! attempt counter, the parent's deadline. Layers below this one (retries, hedges, breakers)
//! apply per sub-call. Once `need` sub-calls have succeeded the others are cancelled; once so
//! many have failed that `need` successes are impossible, the call fails with the status of
//! the failure that decided it, and the others are cancelled. The parent call counts the
//! attempts of all its sub-calls. Each completed sub-call is reported
//! ([`super::Event::SubCall`]) for the per-sub-call figures.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, ServiceExt};

use super::{Event, EventSink};
use crate::call::BoxFuture;
use crate::call::{Call, CallMeter, CallService, Outcome, call_service};
use crate::clock::Clock;

/// Builds [`FanOut`] services.
pub struct FanOutLayer {
    n: u32,
    need: u32,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl FanOutLayer {
    /// `n` sub-calls per call, `need` of which must succeed.
    pub fn new(n: u32, need: u32, sink: Arc<dyn EventSink>, clock: Clock) -> Self {
        Self {
            n: n.max(1),
            need: need.clamp(1, n.max(1)),
            sink,
            clock,
        }
    }
}

impl<S> Layer<S> for FanOutLayer {
    type Service = FanOut<S>;

    fn layer(&self, inner: S) -> FanOut<S> {
        FanOut {
            inner,
            n: self.n,
            need: self.need,
            sink: Arc::clone(&self.sink),
            clock: self.clock.clone(),
        }
    }
}

/// Sends each call as `n` sub-calls.
#[derive(Clone)]
pub struct FanOut<S> {
    inner: S,
    n: u32,
    need: u32,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

call_service! {
    impl<S> for FanOut<S>, ready = always, serve = run,
    where
        S: CallService + Clone + Send + 'static,
}

/// Adds the sub-calls' attempts to the parent's count when the call ends, however it ends.
struct Tally {
    parent: Arc<CallMeter>,
    subs: Vec<Arc<CallMeter>>,
}

impl Drop for Tally {
    fn drop(&mut self) {
        let total: u32 = self.subs.iter().map(|m| m.attempts()).sum();
        self.parent.add_attempts(total);
    }
}

impl<S> FanOut<S>
where
    S: CallService + Clone + Send + 'static,
{
    async fn run(self, call: Call) -> Outcome {
        let started = self.clock.now();
        let mut tally = Tally {
            parent: Arc::clone(&call.meter),
            subs: Vec::with_capacity(self.n as usize),
        };
        let mut outstanding: Vec<(Call, BoxFuture<Outcome>)> = Vec::with_capacity(self.n as usize);
        for i in 0..self.n {
            let mut sub = call.clone();
            sub.id = call
                .id
                .saturating_mul(u64::from(self.n))
                .saturating_add(u64::from(i));
            sub.meter = Arc::new(CallMeter::default());
            tally.subs.push(Arc::clone(&sub.meter));
            let future: BoxFuture<Outcome> = Box::pin(self.inner.clone().oneshot(sub.clone()));
            outstanding.push((sub, future));
        }
        let (mut succeeded, mut failed) = (0u32, 0u32);
        loop {
            let (i, outcome) = std::future::poll_fn(|cx: &mut Context<'_>| {
                for (i, (_, f)) in outstanding.iter_mut().enumerate() {
                    if let Poll::Ready(out) = f.as_mut().poll(cx) {
                        return Poll::Ready((i, out));
                    }
                }
                Poll::Pending
            })
            .await;
            let (sub, _) = outstanding.swap_remove(i);
            self.sink.record(Event::SubCall {
                call: &sub,
                latency: self.clock.now().saturating_duration_since(started),
                outcome: &outcome,
            });
            match outcome {
                Ok(reply) => {
                    succeeded += 1;
                    if succeeded >= self.need {
                        drop(outstanding);
                        drop(tally);
                        return Ok(reply);
                    }
                }
                Err(failure) => {
                    failed += 1;
                    if self.n - failed < self.need {
                        drop(outstanding);
                        drop(tally);
                        return Err(failure);
                    }
                }
            }
        }
    }
}
