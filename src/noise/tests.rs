//! The noise models on strategies built second by second.

use super::*;
use crate::record::timeline::TimelineRow;

/// A strategy whose second `t` offered `offered` calls, of which `ok[t]` succeeded, with
/// `attempts[t]` attempts; `per_call`: calls by attempts made.
fn strategy(offered: u64, ok: &[u64], attempts: &[u64], per_call: &[(u32, u64)]) -> StrategyResult {
    let json = include_str!("../../tests/fixtures/run-a.json");
    let mut results: crate::results::Results = serde_json::from_str(json).unwrap();
    let mut s = results.strategies.remove(0);
    let n = offered * ok.len() as u64;
    let succeeded: u64 = ok.iter().sum();
    s.counts = crate::results::Counts {
        offered: n,
        sent: n,
        succeeded,
        failed: n - succeeded,
        dropped: 0,
        unfinished: 0,
    };
    s.goodput.fraction = succeeded as f64 / n as f64;
    s.timeline = ok
        .iter()
        .zip(attempts)
        .enumerate()
        .map(|(t, (&ok, &attempts))| TimelineRow {
            t: t as u64,
            offered,
            dropped: 0,
            succeeded: ok,
            failed: offered - ok,
            attempts,
            p50_ms: None,
            p99_ms: None,
            tokens: None,
            breaker: None,
        })
        .collect();
    s.attempts.per_call = per_call.iter().copied().collect();
    s.attempts.total = per_call.iter().map(|(k, c)| u64::from(*k) * c).sum();
    s
}

/// `seconds` seconds of `offered` calls each, `ok` of them successful, one attempt each.
fn steady(seconds: usize, offered: u64, ok: u64) -> StrategyResult {
    let n = offered * seconds as u64;
    strategy(
        offered,
        &vec![ok; seconds],
        &vec![offered; seconds],
        &[(1, n)],
    )
}

fn success(s: &StrategyResult) -> f64 {
    s.counts.succeeded as f64 / s.counts.offered as f64
}

fn differs(a: &StrategyResult, b: &StrategyResult, figure: &str, va: f64, vb: f64) -> bool {
    Pair::new(a, b).differs(figure, va, vb, 1).unwrap()
}

#[test]
fn shares_need_enough_calls_to_differ() {
    // 99% vs 98% of 100 calls: one call; of 100,000: a thousand.
    let (a, b) = (steady(1, 100, 99), steady(1, 100, 98));
    assert!(!differs(&a, &b, "success_rate", 0.99, 0.98));
    let (a, b) = (steady(100, 1000, 990), steady(100, 1000, 980));
    assert!(differs(&a, &b, "success_rate", 0.99, 0.98));
    // Every call of ten against none: no variance in either, any change counts.
    let (a, b) = (steady(1, 10, 10), steady(1, 10, 0));
    assert!(differs(&a, &b, "success_rate", 1.0, 0.0));
}

#[test]
fn a_burst_is_one_event_and_the_same_loss_spread_out_is_many() {
    // 30 seconds of 300 calls, 98% successful. B loses 2% more calls, either all in two
    // seconds (an overload spike: what another seed can move) or spread over every second.
    let calm = steady(30, 300, 294);
    let burst_ok: Vec<u64> = (0..30)
        .map(|t| if t == 10 || t == 11 { 204 } else { 294 })
        .collect();
    let spread_ok = [288; 30];
    let burst = strategy(300, &burst_ok, &[300; 30], &[(1, 9000)]);
    let spread = strategy(300, &spread_ok, &[300; 30], &[(1, 9000)]);
    assert_eq!(burst.counts.succeeded, spread.counts.succeeded);
    let (s0, s1) = (success(&calm), success(&burst));
    // Binomially, 180 more failures of 9,000 is beyond noise (z about 5.5)...
    assert!(binomial(s0, 9000.0) > 0.0);
    assert!((s0 - s1) / (binomial(s0, 9000.0) + binomial(s1, 9000.0)).sqrt() > 5.0);
    // ...but two seconds are two events.
    assert!(!differs(&calm, &burst, "success_rate", s0, s1));
    assert!(differs(&calm, &spread, "success_rate", s0, s1));
    // The burst's clustering is lent to figures the timeline does not count per second.
    assert!(Pair::new(&calm, &burst).design_effect() > 10.0);
    assert!(Pair::new(&calm, &spread).design_effect() < 2.0);
}

