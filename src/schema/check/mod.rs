//! The request template checked before any load: the JSON parses as the input message for
//! every value a placeholder can take that could change the answer (a `{{call}}`'s first and
//! last, an `{{int}}`'s bounds, each `{{choice}}`), one placeholder at a time, the others at
//! their first value; an error names the placeholder and the value that fails.
//!
//! Why not parse the whole request once per value: a request of [`super::request::MAX_TEXT`]
//! bytes with [`crate::template::MAX_HOLES`] placeholders of many values each would be read
//! [`super::request::MAX_CHECKS`] times over (hundreds of gigabytes) before the run starts.
//! The request is read whole once, with every placeholder at its first value; its structure
//! is then found once ([`tree`]), and each other value is checked by reading again only the
//! smallest part around its placeholder that decides it ([`places`]): the string it stays
//! inside (for a field any string fits, the value's text alone), else the value, list element
//! or map entry it is in, read alone in its field's context, with the oneofs of its message
//! checked against their other members. A value met twice at one placeholder is checked once.
//! What fails is read again whole, for the error the whole request gives (its field path, its
//! line and column), so the errors are those of a whole parse, word for word.
//!
//! What is still read whole, or in large parts, per value: a value that does not stay one JSON
//! value where it is put (a bare `1, "b": 2`) or that nests deeper than the value it replaces
//! (read in the nearest part it keeps whole, at worst the request); a placeholder in a field's
//! name (its member's value is read again), in an `Any` or another well-known type read whole
//! (a `Timestamp`, a wrapper), or in a string that is not a `string` field's (`bytes`, an enum's
//! name, a number as a string: that string is read again).

mod places;
mod tree;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;

use prost_reflect::MessageDescriptor;

use super::SchemaError;
use super::request::{JsonTemplate, escape_into, parse};
use crate::template::{Hole, Keys, Value};
use places::{How, Oneofs, Part, Place, read_as};

/// Checks `json` as a request of type `input`, for a run seeded `seed` whose call indexes reach
/// `last_call`: every placeholder at each of its alternatives (the others at their first).
pub fn check(
    input: &MessageDescriptor,
    json: &JsonTemplate,
    seed: u64,
    last_call: u64,
) -> Result<(), SchemaError> {
    let mut reading = Reading::default();
    check_reading(input, json, seed, last_call, &mut reading)
}

/// What a check read: bytes handed to a parser or scanned, and how many times the whole
/// request was parsed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Bytes read.
    pub bytes: usize,
    /// Whole-request parses.
    pub whole: usize,
}

/// [`check`], counting what it reads into `reading`.
pub fn check_reading(
    input: &MessageDescriptor,
    json: &JsonTemplate,
    seed: u64,
    last_call: u64,
    reading: &mut Reading,
) -> Result<(), SchemaError> {
    let keys = Keys::new(seed, 0);
    let alternatives: Vec<Vec<String>> = json
        .holes()
        .map(|(h, _)| alternatives(h, &keys, last_call))
        .collect();
    let total: usize = alternatives.iter().map(Vec::len).sum();
    if total > super::request::MAX_CHECKS {
        return Err(SchemaError::new(format!(
            "the request's placeholders can take more than {} values to check; use fewer \
             `choice` values",
            super::request::MAX_CHECKS
        )));
    }
    let base: Vec<String> = alternatives.iter().map(|a| a[0].clone()).collect();
    let (text, spans) = render(json, &base, None);
    reading.whole += 1;
    reading.bytes += text.len();
    parse(input, &text).map_err(|e| {
        let shown: Vec<String> = json
            .holes()
            .zip(&base)
            .take(3)
            .map(|((h, _), v)| format!("{} as {v}", h.written))
            .collect();
        if shown.is_empty() {
            SchemaError::new(e)
        } else {
            SchemaError::new(format!("with {}: {e}", shown.join(", ")))
        }
    })?;
    // The structure, found once if any placeholder has another value to check.
    let more = |alts: &Vec<String>| alts.iter().any(|a| *a != alts[0]);
    let root = if alternatives.iter().any(more) {
        reading.bytes += text.len();
        tree::scan(&text, &spans)
    } else {
        None
    };
    let places: Vec<Vec<Place<'_>>> = alternatives
        .iter()
        .zip(&spans)
        .map(|(alts, span)| match &root {
            Some(root) if more(alts) => places::places(input, &text, root, span),
            _ => Vec::new(),
        })
        .collect();
    let whole = Whole {
        text: &text,
        spans: &spans,
        strings: strings_kept(&text, &spans, &places, reading),
    };
    let mut oneofs = Oneofs::default();
    for (i, ((hole, in_string), alts)) in json.holes().zip(&alternatives).enumerate() {
        let mut seen: HashSet<&str> = HashSet::from([alts[0].as_str()]);
        for alt in alts.iter().skip(1) {
            if !seen.insert(alt) {
                continue;
            }
            let put = if in_string {
                let mut out = String::new();
                escape_into(&mut out, alt);
                Cow::Owned(out)
            } else {
                Cow::Borrowed(alt.as_str())
            };
            if whole.fits(i, &put, &places[i], &mut oneofs, reading) {
                continue;
            }
            let (text, _) = render(json, &base, Some((i, alt)));
            reading.whole += 1;
            reading.bytes += text.len();
            parse(input, &text)
                .map_err(|e| SchemaError::new(format!("with {} as {alt}: {e}", hole.written)))?;
        }
    }
    Ok(())
}

