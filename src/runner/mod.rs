//! One whole run: each strategy in turn against a fresh backend, then the results.
//!
//! For every strategy the runner sets up a fresh backend from the same plan and seed (so every
//! strategy meets the same conditions), builds the strategy's stack over a transport to it,
//! drives the schedule, and collects the recorder's and the backend's figures.
//!
//! | clock | target | backend | transport |
//! |---|---|---|---|
//! | real | none | embedded gRPC server on 127.0.0.1:0, one per strategy | gRPC over TCP |
//! | real | `host:port` | `resilbench serve`, reset through its `Control` service | gRPC over TCP |
//! | virtual | none | in process | the backend called directly |

mod assemble;
mod folder;
mod interleaved;
mod output;
mod service;
mod setup;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

pub use folder::{OutDir, Placing, make_new};
pub use output::{abandon_writing, default_out_dir, write_folder, write_outputs};
use setup::{Setup, unless_stopped};

use crate::clock::Clock;
use crate::clock::sim::SimClock;
use crate::driver::{self, DriveSpec};
use crate::profile::plan::DEFAULT_TARGET_COOLDOWN;
use crate::profile::{Order, Plan};
use crate::progress::Progress;
use crate::record::{Recorder, RecorderConfig};
use crate::results::figures as summary;
use crate::results::trust::BackendGap;
use crate::results::{Results, Shard};
use crate::strategy;

/// Which clock the run follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockMode {
    /// Wall-clock time, real sockets.
    Real,
    /// A paused tokio clock that jumps from event to event; the backend runs in process.
    Virtual,
}

impl ClockMode {
    /// The clock of a run in this mode, started inside the run's runtime (a virtual clock: the
    /// paused, current-thread runtime; a real one: its reactor serves the timer).
    pub fn start(self) -> Clock {
        match self {
            ClockMode::Real => Clock::real(),
            ClockMode::Virtual => Clock::Sim(SimClock::start()),
        }
    }

    /// The name written in results.
    pub fn name(self) -> &'static str {
        match self {
            ClockMode::Real => "real",
            ClockMode::Virtual => "virtual",
        }
    }
}

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Real or virtual time.
    pub clock: ClockMode,
    /// A `resilbench serve` to send to instead of the embedded backend.
    pub target: Option<String>,
    /// Where progress goes.
    pub progress: Progress,
    /// Send only this shard's calls (`--shard K/N`).
    pub shard: Option<Shard>,
    /// Start each strategy's schedule at a fixed wall-clock time (`--start-at`), so that
    /// shards on several hosts line up: strategy k starts at `start_at + k × slot`.
    pub start_at: Option<SystemTime>,
    /// How long reaching a target may take (TCP, the HTTP/2 handshake up to the server's
    /// SETTINGS, a Control call's answer): `--connect-timeout`, [`CONNECT_TIMEOUT`] by default.
    pub connect_timeout: Duration,
}

pub use crate::transport::connection::CONNECT_TIMEOUT;

/// How long one strategy may take on a shared timetable (`--start-at`): its warmup and
/// duration, the longest call deadline, the drain, and 2 s for connecting; a strategy that
/// overruns it starts the next one late, and that lateness is recorded as generator lag.
pub fn strategy_slot(plan: &Plan) -> Duration {
    let deadline = plan
        .strategies
        .iter()
        .map(|s| s.deadline)
        .max()
        .unwrap_or_default();
    plan.load.duration + deadline + DRAIN_REAL + Duration::from_secs(2) + configured_cooldown(plan)
}

/// The cooldown the plan states (none when unset: [`cooldown`] resolves the default).
fn configured_cooldown(plan: &Plan) -> Duration {
    plan.load.cooldown.map_or(Duration::ZERO, |c| c.0)
}

/// The pause between strategies run in turn: the plan's `load.cooldown`, or by default
/// [`DEFAULT_TARGET_COOLDOWN`] against a `--target` and none otherwise (each strategy gets a
/// fresh embedded backend: there is nothing to recover from, and a virtual clock would wait
/// for nothing).
pub fn cooldown(plan: &Plan, opts: &RunOptions) -> Duration {
    cooldown_with(plan, opts.target.is_some())
}

