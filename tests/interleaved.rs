//! `load.order = "interleaved"` in virtual time: the one schedule split between the
//! strategies by a keyed draw, exactly and reproducibly, and each strategy's figures from its
//! own calls only.

use std::collections::BTreeMap;

use resilbench::driver::order::lane;
use resilbench::driver::schedule::Schedule;
use resilbench::record::histogram::Hist;
use resilbench::results::{Results, StrategyResult};

use crate::common::{plan, resilbench, run_virtual, stderr};

/// A backend without capacity limits (so one call's fate cannot depend on another's), with
/// errors and a long tail, and three identical strategies with a retry policy.
fn profile(order: &str, strategies: usize) -> String {
    let mut text = format!(
        r#"name = "split"
seed = 5
[load]
arrival = "poisson"
rate = 400
duration = "20s"
warmup = "2s"
deadline = "300ms"
order = "{order}"
[backend]
latency = {{ dist = "lognormal", median = "3ms", p99 = "40ms" }}
errors = {{ UNAVAILABLE = 0.1, INTERNAL = 0.02 }}
[[phases]]
kind = "outage"
start = "8s"
duration = "3s"
"#
    );
    for i in 0..strategies {
        text.push_str(&format!(
            "[[strategies]]\nname = \"s{i}\"\nlayers = [{{ kind = \"grpc_retry\", \
             max_attempts = 3, initial_backoff = \"10ms\", max_backoff = \"50ms\", \
             backoff_multiplier = 2, retryable_status_codes = [\"UNAVAILABLE\"] }}]\n"
        ));
    }
    text
}

/// The calls of the measured window each strategy should get: the schedule's, by the draw.
fn expected_split(p: &resilbench::profile::Plan) -> Vec<u64> {
    let mut each = vec![0u64; p.strategies.len()];
    for (id, offset) in Schedule::new(&p.load, &p.phases, p.seed).enumerate() {
        if offset >= p.load.warmup {
            each[lane(p.seed, id as u64, p.strategies.len())] += 1;
        }
    }
    each
}

