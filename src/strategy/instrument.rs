//! The bottom layer of every stack: one event when an attempt starts and one when it ends.
//!
//! An attempt that a layer above abandons (a timeout, a hedge that lost, a breaker) never
//! returns an outcome: its future is dropped. The instrument notices the drop and still reports
//! the attempt as ended, so the recorder counts every attempt the backend may have received.
//!
//! An attempt whose deadline to send (`Call::sent_deadline`) has already passed is not sent:
//! it fails at once with DEADLINE_EXCEEDED, decided locally.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tonic::Code;
use tower::{Layer, Service};

use super::{Event, EventSink};
use crate::call::BoxFuture;
use crate::call::{Call, CallService, Failure, Outcome, Reply};
use crate::clock::Clock;

/// Builds [`Instrument`] services.
#[derive(Clone)]
pub struct InstrumentLayer {
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl InstrumentLayer {
    /// Reports attempts to `sink`, timed on `clock`.
    pub fn new(sink: Arc<dyn EventSink>, clock: Clock) -> Self {
        Self { sink, clock }
    }
}

impl<S> Layer<S> for InstrumentLayer {
    type Service = Instrument<S>;

    fn layer(&self, inner: S) -> Instrument<S> {
        Instrument {
            inner,
            sink: Arc::clone(&self.sink),
            clock: self.clock.clone(),
        }
    }
}

/// Counts and reports every attempt that passes through.
#[derive(Clone)]
pub struct Instrument<S> {
    inner: S,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl<S> Service<Call> for Instrument<S>
where
    S: CallService,
{
    type Response = Reply;
    type Error = Failure;
    type Future = AttemptFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> AttemptFuture {
        let started = self.clock.now();
        call.ordinal = call.meter.count_attempt();
        self.sink.record(Event::AttemptStarted {
            call: &call,
            at: started,
        });
        // A deadline to send that has already passed (a deadline margin larger than the time
        // left): the attempt fails at once without going on the wire, as a gRPC call does
        // when its context's deadline has passed before it starts.
        let inner: BoxFuture<Outcome> = if call.sent_deadline.is_some_and(|d| d <= started) {
            Box::pin(std::future::ready(Err(Failure::local(
                Code::DeadlineExceeded,
            ))))
        } else {
            super::stack::boxed(self.inner.call(call.clone()))
        };
        AttemptFuture {
            inner,
            call,
            started,
            sink: Arc::clone(&self.sink),
            clock: self.clock.clone(),
            done: false,
        }
    }
}

/// The future of one instrumented attempt; reports the attempt's end, even if dropped.
pub struct AttemptFuture {
    inner: BoxFuture<Outcome>,
    call: Call,
    started: Instant,
    sink: Arc<dyn EventSink>,
    clock: Clock,
    done: bool,
}

impl AttemptFuture {
    fn finish(&mut self, outcome: &Outcome) {
        self.done = true;
        self.sink.record(Event::AttemptFinished {
            call: &self.call,
            started: self.started,
            ended: self.clock.now(),
            outcome,
            unprocessed: self.call.meter.take_unprocessed(),
            slot_waits: self.call.meter.take_slot_waits(),
        });
    }
}

impl Future for AttemptFuture {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let outcome = std::task::ready!(self.inner.as_mut().poll(cx));
        self.finish(&outcome);
        Poll::Ready(outcome)
    }
}

impl Drop for AttemptFuture {
    fn drop(&mut self) {
        if !self.done {
            let code = if self.clock.now() >= self.call.deadline {
                Code::DeadlineExceeded
            } else {
                Code::Cancelled
            };
            self.finish(&Err(Failure::local(code)));
        }
    }
}
