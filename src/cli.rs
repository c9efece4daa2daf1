//! The command line: `run`, `validate`, `serve`; and `report`, `compare`, `check`, which read
//! results files (their handlers are in [`crate::commands`]).
//!
//! Parsing is clap's; this module turns arguments into library calls and results into exit
//! codes, in one place: 0 done, 1 the gate does not hold (`check`), 2 bad input or error,
//! 130 interrupted (results still written).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::backend::serve_threads::ServeThreads;
use crate::backend::server::Shared;
use crate::clock::Clock;
use crate::profile::{self, Overrides, ProfileError};
use crate::progress::Progress;
use crate::runner::{self, ClockMode, RunError, RunOptions};

/// Open-loop gRPC load generator that measures client resilience strategies.
#[derive(Debug, Parser)]
#[command(name = "resilbench", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a profile: each strategy in turn against the same backend conditions.
    Run(RunArgs),
    /// Check a profile and print the resolved plan.
    Validate(ValidateArgs),
    /// Serve a profile's backend alone (for `run --target`, or any gRPC client) until Ctrl-C.
    Serve(ServeArgs),
    /// Write the HTML report of a results file.
    Report(crate::commands::ReportArgs),
    /// Compare two runs of a profile: every figure, A, B, difference, ratio, flagged if real.
    Compare(crate::commands::CompareArgs),
    /// Gate a run in CI: exit 0 when every limit and budget holds, 1 when one does not.
    Check(crate::commands::CheckArgs),
    /// Merge the shards of a sharded run (`run --shard K/N`) into one ordinary run folder.
    Merge(MergeArgs),
}

/// `resilbench merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Every shard's results.json (or run folder), one per shard.
    #[arg(required = true, num_args = 1..)]
    pub results: Vec<PathBuf>,
    /// Run folder for the merged results.json, .hlog files and report.html.
    #[arg(long, default_value = "merged")]
    pub out: PathBuf,
}

/// `resilbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// Run folder for results.json, report.html and the .hlog files [default: reports/<profile>-<UTC time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the profile's load.duration (e.g. 30s).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Replace the profile's load.rate (calls per second).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Replace the profile's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Wall-clock time, or a virtual clock (exact, reproducible, fast; embedded backend only).
    #[arg(long, value_enum, default_value_t = ClockMode::Real)]
    pub clock: ClockMode,
    /// Send to a backend started elsewhere with `resilbench serve` (host:port).
    #[arg(long)]
    pub target: Option<String>,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run the K-th of N shards (from 0): call i of the schedule is shard i mod N's, at its
    /// intended time. `resilbench merge` puts the shards' results together.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::results::Shard>,
    /// Start the schedule at this wall-clock time (RFC 3339 in UTC like 2026-11-24T10:00:00Z, or Unix
    /// milliseconds), so that shards on several hosts line up. Strategy k starts one slot
    /// later per strategy (its duration, longest deadline, drain and 2 s).
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
}

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

/// `--start-at`: RFC 3339 in UTC (with or without the `Z`) or Unix milliseconds.
fn parse_start_at(text: &str) -> Result<std::time::SystemTime, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let ms: u64 = text.parse().map_err(|_| format!("`{text}` is too large"))?;
        return std::time::UNIX_EPOCH
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| format!("`{text}` is too large"));
    }
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .map_err(|e| format!("expected RFC 3339 (2026-11-24T10:00:00Z) or Unix ms: {e}"))
}

/// `resilbench validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The profile (TOML).
    pub profile: PathBuf,
}

/// `resilbench serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The profile whose [backend] to serve.
    pub profile: PathBuf,
    /// Address to listen on (loopback unless you name another).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// Print one line per attempt: request id, attempt, grpc-previous-rpc-attempts, status.
    #[arg(long)]
    pub log_attempts: bool,
    /// Threads that answer calls (default: one per core; not the backend model's
    /// `workers`). Each connection is answered by one thread, given out in turn, so a client
    /// with fewer connections leaves threads idle; one more thread accepts connections. Fewer
    /// leave cores to a generator on the same machine (docs/PERFORMANCE.md).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    profile::duration::parse(text)
}

