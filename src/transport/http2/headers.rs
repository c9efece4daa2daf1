//! Header blocks from the server: assembled over HEADERS and CONTINUATION frames (6.2, 6.10),
//! decoded with HPACK (the `loona-hpack` crate: Huffman and the dynamic table), and handed up
//! raw, as a [`HeaderBlock`] of names and values as received.
//!
//! Why raw: what the fields mean is the caller's business (gRPC reads `grpc-status` and
//! pushback in `transport::grpc`); HTTP/2 itself reads only `:status`, to skip 1xx responses.
//! A block is decoded whatever stream it belongs to, since the decoder's table must follow
//! every block, into a buffer that a stream still there takes whole (one allocation per
//! block; a block for a stream that is gone leaves it to the next). Two caps bound what a server can make this client hold:
//! the encoded block (the "CONTINUATION flood") and the decoded list, since a few bytes of
//! HPACK can name a 4 KiB table entry again and again.

use bytes::BytesMut;

use super::frame::{COMPRESSION_ERROR, Fault};
use super::hpack::TABLE_SIZE;

/// The largest header block accepted over HEADERS and CONTINUATIONs: a server that sends more
/// is broken or hostile (the "CONTINUATION flood").
pub const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// The largest decoded header list kept, measured as SETTINGS_MAX_HEADER_LIST_SIZE measures
/// it (6.5.2: names, values and 32 bytes per field); a block over it resets its stream.
pub const MAX_HEADER_LIST: usize = 1024 * 1024;
/// The capacity a block starts with: a gRPC response's head or trailers fit in it.
const BLOCK: usize = 256;
/// A decoding buffer larger than this after a large block (not handed over: its stream was
/// gone) is let go.
const SCRATCH: usize = 16 * 1024;

/// A header block as the server sent it: its fields' names and values as decoded, in order,
/// in one allocation (each field is its name's and value's lengths, then their bytes).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderBlock {
    bytes: Vec<u8>,
}

impl HeaderBlock {
    /// The fields, in order: (name, value).
    #[inline]
    pub fn iter(&self) -> HeaderFields<'_> {
        HeaderFields { rest: &self.bytes }
    }

    /// The value of the first field named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|&(n, _)| n == name).map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for &'a HeaderBlock {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = HeaderFields<'a>;

    #[inline]
    fn into_iter(self) -> HeaderFields<'a> {
        self.iter()
    }
}

impl std::fmt::Debug for HeaderBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (text(n), text(v))))
            .finish()
    }
}

/// The fields of a [`HeaderBlock`].
#[derive(Debug, Clone)]
pub struct HeaderFields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for HeaderFields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (lengths, rest) = self.rest.split_first_chunk::<8>()?;
        let name = u32::from_be_bytes([lengths[0], lengths[1], lengths[2], lengths[3]]);
        let value = u32::from_be_bytes([lengths[4], lengths[5], lengths[6], lengths[7]]);
        let (name, rest) = rest.split_at(name as usize);
        let (value, rest) = rest.split_at(value as usize);
        self.rest = rest;
        Some((name, value))
    }
}

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

/// The server's header blocks, decoded.
pub(super) struct Decoder {
    hpack: loona_hpack::Decoder<'static>,
    /// The last block's fields, laid out as a [`HeaderBlock`]'s, handed over whole (the
    /// allocation moves with it) if its stream takes it.
    fields: Vec<u8>,
    /// The last block's list size (6.5.2).
    size: usize,
    /// The last block's `:status` (the last one, if several) is 1xx.
    informational: bool,
}

/// Whether a `:status` value reads as a 1xx code.
#[inline]
fn informational(status: &[u8]) -> bool {
    if let &[first, second, third] = status {
        // Three digits, the usual form, read without parsing a string.
        return first == b'1' && second.is_ascii_digit() && third.is_ascii_digit();
    }
    let code = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.parse::<u16>().ok());
    code.is_some_and(|c| (100..200).contains(&c))
}

impl Decoder {
    /// A decoder with HTTP/2's default table.
    pub fn new() -> Self {
        let mut hpack = loona_hpack::Decoder::new();
        // The server's encoder may use up to HTTP/2's default table size: we do not change it.
        hpack.set_max_allowed_table_size(TABLE_SIZE);
        Self {
            hpack,
            fields: Vec::with_capacity(BLOCK),
            size: 0,
            informational: false,
        }
    }

