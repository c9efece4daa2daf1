//! `resilbench sweep`: a profile run at every point of a grid of settings, then the
//! trade-off frontier, the load curves and the recommendation (docs/sweeps.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::signals::stop_on_signal;
use super::{CliError, EXIT_GATE_FAILED, EXIT_INTERRUPTED};
use crate::choose::{self, Goal, SweepDoc};
use crate::cli::SweepArgs;
use crate::clock::Clock;
use crate::profile::error::{FieldPath, Seg};
use crate::profile::{Overrides, Plan, ProfileError};
use crate::results::Results;
use crate::runner::{self, ClockMode, RunError};
use crate::sweep::run::{self as sweep_run, Options};
use crate::sweep::spec::Origin;
use crate::sweep::{Grid, Spec};

/// How often, at most, sweep.json is written while points finish (so a sweep killed outright
/// keeps an index of the points it wrote). A big sweep's file takes longer to write: it is
/// then written at most every [`WRITE_SHARE`] × the time the last write took, so writing stays
/// a small share of the sweep.
const WRITE_EVERY: Duration = Duration::from_secs(2);

/// See [`WRITE_EVERY`].
const WRITE_SHARE: u32 = 20;

pub(super) fn sweep(args: SweepArgs) -> Result<ExitCode, CliError> {
    let overrides = Overrides {
        duration: args.duration,
        rate: args.rate,
        seed: args.seed,
    };
    let base = super::profiles::load(&args.profile, &overrides)?.plan;
    no_target(&base)?;
    for warning in base
        .client_warnings()
        .into_iter()
        .chain(base.caveats.clone())
    {
        eprintln!("warning: {warning}");
    }
    let mut spec = spec_of(&args.profile)?.with_flags(&args.vary)?;
    if !args.strategy.is_empty() {
        spec.strategies = args
            .strategy
            .iter()
            .map(|s| (s.clone(), Origin::Flag(format!("--strategy {s}"))))
            .collect();
    }
    let goal = goal_of(&spec, &args.goal, &base)?;
    if args.clock == ClockMode::Virtual && args.target.is_some() {
        return Err(RunError::Options(
            "--clock virtual runs the backend in process; it cannot drive a --target".into(),
        )
        .into());
    }
    if args.clock == ClockMode::Real && args.jobs.is_some_and(|j| j > 1) {
        return Err(RunError::Options(
            "--jobs: on a real clock points run one at a time (two at once would measure each \
             other); --clock virtual runs them in parallel"
                .into(),
        )
        .into());
    }
    let grid = Grid::build(spec, base)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = match args.clock {
        ClockMode::Virtual => args.jobs.map_or(cores, usize::from),
        ClockMode::Real => 1,
    };
    let notes = grid.check_all(cores)?;
    let points = sweep_run::shard_points(grid.len(), args.shard);
    if !args.quiet || args.dry_run {
        eprintln!("{}", grid_words(&grid, points.len(), args.clock, jobs));
        for n in &notes {
            eprintln!("note: {n}");
        }
    }
    if args.dry_run {
        let mut out = std::io::stdout().lock();
        for &i in &points {
            let _ = writeln!(out, "{i}\t{}", grid.describe(i));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.clock == ClockMode::Real {
        eprintln!("{}", real_estimate(&grid, points.len()));
    }
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => default_dir(&grid.base)?,
    };
    crate::sweep::output::prepare(&dir, args.force)?;
    let opts = Options {
        clock: args.clock,
        jobs,
        shard: args.shard,
        target: args.target.clone(),
        quiet: args.quiet,
    };
    let mut doc = SweepDoc::new(&grid, goal.clone(), args.clock.name(), args.shard, notes);
    let stop = CancellationToken::new();
    watch_signals(stop.clone());
    let sweep_json = dir.join("sweep.json");
    let write_error = |e: std::io::Error, path: &Path| RunError::Write {
        path: path.to_path_buf(),
        error: e,
    };
    doc.write(&sweep_json)
        .map_err(|e| write_error(e, &sweep_json))?;
    let summarize =
        |plan: &Plan, results: &Results| choose::figures::summarize(plan, results, goal.as_ref());
    let (mut last_write, mut pause) = (Clock::Tokio.now(), WRITE_EVERY);
    let ended = sweep_run::run(&grid, &opts, &dir, &stop, &summarize, &mut |done| {
        doc.add(&grid, done.index, done.dir, done.summary);
        let now = Clock::Tokio.now();
        if now.duration_since(last_write) >= pause {
            // A failure here is retried at the next point and reported at the end.
            let _ = doc.write(&sweep_json);
            last_write = Clock::Tokio.now();
            pause = WRITE_EVERY.max(last_write.duration_since(now) * WRITE_SHARE);
        }
    });
    doc.partial = !matches!(ended, Ok(e) if !e.interrupted && e.done == e.planned);
    // What finished is written whatever stopped the sweep.
    doc.write(&sweep_json)
        .map_err(|e| write_error(e, &sweep_json))?;
    let page = dir.join("sweep.html");
    choose::page::write(&page, &doc).map_err(|e| write_error(e, &page))?;
    let mut out = std::io::stdout().lock();
    let _ = choose::text::write_summary(&mut out, &doc);
    let _ = writeln!(out, "\nsweep:  {}", sweep_json.display());
    let _ = writeln!(out, "page:   {}", page.display());
    let _ = writeln!(
        out,
        "points: {} (each an ordinary run: resilbench report, compare, check)",
        dir.join("points").display()
    );
    let ended = ended.map_err(|e| CliError::Other(e.to_string()))?;
    Ok(if ended.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if goal.is_some() && args.shard.is_none() && doc.verdict.best.is_none() {
        ExitCode::from(EXIT_GATE_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The goal: `--goal`, else the `[sweep]` table's, else the limits of the profile's `[gate]`.
fn goal_of(spec: &Spec, flags: &[String], base: &Plan) -> Result<Option<Goal>, ProfileError> {
    if !flags.is_empty() {
        return Goal::from_conditions("--goal", flags)
            .map(Some)
            .map_err(|(i, message)| {
                spec.error(
                    &Origin::Flag(format!("--goal \"{}\"", flags[i])),
                    FieldPath::default(),
                    message,
                )
            });
    }
    if !spec.goal.is_empty() {
        let texts: Vec<String> = spec.goal.iter().map(|(g, _)| g.clone()).collect();
        return Goal::from_conditions("[sweep] goal", &texts)
            .map(Some)
            .map_err(|(i, message)| {
                let field = FieldPath(vec![
                    Seg::Key("sweep".into()),
                    Seg::Key("goal".into()),
                    Seg::Index(i),
                ]);
                spec.error(&spec.goal[i].1, field, message)
            });
    }
    Ok(base.gate.as_ref().and_then(Goal::from_gate))
}

/// `sweep: 40 points (max_attempts: 4 values × initial_backoff: 10 values) …`.
fn grid_words(grid: &Grid, points: usize, clock: ClockMode, jobs: usize) -> String {
    let keys: Vec<String> = grid
        .keys
        .iter()
        .map(|k| format!("{}: {} values", k.name, k.values.len()))
        .collect();
    let shard = if points < grid.len() {
        format!(", {points} in this shard")
    } else {
        String::new()
    };
    let how = match clock {
        ClockMode::Virtual => format!("virtual clock, {jobs} at a time"),
        ClockMode::Real => "real clock, one at a time".into(),
    };
    format!(
        "sweep of {}: {} points ({}){shard}, every point valid; {} strateg{} each; {how}",
        grid.base.name,
        grid.len(),
        keys.join(" × "),
        grid.base.strategies.len(),
        if grid.base.strategies.len() == 1 {
            "y"
        } else {
            "ies"
        }
    )
}

/// How long a real-clock sweep takes, said before it starts.
fn real_estimate(grid: &Grid, points: usize) -> String {
    let plan = &grid.base;
    let per_point = plan.load.duration * plan.strategies.len() as u32;
    let deadline = plan
        .strategies
        .iter()
        .map(|s| s.deadline)
        .max()
        .unwrap_or_default();
    let most = (plan.load.duration + deadline + runner::DRAIN_REAL) * plan.strategies.len() as u32;
    let total = |d: Duration| {
        humantime::format_duration(Duration::from_secs((d.as_secs() * points as u64).max(1)))
    };
    format!(
        "real clock: {points} points run one after another, each {} strateg{} × {}: at least {}, \
         at most about {} (each strategy may wait up to its deadline and {} s for the backend \
         to drain). Ctrl-C keeps the points finished.",
        plan.strategies.len(),
        if plan.strategies.len() == 1 {
            "y"
        } else {
            "ies"
        },
        crate::profile::duration::format(plan.load.duration),
        total(per_point),
        total(most),
        runner::DRAIN_REAL.as_secs()
    )
}

/// `reports/<profile>-sweep-<UTC time>`, made now with `mkdir`: two sweeps started in the same
/// second get their own folders (the second `…-2`), as runs do.
fn default_dir(plan: &Plan) -> Result<PathBuf, RunError> {
    let run = runner::default_out_dir(plan);
    let name = run
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let tag = crate::record::hlog::tag_for(&plan.name);
    let base = run.with_file_name(name.replacen(&tag, &format!("{tag}-sweep"), 1));
    runner::make_new(&base).map_err(|(path, error)| RunError::Write { path, error })
}

/// Ctrl-C or SIGTERM stops the sweep (what finished is written); a second exits at once.
fn watch_signals(stop: CancellationToken) {
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(stop_on_signal(stop));
            }
        });
    if let Err(e) = spawned {
        eprintln!("warning: Ctrl-C will not stop the sweep cleanly: {e}");
    }
}

/// The `[sweep]` of the profile `arg` names: a file, or else a profile built into the binary
/// (as `run` finds them: `super::profiles::load`).
fn spec_of(arg: &Path) -> Result<Spec, ProfileError> {
    if !arg.exists()
        && let Some(s) = crate::profile::shipped::find(&arg.to_string_lossy())
    {
        return Spec::parse(format!("{} (built in)", s.name), s.text.to_string());
    }
    Spec::read(arg)
}

/// A sweep varies the embedded backend's profile; one's own service (`[target]`) is not
/// swept (each point is the plan read back as a profile, and a sweep runs on the virtual
/// clock by default): refused in words rather than by a point's confusing error.
fn no_target(plan: &Plan) -> Result<(), CliError> {
    match &plan.target {
        Some(t) => Err(CliError::Other(format!(
            "[target] ({}): `resilbench sweep` varies profiles of the embedded backend and \
             does not call your own service; run each setting with `resilbench run`",
            t.address
        ))),
        None => Ok(()),
    }
}

/// For `validate`: the grid of a profile with a `[sweep]`, every point checked, in words.
pub(super) fn validate_grid(path: &Path, plan: &Plan) -> Result<Option<String>, CliError> {
    let spec = spec_of(path)?;
    if spec.vary.is_empty() && spec.goal.is_empty() && spec.strategies.is_empty() {
        return Ok(None);
    }
    no_target(plan)?;
    goal_of(&spec, &[], plan)?;
    let grid = Grid::build(spec, plan.clone())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let notes = grid.check_all(cores)?;
    let mut words = grid_words(&grid, grid.len(), ClockMode::Virtual, cores);
    for n in notes {
        words.push_str(&format!("\nnote: {n}"));
    }
    Ok(Some(words))
}

/// For `run`: whether the profile has a `[sweep]` (run runs the profile as written).
pub(super) fn has_sweep(path: &Path) -> bool {
    spec_of(path).is_ok_and(|s| !s.vary.is_empty())
}
