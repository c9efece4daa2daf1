//! Header names and fixed values, and what a gRPC client reads in a response's header block.

use tonic::Code;

use super::pushback::{Pushback, PushbackValue};

/// `content-type` of every gRPC request and response.
pub const CONTENT_TYPE: &str = "content-type";
/// The `content-type` value of gRPC (protobuf messages).
pub const GRPC_CONTENT_TYPE: &str = "application/grpc";
/// `te`, which a gRPC request sends as `trailers`.
pub const TE: &str = "te";
/// The `te` value.
pub const TRAILERS: &str = "trailers";
/// The call's deadline, as time left ([`super::timeout`]).
pub const TIMEOUT: &str = "grpc-timeout";
/// The message encoding (compression) of a request's messages.
pub const ENCODING: &str = "grpc-encoding";
/// The status code, in the trailers or a Trailers-Only response.
pub const STATUS: &str = "grpc-status";
/// The status message.
pub const MESSAGE: &str = "grpc-message";
/// The server's retry pushback (gRFC A6, "Pushback").
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";
/// gRFC A6: how many attempts of this call came before this one (absent on the first).
pub const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";

/// resilbench's own count of a call's attempts before this one, across stacked retry layers
/// and hedges; keys the backend's draws so every attempt of a call gets its own.
pub const ATTEMPT: &str = "resilbench-attempt";
/// The call's request id, sent by resilbench's client to a proxy (`resilbench proxy`), which
/// keys its fault draws by it as the backend keys them by the request's `request_id`.
pub const REQUEST_ID: &str = "resilbench-request-id";
/// Marks warmup traffic, which the backend serves but does not count.
pub const WARMUP: &str = "resilbench-warmup";
/// Names the replica (by index) that serves a request.
pub const REPLICA: &str = "resilbench-replica";

/// What a response's header block (its headers, or its trailers) says, of what a gRPC client
/// reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResponseFields {
    /// `:status` (absent in trailers).
    pub status: Option<u16>,
    /// `grpc-status`, if present (an unknown code reads as UNKNOWN).
    pub grpc_status: Option<Code>,
    /// `grpc-retry-pushback-ms`: every value it came with (how each library reads them is
    /// `strategy::retry::pushback`'s).
    pub pushback: Option<Pushback>,
}

impl ResponseFields {
    /// Reads one header field into these fields.
    pub fn add(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b":status" => {
                self.status = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
            }
            b"grpc-status" => self.grpc_status = Some(Code::from_bytes(value)),
            _ if name == PUSHBACK.as_bytes() => {
                let value = PushbackValue::parse(value);
                self.pushback = Some(match self.pushback {
                    None => Pushback::one(value),
                    Some(p) => p.and(value),
                });
            }
            _ => {}
        }
    }

    /// The fields of a block given as name/value pairs.
    pub fn of<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut fields = Self::default();
        for (name, value) in pairs {
            fields.add(name, value);
        }
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> ResponseFields {
        ResponseFields::of(pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
    }

    /// Every value is kept; A6 reads one valid value as the wait, and a negative or malformed
    /// one, or several, as "do not retry".
    #[test]
    fn pushback_values_are_all_kept() {
        let pushback = |values: &[&str]| {
            let pairs: Vec<_> = values.iter().map(|v| (PUSHBACK, *v)).collect();
            read(&pairs).pushback
        };
        assert_eq!(pushback(&[]), None);
        assert_eq!(pushback(&["250"]), Some(Pushback::after_ms(250)));
        assert_eq!(pushback(&["-1"]), Some(Pushback::dont_retry()));
        assert!(pushback(&["soon"]).is_some_and(Pushback::says_stop));
        let two = pushback(&["10", "20"]).unwrap();
        assert!(two.says_stop());
        assert_eq!(
            (two.first, two.last, two.count),
            (PushbackValue::Integer(10), PushbackValue::Integer(20), 2)
        );
    }

    #[test]
    fn status_and_http_status_are_read() {
        let fields = read(&[(":status", "200"), ("grpc-status", "14"), ("other", "x")]);
        assert_eq!(fields.status, Some(200));
        assert_eq!(fields.grpc_status, Some(Code::Unavailable));
        assert_eq!(
            read(&[("grpc-status", "99")]).grpc_status,
            Some(Code::Unknown)
        );
        assert_eq!(read(&[(":status", "abc")]).status, None);
    }
}
