//! The gRPC client: attempts as gRPC calls, written straight onto the HTTP/2 streams of
//! [`super::http2`].
//!
//! Each attempt carries what a gRPC client library would send: `grpc-timeout` (the time left
//! until the attempt's deadline, written as grpc-go writes it) and, on retries and hedges,
//! `grpc-previous-rpc-attempts` (gRFC A6). Warmup attempts carry `resilbench-warmup` so the
//! backend leaves them out of its figures.
//!
//! The wire format is gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md): a POST to
//! `/resilbench.v1.Backend/<Method>` with `content-type: application/grpc` and `te: trailers`,
//! each message a 5-byte prefix (compressed flag, big-endian length) and its protobuf bytes,
//! the status in `grpc-status` in the trailers, or in the headers of a Trailers-Only response.
//! Statuses the server did not send are derived as gRPC clients derive them: an HTTP status
//! other than 200 as doc/http-grpc-status-mapping.md says, an HTTP/2 reset as
//! PROTOCOL-HTTP2.md's "Errors" table says (tonic's mapping of h2 errors), a broken connection
//! as UNAVAILABLE.
//!
//! Why not tonic's generated client over a `Channel`: the channel hands every request to a
//! buffer task and then to hyper's dispatch task, which spawns one more task per request body,
//! and it enforces `grpc-timeout` again on tokio's 1 ms timer. Here the attempt's own task
//! opens the stream, writes the message and reads the answer, over the lean HTTP/2 client of
//! [`super::http2`]; the strategy stack already enforces every deadline on the precise clock.
//! The measured differences are in docs/PERFORMANCE.md. The server side (`resilbench serve`,
//! the embedded backend) is tonic's generated services on hyper's HTTP/2 server
//! (`backend::server`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::Uri;
use prost::Message;
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Endpoint;

use super::connection::Connections;
use super::http2::{self, Event, Processed};
use super::own::{self, OwnService};
use crate::call::BoxFuture;
use crate::call::{Call, Failure, FailureSource, NotProcessed, Outcome, Reply, call_service};
use crate::clock::Clock;
use crate::pb;
use crate::profile::Method;
use crate::protocol::header::{self, ResponseFields};
use crate::protocol::{message, path, status, timeout};

/// A tonic endpoint to `addr` (`host:port`), for the control service.
pub fn endpoint(addr: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(uri_text(addr))?
        .tcp_nodelay(true)
        .connect_timeout(super::connection::CONNECT_TIMEOUT))
}

/// The `host:port` of a target given as `host:port` or `http://host:port[/]`. TLS is not
/// supported: any other scheme is refused.
pub fn authority(addr: &str) -> Result<String, String> {
    let rest = match addr.split_once("://") {
        None => addr,
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{scheme}:// is not supported (plaintext http:// only)"
            ));
        }
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("expected host:port, found {addr}"));
    }
    Ok(rest.to_string())
}

