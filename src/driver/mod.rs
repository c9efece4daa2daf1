//! The open-loop driver: the one loop that sends a schedule of calls through a strategy stack.
//!
//! Call *i* is sent at `start + offset_i`, an absolute time fixed by the [`Schedule`] before the
//! run; the driver never waits for a completion before sending the next call. Latency counts
//! from the intended start, so when the backend stalls, every call scheduled during the stall
//! shows the stall (no coordinated omission), and when the generator itself falls behind, its
//! lateness is recorded as lag rather than silently shifting the schedule.
//!
//! A cap on calls in flight (`max_in_flight`) keeps memory bounded when the backend cannot keep
//! up: a call that would exceed it is counted as dropped, and the schedule goes on unchanged.
//!
//! The same loop runs on real and on simulated time; it reads time and waits only through its
//! [`Clock`]. It drives one strategy ([`drive`]), or all of a profile's strategies at once
//! ([`drive_interleaved`], `load.order = "interleaved"`): the one schedule, each call given to
//! one strategy by a keyed draw ([`order`]), each strategy recording its own calls.

pub mod order;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::call::{AttemptKind, Call, CallMeter};
use crate::clock::Clock;
use crate::profile::LoadPlan;
use crate::profile::phases::PhasePlan;
use crate::record::Recorder;
use crate::record::RunEnd;
use crate::strategy::Stack;
pub use schedule::Schedule;

/// Calls the driver sends in a row, without waiting, before it lets other tasks run.
const SENDS_PER_YIELD: usize = 64;

/// After an interruption, how long calls already sent may still finish and be counted.
pub const INTERRUPT_GRACE: Duration = Duration::from_millis(500);

/// What one strategy's run sends.
#[derive(Debug, Clone)]
pub struct DriveSpec<'a> {
    /// The offered load.
    pub load: &'a LoadPlan,
    /// The plan's phases (load spikes shape the schedule).
    pub phases: &'a [PhasePlan],
    /// Seed of the arrival process.
    pub seed: u64,
    /// When the schedule starts (offset 0).
    pub start: Instant,
    /// The clock the schedule is kept on.
    pub clock: Clock,
    /// Send only this shard's calls; the others keep their place in the schedule unsent.
    pub shard: Option<crate::results::Shard>,
    /// The shortest time between two of the driver's planned wake-ups: calls falling due in
    /// between leave together at the second, late by less than this ([`Clock::wake_quantum`]).
    pub wake_quantum: Duration,
}

/// One strategy's part of a run: its stack, its recorder, and how its calls are made.
#[derive(Clone)]
pub struct Lane {
    /// The strategy's stack.
    pub stack: Stack,
    /// Its recorder: only its own calls are recorded there.
    pub recorder: Arc<Recorder>,
    /// Its call deadline, from each call's intended start.
    pub deadline: Duration,
    /// Attach an idempotency key to every mutation.
    pub idempotency_keys: bool,
    /// Tell the backend each attempt's deadline (`grpc-timeout`).
    pub propagate_deadline: bool,
    /// How much earlier than the call's deadline the deadline sent is.
    pub deadline_margin: Duration,
    /// Which streams the server did not process are sent again at once.
    pub transparent: crate::profile::flavor::Transparent,
}

impl Lane {
    /// The lane of `strategy`, its calls made through `stack` and recorded by `recorder`.
    pub fn of(
        strategy: &crate::profile::plan::StrategyPlan,
        stack: Stack,
        recorder: Arc<Recorder>,
    ) -> Lane {
        Lane {
            stack,
            recorder,
            deadline: strategy.deadline,
            idempotency_keys: strategy.idempotency_keys,
            propagate_deadline: strategy.propagate_deadline,
            deadline_margin: strategy.deadline_margin,
            transparent: strategy.client.flavor().transparent,
        }
    }
}

/// Sends every call of the schedule through `lane` (one strategy), until the schedule ends
/// (and its calls complete) or `stop` is cancelled.
pub async fn drive(spec: DriveSpec<'_>, lane: Lane, stop: CancellationToken) -> RunEnd {
    run(&spec, std::slice::from_ref(&lane), |_| 0, stop).await
}

/// Sends every call of the one schedule through one of `lanes`, chosen for each call by a
/// keyed draw ([`order::lane`]: the same call always goes to the same strategy), each
/// strategy's calls recorded by its own recorder, until the schedule ends or `stop` is
/// cancelled. The cap on calls in flight is the run's, shared by the lanes.
pub async fn drive_interleaved(
    spec: DriveSpec<'_>,
    lanes: &[Lane],
    stop: CancellationToken,
) -> RunEnd {
    let (seed, n) = (spec.seed, lanes.len());
    run(&spec, lanes, |id| order::lane(seed, id, n), stop).await
}