/// [`cooldown`] for a run against a target (`remote`) or the embedded backend.
pub fn cooldown_with(plan: &Plan, remote: bool) -> Duration {
    match plan.load.cooldown {
        Some(c) => c.0,
        None if remote => DEFAULT_TARGET_COOLDOWN,
        None => Duration::ZERO,
    }
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The options contradict each other.
    #[error("{0}")]
    Options(String),
    /// The target could not be reached.
    #[error("cannot reach the target {target}: {reason}")]
    Target {
        /// The address.
        target: String,
        /// Why.
        reason: String,
    },
    /// The user's own service (`[target]`) cannot be called as the profile says: its schema,
    /// method or request (the message names the key and what is wrong).
    #[error("{0}")]
    Service(String),
    /// As [`RunError::Service`], about one key of `[target]` (a schema fetched by reflection
    /// is checked when the run starts): the command says where that key was written.
    #[error("{field}: {message}")]
    Field {
        /// The key, as a profile path (`target.request`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The target was reached but did not answer a Control call as it should.
    #[error("the target {target} was reached but {reason}")]
    Control {
        /// The address.
        target: String,
        /// What failed, in words (the call, its status, or the time waited).
        reason: String,
    },
    /// The target could not be reached (or did not answer) before a strategy, after others
    /// were measured: the run stopped there, and `results` holds what was measured, marked
    /// partial, to be written.
    #[error("{reason}; the run stopped before strategy `{strategy}` ({number} of {count})")]
    TargetLost {
        /// Why, as [`RunError::Target`] or [`RunError::Control`] said it.
        reason: String,
        /// The strategy that could not start.
        strategy: String,
        /// Its number, from 1.
        number: usize,
        /// How many strategies the profile has.
        count: usize,
        /// What was measured before.
        results: Box<Results>,
    },
    /// Stopped (a signal) before anything was measured.
    #[error("interrupted before any strategy was measured")]
    Interrupted,
    /// The embedded backend could not start.
    #[error("cannot start the embedded backend: {0}")]
    Embedded(String),
    /// The output could not be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why (not a `source`: the message already says it).
        error: std::io::Error,
    },
}

/// How long a real run waits, after its last call, for the backend to finish abandoned work.
pub const DRAIN_REAL: Duration = Duration::from_secs(5);

/// The same on a simulated clock, where waiting costs no wall time.
pub const DRAIN_VIRTUAL: Duration = Duration::from_secs(3600);

