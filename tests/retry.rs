//! Retry strategies in virtual time, to the letter of their references.
//!
//! Most tests drive a strategy stack (built from profile text, as a run builds it) over a
//! scripted transport: the script decides each attempt's latency and status, and the transport
//! writes down when every attempt was sent. On the paused clock those times are exact, so each
//! test states the attempt times its reference's formula gives, to the nanosecond, with the
//! jitter draws the plan's seed produces. The last tests run whole profiles against the embedded
//! backend and read the figures in results.json.

use std::time::Duration;

use resilbench::call::{AttemptKind, Call, Failure, FailureSource};
use resilbench::keyed::{KeyedStream, Purpose, call_key};
use resilbench::protocol::Pushback;
use resilbench::strategy::retry::grpc::jitter_draw;
use tonic::Code;

use crate::common::scripted::{
    Run, SEED, Seen, drive_profile as drive, every, ms, ok, profile, pushback, status,
};
use crate::common::{plan, run_virtual};

/// A6's wait before retry `n` (1-based) of call `id`: min(initial · multiplier^(n−1), max)
/// × (0.8 + 0.4u), with the plan's draw u.
fn a6_wait(id: u64, n: u32, initial: Duration, multiplier: f64, max: Duration) -> Duration {
    let grown = (initial.as_secs_f64() * multiplier.powi(n as i32 - 1)).min(max.as_secs_f64());
    Duration::from_secs_f64(grown * (0.8 + 0.4 * jitter_draw(SEED, id, n)))
}

const A6: &str = r#"
[[strategies.layers]]
kind = "grpc_retry"
max_attempts = 5
initial_backoff = "100ms"
max_backoff = "300ms"
backoff_multiplier = 2
retryable_status_codes = ["UNAVAILABLE"]
"#;

