//! The request a call sends: a proto3 JSON template of the method's input message, checked
//! once and encoded per call.
//!
//! The template is text first, as ghz's is: placeholders ([`crate::template`]) are replaced
//! in the JSON text, so `{"n": {{call}}}` and `{"id": "order-{{call}}"}` are both written as
//! a ghz user writes them. A value put inside a JSON string is escaped as JSON, so a
//! `{{choice}}` value holding a quote stays one string.
//!
//! Checked before any load, with the field's path and the message type in every error: the
//! JSON parses as the input message (proto3's JSON mapping as prost-reflect reads it, unknown
//! fields refused), for every value a placeholder can take that could change the answer (a
//! `{{call}}`'s first and last, an `{{int}}`'s bounds, each `{{choice}}`), the request read
//! whole once and each other value in the part around it that decides it (`schema::check`).
//!
//! Encoded, from cheapest to dearest:
//! - no placeholder: once, the same bytes for every call;
//! - placeholders in fields of a plain type (string, integers, `double`, bool and enum by
//!   `{{choice}}`), singular, in lists or in map values, through nested messages: the rest of
//!   the message is encoded once and those fields are appended per call ([`super::fast`]:
//!   protobuf's parsers merge a message from its fields in any order, keep one list's
//!   elements in order, and take map entries in any order);
//! - otherwise (a placeholder in a map's key, in `bytes` or `float` other than by `choice`, in
//!   a well-known type such as `Timestamp`): the JSON text rendered, parsed and encoded per
//!   call.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, ReflectMessage};

use super::SchemaError;
use super::fast::Fields;
use crate::protocol::message::{MAX_MESSAGE, PREFIX};
use crate::template::{Hole, Keys, Piece, Template};

/// Largest request template (the text).
pub const MAX_TEXT: usize = 4 * 1024 * 1024;

/// Most values checked over all of a template's placeholders.
pub const MAX_CHECKS: usize = 100_000;

/// A request template, checked against its message type, ready to encode per call.
pub struct RequestTemplate {
    input: MessageDescriptor,
    seed: u64,
    body: Body,
}

enum Body {
    /// No placeholder: the framed message.
    Constant(Bytes),
    /// The rest encoded once, the fields with placeholders per call.
    Fields(Fields),
    /// Rendered, parsed and encoded per call.
    Parsed(JsonTemplate),
}

/// How a request is encoded per call, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Once for every call.
    Once,
    /// Its placeholders' fields per call.
    Fields,
    /// Parsed and encoded whole per call.
    Parsed,
}

/// A JSON template: the text template, and for each placeholder whether it sits inside a
/// JSON string (its value is then escaped as JSON).
#[derive(Debug, Clone)]
pub struct JsonTemplate {
    /// The text template.
    pub template: Template,
    /// Per placeholder, in order: inside a JSON string.
    pub in_string: Vec<bool>,
}

impl JsonTemplate {
    /// Parses `text` and finds each placeholder's place in the JSON.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let template = Template::parse(text, 0).map_err(|e| SchemaError::new(e.0))?;
        let (mut inside, mut escaped) = (false, false);
        let mut in_string = Vec::new();
        for piece in template.pieces() {
            match piece {
                Piece::Hole(_) => in_string.push(inside),
                Piece::Text(t) => {
                    for c in t.chars() {
                        match (inside, escaped, c) {
                            (true, true, _) => escaped = false,
                            (true, false, '\\') => escaped = true,
                            (_, false, '"') => inside = !inside,
                            _ => {}
                        }
                    }
                }
            }
        }
        Ok(Self {
            template,
            in_string,
        })
    }

    /// The holes in order, with their places.
    pub fn holes(&self) -> impl Iterator<Item = (&Hole, bool)> {
        self.template
            .pieces()
            .iter()
            .filter_map(|p| match p {
                Piece::Hole(h) => Some(h),
                Piece::Text(_) => None,
            })
            .zip(self.in_string.iter().copied())
    }

    /// The JSON text with hole `i` written by `write` (the others by theirs).
    pub fn render_with(&self, out: &mut String, write: impl FnMut(usize, &Hole, &mut String)) {
        self.render_spans(out, write, |_| {});
    }

    /// [`Self::render_with`], telling `span` where each hole's value lies in `out`, in order.
    pub fn render_spans(
        &self,
        out: &mut String,
        mut write: impl FnMut(usize, &Hole, &mut String),
        mut span: impl FnMut(Range<usize>),
    ) {
        let mut i = 0;
        let mut value = String::new();
        for piece in self.template.pieces() {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole(h) => {
                    value.clear();
                    write(i, h, &mut value);
                    let start = out.len();
                    if self.in_string[i] {
                        escape_into(out, &value);
                    } else {
                        out.push_str(&value);
                    }
                    span(start..out.len());
                    i += 1;
                }
            }
        }
    }

    /// The JSON text for the call keyed by `keys`.
    pub fn render(&self, keys: &Keys) -> String {
        let mut out = String::new();
        self.render_with(&mut out, |_, h, v| h.write(keys, v));
        out
    }
}

