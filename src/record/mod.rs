//! The recorder: every call and attempt of one strategy's run, aggregated as it happens.
//!
//! The driver reports calls (dispatched, dropped, completed) and the strategy stack reports
//! attempts through the [`EventSink`]. Nothing is kept per call: figures go straight into
//! HdrHistograms, counters and the per-second [`timeline`], so memory is bounded however long
//! the run. Warmup calls and their attempts are ignored.
//!
//! A few counters are also kept as atomics ([`Live`]) for the progress display, which reads
//! them without taking the lock.

pub mod histogram;
pub mod hlog;
pub mod timeline;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;

use crate::call::{AttemptKind, Outcome, outcome_code};
use crate::strategy::{Event, EventSink};
use histogram::Hist;
use timeline::Timeline;

/// Counters the progress display reads while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    /// Calls sent.
    pub sent: AtomicU64,
    /// Calls completed.
    pub completed: AtomicU64,
    /// Calls that failed.
    pub failed: AtomicU64,
    /// Calls dropped.
    pub dropped: AtomicU64,
    /// Attempts outstanding.
    pub attempts_in_flight: AtomicI64,
}

/// What the recorder needs to know about the run.
#[derive(Debug, Clone, Copy)]
pub struct RecorderConfig {
    /// When the schedule started.
    pub start: Instant,
    /// Calls intended before `start + warmup` are not measured.
    pub warmup: Duration,
    /// Length of the schedule.
    pub duration: Duration,
    /// The strategy's call deadline (a success later than this is not goodput).
    pub deadline: Duration,
}

/// Everything measured, as raw aggregates.
#[derive(Debug)]
pub struct State {
    /// End-to-end latency of every completed call.
    pub e2e: Hist,
    /// End-to-end latency of successful calls.
    pub e2e_ok: Hist,
    /// Latency of every attempt.
    pub attempt: Hist,
    /// Generator lag of every offered call.
    pub lag: Hist,
    /// Inter-send interval error: for each measured call sent after another, how far the gap
    /// between the two sends was from the gap between their intended starts (the difference
    /// of their lags).
    pub interval_error: Hist,
    /// Calls offered.
    pub offered: u64,
    /// Calls dropped.
    pub dropped: u64,
    /// Calls that ended OK.
    pub succeeded: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Successes within the deadline.
    pub good: u64,
    /// Final status per call.
    pub status: BTreeMap<i32, u64>,
    /// Attempts sent.
    pub attempts: u64,
    /// Retries sent.
    pub retries: u64,
    /// Hedges sent.
    pub hedges: u64,
    /// Calls a hedge decided.
    pub hedges_won: u64,
    /// Attempts cancelled because another attempt decided their call.
    pub hedges_cancelled: u64,
    /// Status per attempt.
    pub attempt_status: BTreeMap<i32, u64>,
    /// Calls by attempts made.
    pub per_call: BTreeMap<u32, u64>,
    /// Failed attempts not retried, by reason.
    pub retry_denied: BTreeMap<&'static str, u64>,
    /// Retries whose wait the server's pushback set.
    pub pushback_waits: u64,
    /// Calls or attempts a client-side throttle refused to send.
    pub rejected_locally: u64,
    /// Streams sent again at once because the server did not process them (gRFC A6's
    /// transparent retries; not attempts).
    pub transparent: u64,
    /// Streams the server did not process: refused, above a GOAWAY's last id, never sent.
    pub not_processed: [u64; 3],
    /// Streams that waited in the client for a slot under the server's limit of concurrent
    /// streams.
    pub slot_waits: u64,
    /// Fan-out sub-calls that ended (`None` without a fan-out layer).
    pub sub_calls: Option<SubCalls>,
    /// Calls or attempts a circuit breaker refused.
    pub short_circuited: u64,
    /// Calls a breaker's fallback answered.
    pub fallback: u64,
    /// The breaker's changes of state: when (since the strategy's start) and to what.
    pub breaker_transitions: Vec<(Duration, crate::strategy::breaker::State)>,
    /// The breaker's state now (`None` without a breaker).
    pub breaker_state: Option<crate::strategy::breaker::State>,
    /// Stream messages received by completed calls.
    pub messages: u64,
    /// Calls that failed after receiving at least one stream message (committed).
    pub failed_after_commit: u64,
    /// Messages those calls had received.
    pub messages_before_failure: u64,
    /// The timeline.
    pub timeline: Timeline,
    /// Intended start and actual send of the last measured call.
    pub last_dispatch: Option<(Instant, Instant)>,
}

