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

    /// What the calls went to, in words: "embedded backend", "backend at HOST:PORT" (`serve`
    /// elsewhere), or "your service at ADDRESS" (a `[target]`).
    pub fn target_words(&self) -> String {
        let target = &self.results.environment.target;
        if target == "embedded" {
            "embedded backend".into()
        } else if self.results.profile.get("target").is_some() {
            format!("your service at {target}")
        } else {
            format!("backend at {target}")
        }
    }

    /// How the strategies shared the run, in words: in turn (with the cooldown between them,
    /// when the file says one), or interleaved call by call.
    pub fn order_words(&self) -> String {
        let load = self.results.profile.get("load");
        let text = |key: &str| load.and_then(|l| l.get(key)).and_then(Value::as_str);
        if text("order") == Some("interleaved") {
            return "strategies interleaved: each call of the one schedule given to one strategy \
                    by a keyed draw, all against one backend at the same time"
                .into();
        }
        let pause = match text("cooldown") {
            Some(c) if crate::profile::duration::parse(c).is_ok_and(|d| !d.is_zero()) => {
                format!(", {c} of cooldown between them")
            }
            _ => String::new(),
        };
        format!("strategies in turn, each with the whole schedule{pause}")
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
