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

/// Which strategies have no backend figures and why, in one sentence for the readers (the
/// summary under its table, the report under its tables), or none when every strategy has
/// them: figures only the backend can know are never made up, and a reader must not take a
/// "–" for a zero.
pub fn backend_unknown(strategies: &[StrategyResult]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let names = |gaps: &[Option<BackendGap>]| -> Vec<&str> {
        strategies
            .iter()
            .filter(|s| s.backend.is_none() && gaps.contains(&s.backend_gap))
            .map(|s| s.name.as_str())
            .collect()
    };
    let all = |n: &[&str]| n.len() == strategies.len();
    let who = |n: &[&str]| {
        if all(n) {
            String::new()
        } else {
            format!(" (for {})", n.join(", "))
        }
    };
    let no_control = names(&[Some(BackendGap::NoControl), None]);
    if !no_control.is_empty() {
        parts.push(format!(
            "the target does not report what it received{}: it has no Control service, so \
             attempts received and executed, backend amplification, wasted work and duplicate \
             side effects are unknown (– here, null in results.json)",
            who(&no_control)
        ));
    }
    let shared = names(&[Some(BackendGap::Shared)]);
    if !shared.is_empty() {
        parts.push(
            "the strategies ran interleaved against one backend, so what it received is the \
             run's, not one strategy's (the warnings give the run's totals)"
                .into(),
        );
    }
    let other = names(&[
        Some(BackendGap::Unreachable),
        Some(BackendGap::Lost),
        Some(BackendGap::Interrupted),
    ]);
    if !other.is_empty() {
        parts.push(format!(
            "the target reported nothing{} (see the warnings)",
            who(&other)
        ));
    }
    if parts.is_empty() {
        return None;
    }
    let mut text = parts.join("; ");
    if let Some(first) = text.get(..1) {
        text.replace_range(..1, &first.to_uppercase());
    }
    Some(format!("{text}."))
}

