//! Client flavors in virtual time: each departure of a gRPC library from gRFC A6, reproduced
//! by its flavor alone, on the scripted scenario the client-flavors issue measured against the
//! real library (docs/strategies.md, "Client flavors", names the source line of each).
//!
//! Every scenario runs the profile's own backend (its `[[backend.scripts]]`: a status, a
//! latency and a raw `grpc-retry-pushback-ms` per attempt), so the pushback text is read as a
//! client reads it off the wire.

use std::time::Duration;

use resilbench::strategy::retry::grpc::jitter_draw;
use tonic::Code;

use resilbench::call::{Failure, FailureSource};

use crate::common::scripted::{
    Run, SEED, drive_backend, drive_profile, every, ms, profile as layers_profile, status,
};

const ALONE: [(u64, Duration); 1] = [(0, Duration::ZERO)];

/// A service config with a retry policy (maxAttempts 5, 0.1 s × 2 up to 1 s, UNAVAILABLE),
/// with `throttling` (JSON, or empty).
fn retry_config(throttling: &str) -> String {
    let throttle = if throttling.is_empty() {
        String::new()
    } else {
        format!(r#", "retryThrottling": {throttling}"#)
    };
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "resilbench.v1.Backend"}}],
        "retryPolicy": {{"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "1s",
          "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}}}]{throttle}}}"#
    )
}

/// A service config with a hedging policy: 3 attempts, `delay` apart, UNAVAILABLE non-fatal.
fn hedge_config(delay: &str, throttling: &str) -> String {
    let throttle = if throttling.is_empty() {
        String::new()
    } else {
        format!(r#", "retryThrottling": {throttling}"#)
    };
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "resilbench.v1.Backend"}}],
        "hedgingPolicy": {{"maxAttempts": 3, "hedgingDelay": "{delay}",
          "nonFatalStatusCodes": ["UNAVAILABLE"]}}}}]{throttle}}}"#
    )
}

/// A profile with one strategy per client in `clients`, each with `config`, against a 1 ms
/// backend with `backend` (its scripts), calls' deadline 10 s.
fn profile(config: &str, backend: &str, clients: &[&str]) -> String {
    let mut text = format!(
        "seed = {SEED}\n[load]\nrate = 1\nduration = \"10s\"\ndeadline = \"10s\"\n\
         [backend]\nlatency = \"1ms\"\n{backend}\n"
    );
    for c in clients {
        text.push_str(&format!(
            "[[strategies]]\nname = \"{c}\"\nclient = \"{c}\"\nservice_config = '''{config}'''\n"
        ));
    }
    text
}

/// Drives each of `clients` through the same scenario.
fn each(config: &str, backend: &str, clients: &[&str], calls: &[(u64, Duration)]) -> Vec<Run> {
    let text = profile(config, backend, clients);
    (0..clients.len())
        .map(|i| drive_backend(&text, i, calls))
        .collect()
}

fn end(run: &Run, id: u64) -> (Code, Duration) {
    let e = run.ended(id);
    (e.code, e.at)
}

/// The wait of retry `n` (from 1) of call `id`: `base × (low + span × u)`, u its keyed draw.
fn jittered(id: u64, n: u32, base: f64, low: f64, span: f64) -> Duration {
    Duration::from_secs_f64(base * (low + span * jitter_draw(SEED, id, n)))
}

const TWO_FAILURES: &str = r#"[[backend.scripts]]
ids = ["0"]
steps = ["UNAVAILABLE", "UNAVAILABLE", "OK"]"#;

