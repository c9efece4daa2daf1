//! Every check of a gate against a run (and a baseline run): one row each, pass or fail.
//!
//! Rows, per strategy in profile order: its limits, its budgets, then the generator's trust
//! checks ([`crate::trust`]). A figure the run could not measure (`null`) fails its check; a
//! figure name the results file does not know is an error (exit status 2), never a pass.

use serde_json::Value;

use super::spec::GatePlan;
use crate::document::ResultsDoc;
use crate::figure::{self, Resolved, UnknownFigure};
use crate::trust;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It holds.
    Pass,
    /// It does not hold: the gate fails.
    Fail,
    /// A trust check that failed, on a gate that allows untrustworthy runs.
    Allowed,
    /// A budget not checked: no baseline was given.
    Skipped,
}

impl Outcome {
    /// The word shown in tables.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Allowed => "allowed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One check of the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The strategy it concerns (`(run)` for the run as a whole).
    pub strategy: String,
    /// The figure (a results.json path or a derived name).
    pub figure: String,
    /// The condition, in words (`<= 250`, `+10% of baseline 120 = 132`).
    pub limit: String,
    /// The figure's value, in words (`not measured` when null).
    pub value: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// All checks, and notes about what was not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Every check, in table order.
    pub checks: Vec<Check>,
    /// Sentences about the run as a whole (budgets skipped, untrustworthy run allowed).
    pub notes: Vec<String>,
}

impl Verdict {
    /// Checks that failed.
    pub fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .count()
    }

    /// Whether the gate holds.
    pub fn passed(&self) -> bool {
        self.failures() == 0
    }
}

/// Why a gate could not be evaluated (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No gate anywhere.
    #[error(
        "{0}: its profile has no [gate] section; add one, or give a gate file with --gate FILE"
    )]
    NoGate(String),
    /// The profile's `[gate]` in the results file is not one this build reads.
    #[error("{file}: profile.gate: {message}")]
    BadGate {
        /// The results file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A gate with no limit and no budget.
    #[error("the gate states no limit and no budget: it would check nothing")]
    Empty,
    /// The gate names a strategy the run does not have.
    #[error("the gate names strategy `{name}`, which {file} does not have (strategies: {known})")]
    UnknownStrategy {
        /// The name.
        name: String,
        /// The results file.
        file: String,
        /// The strategies it has.
        known: String,
    },
    /// A figure name the results file does not know.
    #[error("{file}, strategy `{strategy}`: {source}")]
    UnknownFigure {
        /// The results file.
        file: String,
        /// The strategy.
        strategy: String,
        /// The name and why.
        source: UnknownFigure,
    },
}

/// The gate stated in a results file's profile, if any.
pub fn gate_of(run: &ResultsDoc, file: &str) -> Result<Option<GatePlan>, GateError> {
    match run.results.profile.get("gate") {
        None | Some(Value::Null) => Ok(None),
        Some(g) => serde_json::from_value(g.clone())
            .map(Some)
            .map_err(|e| GateError::BadGate {
                file: file.into(),
                message: e.to_string(),
            }),
    }
}

/// A results file and the name it is known by in messages.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    /// The results.
    pub doc: &'a ResultsDoc,
    /// Its path as given.
    pub file: &'a str,
}

