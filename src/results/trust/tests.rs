//! The trust rules' words, against a golden run's strategies.

use super::*;
use crate::results::Lag;

/// The quickstart's strategies as its golden file keeps them (its environment is redacted).
fn quickstart() -> Vec<StrategyResult> {
    let text = include_str!("../../../tests/golden/quickstart.results.json");
    let doc: serde_json::Value = serde_json::from_str(text).expect("the golden file reads");
    serde_json::from_value(doc["strategies"].clone()).expect("its strategies read")
}

fn floor(p99: f64, quantum: f64) -> TimerFloor {
    TimerFloor {
        wake_overshoot_ms: Lag {
            p50: p99 / 4.0,
            p99,
            max: 2.0 * p99,
        },
        samples: 600,
        calibrated_s: 0.3,
        wake_quantum_ms: quantum,
    }
}

fn lagging(lag_p99: f64) -> StrategyResult {
    let mut s = quickstart().remove(0);
    s.generator.lag_ms.p99 = lag_p99;
    s
}

#[test]
fn a_lag_within_the_machines_floor_is_said_to_be_the_machines() {
    let s = lagging(1.5);
    let w = warnings(std::slice::from_ref(&s), false, Some(&floor(1.6, 0.1)));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("within this machine's floor of 1.70 ms"),
        "{}",
        w[0]
    );
    assert!(!w[0].contains("fell behind"), "{}", w[0]);
    // Still flagged: the figures carry the lag whoever caused it.
    assert!(!strategy_checks(&s)[0].ok);
}

#[test]
fn a_lag_above_the_floor_is_the_generators() {
    let s = lagging(5.0);
    let w = warnings(std::slice::from_ref(&s), false, Some(&floor(0.2, 0.1)));
    assert!(w[0].contains("fell behind its schedule"), "{}", w[0]);
    assert!(w[0].contains("own floor is 0.30 ms"), "{}", w[0]);
}

#[test]
fn the_lag_is_put_against_the_e2e_median() {
    let s = lagging(5.0);
    let p50 = s
        .latency_ms
        .e2e
        .as_ref()
        .expect("quickstart has latencies")
        .p50;
    let w = warnings(std::slice::from_ref(&s), false, None);
    let share = format!("{:.0}% of the e2e p50 ({p50:.2} ms)", 500.0 / p50);
    assert!(w[0].contains(&share), "{} lacks {share}", w[0]);
}

#[test]
fn a_strategy_whose_every_call_was_unimplemented_is_said_to_measure_nothing() {
    let mut s = lagging(0.0);
    s.status = [("UNIMPLEMENTED".to_string(), 20)].into_iter().collect();
    let w = warnings(std::slice::from_ref(&s), false, None);
    assert!(
        w.iter()
            .any(|w| w.contains("every call (20) failed UNIMPLEMENTED")),
        "{w:?}"
    );
    // One call that got through is a measurement, however bad.
    s.status.insert("OK".into(), 1);
    let w = warnings(std::slice::from_ref(&s), false, None);
    assert!(!w.iter().any(|w| w.contains("UNIMPLEMENTED")), "{w:?}");
}

#[test]
fn ones_own_service_is_said_not_asked_rather_than_without_control() {
    let mut s = lagging(0.0);
    s.backend = None;
    s.backend_gap = Some(BackendGap::NotAsked);
    let words = backend_unknown(std::slice::from_ref(&s)).expect("said");
    assert!(words.contains("your own service"), "{words}");
    assert!(!words.contains("no Control service"), "{words}");
    let w = warnings(std::slice::from_ref(&s), false, None);
    assert!(!w.iter().any(|w| w.contains("no Control service")), "{w:?}");
}

#[test]
fn a_single_strategy_is_not_said_to_be_unreset_between_strategies() {
    let mut s = lagging(0.0);
    s.backend = None;
    s.backend_gap = Some(BackendGap::NoControl);
    let one = warnings(std::slice::from_ref(&s), false, None);
    assert!(
        one.iter().any(|w| w.contains("no Control service")),
        "{one:?}"
    );
    assert!(
        !one.iter().any(|w| w.contains("between strategies")),
        "{one:?}"
    );
    let two = warnings(&[s.clone(), s], false, None);
    assert!(
        two.iter()
            .any(|w| w.contains("not reset between strategies")),
        "{two:?}"
    );
}

#[test]
fn streams_that_waited_for_a_slot_are_said_with_their_share() {
    let mut s = lagging(0.0);
    let w = warnings(std::slice::from_ref(&s), false, None);
    assert!(!w.iter().any(|w| w.contains("free slot")), "{w:?}");
    // 390 attempts and 10 streams sent again inside them: 400 streams.
    s.attempts.total = 390;
    s.attempts.transparent = 10;
    s.attempts.slot_waits = 30;
    let w = warnings(std::slice::from_ref(&s), false, None);
    assert!(
        w.iter()
            .any(|w| w.contains("30 streams (7.5% of them) waited")
                && w.contains("SETTINGS_MAX_CONCURRENT_STREAMS")
                && w.contains("load.connections")),
        "{w:?}"
    );
}