/// What became of the streams a strategy's server did not process, in a sentence (none if
/// there were none): they explain UNAVAILABLE failures that no application answered.
pub fn not_processed(s: &StrategyResult) -> Option<String> {
    let a = &s.attempts;
    let n = a.not_processed;
    if n.total() == 0 {
        return None;
    }
    let mut how = Vec::new();
    if n.refused > 0 {
        how.push(format!(
            "{} refused with RST_STREAM(REFUSED_STREAM)",
            n.refused
        ));
    }
    if n.goaway > 0 {
        how.push(format!("{} above a GOAWAY's last stream id", n.goaway));
    }
    if n.unsent > 0 {
        how.push(format!(
            "{} never sent before their connection ended",
            n.unsent
        ));
    }
    let failed = n.total().saturating_sub(a.transparent);
    let mut text = format!(
        "{}: the server did not process {} streams ({}): {} were sent again at once \
         (transparent retries, not counted as attempts) and {failed} failed their attempt \
         with UNAVAILABLE without reaching the server's application",
        s.name,
        n.total(),
        how.join(", "),
        a.transparent
    );
    if n.refused > 0 {
        text.push_str(
            "; a gRPC C-core server (grpcio) refuses streams at its max_concurrent_streams even \
             when fewer are open (docs/targets.md, \"Why a server refuses streams\")",
        );
    }
    Some(text)
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
        out.push(
            "the target has no Control service: it does not report what it received, so the \
             figures only a backend knows (received, executed, backend amplification, wasted \
             work, duplicate side effects) are null, and it was not reset between strategies"
                .into(),
        );
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
            // Said once above, or with the run's interruption, or with the run's totals.
            Some(BackendGap::NoControl | BackendGap::Interrupted | BackendGap::Shared) | None => {}
        }
    }
    for s in strategies {
        if let Some(w) = not_processed(s) {
            out.push(w);
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

/// The lag warning: whose lateness it is (the generator's, or the machine's floor when the
/// lag is within it), and by how much it moves the latencies (as a share of the e2e p50).
fn lag_warning(s: &StrategyResult, timer: Option<&TimerFloor>) -> String {
    let lag = s.generator.lag_ms.p99;
    let head = format!(
        "{}: generator lag p99 was {lag:.2} ms (limit {LAG_P99_LIMIT_MS} ms)",
        s.name
    );
    let cause = match timer {
        Some(t) if lag <= t.lag_floor_ms() => format!(
            "within this machine's floor of {:.2} ms (its wake-ups were {:.2} ms late at p99 \
             over {} calibrated before the run, plus the driver's {} ms quantum): the \
             generator kept its schedule as closely as this machine can wake it",
            t.lag_floor_ms(),
            t.wake_overshoot_ms.p99,
            t.samples,
            t.wake_quantum_ms
        ),
        Some(t) => format!(
            "the load generator fell behind its schedule (this machine's own floor is {:.2} ms: \
             wake-ups {:.2} ms late at p99 plus the driver's {} ms quantum)",
            t.lag_floor_ms(),
            t.wake_overshoot_ms.p99,
            t.wake_quantum_ms
        ),
        None => "the load generator fell behind its schedule".to_string(),
    };
    let share = s
        .latency_ms
        .e2e
        .as_ref()
        .filter(|e| e.p50 > 0.0)
        .map_or(String::new(), |e| {
            format!(
                "; the lag p99 is {:.0}% of the e2e p50 ({:.2} ms)",
                100.0 * lag / e.p50,
                e.p50
            )
        });
    format!("{head}: {cause}{share}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Lag;

    /// The quickstart's strategies as its golden file keeps them (its environment is redacted).
    fn quickstart() -> Vec<StrategyResult> {
        let text = include_str!("../../tests/golden/quickstart.results.json");
        let doc: serde_json::Value = serde_json::from_str(text).expect("the golden file reads");
        serde_json::from_value(doc["strategies"].clone()).expect("its strategies read")
    }

    fn floor(p99: f64, quantum: f64) -> TimerFloor {
        TimerFloor {
            wake_overshoot_ms: Lag {
                p50: p99 / 4.0,
                p99,
                max: 2.0 * p99,
            },
            samples: 600,
            calibrated_s: 0.3,
            wake_quantum_ms: quantum,
        }
    }

    fn lagging(lag_p99: f64) -> StrategyResult {
        let mut s = quickstart().remove(0);
        s.generator.lag_ms.p99 = lag_p99;
        s
    }

    #[test]
    fn a_lag_within_the_machines_floor_is_said_to_be_the_machines() {
        let s = lagging(1.5);
        let w = warnings(std::slice::from_ref(&s), false, Some(&floor(1.6, 0.1)));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("within this machine's floor of 1.70 ms"),
            "{}",
            w[0]
        );
        assert!(!w[0].contains("fell behind"), "{}", w[0]);
        // Still flagged: the figures carry the lag whoever caused it.
        assert!(!strategy_checks(&s)[0].ok);
    }

    #[test]
    fn a_lag_above_the_floor_is_the_generators() {
        let s = lagging(5.0);
        let w = warnings(std::slice::from_ref(&s), false, Some(&floor(0.2, 0.1)));
        assert!(w[0].contains("fell behind its schedule"), "{}", w[0]);
        assert!(w[0].contains("own floor is 0.30 ms"), "{}", w[0]);
    }

    #[test]
    fn the_lag_is_put_against_the_e2e_median() {
        let s = lagging(5.0);
        let p50 = s
            .latency_ms
            .e2e
            .as_ref()
            .expect("quickstart has latencies")
            .p50;
        let w = warnings(std::slice::from_ref(&s), false, None);
        let share = format!("{:.0}% of the e2e p50 ({p50:.2} ms)", 500.0 / p50);
        assert!(w[0].contains(&share), "{} lacks {share}", w[0]);
    }
}