/// `s` as the inside of a JSON string.
pub(super) fn escape_into(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(s);
        return;
    }
    let quoted = serde_json::to_string(s).unwrap_or_default();
    out.push_str(&quoted[1..quoted.len() - 1]);
}

// A descriptor's `Debug` shows its types' fields, and does not end for a recursive one.
impl std::fmt::Debug for RequestTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTemplate")
            .field("input", &self.input.full_name())
            .field("encoding", &self.encoding())
            .finish_non_exhaustive()
    }
}

impl RequestTemplate {
    /// Checks `text` (a proto3 JSON template) as a request of type `input`, and prepares its
    /// encoding for a run seeded `seed` whose call indexes reach `last_call`.
    pub fn new(
        input: &MessageDescriptor,
        text: &str,
        seed: u64,
        last_call: u64,
    ) -> Result<Self, SchemaError> {
        if text.len() > MAX_TEXT {
            return Err(SchemaError::new(format!(
                "the request is {} bytes of JSON; at most {MAX_TEXT}",
                text.len()
            )));
        }
        let json = JsonTemplate::parse(text)?;
        super::check::check(input, &json, seed, last_call)?;
        let body = if json.template.is_constant() {
            Body::Constant(frame(&parse(input, text).map_err(SchemaError)?)?)
        } else {
            match Fields::new(input, &json) {
                Some(fields) if agrees(input, &json, &fields, seed, last_call) => {
                    Body::Fields(fields)
                }
                _ => Body::Parsed(json),
            }
        };
        Ok(Self {
            input: input.clone(),
            seed,
            body,
        })
    }

    /// How it is encoded per call.
    pub fn encoding(&self) -> Encoding {
        match self.body {
            Body::Constant(_) => Encoding::Once,
            Body::Fields(_) => Encoding::Fields,
            Body::Parsed(_) => Encoding::Parsed,
        }
    }

    /// The framed request (gRPC's 5-byte prefix, then the message) of call `call`.
    #[inline]
    pub fn framed(&self, call: u64) -> Result<Bytes, String> {
        match &self.body {
            Body::Constant(bytes) => Ok(bytes.clone()),
            Body::Fields(fields) => fields.framed(&Keys::new(self.seed, call)),
            Body::Parsed(json) => {
                let text = json.render(&Keys::new(self.seed, call));
                let message = parse(&self.input, &text)?;
                frame(&message).map_err(|e| e.0)
            }
        }
    }
}

/// `message` encoded and framed, within gRPC's message limit.
pub fn frame(message: &DynamicMessage) -> Result<Bytes, SchemaError> {
    let len = message.encoded_len();
    if len > MAX_MESSAGE {
        return Err(SchemaError::new(format!(
            "the request encodes to {len} bytes; gRPC's limit is {MAX_MESSAGE}"
        )));
    }
    let mut out = BytesMut::with_capacity(PREFIX + len);
    out.put_u8(0);
    out.put_u32(len as u32);
    message
        .encode(&mut out)
        .map_err(|e| SchemaError::new(e.to_string()))?;
    Ok(out.freeze())
}

/// `text` parsed as a `input` message (proto3 JSON, unknown fields refused), or why not, with
/// the field's path and type.
pub fn parse(input: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let options = DeserializeOptions::new();
    let parsed = DynamicMessage::deserialize_with_options(
        input.clone(),
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
        &options,
    );
    match parsed {
        Ok(message) => {
            de.end()
                .map_err(|e| format!("not valid JSON after the message: {e}"))?;
            Ok(message)
        }
        Err(e) => Err(super::errors::describe(input, &e, &track.path())),
    }
}

/// Whether the fields' encoding agrees with the whole message's for a few calls: both decode
/// to the same message. A safeguard; when they differ the message is parsed per call.
fn agrees(
    input: &MessageDescriptor,
    json: &JsonTemplate,
    fields: &Fields,
    seed: u64,
    last_call: u64,
) -> bool {
    [0, 1, 2, last_call / 2, last_call].into_iter().all(|call| {
        let keys = Keys::new(seed, call);
        let (Ok(fast), Ok(whole)) = (fields.framed(&keys), parse(input, &json.render(&keys)))
        else {
            return false;
        };
        DynamicMessage::decode(input.clone(), &fast[PREFIX..]).is_ok_and(|m| m == normal(&whole))
    })
}

/// `message` as it reads back from its encoding: a default value set without presence (which
/// the encoding leaves out) gone, so that two messages compare as their encodings do.
pub fn normal(message: &DynamicMessage) -> DynamicMessage {
    DynamicMessage::decode(message.descriptor(), message.encode_to_vec().as_slice())
        .unwrap_or_else(|_| message.clone())
}
