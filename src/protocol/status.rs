//! gRPC status codes by their canonical names; the statuses a client derives when a server
//! sent none (an HTTP status, a stream reset); the `grpc-retry-pushback-ms` trailer.
//!
//! Profiles, service configs and results name status codes the way the gRPC specification does
//! (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, ...: grpc/grpc `doc/statuscodes.md`). gRFC A6 accepts
//! them in any case, or as their integer values; [`parse_code`] does the same. A plan holds
//! them as [`StatusCode`], checked once when it is read, never as text to parse again.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
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

/// A gRPC status code, as a plan holds it: checked when read, written by its canonical name,
/// ordered by that name (as the tables of the results file are).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode(Code);

impl StatusCode {
    /// OK.
    pub const OK: Self = Self(Code::Ok);
    /// UNAVAILABLE.
    pub const UNAVAILABLE: Self = Self(Code::Unavailable);
    /// DEADLINE_EXCEEDED.
    pub const DEADLINE_EXCEEDED: Self = Self(Code::DeadlineExceeded);
    /// RESOURCE_EXHAUSTED.
    pub const RESOURCE_EXHAUSTED: Self = Self(Code::ResourceExhausted);
    /// CANCELLED.
    pub const CANCELLED: Self = Self(Code::Cancelled);

    /// The code.
    pub fn code(self) -> Code {
        self.0
    }

    /// Its canonical name, e.g. `"UNAVAILABLE"`.
    pub fn name(self) -> &'static str {
        code_name(self.0)
    }

    /// A status code written by name (any case) or number, with the error a profile shows.
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_code(text).map(Self).ok_or_else(|| {
            format!(
                "`{text}` is not a gRPC status code; expected one of {}",
                all_names()
            )
        })
    }
}

impl From<Code> for StatusCode {
    fn from(code: Code) -> Self {
        Self(code)
    }
}

impl From<StatusCode> for Code {
    fn from(code: StatusCode) -> Self {
        code.0
    }
}

impl PartialEq<Code> for StatusCode {
    fn eq(&self, other: &Code) -> bool {
        self.0 == *other
    }
}

