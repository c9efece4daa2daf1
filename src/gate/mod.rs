//! The CI gate: limits on a run's figures and regression budgets against a baseline run.
//!
//! `resilbench check results.json [--baseline FILE]` answers one question for a CI job: does
//! this run meet the gate? Exit status 0 yes, 1 no (a table says which check failed), 2 when the
//! question cannot be asked (a missing file, a wrong schema, an unknown figure or strategy).
//!
//! - What a gate says (`[gate]` in a profile, or a gate file) and its `"<= 250"` and `"+10%"`
//!   strings are data, read with the profile: [`crate::profile::gate`].
//! - [`evaluate`](mod@evaluate): every check against the results, the baseline, and the generator's trust.
//! - [`output`]: the terminal table, a markdown summary for a CI job page, JUnit XML.
//!
//! Without a gate, `check --baseline` applies [`DEFAULT_REGRESSION`]: noise-aware budgets on
//! success, goodput, latency and attempts per call.
//!
//! A gate never passes on a measurement that cannot be believed: a run whose generator lagged,
//! fell short of its rate or was interrupted fails unless the gate says `allow_untrusted`.

mod budget;
pub mod error;
pub mod evaluate;
pub mod names;
pub mod output;
mod trust_rows;

pub use error::GateError;
pub use evaluate::{Check, Outcome, Verdict, evaluate};

pub use crate::profile::gate::{GatePlan, StrategyGate, condition, load_file};

/// The regression budgets `check --baseline` applies when neither the run's profile nor
/// `--gate` states a gate: every budget noise-aware, so a seed change alone passes and a run
/// ten times slower fails.
pub const DEFAULT_REGRESSION: &str = r#"
noise_aware = true
[budgets]
success_rate = "-1%"
"goodput.per_second" = "-1%"
"latency_ms.e2e_ok.p50" = "+10%"
"latency_ms.e2e_ok.p99" = "+10%"
"latency_ms.e2e_ok.p999" = "+20%"
"amplification.client" = "+5%"
"#;

/// [`DEFAULT_REGRESSION`] as a gate.
pub fn default_regression() -> GatePlan {
    toml::from_str(DEFAULT_REGRESSION).expect("the default regression gate parses")
}