/// Backoff jitter eras. Two retries at 0.1 s × 2: retry 1 waits 0.1 s × f, retry 2 0.2 s × f,
/// with f from random(0, 1) (grpc-java ≤ 1.70, grpc-js < 1.14, grpc-go ≤ 1.68: the 2017 text),
/// random(0.4, 1.2) (grpc-java 1.71–1.79) or random(0.8, 1.2) (A6 as amended, grpc-java 1.80+,
/// grpc-js 1.14+, grpc-go 1.69+, C-core). C-core up to 1.66 waits exactly 0.1 s before its
/// first retry (measured: 100–106 ms with grpcio 1.51.3 to 1.66.2; 81–122 ms from 1.67.1).
/// Each attempt takes 1 ms.
#[test]
fn backoff_jitter_has_an_era_per_library_release() {
    let eras: [(&str, f64, f64, bool); 12] = [
        ("a6", 0.8, 0.4, false),
        ("grpc-java@1.70", 0.0, 1.0, false),
        ("grpc-java@1.71", 0.4, 0.8, false),
        ("grpc-java@1.80", 0.8, 0.4, false),
        ("grpc-js@1.13.1", 0.0, 1.0, false),
        ("grpc-js@1.14", 0.8, 0.4, false),
        ("grpc-go@1.68", 0.0, 1.0, false),
        ("grpc-go@1.69", 0.8, 0.4, false),
        ("c-core@1.51", 0.8, 0.4, true),
        ("c-core@1.66", 0.8, 0.4, true),
        ("c-core@1.67", 0.8, 0.4, false),
        ("c-core@1.85", 0.8, 0.4, false),
    ];
    let clients: Vec<&str> = eras.iter().map(|e| e.0).collect();
    let runs = each(&retry_config(""), TWO_FAILURES, &clients, &ALONE);
    for ((client, low, span, first_exact), run) in eras.iter().zip(&runs) {
        let w1 = if *first_exact {
            ms(100)
        } else {
            jittered(0, 1, 0.1, *low, *span)
        };
        let w2 = jittered(0, 2, 0.2, *low, *span);
        let t1 = ms(1) + w1;
        let t2 = t1 + ms(1) + w2;
        assert_eq!(run.times(0), [Duration::ZERO, t1, t2], "{client}");
        assert_eq!(end(run, 0), (Code::Ok, t2 + ms(1)), "{client}");
    }
}

const PUSHBACK_THEN_OK: &str = r#"[[backend.scripts]]
ids = ["0"]
steps = [{ status = "UNAVAILABLE", pushback = "PUSHBACK" }, "OK"]"#;

fn pushback_then_ok(value: &str, status: &str) -> String {
    PUSHBACK_THEN_OK
        .replace("PUSHBACK", value)
        .replace("UNAVAILABLE", status)
}

/// Pushback 0. A6 and C-core up to 1.71: retried at once (done at 2 ms). grpc-js: at once for
/// Node, which waits 1 ms for any `setTimeout` under 1 ms (done at 3 ms). C-core from 1.72
/// (grpcio 1.85.1 logs "retry in 0 ms") never starts the retry: the call waits for its
/// deadline (10 s here; 1 s in the issue's measurement). From 1.72 to 1.83 grpcio does not end
/// it even then, which a run cannot reproduce: its calls end at their deadline.
#[test]
fn a_zero_pushback_hangs_newer_c_core_to_the_deadline() {
    let clients = ["a6", "c-core@1.71", "grpc-js", "c-core@1.72", "c-core@1.85"];
    let runs = each(
        &retry_config(""),
        &pushback_then_ok("0", "UNAVAILABLE"),
        &clients,
        &ALONE,
    );
    assert_eq!(runs[0].times(0), [ms(0), ms(1)]);
    assert_eq!(end(&runs[0], 0), (Code::Ok, ms(2)));
    assert_eq!(end(&runs[1], 0), (Code::Ok, ms(2)));
    assert_eq!(runs[2].times(0), [ms(0), ms(2)]);
    assert_eq!(end(&runs[2], 0), (Code::Ok, ms(3)));
    for run in &runs[3..] {
        assert_eq!(run.times(0), [ms(0)]);
        assert_eq!(end(run, 0), (Code::DeadlineExceeded, ms(10_000)));
        assert_eq!(run.denied("hang"), 1);
    }
}

/// A malformed pushback ("soon"). A6, grpc-java and C-core 1.51: do not retry, the server's
/// UNAVAILABLE at 1 ms. C-core fails the attempt itself: UNKNOWN from 1.53, INTERNAL (its
/// HPACK parser's metadata parse error) from 1.81. grpc-js: `parseInt("soon")` is NaN, and
/// `setTimeout(NaN)` fires after 1 ms: retried, OK.
#[test]
fn a_malformed_pushback_is_read_four_ways() {
    let clients = [
        "a6",
        "grpc-java",
        "c-core@1.51",
        "c-core@1.80",
        "c-core@1.81",
        "grpc-js",
    ];
    let runs = each(
        &retry_config(""),
        &pushback_then_ok("soon", "UNAVAILABLE"),
        &clients,
        &ALONE,
    );
    for run in &runs[..3] {
        assert_eq!(run.times(0), [ms(0)]);
        assert_eq!(end(run, 0), (Code::Unavailable, ms(1)));
    }
    assert_eq!(end(&runs[3], 0), (Code::Unknown, ms(1)));
    assert_eq!(end(&runs[4], 0), (Code::Internal, ms(1)));
    assert_eq!(runs[5].times(0), [ms(0), ms(2)]);
    assert_eq!(end(&runs[5], 0), (Code::Ok, ms(3)));
    // parseInt reads a leading number: "50ms" waits 50 ms.
    let js = each(
        &retry_config(""),
        &pushback_then_ok("50ms", "UNAVAILABLE"),
        &["grpc-js"],
        &ALONE,
    );
    assert_eq!(js[0].times(0), [ms(0), ms(51)]);
}

