//! Figure names: how the gate, the comparison and the report find a number in results.json.
//!
//! A figure is a dotted path into one strategy's object of `results.json`
//! (`latency_ms.e2e.p99`, `counts.succeeded`, `amplification.backend`, `status.UNAVAILABLE`),
//! or one of a few derived conveniences ([`DERIVED`]: `success_rate` = succeeded ÷ offered, ...).
//! Paths are resolved on the raw JSON, not on the typed [`Results`](crate::results::Results),
//! so a figure that a newer build adds (`backend.duplicate_side_effects`) can be gated and
//! compared the day it appears, without a change here.
//!
//! Three outcomes, kept apart because a gate treats them differently:
//! - a number ([`Resolved::Value`]);
//! - a figure the file knows but could not measure: `null` on the way, like
//!   `latency_ms.e2e_ok` with no successful call ([`Resolved::NotMeasured`]: the check fails);
//! - a name the file does not know ([`UnknownFigure`]: bad input, exit status 2).
//!
//! In the count maps (`status`, `attempts.status`, `attempts.per_call`) a missing key is a
//! count of zero: `status.UNAVAILABLE` of a run that saw no UNAVAILABLE is 0, not unknown.

use serde_json::Value;

/// Derived figures: name, meaning, and how each is computed from the strategy's object.
pub const DERIVED: [(&str, &str, Ratio); 3] = [
    (
        "success_rate",
        "calls that succeeded ÷ calls offered (0 to 1)",
        Ratio("counts.succeeded", "counts.offered"),
    ),
    (
        "failure_rate",
        "calls that failed ÷ calls offered (0 to 1)",
        Ratio("counts.failed", "counts.offered"),
    ),
    (
        "drop_rate",
        "calls dropped at max_in_flight ÷ calls offered (0 to 1)",
        Ratio("counts.dropped", "counts.offered"),
    ),
];

/// A derived figure: the quotient of two paths (not measured when the divisor is 0).
#[derive(Debug, Clone, Copy)]
pub struct Ratio(pub &'static str, pub &'static str);

/// Maps whose keys are data (status names, attempt numbers): a missing key counts 0.
const COUNT_MAPS: [&str; 3] = ["status", "attempts.status", "attempts.per_call"];

/// The value of a figure for one strategy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved {
    /// The figure's value (`true`/`false` read as 1/0).
    Value(f64),
    /// The file has the figure but no value for it (`null`: nothing to measure, or a target
    /// that could not report).
    NotMeasured,
}

impl Resolved {
    /// The value, if measured.
    pub fn value(self) -> Option<f64> {
        match self {
            Resolved::Value(v) => Some(v),
            Resolved::NotMeasured => None,
        }
    }
}

/// A figure name that does not name a number in the results file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a figure of results.json: {reason}")]
pub struct UnknownFigure {
    /// The name as given.
    pub name: String,
    /// Why, with the names that would have worked at that point.
    pub reason: String,
}

/// Resolves `name` in one strategy's JSON object.
pub fn resolve(strategy: &Value, name: &str) -> Result<Resolved, UnknownFigure> {
    if let Some((_, _, Ratio(num, den))) = DERIVED.iter().find(|(n, _, _)| *n == name) {
        let (num, den) = (resolve(strategy, num)?, resolve(strategy, den)?);
        return Ok(match (num, den) {
            (Resolved::Value(n), Resolved::Value(d)) if d > 0.0 => Resolved::Value(n / d),
            _ => Resolved::NotMeasured,
        });
    }
    let unknown = |reason: String| UnknownFigure {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return Err(unknown(
            "expected a dotted path such as `latency_ms.e2e.p99`".into(),
        ));
    }
    let mut here = strategy;
    let mut walked = String::new();
    for segment in name.split('.') {
        let next = match here {
            Value::Null => return Ok(Resolved::NotMeasured),
            Value::Object(map) => match map.get(segment) {
                Some(v) => v,
                None if COUNT_MAPS.contains(&walked.as_str()) => {
                    return count_key(&walked, segment)
                        .map(|()| Resolved::Value(0.0))
                        .map_err(unknown);
                }
                None => return Err(unknown(choices(&walked, map))),
            },
            Value::Array(items) => match segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(v) => v,
                None => {
                    return Err(unknown(format!(
                        "`{walked}` is a list of {} entries; expected an index below that",
                        items.len()
                    )));
                }
            },
            _ => {
                return Err(unknown(format!("`{walked}` is already a single value")));
            }
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(segment);
        here = next;
    }
    match here {
        Value::Number(n) => Ok(Resolved::Value(n.as_f64().unwrap_or(f64::NAN))),
        Value::Bool(b) => Ok(Resolved::Value(if *b { 1.0 } else { 0.0 })),
        Value::Null => Ok(Resolved::NotMeasured),
        Value::Object(map) => Err(unknown(format!(
            "it names a group, not a number; {}",
            choices(&walked, map)
        ))),
        Value::Array(_) => Err(unknown("it names a list, not a number".into())),
        Value::String(_) => Err(unknown("it names text, not a number".into())),
    }
}

