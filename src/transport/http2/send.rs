//! What a stream sends: its request's HEADERS (and CONTINUATIONs) and DATA, within the send
//! windows, and RST_STREAM(CANCEL) when its attempt gives up on it.
//!
//! Why apart from `conn.rs`: send-side flow control lives here with the bytes it holds back.
//! A message larger than the windows waits for WINDOW_UPDATEs, streams in turn (5.2, 6.9).

use std::task::{Poll, Waker};

use bytes::Bytes;

use super::conn::Connection;
use super::frame::{self, CONTINUATION, END_HEADERS, END_STREAM, HEADERS, LAST_STREAM_ID};
use super::hpack::Field;
use super::stream::{Body, Stream};

/// A request to send: pseudo-headers, then `fields`.
pub struct Request<'a> {
    /// `:path`.
    pub path: &'a [u8],
    /// `:authority`.
    pub authority: &'a [u8],
    /// `:scheme https` (the connection is TLS) rather than `http`.
    pub https: bool,
    /// Other header fields.
    pub fields: &'a [Field<'a>],
    /// The request body, or its start when `end` is false.
    pub body: Bytes,
    /// `body` is the whole request body (sent with END_STREAM); when false more is given
    /// later, through [`super::Exchange::writer`], until its end.
    pub end: bool,
}

impl Connection {
    /// Opens a stream and queues its request (as much of its body as the windows allow); its
    /// id, or why no stream can be opened. The server's limit of concurrent streams is the
    /// caller's to keep (the handle waits for a slot before it opens).
    #[inline]
    pub fn open(&mut self, request: Request<'_>) -> Result<u32, std::sync::Arc<str>> {
        if let Some(reason) = self.refusal() {
            return Err(std::sync::Arc::clone(reason));
        }
        let id = self.next_id;
        self.next_id += 2;
        if self.next_id > LAST_STREAM_ID {
            self.stop_opening("the connection has used all its stream ids");
        }
        // A complete request with no body ends with its headers.
        let end = if request.end && request.body.is_empty() {
            END_STREAM
        } else {
            0
        };
        let (out, max_frame) = (&mut self.out, self.max_frame);
        let start = out.len();
        frame::head(out, 0, HEADERS, END_HEADERS | end, id);
        self.encoder.block(
            out,
            request.https,
            request.path,
            request.authority,
            request.fields,
        );
        let block = out.len() - start - frame::HEAD;
        if block <= max_frame {
            out[start..start + 3].copy_from_slice(&(block as u32).to_be_bytes()[1..]);
        } else {
            // Too large for one frame: HEADERS and CONTINUATIONs.
            let fields = out.split_off(start + frame::HEAD);
            out.truncate(start);
            for (i, part) in fields.chunks(max_frame).enumerate() {
                let last = (i + 1) * max_frame >= fields.len();
                let (kind, flags) = if i == 0 {
                    (HEADERS, end)
                } else {
                    (CONTINUATION, 0)
                };
                let flags = flags | if last { END_HEADERS } else { 0 };
                frame::head(out, part.len(), kind, flags, id);
                out.extend_from_slice(part);
            }
        }
        let mut stream = Stream::new(request.body, request.end, self.initial_window);
        let behind = queue(
            &mut stream,
            id,
            self.max_frame,
            &mut self.out,
            &mut self.window,
            &mut self.blocked,
        );
        self.streams.insert(id, stream);
        if behind {
            self.send_blocked();
        }
        self.active += 1;
        Ok(id)
    }

    /// Gives stream `id`'s request body more bytes (its last when `end`), which its writer
    /// may do once the bytes given before have been written ([`Connection::body_ready`]);
    /// `false` if the stream has ended or its body was complete already.
    pub fn push_body(&mut self, id: u32, data: Bytes, end: bool) -> bool {
        let Some(st) = self
            .streams
            .get_mut(&id)
            .filter(|st| st.tail.is_none() && st.body == Body::Open)
        else {
            return false;
        };
        debug_assert!(
            st.pending.is_empty(),
            "a body given before it could take more"
        );
        st.pending = data;
        if end {
            st.body = Body::Ending;
        }
        if queue(
            st,
            id,
            self.max_frame,
            &mut self.out,
            &mut self.window,
            &mut self.blocked,
        ) {
            self.send_blocked();
        }
        true
    }

    /// Whether stream `id`'s request body can take more bytes now: `Ready(true)` when what
    /// it was given has been written, `Ready(false)` when it never will (the stream ended, or
    /// its body is complete); else `waker` is woken when one of those is so.
    pub fn body_ready(&mut self, id: u32, waker: &Waker) -> Poll<bool> {
        let Some(st) = self
            .streams
            .get_mut(&id)
            .filter(|st| st.tail.is_none() && st.body == Body::Open)
        else {
            return Poll::Ready(false);
        };
        if st.pending.is_empty() {
            return Poll::Ready(true);
        }
        if !st.writer.as_ref().is_some_and(|w| w.will_wake(waker)) {
            st.writer = Some(waker.clone());
        }
        Poll::Pending
    }

    /// Sends what the windows allow of every stream's waiting request bytes.
    pub(super) fn send_blocked(&mut self) {
        let mut i = 0;
        while i < self.blocked.len() && self.window > 0 {
            let id = self.blocked[i];
            let done = match self.streams.get_mut(&id) {
                Some(st) => {
                    let done = st.send_data(&mut self.out, &mut self.window, self.max_frame, id);
                    if done {
                        st.wake_writer();
                    }
                    done
                }
                None => true,
            };
            if done {
                self.blocked.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// The attempt of stream `id` gave up on it: it leaves the table and, if it had not
    /// ended, RST_STREAM(CANCEL) tells the server to stop working on it (6.4). `true` if the
    /// stream was in the table.
    #[inline]
    pub fn cancel(&mut self, id: u32) -> bool {
        let Some(st) = self.streams.remove(&id) else {
            return false;
        };
        if st.tail.is_none() && self.closed.is_none() {
            self.active -= 1;
            frame::rst_stream(&mut self.out, id, frame::CANCEL);
        }
        true
    }
}

/// Writes what the windows allow of stream `id`'s waiting request bytes, behind the streams
/// already waiting for window, in turn (joining `blocked` when bytes are left, 5.2, 6.9); what
/// takes no window (nothing, or an end with no bytes: 6.9.1) goes at once. Whether streams
/// were waiting before it, so that the caller lets them write ([`Connection::send_blocked`]).
fn queue(
    st: &mut Stream,
    id: u32,
    max_frame: usize,
    out: &mut Vec<u8>,
    window: &mut i64,
    blocked: &mut std::collections::VecDeque<u32>,
) -> bool {
    if st.pending.is_empty() {
        st.send_data(out, window, max_frame, id);
        return false;
    }
    let behind = !blocked.is_empty();
    if behind || !st.send_data(out, window, max_frame, id) {
        blocked.push_back(id);
    }
    behind
}
