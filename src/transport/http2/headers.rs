//! Header blocks from the server: assembled over HEADERS and CONTINUATION frames (6.2, 6.10),
//! decoded with HPACK (the `loona-hpack` crate: Huffman and the dynamic table).
//!
//! Why apart: a block is decoded whatever stream it belongs to, since the decoder's table
//! must follow every block, and the cap on a block's size (the "CONTINUATION flood") is a
//! rule of its own.

use bytes::BytesMut;

use super::frame::{COMPRESSION_ERROR, Fault};
use super::hpack::TABLE_SIZE;

/// What a response's header block said, of what a gRPC client reads.
pub use crate::protocol::header::ResponseFields as Fields;

/// The largest header block accepted over HEADERS and CONTINUATIONs: a server that sends more
/// is broken or hostile (the "CONTINUATION flood").
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// A header block being received over HEADERS and CONTINUATION frames.
pub(super) struct Block {
    /// Its stream.
    pub id: u32,
    /// Its HEADERS frame ended the stream.
    pub end_stream: bool,
    /// The fragments so far.
    pub fragment: BytesMut,
}

impl Block {
    /// Adds a CONTINUATION's fragment, within [`MAX_HEADER_BLOCK`].
    pub fn extend(&mut self, fragment: &[u8]) -> Result<(), Fault> {
        if self.fragment.len() + fragment.len() > MAX_HEADER_BLOCK {
            return Err(Fault::protocol(&format!(
                "a header block over {MAX_HEADER_BLOCK} bytes"
            )));
        }
        self.fragment.extend_from_slice(fragment);
        Ok(())
    }
}

/// The decoder of the server's header blocks.
pub(super) fn decoder() -> loona_hpack::Decoder<'static> {
    let mut decoder = loona_hpack::Decoder::new();
    // The server's encoder may use up to HTTP/2's default table size: we do not change it.
    decoder.set_max_allowed_table_size(TABLE_SIZE);
    decoder
}

/// Decodes a whole block; a block HPACK cannot decode is a connection error (4.3).
pub(super) fn decode(
    decoder: &mut loona_hpack::Decoder<'static>,
    block: &[u8],
) -> Result<Fields, Fault> {
    let mut fields = Fields::default();
    decoder
        .decode_with_cb(block, |name, value| fields.add(&name, &value))
        .map_err(|e| {
            let why = format!("a header block HPACK cannot decode: {e:?}");
            Fault::coded(COMPRESSION_ERROR, "COMPRESSION_ERROR", &why)
        })?;
    Ok(fields)
}
