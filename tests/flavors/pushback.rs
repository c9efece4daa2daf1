//! Pushback flavors: how each library reads `grpc-retry-pushback-ms` (a value of 0, a value
//! that is no integer, a valid value on a status that is not retryable).

use tonic::Code;

use super::{ALONE, each, end, profile, retry_config};
use crate::common::scripted::{Seen, drive_backend, every, ms};

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

/// Pushback 2147483648, one above A6's 32 bits. A6 reads it as "do not retry", and so does
/// grpc-java (`Integer.valueOf` throws, −1): UNAVAILABLE at 1 ms. grpc-js reads it with
/// `parseInt` and sets a timer that long, which Node replaces by 1 ms (beyond `TIMEOUT_MAX`):
/// retried at 2 ms. grpc-go (`strconv.Atoi`, 64 bits) and C-core (`absl::SimpleAtoi` into
/// 64 bits) wait it: the call ends at its deadline (10 s), without a retry.
#[test]
fn a_pushback_beyond_32_bits_is_read_three_ways() {
    let clients = [
        "a6",
        "grpc-java",
        "grpc-js",
        "grpc-go",
        "c-core",
        "c-core@1.51",
    ];
    let runs = each(
        &retry_config(""),
        &pushback_then_ok("2147483648", "UNAVAILABLE"),
        &clients,
        &ALONE,
    );
    for run in &runs[..2] {
        assert_eq!(run.times(0), [ms(0)]);
        assert_eq!(end(run, 0), (Code::Unavailable, ms(1)));
    }
    assert_eq!(runs[2].times(0), [ms(0), ms(2)], "grpc-js: Node's 1 ms");
    assert_eq!(end(&runs[2], 0), (Code::Ok, ms(3)));
    for (client, run) in clients[3..].iter().zip(&runs[3..]) {
        assert_eq!(run.times(0), [ms(0)], "{client}");
        assert_eq!(
            end(run, 0),
            (Code::DeadlineExceeded, ms(10_000)),
            "{client}"
        );
        assert_eq!(run.denied("deadline"), 1, "{client}");
    }
}

/// grpc-go's wait is `time.Millisecond * time.Duration(n)`, int64 nanoseconds: a pushback of
/// 9223372036855 ms wraps below zero, and Go's timer fires at once (retried at 1 ms), where
/// 9223372036854 still waits past the deadline. C-core keeps the value in milliseconds and
/// waits it (its conversion to nanoseconds clamps).
#[test]
fn grpc_go_pushback_wraps_at_64_bit_nanoseconds() {
    let go = |value| {
        each(
            &retry_config(""),
            &pushback_then_ok(value, "UNAVAILABLE"),
            &["grpc-go", "c-core"],
            &ALONE,
        )
    };
    let wraps = go("9223372036855");
    assert_eq!(wraps[0].times(0), [ms(0), ms(1)]);
    assert_eq!(end(&wraps[0], 0), (Code::Ok, ms(2)));
    assert_eq!(end(&wraps[1], 0), (Code::DeadlineExceeded, ms(10_000)));
    let fits = go("9223372036854");
    assert_eq!(end(&fits[0], 0), (Code::DeadlineExceeded, ms(10_000)));
}

/// Several pushback values (`["10", "20"]`, two header fields). grpc-js reads the first
/// (`mdValue[0]`): retried at 11 ms. grpc-java (`Metadata.get`: the last one added) and
/// C-core (its metadata map keeps the last value set) read the last: retried at 21 ms. A6 and
/// grpc-go ("specified multiple values; not retrying") do not retry: UNAVAILABLE at 1 ms.
#[test]
fn several_pushback_values_are_read_three_ways() {
    let backend = PUSHBACK_THEN_OK.replace("\"PUSHBACK\"", r#"["10", "20"]"#);
    let clients = ["grpc-js", "grpc-java", "c-core", "a6", "grpc-go"];
    let runs = each(&retry_config(""), &backend, &clients, &ALONE);
    assert_eq!(runs[0].times(0), [ms(0), ms(11)]);
    for run in &runs[1..3] {
        assert_eq!(run.times(0), [ms(0), ms(21)]);
        assert_eq!(end(run, 0), (Code::Ok, ms(22)));
    }
    for run in &runs[3..] {
        assert_eq!(end(run, 0), (Code::Unavailable, ms(1)));
    }
}

/// A malformed value among several (`["soon", "20"]`). C-core from 1.53 fails the stream on
/// it, whichever comes last (INTERNAL from 1.81); 1.51 only logged it and reads the last:
/// retried at 21 ms, as grpc-java is. grpc-js reads `parseInt("soon")`, NaN: retried after
/// Node's 1 ms.
#[test]
fn a_malformed_value_among_several_fails_c_core_whatever_comes_last() {
    let backend = PUSHBACK_THEN_OK.replace("\"PUSHBACK\"", r#"["soon", "20"]"#);
    let clients = [
        "c-core",
        "c-core@1.80",
        "c-core@1.51",
        "grpc-java",
        "grpc-js",
        "grpc-go",
    ];
    let runs = each(&retry_config(""), &backend, &clients, &ALONE);
    assert_eq!(end(&runs[0], 0), (Code::Internal, ms(1)));
    assert_eq!(end(&runs[1], 0), (Code::Unknown, ms(1)));
    for run in &runs[2..4] {
        assert_eq!(run.times(0), [ms(0), ms(21)]);
    }
    assert_eq!(runs[4].times(0), [ms(0), ms(2)]);
    assert_eq!(end(&runs[5], 0), (Code::Unavailable, ms(1)));
}

/// What C-core's own status for a malformed pushback (INTERNAL, grpcio 1.85) is to the SRE
/// book's adaptive throttle above it: an answer from the backend that is not a rejection, as
/// an application's throttle above grpcio counts the INTERNAL it is given. So 20 such calls
/// are all accepted and none is rejected locally, where A6, which passes the server's
/// UNAVAILABLE up, sees only rejections and starts rejecting locally.
#[test]
fn c_core_s_own_status_counts_as_a_backend_answer() {
    let backend = "[[backend.scripts]]\nevery = 1\nsteps = [{ status = \"UNAVAILABLE\", pushback = \"soon\" }]";
    let text = profile(&retry_config(""), backend, &["a6", "c-core"]).replace(
        "service_config =",
        "layers = [{ kind = \"adaptive_throttle\" }]\nservice_config =",
    );
    let rejected = |strategy: usize| {
        let run = drive_backend(&text, strategy, &every(20, ms(100)));
        let local = run
            .seen
            .iter()
            .filter(|s| matches!(s, Seen::Rejected { .. }));
        (
            local.count(),
            run.ended.iter().map(|e| e.code).collect::<Vec<_>>(),
        )
    };
    let (a6, a6_codes) = rejected(0);
    assert!(a6 > 0, "A6 sees UNAVAILABLE, a rejection");
    assert!(a6_codes.iter().all(|c| *c == Code::Unavailable));
    let (c_core, c_core_codes) = rejected(1);
    assert_eq!(c_core, 0);
    assert!(c_core_codes.iter().all(|c| *c == Code::Internal));
}
