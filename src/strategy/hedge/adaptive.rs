//! Latency-driven hedging, as tower's `hedge::Hedge` does it (tower-rs/tower
//! `tower/src/hedge`), after "The Tail at Scale" (Dean and Barroso, CACM 2013): "defer sending
//! a secondary request until the first request has been outstanding for more than the 95th
//! percentile expected latency".
//!
//! - The latency of every *successful* attempt (the original or the hedge, each from its own
//!   send to its response headers, when tower's inner future resolves: a unary call's reply, a
//!   stream's first message) is recorded in a rotating histogram: two histograms, one written and one read, that
//!   swap every `period`, so the read one always holds one whole recent period (two periods
//!   without a rotation clear both).
//! - A call is hedged only if the read histogram holds at least `min_data_points` values when
//!   the call starts. Its hedge goes once the original has been out for the read histogram's
//!   `percentile` (tower reads it in whole milliseconds; here in microseconds, HdrHistogram's 3
//!   significant digits).
//! - At most one hedge per call. The first attempt to end decides the call, whatever its
//!   outcome (tower's `Select`), and the other is cancelled. A stream decides the race when its
//!   response headers arrive (tower's future resolves then; gRFC A6 commits the call): the
//!   other attempt is cancelled, or the hedge not sent, and the stream's end is the call's.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

use super::super::{Event, EventSink};
use crate::call::BoxFuture;
use crate::call::{AttemptKind, Call, CallService, CommitRace, Outcome, call_service};
use crate::clock::Clock;

/// The settings of latency-driven hedging.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveHedging {
    /// The percentile of recent successful latencies after which the hedge goes, in (0, 1).
    pub percentile: f64,
    /// Values the read histogram must hold before any call is hedged.
    pub min_data_points: u64,
    /// How long each histogram is written before it becomes the one read.
    pub period: Duration,
}

/// tower's `RotatingHistogram`, on the run's clock, in microseconds.
#[derive(Debug)]
pub struct RotatingHistogram {
    read: Histogram<u64>,
    write: Histogram<u64>,
    last_rotation: Instant,
    period: Duration,
}

impl RotatingHistogram {
    /// Two empty histograms, rotating every `period` from `now`.
    pub fn new(period: Duration, now: Instant) -> Self {
        // Bounded (1 µs to an hour), so that saturating_record cuts longer values instead of
        // meeting an auto-resizing histogram's current, small, bound.
        let new = || {
            Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
                .expect("1 µs to an hour at 3 significant digits is a valid histogram")
        };
        Self {
            read: new(),
            write: new(),
            last_rotation: now,
            period: period.max(Duration::from_millis(1)),
        }
    }

    fn maybe_rotate(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.last_rotation);
        let rotations =
            (since.as_nanos() / self.period.as_nanos()).min(u128::from(u32::MAX)) as u32;
        if rotations >= 2 {
            self.read.clear();
            self.write.clear();
        } else if rotations == 1 {
            std::mem::swap(&mut self.read, &mut self.write);
            self.write.clear();
        }
        self.last_rotation += self.period * rotations;
    }

    /// Records a latency.
    pub fn record(&mut self, now: Instant, latency: Duration) {
        self.maybe_rotate(now);
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.write.saturating_record(us);
    }

    /// Values in the read histogram.
    pub fn len(&mut self, now: Instant) -> u64 {
        self.maybe_rotate(now);
        self.read.len()
    }

    /// Whether the read histogram is empty.
    pub fn is_empty(&mut self, now: Instant) -> bool {
        self.len(now) == 0
    }

    /// The read histogram's value at `quantile`.
    pub fn quantile(&mut self, now: Instant, quantile: f64) -> Duration {
        self.maybe_rotate(now);
        Duration::from_micros(self.read.value_at_quantile(quantile))
    }
}

/// Builds [`AdaptiveHedge`] services sharing one histogram.
pub struct AdaptiveHedgeLayer {
    settings: AdaptiveHedging,
    histogram: Arc<Mutex<RotatingHistogram>>,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl AdaptiveHedgeLayer {
    /// Hedging by `settings`, reporting to `sink`.
    pub fn new(settings: AdaptiveHedging, sink: Arc<dyn EventSink>, clock: Clock) -> Self {
        let histogram = RotatingHistogram::new(settings.period, clock.now());
        Self {
            settings,
            histogram: Arc::new(Mutex::new(histogram)),
            sink,
            clock,
        }
    }
}

impl<S> Layer<S> for AdaptiveHedgeLayer {
    type Service = AdaptiveHedge<S>;