/// Evaluates `gate` on `run`, and its budgets against `baseline` when one is given.
pub fn evaluate(
    gate: &GatePlan,
    run: Named<'_>,
    baseline: Option<Named<'_>>,
) -> Result<Verdict, GateError> {
    if gate.is_empty() {
        return Err(GateError::Empty);
    }
    let names = strategy_names(run.doc);
    for name in gate.strategies.keys() {
        if !names.contains(name) {
            return Err(GateError::UnknownStrategy {
                name: name.clone(),
                file: run.file.into(),
                known: names.join(", "),
            });
        }
    }
    let mut verdict = Verdict::default();
    let mut skipped = 0;
    for name in &names {
        let json = run.doc.strategy_json(name);
        let resolve = |figure: &str, doc: Named<'_>, json: Option<&Value>| match json {
            None => Ok(Resolved::NotMeasured),
            Some(j) => figure::resolve(j, figure).map_err(|source| GateError::UnknownFigure {
                file: doc.file.into(),
                strategy: name.clone(),
                source,
            }),
        };
        for (figure, limit) in gate.limits_for(name) {
            let got = resolve(figure, run, json)?;
            verdict.checks.push(Check {
                strategy: name.clone(),
                figure: figure.into(),
                limit: limit.to_string(),
                value: show(got.value(), limit.percent),
                outcome: pass_if(got.value().is_some_and(|v| limit.op.holds(v, limit.bound))),
            });
        }
        for (figure, budget) in gate.budgets_for(name) {
            let got = resolve(figure, run, json)?;
            let Some(base) = baseline else {
                skipped += 1;
                verdict.checks.push(Check {
                    strategy: name.clone(),
                    figure: figure.into(),
                    limit: format!("{budget} of baseline"),
                    value: show(got.value(), false),
                    outcome: Outcome::Skipped,
                });
                continue;
            };
            let base_json = base.doc.strategy_json(name);
            // An older baseline may lack a figure newer builds write: that fails the check
            // (refresh the baseline), it does not stop the gate.
            let was = match base_json {
                None => Err("strategy not in the baseline".to_string()),
                Some(j) => match figure::resolve(j, figure) {
                    Ok(r) => r
                        .value()
                        .ok_or_else(|| "not measured in the baseline".into()),
                    Err(_) => Err("the baseline has no such figure".into()),
                },
            };
            let (limit, ok) = match was {
                Ok(b) => (
                    format!("{budget} of baseline {} = {}", show(Some(b), false), {
                        let bound = budget.bound(b);
                        let op = match budget.direction {
                            super::condition::Direction::Grow => "<=",
                            super::condition::Direction::Fall => ">=",
                        };
                        format!("{op} {}", show(Some(bound), false))
                    }),
                    got.value().is_some_and(|v| budget.holds(v, b)),
                ),
                Err(why) => (format!("{budget} of baseline ({why})"), false),
            };
            verdict.checks.push(Check {
                strategy: name.clone(),
                figure: figure.into(),
                limit,
                value: show(got.value(), false),
                outcome: pass_if(ok),
            });
        }
    }
    let mut untrusted = trust_rows(&mut verdict, run.doc, false, gate.allow_untrusted);
    if let Some(base) = baseline.filter(|_| has_budgets(gate)) {
        untrusted |= trust_rows(&mut verdict, base.doc, true, gate.allow_untrusted);
    }
    if skipped > 0 {
        verdict.notes.push(format!(
            "{skipped} regression budget check(s) skipped: no --baseline given"
        ));
    }
    if untrusted && gate.allow_untrusted {
        verdict.notes.push(
            "the generator was not trustworthy; the gate allows it (allow_untrusted = true)".into(),
        );
    }
    Ok(verdict)
}

/// Adds the trust checks of `doc`: one row per strategy of the run, or one row for the whole
/// of a baseline (`as_baseline`). Returns whether any failed.
fn trust_rows(verdict: &mut Verdict, doc: &ResultsDoc, as_baseline: bool, allow: bool) -> bool {
    let checks = trust::checks(&doc.results);
    let mut groups: Vec<(String, Vec<&trust::TrustCheck>)> = Vec::new();
    for t in &checks {
        let key = if as_baseline {
            "(baseline)".to_string()
        } else {
            t.strategy.clone()
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(t),
            None => groups.push((key, vec![t])),
        }
    }
    let mut any = false;
    for (strategy, list) in groups {
        let failed: Vec<&&trust::TrustCheck> = list.iter().filter(|t| !t.ok).collect();
        any |= !failed.is_empty();
        let value = if failed.is_empty() {
            "trustworthy".to_string()
        } else {
            failed
                .iter()
                .map(|t| {
                    let whose = if as_baseline {
                        format!("{}: ", t.strategy)
                    } else {
                        String::new()
                    };
                    format!("{whose}{} {} (limit {})", t.figure, t.value, t.limit)
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        verdict.checks.push(Check {
            strategy,
            figure: "generator trust".into(),
            limit: format!(
                "lag p99 <= {} ms, achieved >= {:.0}% of offered, not interrupted",
                crate::runner::LAG_P99_LIMIT_MS,
                trust::ACHIEVED_SHARE * 100.0
            ),
            value,
            outcome: match (failed.is_empty(), allow) {
                (true, _) => Outcome::Pass,
                (false, true) => Outcome::Allowed,
                (false, false) => Outcome::Fail,
            },
        });
    }
    any
}

fn has_budgets(gate: &GatePlan) -> bool {
    !gate.budgets.is_empty() || gate.strategies.values().any(|s| !s.budgets.is_empty())
}

/// The profile's strategies in order, then any measured strategy the profile does not list.
fn strategy_names(doc: &ResultsDoc) -> Vec<String> {
    let mut names: Vec<String> = doc
        .results
        .profile
        .get("strategies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str).map(String::from))
        .collect();
    for s in &doc.results.strategies {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    names
}

fn pass_if(ok: bool) -> Outcome {
    if ok { Outcome::Pass } else { Outcome::Fail }
}

/// A figure's value for a table: as a percentage when its limit was written as one.
pub fn show(value: Option<f64>, percent: bool) -> String {
    match value {
        None => "not measured".into(),
        Some(v) if percent => format!("{}%", number(v * 100.0)),
        Some(v) => number(v),
    }
}

/// A number with as many decimals as its size deserves, trailing zeros cut.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let text = if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else if v.abs() < 0.001 {
        return format!("{v:.2e}");
    } else {
        format!("{v:.4}")
    };
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    trimmed.to_string()
}
