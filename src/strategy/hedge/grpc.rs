//! gRPC's hedging policy, gRFC A6 ("Client Retries": "Hedging Policy", "Throttling Retry
//! Attempts and Hedged RPCs", "Pushback", "Summary of Retry and Hedging Logic").
//!
//! The original attempt goes at once; while no attempt has decided the call, another goes
//! every `hedgingDelay` (all at once when it is 0), up to `maxAttempts` (above 5 counts as 5).
//! Each carries `grpc-previous-rpc-attempts` = the attempts sent before it. When an attempt
//! ends:
//! - OK: the call succeeds; the other attempts are cancelled; the throttle gains `tokenRatio`.
//! - a status outside `nonFatalStatusCodes` (or a failure after response headers, which commits
//!   the call): the call fails with it; the others are cancelled.
//! - a non-fatal status: it takes a throttle token; the next hedge goes *now* (A6: "the next
//!   hedged request in line is sent immediately, shortcutting its hedging delay"), and the ones
//!   after it `hedgingDelay` apart again. With pushback, the next hedge goes after exactly the
//!   pushback's delay instead; a pushback saying not to retry takes a token and stops further
//!   hedges (the attempts already out may still win).
//!
//! An attempt whose response headers arrive (a stream's first message) *commits* the call (A6,
//! "When Retries are Valid"; grpc-java's `RetriableStream.headersRead` commits the substream):
//! the other attempts are cancelled, no further hedge is sent, and that attempt's end is the
//! call's, whatever its status.
//!
//! Throttling: a hedge (never the original) is sent only while the shared bucket has more than
//! `maxTokens / 2`; when it has not, hedging stops for the call, and the call waits for the
//! attempts already out. When every attempt has failed and no more may be sent, the call fails
//! with the status of the last attempt to end.
//!
//! Without a `client` this layer follows the A6 text. A strategy's client flavor moves its
//! timers as that library does ([`super::schedule`]): grpc-java waits for its timer after a
//! non-fatal status without pushback (every release), zeroes a positive pushback (1.57 on),
//! reads the throttle when it schedules a hedge and ends the call on a throttled failure;
//! grpc-js never reads the throttle and keeps its timer running under a pushback.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, ServiceExt};

use super::super::retry::grpc::Codes;
use super::super::retry::throttle::Throttle;
use super::super::{Event, EventSink};
use super::schedule::{Due, Schedule, Verdict};
use crate::call::BoxFuture;
use crate::call::{AttemptKind, Call, CallService, CommitRace, Failure, Outcome, call_service};
use crate::clock::Clock;
use crate::profile::flavor::Flavor;

/// The settings of a hedging policy.
#[derive(Debug, Clone, Copy)]
pub struct GrpcHedging {
    /// maxAttempts, already clamped to 5.
    pub max_attempts: u32,
    /// hedgingDelay.
    pub delay: Duration,
    /// nonFatalStatusCodes.
    pub non_fatal: Codes,
}

/// Builds [`GrpcHedge`] services sharing one throttle.
pub struct GrpcHedgeLayer {
    settings: GrpcHedging,
    flavor: Flavor,
    throttle: Option<Arc<Throttle>>,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

impl GrpcHedgeLayer {
    /// Hedging by `settings`, with an optional throttle, reporting to `sink`.
    pub fn new(
        settings: GrpcHedging,
        throttle: Option<Throttle>,
        sink: Arc<dyn EventSink>,
        clock: Clock,
    ) -> Self {
        Self::flavored(settings, throttle, sink, clock, Flavor::A6)
    }

    /// Hedging as `flavor`'s library does it (the flavor must implement hedging).
    pub fn flavored(
        settings: GrpcHedging,
        throttle: Option<Throttle>,
        sink: Arc<dyn EventSink>,
        clock: Clock,
        flavor: Flavor,
    ) -> Self {
        Self {
            settings,
            flavor,
            throttle: throttle.map(|t| Arc::new(t.kept(flavor.bookkeeping))),
            sink,
            clock,
        }
    }
}

impl<S> Layer<S> for GrpcHedgeLayer {
    type Service = GrpcHedge<S>;

    fn layer(&self, inner: S) -> GrpcHedge<S> {
        GrpcHedge {
            inner,
            settings: self.settings,
            flavor: self.flavor,
            throttle: self.throttle.clone(),
            sink: Arc::clone(&self.sink),
            clock: self.clock.clone(),
        }
    }
}

/// Sends a call's attempts as A6's hedging policy says.
#[derive(Clone)]
pub struct GrpcHedge<S> {
    inner: S,
    settings: GrpcHedging,
    flavor: Flavor,
    throttle: Option<Arc<Throttle>>,
    sink: Arc<dyn EventSink>,
    clock: Clock,
}

call_service! {
    impl<S> for GrpcHedge<S>, ready = always, serve = run,
    where
        S: CallService + Clone + Send + 'static,
}

/// What woke the hedging loop.
enum Woken {
    /// Attempt at this position of the outstanding list ended.
    Ended(usize, Outcome),
    /// The next hedge is due.
    Due,
    /// An attempt's response headers arrived (see [`CommitRace`]).
    Committed,
}

/// The attempts of one call that are out, with the number each was sent as.
type Outstanding = Vec<(u32, BoxFuture<Outcome>)>;

/// Waits for the first attempt to end, for `due`, or for an attempt to commit the call in
/// `race` (when given).
async fn next_event(
    outstanding: &mut Outstanding,
    due: Option<crate::clock::Sleep>,
    race: Option<&CommitRace>,
) -> Woken {
    let mut due = due;
    let committed = || race.is_some_and(|r| r.winner().is_some());
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if let Some(r) = race {
            r.register(cx.waker());
        }
        for (i, (_, attempt)) in outstanding.iter_mut().enumerate() {
            // The attempt that commits first wins, whatever the ones after it would do.
            if committed() {
                return Poll::Ready(Woken::Committed);
            }
            if let Poll::Ready(outcome) = attempt.as_mut().poll(cx) {
                return Poll::Ready(Woken::Ended(i, outcome));
            }
        }
        if committed() {
            return Poll::Ready(Woken::Committed);
        }
        if let Some(sleep) = due.as_mut()
            && Pin::new(sleep).poll(cx).is_ready()
        {
            return Poll::Ready(Woken::Due);
        }
        Poll::Pending
    })
    .await
}

