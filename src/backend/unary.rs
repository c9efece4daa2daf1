//! The backend's unary methods, `Call` and `Mutate`, answered without tonic's codec.
//!
//! Why: a profile of `resilbench serve` at 90,000 calls/s (`perf record --call-graph dwarf`)
//! put 10% of its CPU in tonic's streaming decoder and encoder, for a 3-byte message: their
//! buffers, their state, a boxed body. The usual request (one uncompressed message, then the
//! end of the stream) is decoded here from the body as it arrived, handed to the same handler
//! (`Shared`'s `Backend` methods), and its reply goes out as tonic writes one: `content-type`
//! in the headers, the message in one data frame, `grpc-status` in the trailers; an error
//! through `Status::into_http`, as tonic answers it. docs/PERFORMANCE.md has the figures.
//!
//! Every other request goes to tonic's service with its body as read, so that its answers
//! stay tonic's, and as soon as tonic would give them: at once when the message's prefix
//! shows it (gRPC over HTTP/2 frames a message as a 1-byte compressed flag, a 4-byte length,
//! the bytes; a set flag or a length over tonic's 4 MiB limit), at the end of the stream
//! otherwise (no message, a truncated one, several, request trailers, a body error).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response};

use super::server::Shared;
use crate::pb;
use crate::pb::backend_server::{Backend as _, BackendServer};
use crate::protocol::message::{self, PREFIX, Prefix};
use crate::protocol::{header, path};

/// A unary method of the backend's service.
#[derive(Debug, Clone, Copy)]
pub(super) enum Unary {
    Call,
    Mutate,
}

impl Unary {
    /// The unary method `request` asks for, if it is one and its messages are uncompressed
    /// (tonic's `grpc-encoding` check answers the others).
    pub(super) fn of<B>(request: &http::Request<B>) -> Option<Self> {
        let method = match request.uri().path() {
            path::CALL => Self::Call,
            path::MUTATE => Self::Mutate,
            _ => return None,
        };
        let plain = request
            .headers()
            .get(header::ENCODING)
            .is_none_or(|e| e == "identity");
        plain.then_some(method)
    }

    /// Answers `request`: here if it is the usual one, else through `tonic`.
    pub(super) async fn answer(
        self,
        shared: &Shared,
        mut tonic: BackendServer<Shared>,
        request: http::Request<Incoming>,
    ) -> http::Response<tonic::body::Body> {
        let (parts, body) = request.into_parts();
        let read = Read::from(body).await;
        let decoded = match (&read, self) {
            (Read::Message(m), Self::Call) => prost::Message::decode(m.slice(PREFIX..))
                .ok()
                .map(Decoded::Call),
            (Read::Message(m), Self::Mutate) => prost::Message::decode(m.slice(PREFIX..))
                .ok()
                .map(Decoded::Mutate),
            (Read::Other(_), _) => None,
        };
        // Not the usual request, or not decodable: tonic reads it again and answers.
        let Some(decoded) = decoded else {
            let request = http::Request::from_parts(parts, read.replay());
            return match tower::Service::call(&mut tonic, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
        };
        let answer = match decoded {
            Decoded::Call(m) => shared.call(request_of(parts.headers, m)).await,
            Decoded::Mutate(m) => shared.mutate(request_of(parts.headers, m)).await,
        };
        match answer {
            Ok(reply) => response(reply),
            Err(status) => status.into_http(),
        }
    }
}

/// A usual request's message.
enum Decoded {
    Call(pb::CallRequest),
    Mutate(pb::MutateRequest),
}

/// The request the handler takes: the HTTP headers as its metadata.
fn request_of<T>(headers: http::HeaderMap, message: T) -> Request<T> {
    Request::from_parts(
        MetadataMap::from_headers(headers),
        Default::default(),
        message,
    )
}

/// A reply as tonic's server writes it for a unary call: the reply's metadata and
/// `content-type` in the headers, the message in one data frame, `grpc-status: 0` in the
/// trailers (tonic also drops reserved names from the metadata; this service's replies carry
/// none).
fn response(reply: Response<pb::CallReply>) -> http::Response<tonic::body::Body> {
    let (metadata, message, _) = reply.into_parts();
    let mut trailers = http::HeaderMap::with_capacity(1);
    trailers.insert(header::STATUS, http::HeaderValue::from_static("0"));
    let body = Reply {
        data: Some(message::encode(&message)),
        trailers: Some(trailers),
    };
    let mut response = http::Response::new(tonic::body::Body::new(body));
    *response.headers_mut() = metadata.into_headers();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(header::GRPC_CONTENT_TYPE),
    );
    response
}

/// A request body as read: the usual one, or any other, to be replayed.
enum Read {
    /// Exactly one uncompressed message within tonic's limit, and the stream's clean end: the
    /// body, prefix included.
    Message(Bytes),
    Other(Replay),
}

