//! Which backend a `resilbench serve` is serving, told to its clients through the Control
//! service (`BackendStats.served_json`), so that a run against it can say when the backend it
//! meets is not the one its own profile describes, and its report can describe the backend
//! that actually ran.
//!
//! The description is the part of a plan that shapes the backend's answers: the `seed` (its
//! draws are keyed by it), the `[backend]` and the `[[phases]]`, resolved, as JSON.

use serde_json::{Value, json};

use crate::profile::Plan;

/// The served part of `plan`, as JSON.
pub fn describe(plan: &Plan) -> Value {
    json!({
        "seed": plan.seed,
        "backend": plan.backend,
        "phases": plan.phases,
    })
}

/// The parts of `profile` (a plan as JSON, as results.json keeps it) that differ from the
/// `served` description: `seed`, `backend`, `phases`.
pub fn differences(profile: &Value, served: &Value) -> Vec<&'static str> {
    ["seed", "backend", "phases"]
        .into_iter()
        .filter(|k| {
            let mine = profile.get(*k).cloned().unwrap_or(Value::Null);
            let theirs = served.get(*k).cloned().unwrap_or(Value::Null);
            // An absent list is an empty one.
            let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
            mine != theirs && !(empty(&mine) && empty(&theirs))
        })
        .collect()
}

/// The warning for a run of `plan` against a target that serves `served_json` (from its
/// Control service's reply; empty from older servers), when they differ. The run says it once
/// (every strategy's reset gets the same answer); this function keeps no state, so a second
/// run in one process warns again.
pub fn warning(plan: &Plan, target: &str, served_json: &str) -> Option<String> {
    let served: Value = serde_json::from_str(served_json).ok()?;
    let mine = serde_json::to_value(plan).ok()?;
    let parts = differences(&mine, &served);
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "warning: the target {target} serves another backend than this profile's (it differs \
         in: {}): was `serve` started with another profile? The report describes the backend \
         the target served",
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_profile_differs_where_it_differs() {
        let plan = |latency: &str, seed: u64| {
            crate::profile::parse(
                &format!(
                    "seed = {seed}\n[load]\nrate = 10\nduration = \"2s\"\n[backend]\nlatency = \"{latency}\"\n\
                     [[strategies]]\nname = \"a\"\n"
                ),
                "t.toml",
                "t",
                &Default::default(),
            )
            .unwrap()
        };
        let mine = serde_json::to_value(plan("2ms", 1)).unwrap();
        assert!(differences(&mine, &describe(&plan("2ms", 1))).is_empty());
        assert_eq!(differences(&mine, &describe(&plan("5ms", 1))), ["backend"]);
        assert_eq!(differences(&mine, &describe(&plan("2ms", 7))), ["seed"]);
        // No state kept between runs: a second run in this process is warned too.
        let served = describe(&plan("5ms", 1)).to_string();
        for _ in 0..2 {
            let w = warning(&plan("2ms", 1), "t:1", &served).unwrap();
            assert!(w.contains("it differs in: backend"), "{w}");
        }
        assert!(
            warning(
                &plan("2ms", 1),
                "t:1",
                &describe(&plan("2ms", 1)).to_string()
            )
            .is_none()
        );
    }
}
