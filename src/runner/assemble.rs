//! The results of a run from its strategies' figures: the generator's over all of them, the
//! warnings, the environment (the same for strategies run in turn and interleaved).

use tokio_util::sync::CancellationToken;

use super::setup::unless_stopped;
use super::{ClockMode, RunError, RunOptions};
use crate::clock::{Clock, calibrate};
use crate::profile::Plan;
use crate::results::figures::{overall_generator, timer_floor};
use crate::results::trust::{Stopped, warnings};
use crate::results::{Environment, Results, SCHEMA, StrategyResult, TimerFloor};

/// When a run started, and how precisely this machine wakes the client's thread.
pub(super) struct Started {
    /// The wall-clock start, RFC 3339.
    pub start_time: String,
    /// The floor under the generator's lag, measured before anything else runs
    /// ([`calibrate_timer`]); `None` on a simulated clock or when stopped first.
    pub timer: Option<TimerFloor>,
}

/// How precisely this machine wakes the client's thread (`clock::calibrate`), measured before
/// anything else runs, in turn or interleaved: the floor under the generator's lag.
pub(super) async fn calibrate_timer(
    plan: &Plan,
    clock: &Clock,
    stop: &CancellationToken,
) -> Option<TimerFloor> {
    unless_stopped(
        stop,
        calibrate::wake_overshoot(clock, calibrate::CALIBRATION_SPAN),
    )
    .await
    .flatten()
    .map(|o| timer_floor(&o, clock.wake_quantum(plan.load.wake_quantum)))
}

/// The results of a run from its strategies' figures: the generator's figures over all of
/// them, the warnings (and `notes`, sentences of the run's own), the environment; a target
/// lost before strategy `lost.0` is [`RunError::TargetLost`], carrying them.
pub(super) fn assemble(
    plan: &Plan,
    opts: &RunOptions,
    started: Started,
    strategies: Vec<StrategyResult>,
    partial: bool,
    lost: Option<(usize, String)>,
    notes: Vec<String>,
) -> Result<Results, RunError> {
    let generator = overall_generator(&strategies);
    let mut warnings = warnings(
        &strategies,
        partial && lost.is_none(),
        started.timer.as_ref(),
    );
    warnings.extend(notes);
    // What the profile's models were read from (a recorded strategy marked partial).
    warnings.extend(plan.caveats.iter().cloned());
    if let Some((index, reason)) = &lost {
        warnings.insert(
            0,
            format!(
                "the run stopped before strategy `{}` ({} of {}): {reason}; figures cover only \
                 the strategies before it",
                plan.strategies[*index].name,
                index + 1,
                plan.strategies.len()
            ),
        );
    }
    let results = Results {
        schema: SCHEMA.to_string(),
        profile: serde_json::to_value(plan).expect("a plan always serializes"),
        environment: environment(opts, started),
        partial,
        stopped: match (&lost, partial) {
            (Some(_), _) => Some(Stopped::TargetLost),
            (None, true) => Some(Stopped::Interrupted),
            (None, false) => None,
        },
        generator,
        warnings,
        strategies,
        shard: opts.shard,
        merged_from: Vec::new(),
    };
    match lost {
        None => Ok(results),
        Some((index, reason)) => Err(RunError::TargetLost {
            reason,
            strategy: plan.strategies[index].name.clone(),
            number: index + 1,
            count: plan.strategies.len(),
            results: Box::new(results),
        }),
    }
}

fn environment(opts: &RunOptions, started: Started) -> Environment {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map_or_else(|| "unknown".to_string(), |h| h.trim().to_string());
    Environment {
        tool: format!("resilbench {}", env!("CARGO_PKG_VERSION")),
        host,
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        clock: opts.clock.name().to_string(),
        transport: match opts.clock {
            ClockMode::Real => "grpc",
            ClockMode::Virtual => "direct",
        }
        .to_string(),
        target: opts
            .target
            .clone()
            .unwrap_or_else(|| "embedded".to_string()),
        start_time: started.start_time,
        timer: started.timer,
    }
}