/// gRFC A6 (as amended, grpc/proposal#452): retry n waits min(0.1 s · 2^(n−1), 0.3 s) ×
/// random(0.8, 1.2). Each attempt is sent 10 ms (its latency) plus that wait after the one
/// before, carries `grpc-previous-rpc-attempts` = n, and the fifth failure ends the call.
#[test]
fn a6_retries_wait_the_capped_exponential_times_a_jitter_in_0_8_to_1_2() {
    let run = drive(&profile("10s", A6), &[(0, Duration::ZERO)], |_| {
        (ms(10), status(Code::Unavailable))
    });
    let mut expected = vec![Duration::ZERO];
    for n in 1..=4 {
        let wait = a6_wait(0, n, ms(100), 2.0, ms(300));
        expected.push(*expected.last().unwrap() + ms(10) + wait);
    }
    assert_eq!(run.times(0), expected);
    // The windows: 80–120, 160–240, then the 300 ms cap: 240–360, 240–360.
    let waits = run.waits(0);
    for (wait, cap) in waits.iter().zip([100, 200, 300, 300]) {
        assert!(
            *wait >= ms(cap) * 8 / 10 && *wait < ms(cap) * 12 / 10,
            "{waits:?}"
        );
    }
    let sent = run.of(0);
    assert_eq!(
        sent.iter().map(|s| s.previous).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(sent[0].kind, AttemptKind::Original);
    assert!(sent[1..].iter().all(|s| s.kind == AttemptKind::Retry));
    assert_eq!(run.denied("max_attempts"), 1);
    let end = run.ended(0);
    assert_eq!(
        (end.code, end.at),
        (Code::Unavailable, expected[4] + ms(10))
    );
}

/// Over many calls the jitter covers its window: every wait lies in [0.8, 1.2) of the
/// exponential, and both ends of the window are reached.
#[test]
fn a6_jitter_spreads_across_the_whole_window() {
    let run = drive(&profile("10s", A6), &every(400, ms(2000)), |_| {
        (ms(10), status(Code::Unavailable))
    });
    let ratios: Vec<f64> = (0..400)
        .map(|id| run.waits(id)[0].as_secs_f64() / 0.1)
        .collect();
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    assert!(lo >= 0.8 && hi < 1.2, "{lo} {hi}");
    assert!(lo < 0.81 && hi > 1.19, "the window is covered: {lo} {hi}");
    assert_eq!(run.retries(), 1600);
}

/// The legacy rule (A6 as first written; grpc-js still uses it): random(0, exponential).
#[test]
fn legacy_jitter_waits_between_zero_and_the_capped_exponential() {
    let layers = A6.replace("max_attempts = 5", "max_attempts = 5\njitter = \"legacy\"");
    let run = drive(&profile("10s", &layers), &[(3, Duration::ZERO)], |_| {
        (ms(10), status(Code::Unavailable))
    });
    let mut t = Duration::ZERO;
    let mut expected = vec![t];
    for (n, cap) in (1..=4).zip([0.1, 0.2, 0.3, 0.3]) {
        t += ms(10) + Duration::from_secs_f64(cap * jitter_draw(SEED, 3, n));
        expected.push(t);
    }
    assert_eq!(run.times(3), expected);
}

/// A6: "maxAttempts ... values greater than 5 are treated as 5".
#[test]
fn max_attempts_above_five_count_as_five() {
    let layers = A6.replace("max_attempts = 5", "max_attempts = 9");
    let run = drive(&profile("10s", &layers), &[(0, Duration::ZERO)], |_| {
        (ms(1), status(Code::Unavailable))
    });
    assert_eq!(run.of(0).len(), 5);
    assert_eq!(run.denied("max_attempts"), 1);
}

/// A6 "Pushback": a valid `grpc-retry-pushback-ms` is the wait, exactly, instead of the backoff,
/// and the backoff starts again from initialBackoff afterwards.
#[test]
fn a_valid_pushback_sets_the_wait_and_restarts_the_backoff() {
    let run = drive(&profile("10s", A6), &[(0, Duration::ZERO)], |call| {
        let outcome = match call.ordinal {
            1 => pushback(Code::Unavailable, Pushback::after_ms(250)),
            _ => status(Code::Unavailable),
        };
        (ms(10), outcome)
    });
    let w1 = a6_wait(0, 1, ms(100), 2.0, ms(300));
    // After the pushback the sequence restarts: the next wait is initialBackoff's (n = 1),
    // drawn for the call's third retry.
    let w3 = Duration::from_secs_f64(0.1 * (0.8 + 0.4 * jitter_draw(SEED, 0, 3)));
    let w4 = Duration::from_secs_f64(0.2 * (0.8 + 0.4 * jitter_draw(SEED, 0, 4)));
    let t1 = ms(10) + w1;
    let t2 = t1 + ms(10) + ms(250);
    let t3 = t2 + ms(10) + w3;
    let t4 = t3 + ms(10) + w4;
    assert_eq!(run.times(0), [Duration::ZERO, t1, t2, t3, t4]);
    let pushed: Vec<_> = run
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Retry { pushback: true, .. }))
        .collect();
    assert_eq!(
        pushed,
        [&Seen::Retry {
            id: 0,
            wait: ms(250),
            pushback: true
        }]
    );
}

/// A pushback of 0 ms retries at once.
#[test]
fn a_zero_pushback_retries_at_once() {
    let run = drive(&profile("10s", A6), &[(0, Duration::ZERO)], |call| {
        let outcome = match call.ordinal {
            0 => pushback(Code::Unavailable, Pushback::after_ms(0)),
            _ => ok(),
        };
        (ms(10), outcome)
    });
    assert_eq!(run.times(0), [Duration::ZERO, ms(10)]);
    assert_eq!(run.ended(0).code, Code::Ok);
}

const THROTTLED: &str = r#"
[[strategies.layers]]
kind = "grpc_retry"
max_attempts = 5
initial_backoff = "10ms"
max_backoff = "50ms"
backoff_multiplier = 2
retryable_status_codes = ["UNAVAILABLE"]
throttle = { max_tokens = 10, token_ratio = 0.1 }
"#;

/// A6: a negative or unparseable pushback means "do not retry", and that RPC counts as a
/// throttling failure whatever its status; a status not in retryableStatusCodes ends the call
/// and takes no token.
#[test]
fn a_negative_pushback_stops_and_takes_a_token_a_non_retryable_status_takes_none() {
    let run = drive(&profile("10s", THROTTLED), &every(4, ms(100)), |call| {
        let outcome = match call.id {
            0 => pushback(Code::Unavailable, Pushback::dont_retry()),
            1 => pushback(Code::InvalidArgument, Pushback::dont_retry()),
            2 => status(Code::InvalidArgument),
            _ => status(Code::PermissionDenied),
        };
        (ms(1), outcome)
    });
    assert_eq!(run.sent.len(), 4, "no call was retried");
    assert_eq!(run.denied("pushback"), 2);
    assert_eq!(run.denied("not_retryable"), 2);
    // 10 − 1 (call 0) − 1 (call 1), and nothing for calls 2 and 3.
    assert_eq!(run.last_tokens(), 8.0);
}

