//! The summary table printed after a run: one row per strategy.
//!
//! Latency columns are those of *successful* calls, from their intended start: failures are
//! counted in the success column, and a strategy that fails fast must not look fast. (Every
//! call's latency, failures included, is in results.json as `latency_ms.e2e`.)
//!
//! The columns and the verdict sentence are the report's ([`crate::answer`]): the headline
//! figures, the story figures where strategies differ, and one sentence naming the answer.
//!
//! Printers take `&mut impl Write`, so what the user sees is testable.

use std::io::{self, Write};

use crate::document::ResultsDoc;
use crate::results::trust::Stopped;
use crate::table::printable;

/// Writes the heading, the table and any warnings.
pub fn write_summary(w: &mut impl Write, doc: &ResultsDoc) -> io::Result<()> {
    let results = &doc.results;
    let e = &results.environment;
    let partial = match (results.partial, results.stopped) {
        (false, _) => "",
        (true, Some(Stopped::TargetLost)) => " (TARGET LOST: partial results)",
        (true, _) => " (INTERRUPTED: partial results)",
    };
    match results.plan() {
        Some(p) => {
            let steps = match p.load.steps.len() {
                0 => String::new(),
                1 => " then 1 rate step".to_string(),
                n => format!(" then {n} rate steps"),
            };
            let arrival = match p.load.arrival {
                crate::profile::Arrival::Constant => "constant",
                crate::profile::Arrival::Poisson => "Poisson",
            };
            writeln!(
                w,
                "{}: {} at {} calls/s{steps} ({arrival} arrivals), {} clock, {}{partial}",
                crate::table::printable(&p.name),
                crate::profile::duration::format(p.load.duration),
                p.load.rate,
                e.clock,
                crate::table::printable(&doc.target_words()),
            )?;
            if p.strategies.len() > 1 {
                writeln!(w, "({})", doc.order_words())?;
            }
        }
        None => writeln!(
            w,
            "{} clock, {}{partial}",
            crate::table::printable(&e.clock),
            crate::table::printable(&doc.target_words())
        )?,
    }
    let answer = crate::answer::answer(doc);
    let mut headers: Vec<&str> = vec!["strategy"];
    headers.extend(answer.columns.iter().map(|c| c.label.as_str()));
    let rows: Vec<Vec<String>> = results
        .strategies
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut row = vec![s.name.clone()];
            row.extend(
                answer
                    .columns
                    .iter()
                    .map(|c| c.cells.get(i).cloned().unwrap_or_default()),
            );
            row
        })
        .collect();
    writeln!(w)?;
    crate::table::write(w, &headers, &rows, 1)?;
    writeln!(
        w,
        "(latency of successful calls, from their intended start)"
    )?;
    // Every line holds names from the file: escaped, as the table's cells are.
    if let Some(unknown) = crate::results::trust::backend_unknown(&results.strategies) {
        writeln!(w, "{}", printable(&unknown))?;
    }
    if let Some(sentence) = &answer.sentence {
        writeln!(w, "\nverdict: {}", printable(sentence))?;
    }
    if let Some(line) = crate::answer::interrupted::missing(results) {
        writeln!(w, "{}", printable(&line))?;
    }
    if !results.warnings.is_empty() {
        writeln!(w)?;
        for warning in &results.warnings {
            writeln!(w, "warning: {}", printable(warning))?;
        }
    }
    Ok(())
}
