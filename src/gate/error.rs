//! Why a gate could not be evaluated: the errors that end `check` with exit status 2.
//!
//! Kept apart from a failing check (exit 1): a gate that cannot be asked its question must
//! never look like one that answered "yes".

use crate::figure::UnknownFigure;

/// Why a gate could not be evaluated (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No gate anywhere.
    #[error(
        "{0}: its profile has no [gate] section; add one, give a gate file with --gate FILE, \
         or give --baseline FILE for the default regression gate"
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
    #[error(
        "the gate names strategy `{name}`, which {file} does not have{} (strategies: {known})",
        crate::profile::error::closest(name, known.split(", ")).map_or(String::new(), |n| format!("; did you mean `{n}`?"))
    )]
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
