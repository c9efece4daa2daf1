//! Pushback flavors: how each library reads `grpc-retry-pushback-ms` (a value of 0, a value
//! that is no integer, a valid value on a status that is not retryable).

use tonic::Code;

use super::{ALONE, each, end, retry_config};
use crate::common::scripted::ms;

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
