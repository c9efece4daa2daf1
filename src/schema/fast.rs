//! A templated request encoded per call without parsing it: the message without its
//! placeholders' fields is encoded once, and those fields are appended per call.
//!
//! Why this is the same message: protobuf's encoding is a sequence of fields in any order, and
//! a parser merges what it reads ("Message Structure" and "Last One Wins" in
//! protobuf.dev/programming-guides/encoding): a singular scalar field appended after the rest
//! is that field's value, and a singular message field given twice is merged. So a field whose
//! JSON value holds a placeholder is left out of the constant part and written after it, inside
//! its enclosing message fields (each written as a length-delimited field of its own, merged by
//! the reader). That holds for singular fields only: a list would gain elements out of order
//! and a map entries, so a placeholder in one (or in a well-known type, whose JSON is not its
//! fields) leaves the message to be parsed per call ([`super::request`]).
//!
//! Values written per call: a `string` field's text (literal parts and placeholders), an
//! integer or `double` field's `{{call}}` or `{{int}}`, and any plain field's `{{choice}}`,
//! each choice's encoding prepared once by prost-reflect. A proto3 field without presence is
//! left out when its value is the default, as prost-reflect leaves it out.
//! The wire format (varints, zigzag, fixed little-endian, field keys) is the encoding guide's.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};
use serde_json::{Map, Value as Json};

use super::request::{JsonTemplate, parse};
use crate::protocol::message::{MAX_MESSAGE, PREFIX};
use crate::template::{Hole, Keys, Value};

/// Marks a placeholder's place while the template's JSON is read (Unicode private use).
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The message without its placeholders' fields, encoded once, and those fields.
#[derive(Debug)]
pub struct Fields {
    constant: Bytes,
    leaves: Vec<Leaf>,
}

/// A field whose value holds placeholders.
#[derive(Debug)]
struct Leaf {
    /// The numbers of the message fields around it, from the request's own.
    path: Vec<u32>,
    /// Its number.
    number: u32,
    /// It is written even when its value is the default (proto3 `optional`, oneof members).
    presence: bool,
    value: LeafValue,
}

#[derive(Debug)]
enum LeafValue {
    /// A `string`: literal parts and placeholders.
    Text(Vec<TextPart>),
    /// An integer or `double` from `{{call}}` or `{{int}}`.
    Number(Hole, Number),
    /// A `{{choice}}`: each value's field, encoded (empty for a default left out).
    Choice(Hole, Vec<Bytes>),
}

#[derive(Debug)]
enum TextPart {
    Literal(Box<str>),
    Hole(Hole),
}

/// How an integer field is written (protobuf's scalar types).
#[derive(Debug, Clone, Copy)]
enum Number {
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

impl Fields {
    /// The fields of `json` as a `input` message, if every placeholder is in a field this can
    /// write; `None` otherwise (the message is then parsed per call).
    pub fn new(input: &MessageDescriptor, json: &JsonTemplate) -> Option<Self> {
        let holes: Vec<(&Hole, bool)> = json.holes().collect();
        // The JSON with each placeholder as a mark (inside quotes where it was bare).
        let mut marked = String::new();
        json.render_with(&mut marked, |i, _, v| {
            v.push_str(&format!("{OPEN}{i}{CLOSE}"));
        });
        let marked = quote_bare(&marked, &holes)?;
        let mut root: Json = serde_json::from_str(&marked).ok()?;
        let mut leaves = Vec::new();
        walk(
            input,
            root.as_object_mut()?,
            &mut Vec::new(),
            &holes,
            &mut leaves,
        )?;
        let constant = parse(input, &serde_json::to_string(&root).ok()?).ok()?;
        Some(Self {
            constant: constant.encode_to_vec().into(),
            leaves,
        })
    }

