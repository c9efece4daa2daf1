//! What a stream sends: its request's HEADERS (and CONTINUATIONs) and DATA, within the send
//! windows, and RST_STREAM(CANCEL) when its attempt gives up on it.
//!
//! Why apart from `conn.rs`: send-side flow control lives here with the bytes it holds back.
//! A message larger than the windows waits for WINDOW_UPDATEs, streams in turn (5.2, 6.9).

use bytes::Bytes;

use super::conn::Connection;
use super::frame::{self, CONTINUATION, END_HEADERS, END_STREAM, HEADERS, LAST_STREAM_ID};
use super::hpack::Field;
use super::stream::Stream;

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
    /// The request body, sent with END_STREAM.
    pub body: Bytes,
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
        // A request with no body ends with its headers.
        let end = if request.body.is_empty() {
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
        let mut stream = Stream::new(request.body, self.initial_window);
        // Behind streams already waiting for window, in turn.
        let waiting = !self.blocked.is_empty();
        if waiting || !stream.send_data(&mut self.out, &mut self.window, max_frame, id) {
            self.blocked.push_back(id);
        }
        self.streams.insert(id, stream);
        if waiting {
            self.send_blocked();
        }
        self.active += 1;
        Ok(id)
    }

    /// Sends what the windows allow of every stream's waiting request bytes.
    pub(super) fn send_blocked(&mut self) {
        let mut i = 0;
        while i < self.blocked.len() && self.window > 0 {
            let id = self.blocked[i];
            let done = match self.streams.get_mut(&id) {
                Some(st) => st.send_data(&mut self.out, &mut self.window, self.max_frame, id),
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