/// The throttle, worked out (A6 "Throttling Retry Attempts"): maxTokens 10, tokenRatio 0.1,
/// so the bucket starts at 10 and retries need more than 5 tokens *after* the failure's token
/// is taken.
/// - Call 0 fails five times: 9, 8, 7, 6 (> 5: retried each time), then 5 (not > 5: the call
///   ends, throttled, which A6 checks before maxAttempts). 4 retries.
/// - Calls 1–4 take the bucket to 4, 3, 2, 1; calls 5–99 to 0: one attempt each.
///
/// So 100 calls make 104 attempts, 4 retries, and 100 calls end throttled.
#[test]
fn the_throttle_allows_four_retries_then_none_against_an_always_failing_backend() {
    let run = drive(&profile("10s", THROTTLED), &every(100, ms(1000)), |_| {
        (ms(1), status(Code::Unavailable))
    });
    assert_eq!(run.sent.len(), 104);
    assert_eq!(run.retries(), 4);
    assert_eq!(run.of(0).len(), 5);
    assert_eq!(run.denied("throttle"), 100);
    assert_eq!(run.denied("max_attempts"), 0);
    assert_eq!(run.last_tokens(), 0.0);
}

/// Refilling the bucket from empty: each success adds 0.1. After s successes a failure leaves
/// 0.1·s − 1 tokens, which must exceed 5: s > 60. So 60 successes are not enough and 61 are,
/// for exactly one retry (its failure leaves 4.1).
#[test]
fn sixty_one_successes_re_enable_one_retry_sixty_do_not() {
    for (successes, retried) in [(60, false), (61, true)] {
        // Calls 0–19 fail (emptying the bucket), then `successes` calls succeed, then one fails.
        let last = 20 + successes;
        let run = drive(
            &profile("10s", THROTTLED),
            &every(last + 1, ms(1000)),
            move |call| {
                let healthy = (20..last).contains(&call.id);
                let outcome = if healthy {
                    ok()
                } else {
                    status(Code::Unavailable)
                };
                (ms(1), outcome)
            },
        );
        let attempts = run.of(last).len();
        assert_eq!(attempts, if retried { 2 } else { 1 }, "{successes}");
        assert_eq!(run.retries(), 4 + usize::from(retried), "{successes}");
        // 60 successes: 6.0 − 1 = 5.0 left; 61: 6.1 − 1 − 1 (the retry failed too) = 4.1.
        assert_eq!(run.last_tokens(), if retried { 4.1 } else { 5.0 });
    }
}

/// The call deadline covers every attempt and every wait (A6): a backoff that would end past
/// the deadline is not waited; the call ends at its deadline with DEADLINE_EXCEEDED, as a gRPC
/// client's does.
#[test]
fn a_wait_past_the_deadline_ends_the_call_at_the_deadline() {
    let layers = A6
        .replace("\"100ms\"", "\"1s\"")
        .replace("\"300ms\"", "\"2s\"");
    let run = drive(&profile("500ms", &layers), &[(0, Duration::ZERO)], |_| {
        (ms(10), status(Code::Unavailable))
    });
    assert_eq!(run.times(0), [Duration::ZERO]);
    assert_eq!(run.denied("deadline"), 1);
    let end = run.ended(0);
    assert_eq!((end.code, end.at), (Code::DeadlineExceeded, ms(500)));
}

/// An attempt still running at the deadline is cut there and not retried; every attempt
/// carries the deadline that is left (`grpc-timeout`).
#[test]
fn an_attempt_running_at_the_deadline_is_cut_and_not_retried() {
    let run = drive(&profile("300ms", A6), &[(0, ms(5))], |call| {
        if call.ordinal == 0 {
            (ms(10), status(Code::Unavailable))
        } else {
            (ms(1000), ok())
        }
    });
    let sent = run.of(0);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|s| s.deadline == ms(305)), "{sent:?}");
    let end = run.ended(0);
    assert_eq!((end.code, end.at), (Code::DeadlineExceeded, ms(305)));
}

