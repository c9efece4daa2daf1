//! Faults the proxy adds beside the profile's: how an outage shows itself on the wire
//! ([`OutageMode`]), and Envoy's header-controlled faults ([`envoy`]).
//!
//! An outage in the backend answers its status. In front of a real service an outage can
//! look otherwise to the client, and clients treat each differently (gRPC's PROTOCOL-HTTP2.md,
//! "Errors"; gRFC A6, transparent retries):
//! - `status`: a Trailers-Only response with the phase's status (UNAVAILABLE by default);
//! - `reset[:REASON]`: RST_STREAM with an HTTP/2 error code (RFC 9113 §7; REFUSED_STREAM by
//!   default: "not processed", which gRPC clients may retry transparently, outside their
//!   `maxAttempts`; CANCEL reads as CANCELLED, INTERNAL_ERROR as INTERNAL);
//! - `refuse`: the connection is closed without GOAWAY (its calls in flight fail UNAVAILABLE),
//!   and while the outage lasts new connections are accepted and reset at once (TCP RST):
//!   a server that is down.
//!
//! Envoy's fault filter lets a request ask for its own fault (Envoy's documentation,
//! "Controlling fault injection via HTTP headers"); with `--envoy-fault-headers` the proxy
//! reads the same headers, as a filter with `header_abort` and `header_delay` at 100%:
//! `x-envoy-fault-abort-request` (an HTTP status in [200, 600)),
//! `x-envoy-fault-abort-grpc-request` (a gRPC status; it wins over the HTTP one),
//! `x-envoy-fault-delay-request` (milliseconds), and `x-envoy-fault-abort-request-percentage`,
//! `x-envoy-fault-delay-request-percentage` (an integer numerator over 100, capped at 100; a
//! fault without one applies to every request). The delay comes first, then the abort, as in
//! Envoy. Which requests a percentage hits is a keyed draw (seed, request id, attempt), as the
//! backend's draws are, not an independent one: two strategies meet the same faults.

use std::time::Duration;

use http::HeaderMap;

use crate::keyed::{KeyedStream, Purpose};

/// How an outage shows itself to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutageMode {
    /// A Trailers-Only response with the phase's status.
    #[default]
    Status,
    /// RST_STREAM with this HTTP/2 error code.
    Reset(u32),
    /// The connection closed; new connections reset while the outage lasts.
    Refuse,
}

/// HTTP/2's error codes by name (RFC 9113 §7).
const REASONS: [&str; 14] = [
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
];

impl OutageMode {
    /// Parses `status`, `reset`, `reset:REASON` (an RFC 9113 error code name) or `refuse`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "status" => return Ok(Self::Status),
            "refuse" => return Ok(Self::Refuse),
            "reset" => return Ok(Self::Reset(7)),
            _ => {}
        }
        if let Some(name) = text.strip_prefix("reset:") {
            let upper = name.to_ascii_uppercase();
            return match REASONS.iter().position(|r| *r == upper) {
                Some(code) => Ok(Self::Reset(code as u32)),
                None => Err(format!(
                    "unknown HTTP/2 error code {name:?}: expected one of {}",
                    REASONS.join(", ")
                )),
            };
        }
        Err(format!(
            "expected status, reset, reset:REASON (e.g. reset:CANCEL) or refuse, not {text:?}"
        ))
    }
}

/// What Envoy's fault headers ask of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvoyFault {
    /// Wait this long before anything else.
    pub delay: Option<Duration>,
    /// Answer with this gRPC status (Trailers-Only).
    pub grpc_abort: Option<u32>,
    /// Answer with this HTTP status (no `grpc-status`: the client maps it).
    pub http_abort: Option<u16>,
}

/// Header names read by [`envoy`] (and not forwarded when it is on).
pub const ENVOY_HEADERS: [&str; 5] = [
    "x-envoy-fault-abort-request",
    "x-envoy-fault-abort-grpc-request",
    "x-envoy-fault-abort-request-percentage",
    "x-envoy-fault-delay-request",
    "x-envoy-fault-delay-request-percentage",
];

