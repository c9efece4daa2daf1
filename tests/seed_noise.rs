//! The yardstick of `compare` and of the default regression gate: a seed change alone draws
//! the same profile again, so on every shipped profile it must flag nothing WORSE and fail no
//! budget; real regressions (a backend ten times slower, a strategy that loses 5% of its calls,
//! a retry storm that was not there) must still be flagged and fail the gate.

use std::collections::BTreeSet;

use resilbench::compare::{self, DEFAULT_THRESHOLD, Flag};
use resilbench::document::ResultsDoc;
use resilbench::gate::{self, evaluate::Named};
use resilbench::profile::shipped::SHIPPED;
use resilbench::profile::{self, Overrides, Plan};

use crate::common::run_virtual;

/// Runs of one profile with several seeds.
const SEEDS: u64 = 6;

fn parse(text: &str, name: &str) -> Plan {
    profile::parse(text, &format!("{name}.toml"), name, &Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run(plan: &Plan) -> ResultsDoc {
    ResultsDoc::from_results(run_virtual(plan))
}

/// The rows of `b` against `a` flagged WORSE, as text.
fn worse(a: &ResultsDoc, b: &ResultsDoc) -> Vec<String> {
    compare::compare(a, b, DEFAULT_THRESHOLD)
        .rows
        .iter()
        .filter(|r| r.flag == Flag::Worse)
        .map(|r| format!("{} {}: {:?} -> {:?}", r.strategy, r.label, r.a, r.b))
        .collect()
}

/// The checks of the default regression gate that fail for `run` against `baseline`.
fn gate_failures(baseline: &ResultsDoc, run: &ResultsDoc) -> Vec<String> {
    let named = |doc| Named {
        doc,
        file: "r.json",
    };
    let v = gate::evaluate(
        &gate::default_regression(),
        named(run),
        Some(named(baseline)),
    )
    .unwrap();
    v.checks
        .iter()
        .filter(|c| c.outcome == gate::Outcome::Fail)
        .map(|c| format!("{} {}: {} ({})", c.strategy, c.figure, c.value, c.limit))
        .collect()
}

/// Every shipped profile that runs strategies, run with [`SEEDS`] seeds; five seed pairs each,
/// compared both ways: nothing WORSE, no budget of the default regression gate failed.
#[test]
fn a_seed_change_alone_is_noise_on_every_shipped_profile() {
    let profiles: Vec<(&str, Plan)> = SHIPPED
        .iter()
        .map(|s| (s.name, parse(s.text, s.name)))
        .filter(|(_, p)| !p.strategies.is_empty())
        .collect();
    assert!(profiles.len() >= 10, "{}", profiles.len());
    let found: Vec<String> = std::thread::scope(|scope| {
        let halves: Vec<_> = [0, 1]
            .into_iter()
            .map(|half| {
                let profiles = &profiles;
                scope.spawn(move || {
                    let mut found = Vec::new();
                    for (name, p) in profiles.iter().skip(half).step_by(2) {
                        let runs: Vec<ResultsDoc> = (0..SEEDS)
                            .map(|k| {
                                let mut q = p.clone();
                                q.seed = p.seed + 1000 * (k + 1);
                                run(&q)
                            })
                            .collect();
                        for pair in runs.windows(2) {
                            for (a, b) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])] {
                                let seeds = format!(
                                    "{name} seed {} -> {}",
                                    a.results.profile["seed"], b.results.profile["seed"]
                                );
                                for w in worse(a, b) {
                                    found.push(format!("{seeds}: compare WORSE {w}"));
                                }
                                for f in gate_failures(a, b) {
                                    found.push(format!("{seeds}: gate FAIL {f}"));
                                }
                            }
                        }
                    }
                    found
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(found.is_empty(), "{found:#?}");
}

fn shipped(name: &str) -> &'static str {
    profile::shipped::find(name).unwrap().text
}

/// The strategies whose `label` row is flagged WORSE.
fn worse_in(a: &ResultsDoc, b: &ResultsDoc, label: &str) -> BTreeSet<String> {
    compare::compare(a, b, DEFAULT_THRESHOLD)
        .rows
        .iter()
        .filter(|r| r.label == label && r.flag == Flag::Worse)
        .map(|r| r.strategy.clone())
        .collect()
}

fn names(p: &Plan) -> BTreeSet<String> {
    p.strategies.iter().map(|s| s.name.clone()).collect()
}

/// A backend ten times slower: every strategy's p50 and p99 are WORSE, with the same seed and
/// with another one, and the default regression gate fails.
#[test]
fn a_backend_ten_times_slower_is_flagged() {
    let text = shipped("quickstart");
    let slow_text = text.replace(
        r#"latency = { dist = "lognormal", median = "2ms", p99 = "40ms" }"#,
        r#"latency = { dist = "lognormal", median = "20ms", p99 = "400ms" }"#,
    );
    assert_ne!(text, slow_text);
    let base = parse(text, "quickstart");
    let slow = parse(&slow_text, "quickstart");
    let mut slow_other_seed = slow.clone();
    slow_other_seed.seed += 1000;
    let a = run(&base);
    for b in [run(&slow), run(&slow_other_seed)] {
        for label in ["p50 ms", "p99 ms"] {
            assert_eq!(worse_in(&a, &b, label), names(&base), "{label}");
        }
        let failed = gate_failures(&a, &b);
        for s in names(&base) {
            assert!(
                failed
                    .iter()
                    .any(|f| f.starts_with(&format!("{s} latency_ms.e2e_ok.p50"))),
                "{s}: {failed:#?}"
            );
        }
    }
}

/// A strategy that stops retrying loses the 5% of calls whose replies the idempotency profile's
/// backend loses: WORSE success and goodput, and a failed gate, with the same seed and with
/// another one.
#[test]
fn a_strategy_that_loses_five_percent_of_its_calls_is_flagged() {
    let text = shipped("idempotency");
    let base = parse(text, "idempotency");
    let mut broken = base.clone();
    let i = broken
        .strategies
        .iter()
        .position(|s| s.name == "retry-with-key")
        .unwrap();
    let one_try = base
        .strategies
        .iter()
        .find(|s| s.name == "no-retry")
        .unwrap();
    broken.strategies[i].layers = one_try.layers.clone();
    let mut broken_other_seed = broken.clone();
    broken_other_seed.seed += 1000;
    let a = run(&base);
    for b in [run(&broken), run(&broken_other_seed)] {
        let lost = b.results.strategies[i].counts.failed as f64
            / b.results.strategies[i].counts.offered as f64;
        assert!((0.04..0.06).contains(&lost), "{lost}");
        for label in ["success", "goodput/s"] {
            assert_eq!(
                worse_in(&a, &b, label),
                BTreeSet::from(["retry-with-key".to_string()]),
                "{label}"
            );
        }
        let failed = gate_failures(&a, &b);
        assert!(
            failed
                .iter()
                .any(|f| f.starts_with("retry-with-key success_rate")),
            "{failed:#?}"
        );
    }
}

/// The clustered profile too: in retry-storm, gRPC retries that stop retrying UNAVAILABLE lose
/// the 2% blip all along the run. Failures come in bursts there, but this loss is spread over
/// every second: with the same seed it is flagged.
#[test]
fn a_loss_spread_over_a_clustered_run_is_flagged() {
    let text = shipped("retry-storm");
    let blip_kept = r#"retryable_status_codes = ["UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"]
throttle"#;
    let blip_lost = r#"retryable_status_codes = ["RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"]
throttle"#;
    assert!(text.contains(blip_kept));
    let a = run(&parse(text, "retry-storm"));
    let b = run(&parse(&text.replace(blip_kept, blip_lost), "retry-storm"));
    assert!(worse_in(&a, &b, "success").contains("grpc-a6"));
    let failed = gate_failures(&a, &b);
    assert!(
        failed.iter().any(|f| f.starts_with("grpc-a6 success_rate")),
        "{failed:#?}"
    );
}

/// A retry storm that was not there: grpc-a6 loses its retry throttle. Its success falls and
/// its backend load grows, beyond the noise of this clustered profile, with the same seed and
/// with another one.
#[test]
fn a_retry_storm_that_was_not_there_is_flagged() {
    let text = shipped("retry-storm");
    let base = parse(text, "retry-storm");
    let mut storm = base.clone();
    let i = storm
        .strategies
        .iter()
        .position(|s| s.name == "grpc-a6")
        .unwrap();
    let unthrottled = base
        .strategies
        .iter()
        .find(|s| s.name == "grpc-a6-no-throttle")
        .unwrap();
    storm.strategies[i].layers = unthrottled.layers.clone();
    let mut storm_other_seed = storm.clone();
    storm_other_seed.seed += 1000;
    let a = run(&base);
    for b in [run(&storm), run(&storm_other_seed)] {
        for label in ["success", "backend amp"] {
            assert!(
                worse_in(&a, &b, label).contains("grpc-a6"),
                "{label}: {:#?}",
                compare::compare(&a, &b, DEFAULT_THRESHOLD)
                    .rows
                    .iter()
                    .filter(|r| r.strategy == "grpc-a6")
                    .collect::<Vec<_>>()
            );
        }
        let failed = gate_failures(&a, &b);
        assert!(
            failed.iter().any(|f| f.starts_with("grpc-a6 success_rate")),
            "{failed:#?}"
        );
    }
}