/// A6 "When Retries are Valid": a stream that has received a message is committed and is not
/// retried, whatever its status.
#[test]
fn a_stream_that_received_a_message_is_not_retried() {
    let run = drive(&profile("10s", A6), &[(0, Duration::ZERO)], |_| {
        let failure = Failure {
            code: Code::Unavailable,
            pushback: None,
            source: FailureSource::Backend,
            messages: 1,
            committed: true,
        };
        (ms(10), Err(failure))
    });
    assert_eq!(run.of(0).len(), 1);
    assert_eq!(run.denied("committed"), 1);
}

/// A generic retrier with the AWS blog's backoff variants, `max_attempts` 6, base 100 ms,
/// cap 1 s. `attempt` in the blog's formulas is n − 1 for the n-th retry.
fn aws(jitter: &str) -> Run {
    let layers = format!(
        r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 6
retry_on = ["UNAVAILABLE"]
backoff = {{ jitter = "{jitter}", base = "100ms", cap = "1s" }}
"#
    );
    drive(&profile("60s", &layers), &[(5, Duration::ZERO)], |_| {
        (ms(10), status(Code::Unavailable))
    })
}

/// The draw of retry `n` of call 5.
fn u(n: u32) -> f64 {
    jitter_draw(SEED, 5, n)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Exponential (no jitter): min(cap, base · 2^attempt) = 100, 200, 400, 800, 1000 ms.
#[test]
fn aws_exponential_backoff_doubles_to_the_cap() {
    let run = aws("none");
    assert_eq!(run.waits(5), [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
    let t: Vec<_> = run.times(5);
    assert_eq!(
        t[5],
        ms(50) + ms(2500),
        "5 latencies and the 2.5 s of waits"
    );
}

/// Full jitter: random(0, min(cap, base · 2^attempt)).
#[test]
fn aws_full_jitter_draws_between_zero_and_the_exponential() {
    let run = aws("full");
    let want: Vec<_> = (1..=5)
        .zip([0.1, 0.2, 0.4, 0.8, 1.0])
        .map(|(n, t)| secs(t * u(n)))
        .collect();
    assert_eq!(run.waits(5), want);
    let mut at = Duration::ZERO;
    let mut times = vec![at];
    for w in &want {
        at += ms(10) + *w;
        times.push(at);
    }
    assert_eq!(run.times(5), times);
}

/// Equal jitter: t/2 + random(0, t/2), t = min(cap, base · 2^attempt).
#[test]
fn aws_equal_jitter_keeps_half_the_exponential() {
    let run = aws("equal");
    let want: Vec<_> = (1..=5)
        .zip([0.1, 0.2, 0.4, 0.8, 1.0])
        .map(|(n, t)| secs(t / 2.0 + u(n) * t / 2.0))
        .collect();
    assert_eq!(run.waits(5), want);
}

/// Decorrelated jitter: sleep = min(cap, random(base, sleep · 3)), sleep starting at base.
#[test]
fn aws_decorrelated_jitter_grows_from_the_previous_wait() {
    let run = aws("decorrelated");
    let mut sleep = 0.1;
    let mut want = Vec::new();
    for n in 1..=5 {
        sleep = (0.1 + u(n) * (sleep * 3.0 - 0.1)).min(1.0);
        want.push(secs(sleep));
    }
    assert_eq!(run.waits(5), want);
    assert!(want.iter().all(|w| *w >= ms(100) && *w <= ms(1000)));
}

const PER_TRY: &str = r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 3
retry_on = ["UNAVAILABLE"]
backoff = { jitter = "none", base = "20ms", cap = "1s" }
[[strategies.layers]]
kind = "timeout"
timeout = "50ms"
"#;

/// Envoy's `per_try_timeout`: an attempt that exceeds it is cancelled and counts as a retryable
/// failure (even though DEADLINE_EXCEEDED is not in `retry_on`); each attempt carries the
/// tighter deadline. Attempts at 0, 50 + 20, 120 + 50 + 40 ms.
#[test]
fn a_per_try_timeout_cuts_the_attempt_and_the_retrier_retries_it() {
    let run = drive(&profile("10s", PER_TRY), &[(0, Duration::ZERO)], |_| {
        (ms(200), ok())
    });
    assert_eq!(run.times(0), [ms(0), ms(70), ms(160)]);
    let deadlines: Vec<_> = run.of(0).iter().map(|s| s.deadline).collect();
    assert_eq!(deadlines, [ms(50), ms(120), ms(210)]);
    let end = run.ended(0);
    assert_eq!((end.code, end.at), (Code::DeadlineExceeded, ms(210)));
}

/// Deadline propagation: the backend is told the time left less the strategy's margin, and at
/// most the per-try timeout (min(parent − margin, per-try)).
#[test]
fn the_propagated_deadline_keeps_a_margin_and_respects_the_per_try_timeout() {
    let margined = |margin: &str| {
        profile("100ms", PER_TRY).replace(
            "name = \"s\"",
            &format!("name = \"s\"\ndeadline_margin = \"{margin}\""),
        )
    };
    // Margin 20 ms: first attempt min(100 − 20, 0 + 50) = 50; the second (at 70 ms) gets
    // min(80, 70 + 50) = 80; the client still waits until its own deadline.
    let run = drive(&margined("20ms"), &[(0, Duration::ZERO)], |_| {
        (ms(200), ok())
    });
    let sent = run.of(0);
    assert_eq!((sent[0].deadline, sent[1].deadline), (ms(50), ms(80)));
    assert_eq!(run.ended(0).at, ms(100));
    // Margin 40 ms: at 70 ms the deadline to send (60 ms) has passed: the second attempt
    // fails at once without reaching the backend, and the call ends with it.
    let run = drive(&margined("40ms"), &[(0, Duration::ZERO)], |_| {
        (ms(200), ok())
    });
    let sent = run.of(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].deadline, ms(50));
    let end = run.ended(0);
    assert_eq!((end.at, end.code), (ms(70), Code::DeadlineExceeded));
}

/// The per-try timeout never outlasts the call deadline: the last attempt gets what is left.
#[test]
fn a_per_try_timeout_stays_inside_the_call_deadline() {
    let run = drive(&profile("100ms", PER_TRY), &[(0, Duration::ZERO)], |_| {
        (ms(200), ok())
    });
    let sent = run.of(0);
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[1].at, sent[1].deadline), (ms(70), ms(100)));
    assert_eq!(run.ended(0).at, ms(100));
}