/// The faults Envoy's headers ask of the attempt keyed by (`seed`, `key`, `attempt`).
/// Malformed values are ignored, as Envoy ignores them.
pub fn envoy(headers: &HeaderMap, seed: u64, key: u64, attempt: u32) -> EnvoyFault {
    let number = |name: &str| -> Option<u64> {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let hits = |name: &str, purpose: Purpose| -> bool {
        let percent = number(name).map_or(100, |p| p.min(100));
        percent >= 100
            || (KeyedStream::new(seed, key, attempt, purpose).open01() * 100.0) < percent as f64
    };
    let mut fault = EnvoyFault::default();
    if let Some(ms) = number("x-envoy-fault-delay-request")
        && hits(
            "x-envoy-fault-delay-request-percentage",
            Purpose::EnvoyDelay,
        )
    {
        fault.delay = Some(Duration::from_millis(ms));
    }
    let grpc = number("x-envoy-fault-abort-grpc-request").and_then(|c| u32::try_from(c).ok());
    let http = number("x-envoy-fault-abort-request")
        .filter(|s| (200..600).contains(s))
        .map(|s| s as u16);
    if (grpc.is_some() || http.is_some())
        && hits(
            "x-envoy-fault-abort-request-percentage",
            Purpose::EnvoyAbort,
        )
    {
        fault.grpc_abort = grpc;
        fault.http_abort = if grpc.is_none() { http } else { None };
    }
    fault
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    http::HeaderName::from_static(n),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn outage_modes_parse_with_reset_reasons_by_name() {
        assert_eq!(OutageMode::parse("status"), Ok(OutageMode::Status));
        assert_eq!(OutageMode::parse("reset"), Ok(OutageMode::Reset(7)));
        assert_eq!(OutageMode::parse("reset:cancel"), Ok(OutageMode::Reset(8)));
        assert_eq!(
            OutageMode::parse("reset:ENHANCE_YOUR_CALM"),
            Ok(OutageMode::Reset(0xb))
        );
        assert_eq!(OutageMode::parse("refuse"), Ok(OutageMode::Refuse));
        assert!(
            OutageMode::parse("reset:NOPE")
                .unwrap_err()
                .contains("CANCEL")
        );
        assert!(OutageMode::parse("drop").is_err());
    }

    /// Each header as Envoy reads it: a delay, a gRPC abort winning over an HTTP one, an HTTP
    /// status out of range ignored, and percentages that hit about their share of requests,
    /// the same requests on every reading.
    #[test]
    fn envoy_headers_ask_for_delays_and_aborts_for_their_percentage() {
        let all = headers(&[
            ("x-envoy-fault-delay-request", "250"),
            ("x-envoy-fault-abort-grpc-request", "14"),
            ("x-envoy-fault-abort-request", "503"),
        ]);
        assert_eq!(
            envoy(&all, 1, 2, 0),
            EnvoyFault {
                delay: Some(Duration::from_millis(250)),
                grpc_abort: Some(14),
                http_abort: None,
            }
        );
        let http = headers(&[("x-envoy-fault-abort-request", "503")]);
        assert_eq!(envoy(&http, 1, 2, 0).http_abort, Some(503));
        let out_of_range = headers(&[("x-envoy-fault-abort-request", "700")]);
        assert_eq!(envoy(&out_of_range, 1, 2, 0), EnvoyFault::default());
        let some = headers(&[
            ("x-envoy-fault-abort-grpc-request", "14"),
            ("x-envoy-fault-abort-request-percentage", "30"),
        ]);
        let hit: Vec<bool> = (0..2000)
            .map(|k| envoy(&some, 1, k, 0).grpc_abort.is_some())
            .collect();
        let share = hit.iter().filter(|h| **h).count();
        assert!((500..700).contains(&share), "{share} of 2000 at 30%");
        let again: Vec<bool> = (0..2000)
            .map(|k| envoy(&some, 1, k, 0).grpc_abort.is_some())
            .collect();
        assert_eq!(hit, again, "keyed: the same requests");
        let none = headers(&[
            ("x-envoy-fault-delay-request", "5"),
            ("x-envoy-fault-delay-request-percentage", "0"),
        ]);
        assert!((0..100).all(|k| envoy(&none, 1, k, 0).delay.is_none()));
    }
}