    /// Decodes a whole block; a block HPACK cannot decode is a connection error (4.3).
    /// Fields past [`MAX_HEADER_LIST`] are decoded (the table follows them) but not kept.
    pub fn decode(&mut self, block: &[u8]) -> Result<(), Fault> {
        if self.fields.capacity() > SCRATCH {
            self.fields = Vec::with_capacity(BLOCK);
        }
        self.fields.clear();
        (self.size, self.informational) = (0, false);
        let (fields, size, status) = (&mut self.fields, &mut self.size, &mut self.informational);
        self.hpack
            .decode_with_cb(block, |name, value| {
                *size = size.saturating_add(name.len() + value.len() + 32);
                if *name == *b":status" {
                    *status = informational(&value);
                }
                if *size <= MAX_HEADER_LIST {
                    let mut lengths = [0u8; 8];
                    lengths[..4].copy_from_slice(&(name.len() as u32).to_be_bytes());
                    lengths[4..].copy_from_slice(&(value.len() as u32).to_be_bytes());
                    fields.extend_from_slice(&lengths);
                    fields.extend_from_slice(&name);
                    fields.extend_from_slice(&value);
                }
            })
            .map_err(|e| {
                let why = format!("a header block HPACK cannot decode: {e:?}");
                Fault::coded(COMPRESSION_ERROR, "COMPRESSION_ERROR", &why)
            })
    }

    /// Whether the last block was within [`MAX_HEADER_LIST`].
    #[inline]
    pub fn within_limit(&self) -> bool {
        self.size <= MAX_HEADER_LIST
    }

    /// Whether the last block is an informational response's head (1xx, 8.1).
    #[inline]
    pub fn informational(&self) -> bool {
        self.informational
    }

    /// The last block, its allocation handed over (the next block gets a new one).
    #[inline]
    pub fn block(&mut self) -> HeaderBlock {
        HeaderBlock {
            bytes: std::mem::replace(&mut self.fields, Vec::with_capacity(BLOCK)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut encoder = loona_hpack::Encoder::new();
        encoder.encode(fields.iter().map(|&(n, v)| (n, v)))
    }

    /// A block comes up as sent: every field, repeated names included, in order; `:status`
    /// of 1xx is what makes a head informational.
    #[test]
    fn blocks_are_handed_up_raw_and_in_order() {
        let mut decoder = Decoder::new();
        let sent: [(&[u8], &[u8]); 4] = [
            (b":status", b"200"),
            (b"grpc-retry-pushback-ms", b"10"),
            (b"grpc-retry-pushback-ms", b"20"),
            (b"empty", b""),
        ];
        decoder.decode(&encode(&sent)).unwrap();
        assert!(decoder.within_limit() && !decoder.informational());
        let block = decoder.block();
        assert_eq!(block.iter().collect::<Vec<_>>(), sent);
        assert_eq!(block.get(b"grpc-retry-pushback-ms"), Some(&b"10"[..]));
        assert_eq!(block.get(b"grpc-status"), None);
        decoder.decode(&encode(&[(b":status", b"103")])).unwrap();
        assert!(decoder.informational());
        for (status, informational) in [(&b"100"[..], true), (b"0199", true), (b"1x0", false)] {
            decoder.decode(&encode(&[(b":status", status)])).unwrap();
            assert_eq!(decoder.informational(), informational, "{status:?}");
        }
        decoder.decode(&[]).unwrap();
        assert_eq!(decoder.block(), HeaderBlock::default());
    }

    /// RFC 9113 10.5.1 (and 6.5.2's measure): a few bytes naming a 4 KiB table entry again
    /// and again decode to more than [`MAX_HEADER_LIST`]; the table still follows the block,
    /// the fields are not kept.
    #[test]
    fn a_block_that_decodes_to_too_much_is_not_kept() {
        let mut decoder = Decoder::new();
        let big = vec![b'x'; 4000];
        // Literal with incremental indexing, new name: the entry is index 62.
        let mut block = encode(&[(b"big", &big)]);
        block.extend(std::iter::repeat_n(0x80 | 62, MAX_HEADER_LIST / 4000 + 1));
        decoder.decode(&block).unwrap();
        assert!(!decoder.within_limit());
        decoder.decode(&[0x80 | 62]).unwrap();
        assert!(decoder.within_limit());
        assert_eq!(decoder.block().get(b"big"), Some(&big[..]));
    }
}
