//! Hedging flavors: the libraries without hedging, and where each library's hedging timers
//! depart from A6's.

use resilbench::call::{Failure, FailureSource};
use tonic::Code;

use super::{ALONE, each, end, hedge_config, profile};
use crate::common::scripted::{drive_profile, every, ms, profile as layers_profile, status};

const SLOW_ORIGINAL: &str = r#"[[backend.scripts]]
ids = ["0"]
steps = [{ status = "OK", latency = "500ms" }]"#;

/// C-core and grpc-go have no hedging: the hedging policy is ignored, the one attempt takes
/// 500 ms, where A6, grpc-java and grpc-js send a hedge at 50 ms that answers at 51 ms (the
/// issue measured 501 ms and 51 ms on a real clock). The plan says so in words.
#[test]
fn c_core_and_grpc_go_ignore_the_hedging_policy() {
    let clients = ["a6", "grpc-java", "grpc-js", "c-core", "grpc-go"];
    let runs = each(&hedge_config("0.05s", ""), SLOW_ORIGINAL, &clients, &ALONE);
    for run in &runs[..3] {
        assert_eq!(run.times(0), [ms(0), ms(50)]);
        assert_eq!(end(run, 0), (Code::Ok, ms(51)));
    }
    for run in &runs[3..] {
        assert_eq!(run.times(0), [ms(0)]);
        assert_eq!(end(run, 0), (Code::Ok, ms(500)));
    }
    let plan = crate::common::plan(&profile(&hedge_config("0.05s", ""), "", &clients));
    let warned: Vec<bool> = plan
        .strategies
        .iter()
        .map(|s| s.client_warning().is_some())
        .collect();
    assert_eq!(warned, [false, false, false, true, true]);
    assert!(
        plan.strategies[3]
            .client_warning()
            .unwrap()
            .contains("each call is sent once")
    );
    // With a `retry` layer above, calls are still sent again: the warning says by what.
    let retried = profile(&hedge_config("0.05s", ""), "", &["c-core"]).replace(
        "service_config =",
        "layers = [{ kind = \"retry\" }]\nservice_config =",
    );
    let warning = crate::common::plan(&retried).strategies[0]
        .client_warning()
        .unwrap();
    assert!(
        warning.contains("ignored")
            && warning.contains("`retry`")
            && !warning.contains("sent once"),
        "{warning}"
    );
}

