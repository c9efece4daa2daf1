//! gRPC status codes by their canonical names, and the `grpc-retry-pushback-ms` trailer.
//!
//! Profiles, service configs and results name status codes the way the gRPC specification does
//! (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, ...: grpc/grpc `doc/statuscodes.md`). gRFC A6 accepts
//! them in any case, or as their integer values; [`parse_code`] does the same.

use tonic::Code;

/// Every status code with its canonical name, in numeric order.
const NAMES: [(Code, &str); 17] = [
    (Code::Ok, "OK"),
    (Code::Cancelled, "CANCELLED"),
    (Code::Unknown, "UNKNOWN"),
    (Code::InvalidArgument, "INVALID_ARGUMENT"),
    (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
    (Code::NotFound, "NOT_FOUND"),
    (Code::AlreadyExists, "ALREADY_EXISTS"),
    (Code::PermissionDenied, "PERMISSION_DENIED"),
    (Code::ResourceExhausted, "RESOURCE_EXHAUSTED"),
    (Code::FailedPrecondition, "FAILED_PRECONDITION"),
    (Code::Aborted, "ABORTED"),
    (Code::OutOfRange, "OUT_OF_RANGE"),
    (Code::Unimplemented, "UNIMPLEMENTED"),
    (Code::Internal, "INTERNAL"),
    (Code::Unavailable, "UNAVAILABLE"),
    (Code::DataLoss, "DATA_LOSS"),
    (Code::Unauthenticated, "UNAUTHENTICATED"),
];

/// The canonical upper-case name of a status code, e.g. `"UNAVAILABLE"`.
pub fn code_name(code: Code) -> &'static str {
    NAMES[code as usize].1
}

/// Parses a status code given by name (any case) or by its integer value (`"14"`).
pub fn parse_code(text: &str) -> Option<Code> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return NAMES.iter().find(|(c, _)| *c as i32 == n).map(|(c, _)| *c);
    }
    NAMES
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(text))
        .map(|(c, _)| *c)
}

/// A comma-separated list of every canonical name, for error messages.
pub fn all_names() -> String {
    NAMES.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}

/// The metadata key of the server's retry pushback (gRFC A6, "Pushback").
pub const PUSHBACK_HEADER: &str = "grpc-retry-pushback-ms";

/// What a server said about retrying, through `grpc-retry-pushback-ms` (gRFC A6, "Pushback").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushback {
    /// A valid non-negative value: retry after exactly this many milliseconds.
    RetryAfterMs(u32),
    /// A negative or unparseable value: do not retry this call.
    DontRetry,
}

/// Interprets a `grpc-retry-pushback-ms` value as gRFC A6 specifies: the value is an ASCII
/// signed 32-bit integer; a non-negative value is a delay in milliseconds, and a negative value
/// or anything that does not parse as such an integer means "do not retry".
pub fn parse_pushback(value: &[u8]) -> Pushback {
    match std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
    {
        Some(ms) if ms >= 0 => Pushback::RetryAfterMs(ms as u32),
        _ => Pushback::DontRetry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_for_every_code() {
        for n in 0..17 {
            let code = Code::from_i32(n);
            assert_eq!(parse_code(code_name(code)), Some(code));
            assert_eq!(parse_code(&n.to_string()), Some(code));
        }
    }

    #[test]
    fn names_parse_in_any_case_and_reject_unknowns() {
        assert_eq!(parse_code("unavailable"), Some(Code::Unavailable));
        assert_eq!(
            parse_code("Resource_Exhausted"),
            Some(Code::ResourceExhausted)
        );
        assert_eq!(parse_code("17"), None);
        assert_eq!(parse_code("-1"), None);
        assert_eq!(parse_code("UNAVAILABLEX"), None);
    }

    #[test]
    fn pushback_follows_a6() {
        assert_eq!(parse_pushback(b"0"), Pushback::RetryAfterMs(0));
        assert_eq!(parse_pushback(b"250"), Pushback::RetryAfterMs(250));
        assert_eq!(
            parse_pushback(b"2147483647"),
            Pushback::RetryAfterMs(i32::MAX as u32)
        );
        assert_eq!(parse_pushback(b"-1"), Pushback::DontRetry);
        assert_eq!(parse_pushback(b"2147483648"), Pushback::DontRetry);
        assert_eq!(parse_pushback(b"1.5"), Pushback::DontRetry);
        assert_eq!(parse_pushback(b""), Pushback::DontRetry);
        assert_eq!(parse_pushback(b"\xff"), Pushback::DontRetry);
    }
}
