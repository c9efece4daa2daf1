//! What a stream's answer means, as a gRPC client reads it: the status in the trailers (or a
//! Trailers-Only response's headers) with the server's pushback, a stream ended without one,
//! a unary reply's message and the attempt it names, a CANCELLED after the sent deadline.

use bytes::Bytes;
use prost::Message;
use tokio::time::Instant;
use tonic::Code;

use crate::call::{Failure, FailureSource, Outcome, Reply};
use crate::clock::Clock;
use crate::profile::Method;
use crate::protocol::header::{self, ResponseFields};
use crate::protocol::status;
use crate::transport::http2::Event;

/// A call that ended OK: a stream's count of messages, or a unary call's one message (which
/// must be there: gRPC clients fail a unary call that ends OK without it INTERNAL). The
/// backend's reply says which attempt it saw; the user's own service's (`own`) is counted,
/// not decoded.
pub(super) fn reply(
    method: Method,
    own: bool,
    first: Option<Bytes>,
    messages: u32,
    committed: bool,
) -> Outcome {
    if matches!(method, Method::Stream) {
        return Ok(Reply {
            backend_attempt: 0,
            messages,
            fallback: false,
        });
    }
    let attempt = match first {
        Some(_) if own => Some(Ok(0)),
        other => other.map(|m| {
            let read = ReplyAttempt::decode(m).ok();
            read.and_then(ReplyAttempt::attempt).ok_or(())
        }),
    };
    match attempt {
        Some(Ok(attempt)) => Ok(Reply {
            backend_attempt: attempt,
            messages: 0,
            fallback: false,
        }),
        _ => Err(Failure {
            committed,
            ..Failure::local(Code::Internal)
        }),
    }
}

/// A `CallReply` (proto/resilbench.proto) read for its attempt: the echoed request id stays
/// in the received bytes (checked as UTF-8, as a `string` field is), not copied into a
/// `String` on every call.
#[derive(Clone, PartialEq, prost::Message)]
struct ReplyAttempt {
    /// `string request_id = 1`, as received.
    #[prost(bytes = "bytes", tag = "1")]
    request_id: Bytes,
    /// `uint32 attempt = 2`.
    #[prost(uint32, tag = "2")]
    attempt: u32,
}

impl ReplyAttempt {
    /// The attempt, if the request id is UTF-8 (prost fails a `string` field that is not).
    fn attempt(self) -> Option<u32> {
        std::str::from_utf8(&self.request_id)
            .is_ok()
            .then_some(self.attempt)
    }
}

/// `Err` with the status in `fields` (trailers, or a Trailers-Only response's headers)
/// unless it is OK; no status at all is UNKNOWN.
pub(super) fn status_of(
    fields: &ResponseFields,
    messages: u32,
    committed: bool,
) -> Result<(), Failure> {
    let code = fields.grpc_status.unwrap_or(Code::Unknown);
    if code == Code::Ok {
        return Ok(());
    }
    Err(Failure {
        code,
        pushback: fields.pushback,
        source: FailureSource::Backend,
        messages,
        committed,
    })
}

/// A stream that ended without a status, as a gRPC client reports it: reset by the server
/// by its reason (PROTOCOL-HTTP2.md, "Errors"; tonic's `Status::from_error` holds that
/// table), lost with its connection (broken, refused, gone away) as UNAVAILABLE.
pub(super) fn ended(event: Event, messages: u32, committed: bool) -> Failure {
    let code = match event {
        Event::Reset(reason) => status::from_reset(reason),
        Event::Broken(_) => Code::Unavailable,
        // Nothing else can come before the headers or after the end.
        Event::Head(_) | Event::Data(_) | Event::Trailers(_) | Event::End => Code::Internal,
    };
    Failure {
        code,
        pushback: None,
        source: FailureSource::Transport,
        messages,
        committed,
    }
}

/// A server past the deadline may reset the stream with CANCEL; gRPC clients report an
/// expired deadline as DEADLINE_EXCEEDED (grpc-go; grpc-dotnet turns a CANCELLED received after
/// its deadline into DEADLINE_EXCEEDED). So does this transport: a CANCELLED at or after the
/// deadline it sent is DEADLINE_EXCEEDED, decided locally.
pub(super) fn deadline_status(
    outcome: Outcome,
    deadline: Option<Instant>,
    clock: &Clock,
) -> Outcome {
    match outcome {
        Err(f) if f.code == Code::Cancelled && deadline.is_some_and(|d| clock.now() >= d) => {
            Err(Failure {
                code: Code::DeadlineExceeded,
                source: FailureSource::Local,
                ..f
            })
        }
        other => other,
    }
}

