//! A call's request body on its way through the proxy: read as far as the fault decision
//! needs it, then relayed to the upstream as the client sends it.
//!
//! Why a body is not read whole before the decision: a client-streaming or bidi call may send
//! its first message and wait for a reply before it sends more (or half-closes), and a proxy
//! that waited for the end would hold it until its deadline. So the decision is made on the
//! headers; only a call to resilbench's own `Backend` service with no `resilbench-request-id`
//! header waits for its first message, which carries the request id its draws are keyed by
//! (`wire::incoming`). What has arrived when the attempt is forwarded goes with the HEADERS
//! (a unary call's whole body, usually, as before), and the rest follows piece by piece (a
//! frame, or the frames that had arrived together joined up to 16 KiB: a client's burst of
//! tiny frames must not become a flood of tiny frames on the upstream connection that every
//! client of the thread shares, [`RequestBody::gather`]), each piece once the one before has
//! been written to the upstream within its windows
//! ([`http2::BodyWriter`]): HTTP/2 flow control reaches back to the client, and a call holds
//! at most two pieces beyond the windows (one given and not yet written, the next one read),
//! counted against the byte budgets (`bounds`) until they have gone. Until the upstream's
//! answer begins, what went with the HEADERS (shared, not copied) and what was relayed after
//! them are also kept, up to [`KEPT`] bytes relayed, and held against the budgets, so that a
//! stream the upstream did not process can be sent again whole ([`RequestBody::restart`]);
//! once they are no longer kept, they are no longer held either, in memory as against the
//! budgets.

use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http_body::Body as _;
use tonic::Code;

use super::bounds::{self, Over};
use super::wire;
use crate::protocol::message::MAX_MESSAGE;
use crate::transport::http2;

/// The most bytes of frames already arrived that are joined into one piece for the upstream
/// ([`RequestBody::gather`]): HTTP/2's default largest frame.
const PIECE: usize = 16 * 1024;

/// The most of a request read before the attempt is decided: one message of gRPC's default
/// limit, with its prefix.
pub const MAX_REQUEST: usize = MAX_MESSAGE + 5;

/// The most of a request given to an upstream stream after its start that is kept, until
/// the stream's answer begins, to send the stream again should the upstream not process it
/// ([`RequestBody::restart`]): HTTP/2's default initial window, what a client may send on a
/// stream before it hears anything (a unary call's message whose DATA came after the
/// decision, say). Kept bytes stay held against the budgets.
pub const KEPT: usize = 65_535;

type Response = http::Response<tonic::body::Body>;

/// A request body: what has been read and not yet forwarded, and the rest, still with the
/// client.
pub(super) struct RequestBody {
    /// Read, not yet given to the upstream, when it is one frame (kept as hyper gave it).
    first: Option<Bytes>,
    /// Read, not yet given to the upstream, when it is more than one frame.
    start: BytesMut,
    /// The client's body until its end has been read.
    rest: Option<hyper::body::Incoming>,
    /// The bytes this call holds in the proxy, against the budgets.
    held: bounds::Bytes,
    /// A frame read, waiting to be given to the upstream stream.
    piece: Option<Bytes>,
    /// Bytes given to the upstream stream and maybe not yet written (held until the next
    /// piece is taken, which says they have been; while pieces are kept, all those given).
    in_flight: usize,
    /// The end has been given to the upstream (or the upstream stream takes nothing more).
    finished: bool,
    /// What went with the upstream stream's HEADERS ([`RequestBody::take_start`]), kept as
    /// long as `kept` is.
    sent: Option<Bytes>,
    /// The pieces given to the upstream stream after its start (and their length), kept
    /// while the stream may have to be sent again: `None` once its answer has begun, or once
    /// more than [`KEPT`] bytes were given, or a piece was dropped with it.
    kept: Option<(Vec<Bytes>, usize)>,
}

/// What the client's body gave next.
enum Next {
    /// Bytes.
    Data(Bytes),
    /// Nothing yet (only when not waiting for it).
    Waiting,
    /// Nothing more: the body has ended.
    Ended,
    /// The client's stream broke (it reset it, or its connection went).
    Broken,
}

/// Why relaying a request body stopped short.
pub(super) enum Stopped {
    /// A frame would have gone over a byte budget: the call is answered with this.
    Over(Box<Response>),
    /// The client's stream broke (it reset it, or its connection went).
    Broken,
}

impl RequestBody {
    /// The body of a call, nothing read yet; `held` counts its bytes.
    pub(super) fn new(body: hyper::body::Incoming, held: bounds::Bytes) -> Self {
        Self {
            first: None,
            start: BytesMut::new(),
            rest: Some(body),
            held,
            piece: None,
            in_flight: 0,
            finished: false,
            sent: None,
            kept: Some((Vec::new(), 0)),
        }
    }