/// Runs every strategy of `plan` in turn on `clock` (from [`ClockMode::start`]). Cancelling
/// `stop` ends the run early, at any moment (waiting for a slot, reaching the target,
/// sending, draining, reading its figures); what was measured is still returned, marked
/// partial. A target that cannot be reached before the first strategy is an error; before a
/// later one, [`RunError::TargetLost`], which carries what was measured.
pub async fn execute(
    plan: &Plan,
    opts: &RunOptions,
    clock: &Clock,
    stop: CancellationToken,
) -> Result<Results, RunError> {
    let start_time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    // The user's own service, made ready before any load (its schema may come from it).
    let own = match (&plan.target, opts.clock) {
        (None, _) => None,
        (Some(_), ClockMode::Virtual) => {
            return Err(RunError::Options(
                "a [target] is called on the real clock; --clock virtual runs the embedded \
                 backend in process"
                    .into(),
            ));
        }
        (Some(target), ClockMode::Real) => {
            match unless_stopped(&stop, service::ready(plan, target, opts, clock)).await {
                Some(ready) => Some(ready?),
                None => return Err(RunError::Interrupted),
            }
        }
    };
    // A method known only from the server (reflection) decides how its answers are counted.
    let adjusted;
    let plan = match &own {
        Some(own) if own.method != plan.load.method => {
            let mut p = plan.clone();
            p.load.method = own.method;
            adjusted = p;
            &adjusted
        }
        _ => plan,
    };
    if plan.load.order == Order::Interleaved {
        return interleaved::execute(plan, opts, clock, stop, own.as_ref()).await;
    }
    let origin = clock.now();
    let pause = cooldown(plan, opts);
    let mut strategies = Vec::with_capacity(plan.strategies.len());
    let mut partial = false;
    // Every wait below is cut short by `stop` (Ctrl-C at any moment of the run): what was
    // measured up to then is returned, marked partial.
    let mut lost = None;
    // Whether the target was said to serve another backend (said once per run).
    let mut served_said = false;
    // How precisely this machine wakes the client's thread, before anything else runs: the
    // floor under the generator's lag (`clock::calibrate`).
    let timer = assemble::calibrate_timer(plan, clock, &stop).await;
    for (index, strategy) in plan.strategies.iter().enumerate() {
        if stop.is_cancelled() {
            partial = true;
            break;
        }
        // On a shared timetable the schedule starts at its slot's wall-clock time, whenever
        // this process got there: early, it waits; late, its calls are late (lag).
        let slot = opts
            .start_at
            .filter(|_| opts.clock == ClockMode::Real)
            .map(|at| at + strategy_slot(plan) * index as u32);
        // Strategies in turn: the previous one's storm has time to settle before the next
        // starts (on a shared timetable the slot holds the pause).
        if index > 0 && slot.is_none() && !pause.is_zero() {
            opts.progress.cooldown(plan, index, pause);
            if unless_stopped(&stop, clock.sleep(pause)).await.is_none() {
                partial = true;
                break;
            }
        }
        let remote = opts.target.is_some();
        if let (Some(slot_start), true) = (slot, remote) {
            // A shared target is reset once per slot, a second before it starts: by then
            // every shard has finished the previous slot and read its figures.
            let reset_at = clock.instant_at(slot_start - Duration::from_secs(1));
            if unless_stopped(&stop, clock.sleep_until(reset_at))
                .await
                .is_none()
            {
                partial = true;
                break;
            }
        }
        let setup = Setup::new(
            plan,
            opts,
            clock,
            slot.map(unix_ms),
            &mut served_said,
            own.as_ref(),
        );
        let (setup, transport) = match unless_stopped(&stop, setup).await {
            None => {
                partial = true;
                break;
            }
            Some(Ok(ready)) => ready,
            // Nothing measured yet: the run has not started.
            Some(Err(e)) if strategies.is_empty() => return Err(e),
            // A target lost between strategies: what was measured is kept, and the run stops
            // here (without `load.target_may_be_down` a run does not measure a target that is
            // not there: every call would fail alike, and say nothing of the strategy).
            Some(Err(e @ (RunError::Target { .. } | RunError::Control { .. }))) => {
                lost = Some((index, e.to_string()));
                partial = true;
                break;
            }
            Some(Err(e)) => return Err(e),
        };
        let (start, start_ms) = match (opts.clock, slot) {
            (ClockMode::Real, Some(slot_start)) => {
                (clock.instant_at(slot_start), unix_ms(slot_start))
            }
            (ClockMode::Real, None) => (clock.now(), unix_ms(SystemTime::now())),
            (ClockMode::Virtual, _) => (
                clock.now(),
                clock.now().duration_since(origin).as_millis() as u64,
            ),
        };
        let config = RecorderConfig {
            start,
            warmup: plan.load.warmup,
            duration: plan.load.duration,
            deadline: strategy.deadline,
        };
        setup.begin(config.start);
        let recorder = Arc::new(Recorder::new(config));
        let stack = strategy::build(
            strategy,
            transport,
            Arc::clone(&recorder) as _,
            clock,
            plan.seed,
        );
        let ticker = opts
            .progress
            .begin(plan, index, Arc::clone(&recorder), clock);
        let spec = DriveSpec {
            load: &plan.load,
            phases: &plan.phases,
            seed: plan.seed,
            start: config.start,
            clock: clock.clone(),
            shard: opts.shard,
            wake_quantum: clock.wake_quantum(plan.load.wake_quantum),
        };
        let lane = driver::Lane::of(strategy, stack, Arc::clone(&recorder));
        let end = driver::drive(spec, lane, stop.clone()).await;
        // Nothing that ends after this point is counted.
        let state = recorder.finish().expect("the recorder is finished once");
        let drain = (!end.interrupted).then_some(match opts.clock {
            ClockMode::Real => DRAIN_REAL,
            ClockMode::Virtual => DRAIN_VIRTUAL,
        });
        // A shared target's figures are read at the end of the slot, once every shard's calls
        // (and their drain) are done.
        let read_at = slot
            .filter(|_| remote && !end.interrupted)
            .map(|s| clock.instant_at(s + strategy_slot(plan) - Duration::from_millis(1500)));
        let (backend, gap) = setup.finish(clock, drain, read_at, &stop).await;
        let mut result = summary::strategy_result(
            &strategy.name,
            start_ms,
            &config,
            state,
            end,
            backend,
            plan.load.method == crate::profile::Method::Stream,
        );
        result.backend_gap = gap;
        if gap == Some(BackendGap::Restarted) {
            // Received by another process over another span: not a ratio of these calls.
            result.amplification.backend = None;
        }
        ticker.finish(&result);
        strategies.push(result);
        if end.interrupted || stop.is_cancelled() {
            partial = true;
            break;
        }
    }
    assemble::assemble(
        plan,
        opts,
        assemble::Started { start_time, timer },
        strategies,
        partial,
        lost,
        Vec::new(),
    )
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(target: Option<&str>) -> RunOptions {
        RunOptions {
            clock: ClockMode::Real,
            target: target.map(str::to_string),
            progress: Progress::Quiet,
            shard: None,
            start_at: None,
            connect_timeout: CONNECT_TIMEOUT,
        }
    }

    /// The default cooldown: a few seconds against a target, none for the embedded backend;
    /// the profile's (or `--cooldown`'s) wins either way, and a shared timetable's slot
    /// holds it.
    #[test]
    fn the_cooldown_defaults_by_target_and_the_profile_wins() {
        let mut plan = crate::profile::parse(
            "[load]\nrate = 1\n[[strategies]]\nname = \"a\"\n",
            "t.toml",
            "t",
            &crate::profile::Overrides::default(),
        )
        .unwrap();
        assert_eq!(cooldown(&plan, &options(None)), Duration::ZERO);
        assert_eq!(
            cooldown(&plan, &options(Some("h:1"))),
            DEFAULT_TARGET_COOLDOWN
        );
        let before = strategy_slot(&plan);
        plan.load.cooldown = Some(crate::profile::duration::HumanDuration(Duration::ZERO));
        assert_eq!(cooldown(&plan, &options(Some("h:1"))), Duration::ZERO);
        plan.load.cooldown = Some(crate::profile::duration::HumanDuration(
            Duration::from_secs(3),
        ));
        assert_eq!(cooldown(&plan, &options(None)), Duration::from_secs(3));
        assert_eq!(strategy_slot(&plan), before + Duration::from_secs(3));
    }
}
