//! A profile's gate, checked when the profile is loaded: every figure it names must be one
//! that [`crate::figure::resolve`] will find in the run's results.
//!
//! A misspelt figure (`latency_ms.e2e.p98`) used to be found after the run, by `check`: a
//! ten-minute run for an error a second could have shown. The names are resolved here on the
//! shape of one strategy's object of results.json as this build writes it for that strategy
//! (a breaker's figures only for a strategy with a breaker, a stream's for a streaming
//! profile), built from the results types themselves so that it cannot drift from the file.
//! A path into a list (`timeline.3.succeeded`) is accepted: its length is known only after
//! the run.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::backend::BackendStats;
use crate::figure::{self, UnknownFigure};
use crate::profile::error::{FieldPath, Seg};
use crate::profile::{LayerPlan, Method, Plan, StrategyPlan};
use crate::record::histogram::LatencySummary;
use crate::results::{
    Amplification, Attempts, BreakerFigures, Counts, FanOutFigures, Generator, Goodput, Histograms,
    Lag, Latencies, StrategyResult, StreamFigures,
};

/// The shape of `strategy`'s object in the results of `plan`, every figure zero.
pub fn template(plan: &Plan, strategy: &StrategyPlan) -> Value {
    let has = |f: fn(&LayerPlan) -> bool| strategy.layers.iter().any(f);
    let breaker = has(|l| matches!(l, LayerPlan::Pybreaker(_) | LayerPlan::Resilience4j(_)));
    let fan_out = has(|l| matches!(l, LayerPlan::FanOut(_)));
    let latency = LatencySummary {
        count: 0,
        p50: 0.0,
        p90: 0.0,
        p99: 0.0,
        p999: 0.0,
        max: 0.0,
        mean: 0.0,
    };
    let lag = Lag {
        p50: 0.0,
        p99: 0.0,
        max: 0.0,
    };
    let result = StrategyResult {
        name: strategy.name.clone(),
        partial: false,
        start_ms: 0,
        duration_s: 0.0,
        counts: Counts::default(),
        status: BTreeMap::new(),
        attempts: Attempts::default(),
        amplification: Amplification {
            client: 0.0,
            backend: Some(0.0),
        },
        latency_ms: Latencies {
            e2e: Some(latency),
            e2e_ok: Some(latency),
            attempt: Some(latency),
        },
        goodput: Goodput {
            per_second: 0.0,
            fraction: 0.0,
        },
        generator: Generator {
            lag_ms: lag,
            interval_error_ms: Some(lag),
            offered_rate: 0.0,
            achieved_rate: 0.0,
        },
        histograms: Histograms {
            e2e: String::new(),
            e2e_ok: String::new(),
            attempt: String::new(),
            lag: String::new(),
            interval_error: Some(String::new()),
            sub_call: fan_out.then(String::new),
        },
        timeline: Vec::new(),
        backend: Some(BackendStats::default()),
        backend_gap: None,
        stream: (plan.load.method == Method::Stream).then(StreamFigures::default),
        fan_out: fan_out.then(|| FanOutFigures {
            latency_ms: Some(latency),
            ..FanOutFigures::default()
        }),
        breaker: breaker.then(BreakerFigures::default),
        intervals: Vec::new(),
    };
    serde_json::to_value(result).expect("results always serialize")
}

/// Whether `e` says only that a list is shorter than the run's will be.
fn into_a_list(e: &UnknownFigure) -> bool {
    e.reason.contains("is a list of")
}

/// Checks every figure the plan's gate names against the strategies it applies to; the
/// error names the gate's field and what the name could have been.
pub fn check_plan(plan: &Plan) -> Result<(), (FieldPath, String)> {
    let Some(gate) = &plan.gate else {
        return Ok(());
    };
    for (field, name) in gate.figure_fields() {
        // `gate.strategies.NAME.…` applies to one strategy; the rest to every one.
        let only = match field.0.get(1..3) {
            Some([Seg::Key(k), Seg::Key(s)]) if k == "strategies" => Some(s.as_str()),
            _ => None,
        };
        for s in plan
            .strategies
            .iter()
            .filter(|s| only.is_none_or(|o| o == s.name))
        {
            match figure::resolve(&template(plan, s), name) {
                Err(e) if !into_a_list(&e) => {
                    let whose = if only.is_some() {
                        String::new()
                    } else {
                        format!(
                            " (for strategy `{}`; a figure only some strategies have goes under [gate.strategies.NAME])",
                            s.name
                        )
                    };
                    return Err((field, format!("{e}{whose}")));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(gate: &str) -> Plan {
        let text = format!(
            "[load]\nrate = 10\nduration = \"2s\"\n[[strategies]]\nname = \"plain\"\n\
             [[strategies]]\nname = \"breaker\"\n[[strategies.layers]]\nkind = \"pybreaker\"\n\
             fail_max = 3\nreset_timeout = \"1s\"\n{gate}"
        );
        crate::profile::parse(&text, "t.toml", "t", &Default::default()).unwrap()
    }

    #[test]
    fn names_are_checked_against_each_strategys_shape() {
        let ok = plan(
            "[gate.limits]\n\"latency_ms.e2e.p99\" = \"<= 1\"\n\"status.UNAVAILABLE\" = \"== 0\"\n\
             \"backend.duplicate_side_effects\" = \"== 0\"\n\"timeline.3.succeeded\" = \">= 0\"\n\
             [gate.strategies.breaker.limits]\n\"breaker.opened\" = \"<= 3\"\n",
        );
        assert_eq!(check_plan(&ok), Ok(()));
        let (field, message) =
            check_plan(&plan("[gate.limits]\n\"latency_ms.e2e.p98\" = \"<= 1\"\n")).unwrap_err();
        assert_eq!(field.to_string(), "gate.limits.latency_ms.e2e.p98");
        assert!(message.contains("`latency_ms.e2e` has count"), "{message}");
        let (_, message) =
            check_plan(&plan("[gate.limits]\n\"breaker.opened\" = \"<= 1\"\n")).unwrap_err();
        assert!(message.contains("for strategy `plain`"), "{message}");
    }
}
