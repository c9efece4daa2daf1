//! What a gate says: the `[gate]` section of a profile, or a gate file of its own.
//!
//! ```toml
//! [gate]
//! allow_untrusted = false              # the default: an untrustworthy run fails the gate
//! noise_aware = false                  # true: every budget as if "... beyond noise"
//!
//! [gate.limits]                        # every strategy
//! "latency_ms.e2e.p99" = "<= 250"
//! success_rate = ">= 99.5%"
//!
//! [gate.budgets]                       # against `check --baseline`, every strategy
//! "latency_ms.e2e.p99" = "+10%"
//!
//! [gate.strategies."no-retry".limits]  # one strategy: replaces the same figure above
//! success_rate = ">= 95%"
//! ```
//!
//! Figure names are paths into results.json; they are checked against the results when the
//! gate runs (`crate::gate`), since a figure added by a newer build is valid the day it
//! appears. Strategy names are checked against the profile when the gate is part of one.
//!
//! A gate is data, read with the profile it belongs to (or from its own file, with the same
//! errors): it lives here, below the readers that evaluate it.

pub mod condition;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{FieldPath, Location, ProfileError, Seg};
use super::validate::Invalid;
use condition::{Budget, Limit};

/// A gate: limits on figures, regression budgets, and whether an untrustworthy run may pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatePlan {
    /// Let a run whose generator was not trustworthy (lag, achieved rate, interrupted) pass;
    /// its trust checks are still shown. Default false.
    #[serde(default)]
    pub allow_untrusted: bool,
    /// Every budget fails only beyond sampling noise, as if written `"... beyond noise"`.
    /// Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub noise_aware: bool,
    /// Limits on figures, for every strategy.
    #[serde(default)]
    pub limits: BTreeMap<String, Limit>,
    /// How far figures may move from the baseline run, for every strategy.
    #[serde(default)]
    pub budgets: BTreeMap<String, Budget>,
    /// Per strategy: limits and budgets that replace those above for the same figure.
    #[serde(default)]
    pub strategies: BTreeMap<String, StrategyGate>,
}

/// One strategy's own limits and budgets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyGate {
    /// Limits on figures.
    #[serde(default)]
    pub limits: BTreeMap<String, Limit>,
    /// How far figures may move from the baseline run.
    #[serde(default)]
    pub budgets: BTreeMap<String, Budget>,
}

impl GatePlan {
    /// The limits that apply to `strategy`: the general ones, replaced figure by figure by the
    /// strategy's own.
    pub fn limits_for(&self, strategy: &str) -> BTreeMap<&str, Limit> {
        overlay(
            &self.limits,
            self.strategies.get(strategy).map(|s| &s.limits),
        )
    }

    /// The budgets that apply to `strategy`, likewise.
    pub fn budgets_for(&self, strategy: &str) -> BTreeMap<&str, Budget> {
        overlay(
            &self.budgets,
            self.strategies.get(strategy).map(|s| &s.budgets),
        )
    }

    /// Whether the gate states any limit or budget.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
            && self.budgets.is_empty()
            && self
                .strategies
                .values()
                .all(|s| s.limits.is_empty() && s.budgets.is_empty())
    }

    /// Every figure name the gate mentions, with the field that holds it (for errors).
    pub fn figure_fields(&self) -> Vec<(FieldPath, &str)> {
        let key = |k: &str| Seg::Key(k.to_string());
        let mut tables = vec![
            (
                vec![key("gate"), key("limits")],
                self.limits.keys().collect::<Vec<_>>(),
            ),
            (
                vec![key("gate"), key("budgets")],
                self.budgets.keys().collect(),
            ),
        ];
        for (s, g) in &self.strategies {
            let at = |k: &str| vec![key("gate"), key("strategies"), key(s), key(k)];
            tables.push((at("limits"), g.limits.keys().collect()));
            tables.push((at("budgets"), g.budgets.keys().collect()));
        }
        let mut out = Vec::new();
        for (prefix, names) in tables {
            for n in names {
                let mut path = prefix.clone();
                path.push(key(n));
                out.push((FieldPath(path), n.as_str()));
            }
        }
        out
    }
}

