//! A lean HTTP/2 client connection (RFC 9113) for the one shape of request resilbench sends:
//! a POST whose header block is a few constant fields and a few per-attempt ones, one request
//! message, and a response of headers, messages and trailers.
//!
//! Why not the `h2` crate's client, which this replaced: a profile at 60k calls/s put 46% of
//! the client's CPU in h2's connection task (its per-stream priority queues, `buffer_pending`
//! alone 15%) and a further share in the calls' own trips through h2's shared state; the
//! numbers are in docs/PERFORMANCE.md. Here an attempt writes its frames into the
//! connection's output buffer itself, under one lock, and one task per connection does the
//! socket's reads and writes, each read and each write covering every frame ready at the time.
//!
//! What it does, by the RFC's sections:
//! - 3.4: the preface and our SETTINGS (no push; 2 MiB stream windows and a 16 MiB connection
//!   window, so responses never wait for a WINDOW_UPDATE); the server's first SETTINGS is
//!   read before the connection is handed out, so its limits apply from the first stream.
//! - 5.1.1: odd stream ids from 1; when they run out no new stream is opened and the
//!   connection ends once its streams have.
//! - 5.1.2: the server's SETTINGS_MAX_CONCURRENT_STREAMS, as a semaphore a new stream waits on.
//! - 5.2, 6.9: send flow control on both levels (a message larger than the windows waits for
//!   WINDOW_UPDATEs, streams in turn; SETTINGS_INITIAL_WINDOW_SIZE changes apply to open
//!   streams). Received bytes are given back once half a window is due: the connection's as
//!   they arrive, a stream's as its attempt takes them, so a stream not read stops its own
//!   sender only; a stream sent more than its window is reset with FLOW_CONTROL_ERROR.
//! - 5.4.1: a server that breaks the protocol gets a GOAWAY with the error's code and the
//!   connection closes; frames on the wrong stream, or on one never opened, are such errors.
//! - 6.2, 6.10: header blocks over HEADERS and CONTINUATION (at most 256 KiB), decoded with
//!   HPACK (RFC 7541, the `loona-hpack` crate, Huffman and the dynamic table included)
//!   whatever stream they belong to, so the decoding table stays in step.
//! - 6.4: RST_STREAM(CANCEL) for an attempt dropped before its stream ended (a deadline, a
//!   hedge that lost); a server's RST_STREAM ends the stream with its reason.
//! - 6.5, 6.7: SETTINGS and PING are acknowledged.
//! - 6.8: after GOAWAY no stream is opened (calls waiting for a slot fail at once, and
//!   [`Handle::going_away`] tells the keeper to open another connection); streams above its
//!   last id end as not processed, the others run to their end, then the connection closes.
//! - 8.1: a request without a body ends with its HEADERS; 1xx responses are skipped; a second
//!   header block is the trailers.
//!
//! Request headers are encoded with HPACK's static table and a few dynamic entries: the
//! fields that never change (path, authority, content type), and the first value of each
//! per-attempt field, so that later requests name its header by index, within the server's
//! SETTINGS_HEADER_TABLE_SIZE (RFC 7541 4.2 and 6.3: a smaller size is signalled at the start
//! of the next block, the smallest first if it changed more than once).
//!
//! Wakers are woken under the connection's lock: tokio's wakers only schedule a task.

use std::collections::{HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::connection::Io;

/// The windows we advertise (hyper's client uses 2 MiB and 5 MiB; HTTP/2's default is 64 KiB).
pub const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// The connection's receive window.
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// The largest frame we accept: HTTP/2's default, SETTINGS_MAX_FRAME_SIZE is not raised.
const MAX_FRAME: usize = 16_384;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HTTP/2's default, and the most this encoder's table uses whatever the server allows.
const TABLE_SIZE: usize = 4_096;
const DEFAULT_WINDOW: i64 = 65_535;
const LAST_STREAM_ID: u32 = (1 << 31) - 1;
/// The largest window a peer may open (RFC 9113 6.9.1).
const MAX_WINDOW: i64 = (1 << 31) - 1;
/// The largest header block accepted over HEADERS and CONTINUATIONs: a server that sends more
/// is broken or hostile (the "CONTINUATION flood").
const MAX_HEADER_BLOCK: usize = 256 * 1024;

// Frame types (RFC 9113 6) and flags.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// Error codes (RFC 9113 7).
pub const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const FRAME_SIZE_ERROR: u32 = 0x6;
const COMPRESSION_ERROR: u32 = 0x9;
/// The reason an attempt dropped before its end resets its stream with.
pub const CANCEL: u32 = crate::protocol::status::CANCEL;

/// What a response's header block said, of what a gRPC client reads.
pub use crate::protocol::header::ResponseFields as Fields;

/// What happened next on a stream, in order: the response head, its data, and one end.
#[derive(Debug)]
pub enum Event {
    /// The response headers (or a Trailers-Only response, then followed by [`Event::End`]).
    Head(Fields),
    /// Response bytes, as received so far.
    Data(BytesMut),
    /// The trailers, which end the stream.
    Trailers(Fields),
    /// The stream ended with no trailers.
    End,
    /// The server reset the stream with this error code.
    Reset(u32),
    /// The connection broke or went away before the stream ended (not processed, or lost).
    Broken(Arc<str>),
}

/// A header field to send: name (lower case), value, and whether it is constant (every value
/// worth a dynamic-table entry; a per-attempt field's first value gets one too, for its name).
pub type Field<'a> = (&'a [u8], &'a [u8], bool);

/// A request to send: pseudo-headers, then `fields`.
pub struct Request<'a> {
    /// `:path`.
    pub path: &'a [u8],
    /// `:authority`.
    pub authority: &'a [u8],
    /// Other header fields.
    pub fields: &'a [Field<'a>],
    /// The request body, sent with END_STREAM.
    pub body: Bytes,
}

/// A handle on one connection, to open streams on.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    /// One permit per stream the server allows at once.
    slots: Arc<Semaphore>,
    /// Told when no stream is opened any more, so that another connection can be opened
    /// while this one finishes its streams.
    going_away: Notify,
}

/// Permits for a limit of `streams` (all of them where tokio's semaphore allows).
fn permits(streams: u32) -> usize {
    (streams as usize).min(Semaphore::MAX_PERMITS)
}

struct State {
    /// Frames waiting for the connection task to write them.
    out: Vec<u8>,
    /// The connection task, when it waits for frames to write.
    writer: Option<Waker>,
    /// By stream id, hashed with foldhash: std's SipHash cost about 2% of the client's CPU
    /// here (a call looks its stream up four to six times), and ids come from this side.
    streams: HashMap<u32, Stream, foldhash::fast::RandomState>,
    /// Streams not yet ended.
    active: usize,
    next_id: u32,
    encoder: Encoder,
    /// The server's settings.
    max_frame: usize,
    initial_window: i64,
    max_streams: u32,
    /// The connection's send window.
    window: i64,
    /// Streams with request bytes waiting for window.
    blocked: VecDeque<u32>,
    /// Bytes received since the connection's last WINDOW_UPDATE.
    unacked: u32,
    /// The last stream id of the server's GOAWAY: streams above it were not processed.
    goaway: Option<u32>,
    /// Why no stream is opened any more (GOAWAY, or stream ids used up); the connection ends
    /// with its last stream.
    going: Option<Arc<str>>,
    /// Why the connection ended, once it has.
    closed: Option<Arc<str>>,
    /// Permits still to take out of use after the server lowered its limit of streams while
    /// more were open than the new limit.
    owed: usize,
}

struct Stream {
    head: Option<Fields>,
    got_head: bool,
    data: BytesMut,
    tail: Option<Event>,
    waker: Option<Waker>,
    /// Request bytes not yet sent, and the stream's send window.
    pending: Bytes,
    window: i64,
    /// Received bytes (padding included) not yet given back in a WINDOW_UPDATE, and how many
    /// of them can be: padding at once, data once the attempt has taken it.
    held: u32,
    returnable: u32,
    permit: OwnedSemaphorePermit,
}