    /// What has been read and not forwarded: the request's start.
    pub(super) fn read_so_far(&self) -> &[u8] {
        self.first.as_deref().unwrap_or(&self.start)
    }

    /// Reads until the first gRPC message is whole (or the body ends), at most
    /// [`MAX_REQUEST`]: over it, or over a budget, the call's answer.
    pub(super) async fn first_message(&mut self) -> Result<(), Response> {
        while !self.whole_message() {
            match std::future::poll_fn(|cx| self.poll_data(cx)).await {
                Next::Data(data) => self.add_start(data, MAX_REQUEST).map_err(|e| *e)?,
                Next::Broken => return Err(broken()),
                Next::Ended | Next::Waiting => return Ok(()),
            }
        }
        Ok(())
    }

    /// Reads what the client has sent already, without waiting (up to [`MAX_REQUEST`] in
    /// all): a unary call's body is usually here whole by the time it is forwarded.
    pub(super) fn read_ready(&mut self) -> Result<(), Box<Response>> {
        while self.read_so_far().len() < MAX_REQUEST {
            match self.data_now() {
                Next::Data(data) => self.add_start(data, usize::MAX)?,
                Next::Broken => return Err(Box::new(broken())),
                Next::Ended | Next::Waiting => return Ok(()),
            }
        }
        Ok(())
    }

    /// Takes what has been read for the stream's HEADERS: the bytes, and whether they are
    /// the whole body. What follows, if anything, is [`RequestBody::relay`]'s.
    pub(super) fn take_start(&mut self) -> (Bytes, bool) {
        let start = match self.first.take() {
            Some(first) => first,
            // Taken whole (`split` would leave `start` sharing the buffer, kept to the end).
            None => std::mem::take(&mut self.start).freeze(),
        };
        self.in_flight = start.len();
        // Kept (shared, not copied) while the stream may have to be sent again.
        self.sent = self.kept.is_some().then(|| start.clone());
        let whole = self.rest.is_none();
        self.finished = whole;
        (start, whole)
    }

    /// Puts back what [`RequestBody::take_start`] gave a stream the upstream did not
    /// process, with the pieces given to it since and a frame read and not yet given, to be
    /// taken again whole for a new stream; unless they were not kept (more than [`KEPT`]
    /// bytes given, or the answer began), when the proxy no longer has the request. Whether
    /// it did.
    pub(super) fn restart(&mut self) -> bool {
        let (Some((kept, _)), Some(start)) = (self.kept.take(), self.sent.take()) else {
            return false;
        };
        let start = if kept.is_empty() && self.piece.is_none() {
            start
        } else {
            let mut whole = BytesMut::from(start);
            for piece in kept.iter().chain(self.piece.take().as_ref()) {
                whole.extend_from_slice(piece);
            }
            whole.freeze()
        };
        self.first = Some(start);
        self.kept = Some((Vec::new(), 0));
        self.finished = false;
        true
    }

    /// What was kept to send the stream again goes, once its answer has begun (or more than
    /// [`KEPT`] bytes were given): its bytes are given back with the next piece's, or at the
    /// end.
    pub(super) fn forget(&mut self) {
        self.kept = None;
        self.sent = None;
    }

    /// Whether the request's body was read whole before it was forwarded (no relay needed).
    pub(super) fn finished(&self) -> bool {
        self.finished
    }

    /// Gives the rest of the body to the upstream stream as it comes. Never completes when
    /// all of it has gone (or the upstream stream took no more): only when it stopped short.
    /// Cancel-safe (a frame read and not yet given stays until the next call).
    pub(super) async fn relay(&mut self, writer: &http2::BodyWriter) -> Stopped {
        loop {
            if self.finished {
                return std::future::pending().await;
            }
            if self.piece.is_some() || self.rest.is_none() {
                let len = self.piece.as_ref().map_or(0, Bytes::len);
                let end = self.rest.is_none();
                let given = self.kept.is_some().then(|| self.piece.clone()).flatten();
                if writer.send(&mut self.piece, end).await {
                    match &mut self.kept {
                        // Kept, and still held, in case the stream is sent again.
                        Some((kept, n)) if *n + len <= KEPT => {
                            kept.extend(given);
                            *n += len;
                            self.in_flight += len;
                        }
                        // What was given before has been written: its bytes leave the proxy.
                        _ => {
                            self.forget();
                            self.held.release(self.in_flight);
                            self.in_flight = len;
                        }
                    }
                    self.finished = end;
                } else {
                    // The upstream stream ended: the relay of its answer says how. A piece
                    // not given stays for a new stream, if the request is kept whole.
                    if self.kept.is_none() {
                        self.piece = None;
                    }
                    self.finished = true;
                }
                continue;
            }
            match std::future::poll_fn(|cx| self.poll_data(cx)).await {
                Next::Data(data) => {
                    if let Err(over) = self.held.hold(data.len()) {
                        return Stopped::Over(Box::new(over_budget(over)));
                    }
                    match self.gather(data) {
                        Ok(piece) => self.piece = Some(piece),
                        Err(stopped) => return stopped,
                    }
                }
                Next::Broken => {
                    self.finished = true;
                    return Stopped::Broken;
                }
                // The body has ended (`rest` is gone): its end goes next.
                Next::Ended | Next::Waiting => {}
            }
        }
    }

