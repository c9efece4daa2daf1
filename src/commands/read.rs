//! The commands that read results files: `report`, `compare` and `check`.
//!
//! They share nothing with a run but the results file: each reads one or two files, writes a
//! page or a table, and returns an exit status. `check` answers "no" with exit status 1 when
//! the gate fails (2 when it cannot be evaluated); so does `compare --fail-on-worse` when a
//! figure is worse beyond noise. `compare` refuses runs of different profiles (exit 2)
//! unless `--force`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{CliError, EXIT_GATE_FAILED};
use crate::cli::{CheckArgs, CompareArgs, ReportArgs};
use crate::compare;
use crate::document::ResultsDoc;
use crate::gate::{self, evaluate::Named, output};
use crate::results::write_atomic;

/// Reads a results file, or the `results.json` of a run folder (as `merge` takes them).
fn read(path: &Path) -> Result<ResultsDoc, CliError> {
    let file = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    ResultsDoc::read(&file).map_err(|e| CliError::Other(e.to_string()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    write_atomic(path, bytes)
        .map_err(|e| CliError::Other(format!("cannot write {}: {e}", path.display())))
}

/// `report`: writes the HTML report of a results file.
pub(super) fn report(args: ReportArgs) -> Result<ExitCode, CliError> {
    let doc = read(&args.results)?;
    let out = args.out.unwrap_or_else(|| {
        let folder = if args.results.is_dir() {
            args.results.as_path()
        } else {
            args.results.parent().unwrap_or(Path::new("."))
        };
        folder.join("report.html")
    });
    write_file(&out, crate::report::render(&doc).as_bytes())?;
    println!("report: {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// `compare`: the table on the terminal, and the page if asked.
pub(super) fn compare(args: CompareArgs) -> Result<ExitCode, CliError> {
    let (a, b) = (read(&args.a)?, read(&args.b)?);
    if let Some(why) = compare::unrelated(&a, &b) {
        if !args.force {
            return Err(CliError::Other(format!(
                "{why}. Compare two runs of one profile, or give --force to compare anyway"
            )));
        }
        eprintln!(
            "warning: {} (compared anyway: --force)",
            crate::table::printable(&why)
        );
    }
    let c = compare::compare(&a, &b, args.threshold);
    let (na, nb) = (args.a.display().to_string(), args.b.display().to_string());
    let mut out = std::io::stdout().lock();
    let _ = compare::write_table(&mut out, &c, &na, &nb);
    if let Some(path) = &args.out {
        let page = crate::report::compare_page::render(&c, (&a, &na), (&b, &nb));
        write_file(path, page.as_bytes())?;
        let _ = writeln!(out, "comparison: {}", path.display());
    }
    if args.fail_on_worse && c.worse() > 0 {
        let _ = writeln!(
            out,
            "--fail-on-worse: {} figure(s) WORSE beyond noise and the threshold",
            c.worse()
        );
        return Ok(ExitCode::from(EXIT_GATE_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `check`: evaluates the gate; exit 0 when it holds, 1 when it does not.
pub(super) fn check(args: CheckArgs) -> Result<ExitCode, CliError> {
    let run = read(&args.results)?;
    let file = args.results.display().to_string();
    let mut defaulted = false;
    let gate = match &args.gate {
        Some(path) => gate::load_file(path)?,
        None => match gate::evaluate::gate_of(&run, &file).map_err(gate_error)? {
            Some(g) => g,
            None if args.baseline.is_some() => {
                defaulted = true;
                gate::default_regression()
            }
            None => return Err(gate_error(gate::GateError::NoGate(file.clone()))),
        },
    };
    let baseline = args.baseline.as_deref().map(read).transpose()?;
    let base_file = args
        .baseline
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let verdict = gate::evaluate(
        &gate,
        Named {
            doc: &run,
            file: &file,
        },
        baseline.as_ref().map(|doc| Named {
            doc,
            file: &base_file,
        }),
    )
    .map_err(gate_error)?;
    // The profile's name comes from the file: printed escaped.
    let name = crate::table::printable(run.profile_name());
    let title = match &args.baseline {
        Some(b) => format!("gate of {name} ({file}), baseline {}", b.display()),
        None => format!("gate of {name} ({file})"),
    };
    let mut verdict = verdict;
    if defaulted {
        verdict.notes.insert(
            0,
            "no gate given (the profile has no [gate], no --gate): the default regression gate \
             applies, noise-aware budgets on success, goodput, p50/p99/p99.9 and attempts per \
             call (docs/ci.md)"
                .into(),
        );
    }
    let mut out = std::io::stdout().lock();
    let _ = output::write_table(&mut out, &verdict, &title);
    if let Some(path) = &args.markdown {
        let mut text = Vec::new();
        let _ = output::write_markdown(&mut text, &verdict, &title);
        write_file(path, &text)?;
    }
    if let Some(path) = &args.junit {
        let mut text = Vec::new();
        let _ = output::write_junit(&mut text, &verdict, &format!("resilbench gate: {title}"));
        write_file(path, &text)?;
    }
    Ok(if verdict.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_GATE_FAILED)
    })
}

fn gate_error(e: gate::GateError) -> CliError {
    CliError::Other(e.to_string())
}
