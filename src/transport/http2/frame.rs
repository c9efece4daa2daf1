//! HTTP/2 frames (RFC 9113 4 and 6): the frame header, the types, flags, error codes and
//! settings this client knows, the frames it writes, and the splitting of the read buffer
//! into typed frames.
//!
//! Why a module of its own: what a frame *is* does not depend on what the connection does
//! with it, so the codec is read, and tested, without any connection state (as h2's `frame`
//! module, or mini-redis's `frame.rs`, which knows nothing of its connection). Splitting is
//! in two steps so that the connection can check a frame's place (a frame inside a header
//! block, a stream frame on a stream never opened) before its payload, in that order: [`split`]
//! cuts a whole frame off the buffer, [`Frame::decode`] checks its payload and types it. No
//! payload is copied: DATA and header fragments are the read buffer's own bytes.

use bytes::{Buf, BufMut, BytesMut};

/// The client's connection preface (3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest frame we accept: HTTP/2's default, SETTINGS_MAX_FRAME_SIZE is not raised.
pub const MAX_FRAME: usize = 16_384;
/// The size of a frame header.
pub const HEAD: usize = 9;
/// The initial window of a stream and of the connection (6.9.2).
pub const DEFAULT_WINDOW: i64 = 65_535;
/// The largest window a peer may open (6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;
/// The largest stream id (5.1.1), also the mask of a 31-bit field.
pub const LAST_STREAM_ID: u32 = (1 << 31) - 1;

// Frame types (6), flags, error codes (7) and settings (6.5.2): the ones this client uses.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

/// The server broke the protocol.
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
/// The server did not process the stream (8.7).
pub const REFUSED_STREAM: u32 = 0x7;
/// The stream is no longer needed: what an attempt dropped before its end sends.
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;

pub const HEADER_TABLE_SIZE: u16 = 0x1;
pub const ENABLE_PUSH: u16 = 0x2;
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const MAX_FRAME_SIZE: u16 = 0x5;

/// A connection error (5.4.1): the code to send in GOAWAY if the server broke the protocol
/// (none if the socket failed), and what happened.
#[derive(Debug)]
pub struct Fault {
    /// The error code for GOAWAY; `None` for an I/O failure.
    pub code: Option<u32>,
    /// What happened, with the code's name.
    pub why: String,
}

impl Fault {
    /// The socket failed or closed.
    pub fn io(why: String) -> Self {
        Self { code: None, why }
    }

    /// PROTOCOL_ERROR.
    pub fn protocol(why: &str) -> Self {
        Self::coded(PROTOCOL_ERROR, "PROTOCOL_ERROR", why)
    }

    /// FRAME_SIZE_ERROR.
    pub fn frame_size(why: &str) -> Self {
        Self::coded(FRAME_SIZE_ERROR, "FRAME_SIZE_ERROR", why)
    }

    /// FLOW_CONTROL_ERROR.
    pub fn flow_control(why: &str) -> Self {
        Self::coded(FLOW_CONTROL_ERROR, "FLOW_CONTROL_ERROR", why)
    }

    /// An error with `code`, whose name is `name`.
    pub fn coded(code: u32, name: &str, why: &str) -> Self {
        Self {
            code: Some(code),
            why: format!("{why} ({name})"),
        }
    }
}

/// A frame header (4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The payload's length.
    pub len: usize,
    /// The frame type.
    pub kind: u8,
    /// The flags.
    pub flags: u8,
    /// The stream id, its reserved bit cleared.
    pub id: u32,
}

impl Head {
    /// The header at the start of `bytes`, if 9 bytes are there.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let b = bytes.get(..HEAD)?;
        Some(Self {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & LAST_STREAM_ID,
        })
    }

    /// A frame type that belongs to a stream (never stream 0).
    #[inline]
    pub fn on_stream(&self) -> bool {
        matches!(self.kind, DATA | HEADERS | RST_STREAM | CONTINUATION)
    }

    /// A frame type that belongs to the connection (stream 0 only).
    #[inline]
    pub fn on_connection(&self) -> bool {
        matches!(self.kind, SETTINGS | PING | GOAWAY)
    }
}

/// Cuts the next whole frame off `read`: its header and payload, or `None` while it has not
/// all arrived. A frame longer than [`MAX_FRAME`] is refused as soon as its header is there.
#[inline]
pub fn split(read: &mut BytesMut) -> Result<Option<(Head, BytesMut)>, Fault> {
    let Some(head) = Head::parse(read) else {
        return Ok(None);
    };
    if head.len > MAX_FRAME {
        let why = format!("a {}-byte frame, over the {MAX_FRAME} allowed", head.len);
        return Err(Fault::frame_size(&why));
    }
    if read.len() < HEAD + head.len {
        return Ok(None);
    }
    let mut frame = read.split_to(HEAD + head.len);
    frame.advance(HEAD);
    Ok(Some((head, frame)))
}