/// Reads a gate file: a TOML file holding, at its top level, what a profile's `[gate]` holds.
/// Errors name the file, line, column and field, as profile errors do.
pub fn load_file(path: &Path) -> Result<GatePlan, ProfileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
        file: file.clone(),
        location: None,
        flag: None,
        field: FieldPath::default(),
        message: format!("cannot read the gate file: {e}"),
    })?;
    let located = |field: FieldPath, message: String, span: Option<std::ops::Range<usize>>| {
        let mut err = ProfileError::at(&file, Some(&text), field, message);
        if let Some(span) = span {
            err.location = Some(Box::new(Location::of(&text, span.start)));
        }
        err
    };
    let de = toml::de::Deserializer::parse(&text)
        .map_err(|e| located(FieldPath::default(), e.message().trim().into(), e.span()))?;
    let gate: GatePlan = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = FieldPath::from(e.path());
        let message = super::error::with_suggestion(e.inner().message().trim());
        located(field, message, e.inner().span())
    })?;
    // Field paths of a gate file have no `gate.` prefix.
    check(&gate, None).map_err(|(mut field, message)| {
        field.0.remove(0);
        ProfileError::at(&file, Some(&text), field, message)
    })?;
    Ok(gate)
}

/// Checks a gate: figure names are dotted paths, and, when the gate is part of a profile
/// (`strategies` given), every strategy it names is one of the profile's.
pub fn check(gate: &GatePlan, strategies: Option<&[&str]>) -> Result<(), Invalid> {
    if let Some(names) = strategies {
        for s in gate.strategies.keys() {
            if !names.contains(&s.as_str()) {
                return Err((
                    FieldPath(vec![
                        Seg::Key("gate".into()),
                        Seg::Key("strategies".into()),
                        Seg::Key(s.clone()),
                    ]),
                    format!(
                        "no strategy is named `{s}`{}; the profile's strategies are {}",
                        super::error::closest(s, names.iter().copied())
                            .map_or(String::new(), |n| format!(" (did you mean `{n}`?)")),
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    for (field, name) in gate.figure_fields() {
        if name.is_empty() || name.split('.').any(str::is_empty) {
            return Err((
                field,
                format!(
                    "`{name}` is not a figure name; expected a dotted path into results.json \
                     such as `latency_ms.e2e.p99`, or `success_rate`"
                ),
            ));
        }
    }
    Ok(())
}

fn overlay<'a, T: Copy>(
    all: &'a BTreeMap<String, T>,
    own: Option<&'a BTreeMap<String, T>>,
) -> BTreeMap<&'a str, T> {
    let mut out: BTreeMap<&str, T> = all.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    for (k, v) in own.into_iter().flatten() {
        out.insert(k.as_str(), *v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strategy_replaces_the_general_limit_for_its_figures() {
        let gate: GatePlan = toml::from_str(
            r#"
            [limits]
            "latency_ms.e2e.p99" = "<= 250"
            success_rate = ">= 99.5%"
            [strategies.loose.limits]
            success_rate = ">= 95%"
            "#,
        )
        .unwrap();
        let loose = gate.limits_for("loose");
        assert_eq!(loose.len(), 2);
        assert_eq!(loose["success_rate"].to_string(), ">= 95%");
        assert_eq!(
            gate.limits_for("other")["success_rate"].to_string(),
            ">= 99.5%"
        );
        assert!(!gate.is_empty());
        assert!(GatePlan::default().is_empty());
    }

    #[test]
    fn a_gate_round_trips_through_json_as_written() {
        let gate: GatePlan =
            toml::from_str("budgets = { \"latency_ms.e2e.p99\" = \"+10%\" }").unwrap();
        let json = serde_json::to_value(&gate).unwrap();
        assert_eq!(json["budgets"]["latency_ms.e2e.p99"], "+10%");
        assert_eq!(serde_json::from_value::<GatePlan>(json).unwrap(), gate);
    }
}
