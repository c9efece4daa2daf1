//! A templated request encoded per call without parsing it: the message without its
//! placeholders' fields is encoded once, and those fields are appended per call.
//!
//! Why this is the same message: protobuf's encoding is a sequence of records in any order
//! ("parsers must be able to parse fields in any order", "Field Order" in
//! protobuf.dev/programming-guides/encoding), and a parser merges what it reads ("Last One
//! Wins"): a singular scalar field appended after the rest is that field's value, and a
//! singular message field given twice is merged. So a field whose JSON value holds a
//! placeholder is left out of the constant part and written after it, inside its enclosing
//! message fields (each written as a length-delimited record of its own, merged by the reader).
//! A list holding a placeholder is written whole after the rest, its elements in list order,
//! and a map's entries holding placeholders each as an entry of their own ([`list`], with what
//! the guide says of repeated fields, packed lists and maps).
//!
//! What the bytes guarantee: they decode, in any conforming parser, to the message the
//! rendered JSON parses to (checked on a few calls before the run, [`super::request`], and by
//! the tests for many templates). They are not in field-number order, as prost-reflect's
//! encoding of the same message is, and a map's entries holding placeholders come after the
//! others: a server that compares request bytes instead of decoding them (a cache keyed on
//! them, say) sees another encoding of the same message.
//!
//! Values written per call: a `string` field's text (literal parts and placeholders), an
//! integer or `double` field's `{{call}}` or `{{int}}`, and any plain field's `{{choice}}`,
//! each choice's encoding prepared once by prost-reflect; in singular fields, list elements
//! and map values, at any depth of messages. A proto3 singular field without presence is
//! left out when its value is the default, as prost-reflect leaves it out. Left to the parse
//! per call: a placeholder in a map's key, in `bytes` other than by `{{choice}}`, in a `float`
//! other than by `{{choice}}`, or in a well-known type (its JSON is not its fields: a
//! `Timestamp` is a string).

mod list;
mod wire;

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};
use serde_json::{Map, Value as Json};

use super::request::{JsonTemplate, parse};
use crate::protocol::message::{MAX_MESSAGE, PREFIX};
use crate::template::{Hole, Keys, Value};
use list::{Entries, List};
use wire::{Number, with_len, wrap};

/// Marks a placeholder's place while the template's JSON is read (Unicode private use).
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The template's placeholders in order, each with whether it sits inside a JSON string.
type Holes<'a> = [(&'a Hole, bool)];

/// The message without its placeholders' fields, encoded once, and those fields.
#[derive(Debug)]
pub struct Fields {
    constant: Bytes,
    leaves: Vec<Leaf>,
}

/// A field whose value holds placeholders, inside the message fields of `path` (their
/// numbers, outermost first).
#[derive(Debug)]
struct Leaf {
    path: Vec<u32>,
    value: LeafValue,
}

#[derive(Debug)]
enum LeafValue {
    /// A singular field.
    Singular {
        /// Its number.
        number: u32,
        /// It is written even when its value is the default (proto3 `optional`, oneofs).
        presence: bool,
        value: Singular,
    },
    /// A repeated field, written whole.
    List(List),
    /// A map's entries holding placeholders.
    Entries(Entries),
}

#[derive(Debug)]
enum Singular {
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

/// A plain value holding placeholders, as read from the JSON.
enum Scalar {
    Text(Vec<TextPart>),
    Number(Hole, Number),
    /// Each value of the `{{choice}}` as JSON.
    Choice(Hole, Vec<Json>),
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
        // A mark the template wrote as a JSON escape (`\uE000`) becomes a mark character in
        // the parse: the parsed JSON must hold exactly the placeholders' marks.
        let text = serde_json::to_string(&root).ok()?;
        if [OPEN, CLOSE].map(|c| text.matches(c).count()) != [holes.len(); 2] {
            return None;
        }
        Self::of(input, root.as_object_mut()?, &holes)
    }

    /// The fields of `object` (marked JSON) as a `message`: the placeholders' fields taken
    /// out of it, the rest encoded.
    fn of(
        message: &MessageDescriptor,
        object: &mut Map<String, Json>,
        holes: &Holes<'_>,
    ) -> Option<Self> {
        let mut leaves = Vec::new();
        walk(message, object, &mut Vec::new(), holes, &mut leaves)?;
        let constant = parse(message, &serde_json::to_string(object).ok()?).ok()?;
        Some(Self {
            constant: constant.encode_to_vec().into(),
            leaves,
        })
    }

    /// The framed message of the call keyed by `keys`.
    pub fn framed(&self, keys: &Keys) -> Result<Bytes, String> {
        let mut out = Vec::with_capacity(PREFIX + self.constant.len() + 64);
        out.resize(PREFIX, 0);
        self.write(keys, &mut out)?;
        let len = out.len() - PREFIX;
        if len > MAX_MESSAGE {
            return Err(format!(
                "the request encodes to {len} bytes; gRPC's limit is {MAX_MESSAGE}"
            ));
        }
        out[1..PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(out.into())
    }

    /// The message's encoding for the call keyed by `keys`, appended to `out`.
    fn write(&self, keys: &Keys, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&self.constant);
        let mut scratch = Vec::new();
        for leaf in &self.leaves {
            if leaf.path.is_empty() {
                leaf.value.write(keys, out)?;
            } else {
                scratch.clear();
                leaf.value.write(keys, &mut scratch)?;
                if !scratch.is_empty() {
                    wrap(&leaf.path, &scratch, out);
                }
            }
        }
        Ok(())
    }
}

