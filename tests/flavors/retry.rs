//! Retry flavors: each library's backoff jitter, its throttle's bookkeeping, and when it reads
//! the throttle.

use std::time::Duration;

use resilbench::call::{Failure, FailureSource};
use tonic::Code;

use super::{ALONE, each, end, jittered, node, profile, retry_config};
use crate::common::scripted::{
    drive_backend, drive_profile, every, ms, profile as layers_profile, status,
};

const TWO_FAILURES: &str = r#"[[backend.scripts]]
ids = ["0"]
steps = ["UNAVAILABLE", "UNAVAILABLE", "OK"]"#;

/// Backoff jitter eras. Two retries at 0.1 s × 2: retry 1 waits 0.1 s × f, retry 2 0.2 s × f,
/// with f from random(0, 1) (grpc-java ≤ 1.70, grpc-js < 1.14, grpc-go ≤ 1.68: the 2017 text),
/// random(0.4, 1.2) (grpc-java 1.71–1.79) or random(0.8, 1.2) (A6 as amended, grpc-java 1.80+,
/// grpc-js 1.14+, grpc-go 1.69+, C-core). C-core up to 1.66 waits exactly 0.1 s before its
/// first retry (measured: 100–106 ms with grpcio 1.51.3 to 1.66.2; 81–122 ms from 1.67.1).
/// Each attempt takes 1 ms. grpc-js's timers are Node's, which truncate to whole milliseconds.
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
        let (w1, w2) = if client.starts_with("grpc-js") {
            (node(w1), node(w2))
        } else {
            (w1, w2)
        };
        let t1 = ms(1) + w1;
        let t2 = t1 + ms(1) + w2;
        assert_eq!(run.times(0), [Duration::ZERO, t1, t2], "{client}");
        assert_eq!(end(run, 0), (Code::Ok, t2 + ms(1)), "{client}");
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
/// over, so its throttled calls fail one backoff late (Node truncates it to whole milliseconds);
/// the others at 1 ms.
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
            let backoff = node(jittered(*id, 1, 0.1, 0.8, 0.4));
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
    let w1 = node(jittered(0, 1, 0.1, 0.0, 1.0));
    assert!(w1 > ms(1), "the draw leaves room for call 1: {w1:?}");
    assert_eq!(run.times(0), [ms(0), ms(1) + w1]);
    assert_eq!(end(&run, 0), (Code::Ok, ms(2) + w1));
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