/// gRPC's retry policy is not Envoy's: an attempt cut by a per-try timeout is retried only if
/// DEADLINE_EXCEEDED is one of its retryableStatusCodes.
#[test]
fn grpc_retry_retries_a_cut_attempt_only_when_deadline_exceeded_is_listed() {
    let layers = |codes: &str| {
        format!(
            r#"
[[strategies.layers]]
kind = "grpc_retry"
max_attempts = 3
initial_backoff = "10ms"
max_backoff = "10ms"
backoff_multiplier = 1
retryable_status_codes = [{codes}]
[[strategies.layers]]
kind = "timeout"
timeout = "50ms"
"#
        )
    };
    let slow = |_: &Call| (ms(200), ok());
    let unlisted = drive(
        &profile("10s", &layers("\"UNAVAILABLE\"")),
        &[(0, Duration::ZERO)],
        slow,
    );
    assert_eq!(unlisted.of(0).len(), 1);
    assert_eq!(unlisted.denied("not_retryable"), 1);
    let listed = drive(
        &profile("10s", &layers("\"UNAVAILABLE\", \"DEADLINE_EXCEEDED\"")),
        &[(0, Duration::ZERO)],
        slow,
    );
    assert_eq!(listed.of(0).len(), 3);
}

/// A plain retrier honours pushback only when asked to.
#[test]
fn a_generic_retrier_honours_pushback_only_when_asked() {
    let layers = |honour: bool| {
        format!(
            r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 2
pushback = {honour}
backoff = {{ jitter = "none", base = "20ms", cap = "1s" }}
"#
        )
    };
    let answer = |call: &Call| {
        let outcome = match (call.id, call.ordinal) {
            (0, 0) => pushback(Code::Unavailable, Pushback::after_ms(300)),
            (1, 0) => pushback(Code::Unavailable, Pushback::dont_retry()),
            _ => ok(),
        };
        (ms(10), outcome)
    };
    let calls = [(0, Duration::ZERO), (1, Duration::ZERO)];
    let honoured = drive(&profile("10s", &layers(true)), &calls, answer);
    assert_eq!(honoured.times(0), [ms(0), ms(310)]);
    assert_eq!(honoured.times(1), [ms(0)]);
    let ignored = drive(&profile("10s", &layers(false)), &calls, answer);
    assert_eq!(ignored.times(0), [ms(0), ms(30)]);
    assert_eq!(ignored.times(1), [ms(0), ms(30)]);
}