fn add_maps(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// The per-call figures of several strategies added up: counts, statuses, attempts, the
/// end-to-end histogram, the timeline's counts.
type Sums = (
    Vec<u64>,
    BTreeMap<String, u64>,
    Vec<(u64, u64)>,
    Vec<[u64; 5]>,
);

fn summed(strategies: &[StrategyResult]) -> Sums {
    let mut counts = vec![0u64; 6];
    let (mut status, mut hist) = (BTreeMap::new(), Hist::new());
    let mut rows: BTreeMap<u64, [u64; 5]> = BTreeMap::new();
    for s in strategies {
        let c = &s.counts;
        for (sum, v) in counts.iter_mut().zip([
            c.offered,
            c.sent,
            c.succeeded,
            c.failed,
            s.attempts.total,
            s.attempts.retries,
        ]) {
            *sum += v;
        }
        add_maps(&mut status, &s.status);
        hist.add(&Hist::decode(&s.histograms.e2e).unwrap());
        for r in &s.timeline {
            let row = rows.entry(r.t).or_default();
            for (sum, v) in
                row.iter_mut()
                    .zip([r.offered, r.dropped, r.succeeded, r.failed, r.attempts])
            {
                *sum += v;
            }
        }
    }
    // Every recorded value and its count (encodings of equal histograms may differ in size).
    let values = hist
        .inner()
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    (counts, status, values, rows.into_values().collect())
}

/// Each strategy is offered exactly the calls the keyed draw gives it, and no call twice:
/// together they are the schedule's. Two runs are identical to the byte.
#[test]
fn the_schedule_is_split_exactly_and_reproducibly() {
    let p = plan(&profile("interleaved", 3));
    let (a, b) = (run_virtual(&p), run_virtual(&p));
    let json = |r: &Results| serde_json::to_string(&r.strategies).unwrap();
    assert_eq!(json(&a), json(&b));
    let want = expected_split(&p);
    let got: Vec<u64> = a.strategies.iter().map(|s| s.counts.offered).collect();
    assert_eq!(got, want);
    // About a third each, and each strategy's offered rate is its share of the 400/s.
    for s in &a.strategies {
        assert!(
            (2_150..=2_650).contains(&s.counts.offered),
            "{:?}",
            s.counts
        );
        let share = 400.0 * s.counts.offered as f64 / want.iter().sum::<u64>() as f64;
        assert!(
            (s.generator.offered_rate - share).abs() < 1.0,
            "{}",
            s.generator.offered_rate
        );
        // Strategies in one interleaved run started together.
        assert_eq!(s.start_ms, a.strategies[0].start_ms);
        // One backend for all: its figures are the run's, said in a warning, not per strategy.
        assert!(s.backend.is_none());
        assert_eq!(
            s.backend_gap,
            Some(resilbench::results::trust::BackendGap::Shared)
        );
    }
    assert!(
        a.warnings
            .iter()
            .any(|w| w.starts_with("the strategies ran interleaved against one backend")),
        "{:?}",
        a.warnings
    );
}

/// With a backend that has no shared state (no workers, no queue: each call's fate is its own
/// keyed draws), three identical strategies interleaved add up to one strategy given every
/// call in turn: the same calls, statuses, attempts, latencies to the microsecond, and per
/// second. The split changes who records a call, never what happens to it.
#[test]
fn interleaved_strategies_add_up_to_the_sequential_run() {
    let interleaved = run_virtual(&plan(&profile("interleaved", 3)));
    let sequential = run_virtual(&plan(&profile("sequential", 1)));
    assert_eq!(
        summed(&interleaved.strategies),
        summed(&sequential.strategies)
    );
    // The outage's calls are in there: the retries met it.
    let s = &sequential.strategies[0];
    assert!(s.attempts.retries > 1_000, "{:?}", s.attempts);
}

/// Strategies in turn with a cooldown: each later strategy starts that much later, and meets
/// exactly what it met without one (a fresh backend each time: the pause changes nothing but
/// the clock, which is why it is 0 by default for the embedded backend).
#[test]
fn a_cooldown_delays_each_next_strategy_and_changes_nothing_else() {
    let without = run_virtual(&plan(&profile("sequential", 3)));
    let text = profile("sequential", 3).replace("order = \"sequential\"", "cooldown = \"7s\"");
    let with = run_virtual(&plan(&text));
    for (i, (a, b)) in without.strategies.iter().zip(&with.strategies).enumerate() {
        assert_eq!(b.start_ms - a.start_ms, 7_000 * i as u64, "{}", a.name);
        let mut b = b.clone();
        b.start_ms = a.start_ms;
        assert_eq!(&b, a);
    }
}

/// What a run says while it goes (plain lines, stderr not a terminal): in turn, each strategy
/// "[i/n]" with the cooldown before the next; interleaved, one duration for the whole run
/// and no "[1/3]".
#[test]
fn progress_says_the_order_and_the_cooldowns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = |order: &str| {
        format!(
            "[load]\nrate = 20\nduration = \"6s\"\norder = \"{order}\"\n\
             [[strategies]]\nname = \"a\"\n[[strategies]]\nname = \"b\"\n[[strategies]]\nname = \"c\"\n"
        )
    };
    let said = |order: &str, extra: &[&str]| {
        std::fs::write(d.join("p.toml"), text(order)).unwrap();
        let mut args = vec![
            "run", "p.toml", "--clock", "virtual", "--out", order, "--force",
        ];
        args.extend_from_slice(extra);
        let out = resilbench(&args, d);
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        err
    };
    let err = said("interleaved", &[]);
    assert!(
        err.contains("3 strategies interleaved call by call, 6s in all: 6s of simulated time"),
        "{err}"
    );
    assert_eq!(
        err.matches("3 strategies interleaved call by call: running for 6s")
            .count(),
        1,
        "{err}"
    );
    assert!(
        !err.contains("[1/3]") && !err.contains("running for 6s\n[2"),
        "{err}"
    );
    let err = said("sequential", &["--cooldown", "2s"]);
    assert!(
        err.contains("3 strategies, 6s each, 2s of cooldown between them: 22s of simulated time"),
        "{err}"
    );
    for (i, name) in [(2, "b"), (3, "c")] {
        assert!(
            err.contains(&format!("cooldown: 2s before [{i}/3] {name}")),
            "{err}"
        );
    }
    assert!(err.contains("[1/3] a: running for 6s"), "{err}");
}