/// A non-retryable status with a valid pushback (INTERNAL, pushback 50): grpc-java retries it
/// after 50 ms, and it succeeds; A6 and every other library return INTERNAL at once.
#[test]
fn grpc_java_retries_a_non_retryable_status_that_carries_pushback() {
    let clients = [
        "grpc-java@1.41",
        "grpc-java",
        "a6",
        "grpc-js",
        "c-core",
        "grpc-go",
    ];
    let runs = each(
        &retry_config(""),
        &pushback_then_ok("50", "INTERNAL"),
        &clients,
        &ALONE,
    );
    for run in &runs[..2] {
        assert_eq!(run.times(0), [ms(0), ms(51)]);
        assert_eq!(end(run, 0), (Code::Ok, ms(52)));
    }
    for run in &runs[2..] {
        assert_eq!(end(run, 0), (Code::Internal, ms(1)));
    }
}

/// Four calls answered INVALID_ARGUMENT with pushback -1 ("don't retry"), then two calls that
/// always fail UNAVAILABLE (retryThrottling {10, 0.1}). A6, grpc-java and grpc-go count the
/// four as throttling failures (10 → 6 tokens), so call 4 is throttled at its first failure
/// (→ 5) and so is call 5: 6 attempts. C-core and grpc-js take no token for them: call 4
/// makes all 5 attempts (10 → 5), call 5 one: 10 attempts.
#[test]
fn c_core_and_grpc_js_take_no_token_for_a_dont_retry_pushback_on_a_non_retryable_status() {
    let backend = r#"[[backend.scripts]]
ids = ["0", "1", "2", "3"]
steps = [{ status = "INVALID_ARGUMENT", pushback = "-1" }]
[[backend.scripts]]
ids = ["4", "5"]
steps = ["UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE"]"#;
    let clients = ["a6", "grpc-java", "grpc-go", "c-core", "grpc-js"];
    let runs = each(
        &retry_config(r#"{"maxTokens": 10, "tokenRatio": 0.1}"#),
        backend,
        &clients,
        &every(6, ms(2000)),
    );
    for (client, run) in clients.iter().zip(&runs) {
        let want = if client.starts_with("c-core") || client.starts_with("grpc-js") {
            10
        } else {
            6
        };
        assert_eq!(run.sent.len(), want, "{client}");
        assert_eq!(run.last_tokens(), 4.0, "{client}");
    }
}

/// 20 calls 2 s apart that always fail (maxAttempts 5, retryThrottling {10, 0.1}): 24
/// attempts for every library, as measured (call 0 makes 5, 10 → 5 tokens; every later call
/// is throttled at its first failure). grpc-js compares the tokens only when the backoff is
/// over, so its throttled calls fail one backoff late; the others at 1 ms.
#[test]
fn grpc_js_checks_the_throttle_after_the_backoff() {
    let backend = "[[backend.scripts]]\nevery = 1\nsteps = [\"UNAVAILABLE\", \"UNAVAILABLE\", \
                   \"UNAVAILABLE\", \"UNAVAILABLE\", \"UNAVAILABLE\"]";
    let clients = ["a6", "grpc-java", "c-core", "grpc-go", "grpc-js"];
    let calls = every(20, ms(2000));
    let runs = each(
        &retry_config(r#"{"maxTokens": 10, "tokenRatio": 0.1}"#),
        backend,
        &clients,
        &calls,
    );
    for (client, run) in clients.iter().zip(&runs) {
        assert_eq!(run.sent.len(), 24, "{client}");
        let late = client.starts_with("grpc-js");
        for (id, at) in &calls[1..] {
            let backoff = jittered(*id, 1, 0.1, 0.8, 0.4);
            let want = *at + ms(1) + if late { backoff } else { Duration::ZERO };
            assert_eq!(
                end(run, *id),
                (Code::Unavailable, want),
                "{client} call {id}"
            );
        }
    }
}

/// grpc-js 1.8.0–1.13.0 kept its throttle with min and max swapped: its first failure empties
/// the bucket, so the failure's own retry is refused, and a refused retry never reports: the
/// call waits for its deadline (DEADLINE_EXCEEDED at 10 s, one attempt). 1.13.1 retries.
#[test]
fn grpc_js_before_1_13_1_hangs_a_throttled_retry_to_the_deadline() {
    let clients = ["grpc-js@1.13.0", "grpc-js@1.13.1"];
    let runs = each(
        &retry_config(r#"{"maxTokens": 10, "tokenRatio": 0.1}"#),
        TWO_FAILURES,
        &clients,
        &ALONE,
    );
    assert_eq!(runs[0].times(0), [ms(0)]);
    assert_eq!(end(&runs[0], 0), (Code::DeadlineExceeded, ms(10_000)));
    assert_eq!(runs[0].denied("hang"), 1);
    assert_eq!(runs[1].times(0).len(), 3);
    assert_eq!(end(&runs[1], 0).0, Code::Ok);
}

/// With the swapped bookkeeping, a success elsewhere during the backoff refills the bucket
/// (max(t + 0.1, 10)), and the retry goes: call 1 succeeds at 2 ms, while call 0 (failed at
/// 1 ms) still waits out its backoff.
#[test]
fn grpc_js_before_1_13_1_retries_only_after_someone_else_succeeds() {
    let backend = "[[backend.scripts]]\nids = [\"0\"]\nsteps = [\"UNAVAILABLE\"]";
    let text = profile(
        &retry_config(r#"{"maxTokens": 10, "tokenRatio": 0.1}"#),
        backend,
        &["grpc-js@1.13.0"],
    );
    let run = drive_backend(&text, 0, &[(0, ms(0)), (1, ms(1))]);
    let w1 = jittered(0, 1, 0.1, 0.0, 1.0).max(ms(1));
    assert!(w1 > ms(1), "the draw leaves room for call 1: {w1:?}");
    assert_eq!(run.times(0), [ms(0), ms(1) + w1]);
    assert_eq!(end(&run, 0), (Code::Ok, ms(2) + w1));
}

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

/// maxAttempts 7 counts as 5 in every library (A6's default cap: grpc-java's
/// `maxRetryAttempts`, grpc-js's `grpc-node.retry_max_attempts_limit`, grpc-go's
/// `WithMaxCallAttempts`, C-core's fixed MAX_MAX_RETRY_ATTEMPTS).
#[test]
fn max_attempts_above_five_count_as_five_in_every_library() {
    let config = retry_config("").replace("\"maxAttempts\": 5", "\"maxAttempts\": 7");
    let backend = "[[backend.scripts]]\nevery = 1\nsteps = [\"UNAVAILABLE\", \"UNAVAILABLE\", \
                   \"UNAVAILABLE\", \"UNAVAILABLE\", \"UNAVAILABLE\", \"UNAVAILABLE\"]";
    let clients = ["a6", "grpc-java", "grpc-js", "c-core", "grpc-go"];
    for (client, run) in clients.iter().zip(each(&config, backend, &clients, &ALONE)) {
        assert_eq!(run.sent.len(), 5, "{client}");
    }
}

/// grpc-java counts a throttling success when an attempt's response headers arrive
/// (`Sublistener.headersRead`), so a stream that fails after its first message adds
/// tokenRatio there; A6 counts only calls that end OK. Call 0 fails twice (10 → 8 tokens),
/// call 1 fails after a message (committed, not retried).
#[test]
fn grpc_java_counts_a_success_when_response_headers_arrive() {
    let layers = |client: &str| {
        layers_profile(
            "10s",
            &format!(
                r#"client = "{client}"
[[strategies.layers]]
kind = "grpc_retry"
max_attempts = 2
initial_backoff = "10ms"
max_backoff = "10ms"
backoff_multiplier = 1
retryable_status_codes = ["UNAVAILABLE"]
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
            assert_eq!(run.denied("committed"), 1);
            run.last_tokens()
        })
        .collect();
    assert_eq!(tokens, [8.0, 8.1]);
}