impl Stream {
    fn end(&mut self, tail: Event) {
        self.tail = Some(tail);
        self.pending = Bytes::new();
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection has ended, because of `why`: every stream still going fails, and so do
    /// streams waiting for a slot; the keeper is told.
    fn end(&self, why: &str) {
        self.lock().close(why);
        self.slots.close();
        self.going_away.notify_one();
    }

    /// No stream is opened from now on, because of `why`: streams waiting for a slot fail
    /// and the connection's keeper is told.
    fn stop_opening(&self, s: &mut State, why: &str) {
        if s.going.is_none() {
            s.going = Some(why.into());
            self.slots.close();
            self.going_away.notify_one();
        }
    }
}

impl State {
    /// A stream id this client has not opened (even ids are the server's, which opens none).
    fn idle(&self, id: u32) -> bool {
        id.is_multiple_of(2) || id >= self.next_id
    }

    /// A stream taken out of the table: its permit goes back, or out of use if owed.
    fn release(&mut self, st: Stream) {
        if self.owed > 0 {
            self.owed -= 1;
            st.permit.forget();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    fn rst(&mut self, id: u32, code: u32) {
        frame_head(&mut self.out, 4, RST_STREAM, 0, id);
        self.out.put_u32(code);
    }

    fn window_update(&mut self, id: u32, increment: u32) {
        frame_head(&mut self.out, 4, WINDOW_UPDATE, 0, id);
        self.out.put_u32(increment);
    }

    /// Why no stream can be opened, if none can: the connection ended, or is going away.
    fn refusal(&self) -> Option<&Arc<str>> {
        self.closed.as_ref().or(self.going.as_ref())
    }

    /// Resets stream `id` with `code`: it ends so for its attempt, and RST_STREAM tells the
    /// server.
    fn reset(&mut self, id: u32, code: u32) {
        self.end_stream(id, Event::Reset(code));
        self.rst(id, code);
    }

    /// Ends stream `id` (if it is still going) with `tail`.
    fn end_stream(&mut self, id: u32, tail: Event) {
        if let Some(st) = self.streams.get_mut(&id)
            && st.tail.is_none()
        {
            // The server ended the stream before taking the whole request: stop sending.
            let cut_short =
                !st.pending.is_empty() && matches!(tail, Event::End | Event::Trailers(_));
            st.end(tail);
            self.active -= 1;
            if cut_short {
                self.rst(id, CANCEL);
            }
        }
    }

    /// Sends what the windows allow of every stream's waiting request bytes.
    fn send_blocked(&mut self) {
        let mut i = 0;
        while i < self.blocked.len() && self.window > 0 {
            let id = self.blocked[i];
            let done = match self.streams.get_mut(&id) {
                Some(st) => send_data(&mut self.out, &mut self.window, self.max_frame, id, st),
                None => true,
            };
            if done {
                self.blocked.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Fails every stream still going, and every stream opened from now on.
    fn close(&mut self, reason: &str) {
        if self.closed.is_some() {
            return;
        }
        let reason: Arc<str> = reason.into();
        for st in self.streams.values_mut() {
            if st.tail.is_none() {
                st.end(Event::Broken(Arc::clone(&reason)));
            }
        }
        self.active = 0;
        self.closed = Some(reason);
    }
}

/// Writes DATA frames of `st`'s waiting bytes as far as the windows allow; `true` when all
/// were written.
fn send_data(
    out: &mut Vec<u8>,
    window: &mut i64,
    max_frame: usize,
    id: u32,
    st: &mut Stream,
) -> bool {
    while !st.pending.is_empty() {
        let room = st.window.min(*window).max(0) as usize;
        let n = st.pending.len().min(max_frame).min(room);
        if n == 0 {
            return false;
        }
        let chunk = st.pending.split_to(n);
        let flags = if st.pending.is_empty() { END_STREAM } else { 0 };
        frame_head(out, n, DATA, flags, id);
        out.extend_from_slice(&chunk);
        st.window -= n as i64;
        *window -= n as i64;
    }
    true
}

fn frame_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, id: u32) {
    out.put_uint(len as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(id);
}

/// An HPACK integer (RFC 7541 5.1) with a `bits`-bit prefix, after the bits of `first`.
fn hpack_int(out: &mut Vec<u8>, bits: u8, first: u8, mut value: usize) {
    let max = (1usize << bits) - 1;
    if value < max {
        out.put_u8(first | value as u8);
        return;
    }
    out.put_u8(first | max as u8);
    value -= max;
    while value >= 128 {
        out.put_u8((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.put_u8(value as u8);
}

/// An HPACK string literal, not Huffman-coded (RFC 7541 5.2).
fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 7, 0, s.len());
    out.extend_from_slice(s);
}

/// Names of the static table (RFC 7541 Appendix A) this encoder refers to.
fn static_name(name: &[u8]) -> Option<usize> {
    match name {
        b":authority" => Some(1),
        b":path" => Some(4),
        b"content-type" => Some(31),
        b"user-agent" => Some(58),
        _ => None,
    }
}

/// A dynamic-table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The request side of HPACK: the fields it has added to the server's dynamic table.
struct Encoder {
    /// Oldest first (the newest has index 62).
    entries: Vec<Entry>,
    used: usize,
    limit: usize,
    /// Sizes to signal at the start of the next block: the smallest since the last block,
    /// and the one now (RFC 7541 4.2).
    size_update: Option<(usize, usize)>,
}

impl Encoder {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            used: 0,
            limit: TABLE_SIZE,
            size_update: None,
        }
    }

    /// The server's SETTINGS_HEADER_TABLE_SIZE: the table is kept within it.
    fn set_max(&mut self, max: usize) {
        let limit = max.min(TABLE_SIZE);
        if limit == self.limit {
            return;
        }
        self.limit = limit;
        let smallest = self
            .size_update
            .map_or(limit, |(least, _)| least.min(limit));
        self.size_update = Some((smallest, limit));
        while self.used > limit {
            let (n, v) = self.entries.remove(0);
            self.used -= n.len() + v.len() + 32;
        }
    }

    fn block(&mut self, out: &mut Vec<u8>, request: &Request<'_>) {
        if let Some((smallest, now)) = self.size_update.take() {
            hpack_int(out, 5, 0x20, smallest);
            if now != smallest {
                hpack_int(out, 5, 0x20, now);
            }
        }
        out.put_u8(0x83); // :method POST
        out.put_u8(0x86); // :scheme http
        self.field(out, b":path", request.path, true);
        self.field(out, b":authority", request.authority, true);
        for &(name, value, constant) in request.fields {
            self.field(out, name, value, constant);
        }
    }

    fn field(&mut self, out: &mut Vec<u8>, name: &[u8], value: &[u8], constant: bool) {
        let found = self
            .entries
            .iter()
            .position(|(n, v)| **n == *name && **v == *value);
        if let Some(pos) = found {
            hpack_int(out, 7, 0x80, 62 + self.entries.len() - 1 - pos);
            return;
        }
        // The name by index where a table has it: the static table, or an entry of ours
        // (RFC 7541 6.2). A server then takes the name from its table instead of parsing and
        // copying it from every block.
        let named = static_name(name).or_else(|| {
            let pos = self.entries.iter().rposition(|(n, _)| **n == *name)?;
            Some(62 + self.entries.len() - 1 - pos)
        });
        let size = name.len() + value.len() + 32;
        // A constant field enters the table; so does the first value of a name the tables do
        // not have yet (a per-attempt field), so that later blocks name it by index. The
        // table thus holds one entry per name at most for per-attempt fields.
        let index = (constant || named.is_none()) && self.used + size <= self.limit;
        // Literal with incremental indexing (6-bit prefix), or without indexing (4-bit).
        let (bits, first) = if index { (6, 0x40) } else { (4, 0x00) };
        match named {
            Some(i) => hpack_int(out, bits, first, i),
            None => {
                out.put_u8(first);
                hpack_str(out, name);
            }
        }
        hpack_str(out, value);
        if index {
            self.entries.push((name.into(), value.into()));
            self.used += size;
        }
    }
}

/// Opens an HTTP/2 connection over `io`: sends the preface and settings, and waits for the
/// server's settings. The connection's task is the returned [`Driver`], to be polled until
/// it ends.
pub async fn handshake(io: Box<dyn Io>) -> Result<(Handle, Driver), String> {
    handshake_from(io, 1).await
}

async fn handshake_from(mut io: Box<dyn Io>, first_id: u32) -> Result<(Handle, Driver), String> {
    let mut hello = Vec::with_capacity(64);
    hello.extend_from_slice(PREFACE);
    frame_head(&mut hello, 12, SETTINGS, 0, 0);
    hello.put_u16(0x2); // SETTINGS_ENABLE_PUSH
    hello.put_u32(0);
    hello.put_u16(0x4); // SETTINGS_INITIAL_WINDOW_SIZE
    hello.put_u32(STREAM_WINDOW);
    frame_head(&mut hello, 4, WINDOW_UPDATE, 0, 0);
    hello.put_u32(CONNECTION_WINDOW - DEFAULT_WINDOW as u32);
    io.write_all(&hello).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())?;

    let mut read = BytesMut::with_capacity(64 * 1024);
    while read.len() < 9 || read.len() < 9 + frame_len(&read) {
        let n = poll_fn(|cx| tokio_util::io::poll_read_buf(Pin::new(&mut io), cx, &mut read))
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection before its SETTINGS".into());
        }
        if read.len() >= 9 && (read[3] != SETTINGS || read[4] & ACK != 0) {
            return Err("the server's first frame was not SETTINGS (not an HTTP/2 server?)".into());
        }
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            out: Vec::with_capacity(64 * 1024),
            writer: None,
            streams: HashMap::default(),
            active: 0,
            next_id: first_id,
            encoder: Encoder::new(),
            max_frame: MAX_FRAME,
            initial_window: DEFAULT_WINDOW,
            max_streams: u32::MAX,
            window: DEFAULT_WINDOW,
            blocked: VecDeque::new(),
            unacked: 0,
            goaway: None,
            going: None,
            closed: None,
            owed: 0,
        }),
        slots: Arc::new(Semaphore::new(permits(u32::MAX))),
        going_away: Notify::new(),
    });
    let mut decoder = loona_hpack::Decoder::new();
    // The server's encoder may use up to HTTP/2's default table size: we do not change it.
    decoder.set_max_allowed_table_size(TABLE_SIZE);
    let mut driver = Driver {
        io,
        shared: Arc::clone(&shared),
        read,
        writing: Vec::with_capacity(64 * 1024),
        written: 0,
        flush: false,
        decoder,
        block: None,
    };
    // The server's SETTINGS (and whatever came with it) apply before the first stream.
    driver.process().map_err(|f| f.why)?;
    Ok((Handle { shared }, driver))
}

