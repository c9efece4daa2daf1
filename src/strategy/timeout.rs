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
//! DEADLINE_EXCEEDED, decided locally. A call that reaches the layer already past its deadline
//! fails at once and is not sent.

use std::time::Duration;

use tonic::Code;
use tower::Layer;

use crate::call::BoxFuture;
use crate::call::{Call, CallService, Failure, FailureSource, Outcome, call_service};
use crate::clock::Clock;

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

call_service! {
    impl<S> for Timeout<S>, ready = inner,
    where
        S: CallService,
}

impl<S> Timeout<S>
where
    S: CallService,
{
    /// Its work on one call (its `Service::call`).
    fn serve(&mut self, mut call: Call) -> BoxFuture<Outcome> {
        let now = self.clock.now();
        if let Some(limit) = self.limit {
            call.deadline = call.deadline.min(now + limit);
            call.sent_deadline = call.sent_deadline.map(|d| d.min(now + limit));
        }
        let deadline = call.deadline;
        if now >= deadline {
            // Already too late: fail at once without sending, as a gRPC client does with a
            // call whose deadline has passed.
            return Box::pin(std::future::ready(Err(Failure::local(
                Code::DeadlineExceeded,
            ))));
        }
        let inner = self.inner.call(call);
        let clock = self.clock.clone();
        let source = if self.limit.is_some() {
            FailureSource::AttemptTimeout
        } else {
            FailureSource::Local
        };
        Box::pin(async move {
            clock.timeout_at(deadline, inner).await.unwrap_or_else(|_| {
                Err(Failure {
                    source,
                    committed: false,
                    ..Failure::local(Code::DeadlineExceeded)
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tower::ServiceExt;

    use crate::call::Reply;

    use super::*;
    use crate::call::{AttemptKind, CallMeter};
    use crate::clock::sim::SimClock;

    fn call(clock: &Clock, deadline_in: Duration) -> Call {
        let now = clock.now();
        Call {
            id: 1,
            intended: now,
            deadline: now + deadline_in,
            previous_attempts: 0,
            ordinal: 0,
            kind: AttemptKind::Original,
            warmup: false,
            payload_bytes: 0,
            method: crate::profile::Method::Unary,
            idempotency_key: false,
            sent_deadline: Some(now + deadline_in),
            meter: Arc::new(CallMeter::default()),
            commit: None,
            transparent: crate::profile::flavor::Transparent::A6,
        }
    }

    #[test]
    fn a_call_past_its_deadline_is_not_sent() {
        let rt = crate::clock::test_runtime(true);
        rt.block_on(async {
            let clock = Clock::Sim(SimClock::start());
            let sent = Arc::new(AtomicU32::new(0));
            let counter = Arc::clone(&sent);
            let inner = tower::service_fn(move |_call: Call| {
                counter.fetch_add(1, Ordering::Relaxed);
                async {
                    Ok::<_, Failure>(Reply {
                        backend_attempt: 1,
                        messages: 0,
                        fallback: false,
                    })
                }
            });
            let svc = TimeoutLayer::call_deadline(clock.clone()).layer(inner);
            let expired = call(&clock, Duration::ZERO);
            let out = svc.clone().oneshot(expired).await;
            assert_eq!(out.unwrap_err().code, Code::DeadlineExceeded);
            assert_eq!(sent.load(Ordering::Relaxed), 0, "nothing was sent");
            let live = call(&clock, Duration::from_millis(5));
            assert!(svc.oneshot(live).await.is_ok());
            assert_eq!(sent.load(Ordering::Relaxed), 1);
        });
    }

    #[test]
    fn a_per_attempt_timeout_tightens_the_deadline_the_attempt_carries() {
        let rt = crate::clock::test_runtime(true);
        rt.block_on(async {
            let clock = Clock::Sim(SimClock::start());
            let seen = Arc::new(std::sync::Mutex::new(None));
            let (record, sleeper) = (Arc::clone(&seen), clock.clone());
            let inner = tower::service_fn(move |call: Call| {
                *record.lock().unwrap() = Some(call.deadline);
                let clock = sleeper.clone();
                async move {
                    clock.sleep(Duration::from_millis(50)).await;
                    Ok::<_, Failure>(Reply {
                        backend_attempt: 1,
                        messages: 0,
                        fallback: false,
                    })
                }
            });
            let svc =
                TimeoutLayer::per_attempt(Duration::from_millis(20), clock.clone()).layer(inner);
            let c = call(&clock, Duration::from_secs(1));
            let start = clock.now();
            let out = svc.oneshot(c).await;
            assert_eq!(out.unwrap_err().code, Code::DeadlineExceeded);
            assert_eq!(
                clock.now() - start,
                Duration::from_millis(20),
                "ended at the attempt timeout"
            );
            assert_eq!(
                seen.lock().unwrap().unwrap() - start,
                Duration::from_millis(20)
            );
        });
    }
}