    /// The framed message of the call keyed by `keys`.
    pub fn framed(&self, keys: &Keys) -> Result<Bytes, String> {
        let mut out = BytesMut::with_capacity(PREFIX + self.constant.len() + 64);
        out.put_bytes(0, PREFIX);
        out.extend_from_slice(&self.constant);
        let mut scratch = Vec::new();
        for leaf in &self.leaves {
            if leaf.path.is_empty() {
                leaf.write(keys, &mut out)?;
            } else {
                scratch.clear();
                leaf.write(keys, &mut scratch)?;
                if !scratch.is_empty() {
                    wrap(&leaf.path, &scratch, &mut out);
                }
            }
        }
        let len = out.len() - PREFIX;
        if len > MAX_MESSAGE {
            return Err(format!(
                "the request encodes to {len} bytes; gRPC's limit is {MAX_MESSAGE}"
            ));
        }
        out[1..PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(out.freeze())
    }
}

/// `text` with each bare mark (one outside a JSON string) put in quotes, or `None` if the
/// template's own text holds a mark character.
fn quote_bare(text: &str, holes: &[(&Hole, bool)]) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 2 * holes.len());
    let mut rest = text;
    let mut seen = 0;
    while let Some(open) = rest.find(OPEN) {
        let close = open + rest[open..].find(CLOSE)?;
        let index: usize = rest[open + OPEN.len_utf8()..close].parse().ok()?;
        if index != seen {
            return None;
        }
        seen += 1;
        let mark = &rest[open..close + CLOSE.len_utf8()];
        out.push_str(&rest[..open]);
        if holes.get(index)?.1 {
            out.push_str(mark);
        } else {
            out.push('"');
            out.push_str(mark);
            out.push('"');
        }
        rest = &rest[close + CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    (seen == holes.len() && !rest.contains(CLOSE)).then_some(out)
}

/// Whether a JSON value holds a mark anywhere.
fn marked(value: &Json) -> bool {
    match value {
        Json::String(s) => s.contains(OPEN),
        Json::Array(items) => items.iter().any(marked),
        Json::Object(map) => map.iter().any(|(k, v)| k.contains(OPEN) || marked(v)),
        _ => false,
    }
}

/// Takes the fields holding marks out of `object` (a `message`) into `leaves`; `None` where
/// one cannot be written per call.
fn walk(
    message: &MessageDescriptor,
    object: &mut Map<String, Json>,
    path: &mut Vec<u32>,
    holes: &[(&Hole, bool)],
    leaves: &mut Vec<Leaf>,
) -> Option<()> {
    let mut taken = Vec::new();
    for (key, value) in object.iter_mut() {
        if key.contains(OPEN) {
            return None;
        }
        if !marked(value) {
            continue;
        }
        let field = message
            .get_field_by_name(key)
            .or_else(|| message.get_field_by_json_name(key))?;
        if field.is_list() || field.is_map() {
            return None;
        }
        let kind = field.kind();
        if let Kind::Message(inner) = &kind {
            // A well-known type's JSON is not its fields (a Timestamp is a string).
            if inner.full_name().starts_with("google.protobuf.") {
                return None;
            }
            path.push(field.number());
            walk(inner, value.as_object_mut()?, path, holes, leaves)?;
            path.pop();
            continue;
        }
        let text = value.as_str()?;
        let only = single_mark(text).and_then(|i| holes.get(i));
        let leaf_value = match (&kind, only) {
            (Kind::String, _) => LeafValue::Text(text_parts(text, holes)?),
            (_, Some((hole, in_string))) => match &hole.value {
                Value::Choice(values) => {
                    let mut encoded = Vec::with_capacity(values.len());
                    for v in values {
                        let json = if *in_string {
                            Json::String(v.to_string())
                        } else {
                            serde_json::from_str(v).ok()?
                        };
                        let mut one = Map::new();
                        one.insert(key.clone(), json);
                        let m = parse(message, &serde_json::to_string(&one).ok()?).ok()?;
                        encoded.push(Bytes::from(m.encode_to_vec()));
                    }
                    LeafValue::Choice((*hole).clone(), encoded)
                }
                Value::Call | Value::Int { .. } => {
                    LeafValue::Number((*hole).clone(), number(&kind)?)
                }
                _ => return None,
            },
            _ => return None,
        };
        leaves.push(Leaf {
            path: path.clone(),
            number: field.number(),
            presence: field.supports_presence(),
            value: leaf_value,
        });
        taken.push(key.clone());
    }
    for key in taken {
        object.remove(&key);
    }
    Some(())
}

/// The placeholder `text` consists of, if it is exactly one mark.
fn single_mark(text: &str) -> Option<usize> {
    let inner = text.strip_prefix(OPEN)?.strip_suffix(CLOSE)?;
    inner.parse().ok()
}

/// A string's literal parts and placeholders (each inside a JSON string).
fn text_parts(text: &str, holes: &[(&Hole, bool)]) -> Option<Vec<TextPart>> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(OPEN) {
        let close = open + rest[open..].find(CLOSE)?;
        if open > 0 {
            parts.push(TextPart::Literal(rest[..open].into()));
        }
        let index: usize = rest[open + OPEN.len_utf8()..close].parse().ok()?;
        let (hole, in_string) = holes.get(index)?;
        if !in_string {
            return None;
        }
        parts.push(TextPart::Hole((*hole).clone()));
        rest = &rest[close + CLOSE.len_utf8()..];
    }
    if !rest.is_empty() {
        parts.push(TextPart::Literal(rest.into()));
    }
    Some(parts)
}

fn number(kind: &Kind) -> Option<Number> {
    Some(match kind {
        Kind::Int32 => Number::Int32,
        Kind::Int64 => Number::Int64,
        Kind::Uint32 => Number::Uint32,
        Kind::Uint64 => Number::Uint64,
        Kind::Sint32 => Number::Sint32,
        Kind::Sint64 => Number::Sint64,
        Kind::Fixed32 => Number::Fixed32,
        Kind::Fixed64 => Number::Fixed64,
        Kind::Sfixed32 => Number::Sfixed32,
        Kind::Sfixed64 => Number::Sfixed64,
        Kind::Double => Number::Double,
        _ => return None,
    })
}

// === the wire format (protobuf.dev/programming-guides/encoding) ===

const VARINT: u32 = 0;
const I64: u32 = 1;
const LEN: u32 = 2;
const I32: u32 = 5;

fn varint(out: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn key(out: &mut impl BufMut, number: u32, wire: u32) {
    varint(out, (u64::from(number) << 3) | u64::from(wire));
}

/// `content` inside the message fields of `path`, outermost first.
fn wrap(path: &[u32], content: &[u8], out: &mut BytesMut) {
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

impl Leaf {
    /// The field's key and value for the call keyed by `keys` (nothing for a default value
    /// without presence).
    fn write(&self, keys: &Keys, out: &mut impl BufMut) -> Result<(), String> {
        match &self.value {
            LeafValue::Text(parts) => {
                let mut text = Vec::with_capacity(64);
                for part in parts {
                    match part {
                        TextPart::Literal(l) => text.extend_from_slice(l.as_bytes()),
                        TextPart::Hole(h) => h.write(keys, &mut text),
                    }
                }
                if !text.is_empty() || self.presence {
                    key(out, self.number, LEN);
                    varint(out, text.len() as u64);
                    out.put_slice(&text);
                }
            }
            LeafValue::Choice(hole, encoded) => {
                if let Some(i) = hole.choice(keys) {
                    out.put_slice(&encoded[i]);
                }
            }
            LeafValue::Number(hole, kind) => {
                let v = hole.integer(keys).unwrap_or_default();
                if v != 0 || self.presence {
                    write_number(out, self.number, *kind, v).ok_or_else(|| {
                        format!("{} = {v} is out of the field's range", hole.written)
                    })?;
                }
            }
        }
        Ok(())
    }
}

fn write_number(out: &mut impl BufMut, number: u32, kind: Number, v: i128) -> Option<()> {
    match kind {
        Number::Int32 => {
            let v = i32::try_from(v).ok()?;
            key(out, number, VARINT);
            varint(out, i64::from(v) as u64);
        }
        Number::Int64 => {
            key(out, number, VARINT);
            varint(out, i64::try_from(v).ok()? as u64);
        }
        Number::Uint32 => {
            key(out, number, VARINT);
            varint(out, u64::from(u32::try_from(v).ok()?));
        }
        Number::Uint64 => {
            key(out, number, VARINT);
            varint(out, u64::try_from(v).ok()?);
        }
        Number::Sint32 => {
            let v = i32::try_from(v).ok()?;
            key(out, number, VARINT);
            varint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
        }
        Number::Sint64 => {
            let v = i64::try_from(v).ok()?;
            key(out, number, VARINT);
            varint(out, ((v << 1) ^ (v >> 63)) as u64);
        }
        Number::Fixed32 => {
            key(out, number, I32);
            out.put_u32_le(u32::try_from(v).ok()?);
        }
        Number::Sfixed32 => {
            key(out, number, I32);
            out.put_i32_le(i32::try_from(v).ok()?);
        }
        Number::Fixed64 => {
            key(out, number, I64);
            out.put_u64_le(u64::try_from(v).ok()?);
        }
        Number::Sfixed64 => {
            key(out, number, I64);
            out.put_i64_le(i64::try_from(v).ok()?);
        }
        Number::Double => {
            key(out, number, I64);
            out.put_f64_le(v as f64);
        }
    }
    Some(())
}

/// The message `bytes` (framed) decode to, for tests and checks.
pub fn decoded(input: &MessageDescriptor, framed: &[u8]) -> Option<DynamicMessage> {
    DynamicMessage::decode(input.clone(), framed.get(PREFIX..)?).ok()
}
