//! What each command does: the `run`, `validate`, `serve`, `merge` and `sweep` commands, and
//! `report`, `compare` and `check`, which read results files, and `profiles`. Each turns its
//! arguments ([`crate::cli`]) into library calls and its result into an exit status, in one
//! place: 0 done, 1 the answer is no (`check`'s gate, `run`'s gate, `compare --fail-on-worse`,
//! a sweep whose points all miss its goal), 2 bad input or error, 130 interrupted (results
//! still written).

mod merge;
mod profiles;
mod proxy;
mod quick;
mod read;
mod run;
mod run_checks;
mod serve;
mod signals;
mod sweep;

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::profile::ProfileError;
use crate::runner::{ClockMode, RunError};

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

/// Exit status of a gate that does not hold.
pub const EXIT_GATE_FAILED: u8 = 1;

/// Runs a parsed command line.
pub fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Validate(args) => run::validate(args),
        Command::Serve(args) => serve::serve(args),
        Command::Proxy(args) => proxy::proxy(args),
        Command::Report(args) => read::report(args),
        Command::Compare(args) => read::compare(args),
        Command::Check(args) => read::check(args),
        Command::Merge(args) => merge::merge(args),
        Command::Profiles(args) => profiles::profiles(args),
        Command::Sweep(args) => sweep::sweep(args),
    }
}

/// The runtime a run's client side (schedule, stacks, connections, recorder) runs on: one
/// current-thread runtime, real or virtual. On real time one thread does the work with no
/// hand-offs between threads; the embedded backend has threads of its own
/// (docs/architecture.md, "A real run's client side is one thread").
pub(crate) fn build_runtime(clock: ClockMode) -> Result<tokio::runtime::Runtime, CliError> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if clock == ClockMode::Virtual {
        builder.start_paused(true);
    }
    let built = builder.build();
    built.map_err(|e| CliError::Other(format!("cannot start the async runtime: {e}")))
}

/// Writes a run folder (results.json, the .hlog files, report.html and the `extra` files)
/// whole into its reserved folder, replacing any previous run there (`runner::write_folder`),
/// then prints `heading`, the summary table and where the files are.
fn write_run_folder(
    out: crate::runner::OutDir,
    results: crate::results::Results,
    heading: Option<&str>,
    extra: Vec<(&str, Vec<u8>)>,
) -> Result<crate::results::Results, CliError> {
    let doc = crate::document::ResultsDoc::from_results(results);
    let page = crate::report::render(&doc);
    let dir = out.dir().to_path_buf();
    let mut files: Vec<(&str, &[u8])> = vec![("report.html", page.as_bytes())];
    files.extend(extra.iter().map(|(n, b)| (*n, b.as_slice())));
    let path = crate::runner::write_folder(out, &doc.results, &files)?;
    let report = dir.join("report.html");
    let mut out = std::io::stdout().lock();
    if let Some(heading) = heading {
        let _ = writeln!(out, "{heading}");
    }
    let _ = crate::summary::write_summary(&mut out, &doc);
    let _ = writeln!(out, "\nresults: {}", path.display());
    let _ = writeln!(out, "report:  {}", report.display());
    Ok(doc.results)
}
