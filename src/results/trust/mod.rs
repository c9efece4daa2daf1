//! Can a run's measurement be believed? The generator's own figures say.
//!
//! An open-loop generator that falls behind its schedule, sends less than it offered, or was
//! interrupted, has shaped the figures itself. The report shows a warning banner for such a run,
//! and the CI gate fails it unless the gate allows it explicitly: a gate must never pass on a
//! measurement that cannot be believed. The limits are the run's own (the same that produce the
//! `warnings` of results.json), checked here from the figures, not from the warnings' text.

use super::{Results, StrategyResult, TimerFloor};

/// Why a partial run stopped before its end (`stopped` in results.json; absent for a complete
/// run, and in files written before it was: a partial run is then read as interrupted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The target could not be reached (or did not answer) before a strategy.
    TargetLost,
}

/// Why a strategy's backend figures are missing, or cover less than the strategy
/// (`backend_gap` in results.json; absent when they are whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendGap {
    /// The target is a gRPC server without resilbench's Control service: it was not reset and
    /// cannot report.
    NoControl,
    /// The target could not be reached when the strategy started (`load.target_may_be_down`).
    Unreachable,
    /// The target did not answer `Stats` after the strategy: it died or stopped answering.
    Lost,
    /// The target restarted during the strategy: the figures are the new process's, since its
    /// start (and the backend amplification is not computed from them).
    Restarted,
    /// The run was stopped before the figures could be read.
    Interrupted,
    /// The strategies ran interleaved (`load.order = "interleaved"`) against one backend:
    /// its figures are the run's, not one strategy's (a warning gives them).
    Shared,
    /// The target is the user's own service (`[target]` without `control = true`): it is sent
    /// nothing but the calls, so it was neither asked for Control, nor reset, nor read.
    NotAsked,
}

/// Lag above this (p99) means the generator, not the system, shaped the latencies.
pub const LAG_P99_LIMIT_MS: f64 = 1.0;

/// Least share of the offered rate a trustworthy generator achieves.
pub const ACHIEVED_SHARE: f64 = 0.99;

/// What a trust check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The generator's lag p99, against [`LAG_P99_LIMIT_MS`].
    Lag,
    /// The achieved rate, against [`ACHIEVED_SHARE`] of the offered rate.
    Achieved,
    /// Whether the strategy (or the run) was cut short.
    Partial,
}

/// One way in which a strategy's measurement is, or is not, trustworthy.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustCheck {
    /// What it looks at.
    pub rule: Rule,
    /// The strategy.
    pub strategy: String,
    /// The figure checked (a results.json path).
    pub figure: &'static str,
    /// The limit, in words.
    pub limit: String,
    /// The figure's value, in words.
    pub value: String,
    /// Whether it holds.
    pub ok: bool,
}

/// Every trust check of every strategy, passing or not, plus one for a run cut short before
/// some strategies ran.
pub fn checks(results: &Results) -> Vec<TrustCheck> {
    let mut out = Vec::new();
    for s in &results.strategies {
        out.extend(strategy_checks(s));
    }
    let planned = results.planned_strategies().len();
    if results.partial || planned > results.strategies.len() {
        out.push(TrustCheck {
            rule: Rule::Partial,
            strategy: "(run)".into(),
            figure: "partial",
            limit: "== false".into(),
            value: format!(
                "{}, {} of {planned} strategies measured",
                results.partial,
                results.strategies.len()
            ),
            ok: false,
        });
    }
    out
}

/// The checks that failed.
pub fn failures(results: &Results) -> Vec<TrustCheck> {
    checks(results).into_iter().filter(|c| !c.ok).collect()
}

fn strategy_checks(s: &StrategyResult) -> [TrustCheck; 3] {
    let g = &s.generator;
    let least = ACHIEVED_SHARE * g.offered_rate;
    [
        TrustCheck {
            rule: Rule::Lag,
            strategy: s.name.clone(),
            figure: "generator.lag_ms.p99",
            limit: format!("<= {LAG_P99_LIMIT_MS} ms"),
            value: format!("{:.3} ms", g.lag_ms.p99),
            ok: g.lag_ms.p99 <= LAG_P99_LIMIT_MS,
        },
        TrustCheck {
            rule: Rule::Achieved,
            strategy: s.name.clone(),
            figure: "generator.achieved_rate",
            limit: format!(
                ">= {:.0}% of offered ({:.1}/s)",
                ACHIEVED_SHARE * 100.0,
                g.offered_rate
            ),
            value: format!("{:.1}/s", g.achieved_rate),
            ok: g.offered_rate <= 0.0 || g.achieved_rate >= least,
        },
        TrustCheck {
            rule: Rule::Partial,
            strategy: s.name.clone(),
            figure: "partial",
            limit: "== false".into(),
            value: s.partial.to_string(),
            ok: !s.partial,
        },
    ]
}

