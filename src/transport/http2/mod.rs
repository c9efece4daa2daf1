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
//! The parts follow h2's seams, each knowing nothing of the ones above it:
//! - `frame.rs`: the frame codec (header, types, flags, error codes, the frames written, the
//!   read buffer split into typed frames); no state, no I/O.
//! - `hpack.rs`: the request header encoder; `headers.rs` assembles and decodes the server's
//!   header blocks (with the `loona-hpack` crate).
//! - `conn.rs` (with `recv.rs`, `send.rs`, `stream.rs`): the connection's state machine, sans
//!   I/O: [`Connection::receive`] takes the server's bytes, [`Connection::open`] queues a
//!   request, each stream's events wait in the stream table, the frames to write in an output
//!   buffer. Tested with bytes in, events and bytes out, no socket.
//! - `driver.rs`: the socket task ([`Driver`]), which feeds the state machine what it reads and
//!   writes what it queued.
//! - `handle.rs`: [`Handle`] and [`Exchange`], the attempts' side: a slot under the server's
//!   stream limit, a stream's events polled, RST_STREAM(CANCEL) on drop.
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
//!   streams, and one that opens any of their windows past 2^31-1 is a FLOW_CONTROL_ERROR).
//!   Received bytes are given back once half a window is due: the connection's as they
//!   arrive, a stream's as its attempt takes them, so a stream not read stops its own sender
//!   only; a stream sent more than its window is reset with FLOW_CONTROL_ERROR, and DATA past
//!   the connection's window (as the WINDOW_UPDATEs written so far opened it) is a connection
//!   error FLOW_CONTROL_ERROR.
//! - 5.4.1: a server that breaks the protocol gets a GOAWAY with the error's code (after the
//!   frame being written, never inside it; not at all if the socket does not take it at once)
//!   and the connection closes; frames on the wrong stream, or on one never opened, are such
//!   errors.
//! - 6.2, 6.10: header blocks over HEADERS and CONTINUATION (at most 256 KiB), decoded with
//!   HPACK (RFC 7541, the `loona-hpack` crate, Huffman and the dynamic table included)
//!   whatever stream they belong to, so the decoding table stays in step, and handed up raw
//!   ([`HeaderBlock`]); one that decodes to more than 1 MiB resets its stream (10.5.1).
//! - 6.4: RST_STREAM(CANCEL) for an attempt dropped before its stream ended (a deadline, a
//!   hedge that lost); a server's RST_STREAM ends the stream with its reason, or as not
//!   processed if it is REFUSED_STREAM before any response (8.7, [`Lost::processed`]).
//! - 6.5, 6.7: SETTINGS and PING are acknowledged; SETTINGS_ENABLE_PUSH other than 0 from
//!   the server is a PROTOCOL_ERROR (6.5.2).
//! - 6.8: after GOAWAY no stream is opened (calls waiting for a slot fail at once, and
//!   [`Handle::going_away`] tells the keeper to open another connection); streams above its
//!   last id end as not processed, the others run to their end, then the connection closes.
//! - A stream whose HEADERS were still waiting in the output buffer when the connection ended
//!   (or when a GOAWAY came) ends as never sent ([`Processed::Unsent`]): gRFC A6 retries such
//!   a stream until its deadline, one the server refused only once.
//! - 8.1: a request without a body ends with its HEADERS; 1xx responses are skipped; a second
//!   header block is the trailers. A request body may be given in pieces after the HEADERS
//!   ([`BodyWriter`], the proxy's client and bidi streams), each once the last has been
//!   written; its end goes once, with its last bytes or as an empty DATA frame (6.1). A server
//!   that ends the stream before the request has ended ("a complete response prior to the
//!   client sending an entire request") has it reset with CANCEL, and the writer told.
//!
//! Request headers are encoded with HPACK's static table and a few dynamic entries
//! (`hpack.rs`).
//!
//! Kept as they were, where RFC 9113 asks otherwise (behaviour left unchanged when this
//! module was split): a PING acknowledgement is refused as a FRAME_SIZE_ERROR (this client
//! sends no PING, 6.7 does not make an unsolicited one an error), and a 1xx head with
//! END_STREAM is handed up as the head (8.1 makes it malformed; h2's client resets it).
//!
//! Wakers are woken under the connection's lock: tokio's wakers only schedule a task.

mod conn;
mod driver;
mod frame;
mod handle;
mod headers;
mod hpack;
mod recv;
mod send;
mod stream;

#[cfg(test)]
mod tests;

pub use conn::{CONNECTION_WINDOW, Connection, STREAM_WINDOW};
pub use driver::{Driver, handshake};
pub use frame::{CANCEL, Fault};
pub use handle::{BodyWriter, Exchange, Handle};
pub use headers::{HeaderBlock, HeaderFields};
pub use hpack::Field;
pub use send::Request;
pub use stream::{Event, Lost, Processed};