fn frame_len(read: &[u8]) -> usize {
    (usize::from(read[0]) << 16) | (usize::from(read[1]) << 8) | usize::from(read[2])
}

impl Handle {
    /// Opens a stream and queues its request: waits while the server's limit of concurrent
    /// streams is reached; fails when the connection has ended or is going away.
    pub async fn open(&self, request: Request<'_>) -> Result<Exchange, Arc<str>> {
        let permit = Arc::clone(&self.shared.slots)
            .acquire_owned()
            .await
            .map_err(|_| self.ended())?;
        let mut s = self.shared.lock();
        if let Some(reason) = s.refusal() {
            return Err(Arc::clone(reason));
        }
        let id = s.next_id;
        s.next_id += 2;
        if s.next_id > LAST_STREAM_ID {
            self.shared
                .stop_opening(&mut s, "the connection has used all its stream ids");
        }
        // A request with no body ends with its headers.
        let end = if request.body.is_empty() {
            END_STREAM
        } else {
            0
        };
        let State {
            out,
            encoder,
            max_frame,
            ..
        } = &mut *s;
        let start = out.len();
        frame_head(out, 0, HEADERS, END_HEADERS | end, id);
        encoder.block(out, &request);
        let block = out.len() - start - 9;
        if block <= *max_frame {
            out[start..start + 3].copy_from_slice(&(block as u32).to_be_bytes()[1..]);
        } else {
            // Too large for one frame: HEADERS and CONTINUATIONs.
            let fields = out.split_off(start + 9);
            out.truncate(start);
            for (i, part) in fields.chunks(*max_frame).enumerate() {
                let last = (i + 1) * *max_frame >= fields.len();
                let (kind, flags) = if i == 0 {
                    (HEADERS, end)
                } else {
                    (CONTINUATION, 0)
                };
                let flags = flags | if last { END_HEADERS } else { 0 };
                frame_head(out, part.len(), kind, flags, id);
                out.extend_from_slice(part);
            }
        }
        let mut stream = Stream {
            head: None,
            got_head: false,
            data: BytesMut::new(),
            tail: None,
            waker: None,
            pending: request.body,
            window: s.initial_window,
            held: 0,
            returnable: 0,
            permit,
        };
        // Behind streams already waiting for window, in turn.
        let waiting = !s.blocked.is_empty();
        let State {
            out,
            window,
            max_frame,
            ..
        } = &mut *s;
        if waiting || !send_data(out, window, *max_frame, id, &mut stream) {
            s.blocked.push_back(id);
        }
        s.streams.insert(id, stream);
        if waiting {
            s.send_blocked();
        }
        s.active += 1;
        s.wake_writer();
        Ok(Exchange {
            shared: Arc::clone(&self.shared),
            id,
            done: false,
        })
    }

    fn ended(&self) -> Arc<str> {
        let refusal = self.shared.lock().refusal().cloned();
        refusal.unwrap_or_else(|| "the connection was closed".into())
    }

    /// Completes when no stream is opened on this connection any more (GOAWAY, stream ids
    /// used up, or closed): the time to open another.
    pub async fn going_away(&self) {
        self.shared.going_away.notified().await;
    }
}

/// One stream's exchange, from the attempt's side. Dropped before its end, it resets the
/// stream with CANCEL.
pub struct Exchange {
    shared: Arc<Shared>,
    id: u32,
    done: bool,
}

impl Exchange {
    /// The next thing that happened on the stream.
    pub async fn next(&mut self) -> Event {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if self.done {
            return Poll::Ready(Event::Broken("the stream has ended".into()));
        }
        let mut s = self.shared.lock();
        let Some(st) = s.streams.get_mut(&self.id) else {
            self.done = true;
            return Poll::Ready(Event::Broken("the stream has ended".into()));
        };
        if let Some(head) = st.head.take() {
            return Poll::Ready(Event::Head(head));
        }
        if !st.data.is_empty() {
            let data = st.data.split();
            st.returnable += data.len() as u32;
            if st.returnable >= STREAM_WINDOW / 2 && st.tail.is_none() {
                let n = std::mem::take(&mut st.returnable);
                st.held -= n;
                s.window_update(self.id, n);
                s.wake_writer();
            }
            return Poll::Ready(Event::Data(data));
        }
        if let Some(tail) = st.tail.take() {
            let st = s.streams.remove(&self.id).expect("looked up above");
            s.release(st);
            self.done = true;
            return Poll::Ready(tail);
        }
        if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut s = self.shared.lock();
        if let Some(st) = s.streams.remove(&self.id) {
            if st.tail.is_none() && s.closed.is_none() {
                s.active -= 1;
                s.rst(self.id, CANCEL);
                s.wake_writer();
            }
            s.release(st);
        }
    }
}

