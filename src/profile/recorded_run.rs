//! A recorded run read back as a model's source: a results file (or the run folder holding
//! it) read within a size bound, its schema checked, one strategy picked by name (with the
//! closest name when it is wrong); and `[backend] errors_from`, the error mix of that
//! strategy's attempts.
//!
//! Why here and not in `results`: the profile (layer 1) reads it while it is resolved, below
//! the results module (layer 3) that writes the file; so this reads the file as JSON, by the
//! keys of its schema (`resilbench.results/v1`, docs/results.md), and nothing else.
//!
//! Which statuses make the mix: each status of `attempts.status` except OK, DEADLINE_EXCEEDED
//! and CANCELLED, as its share of all the strategy's attempts. A client decides the last two
//! itself: an attempt past its deadline is the latency's tail (already in a measured
//! histogram), a cancelled one was abandoned (a hedge's loser, a call given up); the backend
//! answering them would count them twice.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::StatusCode;

/// Largest results file or `.hlog` read for a model (the results readers' bound, 256 MiB).
pub const MAX_FILE: u64 = 256 << 20;

/// The results schema a model can be read from.
const RESULTS_SCHEMA: &str = "resilbench.results/v1";

/// `[backend] errors_from`: the error mix of a recorded strategy, per attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsFrom {
    /// The results file (or run folder), relative to the profile's folder.
    pub from: String,
    /// The strategy whose attempts' statuses are read (one strategy needs none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// Statuses a client decides itself, left out of an error mix: an attempt past its deadline
/// is the latency's tail (already in the histogram), a cancelled one was abandoned.
const CLIENT_SIDE: [StatusCode; 2] = [StatusCode::DEADLINE_EXCEEDED, StatusCode::CANCELLED];

impl ErrorsFrom {
    /// Each failed status's share of the recorded strategy's attempts (`attempts.status`),
    /// DEADLINE_EXCEEDED and CANCELLED left out; on error, the field and what is wrong. A
    /// strategy marked partial is read, and said in `caveats`.
    pub fn error_mix(
        &self,
        base: &Path,
        caveats: &mut Vec<String>,
    ) -> Result<BTreeMap<StatusCode, f64>, (String, String)> {
        let path = base.join(&self.from);
        let results = read_results(&path).map_err(|e| ("from".to_string(), e))?;
        let s = strategy_of(&results, self.strategy.as_deref(), &path)
            .map_err(|e| ("strategy".to_string(), e))?;
        caveats.extend(cut_short(s, &path, "the error mix holds"));
        let statuses = s
            .get("attempts")
            .and_then(|a| a.get("status"))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                (
                    "from".to_string(),
                    format!("{} has no `attempts.status`", path.display()),
                )
            })?;
        let mut counts = Vec::new();
        for (name, n) in statuses {
            let code = StatusCode::parse(name).map_err(|e| {
                (
                    "from".to_string(),
                    format!("{}: attempts.status.{name}: {e}", path.display()),
                )
            })?;
            let n = n.as_u64().ok_or_else(|| {
                (
                    "from".to_string(),
                    format!("{}: attempts.status.{name}: not a count", path.display()),
                )
            })?;
            counts.push((code, n));
        }
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return Err((
                "from".into(),
                format!("{}: the strategy made no attempt", path.display()),
            ));
        }
        Ok(counts
            .into_iter()
            .filter(|(code, n)| *code != StatusCode::OK && !CLIENT_SIDE.contains(code) && *n > 0)
            .map(|(code, n)| (code, n as f64 / total as f64))
            .collect())
    }
}