/// What fan-out sub-calls did.
#[derive(Debug, Default)]
pub struct SubCalls {
    /// From the fan-out to each sub-call's end.
    pub latency: Hist,
    /// Their statuses.
    pub status: BTreeMap<i32, u64>,
}

/// The recorder of one strategy's run.
#[derive(Debug)]
pub struct Recorder {
    config: RecorderConfig,
    live: Live,
    state: Mutex<Option<State>>,
}

impl Recorder {
    /// A recorder for a run starting at `config.start`.
    pub fn new(config: RecorderConfig) -> Self {
        Self {
            config,
            live: Live::default(),
            state: Mutex::new(Some(State {
                e2e: Hist::new(),
                e2e_ok: Hist::new(),
                attempt: Hist::new(),
                lag: Hist::new(),
                interval_error: Hist::new(),
                offered: 0,
                dropped: 0,
                succeeded: 0,
                failed: 0,
                good: 0,
                status: BTreeMap::new(),
                attempts: 0,
                retries: 0,
                hedges: 0,
                hedges_won: 0,
                hedges_cancelled: 0,
                attempt_status: BTreeMap::new(),
                per_call: BTreeMap::new(),
                retry_denied: BTreeMap::new(),
                pushback_waits: 0,
                rejected_locally: 0,
                transparent: 0,
                not_processed: [0; 3],
                slot_waits: 0,
                sub_calls: None,
                short_circuited: 0,
                fallback: 0,
                breaker_transitions: Vec::new(),
                breaker_state: None,
                messages: 0,
                failed_after_commit: 0,
                messages_before_failure: 0,
                timeline: Timeline::new(config.warmup),
                last_dispatch: None,
            })),
        }
    }

    /// The run's configuration.
    pub fn config(&self) -> &RecorderConfig {
        &self.config
    }

    /// Counters for the progress display.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Whether a call intended at `intended` is measured (not warmup).
    pub fn is_measured(&self, intended: Instant) -> bool {
        intended >= self.config.start + self.config.warmup
    }

