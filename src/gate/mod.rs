//! The CI gate: limits on a run's figures and regression budgets against a baseline run.
//!
//! `resilbench check results.json [--baseline FILE]` answers one question for a CI job: does
//! this run meet the gate? Exit status 0 yes, 1 no (a table says which check failed), 2 when the
//! question cannot be asked (a missing file, a wrong schema, an unknown figure or strategy).
//!
//! - [`spec`]: what a gate says (`[gate]` in a profile, or a gate file) and [`condition`]: its
//!   `"<= 250"` and `"+10%"` strings.
//! - [`evaluate`](mod@evaluate): every check against the results, the baseline, and the generator's trust.
//! - [`output`]: the terminal table, a markdown summary for a CI job page, JUnit XML.
//!
//! A gate never passes on a measurement that cannot be believed: a run whose generator lagged,
//! fell short of its rate or was interrupted fails unless the gate says `allow_untrusted`.

pub mod condition;
pub mod error;
pub mod evaluate;
pub mod output;
pub mod spec;

use std::path::Path;

pub use error::GateError;
pub use evaluate::{Check, Outcome, Verdict, evaluate};
pub use spec::{GatePlan, StrategyGate};

use crate::profile::error::{FieldPath, Location, ProfileError, Seg};
use crate::profile::validate::Invalid;

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
        located(field, e.inner().message().trim().into(), e.inner().span())
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
                        "no strategy is named `{s}`; the profile's strategies are {}",
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