/// A connection error (RFC 9113 5.4.1): the code to send in GOAWAY, if the server broke the
/// protocol, and what happened.
struct Fault {
    code: Option<u32>,
    why: String,
}

impl Fault {
    fn io(why: String) -> Self {
        Self { code: None, why }
    }

    fn protocol(why: &str) -> Self {
        Self::coded(PROTOCOL_ERROR, "PROTOCOL_ERROR", why)
    }

    fn frame_size(why: &str) -> Self {
        Self::coded(FRAME_SIZE_ERROR, "FRAME_SIZE_ERROR", why)
    }

    fn coded(code: u32, name: &str, why: &str) -> Self {
        Self {
            code: Some(code),
            why: format!("{why} ({name})"),
        }
    }
}

/// A header block being received over HEADERS and CONTINUATION frames.
struct Block {
    id: u32,
    end_stream: bool,
    fragment: BytesMut,
}

/// The connection's task: reads and handles the server's frames, writes the frames queued by
/// the streams. Ends when the connection breaks or closes, or when it is going away (GOAWAY,
/// stream ids used up) and its last stream has ended. Dropping it closes the connection and
/// fails the streams still going.
pub struct Driver {
    io: Box<dyn Io>,
    shared: Arc<Shared>,
    read: BytesMut,
    writing: Vec<u8>,
    written: usize,
    /// Bytes were written and not yet flushed (for transports that buffer).
    flush: bool,
    decoder: loona_hpack::Decoder<'static>,
    block: Option<Block>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let read = this.poll_read(cx);
            let wrote = this.poll_write(cx);
            let progress = match (read, wrote) {
                (Err(fault), _) | (_, Err(fault)) => {
                    this.fail(cx, fault);
                    return Poll::Ready(());
                }
                (Ok(r), Ok(w)) => r || w,
            };
            {
                let s = this.shared.lock();
                let drained = s.out.is_empty() && this.writing.is_empty() && !this.flush;
                if s.going.is_some() && s.active == 0 && drained {
                    drop(s);
                    this.shared.end("the connection was closed (going away)");
                    return Poll::Ready(());
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shared.end("the connection was closed");
    }
}

impl Driver {
    /// Ends the connection on `fault`: a GOAWAY with its code goes out if the socket takes it
    /// at once (RFC 9113 5.4.1), and every stream still going fails.
    fn fail(&mut self, cx: &mut Context<'_>, fault: Fault) {
        if let Some(code) = fault.code {
            let mut goaway = Vec::with_capacity(17);
            frame_head(&mut goaway, 8, GOAWAY, 0, 0);
            goaway.put_u32(0); // no stream of the server's was processed
            goaway.put_u32(code);
            let _ = Pin::new(&mut self.io).poll_write(cx, &goaway);
        }
        self.shared.end(&fault.why);
    }

    /// Reads what is there and handles every whole frame; `true` if anything was read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<bool, Fault> {
        if self.read.capacity() - self.read.len() < MAX_FRAME + 9 {
            self.read.reserve(64 * 1024);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read) {
            Poll::Pending => Ok(false),
            Poll::Ready(Ok(0)) => Err(Fault::io("the server closed the connection".into())),
            Poll::Ready(Ok(_)) => self.process().map(|()| true),
            Poll::Ready(Err(e)) => Err(Fault::io(format!("connection error: {e}"))),
        }
    }