/// Finagle's RetryBudget with no reserve: each call deposits a fifth of a retry (20%), each
/// retry withdraws a whole one. 100 failing calls within the ttl earn exactly 20 retries, and
/// every call ends refused by the budget (a call that got its retry is refused its second).
#[test]
fn a_tps_budget_of_20_percent_allows_20_retries_per_100_calls() {
    let layers = r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 3
backoff = { jitter = "none", base = "1ms", cap = "1ms" }
budget = { kind = "tps", ttl = "10s", min_per_second = 0, retry_percent = 0.2 }
"#;
    let run = drive(&profile("10s", layers), &every(100, ms(10)), |_| {
        (ms(1), status(Code::Unavailable))
    });
    assert_eq!(run.retries(), 20);
    assert_eq!(run.sent.len(), 120);
    assert_eq!(run.denied("budget"), 100);
    // The fifth call is the first with a whole retry in the bank.
    assert_eq!(run.of(3).len(), 1);
    assert_eq!(run.of(4).len(), 2);
}

/// The budget is consulted only for a retry that will happen: ten calls whose pushback (1 s)
/// outlasts their 500 ms deadline end at the deadline without spending it, so the eleventh
/// call still has all eleven deposits (one retry each at 100%) for its 11 retries.
#[test]
fn a_retry_refused_by_the_deadline_does_not_spend_the_budget() {
    let layers = r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 12
pushback = true
backoff = { jitter = "none", base = "1ms", cap = "1ms" }
budget = { kind = "tps", ttl = "10s", min_per_second = 0, retry_percent = 1.0 }
"#;
    let run = drive(&profile("500ms", layers), &every(11, ms(600)), |call| {
        let outcome = if call.id < 10 {
            pushback(Code::Unavailable, Pushback::after_ms(1000))
        } else {
            status(Code::Unavailable)
        };
        (ms(1), outcome)
    });
    assert_eq!(run.denied("deadline"), 10);
    assert_eq!(run.of(10).len(), 12);
    assert_eq!(run.ended(0).code, Code::DeadlineExceeded);
}

/// Finagle's reserve: `min_per_second` × ttl retries whatever the traffic, renewed as the
/// withdrawals age out of the ttl.
#[test]
fn a_tps_budget_reserve_allows_min_per_second_times_ttl() {
    let layers = r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 2
backoff = { jitter = "none", base = "1ms", cap = "1ms" }
budget = { kind = "tps", ttl = "10s", min_per_second = 10, retry_percent = 0 }
"#;
    // 200 calls in the first second, 200 more 11 s later.
    let calls: Vec<_> = (0..400u64)
        .map(|i| (i, ms(5) * (i % 200) as u32 + ms(11_000) * (i / 200) as u32))
        .collect();
    let run = drive(&profile("10s", layers), &calls, |_| {
        (ms(1), status(Code::Unavailable))
    });
    let early = run
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Retry { id, .. } if *id < 200));
    assert_eq!(early.count(), 100);
    assert_eq!(run.retries(), 200);
}

