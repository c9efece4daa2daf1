//! Where things lie in the request's JSON: each value's span, each member's key and value, and
//! the units of a string, for the parts of the text a placeholder touches.
//!
//! Why spans and not serde_json's `Value`: the check puts one placeholder value in at a time
//! and reads again only the part around it ([`super`]), so it needs the places, in bytes, of
//! the values, keys and members that hold each placeholder. The text has already been parsed
//! as the message (it is valid JSON): this reads its structure only, once, and keeps the nodes
//! that meet a placeholder (an object's members all, with their spans, for its oneofs).

use std::ops::Range;

/// A JSON value and, where it meets a placeholder, what is inside.
#[derive(Debug)]
pub struct Node {
    /// Its text.
    pub span: Range<usize>,
    /// How deeply it nests: 0 for a scalar, an object or list one more than its deepest value.
    pub depth: usize,
    /// What it is.
    pub kind: Kind,
}

/// What a value is.
#[derive(Debug)]
pub enum Kind {
    /// An object: every member, in order.
    Object(Vec<Member>),
    /// A list: the elements that meet a placeholder, in order.
    Array(Vec<Node>),
    /// A string (its span includes the quotes).
    String,
    /// A number, `true`, `false` or `null`.
    Other,
}

/// An object's member.
#[derive(Debug)]
pub struct Member {
    /// The key, quotes included.
    pub key: Range<usize>,
    /// The value.
    pub value: Range<usize>,
    /// The value's node, if it meets a placeholder.
    pub node: Option<Node>,
}

/// The structure of `text` (valid JSON), keeping the nodes that meet a span of `holes` (sorted,
/// apart); `None` if the text is not what the scan expects.
pub fn scan(text: &str, holes: &[Range<usize>]) -> Option<Node> {
    let mut s = Scanner {
        b: text.as_bytes(),
        pos: 0,
        holes,
    };
    s.ws();
    let root = s.value()?;
    s.ws();
    (s.pos == s.b.len()).then_some(root)
}

/// How deeply `text` nests, if it is one JSON value (as far as its structure goes: its
/// scalars are not checked).
pub fn depth(text: &str) -> Option<usize> {
    scan(text, &[]).map(|n| n.depth)
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    holes: &'a [Range<usize>],
}

impl Scanner<'_> {
    /// Whether `span` meets a placeholder (touching counts: a value a placeholder extends).
    fn meets(&self, span: &Range<usize>) -> bool {
        let i = self.holes.partition_point(|h| h.end < span.start);
        self.holes.get(i).is_some_and(|h| h.start <= span.end)
    }

    fn ws(&mut self) {
        while matches!(self.b.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn at(&self, c: u8) -> bool {
        self.b.get(self.pos) == Some(&c)
    }

    fn value(&mut self) -> Option<Node> {
        let start = self.pos;
        let (depth, kind) = match *self.b.get(self.pos)? {
            b'{' => self.object()?,
            b'[' => self.array()?,
            b'"' => {
                self.string()?;
                (0, Kind::String)
            }
            _ => {
                while !matches!(
                    self.b.get(self.pos),
                    None | Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b'}' | b']')
                ) {
                    self.pos += 1;
                }
                if self.pos == start {
                    return None;
                }
                (0, Kind::Other)
            }
        };
        Some(Node {
            span: start..self.pos,
            depth,
            kind,
        })
    }

    fn string(&mut self) -> Option<()> {
        self.pos += 1;
        loop {
            match *self.b.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
    }

    fn object(&mut self) -> Option<(usize, Kind)> {
        self.pos += 1;
        self.ws();
        let mut members = Vec::new();
        let mut depth = 0;
        if self.at(b'}') {
            self.pos += 1;
            return Some((1, Kind::Object(members)));
        }
        loop {
            let start = self.pos;
            if !self.at(b'"') {
                return None;
            }
            self.string()?;
            let key = start..self.pos;
            self.ws();
            if !self.at(b':') {
                return None;
            }
            self.pos += 1;
            self.ws();
            let node = self.value()?;
            depth = depth.max(node.depth);
            let value = node.span.clone();
            let node = self.meets(&value).then_some(node);
            members.push(Member { key, value, node });
            if !self.next(b'}')? {
                return Some((depth + 1, Kind::Object(members)));
            }
        }
    }

    fn array(&mut self) -> Option<(usize, Kind)> {
        self.pos += 1;
        self.ws();
        let mut elements = Vec::new();
        let mut depth = 0;
        if self.at(b']') {
            self.pos += 1;
            return Some((1, Kind::Array(elements)));
        }
        loop {
            let node = self.value()?;
            depth = depth.max(node.depth);
            if self.meets(&node.span) {
                elements.push(node);
            }
            if !self.next(b']')? {
                return Some((depth + 1, Kind::Array(elements)));
            }
        }
    }

    /// After a member or element: `Some(true)` at a comma (another follows), `Some(false)` at
    /// `close` (the end).
    fn next(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let c = *self.b.get(self.pos)?;
        self.pos += 1;
        match c {
            b',' => {
                self.ws();
                Some(true)
            }
            c if c == close => Some(false),
            _ => None,
        }
    }
}

/// For each of `points` (sorted, between the quotes of the string `token` of `text`), whether
/// it falls between two of the string's units: a character, an escape, a surrogate pair's two
/// escapes as one. Text put in at such a point cannot join with the string around it.
pub fn boundaries(text: &str, token: &Range<usize>, points: &[usize]) -> Vec<bool> {
    let b = text.as_bytes();
    let end = token.end.saturating_sub(1);
    let mut i = token.start + 1;
    // Whether the unit before `i` is a high surrogate's escape, whose low half must follow.
    let mut pair = false;
    let mut out = Vec::with_capacity(points.len());
    for &point in points {
        while i < point && i < end {
            let (len, high) = unit(b, i);
            pair = high;
            i += len;
        }
        out.push(i == point && !pair && point <= end);
    }
    out
}

/// The length of the string unit at `i`, and whether it is a high surrogate's escape.
fn unit(b: &[u8], i: usize) -> (usize, bool) {
    match b[i] {
        b'\\' if b.get(i + 1) == Some(&b'u') => {
            let high = b
                .get(i + 2..i + 6)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u16::from_str_radix(h, 16).ok())
                .is_some_and(|v| (0xD800..0xDC00).contains(&v));
            (6, high)
        }
        b'\\' => (2, false),
        c if c < 0x80 => (1, false),
        c if c >= 0xF0 => (4, false),
        c if c >= 0xE0 => (3, false),
        _ => (2, false),
    }
}
