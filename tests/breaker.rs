//! Circuit breakers in virtual time: pybreaker's and resilience4j's state machines, which
//! calls they let through and when, worked out call by call.

use std::time::Duration;

use resilbench::call::Call;
use resilbench::strategy::breaker::State;
use tonic::Code;

use crate::common::scripted::{Run, Seen, drive_profile as drive, every, ms, ok, profile, status};
use crate::common::{plan, run_virtual};

/// Calls every 100 ms for 20 s; the backend fails (1 ms, UNAVAILABLE) the calls of the first
/// 10 s and answers the others.
fn outage(layers: &str) -> Run {
    drive(
        &profile("1s", layers),
        &every(200, ms(100)),
        |call: &Call| {
            let outcome = if call.id < 100 {
                status(Code::Unavailable)
            } else {
                ok()
            };
            (ms(1), outcome)
        },
    )
}

fn sent_ids(run: &Run) -> Vec<u64> {
    let mut ids: Vec<u64> = run.sent.iter().map(|s| s.id).collect();
    ids.dedup();
    ids
}

fn refused(run: &Run) -> usize {
    run.seen
        .iter()
        .filter(|s| matches!(s, Seen::ShortCircuited { .. }))
        .count()
}

fn states(run: &Run) -> Vec<State> {
    run.seen
        .iter()
        .filter_map(|s| match s {
            Seen::Breaker(state) => Some(*state),
            _ => None,
        })
        .collect()
}

/// pybreaker, fail_max 3, reset_timeout 5 s. Calls 0–2 fail; the third failure (at 201 ms)
/// opens it. Calls are refused while now < 201 ms + 5 s: call 52 (5.2 s) is refused, call 53
/// (5.3 s) is the half-open trial; it fails at 5.301 s and re-opens the breaker until
/// 10.301 s. Call 104 (10.4 s, after the outage) is the next trial; it succeeds and closes
/// the breaker (success_threshold 1). 100 calls refused.
#[test]
fn pybreaker_opens_after_fail_max_probes_after_reset_timeout_and_closes() {
    let run = outage(
        r#"
[[strategies.layers]]
kind = "pybreaker"
fail_max = 3
reset_timeout = "5s"
"#,
    );
    let sent = sent_ids(&run);
    let mut want = vec![0, 1, 2, 53];
    want.extend(104..200);
    assert_eq!(sent, want);
    assert_eq!(refused(&run), 100);
    assert_eq!(
        states(&run),
        [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::Open,
            State::HalfOpen,
            State::Closed
        ]
    );
    assert_eq!(
        run.ended(10).code,
        Code::Unavailable,
        "refused: UNAVAILABLE"
    );
    assert_eq!(run.ended(10).at, ms(1000), "at once");
}

/// resilience4j, count-based window of 10, minimum 5 calls, 50 %, 5 s open, 3 trials. Calls
/// 0–4 fail: at the fifth (401 ms) the window holds 5 calls, all failures: open. Calls are
/// refused until strictly after 5.401 s: call 55 (5.5 s) is the first trial, 56 and 57 the
/// others (3 permitted); their 3 failures (100 % ≥ 50 %) re-open it at 5.701 s. Calls 108–110
/// (after 10.701 s, the outage over) are the next trials; all succeed: closed.
#[test]
fn resilience4j_opens_on_the_failure_rate_and_its_trials_decide() {
    let run = outage(
        r#"
[[strategies.layers]]
kind = "resilience4j"
sliding_window_size = 10
minimum_number_of_calls = 5
wait_duration_in_open_state = "5s"
permitted_number_of_calls_in_half_open_state = 3
"#,
    );
    let sent = sent_ids(&run);
    let mut want = vec![0, 1, 2, 3, 4, 55, 56, 57];
    want.extend(108..200);
    assert_eq!(sent, want);
    assert_eq!(
        states(&run),
        [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::Open,
            State::HalfOpen,
            State::Closed
        ]
    );
}

/// resilience4j's slow calls: successes slower than `slow_call_duration_threshold` (strictly)
/// open it once their share reaches `slow_call_rate_threshold`.
#[test]
fn resilience4j_opens_on_slow_successes() {
    let layers = r#"
[[strategies.layers]]
kind = "resilience4j"
sliding_window_size = 4
minimum_number_of_calls = 4
slow_call_rate_threshold = 50
slow_call_duration_threshold = "100ms"
"#;
    let run = drive(&profile("1s", layers), &every(10, ms(1000)), |call| {
        // Calls 0 and 1 take exactly 100 ms (not slow); the others 101 ms.
        (ms(if call.id < 2 { 100 } else { 101 }), ok())
    });
    // 0, 1 not slow; 2, 3 slow: 2 of 4 = 50 %: open after call 3.
    assert_eq!(sent_ids(&run), [0, 1, 2, 3]);
}