/// Reasons not to trust the figures, one sentence each, as results.json's `warnings` holds
/// them: the same rules as [`checks`], in words. `timer` (the machine's calibrated wake-up
/// floor, real runs) tells a generator that fell behind from a machine that cannot wake it
/// more precisely.
pub fn warnings(
    strategies: &[StrategyResult],
    partial: bool,
    timer: Option<&TimerFloor>,
) -> Vec<String> {
    let mut out = Vec::new();
    if partial {
        out.push(
            "the run was interrupted: figures cover only what was measured before the stop".into(),
        );
    }
    // A missing figure with no gap named comes from a file written before gaps were: then it
    // meant no Control service.
    if strategies.iter().any(|s| {
        s.backend_gap == Some(BackendGap::NoControl)
            || (s.backend.is_none() && s.backend_gap.is_none())
    }) {
        out.push(format!(
            "the target has no Control service: it does not report what it received, so the \
             figures only a backend knows (received, executed, backend amplification, wasted \
             work, duplicate side effects) are null{}",
            if strategies.len() > 1 {
                ", and it was not reset between strategies"
            } else {
                ""
            }
        ));
    }
    for s in strategies {
        let name = &s.name;
        match s.backend_gap {
            Some(BackendGap::Unreachable) => out.push(format!(
                "{name}: the target could not be reached when the strategy started: its calls \
                 failed with UNAVAILABLE until it answered, and it has no backend figures"
            )),
            Some(BackendGap::Lost) => out.push(format!(
                "{name}: the target did not answer Stats after the strategy (it died or stopped \
                 answering): no backend figures"
            )),
            Some(BackendGap::Restarted) => out.push(format!(
                "{name}: the target restarted during the strategy: its backend figures are the \
                 new process's, since its start, not the whole strategy's (no backend \
                 amplification)"
            )),
            // Said once above, or with the run's interruption, or with the run's totals, or
            // (not asked) in the summary's and the report's words under their tables.
            Some(
                BackendGap::NoControl
                | BackendGap::Interrupted
                | BackendGap::Shared
                | BackendGap::NotAsked,
            )
            | None => {}
        }
    }
    for s in strategies {
        if let Some(w) = not_processed(s) {
            out.push(w);
        }
        if let Some(w) = slot_waits(s) {
            out.push(w);
        }
        if let Some(w) = all_unimplemented(s) {
            out.push(w);
        }
        if let Some(n) = s.backend.as_ref().map(|b| b.refused_at_limit)
            && n > 0
        {
            out.push(format!(
                "{}: the target refused {n} calls at its own limit on calls in progress \
                 (serve --max-calls): they failed RESOURCE_EXHAUSTED here, as a quota's \
                 refusals do, but never reached its backend, so they are in none of its figures",
                s.name
            ));
        }
    }
    for s in strategies {
        let g = &s.generator;
        for check in strategy_checks(s).iter().filter(|c| !c.ok) {
            match check.rule {
                Rule::Lag => out.push(lag_warning(s, timer)),
                Rule::Achieved => out.push(format!(
                    "{}: achieved {:.1} calls/s of {:.1} offered ({:.1}%){}",
                    s.name,
                    g.achieved_rate,
                    g.offered_rate,
                    100.0 * g.achieved_rate / g.offered_rate,
                    if s.counts.dropped > 0 {
                        format!("; {} calls dropped at max_in_flight", s.counts.dropped)
                    } else {
                        String::new()
                    }
                )),
                // A strategy cut short is the run's interruption, said once above.
                Rule::Partial => {}
            }
        }
    }
    out
}

mod words;
use words::{all_unimplemented, lag_warning, slot_waits};
pub use words::{backend_unknown, not_processed};

#[cfg(test)]
mod tests;
