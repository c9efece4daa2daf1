//! The connection's state machine, without I/O: bytes from the server go in
//! ([`Connection::receive`]), frames to write come out (an output buffer the socket task
//! takes), and each stream's events wait in its entry of the stream table until its attempt
//! polls them.
//!
//! Why sans-IO: everything a server can send is handled here, so it is tested, and fuzzed,
//! by feeding bytes and reading events and bytes, with no socket, no runtime and no timing
//! (as h2's `proto` sits under its `codec`). This file holds the connection-level half: the
//! frame loop and the frames of the connection (SETTINGS, PING, GOAWAY, WINDOW_UPDATE);
//! `recv.rs` holds what streams receive, `send.rs` what they send.
//!
//! Wakers live here, as an opaque slot per stream (`std::task::Waker`, which knows nothing of
//! tokio): an event is handed to its stream and its waker woken in one step, under the one
//! lock the socket task already holds, without a list of streams with news that the caller
//! would look up a second time. Tests pass a no-op waker.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::BytesMut;

use super::frame::{self, CONTINUATION, Fault, Frame, LAST_STREAM_ID};
use super::headers::{Block, Decoder};
use super::hpack::Encoder;
use super::stream::{Event, Lost, Processed, Stream};

/// The stream windows we advertise (hyper's client uses 2 MiB and 5 MiB; HTTP/2's default is
/// 64 KiB).
pub const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// The connection's receive window.
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// One HTTP/2 client connection's state.
pub struct Connection {
    /// Frames waiting for the socket task to write them.
    pub(super) out: Vec<u8>,
    /// By stream id, hashed with foldhash: std's SipHash cost about 2% of the client's CPU
    /// here (a call looks its stream up four to six times), and ids come from this side.
    pub(super) streams: HashMap<u32, Stream, foldhash::fast::RandomState>,
    /// Streams not yet ended.
    pub(super) active: usize,
    /// The id of the next stream to open.
    pub(super) next_id: u32,
    /// The request side of HPACK.
    pub(super) encoder: Encoder,
    /// The response side of HPACK.
    pub(super) decoder: Decoder,
    /// A header block being received over CONTINUATION frames.
    pub(super) block: Option<Block>,
    /// The server's SETTINGS_MAX_FRAME_SIZE.
    pub(super) max_frame: usize,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE.
    pub(super) initial_window: i64,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS.
    pub(super) max_streams: u32,
    /// The connection's send window.
    pub(super) window: i64,
    /// Streams with request bytes waiting for window, in turn.
    pub(super) blocked: VecDeque<u32>,
    /// Bytes received since the connection's last WINDOW_UPDATE.
    pub(super) unacked: u32,
    /// The connection's receive window as the server can know it: what it may still send.
    pub(super) recv_window: i64,
    /// Window given back in WINDOW_UPDATEs queued and not yet taken by the socket task: it
    /// counts from when it can reach the server.
    pub(super) granted: u32,
    /// The server's first SETTINGS has arrived.
    pub(super) settled: bool,
    /// Streams below this id have had their HEADERS handed to the socket task; the others'
    /// wait in `out`, and never left the client if the connection ends now.
    pub(super) handed_below: u32,
    /// The last stream id of the server's GOAWAY: streams above it were not processed.
    pub(super) goaway: Option<u32>,
    /// Why no stream is opened any more (GOAWAY, or stream ids used up); the connection ends
    /// with its last stream.
    pub(super) going: Option<Arc<str>>,
    /// Why the connection ended, once it has.
    pub(super) closed: Option<Arc<str>>,
}

impl Connection {
    /// A connection whose first stream will be `first_id` (odd), with the client's preface
    /// and settings queued: push off, [`STREAM_WINDOW`] stream windows and a
    /// [`CONNECTION_WINDOW`] connection window, so responses never wait for a WINDOW_UPDATE.
    pub fn new(first_id: u32) -> Self {
        let mut out = Vec::with_capacity(64 * 1024);
        let settings = [
            (frame::ENABLE_PUSH, 0),
            (frame::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
        ];
        let opened = CONNECTION_WINDOW - frame::DEFAULT_WINDOW as u32;
        frame::hello(&mut out, &settings, opened);
        Self {
            out,
            streams: HashMap::default(),
            active: 0,
            next_id: first_id,
            encoder: Encoder::new(),
            decoder: Decoder::new(),
            block: None,
            max_frame: frame::MAX_FRAME,
            initial_window: frame::DEFAULT_WINDOW,
            max_streams: u32::MAX,
            window: frame::DEFAULT_WINDOW,
            blocked: VecDeque::new(),
            unacked: 0,
            recv_window: frame::DEFAULT_WINDOW,
            granted: opened,
            settled: false,
            handed_below: first_id,
            goaway: None,
            going: None,
            closed: None,
        }
    }

    // === What the socket task and the handle read ===

    /// Whether frames wait to be written.
    #[inline]
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Swaps the frames waiting to be written with `into` (empty), so that the socket task
    /// writes them outside the lock while new ones queue in its old buffer. The connection
    /// window they give back counts from now on.
    #[inline]
    pub fn take_output(&mut self, into: &mut Vec<u8>) {
        std::mem::swap(into, &mut self.out);
        self.recv_window += i64::from(std::mem::take(&mut self.granted));
        self.handed_below = self.next_id;
    }

    /// Whether the server's first SETTINGS has been received.
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says).
    #[inline]
    pub fn max_streams(&self) -> u32 {
        self.max_streams
    }

