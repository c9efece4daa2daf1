//! Tests of the HTTP/2 client as a whole: through a socket (`socket`), the state machine fed
//! bytes (`machine`, and `fuzz` with arbitrary and mutated server bytes), and the h2 crate's
//! client answered the same scripts (`differential`). The frame codec and the HPACK encoder
//! are tested in their own modules.

mod body;
mod differential;
mod fuzz;
mod machine;
mod script;
mod slow_socket;
mod socket;

use std::collections::HashSet;

use bytes::Bytes;

use super::Request;
use super::frame::{
    self, ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, Head, PADDED, PING,
    PREFACE, PRIORITY_FLAG, RST_STREAM, SETTINGS, WINDOW_UPDATE,
};

/// A request of the tests: `path`, a constant authority and the two fields gRPC sends.
pub(super) fn request(path: &'static [u8], body: Bytes) -> Request<'static> {
    Request {
        path,
        authority: b"test:1",
        https: false,
        fields: &[
            (b"content-type", b"application/grpc", true),
            (b"te", b"trailers", true),
        ],
        body,
        end: true,
    }
}

/// A frame written by a test server.
pub(super) fn frame(kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::head(&mut out, payload.len(), kind, flags, id);
    out.extend_from_slice(payload);
    out
}

// `:status: 200` (static index 8) and `grpc-status: 0` as a literal without indexing.
pub(super) const STATUS_200: &[u8] = &[0x88];
pub(super) const GRPC_OK: &[u8] = b"\x00\x0bgrpc-status\x010";

/// A decoded header field: name, value.
pub(super) type Field = (Vec<u8>, Vec<u8>);

/// What a client wrote, checked as a server would read it: the preface, then frames of known
/// types with the right sizes on the right streams, header blocks whole (no frame inside one)
/// and decodable with HPACK, nothing on a stream after the client ended it but RST_STREAM and
/// WINDOW_UPDATE, and nothing after a GOAWAY.
pub(super) struct ClientWire {
    /// Bytes not yet parsed (a frame not yet whole).
    buf: Vec<u8>,
    /// The preface has been read.
    preface: bool,
    decoder: loona_hpack::Decoder<'static>,
    /// The header block under way: its stream, END_STREAM, and its fragments.
    block: Option<(u32, bool, Vec<u8>)>,
    /// Streams the client opened, and those it has ended (END_STREAM or RST_STREAM).
    opened: HashSet<u32>,
    ended: HashSet<u32>,
    /// A GOAWAY was written.
    pub goaway: Option<u32>,
    /// Every frame, in order.
    pub frames: Vec<(Head, Vec<u8>)>,
    /// Every header block, decoded.
    pub blocks: Vec<(u32, Vec<Field>)>,
}

impl ClientWire {
    pub fn new() -> Self {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(4096);
        Self {
            buf: Vec::new(),
            preface: false,
            decoder,
            block: None,
            opened: HashSet::new(),
            ended: HashSet::new(),
            goaway: None,
            frames: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Reads `bytes`, the next the client wrote; an error says what is wrong.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        if !self.preface {
            if self.buf.len() < PREFACE.len() {
                return Ok(());
            }
            if &self.buf[..PREFACE.len()] != PREFACE {
                return Err("no preface".into());
            }
            self.buf.drain(..PREFACE.len());
            self.preface = true;
        }
        while let Some(head) = Head::parse(&self.buf) {
            if self.buf.len() < frame::HEAD + head.len {
                break;
            }
            let payload = self.buf[frame::HEAD..frame::HEAD + head.len].to_vec();
            self.buf.drain(..frame::HEAD + head.len);
            self.check(head, &payload)
                .map_err(|e| format!("frame {} {head:?}: {e}", self.frames.len()))?;
            self.frames.push((head, payload));
        }
        Ok(())
    }

    /// Whether the bytes so far end on a frame's end.
    pub fn whole(&self) -> bool {
        self.buf.is_empty()
    }

    fn check(&mut self, head: Head, payload: &[u8]) -> Result<(), String> {
        if let Some(last) = self.goaway {
            return Err(format!("a frame after GOAWAY({last})"));
        }
        if head.flags & PADDED != 0 || head.flags & PRIORITY_FLAG != 0 && head.kind == HEADERS {
            return Err("padding or priority from this client".into());
        }
        let id = head.id;
        if let Some((on, _, _)) = &self.block
            && (head.kind != CONTINUATION || head.id != *on)
        {
            return Err("a frame inside a header block".into());
        }
        let stream = matches!(
            head.kind,
            DATA | HEADERS | CONTINUATION | RST_STREAM | WINDOW_UPDATE
        );
        let even = id.is_multiple_of(2);
        match head.kind {
            DATA | HEADERS | CONTINUATION | RST_STREAM if id == 0 || even => {
                return Err("a stream frame off the client's streams".into());
            }
            SETTINGS | PING | GOAWAY if id != 0 => {
                return Err("a connection frame on a stream".into());
            }
            _ if stream && even && id != 0 => return Err("a frame on an even stream".into()),
            _ => {}
        }
        let len = payload.len();
        let word = |p: &[u8]| u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        match head.kind {
            HEADERS => {
                if !self.opened.insert(id) {
                    return Err("a second HEADERS on a stream".into());
                }
                self.block = Some((id, head.flags & END_STREAM != 0, payload.to_vec()));
            }
            CONTINUATION => {
                let Some((_, _, fragment)) = &mut self.block else {
                    return Err("CONTINUATION outside a block".into());
                };
                fragment.extend_from_slice(payload);
            }
            DATA => {
                if !self.opened.contains(&id) || self.ended.contains(&id) {
                    return Err("DATA on a stream not open".into());
                }
                if head.flags & END_STREAM != 0 {
                    self.ended.insert(id);
                }
            }
            RST_STREAM if len == 4 => {
                if !self.opened.contains(&id) {
                    return Err("RST_STREAM on a stream never opened".into());
                }
                self.ended.insert(id);
            }
            WINDOW_UPDATE if len == 4 => {
                let increment = word(payload) & frame::LAST_STREAM_ID;
                if increment == 0 {
                    return Err("a WINDOW_UPDATE of 0".into());
                }
                if id != 0 && !self.opened.contains(&id) {
                    return Err("WINDOW_UPDATE on a stream never opened".into());
                }
            }
            SETTINGS if head.flags & ACK != 0 && len == 0 => {}
            SETTINGS if head.flags & ACK == 0 && len.is_multiple_of(6) => {}
            PING if head.flags & ACK != 0 && len == 8 => {}
            GOAWAY if len == 8 => self.goaway = Some(word(&payload[4..])),
            _ => return Err("a frame of an unknown type or a wrong size".into()),
        }
        if matches!(head.kind, HEADERS | CONTINUATION) && head.flags & END_HEADERS != 0 {
            let (id, end, fragment) = self.block.take().expect("a block under way");
            let fields = self
                .decoder
                .decode(&fragment)
                .map_err(|e| format!("HPACK: {e:?}"))?;
            if end {
                self.ended.insert(id);
            }
            self.blocks.push((id, fields));
        }
        Ok(())
    }
}
