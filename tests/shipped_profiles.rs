//! The shipped profiles tell stories; these tests check that the stories are true.
//!
//! Each profile under `profiles/` runs here as shipped, on the virtual clock, and its comment's
//! conclusion is asserted with the figures worked out from its settings.

use std::path::Path;
use std::time::Duration;

use resilbench::call::{Call, Failure, FailureSource, Outcome};
use resilbench::profile::{self, Overrides, Plan};
use resilbench::results::{Results, StrategyResult};
use resilbench::strategy::retry::grpc::jitter_draw;
use tonic::Code;

use crate::common::run_virtual;
use crate::common::scripted::{self, ok};

fn shipped(name: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(name);
    profile::load(&path, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn strategy<'a>(r: &'a Results, name: &str) -> &'a StrategyResult {
    r.strategies.iter().find(|s| s.name == name).unwrap()
}

fn map(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// gRFC A6 backoff for the article's config (0.1 s, ×2, 0.3 s): the waits before the second
/// and third attempts of call `id`.
fn article_waits(seed: u64, id: u64) -> (Duration, Duration) {
    let w =
        |n: u32, base: f64| Duration::from_secs_f64(base * (0.8 + 0.4 * jitter_draw(seed, id, n)));
    (w(1, 0.1), w(2, 0.2))
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `profiles/service-config.toml`: the article's sandbox (UNAVAILABLE, UNKNOWN, OK for every
/// request) against five service configs, 60 calls each, one every 500 ms (so calls never
/// overlap and the throttle's arithmetic is call by call).
#[test]
fn service_config_profile_tells_which_config_gets_through() {
    let plan = shipped("service-config.toml");
    let r = run_virtual(&plan);
    let calls = 60;
    for s in &r.strategies {
        assert_eq!(s.counts.offered, calls, "{}", s.name);
        let backend = s.backend.as_ref().unwrap();
        assert_eq!(backend.received, s.attempts.total, "{}", s.name);
    }

    // No retries: every call ends with its first attempt's UNAVAILABLE.
    let none = strategy(&r, "no-retries");
    assert_eq!(none.attempts.total, 60);
    assert_eq!(none.status, map(&[("UNAVAILABLE", 60)]));

    // UNAVAILABLE only: retried once, then UNKNOWN is not retryable.
    let only = strategy(&r, "unavailable-only");
    assert_eq!((only.attempts.total, only.attempts.retries), (120, 60));
    assert_eq!(only.status, map(&[("UNKNOWN", 60)]));
    assert_eq!(only.attempts.retry_denied, map(&[("not_retryable", 60)]));

    // Both listed: three attempts, every call succeeds, 1 ms + w1 + 1 ms + w2 + 1 ms after
    // its start, w1 in [80, 120) ms and w2 in [160, 240) ms.
    let both = strategy(&r, "unavailable-and-unknown");
    assert_eq!((both.attempts.total, both.attempts.retries), (180, 120));
    assert_eq!(both.counts.succeeded, 60);
    assert!(both.attempts.retry_denied.is_empty());
    let e2e: Vec<f64> = (0..calls)
        .map(|id| {
            let (w1, w2) = article_waits(plan.seed, id);
            assert!(w1 >= ms(80) && w1 < ms(120) && w2 >= ms(160) && w2 < ms(240));
            (ms(3) + w1 + w2).as_secs_f64() * 1000.0
        })
        .collect();
    let got = both.latency_ms.e2e_ok.as_ref().unwrap();
    let max = e2e.iter().cloned().fold(0.0, f64::max);
    let mean = e2e.iter().sum::<f64>() / e2e.len() as f64;
    // The histogram keeps 3 significant digits.
    assert!((got.max - max).abs() <= max * 1e-3, "{} vs {max}", got.max);
    assert!(
        (got.mean - mean).abs() <= mean * 1e-3,
        "{} vs {mean}",
        got.mean
    );

    // With retryThrottling {10, 0.1}: call 0 leaves 10 − 2 + 0.1 = 8.1 tokens, call 1 leaves
    // 6.2; call 2's first failure leaves 5.2 (> 5: retried), its second 4.2 (not > 5: it ends
    // with UNKNOWN). From then on every call's first failure is throttled: 2 successes,
    // 3 + 3 + 2 + 57 = 65 attempts.
    let throttled = strategy(&r, "with-throttling");
    assert_eq!(throttled.counts.succeeded, 2);
    assert_eq!(throttled.attempts.total, 65);
    assert_eq!(
        throttled.status,
        map(&[("OK", 2), ("UNAVAILABLE", 57), ("UNKNOWN", 1)])
    );
    assert_eq!(throttled.attempts.retry_denied, map(&[("throttle", 58)]));
    let last = throttled.timeline.last().unwrap();
    assert_eq!(last.tokens, Some(0.0));

    // A 0.3 s timeout: the third attempt is sent only if 2 ms + w1 + w2 leaves time before the
    // deadline, and succeeds only if it ends (1 ms later) before it.
    let (mut succeeded, mut third_attempts, mut too_late) = (0, 0, 0);
    for id in 0..calls {
        let (w1, w2) = article_waits(plan.seed, id);
        if ms(2) + w1 + w2 >= ms(300) {
            too_late += 1;
        } else {
            third_attempts += 1;
            if ms(3) + w1 + w2 < ms(300) {
                succeeded += 1;
            }
        }
    }
    let timeout = strategy(&r, "timeout-0.3s");
    assert_eq!(timeout.counts.succeeded, succeeded);
    assert_eq!(timeout.attempts.total, 120 + third_attempts);
    assert_eq!(
        timeout
            .status
            .get("DEADLINE_EXCEEDED")
            .copied()
            .unwrap_or(0),
        60 - succeeded
    );
    assert_eq!(
        timeout.attempts.retry_denied,
        map(&[("deadline", too_late)])
    );
    // About half: the story the profile's comment tells.
    assert!((20..=40).contains(&succeeded), "{succeeded}");
}

/// The same config, driven attempt by attempt: each call's attempts go out at exactly 0,
/// 1 ms + w1 and 2 ms + w1 + w2, with `grpc-previous-rpc-attempts` 0, 1, 2.
#[test]
fn service_config_profile_attempt_times_are_exact() {
    let plan = shipped("service-config.toml");
    let s = plan
        .strategies
        .iter()
        .find(|s| s.name == "unavailable-and-unknown")
        .unwrap();
    let calls: Vec<_> = (0..60).map(|i| (i, ms(500) * i as u32)).collect();
    let sandbox = |call: &Call| -> (Duration, Outcome) {
        let failed = |code| {
            Err(Failure {
                code,
                pushback: None,
                source: FailureSource::Backend,
                messages: 0,
                committed: false,
            })
        };
        let outcome = match call.previous_attempts {
            0 => failed(Code::Unavailable),
            1 => failed(Code::Unknown),
            _ => ok(),
        };
        (ms(1), outcome)
    };
    let run = scripted::drive(s, plan.seed, &calls, sandbox);
    for (id, start) in calls {
        let (w1, w2) = article_waits(plan.seed, id);
        let want = [start, start + ms(1) + w1, start + ms(2) + w1 + w2];
        assert_eq!(run.times(id), want, "call {id}");
        let previous: Vec<_> = run.of(id).iter().map(|a| a.previous).collect();
        assert_eq!(previous, [0, 1, 2]);
        assert_eq!(run.ended(id).code, Code::Ok);
    }
}

/// `profiles/quickstart.toml`: a 1% UNAVAILABLE blip and a lognormal tail (median 2 ms, p99
/// 40 ms). Retries take the blip away and leave the tail; hedging after 10 ms takes both
/// away, for the share of attempts slower than 10 ms; the verdict names hedging.
#[test]
fn quickstart_profile_retries_fix_the_blip_hedging_the_tail_too() {
    let plan = shipped("quickstart.toml");
    let r = run_virtual(&plan);
    let (none, retries, hedging) = (
        strategy(&r, "no-retries"),
        strategy(&r, "grpc-retries"),
        strategy(&r, "grpc-hedging"),
    );
    let rate = |s: &StrategyResult| s.counts.succeeded as f64 / s.counts.offered as f64;
    let p999 = |s: &StrategyResult| s.latency_ms.e2e_ok.unwrap().p999;
    // The blip: about 1% of first attempts fail (3,000 calls: 30 ± 17 at 3 sigma).
    let failed = none.status.get("UNAVAILABLE").copied().unwrap_or(0);
    assert!((13..=47).contains(&failed), "{failed}");
    assert_eq!(none.counts.failed, failed);
    // Retries: a call fails only if three draws in a row fail (1e-6): every call succeeds,
    // for one retry per failed first attempt or so; the tail is the same lognormal tail.
    assert_eq!(retries.counts.succeeded, retries.counts.offered);
    assert!(retries.attempts.retries >= failed && retries.attempts.retries <= failed + 5);
    assert!(
        (p999(retries) / p999(none) - 1.0).abs() < 0.1,
        "{} vs {}",
        p999(retries),
        p999(none)
    );
    // Hedging: P(first attempt slower than 10 ms) = P(Z > ln(10/2) / (ln(40/2) / 2.326)) =
    // P(Z > 1.25) = 10.6%, plus the 1% that fail at once: about 1.11 attempts per call.
    assert_eq!(hedging.counts.succeeded, hedging.counts.offered);
    let amp = hedging.amplification.backend.unwrap();
    assert!((1.08..1.14).contains(&amp), "{amp}");
    // The tail: slower than t only if the first attempt and the hedge (sent at 10 ms) both
    // are: P(X > t) · P(X > t − 10 ms) = 0.1% at t ≈ 27 ms, against 107 ms without a hedge.
    assert!(
        p999(hedging) < p999(none) / 3.0,
        "{} vs {}",
        p999(hedging),
        p999(none)
    );
    assert!((20.0..35.0).contains(&p999(hedging)), "{}", p999(hedging));
    assert!(rate(none) < 0.995 && rate(hedging) == 1.0);
    let answer =
        resilbench::answer::answer(&resilbench::document::ResultsDoc::from_results(r.clone()));
    assert_eq!(answer.choice, Some(2), "{:?}", answer.sentence);
    assert!(
        answer
            .sentence
            .unwrap()
            .starts_with("grpc-hedging raises success from")
    );
}

/// Success rate and attempts per offered call over the timeline's seconds `from..to`.
fn window(s: &StrategyResult, from: u64, to: u64) -> (f64, f64) {
    let rows = s.timeline.iter().filter(|t| (from..to).contains(&t.t));
    let (ok, offered, attempts) = rows.fold((0, 0, 0), |(o, n, a), t| {
        (o + t.succeeded, n + t.offered, a + t.attempts)
    });
    assert!(offered > 0, "{}: no calls in {from}..{to}", s.name);
    (ok as f64 / offered as f64, attempts as f64 / offered as f64)
}

/// `profiles/retry-storm.toml`: a 2% UNAVAILABLE blip, and a 2 s load spike at 10 s. Retries
/// take the blip away before the spike; every strategy fails during it; afterwards naive
/// retries and gRPC's retries without throttling keep the backend overloaded (a metastable
/// failure) while no retries, gRPC's throttled retries and a 10% budget recover. The verdict
/// table shows what the throttle bought: the load during the spike, and the recovery.
#[test]
fn retry_storm_profile_naive_retries_stay_degraded_the_others_recover() {
    let r = run_virtual(&shipped("retry-storm.toml"));
    for s in &r.strategies {
        let (before, amp) = window(s, 2, 10);
        if s.name == "no-retries" {
            assert!(
                (0.97..0.99).contains(&before) && amp == 1.0,
                "blip: {before} {amp}"
            );
        } else {
            // 2% of first attempts and 0.04% of retries fail: about 1.02 attempts per call.
            assert!(
                before > 0.999 && amp < 1.03,
                "{} before: {before} {amp}",
                s.name
            );
        }
        let (during, _) = window(s, 10, 12);
        assert!(during < 0.3, "{} during: {during}", s.name);
    }
    let full = |s: &StrategyResult| {
        let b = s.backend.as_ref().unwrap();
        b.timeline
            .iter()
            .filter(|t| (20..40).contains(&t.t))
            .all(|t| t.queue_max == 80)
    };
    // Long after the spike (from 20 s to the end).
    for name in ["naive", "grpc-a6-no-throttle"] {
        let s = strategy(&r, name);
        let (after, amp) = window(s, 20, 40);
        assert!(after < 0.01, "{name} after: {after}");
        assert!(
            amp > 2.5,
            "{name} keeps offering ~3 attempts per call: {amp}"
        );
        let backend = s.backend.as_ref().unwrap();
        // The backend works flat out for callers who have left, its queue always full.
        assert!(
            backend.wasted as f64 > 0.8 * backend.executed as f64,
            "{backend:?}"
        );
        assert!(full(s), "{name}");
    }
    for name in ["no-retries", "grpc-a6", "budget-10%"] {
        let s = strategy(&r, name);
        let (after, amp) = window(s, 20, 40);
        let least = if name == "no-retries" { 0.97 } else { 0.999 };
        assert!(after > least, "{name} after: {after}");
        assert!(amp < 1.03, "{name} after: {amp}");
        assert!(!full(s), "{name}'s backend queue drained");
    }
    // The budget held retries to about 10% of calls over the ttl; the throttle to a few.
    let budget = strategy(&r, "budget-10%");
    assert!(budget.attempts.retries as f64 <= 0.1 * budget.counts.sent as f64);
    assert!(budget.attempts.retry_denied["budget"] > 500);
    let a6 = strategy(&r, "grpc-a6");
    assert!(a6.attempts.retry_denied["throttle"] > 500);

    // The table says what the throttle bought, and the verdict names the throttled retrier.
    let doc = resilbench::document::ResultsDoc::from_results(r.clone());
    let answer = resilbench::answer::answer(&doc);
    let column = |label: &str| answer.columns.iter().find(|c| c.label == label).unwrap();
    let at = |name: &str| r.strategies.iter().position(|s| s.name == name).unwrap();
    let (load, back) = (column("load in phases"), column("recovered after"));
    let (a6, bare) = (at("grpc-a6"), at("grpc-a6-no-throttle"));
    assert!(load.values[a6].unwrap() < 1.1 && load.values[bare].unwrap() > 2.5);
    assert!(back.values[a6].unwrap() <= 2.0, "{:?}", back.cells);
    assert_eq!(back.cells[bare], "never");
    assert_eq!(answer.choice, Some(a6), "{:?}", answer.sentence);
}

/// `profiles/jitter.toml`: 500 calls in 100 ms against room for 120, retried with each AWS
/// backoff. The relations the profile's comment states (they hold for other seeds too).
#[test]
fn jitter_profile_compares_the_aws_variants() {
    let r = run_virtual(&shipped("jitter.toml"));
    let figures = |name: &str| {
        let s = strategy(&r, name);
        assert_eq!(s.counts.succeeded, s.counts.offered, "{name}");
        assert!(s.attempts.retry_denied.is_empty(), "{name}");
        let b = s.backend.as_ref().unwrap();
        let peak = b.timeline.iter().map(|t| t.received).max().unwrap();
        let e2e = s.latency_ms.e2e.as_ref().unwrap();
        (b.rejected, peak, e2e.p99, e2e.max)
    };
    let none = figures("exponential");
    let full = figures("full-jitter");
    let equal = figures("equal-jitter");
    let decorrelated = figures("decorrelated-jitter");
    let jittered = [full, equal, decorrelated];
    // Completion: no jitter serves the crowd in waves and its slowest calls wait longest.
    for j in jittered {
        assert!(none.2 > 1.5 * j.2, "p99 {none:?} vs {j:?}");
        assert!(none.3 > j.3, "max {none:?} vs {j:?}");
    }
    // Work and peak: decorrelated refuses the fewest attempts and has the quietest peak; full
    // jitter refuses the most.
    for other in [none, full, equal] {
        assert!(decorrelated.0 < other.0 && decorrelated.1 < other.1);
        assert!(decorrelated.2 < other.2, "lowest p99");
    }
    for other in [none, equal, decorrelated] {
        assert!(full.0 > other.0 && full.1 > other.1);
    }
    // Equal jitter finishes its last call first.
    for other in [none, full, decorrelated] {
        assert!(equal.3 < other.3);
    }
}

/// `profiles/hedging.toml`: 1% of attempts are 100× slower. Hedging at the p95 cuts the p99.9
/// by more than ten times for a few percent more load; hedging everything at once cuts it as
/// well, at twice the load.
#[test]
fn hedging_profile_cuts_the_tail_for_a_few_percent_more_load() {
    let r = run_virtual(&shipped("hedging.toml"));
    let figures = |name: &str| {
        let s = strategy(&r, name);
        assert_eq!(s.counts.succeeded, s.counts.offered, "{name}");
        let b = s.backend.as_ref().unwrap();
        assert_eq!(b.received, s.attempts.total, "{name}");
        (
            s.latency_ms.e2e.unwrap().p999,
            s.amplification.backend.unwrap(),
            s,
        )
    };
    let (none_p999, none_amp, _) = figures("no-hedge");
    let (p95_p999, p95_amp, p95) = figures("hedge-p95");
    let (all_p999, all_amp, all) = figures("hedge-all-at-once");

    // Without hedging, the 1% slow attempts are the p99.9.
    assert!(none_p999 >= 200.0, "{none_p999}");
    assert_eq!(none_amp, 1.0);
    // tower-style hedge: the slow tail is gone for under 10% more attempts, at most one hedge
    // per call, and every hedge race ends with one loser cancelled.
    assert!(p95_p999 * 10.0 < none_p999, "{p95_p999} vs {none_p999}");
    assert!(p95_amp > 1.01 && p95_amp < 1.1, "{p95_amp}");
    let a = &p95.attempts;
    assert_eq!(a.total, p95.counts.sent + a.hedges);
    assert_eq!(a.per_call.keys().copied().max(), Some(2));
    assert_eq!(a.hedges_cancelled, a.hedges);
    assert!(a.hedges_won > 0 && a.hedges_won < a.hedges);
    // The losers are the backend's wasted work (the embedded backend finishes cancelled work).
    assert_eq!(p95.backend.as_ref().unwrap().wasted, a.hedges_cancelled);
    // hedgingDelay 0: two attempts for every call, from the start.
    assert!(all_p999 * 10.0 < none_p999, "{all_p999}");
    assert_eq!(all_amp, 2.0);
    assert_eq!(all.attempts.hedges, all.counts.sent);
    // Each of the two attempts wins about half the races.
    let won = all.attempts.hedges_won as f64 / all.counts.sent as f64;
    assert!((won - 0.5).abs() < 0.02, "{won}");
}

/// `profiles/outage-breaker.toml`: every transition at the time the profile's comment works
/// out from pybreaker's and resilience4j's rules (calls every 10 ms, 5 ms each).
#[test]
fn outage_breaker_profile_transitions_at_the_worked_out_times() {
    use resilbench::strategy::breaker::State::{Closed, HalfOpen, Open};
    let r = run_virtual(&shipped("outage-breaker.toml"));
    let none = strategy(&r, "no-breaker");
    assert_eq!(none.status, map(&[("OK", 2000), ("UNAVAILABLE", 1000)]));
    assert!(none.breaker.is_none());

    let check = |name: &str, want: &[(f64, resilbench::strategy::breaker::State)]| {
        let s = strategy(&r, name);
        let b = s.breaker.as_ref().unwrap();
        let got: Vec<_> = b.transitions.iter().map(|t| (t.at_s, t.to)).collect();
        assert_eq!(got.len(), want.len(), "{name}: {got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g.0 - w.0).abs() < 1e-6 && g.1 == w.1, "{name}: {got:?}");
        }
        assert_eq!(b.opened, 4, "{name}");
        // Every refused call is a call the backend never saw.
        let backend = s.backend.as_ref().unwrap().received;
        assert_eq!(backend + b.short_circuited, 3000, "{name}");
        (b.short_circuited, s.counts.succeeded)
    };
    // pybreaker: 5th failure at 10.04 s; trials at exactly +3 s (inclusive) fail until 22.04.
    let py = check(
        "pybreaker",
        &[
            (10.04, Open),
            (13.04, HalfOpen),
            (13.04, Open),
            (16.04, HalfOpen),
            (16.04, Open),
            (19.04, HalfOpen),
            (19.04, Open),
            (22.04, HalfOpen),
            (22.045, Closed),
        ],
    );
    // Refused: 10.05-13.03, 13.05-16.03, 16.05-19.03, 19.05-22.03: 4 × 299 calls.
    // The calls from 20.00 s to 22.03 s are refused though the backend is back: 204 more
    // failures than the outage's 1000.
    assert_eq!(py, (4 * 299, 3000 - 1000 - 204));
    // resilience4j: 10th failure at 10.09 s makes the window 50%; 5 trials strictly after
    // each 3 s wait; the 5th successful trial closes it at 22.29 + 5 ms.
    let r4j = check(
        "resilience4j",
        &[
            (10.09, Open),
            (13.10, HalfOpen),
            (13.14, Open),
            (16.15, HalfOpen),
            (16.19, Open),
            (19.20, HalfOpen),
            (19.24, Open),
            (22.25, HalfOpen),
            (22.295, Closed),
        ],
    );
    // Refused: 10.10-13.09, 13.15-16.14, 16.20-19.19, 19.25-22.24: 4 × 300 calls.
    // The calls from 20.00 s to 22.24 s are refused: 225.
    assert_eq!(r4j, (4 * 300, 3000 - 1000 - 225));
}

/// `profiles/fan-out.toml`: a call that needs all N sub-calls is slow when any is: the slow
/// fraction is 1 − (1 − p)^N, within four standard errors; the sub-calls' latency does not
/// change with N; waiting for the first 95 of 100 removes the tail.
#[test]
fn fan_out_profile_slow_fraction_is_one_minus_one_minus_p_to_the_n() {
    use resilbench::record::histogram::Hist;
    let r = run_virtual(&shipped("fan-out.toml"));
    let p: f64 = 0.01;
    let slow_fraction = |s: &StrategyResult| {
        let h = Hist::decode(&s.histograms.e2e).unwrap();
        // Fast calls take 1 ms, slow ones 100 ms: 50 ms splits them.
        let slow: u64 = h
            .inner()
            .iter_recorded()
            .filter(|v| v.value_iterated_to() >= 50_000)
            .map(|v| v.count_at_value())
            .sum();
        slow as f64 / h.count() as f64
    };
    for (name, n) in [("n1", 1), ("n10", 10), ("n100", 100)] {
        let s = strategy(&r, name);
        let calls = s.counts.sent;
        assert_eq!(s.counts.succeeded, calls, "{name}");
        let fan = s.fan_out.as_ref().unwrap();
        assert_eq!(fan.sub_calls, calls * n, "{name}");
        assert_eq!(s.backend.as_ref().unwrap().received, calls * n, "{name}");
        // Per sub-call, 1% are slow whatever N is.
        let sub = fan.latency_ms.unwrap();
        assert_eq!(sub.p50, 1.0, "{name}");
        assert!(sub.p999 >= 100.0, "{name}");
        let want = 1.0 - (1.0 - p).powi(n as i32);
        let se = (want * (1.0 - want) / calls as f64).sqrt();
        let got = slow_fraction(s);
        assert!(
            (got - want).abs() < 4.0 * se,
            "{name}: slow {got:.4}, want {want:.4} ± {:.4}",
            4.0 * se
        );
    }
    // The first 95 of 100: slow only with six or more slow sub-calls, P ≈ 0.05%.
    let first = strategy(&r, "n100-first-95");
    assert!(slow_fraction(first) < 0.003, "{}", slow_fraction(first));
    let fan = first.fan_out.as_ref().unwrap();
    assert_eq!(fan.sub_calls, first.counts.sent * 95);
    assert!(first.latency_ms.e2e.unwrap().p99 < 2.0);
}

/// `profiles/idempotency.toml`: 5% of mutations lose their reply after the side effect.
/// Retries without a key run it again; with a key (and the backend's dedup) nothing runs twice,
/// for retries and hedges alike.
#[test]
fn idempotency_profile_keys_stop_duplicate_side_effects() {
    let r = run_virtual(&shipped("idempotency.toml"));
    let figures = |name: &str| {
        let s = strategy(&r, name);
        let b = s.backend.as_ref().unwrap();
        assert_eq!(b.received, s.attempts.total, "{name}");
        (s, b.executed, b.duplicate_side_effects)
    };
    let (none, executed, duplicates) = figures("no-retry");
    let calls = none.counts.sent;
    assert_eq!((executed, duplicates), (calls, 0));
    let lost = none.status["UNAVAILABLE"] as f64 / calls as f64;
    assert!((lost - 0.05).abs() < 0.015, "{lost}");

    // Without a key, every retry executes the mutation again.
    let (no_key, executed, duplicates) = figures("retry-no-key");
    assert!(no_key.attempts.retries > 0);
    assert_eq!(duplicates, no_key.attempts.retries);
    assert_eq!(executed, no_key.attempts.total);
    let share = duplicates as f64 / calls as f64;
    assert!(share > 0.03 && share < 0.07, "{share}");

    // With a key: as many retries, one execution per call, every call succeeds.
    let (key, executed, duplicates) = figures("retry-with-key");
    assert!(key.attempts.retries > 0);
    assert_eq!((executed, duplicates), (calls, 0));
    assert_eq!(key.counts.succeeded, calls);

    // Hedges repeat requests too; a key makes them safe.
    let (hedge, executed, duplicates) = figures("hedge-with-key");
    assert!(hedge.attempts.hedges > calls / 10);
    assert_eq!((executed, duplicates), (calls, 0));
    assert_eq!(hedge.counts.succeeded, calls);
}

/// `profiles/streaming.toml`: A6's commit rule. Failures before the first message are retried
/// (or hedged); failures after message 5 are committed and end the call.
#[test]
fn streaming_profile_retries_only_before_the_first_message() {
    let r = run_virtual(&shipped("streaming.toml"));
    let after_message_5 = |s: &StrategyResult| {
        let stream = s.stream.unwrap();
        // Each committed failure came right after message 5.
        assert_eq!(
            stream.messages_before_failure,
            5 * stream.failed_after_commit,
            "{}",
            s.name
        );
        stream.failed_after_commit
    };
    let none = strategy(&r, "no-retry");
    let calls = none.counts.sent;
    let failed = none.counts.failed as f64 / calls as f64;
    assert!((failed - 0.08).abs() < 0.02, "{failed}");
    let committed = after_message_5(none);
    assert!(committed > 0);

    // Retries: every committed failure is refused as `committed`; the others are retried and
    // fail only when all three attempts do.
    let retry = strategy(&r, "grpc-retry");
    let committed = after_message_5(retry);
    assert_eq!(retry.attempts.retry_denied["committed"], committed);
    let exhausted = retry
        .attempts
        .retry_denied
        .get("max_attempts")
        .copied()
        .unwrap_or(0);
    assert_eq!(retry.status["UNAVAILABLE"], committed + exhausted);
    assert!(exhausted * 10 < committed);
    assert!(retry.attempts.retries > 0);

    // Hedges: sent only for calls with no message after 10 ms; the first message cancels the
    // other attempt; committed failures end the call as with retries.
    let hedge = strategy(&r, "grpc-hedge");
    let committed = after_message_5(hedge);
    let a = &hedge.attempts;
    assert!(a.hedges > 0 && a.hedges * 4 < calls, "{} hedges", a.hedges);
    assert!(a.hedges_cancelled > 0 && a.hedges_cancelled <= a.hedges);
    assert!(hedge.status["UNAVAILABLE"] - committed < committed / 10);
    assert_eq!(hedge.backend.as_ref().unwrap().wasted, a.hedges_cancelled);
}

/// `profiles/client-flavors.toml`: one hedging service config with retryThrottling {10, 0.1},
/// run as four clients; 1,200 calls, one every 50 ms; every 20th call's original takes
/// 200 ms (calls 10, 30, ...: 60 calls, 20 of them in the outage); the backend answers
/// UNAVAILABLE at once from 20 s to 40 s (calls 400 to 799).
///
/// Worked out: outside the outage 800 calls succeed, 40 of them slow, each hedged at 20 ms
/// (answer at 22 ms) unless the throttle says no. In the outage, A6 hedges call 400 twice
/// (10 → 9 → 8 → 7 tokens) and call 401 once (→ 6 → 5, hedging stops), then every call sends
/// its original only (→ 0): 403 attempts. After it, each success adds 0.1: when the slow calls
/// 810, 830 and 850 are due their hedge, 10, 30 and 50 calls have ended (1.0, 3.0, 5.0 tokens,
/// none above 5): three slow successes; call 870 sees 7.0 and is hedged again. So A6 sends
/// 800 + 37 + 403 = 1,240 attempts; grpc-java the same (calls do not overlap, so reading the
/// throttle when a hedge is scheduled changes nothing); grpc-js 800 + 40 + 3 × 400 = 2,040,
/// with no slow success; C-core 1,200, and all 40 slow successes.
#[test]
fn client_flavors_profile_shows_what_four_libraries_do_with_one_config() {
    use resilbench::record::histogram::Hist;
    let plan = shipped("client-flavors.toml");
    let warnings = plan.client_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("`c-core`") && warnings[0].contains("ignored"),
        "{warnings:?}"
    );
    let r = run_virtual(&plan);
    let slow_successes = |s: &StrategyResult| -> u64 {
        let h = Hist::decode(&s.histograms.e2e_ok).unwrap();
        h.inner()
            .iter_recorded()
            .filter(|v| v.value_iterated_to() >= 100_000)
            .map(|v| v.count_at_value())
            .sum()
    };
    let want = [
        ("a6", 1240, 40, 3, 23),
        ("grpc-java", 1240, 40, 3, 23),
        ("grpc-js", 2040, 840, 0, 60),
        ("c-core", 1200, 0, 40, 20),
    ];
    for (name, attempts, hedges, slow, first_outage_second) in want {
        let s = strategy(&r, name);
        assert_eq!(
            (s.counts.offered, s.counts.succeeded, s.counts.failed),
            (1200, 800, 400),
            "{name}"
        );
        assert_eq!(s.attempts.total, attempts, "{name}");
        assert_eq!(s.backend.as_ref().unwrap().received, attempts, "{name}");
        assert_eq!(s.attempts.hedges, hedges, "{name}");
        assert_eq!(slow_successes(s), slow, "{name}");
        // The outage's first second (calls 400 to 419), then a later one (calls 500 to 519).
        let second = |t: u64| s.timeline.iter().find(|row| row.t == t).unwrap().attempts;
        assert_eq!(second(20), first_outage_second, "{name}");
        let later = if name == "grpc-js" { 60 } else { 20 };
        assert_eq!(second(25), later, "{name}");
    }
    // The tail: a p99 of 200 ms without hedging, about 22 ms with it.
    assert!(strategy(&r, "c-core").latency_ms.e2e_ok.unwrap().p99 >= 200.0);
    for name in ["a6", "grpc-java", "grpc-js"] {
        let p99 = strategy(&r, name).latency_ms.e2e_ok.unwrap().p99;
        assert!((22.0..22.1).contains(&p99), "{name}: {p99}");
    }
}

/// `profiles/sweep-retries.toml`: a sweep (the profile's [sweep]) of maxAttempts 2 to 5
/// against initialBackoff 100 ms to 1.6 s through a 10 s outage. Only backoffs adding up to
/// more than the outage get 99.9% of the calls through; of those the longest first backoff
/// is the cheapest; short backoffs cost the most for nothing. (`run` runs the profile as
/// written, the recommended point: tests/golden.rs keeps that run.)
#[test]
fn sweep_retries_profile_recommends_the_cheapest_backoff_that_outlasts_the_outage() {
    use resilbench::choose::{Goal, SweepDoc, figures};
    use resilbench::sweep::{Grid, Spec, run};

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/sweep-retries.toml");
    let spec = Spec::read(&path).unwrap();
    let goal = Goal::from_conditions("[sweep] goal", &[spec.goal[0].0.clone()]).unwrap();
    let grid = Grid::build(spec, shipped("sweep-retries.toml")).unwrap();
    assert_eq!(grid.len(), 20);
    let out = tempfile::tempdir().unwrap();
    let mut doc = SweepDoc::new(&grid, Some(goal.clone()), "virtual", None, Vec::new());
    let opts = run::Options {
        clock: resilbench::runner::ClockMode::Virtual,
        jobs: 2,
        shard: None,
        target: None,
        quiet: true,
    };
    let summarize = |plan: &Plan, r: &Results| figures::summarize(plan, r, Some(&goal));
    let stop = tokio_util::sync::CancellationToken::new();
    run::run(&grid, &opts, out.path(), &stop, &summarize, &mut |d| {
        doc.add(&grid, d.index, d.dir, d.summary)
    })
    .unwrap();
    doc.partial = false;
    doc.conclude();

    // (max_attempts, initial backoff in ms) → (success, backend amplification).
    let at = |m: i64, b: &str| {
        let p = doc
            .points
            .iter()
            .find(|p| {
                p.settings["strategies.grpc.layers.grpc_retry.max_attempts"] == m
                    && p.settings["strategies.grpc.layers.grpc_retry.initial_backoff"] == b
            })
            .unwrap();
        let c = &p.figures.strategies[0];
        (
            p.index,
            c.get("success_rate").unwrap(),
            c.get("amplification.backend").unwrap(),
        )
    };
    let backoffs = ["100ms", "200ms", "400ms", "800ms", "1600ms"];
    for m in 2..=5 {
        for (i, b) in backoffs.iter().enumerate() {
            // The backoffs add up to b × (2^(m-1) − 1).
            let spanned = 100 * (1 << i) * ((1 << (m - 1)) - 1) >= 10_000;
            let (_, success, _) = at(m, b);
            if spanned {
                assert!(success > 0.999, "{m} × {b}: {success}");
            } else {
                assert!((0.8..0.95).contains(&success), "{m} × {b}: {success}");
            }
        }
    }
    // With five attempts, the longer the first backoff, the fewer attempts land in the outage.
    let five: Vec<f64> = backoffs.iter().map(|b| at(5, b).2).collect();
    assert!(five.windows(2).all(|w| w[0] > w[1]), "{five:?}");
    assert!(five[0] > 1.7 && at(5, "100ms").1 < 0.85, "{five:?}");

    let v = &doc.verdict;
    assert_eq!(v.meeting, 3);
    let best = v.best.as_ref().unwrap();
    assert_eq!(best.point, at(4, "1600ms").0);
    assert!(best.cost.unwrap() < 1.45);
    assert_eq!(v.runner_up.as_ref().unwrap().point, at(5, "1600ms").0);
    assert!(
        at(5, "800ms").2 > 1.55,
        "the third that meets the goal costs more"
    );
    assert!(
        v.words[0].starts_with("Recommended: point 14"),
        "{:?}",
        v.words
    );
    // The profile as written is the recommended point.
    let base = shipped("sweep-retries.toml");
    match &base.strategies[0].layers[0] {
        resilbench::profile::LayerPlan::GrpcRetry(r) => {
            assert_eq!((r.max_attempts, r.initial_backoff), (4, ms(1600)));
        }
        other => panic!("{other:?}"),
    }
}
