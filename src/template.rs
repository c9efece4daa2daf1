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

/// Placeholders ghz offers that depend on the wall clock or on its workers, with what to
/// use instead.
const REFUSED: [(&str, &str); 8] = [
    (".Timestamp", "the wall clock"),
    (".TimestampUnix", "the wall clock"),
    (".TimestampUnixMilli", "the wall clock"),
    (".TimestampUnixNano", "the wall clock"),
    (
        ".WorkerID",
        "ghz's workers (resilbench sends on a schedule, not from workers)",
    ),
    (
        ".FullyQualifiedName",
        "nothing a call changes (write the name)",
    ),
    (".MethodName", "nothing a call changes (write the name)"),
    (".ServiceName", "nothing a call changes (write the name)"),
];

/// Every placeholder name, for "did you mean".
const NAMES: [&str; 11] = [
    "call",
    "request_id",
    "uuid",
    "newUUID",
    "int",
    "randomInt",
    "choice",
    "string",
    "randomString",
    ".RequestNumber",
    ".UUID",
];

impl Value {
    fn parse(inner: &str, written: &str) -> Result<Self, TemplateError> {
        let err = |m: String| TemplateError(format!("`{written}`: {m}"));
        let words = words(inner).map_err(err)?;
        let Some((name, args)) = words.split_first() else {
            return Err(err(format!(
                "an empty placeholder; expected one of {}",
                NAMES.join(", ")
            )));
        };
        let no_args = |v: Value| {
            if args.is_empty() {
                Ok(v)
            } else {
                Err(err(format!("`{name}` takes no arguments")))
            }
        };
        let int = |i: usize| -> Result<i64, TemplateError> {
            args[i]
                .parse()
                .map_err(|_| err(format!("`{}` is not an integer", args[i])))
        };
        match name.as_str() {
            "call" | ".RequestNumber" => no_args(Value::Call),
            "request_id" => no_args(Value::RequestId),
            "uuid" | ".UUID" => no_args(Value::Uuid),
            "newUUID" => no_args(Value::FreshUuid),
            "int" | "randomInt" => {
                if args.len() != 2 {
                    return Err(err(format!("`{name}` takes two integers, from and to")));
                }
                let (lo, hi) = (int(0)?, int(1)?);
                // ghz's randomInt leaves its upper bound out.
                let hi = if name == "randomInt" {
                    if hi <= lo {
                        return Err(err(format!(
                            "`randomInt {lo} {hi}` has no value: the upper bound is left out, as in ghz"
                        )));
                    }
                    hi - 1
                } else {
                    hi
                };
                if lo > hi {
                    return Err(err(format!("from {lo} to {hi} is empty")));
                }
                Ok(Value::Int { lo, hi })
            }
            "choice" => {
                if args.is_empty() || args.len() > MAX_CHOICES {
                    return Err(err(format!("`choice` takes 1 to {MAX_CHOICES} values")));
                }
                Ok(Value::Choice(
                    args.iter().map(|a| a.as_str().into()).collect(),
                ))
            }
            "string" | "randomString" => {
                let n = match args {
                    [n] => n
                        .parse::<u64>()
                        .ok()
                        .filter(|n| (1..=MAX_STRING).contains(n)),
                    _ => None,
                };
                let n = n.ok_or_else(|| {
                    err(format!("`{name}` takes a length from 1 to {MAX_STRING}"))
                })?;
                Ok(Value::Text(n as u16))
            }
            other => {
                if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == other) {
                    return Err(err(format!(
                        "ghz's `{other}` depends on {why}; resilbench's values are keyed by the \
                         seed and the call (use `{{{{call}}}}`, `{{{{request_id}}}}` or `{{{{uuid}}}}`)"
                    )));
                }
                let near = NAMES
                    .iter()
                    .map(|n| (strsim::damerau_levenshtein(other, n), n))
                    .filter(|(d, n)| *d <= (n.len() / 3).max(1))
                    .min_by_key(|(d, _)| *d)
                    .map_or(String::new(), |(_, n)| format!(" (did you mean `{n}`?)"));
                Err(err(format!(
                    "unknown placeholder `{other}`{near}; expected one of {}",
                    NAMES.join(", ")
                )))
            }
        }
    }
}