#[test]
fn attempts_per_call_with_no_retries_have_no_noise() {
    // 100,000 calls in 100 seconds: one attempt each, then 1% of calls retried once, spread
    // evenly. Poisson on the attempts received would call 1.00 -> 1.01 noise (z = 2.2).
    let none = strategy(1000, &[1000; 100], &[1000; 100], &[(1, 100_000)]);
    let some = strategy(1000, &[1000; 100], &[1010; 100], &[(1, 99_000), (2, 1000)]);
    assert!(differs(&none, &some, "amplification.client", 1.0, 1.01));
    assert!(differs(
        &none,
        &some,
        "attempts.total",
        100_000.0,
        101_000.0
    ));
    assert!(!differs(
        &none,
        &none.clone(),
        "amplification.client",
        1.0,
        1.0
    ));
}

#[test]
fn event_counts_differ_beyond_their_poisson_noise() {
    let (a, b) = (steady(9, 200, 200), steady(9, 200, 200));
    let dup = "backend.duplicate_side_effects";
    assert!(!differs(&a, &b, dup, 56.0, 84.0), "a seed's worth");
    assert!(differs(&a, &b, dup, 0.0, 201.0));
    assert!(!differs(&a, &b, dup, 0.0, 0.0));
    assert!(differs(&a, &b, "breaker.short_circuited", 1000.0, 3000.0));
    assert_eq!(
        Pair::new(&a, &b).differs(dup, 1.5, 2.0, 1),
        None,
        "not a count"
    );
}

#[test]
fn gauges_and_fixed_figures_have_no_model() {
    let (a, b) = (steady(9, 200, 200), steady(9, 200, 200));
    let pair = Pair::new(&a, &b);
    assert_eq!(
        pair.differs("backend.queue_high_water", 10.0, 80.0, 1),
        None
    );
    assert_eq!(pair.differs("generator.lag_ms.p99", 0.1, 5.0, 1), None);
    assert_eq!(pair.differs("counts.offered", 1800.0, 1900.0, 1), None);
    assert_eq!(
        pair.differs("backend.queue_high_water", 10.0, 10.0, 1),
        Some(false)
    );
}

#[test]
fn a_family_of_figures_asks_more_of_each() {
    // 99% against 98.85% of 100,000 calls, z of about 3.2: beyond 2.576 alone, within 3.72
    // for fifty figures.
    let a = steady(100, 1000, 990);
    let ok: Vec<u64> = (0..100).map(|t| 988 + t % 2).collect();
    let b = strategy(1000, &ok, &[1000; 100], &[(1, 100_000)]);
    let (sa, sb) = (success(&a), success(&b));
    let pair = Pair::new(&a, &b);
    assert_eq!(pair.differs("success_rate", sa, sb, 1), Some(true));
    assert_eq!(pair.differs("success_rate", sa, sb, 50), Some(false));
}

#[test]
fn a_latency_ten_times_longer_differs_and_a_lone_p999_cannot() {
    let mut fast = Hist::new();
    let mut slow = Hist::new();
    for i in 0..3000u64 {
        fast.record(std::time::Duration::from_micros(1000 + i));
        slow.record(std::time::Duration::from_micros(10_000 + 10 * i));
    }
    let mut a = steady(10, 300, 300);
    let mut b = steady(10, 300, 300);
    a.histograms.e2e_ok = fast.encode();
    b.histograms.e2e_ok = slow.encode();
    let q = |h: &Hist, q| h.quantile_ms(q);
    // Every second of the slow run is slow.
    for r in &mut b.timeline {
        r.p99_ms = Some(q(&slow, 0.99));
    }
    let pair = Pair::new(&a, &b);
    let p50 = (q(&fast, 0.5), q(&slow, 0.5));
    let median = "latency_ms.e2e_ok.p50";
    assert_eq!(pair.differs(median, p50.0, p50.1, 40), Some(true));
    // The p99.9 of 3,000 calls: three calls above it, no bound above the largest.
    let p999 = (q(&fast, 0.999), q(&slow, 0.999));
    let tail = "latency_ms.e2e_ok.p999";
    assert_eq!(pair.differs(tail, p999.0, p999.1, 1), Some(false));
    // The same histograms, but the slow run's slow calls all in one second of ten (a spike):
    // one event, not judged.
    for (t, r) in b.timeline.iter_mut().enumerate() {
        r.p99_ms = Some(if t == 5 { q(&slow, 0.99) } else { 1.0 });
    }
    let pair = Pair::new(&a, &b);
    assert_eq!(pair.differs(median, p50.0, p50.1, 40), Some(false));
    // Two strategies of one run meet the same spike: judged as calls.
    let same = Pair::same_run(&a, &b);
    assert_eq!(same.differs(median, p50.0, p50.1, 40), Some(true));
}