/// What a client sees in a failed tonic call's status, after `messages` stream messages;
/// `headers` says whether response headers had arrived (for tonic clients in benches).
pub fn status_to_failure(status: &tonic::Status, messages: u32, headers: bool) -> Failure {
    // Connection-level failures carry the transport error as their source; a status the
    // server sent does not.
    let source = if std::error::Error::source(status).is_some() {
        FailureSource::Transport
    } else {
        FailureSource::Backend
    };
    let mut fields = ResponseFields::default();
    for value in status.metadata().get_all(header::PUSHBACK) {
        fields.add(header::PUSHBACK.as_bytes(), value.as_bytes());
    }
    Failure {
        code: status.code(),
        pushback: fields.pushback,
        source,
        messages,
        committed: headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::pb;
    use crate::protocol::{Pushback, message};
    use crate::transport::http2;

    fn trailers(pairs: &[(&'static str, &str)]) -> ResponseFields {
        ResponseFields::of(pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
    }

    /// A CANCELLED at or after the deadline the attempt sent is DEADLINE_EXCEEDED, decided
    /// locally, as gRPC clients report an expired deadline; before it, or without a deadline,
    /// CANCELLED stays, and no other status changes.
    #[tokio::test(start_paused = true)]
    async fn a_cancelled_after_the_sent_deadline_is_deadline_exceeded() {
        let clock = Clock::Tokio;
        let failed = |code| {
            Err(Failure {
                source: FailureSource::Backend,
                ..Failure::local(code)
            })
        };
        let code = |outcome: Outcome| outcome.map(|_| ()).unwrap_err();
        let now = clock.now();
        let (past, future) = (now, now + Duration::from_millis(1));
        let expired = code(deadline_status(failed(Code::Cancelled), Some(past), &clock));
        assert_eq!(expired.code, Code::DeadlineExceeded);
        assert_eq!(expired.source, FailureSource::Local);
        for (status, deadline) in [
            (Code::Cancelled, Some(future)),
            (Code::Cancelled, None),
            (Code::Unavailable, Some(past)),
        ] {
            let kept = code(deadline_status(failed(status), deadline, &clock));
            assert_eq!((kept.code, kept.source), (status, FailureSource::Backend));
        }
    }

    /// The status in trailers (or Trailers-Only headers), with the server's pushback.
    #[test]
    fn statuses_and_pushback_are_read_from_trailers() {
        assert_eq!(
            status_of(&trailers(&[("grpc-status", "0")]), 0, true),
            Ok(())
        );
        let failed = status_of(
            &trailers(&[("grpc-status", "14"), (header::PUSHBACK, "250")]),
            3,
            true,
        )
        .unwrap_err();
        assert_eq!(failed.code, Code::Unavailable);
        assert_eq!(failed.pushback, Some(Pushback::after_ms(250)));
        assert_eq!((failed.messages, failed.committed), (3, true));
        assert_eq!(failed.source, FailureSource::Backend);
        let read = |pairs: &[(&'static str, &str)]| status_of(&trailers(pairs), 0, false);
        // Pushback as grpc-go reads it: negative, malformed or repeated means "do not retry".
        for values in [&["-1"][..], &["soon"], &["10", "20"]] {
            let mut pairs = vec![("grpc-status", "8")];
            pairs.extend(values.iter().map(|v| (header::PUSHBACK, *v)));
            assert!(
                read(&pairs)
                    .unwrap_err()
                    .pushback
                    .is_some_and(Pushback::says_stop)
            );
        }
        // A status code gRPC does not define, or none at all, is UNKNOWN.
        assert_eq!(
            read(&[("grpc-status", "99")]).unwrap_err().code,
            Code::Unknown
        );
        assert_eq!(read(&[]).unwrap_err().code, Code::Unknown);
    }

    /// A unary call that ends OK needs its message (grpc-go and tonic fail it INTERNAL); a
    /// stream counts its messages.
    #[test]
    fn an_ok_unary_call_needs_its_message() {
        let message = message::encode(&pb::CallReply {
            request_id: "1".into(),
            attempt: 2,
        })
        .slice(5..);
        let ok = reply(Method::Unary, false, Some(message), 1, true).unwrap();
        assert_eq!(ok.backend_attempt, 2);
        let missing = reply(Method::Unary, false, None, 0, true).unwrap_err();
        assert_eq!((missing.code, missing.committed), (Code::Internal, true));
        let garbage = reply(
            Method::Mutate,
            false,
            Some(Bytes::from_static(b"\xff\xff")),
            1,
            true,
        );
        assert_eq!(garbage.unwrap_err().code, Code::Internal);
        assert_eq!(
            reply(Method::Stream, false, None, 4, true)
                .unwrap()
                .messages,
            4
        );
        // The user's own service's message is counted, whatever it holds; it must be there.
        let own = reply(
            Method::Unary,
            true,
            Some(Bytes::from_static(b"\xff")),
            1,
            true,
        );
        assert_eq!(own.unwrap().backend_attempt, 0);
        assert_eq!(
            reply(Method::Unary, true, None, 0, true).unwrap_err().code,
            Code::Internal
        );
    }

    /// A stream reset by the server keeps its reason's status; one lost with its connection
    /// is UNAVAILABLE.
    #[test]
    fn resets_and_broken_streams_map_to_grpc_codes() {
        // A stream reset by the server keeps its reason; one lost with its connection (broken,
        // refused, gone away) is UNAVAILABLE.
        let reset = ended(Event::Reset(http2::CANCEL), 2, true);
        assert_eq!(
            (reset.code, reset.messages, reset.committed),
            (Code::Cancelled, 2, true)
        );
        assert_eq!(reset.source, FailureSource::Transport);
        assert_eq!(
            ended(Event::Broken("gone".into()), 0, false).code,
            Code::Unavailable
        );
    }

    /// A stream the server did not process (refused, or above a GOAWAY's last id) is
    /// UNAVAILABLE, as one lost with its connection.
    #[test]
    fn streams_not_processed_are_unavailable() {
        let refused = ended(
            Event::Broken(http2::Lost::not_processed(
                "refused",
                http2::Processed::Refused,
            )),
            0,
            false,
        );
        assert_eq!(
            (refused.code, refused.source),
            (Code::Unavailable, FailureSource::Transport)
        );
    }
}