impl Read {
    /// Reads `body` until it ends, or until its message's prefix or a second message shows
    /// it is not the usual request.
    async fn from(mut body: Incoming) -> Self {
        // The usual body comes in one frame, kept as it came; more frames are joined.
        let mut data = BytesMut::new();
        let mut first: Option<Bytes> = None;
        loop {
            let have = first.as_deref().unwrap_or(&data);
            let len = match Prefix::of(have) {
                Prefix::Short => None,
                Prefix::Message(len) if have.len() <= PREFIX + len => Some(len),
                // tonic answers this at once; or a second message has begun.
                Prefix::Message(_) | Prefix::Compressed | Prefix::TooLarge => {
                    return Self::Other(Replay::of(first, data, Some(body), None, None));
                }
            };
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => break,
                Some(Err(e)) => return Self::Other(Replay::of(first, data, None, Some(e), None)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) if first.is_none() && data.is_empty() => first = Some(d),
                    Ok(d) => {
                        if let Some(f) = first.take() {
                            data.reserve(len.map_or(0, |l| 5 + l).max(f.len() + d.len()));
                            data.extend_from_slice(&f);
                        }
                        data.extend_from_slice(&d);
                    }
                    Err(frame) => {
                        let trailers = frame.into_trailers().ok();
                        return Self::Other(Replay::of(first, data, None, None, trailers));
                    }
                },
            }
        }
        let all = first.unwrap_or_else(|| data.freeze());
        match Prefix::of(&all) {
            Prefix::Message(len) if all.len() == PREFIX + len => Self::Message(all),
            _ => Self::Other(Replay::of(Some(all), BytesMut::new(), None, None, None)),
        }
    }

    /// The body again, as it came.
    fn replay(self) -> Replay {
        match self {
            Self::Message(body) => Replay::of(Some(body), BytesMut::new(), None, None, None),
            Self::Other(replay) => replay,
        }
    }
}

/// A request body given out again as it was read: its data in one frame, then what was not
/// read yet, then the error or the trailers that ended it.
struct Replay {
    /// The data read.
    data: Option<Bytes>,
    /// The body's frames not read yet (reading stopped early).
    rest: Option<Incoming>,
    /// The error that ended the body.
    error: Option<hyper::Error>,
    /// The trailers that ended the body.
    trailers: Option<http::HeaderMap>,
}

impl Replay {
    fn of(
        first: Option<Bytes>,
        data: BytesMut,
        rest: Option<Incoming>,
        error: Option<hyper::Error>,
        trailers: Option<http::HeaderMap>,
    ) -> Self {
        let data = first.unwrap_or_else(|| data.freeze());
        Self {
            data: (!data.is_empty()).then_some(data),
            rest,
            error,
            trailers,
        }
    }
}

impl Body for Replay {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(d) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        if let Some(rest) = &mut this.rest {
            match Pin::new(rest).poll_frame(cx) {
                Poll::Ready(None) => this.rest = None,
                other => return other,
            }
        }
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
            && self.error.is_none()
            && self.trailers.is_none()
    }
}

