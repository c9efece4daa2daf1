//! The answer a run gives: the verdict table's columns, which strategies are in the running,
//! the best value of each column among them, and one sentence that is the verdict.
//!
//! The report's verdict and the terminal's summary both show this, so they never disagree.
//!
//! - **In the running** ([`Answer::contenders`]): a strategy whose success is the best's
//!   within sampling noise (the binomial test of [`crate::noise`]), or that meets
//!   the success limit of the profile's `[gate]`. A strategy that fails calls fast must not
//!   win the latency columns: ★ marks the best success among all strategies, and the best
//!   value of every other column among the strategies in the running only.
//! - **Story columns**: figures shown only where strategies differ in them: duplicate side
//!   effects, wasted work, calls a breaker refused, streams that failed after their commit,
//!   and, for a profile with phases, the load a strategy sent during them and how long it took
//!   to recover afterwards ([`story`]).
//! - **The verdict** ([`Answer::sentence`]): among the strategies in the running, those with
//!   the fewest duplicate side effects (known: a strategy whose backend figures are missing is
//!   not taken to have none); of those, the cheapest (backend load, or attempts sent when some
//!   strategy's backend figures are missing) whose tail
//!   (p99.9 of successful calls, p99 under 1,000 calls) is within twice the best tail. It is
//!   compared with the profile's first strategy, the usual "do nothing special" baseline:
//!   "hedge-p95 cuts p99.9 31x (200.1 → 6.42 ms) for 5.9% more backend load than no-hedge."
//!   Every number in it is read from the results; none is written here, and none the run did
//!   not measure: when no strategy succeeded it says so and names none; a cheaper strategy
//!   with a worse tail says what it trades ("for a p99.9 of 24.18 ms instead of 16.75"). A run
//!   the generator could not keep up with, or an interrupted one, says so in the same sentence.

pub mod interrupted;
mod phrases;
mod sentence;
pub mod story;

pub use sentence::TAIL_SLACK;
use sentence::{caveat, verdict};

use serde_json::Value;

use crate::document::ResultsDoc;
use crate::figure;
use crate::headline::{Better, cell_text, headlines};
use crate::noise;

/// One column of the verdict table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The header.
    pub label: String,
    /// The figure's name in results.json (`None` for figures derived from the timeline).
    pub figure: Option<String>,
    /// Which way is better.
    pub better: Better,
    /// Each strategy's value, in results order.
    pub values: Vec<Option<f64>>,
    /// Each strategy's cell text.
    pub cells: Vec<String>,
    /// Which cells are marked best.
    pub stars: Vec<bool>,
}

/// The verdict of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The columns to show: the headline figures, then the story columns where strategies
    /// differ.
    pub columns: Vec<Column>,
    /// Per strategy: whether it is in the running (see the module doc).
    pub contenders: Vec<bool>,
    /// The strategy the verdict names (none when no strategy succeeded).
    pub choice: Option<usize>,
    /// The verdict, one sentence; `None` with fewer than two strategies.
    pub sentence: Option<String>,
}

/// Which values of a column are best (none when fewer than two are present, or all equal).
pub fn best(better: Better, values: &[Option<f64>]) -> Vec<bool> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let pick = match better {
        Better::Higher => present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Better::Lower => present.iter().copied().fold(f64::INFINITY, f64::min),
        Better::Neither => return vec![false; values.len()],
    };
    let all_same = present.windows(2).all(|w| w[0] == w[1]);
    if present.len() < 2 || all_same {
        return vec![false; values.len()];
    }
    values.iter().map(|v| *v == Some(pick)).collect()
}

fn differs(values: &[Option<f64>]) -> bool {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    present.windows(2).any(|w| w[0] != w[1])
        || (present.len() < values.len() && present.iter().any(|v| *v != 0.0))
}

