//! `resilbench run` and `resilbench validate`: a profile's plan, run and written, or printed.

use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::signals::{exit_on_signal, stop_on_signal};
use super::{CliError, EXIT_INTERRUPTED, build_runtime, write_run_folder};
use crate::cli::{RunArgs, ValidateArgs};
use crate::profile::{self, Overrides};
use crate::progress::Progress;
use crate::runner::{self, ClockMode, OutDir, RunError, RunOptions};

/// How late a `--start-at` may be: a shard that starts a little late records its lateness as
/// lag; one far behind would fire its whole overdue schedule at once.
const START_AT_LATE: Duration = Duration::from_secs(10);

/// Refuses a `--start-at` far in the past (a stale time, or Unix seconds given as ms) or more
/// than a week ahead; says when the run will start.
fn check_start_at(at: std::time::SystemTime) -> Result<(), RunError> {
    let now = std::time::SystemTime::now();
    let shown = humantime::format_rfc3339_millis(at);
    match at.duration_since(now) {
        Err(late) if late.duration() > START_AT_LATE => {
            let hint = if at < std::time::UNIX_EPOCH + Duration::from_secs(86_400 * 365) {
                " (Unix seconds given as milliseconds?)"
            } else {
                ""
            };
            Err(RunError::Options(format!(
                "--start-at {shown} is {} s in the past{hint}; give a time ahead, the same for \
                 every shard",
                late.duration().as_secs()
            )))
        }
        Ok(ahead) if ahead > Duration::from_secs(7 * 86_400) => Err(RunError::Options(format!(
            "--start-at {shown} is more than a week ahead"
        ))),
        Ok(ahead) => {
            eprintln!(
                "waiting until {shown} ({:.1} s) to start",
                ahead.as_secs_f64()
            );
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

pub(super) fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let overrides = Overrides {
        duration: args.duration,
        rate: args.rate,
        seed: args.seed,
    };
    let loaded = match &args.profile {
        Some(profile) => {
            // `run host:port --call ...`: the address where the profile goes.
            let shown = profile.to_string_lossy();
            if !profile.exists() && crate::profile::Address::parse(&shown).is_ok() {
                return Err(CliError::Other(format!(
                    "`{shown}` is not a profile; did you mean --target {shown}?{}",
                    if args.quick.call.is_some() {
                        ""
                    } else {
                        " (with --call package.Service/Method)"
                    }
                )));
            }
            let given = args.quick.given();
            if !given.is_empty() {
                return Err(CliError::Other(format!(
                    "{} {} your own service for a run without a profile; a profile says the \
                     same in its [target] (docs/targets.md)",
                    given.join(", "),
                    if given.len() == 1 {
                        "describes"
                    } else {
                        "describe"
                    }
                )));
            }
            super::profiles::load(profile, &overrides)?
        }
        None => super::quick::load(&args, &overrides)?,
    };
    let mut plan = loaded.plan;
    // A profile's own service: --target points it elsewhere.
    let mut target = args.target.clone();
    if let Some(t) = &mut plan.target {
        if let Some(address) = &args.target {
            crate::profile::Address::parse(address)
                .map_err(|e| CliError::Other(format!("--target {address}: {e}")))?;
            t.address = address.clone();
        }
        target = Some(t.address.clone());
        if args.clock == ClockMode::Virtual {
            return Err(RunError::Options(
                "the profile calls your own service ([target]) on the real clock; --clock \
                 virtual runs the embedded backend in process"
                    .into(),
            )
            .into());
        }
    }
    for warning in plan
        .client_warnings()
        .into_iter()
        .chain(plan.caveats.clone())
    {
        eprintln!("warning: {warning}");
    }
    if let Some(c) = args.cooldown {
        if c > crate::profile::validate::MAX_COOLDOWN {
            return Err(RunError::Options(format!(
                "--cooldown must be at most {}",
                crate::profile::duration::format(crate::profile::validate::MAX_COOLDOWN)
            ))
            .into());
        }
        plan.load.cooldown = Some(crate::profile::duration::HumanDuration(c));
    }
    for warning in plan.unapplied() {
        eprintln!("warning: {warning}");
    }
    super::run_checks::before(&mut plan, &args, &loaded.source, target.is_some())?;
    if args.profile.as_deref().is_some_and(super::sweep::has_sweep) && !args.quiet {
        eprintln!(
            "note: {} has a [sweep]; `run` runs the profile as written (`resilbench sweep` runs \
             its grid)",
            loaded.source
        );
    }
    if args.clock == ClockMode::Virtual && args.target.is_some() {
        return Err(RunError::Options(
            "--clock virtual runs the backend in process; it cannot drive a --target".into(),
        )
        .into());
    }
    if args.clock == ClockMode::Virtual && args.start_at.is_some() {
        return Err(RunError::Options(
            "--start-at is a wall-clock time; a --clock virtual run has none".into(),
        )
        .into());
    }
    if let Some(at) = args.start_at {
        check_start_at(at)?;
    } else if args.shard.is_some() && args.clock == ClockMode::Real {
        eprintln!(
            "warning: --shard without --start-at: merge needs every shard to start at the \
             same instant; give all shards the same --start-at"
        );
    }
    if args.connect_timeout.is_zero() || args.connect_timeout > MAX_CONNECT_TIMEOUT {
        return Err(RunError::Options(format!(
            "--connect-timeout must be above 0 and at most {}",
            crate::profile::duration::format(MAX_CONNECT_TIMEOUT)
        ))
        .into());
    }
    // Reserved now (made, locked, checked): a run never ends by finding it cannot write.
    let out = match &args.out {
        Some(dir) => OutDir::reserve(dir, args.force)?,
        None => OutDir::reserve_new(&runner::default_out_dir(&plan))?,
    };
    let opts = RunOptions {
        clock: args.clock,
        target,
        progress: Progress::detect(args.quiet),
        shard: args.shard,
        start_at: args.start_at,
        connect_timeout: args.connect_timeout,
    };
    // A real run writes the cooldown it used (its default depends on the target); a virtual
    // one waits for nothing unless the profile asks.
    if opts.clock == ClockMode::Real && plan.load.order == profile::Order::Sequential {
        plan.load.cooldown = Some(crate::profile::duration::HumanDuration(runner::cooldown(
            &plan, &opts,
        )));
    }
    run_plan(&plan, &opts, out, args.export, &loaded.place)
}

/// The longest `--connect-timeout`.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(600);

fn run_plan(
    plan: &profile::Plan,
    opts: &RunOptions,
    out: OutDir,
    export: Option<crate::cli::Export>,
    place: &super::profiles::Place,
) -> Result<ExitCode, CliError> {
    let runtime = build_runtime(opts.clock)?;
    let stop = CancellationToken::new();
    // The signal task lives as long as the runtime, which runs until the run ends: a signal
    // is answered at every moment, never swallowed (after the write, by `exit_on_signal`).
    let watcher = runtime.spawn(stop_on_signal(stop.clone()));
    let outcome = runtime.block_on(async {
        let clock = opts.clock.start();
        runner::execute(plan, opts, &clock, stop.clone()).await
    });
    // Progress is written on a thread of its own: let it finish before the summary.
    crate::progress::flush(Duration::from_secs(1));
    let (results, lost) = match outcome {
        Ok(results) => (results, None),
        Err(RunError::TargetLost {
            reason,
            strategy,
            number,
            count,
            results,
        }) => (
            *results,
            Some(format!(
                "{reason}; the run stopped before strategy `{strategy}` ({number} of {count}); \
                 the strategies before it are written, marked partial"
            )),
        ),
        Err(RunError::Interrupted) => {
            crate::progress::line("interrupted before any strategy was measured: nothing written");
            crate::progress::flush(Duration::from_millis(200));
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
        // A key of [target] found wrong at the start (a schema fetched by reflection).
        Err(RunError::Field { field, message }) => {
            return Err(place(profile::FieldPath::parse(&field), message));
        }
        Err(e) => return Err(e.into()),
    };
    if results.strategies.is_empty() {
        crate::progress::line("interrupted before any strategy was measured: nothing written");
        crate::progress::flush(Duration::from_millis(200));
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    // Written on a blocking thread while this one goes on answering signals: a second one
    // during the write exits at once (the half-written folder removed; the previous run, if
    // any, stays whole).
    let dir = out.dir().to_path_buf();
    let extra = super::run_checks::export(&results, export);
    let written = runtime.block_on(async move {
        tokio::task::spawn_blocking(move || write_run_folder(out, results, None, extra)).await
    });
    let results =
        written.map_err(|e| CliError::Other(format!("writing the results failed: {e}")))??;
    // Everything measured is on disk: from here a signal exits at once (130), skipping only
    // the export's paths and the gate's table. They run on a blocking thread while this one
    // drives the runtime (current-thread: nothing answers a signal outside `block_on`; the
    // runtime used to be shut down here, leaving tokio's handler installed and unread).
    watcher.abort();
    let stopped = stop.is_cancelled();
    let ended = runtime.block_on(async move {
        let mut after = tokio::task::spawn_blocking(move || {
            super::run_checks::print_export(&dir, export);
            // A lost target's run is written, exported and gated like any partial run; it
            // still ends in its error.
            let gate = super::run_checks::gate(&dir, &results)?;
            if let Some(message) = lost {
                return Err(CliError::Other(message));
            }
            Ok(if results.partial || stopped {
                ExitCode::from(EXIT_INTERRUPTED)
            } else {
                gate.unwrap_or(ExitCode::SUCCESS)
            })
        });
        tokio::select! {
            r = &mut after => r,
            () = exit_on_signal() => after.await,
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    ended.map_err(|e| CliError::Other(format!("checking the results failed: {e}")))?
}

pub(super) fn validate(args: ValidateArgs) -> Result<ExitCode, CliError> {
    let loaded = super::profiles::load(&args.profile, &Overrides::default())?;
    let plan = loaded.plan;
    for w in profile::phases::warnings(&plan.phases, plan.load.duration, plan.load.warmup) {
        eprintln!("warning: {w}");
    }
    for warning in plan
        .client_warnings()
        .into_iter()
        .chain(plan.caveats.clone())
        .chain(plan.unapplied())
    {
        eprintln!("warning: {warning}");
    }
    let (text, left_out) = printed_plan(&plan)?;
    println!(
        "# {}: valid. The resolved plan, with every default filled in:\n",
        loaded.source
    );
    if let Some(left_out) = left_out {
        println!("# (the calls go to [target]: {left_out} do not apply and are left out)\n");
    }
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    if let Some(grid) = super::sweep::validate_grid(&args.profile, &plan)? {
        println!("\n# [sweep]: {}", grid.replace('\n', "\n# "));
    }
    Ok(ExitCode::SUCCESS)
}

/// The plan as `validate` prints it, and what was left out: for a `[target]`, what only the
/// embedded backend uses (`load.method`, which the called method decides, `load.payload_bytes`,
/// which the request replaces, and `[backend]` unless the target is a resilbench proxy,
/// `control = true`, which takes its faults from there). Cut from the pretty text, so the
/// order of the keys stays the plan's; the cut text is checked to be the plan without those
/// keys, or the whole plan is printed.
fn printed_plan(plan: &profile::Plan) -> Result<(String, Option<&'static str>), CliError> {
    let cannot = |e: String| CliError::Other(format!("cannot print the plan: {e}"));
    let full = toml::to_string_pretty(plan).map_err(|e| cannot(e.to_string()))?;
    let Some(target) = &plan.target else {
        return Ok((full, None));
    };
    let (without_backend, left_out) = if target.control {
        (false, "load.method and load.payload_bytes")
    } else {
        (
            true,
            "the embedded backend's settings, load.method and load.payload_bytes",
        )
    };
    let mut cut = String::new();
    let mut section = String::new();
    for line in full.lines() {
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
        }
        let backend = without_backend && (section == "backend" || section.starts_with("backend."));
        let unused = section == "load"
            && (line.starts_with("method = ") || line.starts_with("payload_bytes = "));
        if !backend && !unused {
            cut.push_str(line);
            cut.push('\n');
        }
    }
    let mut expected = toml::Value::try_from(plan).map_err(|e| cannot(e.to_string()))?;
    if let Some(root) = expected.as_table_mut() {
        if without_backend {
            root.remove("backend");
        }
        if let Some(load) = root.get_mut("load").and_then(toml::Value::as_table_mut) {
            load.remove("method");
            load.remove("payload_bytes");
        }
    }
    let same = toml::from_str::<toml::Value>(&cut).is_ok_and(|v| v == expected);
    Ok(if same {
        (cut, Some(left_out))
    } else {
        (full, None)
    })
}