    fn layer(&self, inner: S) -> AdaptiveHedge<S> {
        AdaptiveHedge {
            inner,
            settings: self.settings,
            histogram: Arc::clone(&self.histogram),
            sink: Arc::clone(&self.sink),
            clock: self.clock.clone(),
        }
    }
}

/// Sends one hedge when the original is slower than recent calls.
#[derive(Clone)]
pub struct AdaptiveHedge<S> {
    inner: S,
    settings: AdaptiveHedging,
    histogram: Arc<Mutex<RotatingHistogram>>,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

call_service! {
    impl<S> for AdaptiveHedge<S>, ready = always, serve = run,
    where
        S: CallService + Clone + Send + 'static,
}

/// Once an attempt of `race` has committed the call, drops the other (or the hedge still to
/// come) and the timer. `attempts` are the original and the hedge, by number.
fn settle(
    race: &CommitRace,
    settled: &mut bool,
    due: &mut Option<crate::clock::Sleep>,
    attempts: &mut [&mut Option<BoxFuture<Outcome>>; 2],
) {
    if *settled {
        return;
    }
    if let Some(winner) = race.winner() {
        *settled = true;
        *due = None;
        *attempts[usize::from(winner == 0)] = None;
    }
}

impl<S> AdaptiveHedge<S>
where
    S: CallService + Clone + Send + 'static,
{
    fn histogram(&self) -> std::sync::MutexGuard<'_, RotatingHistogram> {
        self.histogram.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attempt number `number` of `race`; if it succeeds, its latency is recorded: the time
    /// to its response headers, which is when tower's inner future resolves (a stream's first
    /// message here; a unary call's reply).
    fn attempt(
        &self,
        call: &Call,
        kind: AttemptKind,
        number: u32,
        race: &Arc<CommitRace>,
    ) -> BoxFuture<Outcome> {
        let mut attempt = call.clone();
        attempt.kind = kind;
        attempt.previous_attempts = number;
        attempt.commit = Some(race.handle(number));
        let (inner, clock, histogram, race) = (
            self.inner.clone(),
            self.clock.clone(),
            Arc::clone(&self.histogram),
            Arc::clone(race),
        );
        Box::pin(async move {
            let sent = clock.now();
            let mut future = std::pin::pin!(inner.oneshot(attempt));
            let mut headers = None;
            let outcome = std::future::poll_fn(|cx| {
                let poll = future.as_mut().poll(cx);
                if headers.is_none() && race.winner() == Some(number) {
                    headers = Some(clock.now());
                }
                poll
            })
            .await;
            if outcome.is_ok() {
                let now = clock.now();
                let at = headers.unwrap_or(now);
                histogram
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(now, at.saturating_duration_since(sent));
            }
            outcome
        })
    }

    async fn run(self, call: Call) -> Outcome {
        let now = self.clock.now();
        let delay = {
            let mut h = self.histogram();
            (h.len(now) >= self.settings.min_data_points.max(1))
                .then(|| h.quantile(now, self.settings.percentile))
        };
        let race = CommitRace::new(call.commit.clone());
        let first = self.attempt(&call, AttemptKind::Original, 0, &race);
        let Some(delay) = delay else {
            return first.await;
        };
        let mut original = Some(first);
        let mut due = Some(self.clock.sleep_until(now + delay));
        let mut hedge: Option<BoxFuture<Outcome>> = None;
        let (mut hedged, mut settled) = (false, false);
        let (this, hedge_call) = (self.clone(), call.clone());
        let (outcome, by_hedge, hedged) = std::future::poll_fn(move |cx: &mut Context<'_>| {
            // Once an attempt commits the call (its response headers arrived: gRFC A6), it is
            // the only one left: the hedge is not sent, or the other attempt is cancelled.
            race.register(cx.waker());
            settle(
                &race,
                &mut settled,
                &mut due,
                &mut [&mut original, &mut hedge],
            );
            if let Some(o) = original.as_mut()
                && let Poll::Ready(out) = o.as_mut().poll(cx)
            {
                return Poll::Ready((out, false, hedged));
            }
            settle(
                &race,
                &mut settled,
                &mut due,
                &mut [&mut original, &mut hedge],
            );
            if let Some(sleep) = due.as_mut()
                && Pin::new(sleep).poll(cx).is_ready()
            {
                due = None;
                hedged = true;
                hedge = Some(this.attempt(&hedge_call, AttemptKind::Hedge, 1, &race));
            }
            if let Some(h) = hedge.as_mut()
                && let Poll::Ready(out) = h.as_mut().poll(cx)
            {
                return Poll::Ready((out, true, true));
            }
            Poll::Pending
        })
        .await;
        if hedged {
            self.sink.record(Event::HedgeOutcome {
                call: &call,
                won_by_hedge: by_hedge,
                cancelled: 1,
            });
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The read histogram is the previous period's; two periods without a rotation clear it.
    #[test]
    fn the_histogram_rotates_each_period() {
        let rt = crate::clock::test_runtime(true);
        rt.block_on(async {
            let clock = Clock::Sim(crate::clock::sim::SimClock::start());
            let t0 = clock.now();
            let ms = Duration::from_millis;
            let mut h = RotatingHistogram::new(Duration::from_secs(1), t0);
            for i in 0..100u32 {
                h.record(t0 + ms(10) * i, ms(5 + u64::from(i % 10)));
            }
            assert_eq!(h.len(t0 + ms(999)), 0, "still being written");
            let t = t0 + ms(1050);
            assert_eq!(h.len(t), 100);
            let p90 = h.quantile(t, 0.9);
            assert!(p90 >= ms(13) && p90 <= ms(14), "{p90:?}");
            assert_eq!(
                h.len(t0 + ms(3001)),
                0,
                "two periods without writes clear it"
            );
        });
    }
}
