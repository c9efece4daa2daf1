//! The generator's trust as rows of a gate: a gate never passes on a measurement that cannot
//! be believed ([`crate::results::trust`]), unless it says `allow_untrusted`.

use super::evaluate::{Check, Kind, Outcome, Verdict};
use crate::document::ResultsDoc;
use crate::profile::gate::GatePlan;
use crate::results::trust;

/// Adds the trust checks of `doc`: one row per strategy of the run, or one row for the whole
/// of a baseline (`as_baseline`). Returns whether any failed.
pub(super) fn add(verdict: &mut Verdict, doc: &ResultsDoc, as_baseline: bool, allow: bool) -> bool {
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
            kind: Kind::Trust,
            strategy,
            figure: "generator trust".into(),
            limit: format!(
                "lag p99 <= {} ms, achieved >= {:.0}% of offered, run complete",
                trust::LAG_P99_LIMIT_MS,
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

/// Whether the gate has budgets (the baseline's trust is checked only then).
pub(super) fn has_budgets(gate: &GatePlan) -> bool {
    !gate.budgets.is_empty() || gate.strategies.values().any(|s| !s.budgets.is_empty())
}
