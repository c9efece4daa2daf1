//! What an interrupted run did not measure, in a sentence: the terminal's summary and the
//! report both say it, so it lives with the answer they both show.

use crate::results::Results;
use crate::results::trust::Stopped;

/// The strategies a run stopped early (interrupted, or its target lost) never got to, in a
/// sentence that says why (none for a complete run).
pub fn missing(results: &Results) -> Option<String> {
    let planned = results.planned_strategies();
    let not_run: Vec<&str> = planned
        .iter()
        .copied()
        .filter(|n| !results.strategies.iter().any(|s| s.name == *n))
        .collect();
    let cut: Vec<&str> = results
        .strategies
        .iter()
        .filter(|s| s.partial)
        .map(|s| s.name.as_str())
        .collect();
    if not_run.is_empty() && cut.is_empty() && !results.partial {
        return None;
    }
    let mut text = String::from(match results.stopped {
        Some(Stopped::TargetLost) => "the target was lost (see the first warning): ",
        Some(Stopped::Interrupted) | None => "interrupted (Ctrl-C or SIGTERM): ",
    });
    if !cut.is_empty() {
        text.push_str(&format!("{} stopped early", cut.join(", ")));
    }
    if !not_run.is_empty() {
        if !cut.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&format!(
            "{} of {} strategies did not run ({})",
            not_run.len(),
            planned.len(),
            not_run.join(", ")
        ));
    }
    if cut.is_empty() && not_run.is_empty() {
        text.push_str("the run was stopped");
    }
    text.push_str(". Figures cover only what was measured before the stop.");
    Some(text)
}
