//! gRPC status codes by their canonical names; the statuses a client derives when a server
//! sent none (an HTTP status, a stream reset). (`grpc-retry-pushback-ms` is [`super::pushback`].)
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
}
