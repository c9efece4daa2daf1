//! A results file as its readers (report, compare, check) hold it: typed and as JSON.
//!
//! The typed [`Results`] give the figures every v1 file has; the JSON keeps the keys this build
//! does not know (figures that newer builds add within v1), which the gate and the report find
//! by name ([`crate::figure`]). Both views come from the same read of the same file.

use std::path::Path;

use serde_json::Value;

use crate::results::{Results, ResultsError};

/// One results file, typed and as JSON.
#[derive(Debug, Clone)]
pub struct ResultsDoc {
    /// The typed results.
    pub results: Results,
    /// The same file as JSON, every key included but `profile` (`null` here: it is held once,
    /// in [`Results::profile`]).
    pub json: Value,
}

impl ResultsDoc {
    /// Reads and checks a results file.
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let (results, json) = Results::read_with_json(path)?;
        Ok(Self { results, json })
    }

    /// The document of results held in memory (a run that just ended).
    pub fn from_results(results: Results) -> Self {
        let mut json = serde_json::to_value(&results).expect("results always serialize");
        json["profile"] = Value::Null;
        Self { results, json }
    }

    /// The JSON object of the strategy named `name`.
    pub fn strategy_json(&self, name: &str) -> Option<&Value> {
        self.json
            .get("strategies")?
            .as_array()?
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
    }

    /// The profile's name, if the file has one.
    pub fn profile_name(&self) -> &str {
        self.results
            .profile
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed profile)")
    }
}
