//! The answer a run gives: the verdict table's columns, which strategies are in the running,
//! the best value of each column among them, and one sentence that is the verdict.
//!
//! The report's verdict and the terminal's summary both show this, so they never disagree.
//!
//! - **In the running** ([`Answer::contenders`]): a strategy whose success is the best's
//!   within sampling noise (the binomial test of [`crate::compare::noise`]), or that meets
//!   the success limit of the profile's `[gate]`. A strategy that fails calls fast must not
//!   win the latency columns: ★ marks the best success among all strategies, and the best
//!   value of every other column among the strategies in the running only.
//! - **Story columns**: figures shown only where strategies differ in them: duplicate side
//!   effects, wasted work, calls a breaker refused, streams that failed after their commit,
//!   and, for a profile with phases, the load a strategy sent during them and how long it took
//!   to recover afterwards ([`story`]).
//! - **The verdict** ([`Answer::sentence`]): among the strategies in the running, those with
//!   the fewest duplicate side effects; of those, the cheapest (backend load) whose tail
//!   (p99.9 of successful calls, p99 under 1,000 calls) is within twice the best tail. It is
//!   compared with the profile's first strategy, the usual "do nothing special" baseline:
//!   "hedge-p95 cuts p99.9 31x (200.1 → 6.42 ms) for 5.9% more backend load than no-hedge."
//!   Every number in it is read from the results; none is written here. A run the
//!   generator could not keep up with, or an interrupted one, says so in the same sentence.

pub mod story;

use serde_json::Value;

use crate::compare::noise;
use crate::document::ResultsDoc;
use crate::figure;
use crate::headline::{Better, cell_text, headlines};
use crate::results::StrategyResult;

/// A cheaper strategy wins the verdict if its tail is within this factor of the best tail.
pub const TAIL_SLACK: f64 = 2.0;

/// Successful calls a strategy needs for its p99.9 to be the tail the verdict reads.
const P999_CALLS: u64 = 1000;

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
    /// The strategy the verdict names.
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
    let choice = choose(doc, &contenders);
    let sentence = choice
        .and_then(|c| sentence(doc, &contenders, c))
        .map(|s| format!("{s}{}", caveat(doc)));
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
            let within = v >= best
                || !noise::proportions_differ(
                    best,
                    strategies[top].counts.offered,
                    v,
                    s.counts.offered,
                );
            let meets_gate = gate.as_ref().is_some_and(|g| {
                g.limits_for(&s.name)
                    .get("success_rate")
                    .is_some_and(|l| l.op.holds(v, l.bound))
            });
            within || meets_gate
        })
        .collect()
}

/// What the verdict must add when the run cannot be fully believed: a generator that fell
/// behind shaped the figures; an interrupted run measured only part of the plan.
fn caveat(doc: &ResultsDoc) -> &'static str {
    let failed = crate::results::trust::failures(&doc.results);
    if failed
        .iter()
        .any(|t| t.rule != crate::results::trust::Rule::Partial)
    {
        " (But the generator fell behind its schedule: these figures are not to be trusted; \
         see the warnings.)"
    } else if !failed.is_empty() {
        " (Of an interrupted run: only what was measured before the stop.)"
    } else {
        ""
    }
}

/// The tail the verdict reads: p99.9 of successful calls when every strategy has enough of
/// them, else p99.
fn tail_figure(strategies: &[StrategyResult]) -> (&'static str, &'static str) {
    let enough = strategies
        .iter()
        .all(|s| s.latency_ms.e2e_ok.is_some_and(|l| l.count >= P999_CALLS));
    if enough {
        ("latency_ms.e2e_ok.p999", "p99.9")
    } else {
        ("latency_ms.e2e_ok.p99", "p99")
    }
}

fn tail(s: &StrategyResult, figure: &str) -> Option<f64> {
    let l = s.latency_ms.e2e_ok?;
    Some(if figure.ends_with("p999") {
        l.p999
    } else {
        l.p99
    })
}

fn cost(s: &StrategyResult) -> f64 {
    s.amplification.backend.unwrap_or(s.amplification.client)
}

fn duplicates(s: &StrategyResult) -> u64 {
    s.backend.as_ref().map_or(0, |b| b.duplicate_side_effects)
}

/// The strategy the verdict names: see the module doc.
fn choose(doc: &ResultsDoc, contenders: &[bool]) -> Option<usize> {
    let strategies = &doc.results.strategies;
    if strategies.len() < 2 {
        return None;
    }
    let mut pool: Vec<usize> = (0..strategies.len()).filter(|i| contenders[*i]).collect();
    let fewest = pool.iter().map(|i| duplicates(&strategies[*i])).min()?;
    pool.retain(|i| duplicates(&strategies[*i]) == fewest);
    let (figure, _) = tail_figure(strategies);
    let best_tail = pool
        .iter()
        .filter_map(|i| tail(&strategies[*i], figure))
        .fold(f64::INFINITY, f64::min);
    pool.into_iter()
        .filter(|i| tail(&strategies[*i], figure).is_none_or(|t| t <= TAIL_SLACK * best_tail))
        .min_by(|a, b| {
            let (sa, sb) = (&strategies[*a], &strategies[*b]);
            cost(sa)
                .partial_cmp(&cost(sb))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(
                    tail(sa, figure)
                        .unwrap_or(f64::INFINITY)
                        .partial_cmp(&tail(sb, figure).unwrap_or(f64::INFINITY))
                        .unwrap_or(std::cmp::Ordering::Equal),
                )
        })
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else {
        crate::table::short(v)
    }
}