    /// `first` and the frames the client has sent already behind it (read without waiting),
    /// up to [`PIECE`] bytes in all, as one piece: a burst of small frames goes upstream as
    /// one DATA frame rather than as many. The upstream connection is shared by every client
    /// of the proxy's thread, and an HTTP/2 server may close a connection that has too many
    /// small frames waiting (the h2 crate's does, GOAWAY ENHANCE_YOUR_CALM): one client's
    /// tiny frames must not end the others' calls.
    fn gather(&mut self, first: Bytes) -> Result<Bytes, Stopped> {
        let mut joined: Option<BytesMut> = None;
        let mut len = first.len();
        while len < PIECE {
            let data = match self.data_now() {
                Next::Data(data) => data,
                Next::Broken => {
                    self.finished = true;
                    return Err(Stopped::Broken);
                }
                Next::Ended | Next::Waiting => break,
            };
            if let Err(over) = self.held.hold(data.len()) {
                return Err(Stopped::Over(Box::new(over_budget(over))));
            }
            let joined = joined.get_or_insert_with(|| {
                let mut j = BytesMut::with_capacity(PIECE.max(len + data.len()));
                j.extend_from_slice(&first);
                j
            });
            joined.extend_from_slice(&data);
            len += data.len();
        }
        Ok(joined.map_or(first, BytesMut::freeze))
    }

    /// Whether the bytes read hold a whole gRPC message (prefix and payload).
    fn whole_message(&self) -> bool {
        let read = self.read_so_far();
        read.len() >= 5
            && read.len() - 5 >= u32::from_be_bytes([read[1], read[2], read[3], read[4]]) as usize
    }

    /// The client's next bytes, as they come (`cx` woken when more may have): trailers are
    /// skipped, and the body's end (with its last frame or after it) leaves `rest` empty.
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        loop {
            let Some(rest) = &mut self.rest else {
                return Poll::Ready(Next::Ended);
            };
            let frame = match std::pin::Pin::new(&mut *rest).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(_))) => {
                    self.rest = None;
                    return Poll::Ready(Next::Broken);
                }
                Poll::Ready(None) => {
                    self.rest = None;
                    return Poll::Ready(Next::Ended);
                }
            };
            if rest.is_end_stream() {
                self.rest = None;
            }
            if let Ok(data) = frame.into_data() {
                return Poll::Ready(Next::Data(data));
            }
        }
    }

    /// The client's next bytes if they have come already (read without waiting).
    fn data_now(&mut self) -> Next {
        match self.poll_data(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(next) => next,
            Poll::Pending => Next::Waiting,
        }
    }

    /// Adds bytes read from the client to the start, within `limit` bytes in all and the
    /// budgets.
    fn add_start(&mut self, data: Bytes, limit: usize) -> Result<(), Box<Response>> {
        if self.read_so_far().len() + data.len() > limit {
            let message = format!("the request's first message is larger than {limit} bytes");
            return Err(Box::new(wire::status_response(
                Code::ResourceExhausted,
                &message,
                None,
            )));
        }
        self.held
            .hold(data.len())
            .map_err(|over| Box::new(over_budget(over)))?;
        if let Some(first) = self.first.take() {
            self.start.extend_from_slice(&first);
            self.start.extend_from_slice(&data);
        } else if self.start.is_empty() {
            // The common case, one frame: kept as hyper gave it, no copy.
            self.first = Some(data);
        } else {
            self.start.extend_from_slice(&data);
        }
        Ok(())
    }
}

/// The answer to a client whose request body broke before the attempt was decided.
fn broken() -> Response {
    wire::status_response(Code::Cancelled, "request body broken", None)
}

/// The answer to a frame that would have gone over a byte budget.
fn over_budget(over: Over) -> Response {
    let message = match over {
        Over::Connection(n) => format!(
            "this connection's calls hold {n} bytes of requests in the proxy, its limit \
             (proxy --connection-request-mib)"
        ),
        Over::Total(n) => {
            format!("the proxy holds {n} bytes of requests, its limit (proxy --request-mib)")
        }
    };
    wire::status_response(Code::ResourceExhausted, &message, None)
}