/// A frame from the server, its payload checked.
#[derive(Debug)]
pub enum Frame {
    /// DATA: the payload without padding, and the length flow control counts (padding
    /// included).
    Data {
        /// The stream.
        id: u32,
        /// END_STREAM.
        end_stream: bool,
        /// The data.
        data: BytesMut,
        /// The frame's whole payload length.
        flow: u32,
    },
    /// HEADERS: the first fragment of a header block, without padding and priority.
    Headers {
        /// The stream.
        id: u32,
        /// END_STREAM.
        end_stream: bool,
        /// END_HEADERS.
        end_headers: bool,
        /// The block fragment.
        fragment: BytesMut,
    },
    /// CONTINUATION: a further fragment of a header block.
    Continuation {
        /// The stream.
        id: u32,
        /// END_HEADERS.
        end_headers: bool,
        /// The block fragment.
        fragment: BytesMut,
    },
    /// RST_STREAM.
    Reset {
        /// The stream.
        id: u32,
        /// The error code.
        code: u32,
    },
    /// SETTINGS (not an acknowledgement): its parameters, see [`Frame::settings`].
    Settings(BytesMut),
    /// A PING to acknowledge, with its 8 bytes.
    Ping(BytesMut),
    /// GOAWAY: the last stream id the server may have processed.
    GoAway {
        /// The last stream id.
        last: u32,
    },
    /// WINDOW_UPDATE.
    WindowUpdate {
        /// The stream, or 0 for the connection.
        id: u32,
        /// The increment (possibly 0, which the connection refuses).
        increment: u32,
    },
    /// PUSH_PROMISE (which this client disabled).
    PushPromise,
    /// SETTINGS acknowledged, PRIORITY, and frame types this client does not know.
    Ignored,
}

impl Frame {
    /// Types the frame of `head` and checks its payload's length and padding.
    #[inline]
    pub fn decode(head: Head, mut payload: BytesMut) -> Result<Self, Fault> {
        let (id, flags, len) = (head.id, head.flags, head.len);
        Ok(match head.kind {
            DATA => Frame::Data {
                id,
                end_stream: flags & END_STREAM != 0,
                flow: len as u32,
                data: unpad(flags, payload)?,
            },
            HEADERS => {
                let mut fragment = unpad(flags, payload)?;
                if flags & PRIORITY_FLAG != 0 {
                    if fragment.len() < 5 {
                        return Err(Fault::frame_size(
                            "a HEADERS frame too short for its priority",
                        ));
                    }
                    fragment.advance(5);
                }
                Frame::Headers {
                    id,
                    end_stream: flags & END_STREAM != 0,
                    end_headers: flags & END_HEADERS != 0,
                    fragment,
                }
            }
            CONTINUATION => Frame::Continuation {
                id,
                end_headers: flags & END_HEADERS != 0,
                fragment: payload,
            },
            RST_STREAM if len == 4 => Frame::Reset {
                id,
                code: payload.get_u32(),
            },
            SETTINGS if flags & ACK != 0 && len != 0 => {
                return Err(Fault::frame_size(
                    "a SETTINGS acknowledgement with a payload",
                ));
            }
            SETTINGS if flags & ACK == 0 => {
                if !len.is_multiple_of(6) {
                    return Err(Fault::frame_size(
                        "a SETTINGS frame not a multiple of 6 bytes",
                    ));
                }
                Frame::Settings(payload)
            }
            PING if flags & ACK == 0 && len == 8 => Frame::Ping(payload),
            GOAWAY if len >= 8 => Frame::GoAway {
                last: payload.get_u32() & LAST_STREAM_ID,
            },
            WINDOW_UPDATE if len == 4 => Frame::WindowUpdate {
                id,
                increment: payload.get_u32() & LAST_STREAM_ID,
            },
            PUSH_PROMISE => Frame::PushPromise,
            // An acknowledgement of a PING is refused like a PING of the wrong size: this
            // client sends no PING, so none can be acknowledged.
            RST_STREAM | PING | GOAWAY | WINDOW_UPDATE => {
                let why = format!("a type {} frame of {len} bytes", head.kind);
                return Err(Fault::frame_size(&why));
            }
            _ => Frame::Ignored,
        })
    }

    /// The parameters of a SETTINGS payload: (identifier, value).
    pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
        payload.chunks_exact(6).map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
            )
        })
    }
}

/// A frame's payload without its padding (6.1, 6.2).
#[inline]
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

// === Frames this client writes ===