    /// Why no stream can be opened, if none can: the connection ended, or is going away.
    #[inline]
    pub fn refusal(&self) -> Option<&Arc<str>> {
        self.closed.as_ref().or(self.going.as_ref())
    }

    /// Whether the connection is over: going away, and its last stream has ended.
    #[inline]
    pub fn finished(&self) -> bool {
        self.going.is_some() && self.active == 0
    }

    /// Whether the connection has ended.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    // === The server's bytes ===

    /// Handles every whole frame in `read`, leaving a partial one there; a connection error
    /// ends the handling (the caller then [fails](Connection::fail) the connection).
    pub fn receive(&mut self, read: &mut BytesMut) -> Result<(), Fault> {
        while let Some((head, payload)) = frame::split(read)? {
            if self.block.is_some() && head.kind != CONTINUATION {
                return Err(Fault::protocol("a frame within a header block"));
            }
            // Frames of a stream on stream 0, of the connection on a stream, or of a stream
            // this client never opened (push is off: the server opens none).
            let id = head.id;
            if (head.on_stream() && (id == 0 || self.idle(id))) || (head.on_connection() && id != 0)
            {
                return Err(Fault::protocol(&format!(
                    "a type {} frame on stream {id}",
                    head.kind
                )));
            }
            match Frame::decode(head, payload)? {
                Frame::Data {
                    id,
                    end_stream,
                    data,
                    flow,
                } => self.data(id, end_stream, data, flow)?,
                Frame::Headers {
                    id,
                    end_stream,
                    end_headers,
                    fragment,
                } => self.headers(id, end_stream, end_headers, fragment)?,
                Frame::Continuation {
                    id,
                    end_headers,
                    fragment,
                } => self.continuation(id, end_headers, &fragment)?,
                Frame::Reset { id, code } => self.reset_by_server(id, code),
                Frame::Settings(params) => self.settings(&params)?,
                Frame::Ping(payload) => frame::ping_ack(&mut self.out, &payload),
                Frame::GoAway { last } => self.goaway(last)?,
                Frame::WindowUpdate { id, increment } => self.window_update(id, increment)?,
                Frame::PushPromise => {
                    return Err(Fault::protocol("PUSH_PROMISE, push was disabled"));
                }
                Frame::Ignored => {}
            }
        }
        Ok(())
    }

    /// SETTINGS (6.5): the server's parameters apply, and are acknowledged.
    fn settings(&mut self, params: &[u8]) -> Result<(), Fault> {
        for (key, value) in Frame::settings(params) {
            match key {
                frame::HEADER_TABLE_SIZE => self.encoder.set_max(value as usize),
                // A server may not promise pushes (6.5.2): only 0 is valid from it.
                frame::ENABLE_PUSH if value != 0 => {
                    return Err(Fault::protocol(
                        "SETTINGS_ENABLE_PUSH other than 0 from a server",
                    ));
                }
                // Streams already open past a lowered limit run on (5.1.2): the handle
                // applies the limit to streams not yet opened.
                frame::MAX_CONCURRENT_STREAMS => self.max_streams = value,
                frame::INITIAL_WINDOW_SIZE => {
                    if value > LAST_STREAM_ID {
                        let why = "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1";
                        return Err(Fault::flow_control(why));
                    }
                    let delta = i64::from(value) - self.initial_window;
                    self.initial_window = i64::from(value);
                    let mut over = false;
                    for st in self.streams.values_mut() {
                        st.window += delta;
                        over |= st.tail.is_none() && st.window > frame::MAX_WINDOW;
                    }
                    // Any open stream's window past the maximum (6.9.2).
                    if over {
                        let why =
                            "SETTINGS_INITIAL_WINDOW_SIZE opens a stream's window past 2^31-1";
                        return Err(Fault::flow_control(why));
                    }
                }
                frame::MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(Fault::protocol("SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    self.max_frame = value as usize;
                }
                _ => {}
            }
        }
        self.settled = true;
        frame::settings_ack(&mut self.out);
        self.send_blocked();
        Ok(())
    }

    /// GOAWAY (6.8): streams above `last` were not processed and end so; the others run on;
    /// no stream is opened any more.
    fn goaway(&mut self, last: u32) -> Result<(), Fault> {
        if self.goaway.is_some_and(|before| last > before) {
            return Err(Fault::protocol(
                "a GOAWAY with a higher last stream id than before",
            ));
        }
        self.goaway = Some(last);
        self.stop_opening("the server is going away (GOAWAY)");
        let refused: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| id > last)
            .collect();
        for id in refused {
            let lost = if self.sent(id) {
                Lost::not_processed(
                    "the server went away (GOAWAY) before the call",
                    Processed::GoneAway,
                )
            } else {
                Lost::not_processed(
                    "the server went away (GOAWAY) before the call was sent",
                    Processed::Unsent,
                )
            };
            self.end_stream(id, Event::Broken(lost));
        }
        Ok(())
    }

