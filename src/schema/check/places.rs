//! Where a placeholder sits, as the message reads it: the parts of the request around it that
//! can be read alone, from the smallest out, each with how to read it.
//!
//! Why a part can be read alone: prost-reflect reads a message's members one by one, each by
//! its field (found by its JSON name, then its proto name), a list's elements one by one, a
//! map's entries one by one (a key met again replaces the entry), and a `Struct`,
//! `ListValue` or `Value` as plain JSON; the one thing one member does to another is a oneof
//! (a second field of a oneof given a value is an error), which [`Oneofs`] keeps. A value that
//! stays one JSON value, nested no deeper, reads the same in place as alone in its context.
//! Not read alone: the inside of an `Any` (its `@type`, anywhere in it, says what the rest is)
//! and of the other well-known types (read whole as strings or numbers).

use std::collections::HashMap;
use std::ops::Range;

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind as Proto, MessageDescriptor,
    OneofDescriptor,
};

use super::tree::{Kind, Member, Node};

/// A part of the request holding a placeholder, read alone.
pub struct Place<'t> {
    /// The text the placeholder's value is put in (its span in the request).
    pub replaced: Range<usize>,
    /// How deeply that text nests (a value put in may not nest deeper).
    pub depth: usize,
    /// How it is read.
    pub how: How<'t>,
}

/// Which part of a member holds the placeholder.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The key.
    Key,
    /// The value.
    Value,
}

/// How a part is read alone.
pub enum How<'t> {
    /// A message's member, as `{K: V}` of `message`; then the oneofs against the object's
    /// other members.
    Member {
        /// The message the object is.
        message: MessageDescriptor,
        /// The object's members.
        object: &'t [Member],
        /// Which.
        index: usize,
        /// The key or the value.
        part: Part,
    },
    /// A list's element, as `{field: [E]}` of `message`.
    Element {
        /// The message the list is a field of.
        message: MessageDescriptor,
        /// The list's key.
        field: Range<usize>,
    },
    /// A map's entry, as `{field: {K: V}}` of `message`.
    Entry {
        /// The message the map is a field of.
        message: MessageDescriptor,
        /// The map's key.
        field: Range<usize>,
        /// The entry.
        entry: &'t Member,
        /// The key or the value.
        part: Part,
    },
    /// A value inside a `Struct`, `ListValue` or `Value`, as a `google.protobuf.Value`.
    Value(MessageDescriptor),
    /// A string any string fits (a `string` field's, a map's string key, a `Struct`'s key, a
    /// `Value`'s string): it needs only to stay one string.
    AnyString,
}

/// How a value at some place is read.
enum Read {
    Message(MessageDescriptor),
    List(MessageDescriptor, Range<usize>, Proto),
    Map(MessageDescriptor, Range<usize>, FieldDescriptor),
    /// `Struct`, `ListValue`, `Value`: plain JSON.
    Json,
    Scalar {
        any_string: bool,
    },
    Opaque,
}

/// The well-known types read whole: their JSON is not their fields (prost-reflect's list).
const WHOLE: [&str; 14] = [
    "google.protobuf.Any",
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FloatValue",
    "google.protobuf.DoubleValue",
    "google.protobuf.Int32Value",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
    "google.protobuf.FieldMask",
    "google.protobuf.Empty",
];

fn read_of(kind: &Proto) -> Read {
    match kind {
        Proto::Message(m) => match m.full_name() {
            "google.protobuf.Struct" | "google.protobuf.ListValue" | "google.protobuf.Value" => {
                Read::Json
            }
            name if WHOLE.contains(&name) => Read::Opaque,
            _ => Read::Message(m.clone()),
        },
        Proto::String => Read::Scalar { any_string: true },
        _ => Read::Scalar { any_string: false },
    }
}

fn read_of_field(message: &MessageDescriptor, key: Range<usize>, field: &FieldDescriptor) -> Read {
    if field.is_list() {
        Read::List(message.clone(), key, field.kind())
    } else if field.is_map() {
        Read::Map(message.clone(), key, field.clone())
    } else {
        read_of(&field.kind())
    }
}

/// The field of `message` the key `key` (quoted, as written) names, as prost-reflect finds
/// it: its JSON name, then its proto name.
pub fn field_of(message: &MessageDescriptor, key: &str) -> Option<FieldDescriptor> {
    let key: String = serde_json::from_str(key).ok()?;
    message
        .get_field_by_json_name(&key)
        .or_else(|| message.get_field_by_name(&key))
}

fn within(span: &Range<usize>, hole: &Range<usize>) -> bool {
    span.start <= hole.start && hole.end <= span.end
}

/// Strictly between a string's quotes.
fn inside(token: &Range<usize>, hole: &Range<usize>) -> bool {
    token.start < hole.start && hole.end < token.end
}

