//! The request side of HPACK (RFC 7541): the encoder of this client's header blocks.
//!
//! Why its own encoder: a request's block is a few constant fields and a few per-attempt ones,
//! so a handful of dynamic-table entries make most of it one byte per field: the fields that
//! never change (path, authority, content type) and the first value of each per-attempt field,
//! so that later requests name its header by index (6.2) and carry only the value. Strings are
//! sent as they are (no Huffman: the values are short and mostly indexed). The table is kept
//! within the server's SETTINGS_HEADER_TABLE_SIZE; a smaller size is signalled at the start of
//! the next block, the smallest first if it changed more than once (4.2, 6.3).
//!
//! Decoding the server's blocks stays with the `loona-hpack` crate (Huffman and the dynamic
//! table), in [`super::headers`].

use bytes::BufMut;

/// HTTP/2's default table size, and the most this encoder's table uses whatever the server
/// allows.
pub const TABLE_SIZE: usize = 4_096;

/// A header field to send: name (lower case), value, and whether it is constant (every value
/// worth a dynamic-table entry; a per-attempt field's first value gets one too, for its name).
pub type Field<'a> = (&'a [u8], &'a [u8], bool);

/// An HPACK integer (5.1) with a `bits`-bit prefix, after the bits of `first`.
pub fn int(out: &mut Vec<u8>, bits: u8, first: u8, mut value: usize) {
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

/// An HPACK string literal, not Huffman-coded (5.2).
fn string(out: &mut Vec<u8>, s: &[u8]) {
    int(out, 7, 0, s.len());
    out.extend_from_slice(s);
}

/// Names of the static table (Appendix A) this encoder refers to.
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
pub struct Encoder {
    /// Oldest first (the newest has index 62).
    pub(super) entries: Vec<Entry>,
    /// The table's size as RFC 7541 4.1 counts it (32 bytes more per entry).
    used: usize,
    /// The most the table may hold: the server's setting, at most [`TABLE_SIZE`].
    pub(super) limit: usize,
    /// Sizes to signal at the start of the next block: the smallest since the last block,
    /// and the one now (4.2).
    size_update: Option<(usize, usize)>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder with an empty table of HTTP/2's default size.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            used: 0,
            limit: TABLE_SIZE,
            size_update: None,
        }
    }

    /// The server's SETTINGS_HEADER_TABLE_SIZE: the table is kept within it.
    pub fn set_max(&mut self, max: usize) {
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

    /// A request's header block: `:method POST`, `:scheme http` (`https` over TLS), `:path`,
    /// `:authority`, then `fields`.
    pub fn block(
        &mut self,
        out: &mut Vec<u8>,
        https: bool,
        path: &[u8],
        authority: &[u8],
        fields: &[Field],
    ) {
        if let Some((smallest, now)) = self.size_update.take() {
            int(out, 5, 0x20, smallest);
            if now != smallest {
                int(out, 5, 0x20, now);
            }
        }
        out.put_u8(0x83); // :method POST
        out.put_u8(if https { 0x87 } else { 0x86 }); // :scheme https or http
        self.field(out, b":path", path, true);
        self.field(out, b":authority", authority, true);
        for &(name, value, constant) in fields {
            self.field(out, name, value, constant);
        }
    }

    fn field(&mut self, out: &mut Vec<u8>, name: &[u8], value: &[u8], constant: bool) {
        let found = self
            .entries
            .iter()
            .position(|(n, v)| **n == *name && **v == *value);
        if let Some(pos) = found {
            int(out, 7, 0x80, 62 + self.entries.len() - 1 - pos);
            return;
        }
        // The name by index where a table has it: the static table, or an entry of ours
        // (6.2). A server then takes the name from its table instead of parsing and copying
        // it from every block.
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
            Some(i) => int(out, bits, first, i),
            None => {
                out.put_u8(first);
                string(out, name);
            }
        }
        string(out, value);
        if index {
            self.entries.push((name.into(), value.into()));
            self.used += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::super::Request;

    fn request(path: &'static [u8], body: Bytes) -> Request<'static> {
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

    /// A request's header block.
    fn encode(encoder: &mut Encoder, out: &mut Vec<u8>, request: &Request<'_>) {
        encoder.block(
            out,
            request.https,
            request.path,
            request.authority,
            request.fields,
        );
    }

    /// RFC 7541 4.2: a table size lowered and raised again between two blocks is signalled
    /// as the smallest, then the last.
    #[test]
    fn a_table_size_lowered_and_raised_is_signalled_smallest_first() {
        let mut encoder = Encoder::new();
        let mut block = Vec::new();
        encode(&mut encoder, &mut block, &request(b"/x", Bytes::new()));
        assert!(!encoder.entries.is_empty());
        encoder.set_max(0);
        encoder.set_max(8192);
        assert!(encoder.entries.is_empty(), "evicted at size 0");
        let mut next = Vec::new();
        encode(&mut encoder, &mut next, &request(b"/x", Bytes::new()));
        // 0, then 4096 (this encoder's most) in a 5-bit prefix: 31 + 4065.
        assert_eq!(next[..4], [0x20, 0x3f, 0xe1, 0x1f]);
    }

    /// HPACK integers across their prefix (RFC 7541 C.1), and the constant fields indexed
    /// once: a second identical request's block is a few bytes.
    #[test]
    fn hpack_integers_and_indexed_constant_fields() {
        let int = |bits, value| {
            let mut out = Vec::new();
            int(&mut out, bits, 0, value);
            out
        };
        assert_eq!(int(5, 10), [10]);
        assert_eq!(int(5, 1337), [31, 154, 10]);
        assert_eq!(int(8, 42), [42]);
        let mut encoder = Encoder::new();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        encode(
            &mut encoder,
            &mut first,
            &request(b"/resilbench.v1.Backend/Call", Bytes::new()),
        );
        encode(
            &mut encoder,
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

    /// Over TLS the scheme is `https` (static index 7), else `http` (6).
    #[test]
    fn the_scheme_follows_the_connection() {
        let mut decoder = loona_hpack::Decoder::new();
        for (https, scheme) in [(false, "http"), (true, "https")] {
            let mut out = Vec::new();
            Encoder::new().block(&mut out, https, b"/p", b"a", &[]);
            let fields = decoder.decode(&out).unwrap();
            assert_eq!(fields[1], (b":scheme".to_vec(), scheme.as_bytes().to_vec()));
        }
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
                https: false,
                fields: &fields,
                body: Bytes::new(),
                end: true,
            };
            let mut out = Vec::new();
            encode(encoder, &mut out, &request);
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

    /// One step of the property test: a request (its path and authority chosen among a few,
    /// fields by name index, value and constancy), or the server's SETTINGS_HEADER_TABLE_SIZE.
    #[derive(Debug, Clone)]
    enum Step {
        Request(u8, u8, Vec<(u8, Vec<u8>, bool)>),
        TableSize(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        let value = prop_oneof![
            4 => vec(any::<u8>(), 0..12),
            1 => vec(any::<u8>(), 0..5000),
        ];
        let field = (0u8..6, value, any::<bool>());
        let size = prop_oneof![Just(0usize), Just(4096), 0usize..300, 0usize..10_000];
        prop_oneof![
            4 => (0u8..3, 0u8..2, vec(field, 0..6)).prop_map(|(p, a, f)| Step::Request(p, a, f)),
            1 => size.prop_map(Step::TableSize),
        ]
    }

    /// The dynamic table size updates at the start of a block (RFC 7541 6.3).
    fn size_updates(mut block: &[u8]) -> Vec<usize> {
        let mut sizes = Vec::new();
        while let Some(&first) = block.first().filter(|&&b| b & 0xe0 == 0x20) {
            let mut value = usize::from(first & 0x1f);
            let mut used = 1;
            if value == 31 {
                let mut shift = 0;
                loop {
                    let b = block[used];
                    used += 1;
                    value += usize::from(b & 0x7f) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
            }
            sizes.push(value);
            block = &block[used..];
        }
        sizes
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Against loona-hpack's decoder, as a server's: every block decodes to the fields
        /// sent, whatever the server's SETTINGS_HEADER_TABLE_SIZE did in between (its decoder
        /// refuses a size update above the setting), and a change of the table's size is
        /// signalled at the start of the next block, the smallest since the last block first
        /// (RFC 7541 4.2).
        #[test]
        fn every_block_decodes_to_what_was_sent(steps in vec(step(), 1..40)) {
            const NAMES: [&[u8]; 6] =
                [b"content-type", b"user-agent", b"te", b"grpc-timeout", b"x-a", b"x-b"];
            const PATHS: [&[u8]; 3] = [b"/a", b"/resilbench.v1.Backend/Call", b""];
            const AUTHORITIES: [&[u8]; 2] = [b"127.0.0.1:50051", b"a"];
            let mut encoder = Encoder::new();
            let mut decoder = loona_hpack::Decoder::new();
            decoder.set_max_allowed_table_size(TABLE_SIZE);
            // The table's size (the server's setting, at most 4 KiB), and the smallest it
            // changed to since the last block.
            let (mut now, mut least) = (TABLE_SIZE, None::<usize>);
            for step in steps {
                let (path, authority, fields) = match step {
                    Step::TableSize(size) => {
                        encoder.set_max(size);
                        decoder.set_max_allowed_table_size(size);
                        if size.min(TABLE_SIZE) != now {
                            now = size.min(TABLE_SIZE);
                            least = Some(least.map_or(now, |l| l.min(now)));
                        }
                        continue;
                    }
                    Step::Request(p, a, f) => {
                        (PATHS[usize::from(p)], AUTHORITIES[usize::from(a)], f)
                    }
                };
                let fields: Vec<Field> =
                    fields.iter().map(|(n, v, c)| (NAMES[usize::from(*n)], &v[..], *c)).collect();
                let mut block = Vec::new();
                encoder.block(&mut block, false, path, authority, &fields);
                let expected: Vec<(Vec<u8>, Vec<u8>)> = [
                    (&b":method"[..], &b"POST"[..]),
                    (b":scheme", b"http"),
                    (b":path", path),
                    (b":authority", authority),
                ]
                .into_iter()
                .chain(fields.iter().map(|&(n, v, _)| (n, v)))
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect();
                let decoded = decoder.decode(&block);
                prop_assert_eq!(decoded.as_ref().ok(), Some(&expected), "{:?}", decoded);
                let updates = size_updates(&block);
                let wanted = match least.take() {
                    None => vec![],
                    Some(least) if least < now => vec![least, now],
                    Some(_) => vec![now],
                };
                prop_assert_eq!(updates, wanted);
                prop_assert!(encoder.used <= encoder.limit);
            }
        }
    }
}