/// Checks a key missing from a count map: a status name, or an attempt number.
fn count_key(map: &str, key: &str) -> Result<(), String> {
    if map == "attempts.per_call" {
        return key
            .parse::<u32>()
            .map(|_| ())
            .map_err(|_| format!("`{map}` is keyed by numbers of attempts (1, 2, ...)"));
    }
    match crate::protocol::status::parse_code(key) {
        Some(code) if crate::protocol::status::code_name(code) == key => Ok(()),
        Some(code) => Err(format!(
            "`{map}` is keyed by canonical status names: write `{map}.{}`",
            crate::protocol::status::code_name(code)
        )),
        None => Err(format!(
            "`{key}` is not a gRPC status; expected one of {}",
            crate::protocol::status::all_names()
        )),
    }
}

/// "`latency_ms.e2e` has: p50, p90, ..." for an error message.
fn choices(walked: &str, map: &serde_json::Map<String, Value>) -> String {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    if walked.is_empty() {
        keys.extend(DERIVED.iter().map(|(n, _, _)| *n));
    }
    let place = if walked.is_empty() {
        "a strategy".to_string()
    } else {
        format!("`{walked}`")
    };
    format!("{place} has {}", keys.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strategy() -> Value {
        json!({
            "counts": {"offered": 200, "succeeded": 190, "failed": 10},
            "status": {"OK": 190, "UNAVAILABLE": 10},
            "latency_ms": {"e2e": {"p99": 12.5}, "e2e_ok": null},
            "amplification": {"client": 1.05, "backend": null},
            "partial": false,
        })
    }

    #[test]
    fn paths_and_derived_figures_resolve() {
        let s = strategy();
        let v = |n| resolve(&s, n).unwrap();
        assert_eq!(v("latency_ms.e2e.p99"), Resolved::Value(12.5));
        assert_eq!(v("success_rate"), Resolved::Value(0.95));
        assert_eq!(v("partial"), Resolved::Value(0.0));
        assert_eq!(v("status.UNAVAILABLE"), Resolved::Value(10.0));
        assert_eq!(
            v("status.DEADLINE_EXCEEDED"),
            Resolved::Value(0.0),
            "a status never seen counts 0"
        );
    }

    #[test]
    fn null_on_the_way_is_not_measured() {
        let s = strategy();
        assert_eq!(
            resolve(&s, "latency_ms.e2e_ok.p99").unwrap(),
            Resolved::NotMeasured
        );
        assert_eq!(
            resolve(&s, "amplification.backend").unwrap(),
            Resolved::NotMeasured
        );
    }

    #[test]
    fn unknown_names_say_what_exists() {
        let s = strategy();
        let e = resolve(&s, "latency_ms.e2e.p98").unwrap_err();
        assert!(e.to_string().contains("`latency_ms.e2e` has p99"), "{e}");
        let e = resolve(&s, "latency_ms").unwrap_err();
        assert!(e.to_string().contains("a group"), "{e}");
        let e = resolve(&s, "backend.duplicate_side_effects").unwrap_err();
        assert!(e.to_string().contains("a strategy has"), "{e}");
        assert!(resolve(&s, "counts..offered").is_err());
        assert!(
            resolve(&s, "status.UNAVALABLE").is_err(),
            "a typo is not a zero"
        );
    }

    #[test]
    fn a_figure_added_later_resolves_generically() {
        let mut s = strategy();
        s["backend"] = json!({"duplicate_side_effects": 3});
        assert_eq!(
            resolve(&s, "backend.duplicate_side_effects").unwrap(),
            Resolved::Value(3.0)
        );
    }
}
