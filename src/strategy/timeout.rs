//! Deadlines and per-attempt timeouts.
//!
//! One service serves both, because both are "stop waiting at an instant":
//! - [`TimeoutLayer::call_deadline`] sits at the top of every stack and enforces the call's
//!   deadline, which covers all attempts (gRFC A6: "the call deadline covers all attempts").
//! - [`TimeoutLayer::per_attempt`] tightens the deadline of what runs below it to
//!   `min(call deadline, now + timeout)`. Below it the transport sends that tighter deadline as
//!   `grpc-timeout`, so the backend sees what a real client would send.
//!
//! A timeout cancels the work below it (the inner future is dropped) and fails with
//! DEADLINE_EXCEEDED, decided locally.

use std::task::{Context, Poll};
use std::time::Duration;

use tonic::Code;
use tower::{Layer, Service};

use crate::call::{Call, Failure, Outcome, Reply};
use crate::clock::Clock;
use crate::transport::BoxFuture;

/// Builds [`Timeout`] services.
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    limit: Option<Duration>,
    clock: Clock,
}

impl TimeoutLayer {
    /// Enforces the call's own deadline, waiting on `clock`.
    pub fn call_deadline(clock: Clock) -> Self {
        Self { limit: None, clock }
    }

    /// Gives each call passing through at most `limit`, within the call's deadline.
    pub fn per_attempt(limit: Duration, clock: Clock) -> Self {
        Self {
            limit: Some(limit),
            clock,
        }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            limit: self.limit,
            clock: self.clock.clone(),
        }
    }
}

/// Fails a call with DEADLINE_EXCEEDED when its deadline (or the tighter limit) passes.
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    limit: Option<Duration>,
    clock: Clock,
}

impl<S> Service<Call> for Timeout<S>
where
    S: Service<Call, Response = Reply, Error = Failure>,
    S::Future: Send + 'static,
{
    type Response = Reply;
    type Error = Failure;
    type Future = BoxFuture<Outcome>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call) -> Self::Future {
        if let Some(limit) = self.limit {
            call.deadline = call.deadline.min(self.clock.now() + limit);
        }
        let deadline = call.deadline;
        let inner = self.inner.call(call);
        let clock = self.clock.clone();
        Box::pin(async move {
            clock
                .timeout_at(deadline, inner)
                .await
                .unwrap_or_else(|_| Err(Failure::local(Code::DeadlineExceeded)))
        })
    }
}
