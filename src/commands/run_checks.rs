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
use crate::profile::{Order, Plan, ProfileError};
use crate::results::Results;
use crate::runner::{ClockMode, DRAIN_REAL};

/// Applies `--strategy` and `--gate` to the plan, and says what the user should know before
/// the run: where the profile came from, phases it will not show, how long it will take.
/// `remote`: the run calls a target (the default cooldown is then a few seconds).
pub(super) fn before(
    plan: &mut Plan,
    args: &RunArgs,
    source: &str,
    remote: bool,
) -> Result<(), CliError> {
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
        eprintln!("{}", expected_duration(plan, source, args.clock, remote));
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
/// simulated time, a second or two of wall time): the strategies in turn with the cooldown
/// between them (`remote`: against a target, where it defaults to a few seconds), or
/// interleaved, one schedule for them all.
pub fn expected_duration(plan: &Plan, source: &str, clock: ClockMode, remote: bool) -> String {
    let n = plan.strategies.len();
    let each = plan.load.duration;
    let fmt = crate::profile::duration::format;
    let interleaved = plan.load.order == Order::Interleaved;
    let (total, pause, drains) = if interleaved {
        (each, Duration::ZERO, 1)
    } else {
        let pause = crate::runner::cooldown_with(plan, remote);
        let gaps = n.saturating_sub(1) as u32;
        (
            each * n as u32 + pause * gaps,
            pause * gaps.min(1),
            n as u32,
        )
    };
    let when = match clock {
        // The user's own service has no backend to drain.
        ClockMode::Real if plan.target.is_some() => format!("about {}", fmt(round_s(total))),
        ClockMode::Real => format!(
            "about {} (up to {} more while the backend drains)",
            fmt(round_s(total)),
            fmt(DRAIN_REAL * drains)
        ),
        ClockMode::Virtual => format!(
            "{} of simulated time, usually a second or two of wall time",
            fmt(round_s(total))
        ),
    };
    let calling = plan.target.as_ref().map_or(String::new(), |t| {
        format!(", calling {} at {}", t.method, t.address)
    });
    let strategies = if n == 1 { "strategy" } else { "strategies" };
    let shape = if interleaved && n > 1 {
        format!(
            "{n} {strategies} interleaved call by call, {} in all",
            fmt(each)
        )
    } else if pause.is_zero() {
        format!("{n} {strategies}, {} each", fmt(each))
    } else {
        format!(
            "{n} {strategies}, {} each, {} of cooldown between them",
            fmt(each),
            fmt(pause)
        )
    };
    format!("{source}: {shape}{calling}: {when}")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(load: &str, strategies: usize) -> Plan {
        let mut text = format!("[load]\nrate = 10\nduration = \"6s\"\n{load}\n");
        for i in 0..strategies {
            text.push_str(&format!("[[strategies]]\nname = \"s{i}\"\n"));
        }
        crate::profile::parse(&text, "t.toml", "t", &crate::profile::Overrides::default()).unwrap()
    }

    /// In turn, the cooldowns between the strategies count (a target's default when the
    /// profile sets none); interleaved, the run is one schedule long.
    #[test]
    fn the_estimate_counts_cooldowns_and_interleaving() {
        let virt = ClockMode::Virtual;
        let said = |p: &Plan, remote| expected_duration(p, "p", virt, remote);
        assert_eq!(
            said(&plan("", 3), false),
            "p: 3 strategies, 6s each: 18s of simulated time, usually a second or two of wall time"
        );
        assert_eq!(
            said(&plan("cooldown = \"2s\"", 3), false),
            "p: 3 strategies, 6s each, 2s of cooldown between them: 22s of simulated time, \
             usually a second or two of wall time"
        );
        // Against a target, 5s by default: 3 × 6 + 2 × 5.
        let real = expected_duration(&plan("", 3), "p", ClockMode::Real, true);
        assert!(
            real.starts_with("p: 3 strategies, 6s each, 5s of cooldown between them: about 28s"),
            "{real}"
        );
        assert_eq!(
            said(&plan("cooldown = \"2s\"", 1), false),
            "p: 1 strategy, 6s each: 6s of simulated time, usually a second or two of wall time"
        );
        let interleaved = plan("order = \"interleaved\"", 3);
        assert_eq!(
            said(&interleaved, true),
            "p: 3 strategies interleaved call by call, 6s in all: 6s of simulated time, \
             usually a second or two of wall time"
        );
        let real = expected_duration(&interleaved, "p", ClockMode::Real, false);
        assert_eq!(
            real,
            format!(
                "p: 3 strategies interleaved call by call, 6s in all: about 6s (up to {} more \
                 while the backend drains)",
                crate::profile::duration::format(DRAIN_REAL)
            )
        );
    }
}