/// The answer of the run in `doc`.
pub fn answer(doc: &ResultsDoc) -> Answer {
    let strategies = &doc.results.strategies;
    let jsons: Vec<Option<&Value>> = strategies
        .iter()
        .map(|s| doc.strategy_json(&s.name))
        .collect();
    let value = |j: Option<&Value>, name: &str| {
        j.and_then(|j| figure::resolve(j, name).ok())
            .and_then(|r| r.value())
    };
    let mut columns: Vec<Column> = Vec::new();
    for h in headlines(jsons.iter().flatten().copied()) {
        let values: Vec<Option<f64>> = jsons.iter().map(|j| value(*j, &h.figure)).collect();
        let story = !CORE.contains(&h.figure.as_str());
        if story && !differs(&values) {
            continue;
        }
        columns.push(Column {
            cells: values.iter().map(|v| cell_text(&h, *v)).collect(),
            label: h.label,
            figure: Some(h.figure),
            better: h.better,
            values,
            stars: Vec::new(),
        });
    }
    columns.extend(phase_columns(doc));
    let success: Vec<Option<f64>> = jsons.iter().map(|j| value(*j, "success_rate")).collect();
    let contenders = contenders(doc, &success);
    for c in &mut columns {
        c.stars = if c.figure.as_deref() == Some("success_rate") {
            best(c.better, &c.values)
        } else {
            let only: Vec<Option<f64>> = c
                .values
                .iter()
                .zip(&contenders)
                .map(|(v, ok)| v.filter(|_| *ok))
                .collect();
            best(c.better, &only)
        };
    }
    let (choice, sentence) = verdict(doc, &contenders);
    let sentence = sentence.map(|s| format!("{s}{}", caveat(doc)));
    Answer {
        columns,
        contenders,
        choice,
        sentence,
    }
}

/// The headline figures always shown; any other is a story column, shown where it differs.
const CORE: [&str; 7] = [
    "success_rate",
    "goodput.per_second",
    "latency_ms.e2e_ok.p50",
    "latency_ms.e2e_ok.p99",
    "latency_ms.e2e_ok.p999",
    "amplification.client",
    "amplification.backend",
];

/// The phase columns of [`story`], where strategies differ in them.
fn phase_columns(doc: &ResultsDoc) -> Vec<Column> {
    let Some(plan) = doc.results.plan() else {
        return Vec::new();
    };
    let Some(span) = story::trigger(&plan) else {
        return Vec::new();
    };
    let end = plan.load.duration.as_secs_f64();
    let strategies = &doc.results.strategies;
    let load: Vec<Option<f64>> = strategies
        .iter()
        .map(|s| story::load_in(s, span, end))
        .collect();
    let back: Vec<Option<story::Recovery>> = strategies
        .iter()
        .map(|s| story::recovery(s, span, end))
        .collect();
    let mut out = Vec::new();
    let rounded: Vec<Option<f64>> = load
        .iter()
        .map(|v| v.map(|v| (v * 100.0).round()))
        .collect();
    if differs(&rounded) {
        out.push(Column {
            label: "load in phases".into(),
            figure: None,
            better: Better::Lower,
            cells: load
                .iter()
                .map(|v| v.map_or("–".into(), |v| format!("{v:.2}x")))
                .collect(),
            values: load,
            stars: Vec::new(),
        });
    }
    let values: Vec<Option<f64>> = back.iter().map(|r| r.map(story::Recovery::value)).collect();
    if differs(&values) {
        out.push(Column {
            label: "recovered after".into(),
            figure: None,
            better: Better::Lower,
            cells: back
                .iter()
                .map(|r| r.map_or("–".into(), story::Recovery::text))
                .collect(),
            values,
            stars: Vec::new(),
        });
    }
    out
}

/// Which strategies are in the running: success within noise of the best, or meeting the
/// gate's success limit.
fn contenders(doc: &ResultsDoc, success: &[Option<f64>]) -> Vec<bool> {
    let strategies = &doc.results.strategies;
    let Some(top) = (0..success.len())
        .filter(|i| success[*i].is_some())
        .max_by(|a, b| {
            success[*a]
                .partial_cmp(&success[*b])
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    else {
        return vec![false; success.len()];
    };
    let best = success[top].unwrap_or(0.0);
    let gate = crate::gate::evaluate::gate_of(doc, "").ok().flatten();
    strategies
        .iter()
        .zip(success)
        .map(|(s, v)| {
            let Some(v) = *v else { return false };
            // Each strategy is judged against the best: a family of all the others.
            let family = strategies.len().saturating_sub(1);
            let within = v >= best
                || noise::Pair::same_run(&strategies[top], s).differs(
                    "success_rate",
                    best,
                    v,
                    family,
                ) != Some(true);
            let meets_gate = gate.as_ref().is_some_and(|g| {
                g.limits_for(&s.name)
                    .get("success_rate")
                    .is_some_and(|l| l.op.holds(v, l.bound))
            });
            within || meets_gate
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_marks_ties_and_skips_uniform_columns() {
        let v = [Some(1.0), Some(2.0), Some(1.0), None];
        assert_eq!(best(Better::Lower, &v), [true, false, true, false]);
        assert_eq!(best(Better::Higher, &v), [false, true, false, false]);
        assert_eq!(best(Better::Lower, &[Some(3.0), Some(3.0)]), [false, false]);
        assert_eq!(best(Better::Lower, &[Some(3.0)]), [false]);
        assert_eq!(best(Better::Neither, &v), [false; 4]);
    }
}
