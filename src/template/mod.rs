//! Request templates: text with `{{...}}` placeholders whose values are drawn per call, keyed
//! by the run's seed and the call as the backend's draws are ([`crate::keyed`]).
//!
//! Why keyed and not random: a call carries the same values in every strategy, on every
//! attempt (a retry resends the same message, as a gRPC client does), in every shard and in
//! every run with the same seed, so strategies are compared on the same requests and a run can
//! be repeated. A value that changes with the wall clock (ghz's `{{.Timestamp}}`) would break
//! that, and is refused.
//!
//! The syntax is ghz's idea (`{{...}}` in the request, its Go template names accepted too):
//!
//! | placeholder | value | the same |
//! |---|---|---|
//! | `{{call}}`, `{{.RequestNumber}}` | the call's index in the schedule, from 0 | in the whole call |
//! | `{{request_id}}` | 16 hex digits keyed by the seed and the call | in the whole call |
//! | `{{uuid}}`, `{{.UUID}}` | a version-4 UUID keyed by the seed and the call | in the whole call |
//! | `{{newUUID}}` | a version-4 UUID drawn for this placeholder | for this placeholder |
//! | `{{int 1 100}}` | an integer from 1 to 100, both included | for this placeholder |
//! | `{{randomInt 1 100}}` | ghz's: an integer from 1 to 99 (its upper bound is left out) | for this placeholder |
//! | `{{choice "EUR" "USD" GBP}}` | one of the values, each as likely | for this placeholder |
//! | `{{string 8}}`, `{{randomString 8}}` | 8 letters and digits | for this placeholder |
//!
//! "In the whole call": `{{uuid}}` in the body and in a header of one call is the same UUID.
//! "For this placeholder": two `{{int 1 6}}` draw independently (each placeholder has its own
//! keyed stream: its template's number and its position, the stream's "attempt").
//!
//! A template is parsed once (here; what each placeholder says is read in `syntax.rs`) and
//! rendered per call (each placeholder's value drawn in `draw.rs`).

mod draw;
mod syntax;

use std::fmt;

use crate::keyed::{KeyedStream, Purpose, call_key};

/// Most placeholders in one template.
pub const MAX_HOLES: usize = 4096;

/// Longest `{{string N}}`.
pub const MAX_STRING: u64 = 1024;

/// Most values in one `{{choice}}`.
pub const MAX_CHOICES: usize = 10_000;

/// A parsed template: text and placeholders in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text as written.
    Text(Box<str>),
    /// A placeholder.
    Hole(Hole),
}

/// A placeholder: its value and the keyed stream it draws from.
#[derive(Debug, Clone, PartialEq)]
pub struct Hole {
    /// What it stands for.
    pub value: Value,
    /// Its keyed stream's "attempt": the template's number and the placeholder's position.
    slot: u32,
    /// The placeholder as written, braces included (for messages).
    pub written: Box<str>,
}

/// What a placeholder stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The call's index.
    Call,
    /// The call's request id: 16 hex digits.
    RequestId,
    /// The call's UUID.
    Uuid,
    /// A UUID drawn for the placeholder.
    FreshUuid,
    /// An integer from `lo` to `hi`, both included.
    Int {
        /// Smallest.
        lo: i64,
        /// Largest.
        hi: i64,
    },
    /// One of these, each as likely.
    Choice(Vec<Box<str>>),
    /// This many letters and digits.
    Text(u16),
}

/// Where a template's output goes: text or bytes.
pub trait Sink {
    /// Appends `s`.
    fn push(&mut self, s: &str);
}

impl Sink for String {
    #[inline]
    fn push(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn push(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// What a call's values are keyed by: the run's seed and the call's index.
#[derive(Debug, Clone, Copy)]
pub struct Keys {
    seed: u64,
    call: u64,
    key: u64,
}

impl Keys {
    /// The keys of call `call` in a run seeded `seed`.
    #[inline]
    pub fn new(seed: u64, call: u64) -> Self {
        Self {
            seed,
            call,
            key: call_key(call),
        }
    }

    fn stream(&self, slot: u32, purpose: Purpose) -> KeyedStream {
        KeyedStream::new(self.seed, self.key, slot, purpose)
    }
}

/// A template that does not parse: what is wrong, naming the placeholder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

impl Template {
    /// Parses `text`; `number` tells this template's placeholders from another's in the same
    /// call (the request is 0, each metadata entry its own), so that their draws differ.
    pub fn parse(text: &str, number: u16) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut holes = 0;
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].into()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                let shown: String = rest[open..].chars().take(40).collect();
                TemplateError(format!(
                    "`{shown}`: a placeholder opened with {{{{ is not closed with }}}}"
                ))
            })?;
            let written = &rest[open..open + 2 + close + 2];
            if holes >= MAX_HOLES {
                return Err(TemplateError(format!(
                    "more than {MAX_HOLES} placeholders in one template"
                )));
            }
            pieces.push(Piece::Hole(Hole {
                value: Value::parse(&after[..close], written)?,
                slot: (u32::from(number) << 16) | holes as u32,
                written: written.into(),
            }));
            holes += 1;
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.into()));
        }
        Ok(Self { pieces })
    }

    /// Whether it has no placeholder (the same text for every call).
    pub fn is_constant(&self) -> bool {
        !self.pieces.iter().any(|p| matches!(p, Piece::Hole(_)))
    }

    /// Its pieces in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The text for the call keyed by `keys`.
    #[inline]
    pub fn render<S: Sink>(&self, keys: &Keys, out: &mut S) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push(t),
                Piece::Hole(h) => h.write(keys, out),
            }
        }
    }

    /// The text for the call keyed by `keys`, as a `String`.
    pub fn to_text(&self, keys: &Keys) -> String {
        let mut out = String::new();
        self.render(keys, &mut out);
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => f.write_str(t)?,
                Piece::Hole(h) => f.write_str(&h.written)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