/// The bytes of `path`, refused above [`MAX_FILE`] (from its size, and again while reading).
pub(super) fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    let too_large = |n: u64| {
        format!(
            "{} is {n} bytes or more; at most {MAX_FILE} are read",
            path.display()
        )
    };
    if len > MAX_FILE {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A results file as JSON (a folder: its `results.json`), its schema checked.
pub(super) fn read_results(path: &Path) -> Result<Value, String> {
    let path = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    let bytes = read_bounded(&path)?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a results file: {e}", path.display()))?;
    match v.get("schema").and_then(Value::as_str) {
        Some(RESULTS_SCHEMA) => Ok(v),
        Some(other) => Err(format!(
            "{} has schema `{other}`; this build reads `{RESULTS_SCHEMA}`",
            path.display()
        )),
        None => Err(format!(
            "{} is not a results file (no `schema`)",
            path.display()
        )),
    }
}

/// A sentence when strategy `s` of the results file at `path` is marked partial (its run
/// stopped before the strategy ended), naming what a model read from it lacks.
pub(super) fn cut_short(s: &Value, path: &Path, what: &str) -> Option<String> {
    (s.get("partial") == Some(&Value::Bool(true))).then(|| {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("?");
        format!(
            "strategy `{name}` of {} is marked partial (its run stopped before the strategy \
             ended): {what} only its calls before the stop",
            path.display()
        )
    })
}

/// The strategy named `name` of a results file, or its only one.
pub(super) fn strategy_of<'a>(
    results: &'a Value,
    name: Option<&str>,
    path: &Path,
) -> Result<&'a Value, String> {
    let all: Vec<&Value> = results
        .get("strategies")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let names: Vec<&str> = all
        .iter()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .collect();
    let listed = || format!("its strategies are {}", names.join(", "));
    match name {
        Some(name) => all
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .copied()
            .ok_or_else(|| {
                let hint = super::error::closest(name, names.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                // A strategy the profile planned but the run never reached.
                let planned = results
                    .pointer("/profile/strategies")
                    .and_then(Value::as_array)
                    .is_some_and(|p| {
                        p.iter()
                            .any(|s| s.get("name").and_then(Value::as_str) == Some(name))
                    });
                let cut = if planned && results.get("partial") == Some(&Value::Bool(true)) {
                    " (its profile planned it, but the run was cut short before it ran)"
                } else {
                    ""
                };
                format!(
                    "{} has no strategy `{name}`{cut}{hint}; {}",
                    path.display(),
                    listed()
                )
            }),
        None if all.len() == 1 => Ok(all[0]),
        None => Err(format!(
            "{} has {} strategies: name one with `strategy`; {}",
            path.display(),
            all.len(),
            listed()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strategy_a_cut_short_run_never_reached_is_said_so() {
        let results = serde_json::json!({
            "partial": true,
            "profile": { "strategies": [{ "name": "retry" }, { "name": "retry_m" }] },
            "strategies": [{ "name": "retry" }]
        });
        let e = strategy_of(&results, Some("retry_m"), Path::new("cc")).unwrap_err();
        assert!(e.contains("the run was cut short before it ran"), "{e}");
        let e = strategy_of(&results, Some("nope"), Path::new("cc")).unwrap_err();
        assert!(!e.contains("cut short"), "{e}");
    }

    /// Each failed status's share of all attempts, the client's own statuses left out (but
    /// still counted in the total: they were attempts the service saw).
    #[test]
    fn the_mix_is_each_failed_share_without_the_clients_own() {
        let dir = tempfile::tempdir().unwrap();
        let results = serde_json::json!({
            "schema": RESULTS_SCHEMA,
            "strategies": [{ "name": "baseline", "attempts": { "status": {
                "OK": 880, "UNAVAILABLE": 50, "INTERNAL": 10, "DEADLINE_EXCEEDED": 40,
                "CANCELLED": 20, "ABORTED": 0
            } } }]
        });
        std::fs::write(dir.path().join("results.json"), results.to_string()).unwrap();
        let from = ErrorsFrom {
            from: ".".into(),
            strategy: None,
        };
        let mut caveats = Vec::new();
        let mix = from.error_mix(dir.path(), &mut caveats).unwrap();
        let named: Vec<(&str, f64)> = mix.into_iter().map(|(c, p)| (c.name(), p)).collect();
        assert_eq!(named, [("INTERNAL", 0.01), ("UNAVAILABLE", 0.05)]);
        assert!(caveats.is_empty(), "{caveats:?}");
    }
}