/// Each value a placeholder can take that may change whether the JSON parses: a `{{call}}`'s
/// first and last, an `{{int}}`'s bounds, each `{{choice}}`; one sample of the others (their
/// values all have one shape).
fn alternatives(hole: &Hole, keys: &Keys, last_call: u64) -> Vec<String> {
    match &hole.value {
        Value::Call => vec!["0".into(), last_call.to_string()],
        // The value nearest 0 first: the one most likely to fit.
        Value::Int { lo, hi } => vec![
            0.clamp(*lo, *hi).to_string(),
            lo.to_string(),
            hi.to_string(),
        ],
        Value::Choice(values) => values.iter().map(|v| v.to_string()).collect(),
        _ => {
            let mut one = String::new();
            hole.write(keys, &mut one);
            vec![one]
        }
    }
}

/// The JSON with each hole at `values[i]`, or hole `over.0` at `over.1`; and where each hole's
/// value lies in it.
fn render(
    json: &JsonTemplate,
    values: &[String],
    over: Option<(usize, &str)>,
) -> (String, Vec<Range<usize>>) {
    let mut out = String::new();
    let mut spans = Vec::with_capacity(values.len());
    json.render_spans(
        &mut out,
        |i, _, v| match over {
            Some((j, alt)) if j == i => v.push_str(alt),
            _ => v.push_str(&values[i]),
        },
        |span| spans.push(span),
    );
    (out, spans)
}

/// For each hole whose smallest place is a string any string fits: whether its value starts
/// and ends between two of the string's units (each such string scanned once).
fn strings_kept(
    text: &str,
    spans: &[Range<usize>],
    places: &[Vec<Place<'_>>],
    reading: &mut Reading,
) -> Vec<bool> {
    let mut kept = vec![false; spans.len()];
    let mut holes: Vec<(Range<usize>, usize)> = places
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p.first() {
            Some(Place {
                replaced,
                how: How::AnyString,
                ..
            }) => Some((replaced.clone(), i)),
            _ => None,
        })
        .collect();
    holes.sort_by_key(|(token, i)| (token.start, *i));
    for group in holes.chunk_by(|a, b| a.0 == b.0) {
        let token = &group[0].0;
        let points: Vec<usize> = group
            .iter()
            .flat_map(|(_, i)| [spans[*i].start, spans[*i].end])
            .collect();
        reading.bytes += token.len();
        let at = tree::boundaries(text, token, &points);
        for (k, (_, i)) in group.iter().enumerate() {
            kept[*i] = at[2 * k] && at[2 * k + 1];
        }
    }
    kept
}

/// The request read whole with every hole at its first value, and what a check needs of it.
struct Whole<'a> {
    text: &'a str,
    spans: &'a [Range<usize>],
    /// Per hole: its value lies between two units of a string any string fits.
    strings: Vec<bool>,
}

impl Whole<'_> {
    /// Whether the request reads as the message with hole `i` at `put` (its text as written),
    /// decided from the smallest of its `places` that keeps its shape; `false` where none can
    /// say or it does not read (the whole request then decides).
    fn fits(
        &self,
        i: usize,
        put: &str,
        places: &[Place<'_>],
        oneofs: &mut Oneofs,
        reading: &mut Reading,
    ) -> bool {
        let hole = &self.spans[i];
        for place in places {
            if let How::AnyString = place.how {
                if self.strings[i] {
                    reading.bytes += put.len() + 2;
                    if serde_json::from_str::<String>(&format!("\"{put}\"")).is_ok() {
                        return true;
                    }
                }
                continue;
            }
            let new = format!(
                "{}{put}{}",
                &self.text[place.replaced.start..hole.start],
                &self.text[hole.end..place.replaced.end]
            );
            let part = match &place.how {
                How::Member { part, .. } | How::Entry { part, .. } => *part,
                _ => Part::Value,
            };
            // It stays one key or one value (nested no deeper), or it changes what is around
            // it; whether it is valid is the reading's to say.
            reading.bytes += new.len();
            let one = match part {
                Part::Key => serde_json::from_str::<String>(&new).is_ok(),
                Part::Value => tree::depth(&new).is_some_and(|d| d <= place.depth),
            };
            if one {
                return self.reads(place, &new, oneofs, reading);
            }
        }
        false
    }

    /// Whether `place`, with `new` in place of the text it replaces, reads alone.
    fn reads(
        &self,
        place: &Place<'_>,
        new: &str,
        oneofs: &mut Oneofs,
        reading: &mut Reading,
    ) -> bool {
        let text = self.text;
        let pair = |m: &tree::Member, part: Part| match part {
            Part::Key => (new, &text[m.value.clone()]),
            Part::Value => (&text[m.key.clone()], new),
        };
        match &place.how {
            How::Member {
                message,
                object,
                index,
                part,
            } => {
                let (k, v) = pair(&object[*index], *part);
                let doc = format!("{{{k}:{v}}}");
                reading.bytes += doc.len();
                let Some(read) = read_as(message, &doc) else {
                    return false;
                };
                !oneofs.clash(message, text, object, *index, &read, |doc| {
                    reading.bytes += doc.len();
                    read_as(message, doc)
                })
            }
            How::Element { message, field } => {
                let doc = format!("{{{}:[{new}]}}", &text[field.clone()]);
                reading.bytes += doc.len();
                read_as(message, &doc).is_some()
            }
            How::Entry {
                message,
                field,
                entry,
                part,
            } => {
                let (k, v) = pair(entry, *part);
                let doc = format!("{{{}:{{{k}:{v}}}}}", &text[field.clone()]);
                reading.bytes += doc.len();
                read_as(message, &doc).is_some()
            }
            How::Value(value) => {
                reading.bytes += new.len();
                read_as(value, new).is_some()
            }
            How::AnyString => false,
        }
    }
}

#[cfg(test)]
mod tests;