/// Errors that end a command with exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bad profile.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A run that could not be carried out.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
}

/// Exit status of an interrupted run whose partial results were written (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Validate(args) => validate(args),
        Command::Serve(args) => serve(args),
        Command::Report(args) => crate::commands::report(args),
        Command::Compare(args) => crate::commands::compare(args),
        Command::Check(args) => crate::commands::check(args),
        Command::Merge(args) => merge(args),
    }
}

fn run(args: RunArgs) -> Result<ExitCode, CliError> {
    let overrides = Overrides {
        duration: args.duration,
        rate: args.rate,
        seed: args.seed,
    };
    let plan = profile::load(&args.profile, &overrides)?;
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
    let dir = args.out.unwrap_or_else(|| runner::default_out_dir(&plan));
    let created = runner::prepare_out_dir(&dir)?;
    let opts = RunOptions {
        clock: args.clock,
        target: args.target,
        progress: Progress::detect(args.quiet),
        shard: args.shard,
        start_at: args.start_at,
    };
    let outcome = run_plan(&plan, &opts, &dir);
    if outcome.is_err() && created {
        // A run that wrote nothing leaves nothing behind (remove_dir removes only an empty one).
        let _ = std::fs::remove_dir(&dir);
    }
    outcome
}

fn merge(args: MergeArgs) -> Result<ExitCode, CliError> {
    // Writing into a shard's own folder would replace that shard's results.
    let out = std::fs::canonicalize(&args.out).ok();
    for p in &args.results {
        let dir = if p.is_dir() {
            Some(p.as_path())
        } else {
            p.parent()
        };
        let dir = dir.and_then(|d| {
            std::fs::canonicalize(if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            })
            .ok()
        });
        if out.is_some() && dir == out {
            return Err(CliError::Other(format!(
                "cannot merge into {}: it holds the shard {}",
                args.out.display(),
                p.display()
            )));
        }
    }
    let runs = args
        .results
        .iter()
        .map(|p| crate::merge::ShardRun::read(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Other)?;
    let merged =
        crate::merge::merge(runs).map_err(|e| CliError::Other(format!("cannot merge: {e}")))?;
    let dir = &args.out;
    runner::prepare_out_dir(dir)?;
    let path = runner::write_outputs(dir, &merged)?;
    let doc = crate::document::ResultsDoc::from_results(merged);
    let report = dir.join("report.html");
    crate::report::write(&report, &doc).map_err(|error| RunError::Write {
        path: report.clone(),
        error,
    })?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "merged {} shards", doc.results.merged_from.len());
    let _ = crate::summary::write_summary(&mut out, &doc.results);
    let _ = writeln!(out, "\nresults: {}", path.display());
    let _ = writeln!(out, "report:  {}", report.display());
    Ok(ExitCode::SUCCESS)
}