/// 20 hedged calls (3 attempts, 10 ms apart) that always fail, retryThrottling {10, 0.1}:
/// A6 sends 3 + 2 + 18 × 1 = 23 attempts (call 1's second failure leaves 5 tokens, and every
/// later call's first failure is throttled); grpc-java 23 too; grpc-js never reads the
/// throttle: 60 attempts, three times the load on a backend that is down.
#[test]
fn grpc_js_hedges_ignore_the_throttle() {
    let backend = "[[backend.scripts]]\nevery = 1\nsteps = [\"UNAVAILABLE\", \"UNAVAILABLE\", \
                   \"UNAVAILABLE\"]";
    let clients = ["a6", "grpc-java", "grpc-js"];
    let runs = each(
        &hedge_config("0.01s", r#"{"maxTokens": 10, "tokenRatio": 0.1}"#),
        backend,
        &clients,
        &every(20, ms(1000)),
    );
    let sent: Vec<usize> = runs.iter().map(|r| r.sent.len()).collect();
    assert_eq!(sent, [23, 23, 60]);
    for run in &runs {
        assert!(run.ended.iter().all(|e| e.code == Code::Unavailable));
    }
}

const FAIL_AT_50: &str = r#"[[backend.scripts]]
ids = ["0"]
steps = [{ status = "UNAVAILABLE", latency = "50ms", pushback = "PUSHBACK" }, { status = "OK", latency = "400ms" }, { status = "OK", latency = "400ms" }]"#;

/// Hedging every 100 ms; the original fails non-fatally at 50 ms with pushback 100. A6 (and
/// grpc-java 1.41) move the next hedge to 150 ms, the third to 250 ms. grpc-js starts a
/// one-shot timer for 150 ms and leaves its hedging timer running: the next hedge goes at
/// 100 ms, the third at 150 ms. grpc-java from 1.57 zeroes a positive pushback: at once (50
/// ms), then 150 ms.
#[test]
fn pushback_on_a_hedge_moves_the_next_one_differently() {
    let clients = ["a6", "grpc-java@1.41", "grpc-js", "grpc-java@1.57"];
    let backend = FAIL_AT_50.replace("PUSHBACK", "100");
    let runs = each(&hedge_config("0.1s", ""), &backend, &clients, &ALONE);
    assert_eq!(runs[0].times(0), [ms(0), ms(150), ms(250)]);
    assert_eq!(runs[1].times(0), [ms(0), ms(150), ms(250)]);
    assert_eq!(runs[2].times(0), [ms(0), ms(100), ms(150)]);
    assert_eq!(runs[3].times(0), [ms(0), ms(50), ms(150)]);
    assert_eq!(end(&runs[0], 0), (Code::Ok, ms(550)));
    assert_eq!(end(&runs[2], 0), (Code::Ok, ms(500)));
}

/// The same without pushback: A6 and grpc-js send the next hedge at once (50 ms; 51 ms for
/// Node's 1 ms timer floor); grpc-java, in every release, waits for its timer: 100 ms.
#[test]
fn grpc_java_waits_for_the_hedging_delay_after_a_non_fatal_status() {
    let clients = ["a6", "grpc-js", "grpc-java@1.41", "grpc-java"];
    let backend = FAIL_AT_50.replace(", pushback = \"PUSHBACK\"", "");
    let runs = each(&hedge_config("0.1s", ""), &backend, &clients, &ALONE);
    assert_eq!(runs[0].times(0), [ms(0), ms(50), ms(150)]);
    assert_eq!(runs[1].times(0), [ms(0), ms(51), ms(151)]);
    assert_eq!(runs[2].times(0), [ms(0), ms(100), ms(200)]);
    assert_eq!(runs[3].times(0), [ms(0), ms(100), ms(200)]);
}

/// retryThrottling {3, 0.1} (threshold 1.5), hedges 10 ms apart; the original answers OK at
/// 100 ms, every hedge fails UNAVAILABLE after 1 ms. A6: hedge 2 fails (3 → 2, allowed, next
/// hedge at once), hedge 3 fails (→ 1: no more hedges), and the original wins at 100 ms.
/// grpc-java: hedge 3 waits for its timer (20 ms), fails at 21 ms (→ 1, throttled) and that
/// ends the call at once, cancelling the original.
#[test]
fn grpc_java_ends_the_call_on_a_throttled_hedge_failure() {
    let backend = r#"[[backend.scripts]]
ids = ["0"]
steps = [{ status = "OK", latency = "100ms" }, "UNAVAILABLE", "UNAVAILABLE"]"#;
    let clients = ["a6", "grpc-java"];
    let runs = each(
        &hedge_config("0.01s", r#"{"maxTokens": 3, "tokenRatio": 0.1}"#),
        backend,
        &clients,
        &ALONE,
    );
    assert_eq!(runs[0].times(0), [ms(0), ms(10), ms(11)]);
    assert_eq!(end(&runs[0], 0), (Code::Ok, ms(100)));
    assert_eq!(runs[1].times(0), [ms(0), ms(10), ms(20)]);
    assert_eq!(end(&runs[1], 0), (Code::Unavailable, ms(21)));
}

/// A hedge fails non-fatally with pushback -1 at 11 ms while the original runs (OK at 100
/// ms). A6, grpc-java: no more hedges, and the original wins. grpc-js commits the failed hedge:
/// the call fails at 11 ms and the original is cancelled.
#[test]
fn grpc_js_ends_a_hedged_call_on_a_dont_retry_pushback() {
    let backend = r#"[[backend.scripts]]
ids = ["0"]
steps = [{ status = "OK", latency = "100ms" }, { status = "UNAVAILABLE", pushback = "-1" }]"#;
    let clients = ["a6", "grpc-java", "grpc-js"];
    let runs = each(&hedge_config("0.01s", ""), backend, &clients, &ALONE);
    for run in &runs[..2] {
        assert_eq!(run.times(0), [ms(0), ms(10)]);
        assert_eq!(end(run, 0), (Code::Ok, ms(100)));
    }
    assert_eq!(end(&runs[2], 0), (Code::Unavailable, ms(11)));
}

/// hedgingDelay 0: A6 sends every attempt at once; grpc-js re-arms a `setTimeout(0)`, which
/// Node runs after 1 ms: attempts at 0, 1 and 2 ms.
#[test]
fn grpc_js_timers_wait_at_least_a_millisecond() {
    let slow = "[[backend.scripts]]\nids = [\"0\"]\nsteps = [{ status = \"OK\", latency = \"500ms\" }, \
                { status = \"OK\", latency = \"500ms\" }, { status = \"OK\", latency = \"500ms\" }]";
    let runs = each(&hedge_config("0s", ""), slow, &["a6", "grpc-js"], &ALONE);
    assert_eq!(runs[0].times(0), [ms(0), ms(0), ms(0)]);
    assert_eq!(runs[1].times(0), [ms(0), ms(1), ms(2)]);
}

/// Node truncates a `setTimeout` delay to whole milliseconds, and grpc-js computes the
/// hedging delay in floating point from the config's text (`Number("1.001") * 1000` is
/// 1000.9999999999999): hedgingDelay "0.0105s" sends hedges at 10 and 20 ms, "1.001s" at 1000
/// and 2000 ms, where A6 sends them at 10.5 and 21 ms, 1001 and 2002 ms.
#[test]
fn grpc_js_timers_truncate_to_whole_milliseconds() {
    let slow = "[[backend.scripts]]\nids = [\"0\"]\nsteps = [{ status = \"OK\", latency = \"3s\" }, \
                { status = \"OK\", latency = \"3s\" }, { status = \"OK\", latency = \"3s\" }]";
    let us = |v: u64| std::time::Duration::from_micros(v);
    let runs = each(
        &hedge_config("0.0105s", ""),
        slow,
        &["a6", "grpc-js"],
        &ALONE,
    );
    assert_eq!(runs[0].times(0), [ms(0), us(10_500), ms(21)]);
    assert_eq!(runs[1].times(0), [ms(0), ms(10), ms(20)]);
    let runs = each(
        &hedge_config("1.001s", ""),
        slow,
        &["a6", "grpc-js"],
        &ALONE,
    );
    assert_eq!(runs[0].times(0), [ms(0), ms(1001), ms(2002)]);
    assert_eq!(runs[1].times(0), [ms(0), ms(1000), ms(2000)]);
}

/// Four hedged calls whose original fails at 1 ms with a *fatal* status (INVALID_ARGUMENT) and
/// pushback -1, then a call that succeeds (retryThrottling {10, 0.1}). A6 and grpc-java count
/// a "don't retry" pushback as a throttling failure whatever the status (`makeHedgingDecision`:
/// `!isFatal || pushbackMillis < 0`): 10 → 6, then 6.1. grpc-js takes a token only for a
/// non-fatal status (`handleProcessedStatus`, case 'HEDGING'): the bucket stays full.
#[test]
fn grpc_js_takes_no_token_for_a_dont_retry_pushback_on_a_fatal_hedge() {
    let backend = r#"[[backend.scripts]]
ids = ["0", "1", "2", "3"]
steps = [{ status = "INVALID_ARGUMENT", pushback = "-1" }]"#;
    let clients = ["a6", "grpc-java", "grpc-js"];
    let runs = each(
        &hedge_config("0.01s", r#"{"maxTokens": 10, "tokenRatio": 0.1}"#),
        backend,
        &clients,
        &every(5, ms(100)),
    );
    let tokens: Vec<f64> = runs.iter().map(|r| r.last_tokens()).collect();
    assert_eq!(tokens, [6.1, 6.1, 10.0]);
    for run in &runs {
        assert_eq!(run.sent.len(), 5, "one attempt per call");
        assert_eq!(end(run, 0), (Code::InvalidArgument, ms(1)));
    }
}

/// grpc-java counts a throttling success when an attempt's response headers arrive
/// (`Sublistener.headersRead` → `throttle.onSuccess()`), hedged or not: a hedged stream that
/// fails after its first message adds tokenRatio. Call 0's two attempts fail non-fatally
/// (10 → 8); call 1's original fails after a message (committed: the call fails with it).
/// A6 counts only calls that end OK: 8; grpc-java: 8.1.
#[test]
fn grpc_java_counts_a_success_when_a_hedge_s_headers_arrive() {
    let layers = |client: &str| {
        layers_profile(
            "10s",
            &format!(
                r#"client = "{client}"
[[strategies.layers]]
kind = "grpc_hedge"
max_attempts = 2
hedging_delay = "10ms"
non_fatal_status_codes = ["UNAVAILABLE"]
throttle = {{ max_tokens = 10, token_ratio = 0.1 }}
"#
            ),
        )
    };
    let tokens: Vec<f64> = ["a6", "grpc-java"]
        .iter()
        .map(|client| {
            let run = drive_profile(&layers(client), &[(0, ms(0)), (1, ms(100))], |call| {
                if call.id == 0 {
                    return (ms(1), status(Code::Unavailable));
                }
                let after_a_message = Failure {
                    code: Code::Unavailable,
                    pushback: None,
                    source: FailureSource::Backend,
                    messages: 1,
                    committed: true,
                };
                (ms(1), Err(after_a_message))
            });
            assert_eq!(run.of(0).len(), 2, "{client}");
            assert_eq!(end(&run, 1), (Code::Unavailable, ms(101)), "{client}");
            run.last_tokens()
        })
        .collect();
    assert_eq!(tokens, [8.0, 8.1]);
}

/// Call 0's hedge is scheduled at 0 ms, due at 50 ms, while the bucket is full
/// (retryThrottling {10, 0.1}); calls 1 to 5 then fail non-fatally with a "don't retry"
/// pushback, a token each: 5 left, the threshold. A6 reads the throttle when the hedge is due
/// and sends nothing: call 0 waits for its slow original (100 ms). grpc-java read it when it
/// scheduled the hedge (`start()`), and sends it: OK at 51 ms.
#[test]
fn grpc_java_sends_a_hedge_the_throttle_allowed_when_it_was_scheduled() {
    let backend = r#"[[backend.scripts]]
ids = ["0"]
steps = [{ status = "OK", latency = "100ms" }, "OK"]
[[backend.scripts]]
ids = ["1", "2", "3", "4", "5"]
steps = [{ status = "UNAVAILABLE", pushback = "-1" }]"#;
    let calls: Vec<(u64, std::time::Duration)> = (0..6)
        .map(|id| (id, ms(if id == 0 { 0 } else { 9 + id })))
        .collect();
    let runs = each(
        &hedge_config("0.05s", r#"{"maxTokens": 10, "tokenRatio": 0.1}"#),
        backend,
        &["a6", "grpc-java"],
        &calls,
    );
    assert_eq!(runs[0].times(0), [ms(0)]);
    assert_eq!(end(&runs[0], 0), (Code::Ok, ms(100)));
    assert_eq!(runs[1].times(0), [ms(0), ms(50)]);
    assert_eq!(end(&runs[1], 0), (Code::Ok, ms(51)));
}
