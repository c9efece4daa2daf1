//! A repeated field or a map holding placeholders, written per call.
//!
//! A list is written whole, after the constant part, its elements in list order: the encoding
//! guide says "only the order of records for the same field with respect to each other is
//! preserved" ("Optional and Repeated Elements"), so a list's records must not be split
//! between the constant part and the per-call part, but the list as a whole may come after
//! the other fields. Constant elements are encoded once (runs of them as one slice); an
//! element holding placeholders is written per call: a string's text, an integer's or
//! `double`'s `{{call}}`/`{{int}}`, a `{{choice}}` of any plain type (each value encoded
//! once), a message element (its own constant part and placeholders, [`Fields`]).
//!
//! A packed list (proto3's default for numbers, enums and bools; "Packed Repeated Fields") is
//! one length-delimited record whose content is the elements' values without keys: it is
//! written whole per call, its constant elements' values copied, so a parser reading it gets
//! the list in order whatever its own packing choice ("parsers must be able to parse repeated
//! fields that were compiled as packed as if they were not packed, and vice versa").
//!
//! A map is "encoded exactly like a repeated message field" of entries with `key = 1` and
//! `value = 2` ("Maps"), and its entries have no order: "wire format ordering and map
//! iteration ordering of map values is undefined", "when parsing from the wire or when
//! merging, if there are duplicate map keys the last key seen is used" (the language guide,
//! protobuf.dev/programming-guides/proto3, "Maps"). So an entry whose value holds placeholders
//! is taken out of the constant part and appended as an entry of its own; its key is constant
//! and, the template's JSON object having each key once, no other entry has it. An entry whose
//! key holds a placeholder could meet another entry's key on some call, and which one a parser
//! keeps would then depend on the order: such a map leaves the message to be parsed per call.

use bytes::Bytes;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value as Json};

use super::wire::{self, Number, with_len};
use super::{Fields, Holes, OPEN, Scalar, TextPart, encode_one, scalar, write_text};
use crate::template::Keys;

/// A repeated field's elements, each constant or written per call.
#[derive(Debug)]
pub(super) struct List {
    number: u32,
    packed: bool,
    items: Vec<Item>,
}

#[derive(Debug)]
enum Item {
    /// Constant elements, encoded (records, or a packed list's values).
    Constant(Vec<u8>),
    /// A string's text.
    Text(Vec<TextPart>),
    /// An integer or `double` from `{{call}}` or `{{int}}`.
    Number(crate::template::Hole, Number),
    /// A `{{choice}}`: each value's element, encoded as `Constant`'s are.
    Choice(crate::template::Hole, Vec<Bytes>),
    /// A message holding placeholders.
    Message(Fields),
}

impl List {
    /// The list `items` of field `field` (named `name` in the JSON) of a `message`, or `None`
    /// if an element holds a placeholder this cannot write.
    pub(super) fn new(
        message: &MessageDescriptor,
        field: &FieldDescriptor,
        name: &str,
        items: &mut [Json],
        holes: &Holes<'_>,
    ) -> Option<Self> {
        let packed = field.is_packed();
        let kind = field.kind();
        // One element's encoding, as written in the list.
        let element = |json: Json| -> Option<Vec<u8>> {
            let record = encode_one(message, name, Json::Array(vec![json]))?;
            if packed {
                Some(wire::value_of(&record)?.to_vec())
            } else {
                Some(record)
            }
        };
        let mut out: Vec<Item> = Vec::with_capacity(items.len());
        for json in items.iter_mut() {
            if !super::marked(json) {
                let encoded = element(json.clone())?;
                match out.last_mut() {
                    Some(Item::Constant(run)) => run.extend_from_slice(&encoded),
                    _ => out.push(Item::Constant(encoded)),
                }
                continue;
            }
            let item = match &kind {
                Kind::Message(inner) => {
                    if super::well_known(inner) {
                        return None;
                    }
                    Item::Message(Fields::of(inner, json.as_object_mut()?, holes)?)
                }
                _ => match scalar(&kind, json, holes)? {
                    Scalar::Text(parts) => Item::Text(parts),
                    Scalar::Number(hole, number) => Item::Number(hole, number),
                    Scalar::Choice(hole, values) => {
                        let encoded = values
                            .into_iter()
                            .map(|v| element(v).map(Bytes::from))
                            .collect::<Option<Vec<_>>>()?;
                        Item::Choice(hole, encoded)
                    }
                },
            };
            out.push(item);
        }
        Some(Self {
            number: field.number(),
            packed,
            items: out,
        })
    }

    /// The list's records for the call keyed by `keys`.
    pub(super) fn write(&self, keys: &Keys, out: &mut Vec<u8>) -> Result<(), String> {
        if self.packed {
            with_len(out, self.number, |out| self.write_items(keys, out)).1
        } else {
            self.write_items(keys, out)
        }
    }

    fn write_items(&self, keys: &Keys, out: &mut Vec<u8>) -> Result<(), String> {
        for item in &self.items {
            match item {
                Item::Constant(bytes) => out.extend_from_slice(bytes),
                Item::Choice(hole, encoded) => {
                    if let Some(i) = hole.choice(keys) {
                        out.extend_from_slice(&encoded[i]);
                    }
                }
                Item::Text(parts) => {
                    with_len(out, self.number, |out| write_text(parts, keys, out));
                }
                Item::Number(hole, number) => {
                    let v = hole.integer(keys).unwrap_or_default();
                    let written = if self.packed {
                        number.put(out, v)
                    } else {
                        number.put_field(out, self.number, v)
                    };
                    written.ok_or_else(|| {
                        format!("{} = {v} is out of the field's range", hole.written)
                    })?;
                }
                Item::Message(fields) => {
                    with_len(out, self.number, |out| fields.write(keys, out)).1?;
                }
            }
        }
        Ok(())
    }
}

/// A map's entries whose values hold placeholders, each as its own entry.
#[derive(Debug)]
pub(super) struct Entries {
    number: u32,
    entries: Vec<Fields>,
}

impl Entries {
    /// Takes the entries holding placeholders out of `object` (the JSON of map field `field`),
    /// or `None` if a key holds one or an entry cannot be written.
    pub(super) fn take(
        field: &FieldDescriptor,
        object: &mut Map<String, Json>,
        holes: &Holes<'_>,
    ) -> Option<Self> {
        let Kind::Message(entry) = field.kind() else {
            return None;
        };
        let key_kind = entry.map_entry_key_field().kind();
        let mut entries = Vec::new();
        let marked: Vec<String> = object
            .iter()
            .filter(|(k, v)| k.contains(OPEN) || super::marked(v))
            .map(|(k, _)| k.clone())
            .collect();
        for name in marked {
            if name.contains(OPEN) {
                return None;
            }
            let value = object.remove(&name)?;
            // A map key is a JSON string; as an entry's `key` field, a bool is a JSON bool.
            let key = match key_kind {
                Kind::Bool => Json::Bool(name.parse().ok()?),
                _ => Json::String(name),
            };
            let mut one = Map::new();
            one.insert("key".into(), key);
            one.insert("value".into(), value);
            entries.push(Fields::of(&entry, &mut one, holes)?);
        }
        Some(Self {
            number: field.number(),
            entries,
        })
    }

    /// The entries' records for the call keyed by `keys`.
    pub(super) fn write(&self, keys: &Keys, out: &mut Vec<u8>) -> Result<(), String> {
        for entry in &self.entries {
            with_len(out, self.number, |out| entry.write(keys, out)).1?;
        }
        Ok(())
    }
}
