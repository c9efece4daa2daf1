//! Client-side adaptive throttling, from the Google SRE book ("Handling Overload", section
//! "Client-side throttling", equation 21-1).
//!
//! The client remembers, over the last `window` (two minutes in the book), how many requests
//! it made (`requests`, those it rejected itself included) and how many the backend accepted
//! (`accepts`). Once requests exceed K × accepts, it rejects new requests locally with
//! probability `max(0, (requests − K·accepts) / (requests + 1))` (K = 2 in the book), so a
//! backend that is shedding load stops receiving work it would only reject.
//!
//! "Accepted" means the backend answered with anything other than a rejection: by default a
//! RESOURCE_EXHAUSTED or UNAVAILABLE from the backend is a rejection (the statuses an overloaded
//! server answers with); the profile may name others. A request that never got an answer (the
//! connection failed, a timeout below cut it) was not accepted either. The local rejection
//! draw is keyed by (seed, call, decision number), so runs are reproducible. A locally rejected request fails at once
//! with UNAVAILABLE and is never sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Code;
use tower::Layer;

use super::retry::grpc::Codes;
use super::{Event, EventSink};
use crate::call::BoxFuture;
use crate::call::{Call, CallService, Failure, FailureSource, Outcome, call_service};
use crate::clock::Clock;
use crate::keyed::{KeyedStream, Purpose, call_key};

/// The settings of an adaptive throttle.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The multiplier K.
    pub k: f64,
    /// How much history counts.
    pub window: Duration,
    /// Statuses that mean the backend rejected a request.
    pub rejections: Codes,
    /// Seed of the rejection draws.
    pub seed: u64,
}

/// Requests and accepts per second over the window.
#[derive(Debug, Default)]
struct History {
    /// (second, requests, accepts), oldest first.
    seconds: std::collections::VecDeque<(u64, f64, f64)>,
    origin: Option<tokio::time::Instant>,
}

impl History {
    fn second(&mut self, now: tokio::time::Instant) -> u64 {
        now.saturating_duration_since(*self.origin.get_or_insert(now))
            .as_secs()
    }

    fn add(&mut self, now: tokio::time::Instant, window: Duration, requests: f64, accepts: f64) {
        let s = self.second(now);
        let keep = window.as_secs().max(1);
        while self.seconds.front().is_some_and(|(t, _, _)| t + keep <= s) {
            self.seconds.pop_front();
        }
        match self.seconds.back_mut() {
            Some((t, r, a)) if *t == s => {
                *r += requests;
                *a += accepts;
            }
            _ => self.seconds.push_back((s, requests, accepts)),
        }
    }

    fn sums(&self) -> (f64, f64) {
        self.seconds
            .iter()
            .fold((0.0, 0.0), |(r, a), (_, rr, aa)| (r + rr, a + aa))
    }
}

/// The rejection probability of equation 21-1.
pub fn reject_probability(requests: f64, accepts: f64, k: f64) -> f64 {
    ((requests - k * accepts) / (requests + 1.0)).max(0.0)
}

/// Builds [`AdaptiveThrottle`] services sharing one history.
#[derive(Clone)]
pub struct AdaptiveThrottleLayer {
    settings: Settings,
    history: Arc<Mutex<History>>,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl AdaptiveThrottleLayer {
    /// A throttle with `settings`, reporting local rejections to `sink`.
    pub fn new(settings: Settings, sink: Arc<dyn EventSink>, clock: Clock) -> Self {
        Self {
            settings,
            history: Arc::default(),
            sink,
            clock,
        }
    }
}

impl<S> Layer<S> for AdaptiveThrottleLayer {
    type Service = AdaptiveThrottle<S>;

    fn layer(&self, inner: S) -> AdaptiveThrottle<S> {
        AdaptiveThrottle {
            inner,
            layer: self.clone(),
        }
    }
}

/// Rejects requests locally while the backend rejects too many.
#[derive(Clone)]
pub struct AdaptiveThrottle<S> {
    inner: S,
    layer: AdaptiveThrottleLayer,
}

call_service! {
    impl<S> for AdaptiveThrottle<S>, ready = inner,
    where
        S: CallService,
}

impl<S> AdaptiveThrottle<S>
where
    S: CallService,
{
    /// Its work on one call (its `Service::call`).
    fn serve(&mut self, call: Call) -> BoxFuture<Outcome> {
        let l = &self.layer;
        let now = l.clock.now();
        let p = {
            let mut h = l.history.lock().unwrap_or_else(|e| e.into_inner());
            h.add(now, l.settings.window, 0.0, 0.0);
            let (requests, accepts) = h.sums();
            h.add(now, l.settings.window, 1.0, 0.0);
            reject_probability(requests, accepts, l.settings.k)
        };
        let u = KeyedStream::new(
            l.settings.seed,
            call_key(call.id),
            call.meter.next_decision(),
            Purpose::Adaptive,
        )
        .open01();
        if u < p {
            l.sink.record(Event::Rejected {
                call: &call,
                at: now,
            });
            return Box::pin(std::future::ready(Err(Failure::local(Code::Unavailable))));
        }
        let inner = self.inner.call(call);
        let (history, clock, settings) = (Arc::clone(&l.history), l.clock.clone(), l.settings);
        Box::pin(async move {
            let outcome = inner.await;
            // Accepted: the backend answered, with anything but a rejection. A connection that
            // failed or an attempt cut short by a timeout below was not accepted by anyone.
            let accepted = match &outcome {
                Ok(_) => true,
                Err(f) => {
                    f.source == FailureSource::Backend && !settings.rejections.contains(f.code)
                }
            };
            if accepted {
                let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
                h.add(clock.now(), settings.window, 0.0, 1.0);
            }
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equation_21_1() {
        assert_eq!(reject_probability(100.0, 100.0, 2.0), 0.0);
        assert_eq!(
            reject_probability(100.0, 50.0, 2.0),
            0.0,
            "requests = K·accepts: no rejection yet"
        );
        // 100 requests, 10 accepted: (100 − 20) / 101.
        assert!((reject_probability(100.0, 10.0, 2.0) - 80.0 / 101.0).abs() < 1e-12);
        assert!((reject_probability(1000.0, 0.0, 2.0) - 1000.0 / 1001.0).abs() < 1e-12);
    }
}