    /// Writes queued frames until the socket takes no more or none are left, then flushes;
    /// `true` if anything was written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<bool, Fault> {
        let mut wrote = false;
        loop {
            if self.written == self.writing.len() {
                self.writing.clear();
                self.written = 0;
                let mut s = self.shared.lock();
                if s.out.is_empty() {
                    if !s.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        s.writer = Some(cx.waker().clone());
                    }
                    drop(s);
                    // A transport that buffers sends what it holds (TCP does not buffer).
                    if self.flush {
                        match Pin::new(&mut self.io).poll_flush(cx) {
                            Poll::Ready(Ok(())) => self.flush = false,
                            Poll::Ready(Err(e)) => {
                                return Err(Fault::io(format!("connection error: {e}")));
                            }
                            Poll::Pending => {}
                        }
                    }
                    return Ok(wrote);
                }
                std::mem::swap(&mut self.writing, &mut s.out);
            }
            match Pin::new(&mut self.io).poll_write(cx, &self.writing[self.written..]) {
                Poll::Pending => return Ok(wrote),
                Poll::Ready(Ok(0)) => {
                    return Err(Fault::io("the connection would take no more bytes".into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.flush = true;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Err(Fault::io(format!("connection error: {e}"))),
            }
        }
    }

    /// Handles every whole frame in the read buffer.
    fn process(&mut self) -> Result<(), Fault> {
        while self.read.len() >= 9 {
            let len = frame_len(&self.read);
            if len > MAX_FRAME {
                let why = format!("a {len}-byte frame, over the {MAX_FRAME} allowed");
                return Err(Fault::frame_size(&why));
            }
            if self.read.len() < 9 + len {
                break;
            }
            let mut frame = self.read.split_to(9 + len);
            let (kind, flags) = (frame[3], frame[4]);
            let id = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & LAST_STREAM_ID;
            frame.advance(9);
            if self.block.is_some() && kind != CONTINUATION {
                return Err(Fault::protocol("a frame within a header block"));
            }
            // Frames of a stream on stream 0, of the connection on a stream, or of a stream
            // this client never opened (push is off: the server opens none).
            let on_stream = matches!(kind, DATA | HEADERS | RST_STREAM | CONTINUATION);
            let on_connection = matches!(kind, SETTINGS | PING | GOAWAY);
            if (on_stream && (id == 0 || self.shared.lock().idle(id))) || (on_connection && id != 0)
            {
                return Err(Fault::protocol(&format!(
                    "a type {kind} frame on stream {id}"
                )));
            }
            match kind {
                DATA => self.data(id, flags, frame)?,
                HEADERS => self.headers(id, flags, frame)?,
                CONTINUATION => {
                    let Some(block) = self.block.as_mut().filter(|b| b.id == id) else {
                        return Err(Fault::protocol("CONTINUATION outside a header block"));
                    };
                    if block.fragment.len() + frame.len() > MAX_HEADER_BLOCK {
                        return Err(Fault::protocol(&format!(
                            "a header block over {MAX_HEADER_BLOCK} bytes"
                        )));
                    }
                    block.fragment.extend_from_slice(&frame);
                    if flags & END_HEADERS != 0 {
                        let block = self.block.take().expect("checked above");
                        self.header_block(block)?;
                    }
                }
                RST_STREAM if frame.len() == 4 => {
                    let code = frame.get_u32();
                    self.shared.lock().end_stream(id, Event::Reset(code));
                }
                SETTINGS if flags & ACK != 0 && !frame.is_empty() => {
                    return Err(Fault::frame_size(
                        "a SETTINGS acknowledgement with a payload",
                    ));
                }
                SETTINGS if flags & ACK == 0 => self.settings(&frame)?,
                PING if flags & ACK == 0 && frame.len() == 8 => {
                    let mut s = self.shared.lock();
                    frame_head(&mut s.out, 8, PING, ACK, 0);
                    s.out.extend_from_slice(&frame);
                }
                GOAWAY if frame.len() >= 8 => self.goaway(frame.get_u32() & LAST_STREAM_ID)?,
                WINDOW_UPDATE if frame.len() == 4 => {
                    self.window_update(id, frame.get_u32() & LAST_STREAM_ID)?;
                }
                PUSH_PROMISE => return Err(Fault::protocol("PUSH_PROMISE, push was disabled")),
                RST_STREAM | PING | GOAWAY | WINDOW_UPDATE => {
                    let why = format!("a type {kind} frame of {len} bytes");
                    return Err(Fault::frame_size(&why));
                }
                // SETTINGS and PING acknowledged, PRIORITY, and frame types this client does
                // not know.
                _ => {}
            }
        }
        Ok(())
    }

    /// GOAWAY (6.8): streams above `last` were not processed and end so; the others run on;
    /// no stream is opened any more.
    fn goaway(&mut self, last: u32) -> Result<(), Fault> {
        let mut s = self.shared.lock();
        if s.goaway.is_some_and(|before| last > before) {
            return Err(Fault::protocol(
                "a GOAWAY with a higher last stream id than before",
            ));
        }
        s.goaway = Some(last);
        self.shared
            .stop_opening(&mut s, "the server is going away (GOAWAY)");
        let refused: Vec<u32> = s.streams.keys().copied().filter(|&id| id > last).collect();
        for id in refused {
            let why = "the server went away (GOAWAY) before the call";
            s.end_stream(id, Event::Broken(why.into()));
        }
        Ok(())
    }

    /// WINDOW_UPDATE (6.9): a window opened, and what it lets out sent.
    fn window_update(&mut self, id: u32, increment: u32) -> Result<(), Fault> {
        let increment = i64::from(increment);
        let mut s = self.shared.lock();
        if id == 0 {
            if increment == 0 {
                return Err(Fault::protocol("a WINDOW_UPDATE of 0"));
            }
            s.window += increment;
            if s.window > MAX_WINDOW {
                let why = "a connection window over 2^31-1";
                return Err(Fault::coded(FLOW_CONTROL_ERROR, "FLOW_CONTROL_ERROR", why));
            }
        } else if let Some(st) = s.streams.get_mut(&id).filter(|st| st.tail.is_none()) {
            st.window += increment;
            let bad = match (increment, st.window > MAX_WINDOW) {
                (0, _) => Some(PROTOCOL_ERROR),
                (_, true) => Some(FLOW_CONTROL_ERROR),
                _ => None,
            };
            if let Some(code) = bad {
                s.reset(id, code);
            }
        }
        s.send_blocked();
        s.wake_writer();
        Ok(())
    }

    /// DATA (6.1): the connection's window is given back as data arrives, a stream's as its
    /// attempt takes the data (so a stream that is not read stops its sender, not the others).
    fn data(&mut self, id: u32, flags: u8, frame: BytesMut) -> Result<(), Fault> {
        let counted = frame.len() as u32;
        let payload = unpad(flags, frame)?;
        let mut s = self.shared.lock();
        s.unacked += counted;
        if s.unacked >= CONNECTION_WINDOW / 2 {
            let n = std::mem::take(&mut s.unacked);
            s.window_update(0, n);
        }
        let code = match s.streams.get_mut(&id) {
            Some(st) if st.tail.is_none() && !st.got_head => PROTOCOL_ERROR, // before headers (8.1)
            Some(st) if st.tail.is_none() => {
                st.held += counted;
                st.returnable += counted - payload.len() as u32;
                if st.held > STREAM_WINDOW {
                    FLOW_CONTROL_ERROR
                } else {
                    st.data.extend_from_slice(&payload);
                    if flags & END_STREAM != 0 {
                        s.end_stream(id, Event::End);
                    } else {
                        st.wake();
                    }
                    return Ok(());
                }
            }
            _ => return Ok(()),
        };
        s.reset(id, code);
        Ok(())
    }

    fn headers(&mut self, id: u32, flags: u8, frame: BytesMut) -> Result<(), Fault> {
        let mut fragment = unpad(flags, frame)?;
        if flags & PRIORITY_FLAG != 0 {
            if fragment.len() < 5 {
                return Err(Fault::frame_size(
                    "a HEADERS frame too short for its priority",
                ));
            }
            fragment.advance(5);
        }
        let block = Block {
            id,
            end_stream: flags & END_STREAM != 0,
            fragment,
        };
        if flags & END_HEADERS != 0 {
            self.header_block(block)
        } else {
            self.block = Some(block);
            Ok(())
        }
    }

    /// A whole header block: decoded whichever stream it is for (the decoder's table must
    /// follow every block), then given to its stream.
    fn header_block(&mut self, block: Block) -> Result<(), Fault> {
        let mut fields = Fields::default();
        self.decoder
            .decode_with_cb(&block.fragment, |name, value| fields.add(&name, &value))
            .map_err(|e| {
                let why = format!("a header block HPACK cannot decode: {e:?}");
                Fault::coded(COMPRESSION_ERROR, "COMPRESSION_ERROR", &why)
            })?;
        let mut s = self.shared.lock();
        let got_head = match s.streams.get(&block.id) {
            Some(st) if st.tail.is_none() => st.got_head,
            _ => return Ok(()),
        };
        if got_head {
            if block.end_stream {
                s.end_stream(block.id, Event::Trailers(fields));
            } else {
                // A second header block must end the stream (8.1).
                s.reset(block.id, PROTOCOL_ERROR);
            }
            return Ok(());
        }
        if fields.status.is_some_and(|c| (100..200).contains(&c)) && !block.end_stream {
            return Ok(()); // informational (8.1)
        }
        let st = s.streams.get_mut(&block.id).expect("looked up above");
        st.got_head = true;
        st.head = Some(fields);
        if block.end_stream {
            s.end_stream(block.id, Event::End);
        } else {
            st.wake();
        }
        Ok(())
    }

    fn settings(&mut self, mut frame: &[u8]) -> Result<(), Fault> {
        if !frame.len().is_multiple_of(6) {
            return Err(Fault::frame_size(
                "a SETTINGS frame not a multiple of 6 bytes",
            ));
        }
        let mut s = self.shared.lock();
        while frame.has_remaining() {
            let (key, value) = (frame.get_u16(), frame.get_u32());
            match key {
                0x1 => s.encoder.set_max(value as usize),
                0x3 => {
                    let (old, new) = (permits(s.max_streams), permits(value));
                    s.max_streams = value;
                    let slots = &self.shared.slots;
                    if new > old {
                        let repaid = s.owed.min(new - old);
                        s.owed -= repaid;
                        slots.add_permits(new - old - repaid);
                    } else {
                        // Streams already open past a lowered limit run on (5.1.2); their
                        // permits are taken out of use as they end.
                        let forgotten = slots.forget_permits(old - new);
                        s.owed += old - new - forgotten;
                    }
                }
                0x4 => {
                    if value > LAST_STREAM_ID {
                        let why = "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1";
                        return Err(Fault::coded(FLOW_CONTROL_ERROR, "FLOW_CONTROL_ERROR", why));
                    }
                    let delta = i64::from(value) - s.initial_window;
                    s.initial_window = i64::from(value);
                    for st in s.streams.values_mut() {
                        st.window += delta;
                    }
                }
                0x5 => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(Fault::protocol("SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    s.max_frame = value as usize;
                }
                _ => {}
            }
        }
        frame_head(&mut s.out, 0, SETTINGS, ACK, 0);
        s.send_blocked();
        s.wake_writer();
        Ok(())
    }
}

/// A frame's payload without its padding (6.1, 6.2).
fn unpad(flags: u8, mut frame: BytesMut) -> Result<BytesMut, Fault> {
    if flags & PADDED == 0 {
        return Ok(frame);
    }
    let Some(&pad) = frame.first() else {
        return Err(Fault::frame_size("an empty padded frame"));
    };
    let pad = usize::from(pad);
    if pad >= frame.len() {
        return Err(Fault::protocol("padding as long as its frame"));
    }
    frame.advance(1);
    frame.truncate(frame.len() - pad);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, DuplexStream};
    use tonic::Code;

    use crate::protocol::Pushback;

    fn request(path: &'static [u8], body: Bytes) -> Request<'static> {
        Request {
            path,
            authority: b"test:1",
            fields: &[
                (b"content-type", b"application/grpc", true),
                (b"te", b"trailers", true),
            ],
            body,
        }
    }

    /// A client connection over a pipe whose other end is `server`; its driver is spawned.
    async fn connect(server: impl FnOnce(DuplexStream) + Send + 'static) -> Handle {
        connect_from(1, server).await
    }

    async fn connect_from(first_id: u32, server: impl FnOnce(DuplexStream)) -> Handle {
        let (client, server_end) = tokio::io::duplex(1 << 20);
        server(server_end);
        let (handle, driver) = handshake_from(Box::new(client), first_id).await.unwrap();
        tokio::spawn(driver);
        handle
    }

    /// An h2 server built by `builder` over `io`, each request handed to `each`.
    fn h2_server<F, Fut>(io: DuplexStream, builder: h2::server::Builder, each: F)
    where
        F: Fn(http::Request<h2::RecvStream>, h2::server::SendResponse<Bytes>) -> Fut
            + Send
            + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(async move {
            let mut conn = builder.handshake::<_, Bytes>(io).await.unwrap();
            while let Some(Ok((req, respond))) = conn.accept().await {
                tokio::spawn(each(req, respond));
            }
        });
    }

    async fn read_body(mut body: h2::RecvStream) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            body.flow_control().release_capacity(chunk.len()).unwrap();
            all.extend_from_slice(&chunk);
        }
        all
    }

    fn ok_response() -> http::Response<()> {
        http::Response::builder().status(200).body(()).unwrap()
    }

    /// Every event of a stream, data joined, up to its end.
    async fn events(mut stream: Exchange) -> (Option<Fields>, Vec<u8>, Event) {
        let (mut head, mut data) = (None, Vec::new());
        loop {
            match stream.next().await {
                Event::Head(h) => head = Some(h),
                Event::Data(d) => data.extend_from_slice(&d),
                end => return (head, data, end),
            }
        }
    }

    /// A request larger than HTTP/2's default windows goes out as the server opens them; the
    /// response's headers, data and trailers (status and pushback) come back in order.
    #[tokio::test]
    async fn a_request_larger_than_the_windows_waits_for_window_updates() {
        let handle = connect(|io| {
            h2_server(
                io,
                h2::server::Builder::new(),
                |req, mut respond| async move {
                    let body = read_body(req.into_body()).await;
                    let mut send = respond.send_response(ok_response(), false).unwrap();
                    let len = (body.len() as u32).to_be_bytes();
                    send.send_data(Bytes::copy_from_slice(&len), false).unwrap();
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", "14".parse().unwrap());
                    trailers.insert("grpc-retry-pushback-ms", "250".parse().unwrap());
                    send.send_trailers(trailers).unwrap();
                },
            );
        })
        .await;
        let big = Bytes::from(vec![7u8; 1_000_000]);
        let stream = handle.open(request(b"/big", big)).await.unwrap();
        let (head, data, end) = events(stream).await;
        assert_eq!(head.unwrap().status, Some(200));
        assert_eq!(data, 1_000_000u32.to_be_bytes());
        let Event::Trailers(trailers) = end else {
            panic!("expected trailers, got {end:?}");
        };
        assert_eq!(trailers.grpc_status, Some(Code::Unavailable));
        assert_eq!(trailers.pushback, Some(Pushback::RetryAfterMs(250)));
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS holds further streams back until one
    /// ends (h2 would refuse the excess with REFUSED_STREAM).
    #[tokio::test]
    async fn the_servers_limit_of_streams_holds_new_ones_back() {
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (o, m) = (Arc::clone(&open), Arc::clone(&most));
        let handle = connect(move |io| {
            let mut builder = h2::server::Builder::new();
            builder.max_concurrent_streams(2);
            h2_server(io, builder, move |req, mut respond| {
                let (open, most) = (Arc::clone(&o), Arc::clone(&m));
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = open.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    read_body(req.into_body()).await;
                    tokio::task::yield_now().await;
                    open.fetch_sub(1, SeqCst);
                    respond.send_response(ok_response(), true).unwrap();
                }
            });
        })
        .await;
        let calls = (0..6).map(|_| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let stream = handle.open(request(b"/x", Bytes::from_static(b"hi"))).await;
                events(stream.unwrap()).await
            })
        });
        for call in calls.collect::<Vec<_>>() {
            let (head, _, end) = call.await.unwrap();
            assert_eq!(head.unwrap().status, Some(200));
            assert!(matches!(end, Event::End), "{end:?}");
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// An attempt dropped before its stream ended resets it with CANCEL (the server stops
    /// working on it); the connection goes on.
    #[tokio::test]
    async fn a_dropped_exchange_resets_its_stream_with_cancel() {
        let (reset_tx, mut reset_rx) = tokio::sync::mpsc::unbounded_channel();
        let handle = connect(move |io| {
            h2_server(io, h2::server::Builder::new(), move |req, mut respond| {
                let reset_tx = reset_tx.clone();
                async move {
                    if req.uri().path() == "/hang" {
                        let reason = poll_fn(|cx| respond.poll_reset(cx)).await.unwrap();
                        reset_tx.send(reason).unwrap();
                    } else {
                        respond.send_response(ok_response(), true).unwrap();
                    }
                }
            });
        })
        .await;
        let mut hanging = handle
            .open(request(b"/hang", Bytes::from_static(b"x")))
            .await
            .unwrap();
        tokio::select! {
            _ = hanging.next() => panic!("the server does not answer"),
            _ = tokio::task::yield_now() => {}
        }
        drop(hanging);
        assert_eq!(reset_rx.recv().await, Some(h2::Reason::CANCEL));
        let after = handle.open(request(b"/ok", Bytes::from_static(b"x"))).await;
        assert!(matches!(events(after.unwrap()).await.2, Event::End));
    }

    /// HPACK with a server that allows no dynamic table: the size is signalled as 0 and no
    /// field is indexed, so every request still decodes.
    #[tokio::test]
    async fn requests_decode_with_a_server_that_allows_no_header_table() {
        let handle = connect(|io| {
            let mut builder = h2::server::Builder::new();
            builder.header_table_size(0);
            h2_server(io, builder, |req, mut respond| async move {
                assert_eq!(req.headers()["content-type"], "application/grpc");
                let status = if req.uri().path() == "/p" { 200 } else { 404 };
                let response = http::Response::builder().status(status).body(()).unwrap();
                respond.send_response(response, true).unwrap();
            });
        })
        .await;
        for _ in 0..3 {
            let stream = handle.open(request(b"/p", Bytes::from_static(b"x"))).await;
            let (head, _, _) = events(stream.unwrap()).await;
            assert_eq!(head.unwrap().status, Some(200));
        }
        let s = handle.shared.lock();
        assert_eq!((s.encoder.limit, s.encoder.entries.len()), (0, 0));
    }

    /// The raw frames a test server reads: the preface, then (type, flags, id, payload).
    async fn read_frame(io: &mut DuplexStream) -> (u8, u8, u32, Vec<u8>) {
        let mut head = [0u8; 9];
        io.read_exact(&mut head).await.unwrap();
        let mut payload = vec![0u8; frame_len(&head)];
        io.read_exact(&mut payload).await.unwrap();
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        (head[3], head[4], id, payload)
    }

    /// A frame written by a raw test server.
    fn frame(kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame_head(&mut out, payload.len(), kind, flags, id);
        out.extend_from_slice(payload);
        out
    }

    /// Reads frames until a HEADERS frame, whose stream id it returns.
    async fn next_request(io: &mut DuplexStream) -> u32 {
        loop {
            let (kind, _, id, _) = read_frame(io).await;
            if kind == HEADERS {
                return id;
            }
        }
    }

    /// A raw server: the preface read and SETTINGS sent, then `script` runs.
    fn raw_server<F, Fut>(io: DuplexStream, script: F)
    where
        F: FnOnce(DuplexStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(async move {
            let mut io = io;
            let mut preface = [0u8; 24];
            io.read_exact(&mut preface).await.unwrap();
            assert_eq!(&preface[..], PREFACE);
            io.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
            script(io).await;
        });
    }

    // `:status: 200` (static index 8) and `grpc-status: 0` as a literal without indexing.
    const STATUS_200: &[u8] = &[0x88];
    const GRPC_OK: &[u8] = b"\x00\x0bgrpc-status\x010";

    /// What a raw server may send that the h2 crate's server does not: padding, a header block
    /// split over CONTINUATION, a 1xx response before the real one, a PING to acknowledge.
    #[tokio::test]
    async fn padding_continuation_informational_responses_and_pings() {
        let (pong_tx, pong_rx) = tokio::sync::oneshot::channel();
        let handle = connect(|io| {
            raw_server(io, |mut io| async move {
                let id = next_request(&mut io).await;
                let mut out = Vec::new();
                out.extend(frame(PING, 0, 0, b"12345678"));
                // 100 Continue (static `:status` name, literal value), then 200 in two parts.
                out.extend(frame(HEADERS, END_HEADERS, id, b"\x08\x03100"));
                out.extend(frame(HEADERS, PADDED, id, &[2, STATUS_200[0], 0, 0]));
                out.extend(frame(CONTINUATION, END_HEADERS, id, b""));
                out.extend(frame(DATA, PADDED, id, b"\x03abcxyz"));
                out.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, GRPC_OK));
                io.write_all(&out).await.unwrap();
                loop {
                    let (kind, flags, _, payload) = read_frame(&mut io).await;
                    if kind == PING && flags & ACK != 0 {
                        pong_tx.send(payload).unwrap();
                        return;
                    }
                }
            });
        })
        .await;
        let stream = handle.open(request(b"/x", Bytes::from_static(b"x"))).await;
        let (head, data, end) = events(stream.unwrap()).await;
        assert_eq!(head.unwrap().status, Some(200));
        assert_eq!(data, b"abc");
        let Event::Trailers(trailers) = end else {
            panic!("{end:?}");
        };
        assert_eq!(trailers.grpc_status, Some(Code::Ok));
        assert_eq!(pong_rx.await.unwrap(), b"12345678");
    }

    /// GOAWAY: a stream above its last id ends as not processed, one at or below it runs to
    /// its end, no stream is opened after it, and the connection ends with its last stream.
    #[tokio::test]
    async fn goaway_ends_unprocessed_streams_and_then_the_connection() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let handle = connect(|io| {
            raw_server(io, |mut io| async move {
                let first = next_request(&mut io).await;
                let second = next_request(&mut io).await;
                let mut goaway = first.to_be_bytes().to_vec();
                goaway.extend(0u32.to_be_bytes());
                io.write_all(&frame(GOAWAY, 0, 0, &goaway)).await.unwrap();
                let mut out = frame(HEADERS, END_HEADERS, first, STATUS_200);
                out.extend(frame(HEADERS, END_HEADERS | END_STREAM, first, GRPC_OK));
                io.write_all(&out).await.unwrap();
                // The client closes the connection once its last stream has ended.
                let mut rest = Vec::new();
                io.read_to_end(&mut rest).await.unwrap();
                done_tx.send(second).unwrap();
            });
        })
        .await;
        let first = handle.open(request(b"/a", Bytes::from_static(b"x"))).await;
        let second = handle.open(request(b"/b", Bytes::from_static(b"x"))).await;
        let (_, _, end) = events(second.unwrap()).await;
        assert!(
            matches!(end, Event::Broken(ref why) if why.contains("GOAWAY")),
            "{end:?}"
        );
        let refused = handle.open(request(b"/c", Bytes::from_static(b"x"))).await;
        assert!(refused.is_err());
        let (head, _, end) = events(first.unwrap()).await;
        assert_eq!(head.unwrap().status, Some(200));
        assert!(matches!(end, Event::Trailers(_)), "{end:?}");
        assert_eq!(done_rx.await.unwrap(), 3);
    }

    /// Stream ids run out at 2^31-1: the last one is used, then no stream is opened and the
    /// connection ends when that stream has.
    #[tokio::test]
    async fn the_connection_ends_when_its_stream_ids_run_out() {
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        let handle = connect_from(LAST_STREAM_ID, |io| {
            raw_server(io, |mut io| async move {
                let id = next_request(&mut io).await;
                let mut out = frame(HEADERS, END_HEADERS, id, STATUS_200);
                out.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, GRPC_OK));
                io.write_all(&out).await.unwrap();
                let mut rest = Vec::new();
                io.read_to_end(&mut rest).await.unwrap();
                closed_tx.send(id).unwrap();
            });
        })
        .await;
        let last = handle.open(request(b"/a", Bytes::from_static(b"x"))).await;
        let refused = handle.open(request(b"/b", Bytes::from_static(b"x"))).await;
        assert!(refused.err().unwrap().contains("stream ids"));
        assert!(matches!(events(last.unwrap()).await.2, Event::Trailers(_)));
        assert_eq!(closed_rx.await.unwrap(), LAST_STREAM_ID);
    }

    /// A broken connection ends every stream still going as lost.
    #[tokio::test]
    async fn a_broken_connection_ends_its_streams() {
        let handle = connect(|io| {
            raw_server(io, |mut io| async move {
                next_request(&mut io).await;
                drop(io);
            });
        })
        .await;
        let stream = handle.open(request(b"/a", Bytes::from_static(b"x"))).await;
        let (_, _, end) = events(stream.unwrap()).await;
        assert!(matches!(end, Event::Broken(_)), "{end:?}");
        assert!(
            handle
                .open(request(b"/b", Bytes::from_static(b"x")))
                .await
                .is_err()
        );
    }

    /// GOAWAY while a call waits for a stream slot: the call fails at once rather than
    /// waiting for the open stream to end.
    #[tokio::test]
    async fn goaway_fails_the_calls_waiting_for_a_stream_slot() {
        let handle = connect(|io| {
            tokio::spawn(async move {
                let mut io = io;
                let mut preface = [0u8; 24];
                io.read_exact(&mut preface).await.unwrap();
                // One stream at a time (SETTINGS_MAX_CONCURRENT_STREAMS = 1).
                io.write_all(&frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 1]))
                    .await
                    .unwrap();
                let first = next_request(&mut io).await;
                let mut goaway = first.to_be_bytes().to_vec();
                goaway.extend(0u32.to_be_bytes());
                io.write_all(&frame(GOAWAY, 0, 0, &goaway)).await.unwrap();
                // The first call is never answered; the connection stays open.
                let mut rest = Vec::new();
                let _ = io.read_to_end(&mut rest).await;
            });
        })
        .await;
        let _first = handle
            .open(request(b"/a", Bytes::from_static(b"x")))
            .await
            .unwrap();
        let waiting = handle.open(request(b"/b", Bytes::from_static(b"x"))).await;
        assert!(waiting.err().unwrap().contains("GOAWAY"));
        // And the keeper would have been told to open another connection.
        crate::clock::Clock::Tokio
            .timeout(std::time::Duration::from_secs(5), handle.going_away())
            .await
            .unwrap();
    }

    /// A request with no body ends with its HEADERS frame.
    #[tokio::test]
    async fn a_request_without_a_body_ends_with_its_headers() {
        let handle = connect(|io| {
            h2_server(
                io,
                h2::server::Builder::new(),
                |req, mut respond| async move {
                    assert!(req.body().is_end_stream());
                    respond.send_response(ok_response(), true).unwrap();
                },
            );
        })
        .await;
        let stream = handle.open(request(b"/x", Bytes::new())).await.unwrap();
        assert_eq!(events(stream).await.0.unwrap().status, Some(200));
    }

    /// A header block that never ends (the CONTINUATION flood) ends the connection with a
    /// GOAWAY(PROTOCOL_ERROR) once it passes its limit.
    #[tokio::test]
    async fn an_endless_header_block_ends_the_connection() {
        let (goaway_tx, goaway_rx) = tokio::sync::oneshot::channel();
        let handle = connect(|io| {
            raw_server(io, |mut io| async move {
                let id = next_request(&mut io).await;
                io.write_all(&frame(HEADERS, 0, id, STATUS_200))
                    .await
                    .unwrap();
                let filler = vec![0u8; MAX_FRAME];
                for _ in 0..=MAX_HEADER_BLOCK / MAX_FRAME {
                    if io
                        .write_all(&frame(CONTINUATION, 0, id, &filler))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                loop {
                    let (kind, _, _, payload) = read_frame(&mut io).await;
                    if kind == GOAWAY {
                        goaway_tx.send(payload[4..8].to_vec()).unwrap();
                        return;
                    }
                }
            });
        })
        .await;
        let stream = handle.open(request(b"/x", Bytes::from_static(b"x"))).await;
        let (_, _, end) = events(stream.unwrap()).await;
        assert!(
            matches!(end, Event::Broken(ref why) if why.contains("header block")),
            "{end:?}"
        );
        assert_eq!(goaway_rx.await.unwrap(), PROTOCOL_ERROR.to_be_bytes());
    }

    /// A stream's receive window is given back as its attempt takes the data; a server that
    /// sends past the window gets the stream reset with FLOW_CONTROL_ERROR.
    #[tokio::test]
    async fn a_streams_window_is_given_back_as_its_data_is_taken() {
        let (update_tx, update_rx) = tokio::sync::oneshot::channel();
        let (reset_tx, reset_rx) = tokio::sync::oneshot::channel();
        let (more_tx, more_rx) = tokio::sync::oneshot::channel::<()>();
        let handle = connect(|io| {
            raw_server(io, |mut io| async move {
                let id = next_request(&mut io).await;
                let chunk = vec![1u8; MAX_FRAME];
                let mut out = frame(HEADERS, END_HEADERS, id, STATUS_200);
                for _ in 0..64 {
                    out.extend(frame(DATA, 0, id, &chunk));
                }
                io.write_all(&out).await.unwrap();
                loop {
                    let (kind, _, on, payload) = read_frame(&mut io).await;
                    if kind == WINDOW_UPDATE && on == id {
                        update_tx.send(payload).unwrap();
                        break;
                    }
                }
                more_rx.await.unwrap();
                // Past the 2 MiB window, with nothing taken by the attempt.
                for _ in 0..=STREAM_WINDOW as usize / MAX_FRAME {
                    io.write_all(&frame(DATA, 0, id, &chunk)).await.unwrap();
                }
                loop {
                    let (kind, _, on, payload) = read_frame(&mut io).await;
                    if kind == RST_STREAM && on == id {
                        reset_tx.send(payload).unwrap();
                        return;
                    }
                }
            });
        })
        .await;
        let mut stream = handle
            .open(request(b"/x", Bytes::from_static(b"x")))
            .await
            .unwrap();
        let mut taken = 0;
        while taken < 64 * MAX_FRAME {
            match stream.next().await {
                Event::Head(_) => {}
                Event::Data(d) => taken += d.len(),
                other => panic!("{other:?}"),
            }
        }
        let increment = u32::from_be_bytes(update_rx.await.unwrap()[..4].try_into().unwrap());
        assert_eq!(increment as usize, 64 * MAX_FRAME);
        more_tx.send(()).unwrap();
        assert_eq!(reset_rx.await.unwrap(), FLOW_CONTROL_ERROR.to_be_bytes());
    }

    /// RFC 7541 4.2: a table size lowered and raised again between two blocks is signalled
    /// as the smallest, then the last.
    #[test]
    fn a_table_size_lowered_and_raised_is_signalled_smallest_first() {
        let mut encoder = Encoder::new();
        let mut block = Vec::new();
        encoder.block(&mut block, &request(b"/x", Bytes::new()));
        assert!(!encoder.entries.is_empty());
        encoder.set_max(0);
        encoder.set_max(8192);
        assert!(encoder.entries.is_empty(), "evicted at size 0");
        let mut next = Vec::new();
        encoder.block(&mut next, &request(b"/x", Bytes::new()));
        // 0, then 4096 (this encoder's most) in a 5-bit prefix: 31 + 4065.
        assert_eq!(next[..4], [0x20, 0x3f, 0xe1, 0x1f]);
    }

    /// HPACK integers across their prefix (RFC 7541 C.1), and the constant fields indexed
    /// once: a second identical request's block is a few bytes.
    #[test]
    fn hpack_integers_and_indexed_constant_fields() {
        let int = |bits, value| {
            let mut out = Vec::new();
            hpack_int(&mut out, bits, 0, value);
            out
        };
        assert_eq!(int(5, 10), [10]);
        assert_eq!(int(5, 1337), [31, 154, 10]);
        assert_eq!(int(8, 42), [42]);
        let mut encoder = Encoder::new();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        encoder.block(
            &mut first,
            &request(b"/resilbench.v1.Backend/Call", Bytes::new()),
        );
        encoder.block(
            &mut second,
            &request(b"/resilbench.v1.Backend/Call", Bytes::new()),
        );
        assert!(first.len() > 50, "{first:?}");
        // :method, :scheme, then the four entries, newest (te) at index 62.
        assert_eq!(
            second,
            [0x83, 0x86, 0x80 | 65, 0x80 | 64, 0x80 | 63, 0x80 | 62]
        );
        let mut decoder = loona_hpack::Decoder::new();
        let fields =
            |block: &[u8], decoder: &mut loona_hpack::Decoder<'_>| decoder.decode(block).unwrap();
        assert_eq!(fields(&first, &mut decoder), fields(&second, &mut decoder));
    }

    /// A per-attempt field (RFC 7541 6.2): its first value enters the table, so that later
    /// blocks name it by index and carry the value alone, unindexed; the first value again
    /// is one byte. Every block decodes to what was sent.
    #[test]
    fn per_attempt_fields_name_their_header_by_index() {
        let block = |encoder: &mut Encoder, attempt: &[u8]| {
            let fields = [(&b"resilbench-attempt"[..], attempt, false)];
            let request = Request {
                path: b"/p",
                authority: b"a",
                fields: &fields,
                body: Bytes::new(),
            };
            let mut out = Vec::new();
            encoder.block(&mut out, &request);
            out
        };
        let mut encoder = Encoder::new();
        let mut decoder = loona_hpack::Decoder::new();
        let first = block(&mut encoder, b"0");
        assert_eq!(
            encoder.entries.len(),
            3,
            "path, authority, the attempt's first value"
        );
        let second = block(&mut encoder, b"12");
        let third = block(&mut encoder, b"0");
        assert_eq!(encoder.entries.len(), 3, "a later value is not indexed");
        // :method, :scheme, :path (64), :authority (63), then the attempt field without
        // indexing, its name as index 62 in a 4-bit prefix (15, then 47), the value "12".
        assert_eq!(
            second,
            [0x83, 0x86, 0x80 | 64, 0x80 | 63, 0x0f, 47, 2, b'1', b'2']
        );
        assert_eq!(third, [0x83, 0x86, 0x80 | 64, 0x80 | 63, 0x80 | 62]);
        for (block, value) in [(first, "0"), (second, "12"), (third, "0")] {
            let decoded = decoder.decode(&block).unwrap();
            let last = decoded.last().unwrap();
            assert_eq!(
                (&last.0[..], &last.1[..]),
                (&b"resilbench-attempt"[..], value.as_bytes())
            );
        }
    }
}