/// The words of a placeholder: bare words split at spaces, and "quoted" strings (JSON escapes
/// inside; `\"...\"` too, as written inside a JSON string).
fn words(inner: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let escaped = rest.starts_with("\\\"");
        if rest.starts_with('"') || escaped {
            let (open, close) = if escaped {
                ("\\\"", "\\\"")
            } else {
                ("\"", "\"")
            };
            let body = &rest[open.len()..];
            let end = closing(body, close)
                .ok_or_else(|| format!("a string opened with {open} is not closed"))?;
            let quoted = format!("\"{}\"", &body[..end]);
            let value: String = serde_json::from_str(&quoted)
                .map_err(|e| format!("{open}{}{close} is not a string: {e}", &body[..end]))?;
            out.push(value);
            rest = body[end + close.len()..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    Ok(out)
}

/// Where `close` ends a string body that may hold backslash escapes.
fn closing(body: &str, close: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if body[i..].starts_with(close) {
            return Some(i);
        }
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    None
}

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A draw of `n` equally likely outcomes from 64 random bits (Lemire's multiply-shift).
#[inline]
fn below(x: u64, n: u128) -> u128 {
    (u128::from(x) * n) >> 64
}

impl Hole {
    /// Writes the value for the call keyed by `keys`.
    #[inline]
    pub fn write<S: Sink>(&self, keys: &Keys, out: &mut S) {
        match &self.value {
            Value::Call => out.push(itoa::Buffer::new().format(keys.call)),
            Value::RequestId => {
                let id = keys.stream(0, Purpose::RequestId).next_u64();
                let mut hex = [0u8; 16];
                for (i, b) in hex.iter_mut().enumerate() {
                    *b = HEX[((id >> (60 - 4 * i)) & 0xf) as usize];
                }
                out.push(std::str::from_utf8(&hex).unwrap_or_default());
            }
            Value::Uuid => uuid(keys.stream(0, Purpose::Uuid), out),
            Value::FreshUuid => uuid(keys.stream(self.slot, Purpose::TemplateDraw), out),
            Value::Int { lo, hi } => {
                let x = keys.stream(self.slot, Purpose::TemplateDraw).next_u64();
                let span = (i128::from(*hi) - i128::from(*lo) + 1) as u128;
                let v = i128::from(*lo) + below(x, span) as i128;
                out.push(itoa::Buffer::new().format(v as i64));
            }
            Value::Choice(values) => {
                let x = keys.stream(self.slot, Purpose::TemplateDraw).next_u64();
                out.push(&values[below(x, values.len() as u128) as usize]);
            }
            Value::Text(n) => {
                let mut s = keys.stream(self.slot, Purpose::TemplateDraw);
                let mut chunk = [0u8; 64];
                let mut left = usize::from(*n);
                while left > 0 {
                    let k = left.min(chunk.len());
                    for c in &mut chunk[..k] {
                        *c = ALPHANUMERIC[below(s.next_u64(), 62) as usize];
                    }
                    out.push(std::str::from_utf8(&chunk[..k]).unwrap_or_default());
                    left -= k;
                }
            }
        }
    }

    /// Which choice the call keyed by `keys` gets (a `{{choice}}`'s index), for encoders that
    /// prepared every choice once.
    #[inline]
    pub fn choice(&self, keys: &Keys) -> Option<usize> {
        match &self.value {
            Value::Choice(values) => {
                let x = keys.stream(self.slot, Purpose::TemplateDraw).next_u64();
                Some(below(x, values.len() as u128) as usize)
            }
            _ => None,
        }
    }

    /// The integer the call keyed by `keys` gets (`{{call}}`, `{{int}}`).
    #[inline]
    pub fn integer(&self, keys: &Keys) -> Option<i128> {
        match &self.value {
            Value::Call => Some(i128::from(keys.call)),
            Value::Int { lo, hi } => {
                let x = keys.stream(self.slot, Purpose::TemplateDraw).next_u64();
                let span = (i128::from(*hi) - i128::from(*lo) + 1) as u128;
                Some(i128::from(*lo) + below(x, span) as i128)
            }
            _ => None,
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A version-4 UUID (RFC 9562 section 5.4) from a keyed stream, in lower-case hex.
fn uuid<S: Sink>(mut stream: KeyedStream, out: &mut S) {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&stream.next_u64().to_be_bytes());
    bytes[8..].copy_from_slice(&stream.next_u64().to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
    let mut text = [0u8; 36];
    let mut t = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text[t] = b'-';
            t += 1;
        }
        text[t] = HEX[usize::from(b >> 4)];
        text[t + 1] = HEX[usize::from(b & 0xf)];
        t += 2;
    }
    out.push(std::str::from_utf8(&text).unwrap_or_default());
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
mod tests {
    use super::*;

    fn render(text: &str, seed: u64, call: u64) -> String {
        Template::parse(text, 0)
            .unwrap()
            .to_text(&Keys::new(seed, call))
    }

    #[test]
    fn text_without_placeholders_is_constant_and_kept() {
        let t = Template::parse(r#"{"a": {"b": 1}}"#, 0).unwrap();
        assert!(t.is_constant());
        assert_eq!(t.to_text(&Keys::new(1, 5)), r#"{"a": {"b": 1}}"#);
        assert_eq!(t.to_string(), r#"{"a": {"b": 1}}"#);
        assert!(!Template::parse("{{call}}", 0).unwrap().is_constant());
    }

    /// The call's values are the call's: the same for every placeholder of the call, keyed by
    /// the seed and the call, another for another call or seed.
    #[test]
    fn call_values_are_the_calls_and_keyed() {
        assert_eq!(
            render("id-{{call}}/{{ .RequestNumber }}", 1, 42),
            "id-42/42"
        );
        let both = render("{{uuid}} {{.UUID}} {{request_id}} {{request_id}}", 7, 3);
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts[0], parts[1]);
        assert_eq!(parts[2], parts[3]);
        assert_eq!(parts[2].len(), 16);
        assert!(
            parts[2]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let uuid = parts[0];
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4", "version 4: {uuid}");
        assert!(
            matches!(&uuid[19..20], "8" | "9" | "a" | "b"),
            "variant: {uuid}"
        );
        assert_eq!(render("{{uuid}}", 7, 3), uuid);
        assert_ne!(render("{{uuid}}", 7, 4), uuid);
        assert_ne!(render("{{uuid}}", 8, 3), uuid);
        assert_ne!(render("{{request_id}}", 7, 4), parts[2]);
    }

    /// Each draw has its own stream: two placeholders differ (for some call), and each repeats
    /// for the same call; the template's number separates templates too.
    #[test]
    fn draws_are_per_placeholder() {
        let differ = (0..50).any(|call| {
            let t = render("{{newUUID}} {{newUUID}}", 1, call);
            let (a, b) = t.split_once(' ').unwrap();
            a != b
        });
        assert!(differ);
        let a = Template::parse("{{int 0 1000000}}", 0).unwrap();
        let b = Template::parse("{{int 0 1000000}}", 1).unwrap();
        let keys = Keys::new(1, 9);
        assert_eq!(a.to_text(&keys), a.to_text(&keys));
        assert_ne!(a.to_text(&keys), b.to_text(&keys));
    }

    /// Integers stay in their range, both ends reached; ghz's randomInt leaves its upper bound
    /// out; the whole i64 range works.
    #[test]
    fn integers_cover_their_range() {
        let mut seen = std::collections::BTreeSet::new();
        for call in 0..2000 {
            let v: i64 = render("{{int -2 3}}", 1, call).parse().unwrap();
            assert!((-2..=3).contains(&v));
            seen.insert(v);
            let g: i64 = render("{{randomInt 1 3}}", 1, call).parse().unwrap();
            assert!((1..3).contains(&g));
        }
        assert_eq!(seen.len(), 6);
        let wide = format!("{{{{int {} {}}}}}", i64::MIN, i64::MAX);
        for call in 0..10 {
            render(&wide, 1, call).parse::<i64>().unwrap();
        }
        let t = Template::parse("{{int 5 9}}", 0).unwrap();
        let Piece::Hole(h) = &t.pieces()[0] else {
            panic!()
        };
        assert_eq!(
            h.integer(&Keys::new(1, 2)).unwrap().to_string(),
            t.to_text(&Keys::new(1, 2))
        );
    }

    /// Choices: quoted (with JSON escapes, or `\"` as inside a JSON string) and bare, each
    /// drawn; strings of letters and digits of the length asked.
    #[test]
    fn choices_and_strings() {
        let t = Template::parse(r#"{{choice "a b" \"c\" d "e\"f"}}"#, 0).unwrap();
        let Piece::Hole(h) = &t.pieces()[0] else {
            panic!()
        };
        assert_eq!(
            h.value,
            Value::Choice(vec!["a b".into(), "c".into(), "d".into(), "e\"f".into()])
        );
        let mut seen = std::collections::BTreeSet::new();
        for call in 0..200 {
            let keys = Keys::new(3, call);
            let v = t.to_text(&keys);
            assert_eq!(v, ["a b", "c", "d", "e\"f"][h.choice(&keys).unwrap()]);
            seen.insert(v);
        }
        assert_eq!(seen.len(), 4);
        let s = render("{{string 100}}", 1, 1);
        assert_eq!(s.len(), 100);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(render("{{randomString 3}}", 1, 1).len(), 3);
    }

    #[test]
    fn bad_placeholders_say_what_is_wrong() {
        let err = |t: &str| Template::parse(t, 0).unwrap_err().0;
        assert!(
            err("a {{call").contains("not closed"),
            "{}",
            err("a {{call")
        );
        assert!(
            err("{{cal}}").contains("did you mean `call`"),
            "{}",
            err("{{cal}}")
        );
        assert!(err("{{.TimestampUnix}}").contains("wall clock"));
        assert!(err("{{int 5 1}}").contains("empty"));
        assert!(err("{{int 1}}").contains("two integers"));
        assert!(err("{{int a 2}}").contains("`a` is not an integer"));
        assert!(err("{{randomInt 3 3}}").contains("left out"));
        assert!(err("{{call 1}}").contains("no arguments"));
        assert!(err("{{choice}}").contains("1 to"));
        assert!(err("{{string 0}}").contains("length"));
        assert!(err("{{choice \"a}}").contains("not closed"));
        assert!(err("{{}}").contains("empty"));
        assert!(err("{{ uuid 1 }}").starts_with("`{{ uuid 1 }}`"));
    }
}