/// The one loop: call `id` goes through lane `pick(id)`.
async fn run(
    spec: &DriveSpec<'_>,
    lanes: &[Lane],
    pick: impl Fn(u64) -> usize,
    stop: CancellationToken,
) -> RunEnd {
    let clock = spec.clock.clone();
    let tracker = TaskTracker::new();
    let max_in_flight = usize::try_from(spec.load.max_in_flight).unwrap_or(usize::MAX);
    let mut interrupted = false;
    let mut stopped_at = None;
    let cancelled = stop.cancelled();
    tokio::pin!(cancelled);
    // When the driver last planned to wake: the next wake-up is at least the quantum after it
    // (after the plan, not the actual wake-up, so that the timer's lateness does not push
    // every later wake-up back).
    let mut planned: Option<Instant> = None;
    // The driver's own wake-ups: on the reactor clock a timerfd of its own, armed once per
    // wake-up, apart from the calls' deadlines (`clock::pace`).
    let mut pacer = clock.pacer();
    let mut in_a_row = 0usize;

    for (id, offset) in Schedule::new(spec.load, spec.phases, spec.seed).enumerate() {
        let id = id as u64;
        if spec.shard.is_some_and(|s| !s.owns(id)) {
            continue;
        }
        let intended = spec.start + offset;
        if intended > clock.now() {
            let wake = planned.map_or(intended, |w| intended.max(w + spec.wake_quantum));
            tokio::select! {
                biased;
                _ = &mut cancelled => {
                    interrupted = true;
                    stopped_at = Some(clock.now());
                    break;
                }
                _ = pacer.sleep_until(wake) => {}
            }
            planned = Some(wake);
            in_a_row = 0;
        } else {
            if stop.is_cancelled() {
                interrupted = true;
                stopped_at = Some(clock.now());
                break;
            }
            // Behind the schedule (a batch of calls due at once, or a late start): on a
            // current-thread runtime nothing else runs while this loop sends, not the calls
            // already sent, nor the timer, nor the signal handler. Yield every
            // `SENDS_PER_YIELD` sends in a row, so calls finish and free their places under
            // `max_in_flight` instead of a backlog being dropped.
            in_a_row += 1;
            if in_a_row >= SENDS_PER_YIELD {
                in_a_row = 0;
                tokio::task::yield_now().await;
            }
        }
        let lane = &lanes[pick(id)];
        let recorder = &lane.recorder;
        let measured = recorder.is_measured(intended);
        if tracker.len() >= max_in_flight {
            if measured {
                recorder.dropped(intended, clock.now());
            }
            continue;
        }
        if measured {
            recorder.dispatched(intended);
        }
        let meter = Arc::new(CallMeter::default());
        let call = Call {
            id,
            intended,
            deadline: intended + lane.deadline,
            previous_attempts: 0,
            ordinal: 0,
            kind: AttemptKind::Original,
            warmup: !measured,
            payload_bytes: spec.load.payload_bytes,
            method: spec.load.method,
            idempotency_key: lane.idempotency_keys,
            sent_deadline: lane
                .propagate_deadline
                .then(|| intended + lane.deadline.saturating_sub(lane.deadline_margin)),
            meter: Arc::clone(&meter),
            commit: None,
            transparent: lane.transparent,
        };
        let stack = lane.stack.clone();
        let recorder = Arc::clone(recorder);
        let clock = clock.clone();
        tracker.spawn(async move {
            if measured {
                recorder.started(intended, clock.now());
            }
            let outcome = stack.oneshot(call).await;
            if measured {
                let e2e = clock.now().saturating_duration_since(intended);
                recorder.completed(intended, meter.attempts(), &outcome, e2e);
            }
        });
    }
    for lane in lanes {
        lane.recorder.schedule_done();
    }
    tracker.close();
    if !interrupted {
        tokio::select! {
            biased;
            _ = &mut cancelled => {
                interrupted = true;
                stopped_at = Some(clock.now());
            }
            _ = tracker.wait() => {}
        }
    }
    if interrupted {
        let _ = clock.timeout(INTERRUPT_GRACE, tracker.wait()).await;
    }
    RunEnd {
        at: stopped_at.unwrap_or_else(|| clock.now()),
        interrupted,
    }
}