/// The seed question: does the breaker see attempts or final outcomes? Above a retry layer
/// (3 attempts) a failing call is one failure, so fail_max 3 opens after 3 calls (9 attempts);
/// below it, each attempt is a failure, so the first call's 3 attempts open it and the next
/// calls' attempts are refused.
#[test]
fn above_a_retry_layer_the_breaker_sees_calls_below_it_sees_attempts() {
    let retry = r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 3
backoff = { jitter = "none", base = "10ms", cap = "10ms" }
"#;
    let breaker = r#"
[[strategies.layers]]
kind = "pybreaker"
fail_max = 3
reset_timeout = "60s"
"#;
    let above = outage(&format!("{breaker}{retry}"));
    assert_eq!(above.sent.len(), 9, "3 calls × 3 attempts");
    assert_eq!(refused(&above), 197);
    let below = outage(&format!("{retry}{breaker}"));
    assert_eq!(below.sent.len(), 3, "the first call's 3 attempts");
    // Every later call tries 3 times and is refused 3 times.
    assert_eq!(refused(&below), 199 * 3);
}

/// A call cut by its deadline above the breaker counts as DEADLINE_EXCEEDED, a failure:
/// two calls that hang past their 1 s deadline open a breaker with fail_max 2.
#[test]
fn a_call_cut_by_its_deadline_counts_as_a_failure() {
    let layers = r#"
[[strategies.layers]]
kind = "pybreaker"
fail_max = 2
"#;
    let run = drive(&profile("1s", layers), &every(5, ms(2000)), |_| {
        (Duration::from_secs(30), ok())
    });
    assert_eq!(sent_ids(&run), [0, 1]);
    assert_eq!(run.ended(0).code, Code::DeadlineExceeded);
}

/// The whole path: a breaker with a fallback over an outage phase of the embedded backend.
/// results.json counts the refused calls and the fallbacks (failed, not succeeded), lists the
/// transitions with their times, and shows the state per second in the timeline.
#[test]
fn results_show_the_breaker() {
    let p = plan(
        r#"
seed = 1
[load]
arrival = "constant"
rate = 10
duration = "30s"
deadline = "1s"
[backend]
latency = "1ms"
[[phases]]
kind = "outage"
start = "5s"
duration = "10s"
[[strategies]]
name = "breaker"
[[strategies.layers]]
kind = "pybreaker"
fail_max = 5
reset_timeout = "4s"
fallback = true
"#,
    );
    let r = run_virtual(&p);
    let s = &r.strategies[0];
    let b = s.breaker.as_ref().expect("breaker figures");
    // An outage answers at once. The 5th failure (the call at 5.4 s) opens it; pybreaker's
    // reset_timeout is inclusive, so the call at exactly 9.4 s is the trial; it fails, and so
    // does the one at 13.4 s (the outage lasts until 15 s); the trial at 17.4 s succeeds.
    let at: Vec<(f64, State)> = b.transitions.iter().map(|t| (t.at_s, t.to)).collect();
    assert_eq!(
        at,
        [
            (5.4, State::Open),
            (9.4, State::HalfOpen),
            (9.4, State::Open),
            (13.4, State::HalfOpen),
            (13.4, State::Open),
            (17.4, State::HalfOpen),
            (17.401, State::Closed)
        ]
    );
    assert_eq!(b.opened, 3);
    // Refused: 5.5–9.3 s, 9.5–13.3 s, 13.5–17.3 s: 39 calls each.
    assert_eq!((b.short_circuited, b.fallback), (117, 117));
    assert_eq!(s.counts.succeeded, 300 - 5 - 2 - 117);
    assert_eq!(s.status.get("UNAVAILABLE"), Some(&(5 + 2 + 117)));
    let state = |t: u64| s.timeline.iter().find(|r| r.t == t).unwrap().breaker;
    assert_eq!(state(3), Some(State::Closed));
    assert_eq!(state(7), Some(State::Open));
    assert_eq!(state(20), Some(State::Closed));
}