    /// WINDOW_UPDATE (6.9): a window opened, and what it lets out sent.
    fn window_update(&mut self, id: u32, increment: u32) -> Result<(), Fault> {
        let increment = i64::from(increment);
        if id == 0 {
            if increment == 0 {
                return Err(Fault::protocol("a WINDOW_UPDATE of 0"));
            }
            self.window += increment;
            if self.window > frame::MAX_WINDOW {
                return Err(Fault::flow_control("a connection window over 2^31-1"));
            }
        } else if let Some(st) = self.streams.get_mut(&id).filter(|st| st.tail.is_none()) {
            st.window += increment;
            let bad = match (increment, st.window > frame::MAX_WINDOW) {
                (0, _) => Some(frame::PROTOCOL_ERROR),
                (_, true) => Some(frame::FLOW_CONTROL_ERROR),
                _ => None,
            };
            if let Some(code) = bad {
                self.reset(id, code);
            }
        }
        self.send_blocked();
        Ok(())
    }

    // === The connection's end ===

    /// No stream is opened from now on, because of `why`.
    pub(super) fn stop_opening(&mut self, why: &str) {
        if self.going.is_none() {
            self.going = Some(why.into());
        }
    }

    /// The connection ended, because of `reason`: every stream still going fails, and every
    /// stream opened from now on.
    pub fn close(&mut self, reason: &str) {
        if self.closed.is_some() {
            return;
        }
        let reason: Arc<str> = reason.into();
        let unsent: Arc<str> = format!("{reason}, before the call was sent").into();
        let handed_below = self.handed_below;
        for (&id, st) in &mut self.streams {
            if st.tail.is_none() {
                // HEADERS still in the output buffer never reached the socket.
                let lost = if id < handed_below {
                    Lost::maybe_processed(Arc::clone(&reason))
                } else {
                    Lost {
                        why: Arc::clone(&unsent),
                        processed: Processed::Unsent,
                    }
                };
                st.end(Event::Broken(lost));
            }
        }
        self.active = 0;
        self.closed = Some(reason);
    }

    /// Ends the connection on `fault` (5.4.1): every stream still going fails, the frames not
    /// yet taken are dropped (none of them has begun), and if the server broke the protocol a
    /// GOAWAY with the error's code is queued, the last frame of the connection.
    pub fn fail(&mut self, fault: &Fault) {
        self.close(&fault.why);
        self.out.clear();
        if let Some(code) = fault.code {
            frame::goaway(&mut self.out, code);
        }
    }

    // === The stream table ===

    /// Whether stream `id`'s HEADERS have been handed to the socket task (they may have
    /// reached the server).
    #[inline]
    pub(super) fn sent(&self, id: u32) -> bool {
        id < self.handed_below
    }

    /// A stream id this client has not opened (even ids are the server's, which opens none).
    #[inline]
    pub(super) fn idle(&self, id: u32) -> bool {
        id.is_multiple_of(2) || id >= self.next_id
    }

    /// Resets stream `id` with `code`: it ends so for its attempt, and RST_STREAM tells the
    /// server.
    pub(super) fn reset(&mut self, id: u32, code: u32) {
        self.end_stream(id, Event::Reset(code));
        frame::rst_stream(&mut self.out, id, code);
    }

    /// RST_STREAM (6.4) from the server: the stream ends with its code, or as not processed
    /// if the server refused it before any response (8.7).
    fn reset_by_server(&mut self, id: u32, code: u32) {
        let refused =
            code == frame::REFUSED_STREAM && self.streams.get(&id).is_some_and(|st| !st.got_head);
        let tail = if refused {
            let why = "the server refused the stream (REFUSED_STREAM)";
            Event::Broken(Lost::not_processed(why, Processed::Refused))
        } else {
            Event::Reset(code)
        };
        self.end_stream(id, tail);
    }

    /// Ends stream `id` (if it is still going) with `tail`.
    #[inline]
    pub(super) fn end_stream(&mut self, id: u32, tail: Event) {
        if let Some(st) = self.streams.get_mut(&id)
            && st.tail.is_none()
        {
            // The server ended the stream before taking the whole request: stop sending.
            let cut_short = st.body_unfinished() && matches!(tail, Event::End | Event::Trailers(_));
            st.end(tail);
            self.active -= 1;
            if cut_short {
                frame::rst_stream(&mut self.out, id, frame::CANCEL);
            }
        }
    }
}