fn run_plan(plan: &profile::Plan, opts: &RunOptions, dir: &Path) -> Result<ExitCode, CliError> {
    let runtime = build_runtime(opts.clock)?;
    let stop = CancellationToken::new();
    let results = runtime.block_on(async {
        tokio::spawn(stop_on_signal(stop.clone()));
        let clock = opts.clock.start();
        runner::execute(plan, opts, &clock, stop.clone()).await
    });
    // Progress is written on a thread of its own: let it finish before the summary.
    crate::progress::flush(Duration::from_secs(1));
    let results = results?;
    let path = runner::write_outputs(dir, &results)?;
    let doc = crate::document::ResultsDoc::from_results(results);
    let report = dir.join("report.html");
    crate::report::write(&report, &doc).map_err(|error| RunError::Write {
        path: report.clone(),
        error,
    })?;
    let results = doc.results;
    let mut out = std::io::stdout().lock();
    let _ = crate::summary::write_summary(&mut out, &results);
    let _ = writeln!(out, "\nresults: {}", path.display());
    let _ = writeln!(out, "report:  {}", report.display());
    drop(out);
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(if results.partial {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The runtime a run's client side (schedule, stacks, connections, recorder) runs on: one
/// current-thread runtime, real or virtual. On real time one thread does the work with no
/// hand-offs between threads; the embedded backend has threads of its own
/// (docs/architecture.md, "A real run's client side is one thread").
fn build_runtime(clock: ClockMode) -> Result<tokio::runtime::Runtime, CliError> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if clock == ClockMode::Virtual {
        builder.start_paused(true);
    }
    let built = builder.build();
    built.map_err(|e| CliError::Other(format!("cannot start the async runtime: {e}")))
}

/// Cancels `stop` on the first Ctrl-C or SIGTERM; a second one exits at once.
async fn stop_on_signal(stop: CancellationToken) {
    if wait_for_signal().await.is_err() {
        return;
    }
    // Through the painter, as progress is: this thread keeps the schedule.
    crate::progress::line(
        "\ninterrupted: stopping and writing what was measured (again to abort at once)",
    );
    stop.cancel();
    if wait_for_signal().await.is_ok() {
        crate::progress::flush(Duration::from_millis(200));
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

fn validate(args: ValidateArgs) -> Result<ExitCode, CliError> {
    let plan = profile::load(&args.profile, &Overrides::default())?;
    let text = toml::to_string_pretty(&plan)
        .map_err(|e| CliError::Other(format!("cannot print the plan: {e}")))?;
    println!(
        "# {}: valid. The resolved plan, with every default filled in:\n",
        args.profile.display()
    );
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let plan = Arc::new(profile::load(&args.profile, &Overrides::default())?);
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    // This thread accepts connections; the server threads answer them.
    let runtime = build_runtime(ClockMode::Real)?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Other(e.to_string()))?;
        let shared = Shared::new(plan).log_attempts(args.log_attempts);
        let stop = CancellationToken::new();
        let mut servers = ServeThreads::start(&shared, threads, &stop).map_err(CliError::Other)?;
        eprintln!(
            "resilbench serve: backend of {} listening on {addr} (Ctrl-C to stop)",
            args.profile.display()
        );
        let signal = wait_for_signal();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        if let Err(e) = servers.hand(stream) {
                            // A server thread has ended: `join` below says why.
                            eprintln!("resilbench serve: {e}");
                            break;
                        }
                    }
                    // Out of file descriptors, or a connection reset before it was taken:
                    // say so and go on, as servers do.
                    Err(e) => {
                        eprintln!("resilbench serve: accept: {e}");
                        Clock::Tokio.sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        // New connections are refused at once while the open ones drain (a client then
        // fails fast or goes elsewhere, rather than waiting on a socket nobody reads).
        drop(listener);
        stop.cancel();
        let joined = tokio::task::spawn_blocking(move || servers.join());
        let served = tokio::select! {
            joined = joined => joined.unwrap_or_else(|e| Err(e.to_string())),
            // A client that holds a call open keeps the drain going: a second signal ends it.
            _ = wait_for_signal() => {
                eprintln!("resilbench serve: stopped at a second signal, calls still open");
                return Ok(ExitCode::from(EXIT_INTERRUPTED));
            }
        };
        let stats = shared.stats();
        eprintln!(
            "resilbench serve: stopped. received {}  executed {}  rejected {}  wasted {}  duplicate side effects {}  queue high water {}",
            stats.received,
            stats.executed,
            stats.rejected,
            stats.wasted,
            stats.duplicate_side_effects,
            stats.queue_high_water
        );
        served.map_err(CliError::Other)?;
        Ok(ExitCode::SUCCESS)
    });
    // Without waiting for a drain a second signal cut short.
    runtime.shutdown_background();
    served
}
