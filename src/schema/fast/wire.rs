//! Protobuf's wire format as the per-call encoder writes it: varints, ZigZag, fixed
//! little-endian numbers, field keys and length-prefixed records
//! (protobuf.dev/programming-guides/encoding, "Base 128 Varints", "Signed Integers",
//! "Non-varint Numbers", "Length-Delimited Records" and its "Condensed Reference Card").

use bytes::BufMut;
use prost_reflect::Kind;

pub(super) const VARINT: u32 = 0;
pub(super) const I64: u32 = 1;
pub(super) const LEN: u32 = 2;
pub(super) const I32: u32 = 5;

/// How an integer-valued field is written (protobuf's scalar types).
#[derive(Debug, Clone, Copy)]
pub(super) enum Number {
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Double,
}

impl Number {
    /// The type of a field `{{call}}` or `{{int}}` can fill (not `float`: an integer rounded
    /// to 32 bits may not be what the JSON parser rounds it to).
    pub(super) fn of(kind: &Kind) -> Option<Self> {
        Some(match kind {
            Kind::Int32 => Self::Int32,
            Kind::Int64 => Self::Int64,
            Kind::Uint32 => Self::Uint32,
            Kind::Uint64 => Self::Uint64,
            Kind::Sint32 => Self::Sint32,
            Kind::Sint64 => Self::Sint64,
            Kind::Fixed32 => Self::Fixed32,
            Kind::Fixed64 => Self::Fixed64,
            Kind::Sfixed32 => Self::Sfixed32,
            Kind::Sfixed64 => Self::Sfixed64,
            Kind::Double => Self::Double,
            _ => return None,
        })
    }

    /// Its wire type.
    pub(super) fn wire(self) -> u32 {
        match self {
            Self::Fixed32 | Self::Sfixed32 => I32,
            Self::Fixed64 | Self::Sfixed64 | Self::Double => I64,
            _ => VARINT,
        }
    }

    /// Writes `v` as this type (no key: as a packed list's element), or `None` if it is out
    /// of the type's range (nothing written then).
    pub(super) fn put(self, out: &mut Vec<u8>, v: i128) -> Option<()> {
        match self {
            Self::Int32 => varint(out, i64::from(i32::try_from(v).ok()?) as u64),
            Self::Int64 => varint(out, i64::try_from(v).ok()? as u64),
            Self::Uint32 => varint(out, u64::from(u32::try_from(v).ok()?)),
            Self::Uint64 => varint(out, u64::try_from(v).ok()?),
            Self::Sint32 => {
                let v = i32::try_from(v).ok()?;
                varint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
            }
            Self::Sint64 => {
                let v = i64::try_from(v).ok()?;
                varint(out, ((v << 1) ^ (v >> 63)) as u64);
            }
            Self::Fixed32 => out.put_u32_le(u32::try_from(v).ok()?),
            Self::Sfixed32 => out.put_i32_le(i32::try_from(v).ok()?),
            Self::Fixed64 => out.put_u64_le(u64::try_from(v).ok()?),
            Self::Sfixed64 => out.put_i64_le(i64::try_from(v).ok()?),
            Self::Double => out.put_f64_le(v as f64),
        }
        Some(())
    }

    /// Writes field `number` holding `v` (key and value), or `None` if `v` is out of range.
    pub(super) fn put_field(self, out: &mut Vec<u8>, number: u32, v: i128) -> Option<()> {
        let start = out.len();
        key(out, number, self.wire());
        let written = self.put(out, v);
        if written.is_none() {
            out.truncate(start);
        }
        written
    }
}

pub(super) fn varint(out: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

pub(super) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a varint at the start of `bytes`: its value and the rest.
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

pub(super) fn key(out: &mut impl BufMut, number: u32, wire: u32) {
    varint(out, (u64::from(number) << 3) | u64::from(wire));
}

/// Writes field `number` as a length-prefixed record whose content `body` writes; the
/// content's length in bytes and what `body` returned.
pub(super) fn with_len<R>(
    out: &mut Vec<u8>,
    number: u32,
    body: impl FnOnce(&mut Vec<u8>) -> R,
) -> (usize, R) {
    key(out, number, LEN);
    // One byte for the length, which is enough below 128 bytes; moved over when not.
    let at = out.len();
    out.push(0);
    let r = body(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        varint(&mut prefix, len as u64);
        out.splice(at..at + 1, prefix);
    }
    (len, r)
}

/// `content` inside the message fields of `path`, outermost first.
pub(super) fn wrap(path: &[u32], content: &[u8], out: &mut Vec<u8>) {
    // Each level's length: its content's, plus the next level's key and length.
    let mut lens = vec![0usize; path.len()];
    let mut len = content.len();
    for i in (0..path.len()).rev() {
        lens[i] = len;
        len += varint_len(u64::from(path[i]) << 3) + varint_len(len as u64);
    }
    for (number, len) in path.iter().zip(&lens) {
        key(out, *number, LEN);
        varint(out, *len as u64);
    }
    out.extend_from_slice(content);
}

/// The value in one field's record (`record` holds nothing else): a length-prefixed
/// record's content (a packed list's elements), or a varint or fixed record's value.
pub(super) fn value_of(record: &[u8]) -> Option<&[u8]> {
    let (tag, rest) = read_varint(record)?;
    if tag & 7 == u64::from(LEN) {
        let (len, rest) = read_varint(rest)?;
        (rest.len() as u64 == len).then_some(rest)
    } else {
        Some(rest)
    }
}