    fn second(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.config.start).as_secs()
    }

    /// Runs `f` on the state, unless the recording has been finished.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().map(f)
    }

    /// The driver handed a measured call, due at `intended`, to its task.
    pub fn dispatched(&self, intended: Instant) {
        self.live.sent.fetch_add(1, Ordering::Relaxed);
        let second = self.second(intended);
        self.with(|s| {
            s.offered += 1;
            s.timeline.offered(second);
        });
    }

    /// A measured call's task started at `started` and sends the call now: `started −
    /// intended` is the generator's lag for it (scheduling and run-queue delay included).
    pub fn started(&self, intended: Instant, started: Instant) {
        self.with(|s| {
            let lag = started.saturating_duration_since(intended);
            s.lag.record(lag);
            if let Some((i, at)) = s.last_dispatch {
                // |(started − at) − (intended − i)|, the two lags' difference, against the
                // latest-intended call started so far: the previous call, on the client's one
                // thread, where tasks start in the order they were sent.
                s.interval_error
                    .record(lag.abs_diff(at.saturating_duration_since(i)));
            }
            if s.last_dispatch.is_none_or(|(i, _)| i <= intended) {
                s.last_dispatch = Some((intended, started));
            }
        });
    }

    /// A measured call was dropped at `at` because too many calls were outstanding.
    pub fn dropped(&self, intended: Instant, at: Instant) {
        self.live.dropped.fetch_add(1, Ordering::Relaxed);
        let second = self.second(intended);
        self.with(|s| {
            s.offered += 1;
            s.dropped += 1;
            s.lag.record(at.saturating_duration_since(intended));
            s.timeline.dropped(second);
        });
    }

    /// A measured call intended at `intended` ended with `outcome` after `e2e` (from its
    /// intended start), having made `attempts` attempts.
    pub fn completed(&self, intended: Instant, attempts: u32, outcome: &Outcome, e2e: Duration) {
        let fallback = matches!(outcome, Ok(r) if r.fallback);
        let ok = outcome.is_ok() && !fallback;
        self.live.completed.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.live.failed.fetch_add(1, Ordering::Relaxed);
        }
        let second = self.second(intended);
        let messages = match outcome {
            Ok(reply) => reply.messages,
            Err(failure) => failure.messages,
        };
        let within_deadline = e2e <= self.config.deadline;
        self.with(|s| {
            s.e2e.record(e2e);
            if ok {
                s.succeeded += 1;
                s.e2e_ok.record(e2e);
                s.good += u64::from(within_deadline);
            } else {
                s.failed += 1;
            }
            // A fallback answers the caller, but the call was refused: UNAVAILABLE.
            let code = if fallback {
                Code::Unavailable
            } else {
                outcome_code(outcome)
            };
            *s.status.entry(code as i32).or_default() += 1;
            s.fallback += u64::from(fallback);
            *s.per_call.entry(attempts).or_default() += 1;
            s.messages += u64::from(messages);
            if outcome.is_err() && messages > 0 {
                s.failed_after_commit += 1;
                s.messages_before_failure += u64::from(messages);
            }
            s.timeline.completed(second, ok, e2e);
        });
    }

    /// No more calls will be offered.
    pub fn schedule_done(&self) {
        self.with(|s| s.timeline.schedule_done());
    }

    /// Stops recording and hands over what was measured. Events after this are ignored.
    pub fn finish(&self) -> Option<State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl EventSink for Recorder {
    fn record(&self, event: Event<'_>) {
        match event {
            Event::AttemptStarted { call, .. } => {
                if !call.warmup {
                    self.live.attempts_in_flight.fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::AttemptFinished {
                call,
                started,
                ended,
                outcome,
                unprocessed,
                slot_waits,
            } => {
                if call.warmup {
                    return;
                }
                self.live.attempts_in_flight.fetch_sub(1, Ordering::Relaxed);
                let second = self.second(started);
                let code = outcome.as_ref().map_or_else(|f| f.code, |_| Code::Ok);
                self.with(|s| {
                    s.attempts += 1;
                    match call.kind {
                        AttemptKind::Original => {}
                        AttemptKind::Retry => s.retries += 1,
                        AttemptKind::Hedge => s.hedges += 1,
                    }
                    s.attempt.record(ended.saturating_duration_since(started));
                    if !unprocessed.is_empty() {
                        s.transparent += u64::from(unprocessed.retried);
                        for (n, k) in s.not_processed.iter_mut().zip([
                            unprocessed.refused,
                            unprocessed.gone_away,
                            unprocessed.unsent,
                        ]) {
                            *n += u64::from(k);
                        }
                    }
                    s.slot_waits += u64::from(slot_waits);
                    *s.attempt_status.entry(code as i32).or_default() += 1;
                    s.timeline.attempt(second);
                });
            }
            Event::Retry { call, wait } => {
                if !call.warmup && wait.pushback {
                    self.with(|s| s.pushback_waits += 1);
                }
            }
            Event::RetryDenied { call, reason } => {
                if !call.warmup {
                    self.with(|s| *s.retry_denied.entry(reason.name()).or_default() += 1);
                }
            }
            Event::Tokens { at, tokens } => {
                let second = self.second(at);
                self.with(|s| s.timeline.tokens(second, tokens));
            }
            Event::HedgeOutcome {
                call,
                won_by_hedge,
                cancelled,
            } => {
                if !call.warmup {
                    self.with(|s| {
                        s.hedges_won += u64::from(won_by_hedge);
                        s.hedges_cancelled += u64::from(cancelled);
                    });
                }
            }
            Event::SubCall {
                call,
                latency,
                outcome,
            } => {
                if !call.warmup {
                    self.with(|s| {
                        let subs = s.sub_calls.get_or_insert_with(SubCalls::default);
                        subs.latency.record(latency);
                        *subs.status.entry(outcome_code(outcome) as i32).or_default() += 1;
                    });
                }
            }
            Event::BreakerState { at, state } => {
                let since = at.saturating_duration_since(self.config.start);
                let second = self.second(at);
                self.with(|s| {
                    if s.breaker_state.is_some_and(|b| b != state) {
                        s.breaker_transitions.push((since, state));
                    }
                    s.breaker_state = Some(state);
                    s.timeline.breaker(second, state);
                });
            }
            Event::ShortCircuited { call, .. } => {
                if !call.warmup {
                    self.with(|s| s.short_circuited += 1);
                }
            }
            Event::Rejected { call, .. } => {
                if !call.warmup {
                    self.with(|s| s.rejected_locally += 1);
                }
            }
        }
    }
}

/// How a strategy's run ended.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd {
    /// When the driver stopped.
    pub at: Instant,
    /// Whether it stopped early.
    pub interrupted: bool,
}

/// Length of the measured window: from the end of warmup to the end of the schedule, or to the
/// interruption.
pub fn measured_window(config: &RecorderConfig, end: RunEnd) -> Duration {
    let planned = config.duration.saturating_sub(config.warmup);
    if end.interrupted {
        end.at
            .saturating_duration_since(config.start + config.warmup)
            .min(planned)
    } else {
        planned
    }
}
