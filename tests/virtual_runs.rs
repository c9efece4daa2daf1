//! Whole runs on a paused clock: exact, reproducible, and fast.

use std::time::Duration;

use crate::common::{plan, run_virtual};

const MINUTE: &str = r#"
name = "minute"
seed = 11
[load]
arrival = "poisson"
rate = 1000
duration = "60s"
warmup = "2s"
deadline = "200ms"
[backend]
latency = { dist = "mixture", of = [
  { weight = 0.99, latency = { dist = "lognormal", median = "2ms", p99 = "10ms" } },
  { weight = 0.01, latency = "300ms" },
] }
errors = { UNAVAILABLE = 0.01 }
workers = 32
[[strategies]]
name = "a"
[[strategies]]
name = "b"
layers = [{ kind = "timeout", timeout = "50ms" }]
"#;

/// A minute at 1,000 calls/s, twice with the same seed: the strategies sections are identical
/// to the byte. (Virtual-time speed is measured in benches/, not asserted here.)
#[test]
fn a_minute_at_1000_per_second_is_reproducible() {
    let p = plan(MINUTE);
    let (a, b) = (run_virtual(&p), run_virtual(&p));
    let json = |r: &resilbench::results::Results| serde_json::to_string(&r.strategies).unwrap();
    assert_eq!(json(&a), json(&b));
    let s = &a.strategies[0];
    assert_eq!(s.counts.dropped, 0);
    assert!(
        (s.counts.offered as f64 - 58_000.0).abs() < 58_000.0 * 0.02,
        "{:?}",
        s.counts
    );
    assert_eq!(a.generator.lag_ms.max, 0.0, "a virtual clock never lags");
}

/// Keyed randomness: both strategies meet the same backend luck, so the calls that fail with
/// UNAVAILABLE are the same calls, and the fast calls take exactly as long in both.
#[test]
fn every_strategy_meets_the_same_backend() {
    let p = plan(MINUTE);
    let r = run_virtual(&p);
    let (a, b) = (&r.strategies[0], &r.strategies[1]);
    assert_eq!(a.counts.offered, b.counts.offered);
    assert_eq!(a.status.get("UNAVAILABLE"), b.status.get("UNAVAILABLE"));
    // 1% of attempts take 300 ms: past the 200 ms deadline for "a", past the 50 ms attempt
    // timeout for "b". Both fail exactly those calls (and b's deadline-exceeded count matches).
    assert_eq!(
        a.status.get("DEADLINE_EXCEEDED"),
        b.status.get("DEADLINE_EXCEEDED")
    );
    let slow = *a.status.get("DEADLINE_EXCEEDED").unwrap() as f64 / a.counts.sent as f64;
    assert!((slow - 0.01).abs() < 0.002, "share of slow calls {slow}");
    // Backend figures: every attempt arrived, none was refused at 32 workers.
    let backend = a.backend.as_ref().unwrap();
    assert_eq!(backend.received, a.attempts.total);
    assert_eq!(backend.rejected, 0);
    assert_eq!(a.amplification.backend, Some(1.0));
    assert!(Duration::from_secs_f64(a.duration_s) == Duration::from_secs(58));
}

/// The backend leaves warmup traffic out of its figures too, so amplification compares like
/// with like.
#[test]
fn the_backend_does_not_count_warmup_traffic() {
    let p = plan(
        r#"
[load]
rate = 100
duration = "3s"
warmup = "1s"
[backend]
latency = "400ms"
[[strategies]]
name = "w"
"#,
    );
    let r = run_virtual(&p);
    let s = &r.strategies[0];
    assert_eq!(s.counts.offered, 200);
    assert_eq!(s.attempts.total, 200);
    let backend = s.backend.as_ref().unwrap();
    assert_eq!((backend.received, backend.executed), (200, 200));
}

/// An interrupted run counts only what ended by the end of the grace period: calls still
/// running are `unfinished`, not successes that arrive later.
#[test]
fn an_interrupted_run_does_not_count_late_completions() {
    use resilbench::clock::{Clock, sim::SimClock};
    use resilbench::progress::Progress;
    use resilbench::runner::{self, ClockMode, RunOptions};
    use tokio_util::sync::CancellationToken;

    let p = plan(
        r#"
[load]
rate = 10
duration = "20s"
deadline = "10s"
[backend]
latency = "5s"
[[strategies]]
name = "slow"
"#,
    );
    let opts = RunOptions {
        clock: ClockMode::Virtual,
        target: None,
        progress: Progress::Quiet,
        shard: None,
        start_at: None,
        connect_timeout: resilbench::runner::CONNECT_TIMEOUT,
    };
    let stop = CancellationToken::new();
    let r = crate::common::virtual_runtime().block_on(async {
        let clock = Clock::Sim(SimClock::start());
        let (cancel, timer) = (stop.clone(), clock.clone());
        tokio::spawn(async move {
            timer.sleep(Duration::from_secs(3)).await;
            cancel.cancel();
        });
        runner::execute(&p, &opts, &clock, stop).await.unwrap()
    });
    let s = &r.strategies[0];
    // Calls due at 0.0 … 2.9 s (the one due at 3.0 s is not sent): none can end before 5 s.
    assert_eq!(s.counts.offered, 30);
    assert_eq!(
        (s.counts.succeeded, s.counts.failed, s.counts.unfinished),
        (0, 0, 30)
    );
    assert!(r.partial);
}