fn uri_text(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// The three methods' paths on one server, and its authority.
#[derive(Debug)]
struct Paths {
    authority: Box<[u8]>,
    call: Box<[u8]>,
    mutate: Box<[u8]>,
    stream: Box<[u8]>,
}

impl Paths {
    fn new(authority: &str) -> Result<Self, String> {
        let base = uri_text(authority);
        let base = base.trim_end_matches('/');
        let uri = |method: &str| -> Result<Uri, String> {
            format!("{base}{}", path::of(path::BACKEND_SERVICE, method))
                .parse()
                .map_err(|e| format!("not an address: {authority}: {e}"))
        };
        let call = uri("Call")?;
        let path = |uri: &Uri| uri.path().as_bytes().into();
        Ok(Self {
            authority: call
                .authority()
                .map(|a| a.as_str().as_bytes().into())
                .ok_or_else(|| format!("not an address: {authority}"))?,
            call: path(&call),
            mutate: path(&uri("Mutate")?),
            stream: path(&uri("Stream")?),
        })
    }
}

/// Sends attempts as gRPC calls over HTTP/2 connections to one replica.
#[derive(Clone)]
pub struct GrpcTransport {
    /// What every attempt to this replica shares, behind one reference an attempt's future
    /// takes with it.
    target: Arc<Target>,
    clock: Clock,
}

/// The replica's connections, what its calls send, and its name.
struct Target {
    connections: Connections,
    requests: Requests,
    replica: Option<Box<str>>,
    /// Calls to the user's own service carry resilbench's request id, attempt and warmup
    /// headers: the target is a `resilbench proxy`, which keys its draws by them.
    tagged: bool,
}

/// What the calls send.
enum Requests {
    /// resilbench's own backend: `Call`, `Mutate` or `Stream`, with a payload.
    Backend { paths: Paths, payload: Bytes },
    /// The user's own service (`[target]`).
    Own(Arc<OwnService>),
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("GrpcTransport");
        match &self.target.requests {
            Requests::Backend { paths, .. } => d.field("paths", paths),
            Requests::Own(own) => d.field("service", own),
        };
        d.field("replica", &self.target.replica)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// A transport over `connections` to the server at `authority` (`host:port`), sending
    /// `payload_bytes` of payload per request; `clock` tells how much time is left before a
    /// deadline. `replica` names the replica (by index, in the `resilbench-replica` header)
    /// when the server hosts several.
    pub fn new(
        connections: Connections,
        authority: &str,
        payload_bytes: u32,
        clock: Clock,
        replica: Option<usize>,
    ) -> Result<Self, String> {
        let target = Target {
            connections,
            requests: Requests::Backend {
                paths: Paths::new(authority)?,
                payload: Bytes::from(vec![0u8; payload_bytes as usize]),
            },
            replica: replica.map(|r| r.to_string().into()),
            tagged: false,
        };
        Ok(Self {
            target: Arc::new(target),
            clock,
        })
    }

    /// A transport over `connections` to the user's own service, sending what `service`
    /// says; `clock` tells how much time is left before a deadline.
    pub fn own(connections: Connections, service: Arc<OwnService>, clock: Clock) -> Self {
        Self::own_with(connections, service, clock, false)
    }

    /// [`GrpcTransport::own`] through a `resilbench proxy` when `tagged`: each call also
    /// carries resilbench's request id, attempt and warmup headers, for the proxy's draws.
    pub fn own_with(
        connections: Connections,
        service: Arc<OwnService>,
        clock: Clock,
        tagged: bool,
    ) -> Self {
        let target = Target {
            connections,
            requests: Requests::Own(service),
            replica: None,
            tagged,
        };
        Self {
            target: Arc::new(target),
            clock,
        }
    }
}

impl Target {
    /// The request message, framed; why not, if it cannot be encoded.
    fn body(&self, call: &Call) -> Result<Bytes, String> {
        let payload = match &self.requests {
            Requests::Own(own) => return own.body(call.id),
            Requests::Backend { payload, .. } => payload.clone(),
        };
        let request_id = call.id.to_string();
        Ok(match call.method {
            Method::Unary | Method::Stream => message::encode(&pb::CallRequest {
                request_id,
                payload,
                script: vec![],
            }),
            Method::Mutate => {
                let idempotency_key = if call.idempotency_key {
                    request_id.clone()
                } else {
                    String::new()
                };
                message::encode(&pb::MutateRequest {
                    request_id,
                    payload,
                    script: vec![],
                    idempotency_key,
                })
            }
        })
    }
}

// Each call waits for its connection inside its own future.
call_service! {
    for GrpcTransport, ready = always
}

impl GrpcTransport {
    /// Its work on one call (its `Service::call`): the attempt's streams, one unless the
    /// server did not process it and it is sent again at once ([`super::transparent`]).
    fn serve(&mut self, call: Call) -> BoxFuture<Outcome> {
        let mut body = match self.target.body(&call) {
            Ok(body) => Some(body),
            // A request the template cannot make (checked before the run; never expected):
            // the call fails as a gRPC client fails one it cannot serialize.
            Err(_) => return Box::pin(std::future::ready(Err(Failure::local(Code::Internal)))),
        };
        let (target, clock) = (Arc::clone(&self.target), self.clock.clone());
        Box::pin(async move {
            let call = &call;
            let outcome = super::transparent::attempt(call, || {
                // The time left is taken when each stream starts, as a gRPC library takes it.
                let timeout = call
                    .sent_deadline
                    .map(|d| timeout::write(d.saturating_duration_since(clock.now())));
                // The first stream takes the body made above; a stream sent again (rare)
                // makes it again, the same bytes, rather than every call cloning it (a clone
                // of a `Bytes` made from a `Vec` allocates).
                let body = body.take().map_or_else(|| target.body(call), Ok);
                let target = &target;
                async move {
                    match body {
                        Ok(body) => target.exchange(call, timeout.as_deref(), body).await,
                        Err(_) => Sent::Done(Err(Failure::local(Code::Internal))),
                    }
                }
            })
            .await;
            deadline_status(outcome, call.sent_deadline, &clock)
        })
    }
}

/// How one stream of an attempt ended.
pub(super) enum Sent {
    /// With the attempt's outcome.
    Done(Outcome),
    /// Without reaching the server's application: the stream can be sent again as if never
    /// sent (gRFC A6's transparent retry).
    NotProcessed(NotProcessed),
}

impl From<Outcome> for Sent {
    fn from(outcome: Outcome) -> Self {
        Sent::Done(outcome)
    }
}

impl Target {
    /// One stream on the wire: open it with the headers a gRPC client library sends, send the
    /// message, read the answer.
    async fn exchange(&self, call: &Call, timeout: Option<&str>, body: Bytes) -> Sent {
        match self.stream(call, timeout, body).await {
            Err(Stream::NotProcessed(how)) => Sent::NotProcessed(how),
            Err(Stream::Failed(failure)) => Sent::Done(Err(failure)),
            Ok(reply) => Sent::Done(Ok(reply)),
        }
    }

    async fn stream(
        &self,
        call: &Call,
        timeout: Option<&str>,
        body: Bytes,
    ) -> Result<Reply, Stream> {
        let (mut previous, mut ordinal) = (itoa::Buffer::new(), itoa::Buffer::new());
        let mut id = itoa::Buffer::new();
        let previous =
            (call.previous_attempts > 0).then(|| previous.format(call.previous_attempts));
        let field = |name: &'static str, value: &'static str, constant| {
            (name.as_bytes(), value.as_bytes(), constant)
        };
        let mut fields: [http2::Field<'_>; own::MAX_FIELDS] = [(b"", b"", false); own::MAX_FIELDS];
        let mut n = 0;
        let mut rendered = Vec::new();
        let mut ends = Vec::new();
        let (path, authority, https) = match &self.requests {
            Requests::Backend { paths, .. } => {
                let path = match call.method {
                    Method::Unary => &paths.call,
                    Method::Mutate => &paths.mutate,
                    Method::Stream => &paths.stream,
                };
                let wanted: [Option<http2::Field<'_>>; 7] = [
                    Some(field(header::CONTENT_TYPE, header::GRPC_CONTENT_TYPE, true)),
                    Some(field(header::TE, header::TRAILERS, true)),
                    timeout.map(|t| (header::TIMEOUT.as_bytes(), t.as_bytes(), false)),
                    previous.map(|v| (header::PREVIOUS_ATTEMPTS.as_bytes(), v.as_bytes(), false)),
                    Some((
                        header::ATTEMPT.as_bytes(),
                        ordinal.format(call.ordinal).as_bytes(),
                        false,
                    )),
                    call.warmup.then(|| field(header::WARMUP, "1", true)),
                    self.replica
                        .as_ref()
                        .map(|r| (header::REPLICA.as_bytes(), r.as_bytes(), true)),
                ];
                for f in wanted.into_iter().flatten() {
                    fields[n] = f;
                    n += 1;
                }
                (&path[..], &paths.authority[..], false)
            }
            Requests::Own(own) => {
                let wanted: [Option<http2::Field<'_>>; 4] = [
                    Some(field(header::CONTENT_TYPE, header::GRPC_CONTENT_TYPE, true)),
                    Some(field(header::TE, header::TRAILERS, true)),
                    timeout.map(|t| (header::TIMEOUT.as_bytes(), t.as_bytes(), false)),
                    previous.map(|v| (header::PREVIOUS_ATTEMPTS.as_bytes(), v.as_bytes(), false)),
                ];
                for f in wanted.into_iter().flatten() {
                    fields[n] = f;
                    n += 1;
                }
                if self.tagged {
                    let tags: [Option<http2::Field<'_>>; 3] = [
                        Some((
                            header::REQUEST_ID.as_bytes(),
                            id.format(call.id).as_bytes(),
                            false,
                        )),
                        Some((
                            header::ATTEMPT.as_bytes(),
                            ordinal.format(call.ordinal).as_bytes(),
                            false,
                        )),
                        call.warmup.then(|| field(header::WARMUP, "1", true)),
                    ];
                    for f in tags.into_iter().flatten() {
                        fields[n] = f;
                        n += 1;
                    }
                }
                if own.templated_metadata() {
                    own.render_metadata(call.id, &mut rendered, &mut ends);
                }
                n = own.metadata(&rendered, &ends, &mut fields, n);
                own.pseudo()
            }
        };
        let request = http2::Request {
            path,
            authority,
            https,
            fields: &fields[..n],
            body,
            end: true,
        };
        let unavailable = || Failure {
            code: Code::Unavailable,
            pushback: None,
            source: FailureSource::Transport,
            messages: 0,
            committed: false,
        };
        // No connection: the call fails at the pick, to the policy (A6's first case).
        let handle = self.connections.ready().await.map_err(|_| unavailable())?;
        // The connection ended or went away before the stream could open: it never left.
        let mut stream = handle
            .open(request)
            .await
            .map_err(|_| Stream::NotProcessed(NotProcessed::Unsent))?;
        let head = match stream.next().await {
            // The head as a gRPC client reads it (`:status`, `grpc-status`, pushback).
            Event::Head(head) => ResponseFields::of(&head),
            Event::Broken(lost) if lost.processed.not_processed() => {
                return Err(Stream::NotProcessed(match lost.processed {
                    Processed::Refused => NotProcessed::Refused,
                    Processed::GoneAway => NotProcessed::GoneAway,
                    _ => NotProcessed::Unsent,
                }));
            }
            other => return Err(ended(other, 0, false).into()),
        };
        // Trailers-Only: the status is in the headers and nothing follows (not committed).
        let own = matches!(self.requests, Requests::Own(_));
        if head.grpc_status.is_some() {
            status_of(&head, 0, false)?;
            return Ok(reply(call.method, own, None, 0, false)?);
        }
        if head.status != Some(200) {
            return Err(Failure {
                code: status::from_http(head.status.unwrap_or(0)),
                pushback: None,
                source: FailureSource::Transport,
                messages: 0,
                committed: false,
            }
            .into());
        }
        // Response headers arrived: the call is committed (gRFC A6).
        if let Some(c) = &call.commit {
            c.commit();
        }
        let mut buffer = BytesMut::new();
        let mut messages = 0u32;
        let mut first = None;
        loop {
            match stream.next().await {
                Event::Data(chunk) if buffer.is_empty() => buffer = chunk,
                Event::Data(chunk) => buffer.extend_from_slice(&chunk),
                Event::Trailers(trailers) => {
                    status_of(&ResponseFields::of(&trailers), messages, true)?;
                    return Ok(reply(call.method, own, first, messages, true)?);
                }
                // A 200 response that ends without grpc-status is UNKNOWN (grpc-go, and tonic
                // after it).
                Event::End => {
                    return Err(Failure {
                        code: Code::Unknown,
                        pushback: None,
                        source: FailureSource::Transport,
                        messages,
                        committed: true,
                    }
                    .into());
                }
                other => return Err(ended(other, messages, true).into()),
            }
            while let Some(message) = message::next(&mut buffer).map_err(|code| Failure {
                code,
                pushback: None,
                source: FailureSource::Local,
                messages,
                committed: true,
            })? {
                messages += 1;
                if first.is_none() {
                    first = Some(message);
                }
            }
        }
    }
}

/// Why a stream gave no reply.
enum Stream {
    /// It failed, with this status.
    Failed(Failure),
    /// The server did not process it.
    NotProcessed(NotProcessed),
}

impl From<Failure> for Stream {
    fn from(failure: Failure) -> Self {
        Stream::Failed(failure)
    }
}

/// A call that ended OK: a stream's count of messages, or a unary call's one message (which
/// must be there: gRPC clients fail a unary call that ends OK without it INTERNAL). The
/// backend's reply says which attempt it saw; the user's own service's (`own`) is counted,
/// not decoded.
fn reply(
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
fn status_of(fields: &ResponseFields, messages: u32, committed: bool) -> Result<(), Failure> {
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
fn ended(event: Event, messages: u32, committed: bool) -> Failure {
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
fn deadline_status(outcome: Outcome, deadline: Option<Instant>, clock: &Clock) -> Outcome {
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

    use crate::protocol::Pushback;

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

    #[test]
    fn targets_are_host_and_port_with_at_most_http() {
        assert_eq!(authority("127.0.0.1:50051").unwrap(), "127.0.0.1:50051");
        assert_eq!(authority("http://svc:80/").unwrap(), "svc:80");
        assert!(
            authority("https://svc:443")
                .unwrap_err()
                .contains("https://")
        );
        assert!(authority("http://svc:80/path").is_err());
        assert!(authority("").is_err());
    }
}