/// Compares with a canonical name (`StatusCode::UNAVAILABLE == "UNAVAILABLE"`).
impl PartialEq<&str> for StatusCode {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl Ord for StatusCode {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for StatusCode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for StatusCode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

impl Serialize for StatusCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The status of a stream the server reset with `reason` instead of ending it with a status
/// (grpc/grpc `doc/PROTOCOL-HTTP2.md`, "Errors"; the same table as tonic's `code_from_h2`).
pub fn from_reset(reason: u32) -> Code {
    match reason {
        // NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT,
        // FRAME_SIZE_ERROR, COMPRESSION_ERROR, CONNECT_ERROR.
        0x0 | 0x1 | 0x2 | 0x3 | 0x4 | 0x6 | 0x9 | 0xa => Code::Internal,
        REFUSED_STREAM => Code::Unavailable,
        CANCEL => Code::Cancelled,
        0xb => Code::ResourceExhausted, // ENHANCE_YOUR_CALM
        0xc => Code::PermissionDenied,  // INADEQUATE_SECURITY
        // STREAM_CLOSED, HTTP_1_1_REQUIRED, codes HTTP/2 does not define.
        _ => Code::Unknown,
    }
}

/// RST_STREAM's REFUSED_STREAM: the server did not process the stream (RFC 9113 8.7).
pub const REFUSED_STREAM: u32 = 0x7;
/// RST_STREAM's CANCEL: the stream is no longer needed.
pub const CANCEL: u32 = 0x8;

/// The gRPC status of an HTTP response that is not 200 and carries none
/// (grpc/grpc `doc/http-grpc-status-mapping.md`).
pub fn from_http(status: u16) -> Code {
    match status {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// What a server said about retrying, through `grpc-retry-pushback-ms` (gRFC A6, "Pushback").
///
/// A6 reads [`Pushback::DontRetry`] and [`Pushback::Malformed`] alike ("negative or
/// unparseable: do not retry"); they are kept apart because client libraries do not read them
/// alike (see `docs/strategies.md`, "Client flavors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushback {
    /// A valid non-negative value: retry after exactly this many milliseconds.
    RetryAfterMs(u32),
    /// A negative value, an integer beyond 32 bits, or more than one value: do not retry.
    DontRetry,
    /// One value that is not an integer at all (`"soon"`, `"50ms"`, `"1.5"`): do not retry.
    Malformed {
        /// What JavaScript's `parseInt` reads from it (grpc-js's reading): the integer its
        /// leading characters spell, or `None` for NaN. Clamped to the `i64` range.
        parse_int: Option<i64>,
    },
}

impl Pushback {
    /// Whether A6 reads it as "do not retry" (negative, unparseable, or several values).
    pub fn says_stop(self) -> bool {
        !matches!(self, Pushback::RetryAfterMs(_))
    }
}

/// Interprets a `grpc-retry-pushback-ms` value as gRFC A6 specifies: the value is an ASCII
/// signed 32-bit integer; a non-negative value is a delay in milliseconds, and a negative value
/// or anything that does not parse as such an integer means "do not retry". A value that is
/// no integer at all is [`Pushback::Malformed`], with what `parseInt` would read from it.
pub fn parse_pushback(value: &[u8]) -> Pushback {
    let text = std::str::from_utf8(value).ok();
    if let Some(t) = text
        && let Ok(ms) = t.parse::<i64>()
    {
        return match u32::try_from(ms) {
            Ok(ms) if ms <= i32::MAX as u32 => Pushback::RetryAfterMs(ms),
            _ => Pushback::DontRetry,
        };
    }
    Pushback::Malformed {
        parse_int: text.and_then(parse_int),
    }
}

/// ECMAScript's `parseInt(string)` without a radix (ECMA-262, "parseInt"), for what fits an
/// `i64` (further digits saturate): leading white space skipped, an optional sign, a `0x`
/// prefix for hexadecimal, then as many digits as follow; no digit is NaN (`None`).
pub fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, t) = match t.get(..2) {
        Some("0x" | "0X") => (16, &t[2..]),
        _ => (10, t),
    };
    let digits: Vec<u32> = t.chars().map_while(|c| c.to_digit(radix)).collect();
    if digits.is_empty() {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |n, &d| {
        n.saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d))
    });
    Some(if negative { -magnitude } else { magnitude })
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

    /// A plan's status codes: read in any case or by number, written canonically, ordered by
    /// name, refused with the profile's message.
    #[test]
    fn status_codes_are_checked_once_and_written_canonically() {
        let read: StatusCode = serde_json::from_str("\"unavailable\"").unwrap();
        assert_eq!(read, Code::Unavailable);
        assert_eq!(serde_json::to_string(&read).unwrap(), "\"UNAVAILABLE\"");
        assert_eq!("14".parse::<StatusCode>().unwrap(), StatusCode::UNAVAILABLE);
        let bad = serde_json::from_str::<StatusCode>("\"UNAVAILABL\"").unwrap_err();
        assert!(
            bad.to_string()
                .contains("`UNAVAILABL` is not a gRPC status code")
        );
        assert!(StatusCode::UNAVAILABLE > StatusCode::RESOURCE_EXHAUSTED);
        assert!(StatusCode::DEADLINE_EXCEEDED < StatusCode::OK);
    }

    /// HTTP statuses without a gRPC status, and stream resets, as gRPC clients map them;
    /// resets as tonic maps them, code by code.
    #[test]
    fn http_statuses_and_resets_map_to_grpc_codes() {
        assert_eq!(from_http(400), Code::Internal);
        assert_eq!(from_http(401), Code::Unauthenticated);
        assert_eq!(from_http(403), Code::PermissionDenied);
        assert_eq!(from_http(404), Code::Unimplemented);
        for s in [429, 502, 503, 504] {
            assert_eq!(from_http(s), Code::Unavailable);
        }
        assert_eq!(from_http(500), Code::Unknown);
        for reason in 0..=0xe_u32 {
            let tonic =
                tonic::Status::from_error(Box::new(h2::Error::from(h2::Reason::from(reason))));
            assert_eq!(from_reset(reason), tonic.code(), "reason {reason}");
        }
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
        assert!(parse_pushback(b"1.5").says_stop());
        assert!(parse_pushback(b"").says_stop());
        assert!(parse_pushback(b"\xff").says_stop());
    }

    /// Values that are no integer are told apart, with what grpc-js's `parseInt` reads.
    #[test]
    fn malformed_values_keep_what_parse_int_reads() {
        let read = |v: &[u8]| match parse_pushback(v) {
            Pushback::Malformed { parse_int } => parse_int,
            other => panic!("{other:?} is not malformed"),
        };
        assert_eq!(read(b"soon"), None);
        assert_eq!(read(b""), None);
        assert_eq!(read(b"\xff"), None);
        assert_eq!(read(b"50ms"), Some(50));
        assert_eq!(read(b"1.5"), Some(1));
        assert_eq!(read(b"1e3"), Some(1));
        assert_eq!(read(b" 7"), Some(7));
        assert_eq!(read(b"-5x"), Some(-5));
        assert_eq!(read(b"0x10"), Some(16));
        assert_eq!(read(b"-"), None);
        assert_eq!(parse_pushback(b"-5"), Pushback::DontRetry);
        assert_eq!(parse_int("99999999999999999999999"), Some(i64::MAX));
    }
}
