//! One stream as the connection keeps it, and what its attempt sees of it: [`Event`]s, in
//! order.
//!
//! Why apart from the connection: a stream's state is small and has its own rules (a head,
//! data, then one end; its send window; the receive window its attempt gives back as it takes
//! the data), and the connection's code reads better calling them than spelling them out.

use std::sync::Arc;
use std::task::Waker;

use bytes::{Bytes, BytesMut};

use super::frame::{self, END_STREAM};
use super::headers::HeaderBlock;

/// What happened next on a stream, in order: the response head, its data, and one end.
#[derive(Debug)]
pub enum Event {
    /// The response headers (or a Trailers-Only response, then followed by [`Event::End`]),
    /// 1xx responses skipped.
    Head(HeaderBlock),
    /// Response bytes, as received so far.
    Data(BytesMut),
    /// The trailers, which end the stream.
    Trailers(HeaderBlock),
    /// The stream ended with no trailers.
    End,
    /// The stream was reset with this error code: by the server, which may have processed
    /// it (a REFUSED_STREAM before the response is [`Event::Broken`], not processed), or by
    /// this client when the server broke the stream's rules.
    Reset(u32),
    /// The stream ended without its response: the connection broke, or went away, or the
    /// server refused the stream, or it was never sent. [`Lost::processed`] tells a stream the
    /// server did not process (which can be sent again as if never sent: gRFC A6's
    /// transparent retry) from one it may have.
    Broken(Lost),
}

/// Why a stream ended without its response, and whether the server may have processed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// What happened.
    pub why: Arc<str>,
    /// Whether the server may have processed the stream.
    pub processed: Processed,
}

/// Whether the server may have processed a stream that ended without its response, and if
/// not, how it is known: gRFC A6 ("Transparent Retries") tells a stream that never left the
/// client (retried until its deadline) from one that reached the server but not its
/// application (retried once), and some clients tell a refusal from a GOAWAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// Never sent: its HEADERS were still waiting to be written when the connection ended (or
    /// when the server's GOAWAY came), so the server cannot have seen it.
    Unsent,
    /// The server refused it (RFC 9113 8.7): RST_STREAM(REFUSED_STREAM) before any response.
    Refused,
    /// Its id is above the last stream id of the server's GOAWAY (RFC 9113 6.8).
    GoneAway,
    /// It may have: the connection broke or closed while the stream was open.
    Maybe,
}

impl Processed {
    /// Whether the server certainly did not process the stream (sending it again is safe).
    pub fn not_processed(self) -> bool {
        self != Processed::Maybe
    }
}

impl Lost {
    /// A stream the server may have processed, lost because of `why`.
    pub fn maybe_processed(why: Arc<str>) -> Self {
        Self {
            why,
            processed: Processed::Maybe,
        }
    }

    /// A stream the server did not process, lost because of `why`; `how` says how that is
    /// known (anything but [`Processed::Maybe`]).
    pub fn not_processed(why: &str, how: Processed) -> Self {
        debug_assert!(how.not_processed());
        Self {
            why: why.into(),
            processed: how,
        }
    }
}

/// A stream lost for a reason given as text may have been processed.
impl From<&str> for Lost {
    fn from(why: &str) -> Self {
        Self::maybe_processed(why.into())
    }
}

/// A `Lost` reads as its reason.
impl std::ops::Deref for Lost {
    type Target = str;

    fn deref(&self) -> &str {
        &self.why
    }
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl Event {
    /// Whether this is a stream's last event.
    #[inline]
    pub fn ends(&self) -> bool {
        !matches!(self, Event::Head(_) | Event::Data(_))
    }
}

/// A stream of the connection, from its HEADERS until its attempt has taken its end (or
/// dropped it).
pub(super) struct Stream {
    /// The response head, until the attempt takes it.
    pub head: Option<HeaderBlock>,
    /// A response head (not 1xx) arrived: a further header block is the trailers.
    pub got_head: bool,
    /// Data received and not yet taken.
    pub data: BytesMut,
    /// How the stream ended, once it has, until the attempt takes it.
    pub tail: Option<Event>,
    /// The attempt's task, when it waits for the next event.
    pub waker: Option<Waker>,
    /// Request bytes not yet sent.
    pub pending: Bytes,
    /// Where the request body stands: more may come, its end is still to send, or sent.
    pub body: Body,
    /// The task writing the request body, when it waits for `pending` to go out.
    pub writer: Option<Waker>,
    /// The stream's send window.
    pub window: i64,
    /// Received bytes (padding included) not yet given back in a WINDOW_UPDATE.
    pub held: u32,
    /// How many of `held` can be given back: padding at once, data once the attempt has
    /// taken it.
    pub returnable: u32,
}

/// Where a stream's request body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// More may come ([`super::Request::end`] was false): written as it is given.
    Open,
    /// Complete: END_STREAM goes with its last bytes (an empty DATA frame if none wait).
    Ending,
    /// END_STREAM has been written (or the stream ended).
    Sent,
}

impl Stream {
    /// A stream whose request body starts with `pending` (all of it when `end`), with a send
    /// window of `window`. A complete empty body went with the HEADERS' END_STREAM.
    #[inline]
    pub fn new(pending: Bytes, end: bool, window: i64) -> Self {
        let body = match (end, pending.is_empty()) {
            (false, _) => Body::Open,
            (true, false) => Body::Ending,
            (true, true) => Body::Sent,
        };
        Self {
            head: None,
            got_head: false,
            data: BytesMut::new(),
            tail: None,
            waker: None,
            pending,
            body,
            writer: None,
            window,
            held: 0,
            returnable: 0,
        }
    }

    /// The stream ends with `tail`: nothing more is sent, the attempt is woken.
    #[inline]
    pub fn end(&mut self, tail: Event) {
        self.tail = Some(tail);
        self.pending = Bytes::new();
        self.body = Body::Sent;
        self.wake();
        self.wake_writer();
    }

    /// The request body's writer can give more (or learn that the stream ended).
    #[inline]
    pub fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Whether the request body's end is still to come or to be written.
    #[inline]
    pub fn body_unfinished(&self) -> bool {
        !self.pending.is_empty() || self.body != Body::Sent
    }

    /// The attempt has something new.
    #[inline]
    pub fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Writes DATA frames of the waiting request bytes as far as this stream's window and
    /// the connection's (`window`) allow, each at most `max_frame`, END_STREAM with the last
    /// of a complete body; `true` when all were written.
    #[inline]
    pub fn send_data(
        &mut self,
        out: &mut Vec<u8>,
        window: &mut i64,
        max_frame: usize,
        id: u32,
    ) -> bool {
        loop {
            if self.pending.is_empty() {
                if self.body == Body::Ending {
                    // The end came with no bytes: an empty DATA frame carries it (6.1).
                    frame::head(out, 0, frame::DATA, END_STREAM, id);
                    self.body = Body::Sent;
                }
                return true;
            }
            let room = self.window.min(*window).max(0) as usize;
            let n = self.pending.len().min(max_frame).min(room);
            if n == 0 {
                return false;
            }
            let chunk = self.pending.split_to(n);
            let last = self.pending.is_empty() && self.body == Body::Ending;
            if last {
                self.body = Body::Sent;
            }
            let flags = if last { END_STREAM } else { 0 };
            frame::head(out, n, frame::DATA, flags, id);
            out.extend_from_slice(&chunk);
            self.window -= n as i64;
            *window -= n as i64;
        }
    }
}