/// Envoy's retry budget caps retries *in flight* at max(budget_percent × active requests,
/// min_retry_concurrency), the product truncated (`RetryBudgetImpl::max`). Active requests are
/// attempts in flight; a retry is in flight from its scheduling until it ends. 40 calls start
/// at once and fail at the same instant; the k-th failure to be handled (k = 1..40) finds
/// 40 − k attempts still active, so its limit is ⌊0.2 · (40 − k)⌋: 7 for k ≤ 5, 6 for
/// k = 6..10, 5 after. Failures 1–6 get a retry (0 to 5 in flight < 7, 7, 7, 7, 7, 6); the
/// 7th finds 6 in flight against a limit of 6, and from then on the limit only falls: 6
/// retries, 34 calls refused. With a floor of 10 the floor rules: 10 retries.
#[test]
fn an_envoy_budget_caps_retries_in_flight() {
    let layers = |min: u32| {
        format!(
            r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 2
backoff = {{ jitter = "none", base = "1ms", cap = "1ms" }}
budget = {{ kind = "envoy", budget_percent = 20, min_retry_concurrency = {min} }}
"#
        )
    };
    let answer = |call: &Call| match call.ordinal {
        0 => (ms(5), status(Code::Unavailable)),
        _ => (ms(1000), ok()),
    };
    let calls: Vec<_> = (0..40).map(|i| (i, Duration::ZERO)).collect();
    let run = drive(&profile("10s", &layers(3)), &calls, answer);
    assert_eq!((run.retries(), run.denied("budget")), (6, 34));
    let floor = drive(&profile("10s", &layers(10)), &calls, answer);
    assert_eq!((floor.retries(), floor.denied("budget")), (10, 30));
}

/// SRE "Handling Overload", equation 21-1, against a backend that rejects everything: request
/// i (0-based) finds `requests` = i and `accepts` = 0 in the window, so it is rejected locally
/// with probability i / (i + 1), by the plan's keyed draw. After the two-minute window passes
/// without traffic, the history is gone and the next request is sent.
#[test]
fn adaptive_throttling_rejects_with_the_probability_of_equation_21_1() {
    let layers = r#"
[[strategies.layers]]
kind = "adaptive_throttle"
"#;
    let mut calls = every(200, ms(10));
    calls.push((200, ms(200 * 10) + Duration::from_secs(121)));
    let run = drive(&profile("10s", layers), &calls, |_| {
        (ms(1), status(Code::ResourceExhausted))
    });
    let rejected: Vec<u64> = run
        .seen
        .iter()
        .filter_map(|s| match s {
            Seen::Rejected { id } => Some(*id),
            _ => None,
        })
        .collect();
    let want: Vec<u64> = (0..200u64)
        .filter(|&i| {
            let u = KeyedStream::new(SEED, call_key(i), 0, Purpose::Adaptive).open01();
            u < i as f64 / (i as f64 + 1.0)
        })
        .collect();
    assert_eq!(rejected, want);
    assert!(want.len() > 180, "most are rejected: {}", want.len());
    assert_eq!(run.sent.len(), 200 - want.len() + 1, "call 200 is sent");
    assert_eq!(run.ended(want[0]).code, Code::Unavailable);
}

/// The throttle lets everything through while the backend accepts at least 1/K of requests:
/// with every other request accepted (even ids OK, odd ones RESOURCE_EXHAUSTED), request i
/// finds i requests and ⌈i/2⌉ accepts, so requests − 2·accepts ≤ 0 and p = 0 every time.
#[test]
fn adaptive_throttling_sends_everything_while_half_is_accepted() {
    let layers = r#"
[[strategies.layers]]
kind = "adaptive_throttle"
"#;
    let run = drive(&profile("10s", layers), &every(300, ms(10)), |call| {
        let outcome = if call.id % 2 == 0 {
            ok()
        } else {
            status(Code::ResourceExhausted)
        };
        (ms(1), outcome)
    });
    assert_eq!(run.sent.len(), 300);
    assert!(run.seen.iter().all(|s| !matches!(s, Seen::Rejected { .. })));
    // One accept in three is not enough: rejections begin.
    let run = drive(&profile("10s", layers), &every(300, ms(10)), |call| {
        let outcome = if call.id % 3 == 0 {
            ok()
        } else {
            status(Code::ResourceExhausted)
        };
        (ms(1), outcome)
    });
    assert!(run.sent.len() < 300);
}

/// A request that never got an answer was not accepted: connection failures count like
/// rejections, so a throttle in front of a backend that is down sheds load too.
#[test]
fn adaptive_throttling_counts_connection_failures_as_not_accepted() {
    let layers = r#"
[[strategies.layers]]
kind = "adaptive_throttle"
"#;
    let refused = || {
        Err(Failure {
            code: Code::Unavailable,
            pushback: None,
            source: FailureSource::Transport,
            messages: 0,
            committed: false,
        })
    };
    let run = drive(&profile("10s", layers), &every(200, ms(10)), move |_| {
        (ms(1), refused())
    });
    assert!(run.sent.len() < 20, "{} sent", run.sent.len());
}