/// `text` with each bare mark (one outside a JSON string) put in quotes, or `None` if the
/// template's own text holds a mark character.
fn quote_bare(text: &str, holes: &Holes<'_>) -> Option<String> {
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
    holes: &Holes<'_>,
    leaves: &mut Vec<Leaf>,
) -> Option<()> {
    let mut taken = Vec::new();
    for (name, value) in object.iter_mut() {
        if name.contains(OPEN) {
            return None;
        }
        if !marked(value) {
            continue;
        }
        let field = message
            .get_field_by_name(name)
            .or_else(|| message.get_field_by_json_name(name))?;
        if field.is_group() {
            // A proto2 group is delimited by start and end tags, not a length: left to the
            // parse, which writes it as a group.
            return None;
        }
        let leaf = if field.is_map() {
            // Its constant entries stay in the constant part.
            LeafValue::Entries(Entries::take(&field, value.as_object_mut()?, holes)?)
        } else if field.is_list() {
            taken.push(name.clone());
            LeafValue::List(List::new(
                message,
                &field,
                name,
                value.as_array_mut()?,
                holes,
            )?)
        } else if let Kind::Message(inner) = field.kind() {
            if well_known(&inner) {
                return None;
            }
            path.push(field.number());
            walk(&inner, value.as_object_mut()?, path, holes, leaves)?;
            path.pop();
            continue;
        } else {
            taken.push(name.clone());
            let value = match scalar(&field.kind(), value, holes)? {
                Scalar::Text(parts) => Singular::Text(parts),
                Scalar::Number(hole, number) => Singular::Number(hole, number),
                Scalar::Choice(hole, values) => {
                    let encoded = values
                        .into_iter()
                        .map(|v| encode_one(message, name, v).map(Bytes::from))
                        .collect::<Option<Vec<_>>>()?;
                    Singular::Choice(hole, encoded)
                }
            };
            LeafValue::Singular {
                number: field.number(),
                presence: field.supports_presence(),
                value,
            }
        };
        leaves.push(Leaf {
            path: path.clone(),
            value: leaf,
        });
    }
    for name in taken {
        object.remove(&name);
    }
    Some(())
}

/// A well-known type, whose JSON is not its fields (a `Timestamp` is a string).
fn well_known(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
}

/// A plain value (not a message) of type `kind` holding marks, as it can be written per call:
/// a string's text, an integer's or `double`'s `{{call}}`/`{{int}}`, any `{{choice}}`.
fn scalar(kind: &Kind, value: &Json, holes: &Holes<'_>) -> Option<Scalar> {
    let text = value.as_str()?;
    if let Kind::String = kind {
        return Some(Scalar::Text(text_parts(text, holes)?));
    }
    let (hole, in_string) = holes.get(single_mark(text)?)?;
    Some(match &hole.value {
        Value::Choice(values) => {
            let values = values
                .iter()
                .map(|v| {
                    if *in_string {
                        Some(Json::String(v.to_string()))
                    } else {
                        serde_json::from_str(v).ok()
                    }
                })
                .collect::<Option<Vec<_>>>()?;
            Scalar::Choice((*hole).clone(), values)
        }
        Value::Call | Value::Int { .. } => Scalar::Number((*hole).clone(), Number::of(kind)?),
        _ => return None,
    })
}

/// The encoding of a `message` holding field `name` alone, at `value` (JSON).
fn encode_one(message: &MessageDescriptor, name: &str, value: Json) -> Option<Vec<u8>> {
    let mut one = Map::new();
    one.insert(name.to_string(), value);
    let m = parse(message, &serde_json::to_string(&one).ok()?).ok()?;
    Some(m.encode_to_vec())
}

/// The placeholder `text` consists of, if it is exactly one mark.
fn single_mark(text: &str) -> Option<usize> {
    let inner = text.strip_prefix(OPEN)?.strip_suffix(CLOSE)?;
    inner.parse().ok()
}

/// A string's literal parts and placeholders (each inside a JSON string).
fn text_parts(text: &str, holes: &Holes<'_>) -> Option<Vec<TextPart>> {
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

/// A text's bytes for the call keyed by `keys`.
fn write_text(parts: &[TextPart], keys: &Keys, out: &mut Vec<u8>) {
    for part in parts {
        match part {
            TextPart::Literal(l) => out.extend_from_slice(l.as_bytes()),
            TextPart::Hole(h) => h.write(keys, out),
        }
    }
}

impl LeafValue {
    /// The field's records for the call keyed by `keys` (nothing for a singular default value
    /// without presence).
    fn write(&self, keys: &Keys, out: &mut Vec<u8>) -> Result<(), String> {
        let (number, presence, value) = match self {
            Self::List(list) => return list.write(keys, out),
            Self::Entries(entries) => return entries.write(keys, out),
            Self::Singular {
                number,
                presence,
                value,
            } => (*number, *presence, value),
        };
        match value {
            Singular::Text(parts) => {
                let start = out.len();
                let (len, ()) = with_len(out, number, |out| write_text(parts, keys, out));
                if len == 0 && !presence {
                    out.truncate(start);
                }
            }
            Singular::Choice(hole, encoded) => {
                if let Some(i) = hole.choice(keys) {
                    out.extend_from_slice(&encoded[i]);
                }
            }
            Singular::Number(hole, kind) => {
                let v = hole.integer(keys).unwrap_or_default();
                if v != 0 || presence {
                    kind.put_field(out, number, v).ok_or_else(|| {
                        format!("{} = {v} is out of the field's range", hole.written)
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// The message `bytes` (framed) decode to, for tests and checks.
pub fn decoded(input: &MessageDescriptor, framed: &[u8]) -> Option<DynamicMessage> {
    DynamicMessage::decode(input.clone(), framed.get(PREFIX..)?).ok()
}

#[cfg(test)]
mod tests;
