//! A sweep's goal: the conditions a recommended point must meet.
//!
//! Written as `--goal "latency_ms.e2e.p99 <= 50" "success_rate >= 99.9%"`, as the `[sweep]`
//! table's `goal = [...]`, or, when neither is given, taken from the profile's `[gate]`: its
//! limits, general and per strategy (budgets need a baseline run and do not apply). A condition
//! is a figure name (a path into results.json, as `check` reads it: [`crate::figure`]) and a
//! limit in the gate's own syntax ([`Limit`]), parsed by the same code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::profile::gate::GatePlan;
use crate::profile::gate::condition::Limit;

/// The goal, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// `--goal`, `[sweep] goal` or `[gate]`.
    pub source: String,
    /// The conditions, as a gate holds them (limits only).
    pub gate: GatePlan,
}

/// Splits `"latency_ms.e2e.p99 <= 50"` into the figure and its limit.
pub fn parse_condition(text: &str) -> Result<(String, Limit), String> {
    let at = text.find(['<', '>', '=']).ok_or_else(|| {
        format!(
            "`{text}` is not a condition; expected a figure, an operator and a number, like \
             \"latency_ms.e2e.p99 <= 50\" or \"success_rate >= 99.9%\""
        )
    })?;
    let (figure, limit) = text.split_at(at);
    let figure = figure.trim();
    if figure.is_empty() || figure.split('.').any(|s| s.trim().is_empty()) || figure.contains(' ') {
        return Err(format!(
            "`{text}`: `{figure}` is not a figure name; expected a dotted path into \
             results.json such as `latency_ms.e2e.p99`, or `success_rate`"
        ));
    }
    let limit: Limit = limit.parse().map_err(|e| format!("`{text}`: {e}"))?;
    Ok((figure.to_string(), limit))
}

impl Goal {
    /// A goal of conditions written as text (`--goal` or `[sweep] goal`).
    pub fn from_conditions(source: &str, conditions: &[String]) -> Result<Goal, (usize, String)> {
        let mut gate = GatePlan::default();
        for (i, c) in conditions.iter().enumerate() {
            let (figure, limit) = parse_condition(c).map_err(|e| (i, e))?;
            if gate.limits.insert(figure.clone(), limit).is_some() {
                return Err((i, format!("`{figure}` has two conditions; give it one")));
            }
        }
        Ok(Goal {
            source: source.into(),
            gate,
        })
    }

    /// The limits of a profile's gate (`None` when it has none).
    pub fn from_gate(gate: &GatePlan) -> Option<Goal> {
        let mut limits = gate.clone();
        limits.budgets.clear();
        for s in limits.strategies.values_mut() {
            s.budgets.clear();
        }
        limits.strategies.retain(|_, s| !s.limits.is_empty());
        (!limits.limits.is_empty() || !limits.strategies.is_empty()).then(|| Goal {
            source: "[gate]".into(),
            gate: limits,
        })
    }

    /// The limits that apply to `strategy`.
    pub fn limits_for(&self, strategy: &str) -> BTreeMap<&str, Limit> {
        self.gate.limits_for(strategy)
    }

    /// The conditions in words, general ones first: `success_rate >= 99.9%`,
    /// `latency_ms.e2e.p99 <= 50 (strategy grpc)`.
    pub fn words(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .gate
            .limits
            .iter()
            .map(|(f, l)| format!("{f} {l}"))
            .collect();
        for (s, g) in &self.gate.strategies {
            out.extend(g.limits.iter().map(|(f, l)| format!("{f} {l} ({s})")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_as_the_gate_parses_limits() {
        let (f, l) = parse_condition("latency_ms.e2e.p99 <= 50").unwrap();
        assert_eq!(
            (f.as_str(), l.to_string().as_str()),
            ("latency_ms.e2e.p99", "<= 50")
        );
        let (f, l) = parse_condition("success_rate>=99.9%").unwrap();
        assert_eq!(f, "success_rate");
        assert!((l.bound - 0.999).abs() < 1e-12);
        for bad in ["p99 50", "<= 50", "latency ms <= 5", "a..b <= 1", "x <= y"] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
        let e = Goal::from_conditions("--goal", &["a <= 1".into(), "a >= 0".into()]).unwrap_err();
        assert_eq!(e.0, 1);
    }

    #[test]
    fn a_gate_gives_its_limits_not_its_budgets() {
        let gate: GatePlan = toml::from_str(
            "limits = { success_rate = \">= 99%\" }\nbudgets = { x = \"+10%\" }\n\
             [strategies.a.limits]\n\"latency_ms.e2e.p99\" = \"<= 5\"\n\
             [strategies.b.budgets]\ny = \"+1\"\n",
        )
        .unwrap();
        let goal = Goal::from_gate(&gate).unwrap();
        assert_eq!(goal.limits_for("a").len(), 2);
        assert_eq!(goal.limits_for("b").len(), 1);
        assert_eq!(
            goal.words(),
            ["success_rate >= 99%", "latency_ms.e2e.p99 <= 5 (a)"]
        );
        let budgets_only: GatePlan = toml::from_str("budgets = { x = \"+10%\" }").unwrap();
        assert!(Goal::from_gate(&budgets_only).is_none());
    }
}
