//! What `run` does around the run itself: before it, the choices the command line makes on
//! the plan (`--strategy`, `--gate`), what the user should know (phases the run will not
//! show, how long it will take); after it, the CSV export (written with the run folder) and
//! the gate (k6 users expect a failed threshold to fail the run).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::{CliError, EXIT_GATE_FAILED};
use crate::cli::{Export, RunArgs};
use crate::document::ResultsDoc;
use crate::gate::{self, evaluate::Named, output};
use crate::profile::{Plan, ProfileError};
use crate::results::Results;
use crate::runner::{ClockMode, DRAIN_REAL};

/// Applies `--strategy` and `--gate` to the plan, and says what the user should know before
/// the run: where the profile came from, phases it will not show, how long it will take.
pub(super) fn before(plan: &mut Plan, args: &RunArgs, source: &str) -> Result<(), CliError> {
    if !args.strategies.is_empty() {
        keep_strategies(plan, &args.strategies)?;
    }
    if let Some(path) = &args.gate {
        plan.gate = Some(gate::load_file(path)?);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        gate::names::check_plan(plan).map_err(|(mut field, message)| {
            field.0.remove(0);
            ProfileError::at(&path.display().to_string(), Some(&text), field, message)
        })?;
        if let Some(g) = &plan.gate
            && let Some(name) = g
                .strategies
                .keys()
                .find(|n| !plan.strategies.iter().any(|s| &s.name == *n))
        {
            return Err(CliError::Other(format!(
                "{}: the gate names strategy `{name}`, which this run does not have (its \
                 strategies: {})",
                path.display(),
                plan.strategies
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let warnings =
        crate::profile::phases::warnings(&plan.phases, plan.load.duration, plan.load.warmup);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if !args.quiet {
        eprintln!("{}", expected_duration(plan, source, args.clock));
    }
    Ok(())
}

/// Keeps the named strategies, in the profile's order; a name the profile does not have is an
/// error that says what it has (and what was probably meant).
fn keep_strategies(plan: &mut Plan, names: &[String]) -> Result<(), CliError> {
    let have: Vec<&str> = plan.strategies.iter().map(|s| s.name.as_str()).collect();
    for n in names {
        if !have.contains(&n.as_str()) {
            let near = crate::profile::error::closest(n, have.iter().copied());
            return Err(CliError::Other(format!(
                "--strategy {n}: the profile has no strategy of that name{}; it has {}",
                near.map_or(String::new(), |m| format!(" (did you mean `{m}`?)")),
                have.join(", ")
            )));
        }
    }
    plan.strategies.retain(|s| names.contains(&s.name));
    if let Some(g) = &mut plan.gate {
        g.strategies.retain(|name, _| names.contains(name));
    }
    Ok(())
}

/// "quickstart (built in): 3 strategies, 7s each: about 21s" (on a virtual clock: seconds of
/// simulated time, a second or two of wall time).
pub fn expected_duration(plan: &Plan, source: &str, clock: ClockMode) -> String {
    let n = plan.strategies.len();
    let each = plan.load.duration;
    let total = each * n as u32;
    let fmt = crate::profile::duration::format;
    let when = match clock {
        // The user's own service has no backend to drain.
        ClockMode::Real if plan.target.is_some() => format!("about {}", fmt(round_s(total))),
        ClockMode::Real => format!(
            "about {} (up to {} more while the backend drains)",
            fmt(round_s(total)),
            fmt(DRAIN_REAL * n as u32)
        ),
        ClockMode::Virtual => format!(
            "{} of simulated time, usually a second or two of wall time",
            fmt(round_s(total))
        ),
    };
    let calling = plan.target.as_ref().map_or(String::new(), |t| {
        format!(", calling {} at {}", t.method, t.address)
    });
    format!(
        "{source}: {n} {}, {} each{calling}: {when}",
        if n == 1 { "strategy" } else { "strategies" },
        fmt(each)
    )
}

fn round_s(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().round() as u64)
}

/// The CSV export's files (name, bytes), written with the run folder (they are the run's
/// files: a `--force` rerun replaces them with the rest).
pub(super) fn export(results: &Results, export: Option<Export>) -> Vec<(&'static str, Vec<u8>)> {
    if export != Some(Export::Csv) {
        return Vec::new();
    }
    type Writer = fn(&mut Vec<u8>, &Results) -> std::io::Result<()>;
    let writers: [(&str, Writer); 2] = [
        ("summary.csv", crate::export::write_summary),
        ("timeline.csv", crate::export::write_timeline),
    ];
    writers
        .into_iter()
        .map(|(name, write)| {
            let mut bytes = Vec::new();
            let _ = write(&mut bytes, results);
            (name, bytes)
        })
        .collect()
}

/// Says where the CSV export was written.
pub(super) fn print_export(dir: &Path, export: Option<Export>) {
    if export == Some(Export::Csv) {
        for name in ["summary.csv", "timeline.csv"] {
            let label = format!("{}:", &name[..name.len() - 4]);
            println!("{label:<8} {}", dir.join(name).display());
        }
    }
}

/// After the run: the gate (the profile's or `--gate`'s; k6 users expect a failed threshold
/// to fail the run). Returns exit status 1 when the gate fails.
pub(super) fn gate(dir: &Path, results: &Results) -> Result<Option<ExitCode>, CliError> {
    let doc = ResultsDoc::from_results(results.clone());
    let file = dir.join("results.json").display().to_string();
    let Some(gate) =
        gate::evaluate::gate_of(&doc, &file).map_err(|e| CliError::Other(e.to_string()))?
    else {
        return Ok(None);
    };
    if gate.is_empty() {
        return Ok(None);
    }
    let verdict = gate::evaluate(
        &gate,
        Named {
            doc: &doc,
            file: &file,
        },
        None,
    )
    .map_err(|e| CliError::Other(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, b"\n");
    let _ = output::write_table(
        &mut out,
        &verdict,
        &format!("gate of {}", doc.profile_name()),
    );
    Ok((!verdict.passed()).then(|| ExitCode::from(EXIT_GATE_FAILED)))
}
