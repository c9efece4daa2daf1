//! Every check of a gate against a run (and a baseline run): one row each, pass or fail.
//!
//! Rows, per strategy in profile order: its limits, its budgets, then the generator's trust
//! checks ([`crate::results::trust`]). A figure the run could not measure (`null`) fails its check; a
//! figure name the results file does not know is an error (exit status 2), never a pass.

use serde_json::Value;

use super::error::GateError;
use super::output::show;
use super::{budget, trust_rows};
use crate::document::ResultsDoc;
use crate::figure::{self, Resolved};
use crate::profile::gate::GatePlan;

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

/// What a check holds a figure to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A limit (`<= 250`).
    Limit,
    /// A regression budget against the baseline (`+10%`).
    Budget,
    /// The generator's trust.
    Trust,
}

/// One check of the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What the check holds the figure to.
    pub kind: Kind,
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
    let names: Vec<String> = run
        .doc
        .results
        .planned_strategies()
        .into_iter()
        .map(String::from)
        .collect();
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
    // The noise-aware budgets are judged together, as one family ([`crate::noise`]).
    let family = names
        .iter()
        .flat_map(|n| gate.budgets_for(n).into_values())
        .filter(|b| b.beyond_noise || gate.noise_aware)
        .count();
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
                kind: Kind::Limit,
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
                    kind: Kind::Budget,
                    strategy: name.clone(),
                    figure: figure.into(),
                    limit: format!("{budget} of baseline"),
                    value: show(got.value(), false),
                    outcome: Outcome::Skipped,
                });
                continue;
            };
            let figure = budget::Figure {
                strategy: name,
                name: figure,
                got,
                noisy: budget.beyond_noise || gate.noise_aware,
                family,
            };
            verdict
                .checks
                .push(budget::check(&budget, figure, run, base));
        }
    }
    let mut untrusted = trust_rows::add(&mut verdict, run.doc, false, gate.allow_untrusted);
    if let Some(base) = baseline.filter(|_| trust_rows::has_budgets(gate)) {
        untrusted |= trust_rows::add(&mut verdict, base.doc, true, gate.allow_untrusted);
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

/// Pass if `ok`, else fail.
pub(super) fn pass_if(ok: bool) -> Outcome {
    if ok { Outcome::Pass } else { Outcome::Fail }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// run-a.json of the integration tests: three strategies, a virtual clock.
    fn run(change: impl FnOnce(&mut Value)) -> ResultsDoc {
        let mut json: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/run-a.json")).unwrap();
        change(&mut json);
        ResultsDoc {
            results: serde_json::from_value(json.clone()).unwrap(),
            json,
        }
    }

    fn gate(toml: &str) -> GatePlan {
        toml::from_str(toml).unwrap()
    }

    fn named(doc: &ResultsDoc) -> Named<'_> {
        Named {
            doc,
            file: "r.json",
        }
    }

    fn outcomes(v: &Verdict, figure: &str) -> Vec<(String, Outcome)> {
        v.checks
            .iter()
            .filter(|c| c.figure == figure)
            .map(|c| (c.strategy.clone(), c.outcome))
            .collect()
    }

    #[test]
    fn a_figure_not_measured_fails_its_check() {
        let doc = run(|j| j["strategies"][1]["latency_ms"]["e2e_ok"] = Value::Null);
        let v = evaluate(
            &gate("limits = { \"latency_ms.e2e_ok.p99\" = \"<= 1000\" }"),
            named(&doc),
            None,
        )
        .unwrap();
        let got = outcomes(&v, "latency_ms.e2e_ok.p99");
        assert_eq!(got[1], ("tight".into(), Outcome::Fail));
        assert_eq!(v.checks[1].value, "not measured");
        assert_eq!(v.failures(), 1);
    }

    #[test]
    fn an_unmeasured_strategy_fails_and_an_unknown_one_is_an_error() {
        let doc = run(|j| {
            j["strategies"].as_array_mut().unwrap().pop();
            j["partial"] = true.into();
        });
        let v = evaluate(
            &gate("limits = { success_rate = \">= 0.5\" }"),
            named(&doc),
            None,
        )
        .unwrap();
        let got = outcomes(&v, "success_rate");
        assert_eq!(
            got[2],
            ("per-try".into(), Outcome::Fail),
            "interrupted before it ran"
        );
        assert!(
            v.checks
                .iter()
                .any(|c| c.strategy == "(run)" && c.outcome == Outcome::Fail)
        );
        let e = evaluate(
            &gate("[strategies.nope.limits]\nx = \"<= 1\""),
            named(&doc),
            None,
        );
        assert!(matches!(e, Err(GateError::UnknownStrategy { .. })));
        assert!(matches!(
            evaluate(&GatePlan::default(), named(&doc), None),
            Err(GateError::Empty)
        ));
    }

    #[test]
    fn budgets_compare_with_the_baseline_or_are_skipped() {
        let base = run(|_| {});
        let worse = run(|j| j["strategies"][0]["latency_ms"]["e2e"]["p99"] = 1000.0.into());
        let g = gate("budgets = { \"latency_ms.e2e.p99\" = \"+10%\" }");
        let v = evaluate(&g, named(&worse), Some(named(&base))).unwrap();
        let got = outcomes(&v, "latency_ms.e2e.p99");
        assert_eq!(
            got.iter().map(|g| g.1).collect::<Vec<_>>(),
            [Outcome::Fail, Outcome::Pass, Outcome::Pass]
        );
        assert!(
            v.checks.iter().any(|c| c.strategy == "(baseline)"),
            "the baseline's trust is checked"
        );
        let v = evaluate(&g, named(&worse), None).unwrap();
        assert!(
            outcomes(&v, "latency_ms.e2e.p99")
                .iter()
                .all(|g| g.1 == Outcome::Skipped)
        );
        assert!(v.passed());
    }

    #[test]
    fn an_untrusted_run_fails_unless_allowed() {
        let doc = run(|j| j["strategies"][2]["generator"]["achieved_rate"] = 1.0.into());
        let strict = evaluate(
            &gate("limits = { success_rate = \">= 0.5\" }"),
            named(&doc),
            None,
        )
        .unwrap();
        assert_eq!(outcomes(&strict, "generator trust")[2].1, Outcome::Fail);
        let allowed = evaluate(
            &gate("allow_untrusted = true\nlimits = { success_rate = \">= 0.5\" }"),
            named(&doc),
            None,
        )
        .unwrap();
        assert_eq!(outcomes(&allowed, "generator trust")[2].1, Outcome::Allowed);
        assert!(allowed.passed() && !allowed.notes.is_empty());
    }
}