/// Stacked retriers multiply: an application retrier (3 attempts) above a gRPC retry policy
/// (3 attempts) sends 9 attempts to a failing backend, and each inner sequence carries its own
/// `grpc-previous-rpc-attempts` (a new RPC each time the application retries).
#[test]
fn stacked_retriers_multiply_attempts() {
    let layers = r#"
[[strategies.layers]]
kind = "retry"
max_attempts = 3
backoff = { jitter = "none", base = "100ms", cap = "1s" }
[[strategies.layers]]
kind = "grpc_retry"
max_attempts = 3
initial_backoff = "10ms"
max_backoff = "10ms"
backoff_multiplier = 1
retryable_status_codes = ["UNAVAILABLE"]
"#;
    let run = drive(&profile("60s", layers), &[(0, Duration::ZERO)], |_| {
        (ms(1), status(Code::Unavailable))
    });
    let sent = run.of(0);
    assert_eq!(sent.len(), 9);
    assert_eq!(
        sent.iter().map(|s| s.previous).collect::<Vec<_>>(),
        [0, 1, 2, 0, 1, 2, 0, 1, 2]
    );
    assert_eq!(
        sent.iter().map(|s| s.ordinal).collect::<Vec<_>>(),
        (0..9).collect::<Vec<_>>()
    );
    // Inner waits are 10 ms × [0.8, 1.2); the outer ones are 100 then 200 ms exactly.
    let inner: Vec<_> = run
        .seen
        .iter()
        .filter_map(|s| match s {
            Seen::Retry { wait, .. } => Some(*wait),
            _ => None,
        })
        .collect();
    assert_eq!(inner.len(), 8);
    assert!(inner.contains(&ms(100)) && inner.contains(&ms(200)));
}

/// The whole path, against the embedded backend and into results.json: the throttle figures
/// worked out above (4 retries, 100 calls throttled), the token level in the timeline, and
/// the backend receiving exactly the attempts.
#[test]
fn results_count_retries_denials_and_tokens() {
    let p = plan(&format!(
        r#"
seed = {SEED}
[load]
arrival = "constant"
rate = 1
duration = "100s"
deadline = "10s"
[backend]
latency = "1ms"
errors = {{ UNAVAILABLE = 1.0 }}
[[strategies]]
name = "throttled"
{THROTTLED}
"#
    ));
    let r = run_virtual(&p);
    let s = &r.strategies[0];
    assert_eq!(s.counts.offered, 100);
    assert_eq!((s.attempts.total, s.attempts.retries), (104, 4));
    assert_eq!(
        s.attempts.retry_denied.iter().collect::<Vec<_>>(),
        [(&"throttle".to_string(), &100)]
    );
    assert_eq!(s.backend.as_ref().unwrap().received, 104);
    let tokens: Vec<_> = s.timeline.iter().take(7).map(|t| t.tokens).collect();
    assert_eq!(
        tokens,
        [
            Some(5.0),
            Some(4.0),
            Some(3.0),
            Some(2.0),
            Some(1.0),
            Some(0.0),
            Some(0.0)
        ]
    );
}

/// Pushback from the embedded backend's capacity limit is honoured and counted in
/// results.json's `pushback_waits`.
#[test]
fn results_count_pushback_waits() {
    let p = plan(&format!(
        r#"
seed = {SEED}
[load]
arrival = "constant"
rate = 20
duration = "1s"
deadline = "5s"
[backend]
latency = "100ms"
workers = 1
queue = 0
pushback = {{ fixed = "30ms" }}
[[strategies]]
name = "pushback"
{A6}
"#,
        A6 = A6.replace("\"UNAVAILABLE\"", "\"RESOURCE_EXHAUSTED\"")
    ));
    let r = run_virtual(&p);
    let s = &r.strategies[0];
    assert!(s.attempts.pushback_waits > 0, "{:?}", s.attempts);
    assert_eq!(s.attempts.pushback_waits, s.attempts.retries);
}
