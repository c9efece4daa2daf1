//! One stream of an attempt on the wire: opened with the headers a gRPC client library sends
//! (and, to the user's own service, its metadata), the message sent, the answer read until
//! its trailers, a stream the server did not process told apart.

use bytes::{Bytes, BytesMut};
use tonic::Code;

use super::answer::{ended, reply, status_of};
use super::{Requests, Target};
use crate::call::{Call, Failure, FailureSource, NotProcessed, Reply};
use crate::profile::Method;
use crate::protocol::header::{self, ResponseFields};
use crate::protocol::{message, status};
use crate::transport::http2::{self, Event, Processed};
use crate::transport::own;

impl Target {
    /// One stream on the wire: open it, send the message, read the answer.
    pub(super) async fn stream(
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
            .open_telling(request, || call.meter.waited_for_slot())
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
pub(super) enum Stream {
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
