//! `load.order = "interleaved"`: every strategy at once, against one backend, each call of
//! the one schedule given to one strategy by a keyed draw (`driver::order`).
//!
//! Why: strategies run in turn meet a live service at different minutes (its daily rhythm, a
//! deploy, a neighbour's batch job), and the difference between them may be the minutes'.
//! Interleaved, they meet the same minutes. The price: they share the backend, so one
//! strategy's retry storm is every strategy's weather, and the backend's figures are the
//! run's, not one strategy's: each strategy's `backend` is `null` with `backend_gap =
//! "shared"`, and a warning gives the run's totals. Each strategy's client-side figures come
//! from its own calls only (its own recorder); its offered rate is its share of the schedule.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::assemble::{Started, assemble, calibrate_timer};
use super::service::Ready;
use super::setup::{Setup, unless_stopped};
use super::{ClockMode, DRAIN_REAL, DRAIN_VIRTUAL, RunError, RunOptions, unix_ms};
use crate::clock::Clock;
use crate::driver::{self, DriveSpec, Lane};
use crate::profile::Plan;
use crate::record::{Recorder, RecorderConfig};
use crate::results::Results;
use crate::results::figures as summary;
use crate::results::trust::BackendGap;
use crate::strategy;

/// Runs every strategy of `plan` at once, interleaved call by call (see the module's doc);
/// `own`: the user's own service (`[target]`), made ready by the caller.
pub(super) async fn execute(
    plan: &Plan,
    opts: &RunOptions,
    clock: &Clock,
    stop: CancellationToken,
    own: Option<&Ready>,
) -> Result<Results, RunError> {
    let start_time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let origin = clock.now();
    // As in turn: how precisely this machine wakes, before anything else runs.
    let timer = calibrate_timer(plan, clock, &stop).await;
    let nothing = || {
        assemble(
            plan,
            opts,
            Started {
                start_time: start_time.clone(),
                timer,
            },
            Vec::new(),
            true,
            None,
            vec![],
        )
    };
    let slot = opts.start_at.filter(|_| opts.clock == ClockMode::Real);
    if let (Some(slot_start), true) = (slot, opts.target.is_some()) {
        let reset_at = clock.instant_at(slot_start - Duration::from_secs(1));
        if unless_stopped(&stop, clock.sleep_until(reset_at))
            .await
            .is_none()
        {
            return nothing();
        }
    }
    // One setup for all the strategies: the served-backend warning is said at most once.
    let mut served_said = false;
    let setup = Setup::new(plan, opts, clock, slot.map(unix_ms), &mut served_said, own);
    let (setup, transport) = match unless_stopped(&stop, setup).await {
        None => return nothing(),
        Some(ready) => ready?,
    };
    let (start, start_ms) = match (opts.clock, slot) {
        (ClockMode::Real, Some(s)) => (clock.instant_at(s), unix_ms(s)),
        (ClockMode::Real, None) => (clock.now(), unix_ms(SystemTime::now())),
        (ClockMode::Virtual, _) => (
            clock.now(),
            clock.now().duration_since(origin).as_millis() as u64,
        ),
    };
    setup.begin(start);
    let mut lanes = Vec::with_capacity(plan.strategies.len());
    let mut tickers = Vec::with_capacity(plan.strategies.len());
    for (index, s) in plan.strategies.iter().enumerate() {
        let config = RecorderConfig {
            start,
            warmup: plan.load.warmup,
            duration: plan.load.duration,
            deadline: s.deadline,
        };
        let recorder = Arc::new(Recorder::new(config));
        let sink = Arc::clone(&recorder) as _;
        let stack = strategy::build(s, transport.clone(), sink, clock, plan.seed);
        tickers.push(
            opts.progress
                .begin(plan, index, Arc::clone(&recorder), clock),
        );
        lanes.push(Lane::of(s, stack, recorder));
    }
    drop(transport);
    let spec = DriveSpec {
        load: &plan.load,
        phases: &plan.phases,
        seed: plan.seed,
        start,
        clock: clock.clone(),
        shard: opts.shard,
        wake_quantum: clock.wake_quantum(plan.load.wake_quantum),
    };
    let end = driver::drive_interleaved(spec, &lanes, stop.clone()).await;
    // Nothing that ends after this point is counted.
    let states: Vec<_> = lanes
        .iter()
        .map(|l| l.recorder.finish().expect("each recorder is finished once"))
        .collect();
    drop(lanes);
    let drain = (!end.interrupted).then_some(match opts.clock {
        ClockMode::Real => DRAIN_REAL,
        ClockMode::Virtual => DRAIN_VIRTUAL,
    });
    let read_at = slot
        .filter(|_| opts.target.is_some() && !end.interrupted)
        .map(|s| clock.instant_at(s + super::strategy_slot(plan) - Duration::from_millis(1500)));
    let (backend, gap) = setup.finish(clock, drain, read_at, &stop).await;
    let streaming = plan.load.method == crate::profile::Method::Stream;
    let mut strategies = Vec::with_capacity(states.len());
    for ((s, state), ticker) in plan.strategies.iter().zip(states).zip(tickers) {
        let config = RecorderConfig {
            start,
            warmup: plan.load.warmup,
            duration: plan.load.duration,
            deadline: s.deadline,
        };
        let mut result =
            summary::strategy_result(&s.name, start_ms, &config, state, end, None, streaming);
        // Why there are no backend figures: the target's own reason, or that they are shared.
        result.backend_gap = Some(gap.unwrap_or(BackendGap::Shared));
        ticker.finish(&result);
        strategies.push(result);
    }
    let notes = backend
        .map(|b| {
            let sent: u64 = strategies.iter().map(|s| s.counts.sent).sum();
            let amplification = if sent > 0 {
                format!(
                    " (backend amplification {:.3} over the {sent} calls sent)",
                    b.received as f64 / sent as f64
                )
            } else {
                String::new()
            };
            vec![format!(
                "the strategies ran interleaved against one backend, so its figures are the \
                 run's, not one strategy's, and each strategy's are left out: in all it received \
                 {} attempts{amplification}, executed {}, rejected {}, wasted {}",
                b.received, b.executed, b.rejected, b.wasted
            )]
        })
        .unwrap_or_default();
    let partial = end.interrupted || stop.is_cancelled();
    let started = Started { start_time, timer };
    assemble(plan, opts, started, strategies, partial, None, notes)
}