/// A unary reply's body: one data frame, then the trailers.
struct Reply {
    /// The framed message.
    data: Option<Bytes>,
    /// `grpc-status`.
    trailers: Option<http::HeaderMap>,
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.data.take() {
            Some(d) => Frame::data(d),
            None => return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t)))),
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::server::{serve_in_memory, stop_server};

    const CALL: &str = path::CALL;
    const MUTATE: &str = path::MUTATE;

    /// What an HTTP/2 client saw of one request: the response's status and headers, its
    /// data, its trailers.
    type Seen = (u16, http::HeaderMap, Vec<u8>, Option<http::HeaderMap>);

    /// A request to an in-memory server, its stream left open: the response to come, the
    /// request's stream, the server's stop and the server.
    async fn open(
        path: &str,
        headers: &[(&'static str, &'static str)],
    ) -> (
        h2::client::ResponseFuture,
        h2::SendStream<Bytes>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (client_io, stop, server) = serve_in_memory();
        let (mut client, connection) = h2::client::handshake(client_io).await.unwrap();
        tokio::spawn(connection);
        let mut request = http::Request::post(format!("http://test{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (response, send) = client
            .send_request(request.body(()).unwrap(), false)
            .unwrap();
        (response, send, stop, server)
    }

    /// Sends `path` with `headers`, the body as `frames` (each a DATA frame) and `trailers`
    /// (if any) over an in-memory connection to `serve_connections`.
    async fn raw(
        path: &str,
        headers: &[(&'static str, &'static str)],
        frames: &[&[u8]],
        trailers: Option<http::HeaderMap>,
    ) -> Seen {
        let (response, mut send, stop, server) = open(path, headers).await;
        for (i, frame) in frames.iter().enumerate() {
            let last = i + 1 == frames.len() && trailers.is_none();
            send.send_data(bytes::Bytes::copy_from_slice(frame), last)
                .unwrap();
        }
        match trailers {
            Some(t) => send.send_trailers(t).unwrap(),
            None if frames.is_empty() => send.send_data(bytes::Bytes::new(), true).unwrap(),
            None => {}
        }
        let (parts, mut body) = response.await.unwrap().into_parts();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            data.extend_from_slice(&chunk.unwrap());
        }
        let trailers = body.trailers().await.unwrap();
        stop_server(stop, server).await;
        (parts.status.as_u16(), parts.headers, data, trailers)
    }

    /// A gRPC-framed message: flag, length, bytes.
    fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    fn grpc_status(seen: &Seen) -> (String, String) {
        let fields = seen.3.as_ref().unwrap_or(&seen.1);
        let get = |n: &str| {
            fields
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        (get("grpc-status"), get("grpc-message"))
    }

    const GRPC: [(&str, &str); 2] = [("content-type", "application/grpc"), ("te", "trailers")];

    /// The usual unary request, answered without tonic's codec, gets the same response as
    /// tonic's service gives it (reached here by ending the request with trailers, which the
    /// fast path leaves to tonic): headers, data, trailers. A message split over two DATA
    /// frames is still the usual request.
    #[tokio::test]
    async fn the_usual_unary_request_is_answered_as_tonic_answers_it() {
        let message = prost::Message::encode_to_vec(&pb::CallRequest {
            request_id: "7".into(),
            ..Default::default()
        });
        let body = framed(0, &message);
        let fast = raw(CALL, &GRPC, &[&body], None).await;
        let tonic = raw(CALL, &GRPC, &[&body], Some(http::HeaderMap::new())).await;
        assert_eq!(fast, tonic);
        assert_eq!(grpc_status(&fast), ("0".into(), String::new()));
        let reply: pb::CallReply = prost::Message::decode(&fast.2[5..]).unwrap();
        assert_eq!((reply.request_id.as_str(), reply.attempt), ("7", 1));
        let split = raw(CALL, &GRPC, &[&body[..3], &body[3..]], None).await;
        assert_eq!(split.2[5..], fast.2[5..]);
        let mutate = prost::Message::encode_to_vec(&pb::MutateRequest {
            request_id: "8".into(),
            idempotency_key: "k".into(),
            ..Default::default()
        });
        let body = framed(0, &mutate);
        let fast = raw(MUTATE, &GRPC, &[&body], None).await;
        let tonic = raw(MUTATE, &GRPC, &[&body], Some(http::HeaderMap::new())).await;
        assert_eq!(fast, tonic);
        assert_eq!(grpc_status(&fast).0, "0");
    }

    /// Requests other than the usual one get tonic's own answers (gRPC over HTTP/2 and
    /// tonic's decoder): no message, a truncated one, a compressed flag without an encoding,
    /// bytes that are not the message, and a compression the server does not take.
    #[tokio::test]
    async fn unusual_unary_requests_get_tonics_answers() {
        let internal = |message: &str| ("13".to_string(), message.replace(' ', "%20"));
        let seen = raw(CALL, &GRPC, &[], None).await;
        assert_eq!(grpc_status(&seen), internal("Missing request message."));
        let seen = raw(CALL, &GRPC, &[&framed(0, b"abc")[..6]], None).await;
        assert_eq!(
            grpc_status(&seen),
            internal("Unexpected EOF decoding stream.")
        );
        let seen = raw(CALL, &GRPC, &[&framed(1, b"")], None).await;
        assert_eq!(grpc_status(&seen).0, "13");
        assert!(grpc_status(&seen).1.contains("compressed-flag"), "{seen:?}");
        let seen = raw(CALL, &GRPC, &[&framed(0, &[0xff, 0xff])], None).await;
        assert_eq!(grpc_status(&seen).0, "13", "{seen:?}");
        let gzip = [GRPC[0], GRPC[1], ("grpc-encoding", "gzip")];
        let seen = raw(CALL, &gzip, &[&framed(0, b"")], None).await;
        assert_eq!(grpc_status(&seen).0, "12", "{seen:?}");
    }

    /// A prefix that tonic refuses (a compressed flag, a length over its limit) is answered
    /// at once, as tonic answers it, while the client still holds its stream open: the body
    /// is not read on to its end (or to 4 MiB) first.
    #[tokio::test]
    async fn a_refused_prefix_is_answered_before_the_stream_ends() {
        // A message of 5 MiB announced: its prefix only.
        let mut too_long = vec![0];
        too_long.extend_from_slice(&(5u32 << 20).to_be_bytes());
        for (head, code) in [(framed(1, b"")[..5].to_vec(), "13"), (too_long, "11")] {
            let (response, mut send, stop, server) = open(CALL, &GRPC).await;
            send.send_data(bytes::Bytes::from(head), false).unwrap();
            let response = crate::clock::Clock::Tokio
                .timeout(std::time::Duration::from_secs(10), response)
                .await
                .expect("answered with the stream still open")
                .unwrap();
            let status = response.headers()["grpc-status"]
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(status, code);
            drop(send);
            stop_server(stop, server).await;
        }
    }
}