impl<S> GrpcHedge<S>
where
    S: CallService + Clone + Send + 'static,
{
    fn report_tokens(&self) {
        if let Some(t) = &self.throttle {
            self.sink.record(Event::Tokens {
                at: self.clock.now(),
                tokens: t.tokens(),
            });
        }
    }

    /// The call is decided by attempt number `winner`; the other `cancelled` attempts are
    /// dropped by the caller.
    fn decided(&self, call: &Call, winner: u32, cancelled: usize) {
        self.sink.record(Event::HedgeOutcome {
            call,
            won_by_hedge: winner > 0,
            cancelled: cancelled as u32,
        });
    }

    /// Sends attempt number `sent` of `call` (0: the original), racing in `race`.
    fn send(
        &self,
        call: &Call,
        race: &Arc<CommitRace>,
        outstanding: &mut Outstanding,
        sent: &mut u32,
    ) {
        let mut attempt = call.clone();
        attempt.previous_attempts = *sent;
        attempt.commit = Some(race.handle(*sent));
        attempt.kind = if *sent == 0 {
            AttemptKind::Original
        } else {
            AttemptKind::Hedge
        };
        outstanding.push((*sent, Box::pin(self.inner.clone().oneshot(attempt))));
        *sent += 1;
    }

    async fn run(self, call: Call) -> Outcome {
        let max = self.settings.max_attempts.max(1);
        let throttle = self.throttle.as_deref();
        let mut schedule = Schedule::new(self.flavor, self.settings.delay, max);
        let mut outstanding: Outstanding = Vec::new();
        let mut sent = 0u32;
        let mut last_failure: Option<Failure> = None;
        let race = CommitRace::new(call.commit.clone());
        // Once an attempt commits the call: no more hedges, and the others are dropped.
        let (mut commit_seen, mut dropped) = (false, 0);
        self.send(&call, &race, &mut outstanding, &mut sent);
        schedule.sent(self.clock.now(), sent, throttle);
        loop {
            let now = self.clock.now();
            while let Some(due) = schedule.pop(now) {
                let one_shot = match due {
                    Due::Hedge => None,
                    Due::OneShot(failure) => Some(failure),
                };
                if schedule.may_send(sent, throttle) {
                    self.send(&call, &race, &mut outstanding, &mut sent);
                    schedule.sent(now, sent, throttle);
                }
                if let Some(failure) = one_shot
                    && outstanding.is_empty()
                {
                    // grpc-js: the last failure's timer found nothing running.
                    return Err(failure);
                }
            }
            if outstanding.is_empty() && !schedule.potential(sent) {
                // Every attempt failed and no more may go.
                return Err(
                    last_failure.unwrap_or_else(|| Failure::local(tonic::Code::Unavailable))
                );
            }
            let due = schedule.due().map(|at| self.clock.sleep_until(at));
            let listen = (!commit_seen).then_some(&*race);
            let ended = match next_event(&mut outstanding, due, listen).await {
                Woken::Due | Woken::Committed => None,
                Woken::Ended(i, outcome) => Some((outstanding.swap_remove(i).0, outcome)),
            };
            if !commit_seen && let Some(winner) = race.winner() {
                // A6: the call is committed to this attempt; the others are cancelled.
                commit_seen = true;
                schedule.stop();
                let before = outstanding.len();
                outstanding.retain(|(n, _)| *n == winner);
                dropped += before - outstanding.len();
            }
            let Some((number, outcome)) = ended else {
                continue;
            };
            let failure = match outcome {
                Ok(reply) => {
                    if let Some(t) = throttle {
                        t.on_success();
                    }
                    self.report_tokens();
                    self.decided(&call, number, outstanding.len() + dropped);
                    return Ok(reply);
                }
                Err(failure) => failure,
            };
            let fatal = failure.committed || !self.settings.non_fatal.contains(failure.code);
            let (verdict, counted) = schedule.failed(self.clock.now(), &failure, fatal, throttle);
            let credited = failure.committed && self.flavor.success_on_headers;
            if let (Some(t), true) = (throttle, credited) {
                // grpc-java counted a success when this attempt's headers arrived.
                t.on_success();
            }
            if counted || credited {
                self.report_tokens();
            }
            if verdict == Verdict::End {
                self.decided(&call, number, outstanding.len() + dropped);
                return Err(failure);
            }
            last_failure = Some(failure);
        }
    }
}