/// The places around `hole` in `text` (its tree `root`, read as `input`), the smallest first;
/// the whole request, read last, is not among them.
pub fn places<'t>(
    input: &MessageDescriptor,
    text: &str,
    root: &'t Node,
    hole: &Range<usize>,
) -> Vec<Place<'t>> {
    let value = input
        .parent_pool()
        .get_message_by_name("google.protobuf.Value");
    let mut out = Vec::new();
    let mut node = root;
    let mut read = read_of(&Proto::Message(input.clone()));
    loop {
        let next = match (&read, &node.kind) {
            (Read::Message(m), Kind::Object(members)) => {
                let Some(index) = member(members, hole) else {
                    break;
                };
                let mine = &members[index];
                let how = |part| How::Member {
                    message: m.clone(),
                    object: members,
                    index,
                    part,
                };
                if within(&mine.key, hole) {
                    out.push(key_place(mine, how(Part::Key)));
                    break;
                }
                let Some(child) = &mine.node else { break };
                out.push(value_place(child, how(Part::Value)));
                let Some(field) = field_of(m, &text[mine.key.clone()]) else {
                    break;
                };
                (child, read_of_field(m, mine.key.clone(), &field))
            }
            (Read::List(m, field, kind), Kind::Array(elements)) => {
                let Some(child) = element(elements, hole) else {
                    break;
                };
                let how = How::Element {
                    message: m.clone(),
                    field: field.clone(),
                };
                out.push(value_place(child, how));
                (child, read_of(kind))
            }
            (Read::Map(m, field, map), Kind::Object(members)) => {
                let Some(index) = member(members, hole) else {
                    break;
                };
                let mine = &members[index];
                let how = |part| How::Entry {
                    message: m.clone(),
                    field: field.clone(),
                    entry: mine,
                    part,
                };
                let entry = map.kind();
                let entry = entry.as_message();
                if within(&mine.key, hole) {
                    out.push(key_place(mine, how(Part::Key)));
                    let string_key =
                        entry.is_some_and(|e| e.map_entry_key_field().kind() == Proto::String);
                    if string_key && inside(&mine.key, hole) {
                        out.push(key_place(mine, How::AnyString));
                    }
                    break;
                }
                let (Some(child), Some(entry)) = (&mine.node, entry) else {
                    break;
                };
                out.push(value_place(child, how(Part::Value)));
                (child, read_of(&entry.map_entry_value_field().kind()))
            }
            (Read::Json, Kind::Object(members)) => {
                let Some(index) = member(members, hole) else {
                    break;
                };
                let mine = &members[index];
                if within(&mine.key, hole) {
                    if inside(&mine.key, hole) {
                        out.push(key_place(mine, How::AnyString));
                    }
                    break;
                }
                let (Some(child), Some(value)) = (&mine.node, &value) else {
                    break;
                };
                out.push(value_place(child, How::Value(value.clone())));
                (child, Read::Json)
            }
            (Read::Json, Kind::Array(elements)) => {
                let (Some(child), Some(value)) = (element(elements, hole), &value) else {
                    break;
                };
                out.push(value_place(child, How::Value(value.clone())));
                (child, Read::Json)
            }
            (Read::Json | Read::Scalar { any_string: true }, Kind::String) => {
                if inside(&node.span, hole) {
                    out.push(value_place(node, How::AnyString));
                }
                break;
            }
            _ => break,
        };
        (node, read) = next;
    }
    out.reverse();
    out
}

fn key_place<'t>(member: &Member, how: How<'t>) -> Place<'t> {
    Place {
        replaced: member.key.clone(),
        depth: 0,
        how,
    }
}

fn value_place<'t>(node: &Node, how: How<'t>) -> Place<'t> {
    Place {
        replaced: node.span.clone(),
        depth: node.depth,
        how,
    }
}

/// The member whose key or value holds `hole`.
fn member(members: &[Member], hole: &Range<usize>) -> Option<usize> {
    let i = members.partition_point(|m| m.value.end < hole.start);
    let m = members.get(i)?;
    (within(&m.key, hole) || within(&m.value, hole)).then_some(i)
}

/// The element (of those kept) that holds `hole`.
fn element<'t>(elements: &'t [Node], hole: &Range<usize>) -> Option<&'t Node> {
    let i = elements.partition_point(|e| e.span.end < hole.start);
    elements.get(i).filter(|e| within(&e.span, hole))
}

/// Per message object, its oneofs that have a member given a value: the one thing a member
/// changes for another.
#[derive(Default)]
pub struct Oneofs {
    objects: HashMap<usize, Vec<(OneofDescriptor, usize)>>,
}

impl Oneofs {
    /// Whether `read` (member `index` of `object` read alone) sets a field of a oneof that
    /// another member of `object` (a `message`) sets; `read_alone` reads a member alone (the
    /// reading counted by the caller).
    pub fn clash(
        &mut self,
        message: &MessageDescriptor,
        text: &str,
        object: &[Member],
        index: usize,
        read: &DynamicMessage,
        mut read_alone: impl FnMut(&str) -> Option<DynamicMessage>,
    ) -> bool {
        let set = self
            .objects
            .entry(object.as_ptr() as usize)
            .or_insert_with(|| {
                let mut set = Vec::new();
                for (j, m) in object.iter().enumerate() {
                    let key = &text[m.key.clone()];
                    let Some(field) = field_of(message, key) else {
                        continue;
                    };
                    let Some(oneof) = field.containing_oneof() else {
                        continue;
                    };
                    let doc = format!("{{{key}:{}}}", &text[m.value.clone()]);
                    // Unread counts as set: the whole request then decides.
                    if read_alone(&doc).is_none_or(|r| r.has_field(&field)) {
                        set.push((oneof, j));
                    }
                }
                set
            });
        set.iter()
            .any(|(oneof, j)| *j != index && oneof.fields().any(|f| read.has_field(&f)))
    }
}

/// `text` read as a `desc` message alone, as the request is read (unknown fields refused).
pub fn read_as(desc: &MessageDescriptor, text: &str) -> Option<DynamicMessage> {
    let mut de = serde_json::Deserializer::from_str(text);
    let message =
        DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &DeserializeOptions::new())
            .ok()?;
    de.end().ok()?;
    Some(message)
}