/// A frame header.
#[inline]
pub fn head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, id: u32) {
    out.put_uint(len as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(id);
}

/// The client's preface (3.4) with `settings` (identifier, value) and a WINDOW_UPDATE that
/// opens the connection's window by `increment`.
pub fn hello(out: &mut Vec<u8>, settings: &[(u16, u32)], increment: u32) {
    out.extend_from_slice(PREFACE);
    head(out, 6 * settings.len(), SETTINGS, 0, 0);
    for &(key, value) in settings {
        out.put_u16(key);
        out.put_u32(value);
    }
    window_update(out, 0, increment);
}

/// RST_STREAM (6.4).
#[inline]
pub fn rst_stream(out: &mut Vec<u8>, id: u32, code: u32) {
    head(out, 4, RST_STREAM, 0, id);
    out.put_u32(code);
}

/// WINDOW_UPDATE (6.9).
#[inline]
pub fn window_update(out: &mut Vec<u8>, id: u32, increment: u32) {
    head(out, 4, WINDOW_UPDATE, 0, id);
    out.put_u32(increment);
}

/// SETTINGS with ACK (6.5.3).
pub fn settings_ack(out: &mut Vec<u8>) {
    head(out, 0, SETTINGS, ACK, 0);
}

/// PING with ACK, echoing the PING's 8 bytes (6.7).
pub fn ping_ack(out: &mut Vec<u8>, payload: &[u8]) {
    head(out, payload.len(), PING, ACK, 0);
    out.extend_from_slice(payload);
}

/// GOAWAY (6.8) with the last stream id of the server's that was processed (none: the server
/// opens no stream), and `code`.
pub fn goaway(out: &mut Vec<u8>, code: u32) {
    head(out, 8, GOAWAY, 0, 0);
    out.put_u32(0);
    out.put_u32(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, id: u32, payload: &[u8]) -> BytesMut {
        let mut out = Vec::new();
        head(&mut out, payload.len(), kind, flags, id);
        out.extend_from_slice(payload);
        BytesMut::from(&out[..])
    }

    /// A frame is cut off only once whole; a header announcing more than 16 KiB is refused
    /// before its payload arrives; the reserved bit of the stream id is cleared.
    #[test]
    fn frames_are_split_off_whole_and_oversized_ones_refused_early() {
        let mut read = frame(DATA, END_STREAM, 0x8000_0003, b"abc");
        let whole = read.split_off(0);
        read.extend_from_slice(&whole[..10]);
        assert!(split(&mut read).unwrap().is_none());
        read.extend_from_slice(&whole[10..]);
        let (head, payload) = split(&mut read).unwrap().unwrap();
        assert_eq!(
            (head.kind, head.flags, head.id, head.len),
            (DATA, END_STREAM, 3, 3)
        );
        assert_eq!(&payload[..], b"abc");
        assert!(read.is_empty());
        let mut big = BytesMut::from(&[0x00, 0x40, 0x01, DATA, 0, 0, 0, 0, 1][..]);
        let fault = split(&mut big).unwrap_err();
        assert_eq!(fault.code, Some(FRAME_SIZE_ERROR));
    }

    /// Padding is removed and counted for flow control; padding that fills its frame, and
    /// fixed-size frames of the wrong size, are connection errors.
    #[test]
    fn payloads_are_checked_and_typed() {
        let decode = |kind, flags, payload: &[u8]| {
            let f = frame(kind, flags, 1, payload);
            let mut read = f;
            let (head, payload) = split(&mut read).unwrap().unwrap();
            Frame::decode(head, payload)
        };
        let Frame::Data { data, flow, .. } = decode(DATA, PADDED, b"\x02ab\0\0").unwrap() else {
            panic!()
        };
        assert_eq!((&data[..], flow), (&b"ab"[..], 5));
        let padding = decode(DATA, PADDED, b"\x03\0\0").unwrap_err();
        assert_eq!(padding.code, Some(PROTOCOL_ERROR));
        for (kind, flags, payload) in [
            (RST_STREAM, 0, &b"abc"[..]),
            (WINDOW_UPDATE, 0, b"abcde"),
            (PING, 0, b"1234567"),
            (PING, ACK, b"12345678"),
            (GOAWAY, 0, b"1234567"),
            (SETTINGS, 0, b"12345"),
            (SETTINGS, ACK, b"123456"),
            (HEADERS, PRIORITY_FLAG, b"1234"),
        ] {
            let fault = decode(kind, flags, payload).unwrap_err();
            assert_eq!(fault.code, Some(FRAME_SIZE_ERROR), "type {kind}");
        }
        let Frame::Headers { fragment, .. } =
            decode(HEADERS, PRIORITY_FLAG | END_HEADERS, b"\0\0\0\x01\x10\x88").unwrap()
        else {
            panic!()
        };
        assert_eq!(&fragment[..], [0x88]);
        let settings = [0, 3, 0, 0, 0, 9, 0, 4, 0, 1, 0, 0];
        assert_eq!(
            Frame::settings(&settings).collect::<Vec<_>>(),
            [(3, 9), (4, 65_536)]
        );
    }
}