/// "for 5.9% more backend load", "with 40% less backend load", "at the same backend load".
fn load_words(chosen: f64, reference: f64) -> String {
    if reference <= 0.0 {
        return String::new();
    }
    let d = chosen / reference - 1.0;
    let what = "backend load";
    if d.abs() < 0.005 {
        format!("at the same {what}")
    } else if d > 0.0 {
        format!("for {}% more {what}", one_decimal(d * 100.0))
    } else {
        format!("with {}% less {what}", one_decimal(-d * 100.0))
    }
}

fn one_decimal(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// How much lower `to` is than `from`: "31x" or "by 35%".
fn cut_words(from: f64, to: f64) -> String {
    let r = from / to;
    if r >= 2.0 {
        format!("{r:.0}x")
    } else {
        format!("by {:.0}%", (1.0 - to / from) * 100.0)
    }
}

/// The verdict sentence for `choice`, against the profile's first strategy.
fn sentence(doc: &ResultsDoc, contenders: &[bool], choice: usize) -> Option<String> {
    let strategies = &doc.results.strategies;
    let (figure, label) = tail_figure(strategies);
    let (c, r) = (&strategies[choice], &strategies[0]);
    let rate = |s: &StrategyResult| s.counts.succeeded as f64 / s.counts.offered.max(1) as f64;
    if choice == 0 {
        return Some(reference_wins(strategies, contenders, figure, label));
    }
    let mut gains: Vec<String> = Vec::new();
    let (sc, sr) = (rate(c), rate(r));
    if sc > sr && noise::proportions_differ(sr, r.counts.offered, sc, c.counts.offered) {
        gains.push(format!("raises success from {} to {}", pct(sr), pct(sc)));
    }
    if let (Some(tc), Some(tr)) = (tail(c, figure), tail(r, figure)) {
        let real = noise::beyond_noise(figure, r, c, tr, tc).unwrap_or(true);
        if tc < tr / 1.1 && real {
            gains.push(format!(
                "cuts {label} {} ({} → {} ms)",
                cut_words(tr, tc),
                ms(tr),
                ms(tc)
            ));
        }
    }
    let worst_dups = strategies
        .iter()
        .filter(|s| duplicates(s) > 0)
        .max_by_key(|s| duplicates(s));
    let dups = match worst_dups {
        Some(w) if duplicates(c) == 0 => format!(
            " with no duplicate side effects ({} had {})",
            w.name,
            duplicates(w)
        ),
        _ => String::new(),
    };
    let load = load_words(cost(c), cost(r));
    if gains.is_empty() {
        return Some(format!(
            "{} matches {}'s success and {label}{dups} {load}.",
            c.name, r.name
        ));
    }
    Some(format!(
        "{} {}{dups} {load} than {}.",
        c.name,
        gains.join(" and "),
        r.name
    ))
}

/// The verdict when the first strategy is the answer: what the others would trade.
fn reference_wins(
    strategies: &[StrategyResult],
    contenders: &[bool],
    figure: &str,
    label: &str,
) -> String {
    let r = &strategies[0];
    let rate = |s: &StrategyResult| s.counts.succeeded as f64 / s.counts.offered.max(1) as f64;
    let others: Vec<usize> = (1..strategies.len()).collect();
    let all_out = others.iter().all(|i| !contenders[*i]);
    let head = if all_out {
        format!("{} keeps the most calls ({})", r.name, pct(rate(r)))
    } else {
        format!(
            "{} has the best success ({}) and {label} ({} ms) for its backend load",
            r.name,
            pct(rate(r)),
            tail(r, figure).map_or("–".into(), ms)
        )
    };
    // Of the strategies that cost the backend less, the one that keeps the most calls.
    let cheapest = others
        .iter()
        .copied()
        .filter(|i| cost(&strategies[*i]) < cost(r) * 0.995)
        .max_by(|a, b| {
            let (sa, sb) = (&strategies[*a], &strategies[*b]);
            rate(sa)
                .partial_cmp(&rate(sb))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(
                    cost(sb)
                        .partial_cmp(&cost(sa))
                        .unwrap_or(std::cmp::Ordering::Equal),
                )
        });
    let trade = match cheapest {
        Some(i) => {
            let o = &strategies[i];
            format!(
                "; {} sends {}% less load to the backend but succeeds on {}",
                o.name,
                one_decimal((1.0 - cost(o) / cost(r)) * 100.0),
                pct(rate(o))
            )
        }
        None => String::new(),
    };
    format!("{head}{trade}.")
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

    #[test]
    fn words_for_cuts_and_load() {
        assert_eq!(cut_words(200.1, 6.42), "31x");
        assert_eq!(cut_words(100.0, 65.0), "by 35%");
        assert_eq!(load_words(1.059, 1.0), "for 5.9% more backend load");
        assert_eq!(load_words(0.6, 1.0), "with 40% less backend load");
        assert_eq!(load_words(1.001, 1.0), "at the same backend load");
    }
}
