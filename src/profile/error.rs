//! Profile errors that say where: the file, the line and column, the field, what was expected.
//!
//! A profile is checked in two passes: parsing (syntax, unknown keys, wrong types) and
//! validation (values that parse but make no sense: rate 0, warmup ≥ duration, duplicate
//! strategy names). Both passes report a [`FieldPath`]; this module finds that field's position
//! in the source text, so every error points at a line whatever pass found it.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// A number as an error message shows it: as written for everyday values, in scientific
/// notation beyond (`1e300`, not three hundred digits).
#[derive(Debug, Clone, Copy)]
pub struct Num(pub f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v == 0.0 || !v.is_finite() || (1e-6..1e15).contains(&v.abs()) {
            write!(f, "{v}")
        } else {
            write!(f, "{v:e}")
        }
    }
}

/// A path to a field in a profile, like `strategies[1].deadline`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A key of a table.
    Key(String),
    /// An element of an array.
    Index(usize),
}

impl FieldPath {
    /// Parses a dotted path like `load.steps[2].rate`.
    pub fn parse(text: &str) -> Self {
        let mut segs = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                segs.push(Seg::Key(rest[..open].to_string()));
                rest = &rest[open..];
                while let Some(close) = rest.find(']') {
                    if let Ok(i) = rest[1..close].parse() {
                        segs.push(Seg::Index(i));
                    }
                    rest = &rest[close + 1..];
                }
            } else {
                segs.push(Seg::Key(rest.to_string()));
            }
        }
        Self(segs)
    }

    /// Whether the path names nothing (the whole document).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&serde_path_to_error::Path> for FieldPath {
    fn from(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        Self(
            path.iter()
                .filter_map(|seg| match seg {
                    Segment::Seq { index } => Some(Seg::Index(*index)),
                    Segment::Map { key } => Some(Seg::Key(key.clone())),
                    Segment::Enum { .. } | Segment::Unknown => None,
                })
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Line and column (both from 1) of a byte offset, and the text of that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Line number, from 1.
    pub line: usize,
    /// Column number in characters, from 1.
    pub column: usize,
    /// The whole line, for the error's excerpt.
    pub text: String,
}

impl Location {
    /// The location of byte `offset` in `source`.
    pub fn of(source: &str, offset: usize) -> Self {
        let offset = offset.min(source.len());
        let offset = (0..=offset)
            .rev()
            .find(|&o| source.is_char_boundary(o))
            .unwrap_or(0);
        let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[offset..]
            .find('\n')
            .map_or(source.len(), |i| offset + i);
        Self {
            line: source[..offset].matches('\n').count() + 1,
            column: source[line_start..offset].chars().count() + 1,
            text: source[line_start..line_end]
                .trim_end_matches('\r')
                .to_string(),
        }
    }
}

/// The byte span of the value at `path` in a TOML document, or of the nearest enclosing value
/// that exists (a missing key points at its table). `None` if the text does not parse.
pub fn span_of(source: &str, path: &FieldPath) -> Option<Range<usize>> {
    let root = DeTable::parse(source).ok()?;
    let mut span = root.span();
    let mut value = DeValue::Table(root.into_inner());
    for seg in &path.0 {
        let next = match seg {
            Seg::Key(k) => value.get(k.as_str()),
            Seg::Index(i) => value.get(*i),
        };
        match next {
            Some(v) => {
                span = v.span();
                value = v.get_ref().clone();
            }
            None => break,
        }
    }
    Some(span)
}

/// An error in a profile, or in a command-line override of one of its values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProfileError {
    /// The profile's path as the user gave it.
    pub file: String,
    /// Where in the file, when known.
    pub location: Option<Box<Location>>,
    /// The command-line flag the bad value came from, when it did not come from the file.
    pub flag: Option<String>,
    /// The field, like `load.rate` (empty for syntax errors).
    pub field: FieldPath,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ProfileError {
    /// An error at `field`, located in `source` when the field can be found there.
    pub fn at(file: &str, source: Option<&str>, field: FieldPath, message: String) -> Self {
        let location = source.and_then(|src| {
            span_of(src, &field).map(|span| Box::new(Location::of(src, span.start)))
        });
        Self {
            file: file.to_string(),
            location,
            flag: None,
            field,
            message,
        }
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.flag, &self.location) {
            (Some(flag), _) => write!(f, "{flag} (overriding {}): ", self.file)?,
            (None, Some(loc)) => write!(f, "{}:{}:{}: ", self.file, loc.line, loc.column)?,
            (None, None) => write!(f, "{}: ", self.file)?,
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if let (None, Some(loc)) = (&self.flag, &self.location) {
            let gutter = " ".repeat(loc.line.to_string().len());
            let pad: String = loc
                .text
                .chars()
                .take(loc.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n {gutter} |\n {} | {}\n {gutter} | {pad}^",
                loc.line, loc.text
            )?;
        }
        Ok(())
    }
}

/// A parser's "invalid type: string \"1k\", expected f64", with what to write instead: `1000`
/// for `"1k"`, `0.01` for `"1%"`, the digits without quotes otherwise. Other messages come
/// back as they were.
pub fn number_in_words(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: string \"") else {
        return message.to_string();
    };
    let Some((written, expected)) = rest.split_once("\", expected ") else {
        return message.to_string();
    };
    if !matches!(
        expected,
        "f64" | "f32" | "u64" | "u32" | "usize" | "i64" | "a number"
    ) {
        return message.to_string();
    }
    let t = written.trim();
    let advice = if let Some(p) = t
        .strip_suffix('%')
        .and_then(|p| p.trim().parse::<f64>().ok())
    {
        format!(
            "a number written as text; this one is a fraction of 1: write {} for {t}, without \
             quotes",
            p / 100.0
        )
    } else if let Some(k) = t
        .strip_suffix(['k', 'K'])
        .and_then(|k| k.trim().parse::<f64>().ok())
    {
        format!(
            "a number written as text: write {} for {t}, without quotes",
            k * 1000.0
        )
    } else if let Ok(v) = t.parse::<f64>() {
        format!("a number written as text: write {v}, without quotes")
    } else {
        "expected a number, without quotes".to_string()
    };
    format!("{message} ({advice})")
}

/// The candidate nearest `word`, if it is near enough to be a slip of the keyboard
/// (Damerau–Levenshtein distance at most a third of the longer word, ignoring case).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d > 0 || c.to_lowercase() == lower)
        .filter(|(d, c)| *d <= (word.chars().count().max(c.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A parser's "unknown field `rtae`, expected one of `rate`, ..." with the likely key named:
/// "unknown field `rtae` (did you mean `rate`?), expected one of ...". Messages of another
/// shape come back as they were.
pub fn with_suggestion(message: &str) -> String {
    let Some(at) = message.find("unknown ") else {
        return message.to_string();
    };
    let ticks = |text: &str| -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find('`') {
            let Some(len) = rest[open + 1..].find('`') else {
                break;
            };
            out.push((
                offset + open + 1 + len + 1,
                rest[open + 1..open + 1 + len].to_string(),
            ));
            offset += open + len + 2;
            rest = &rest[open + len + 2..];
        }
        out
    };
    let words = ticks(&message[at..]);
    let Some(((end, bad), expected)) = words.split_first() else {
        return message.to_string();
    };
    let Some(expected_at) = message[at..].find("expected") else {
        return message.to_string();
    };
    let candidates: Vec<&str> = words
        .iter()
        .filter(|(e, _)| *e > expected_at)
        .map(|(_, w)| w.as_str())
        .collect();
    let _ = expected;
    match closest(bad, candidates) {
        Some(near) => {
            let cut = at + end;
            format!(
                "{} (did you mean `{near}`?){}",
                &message[..cut],
                &message[cut..]
            )
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_written_as_text_are_refused_in_words() {
        assert_eq!(
            number_in_words("invalid type: string \"1k\", expected f64"),
            "invalid type: string \"1k\", expected f64 (a number written as text: write 1000 \
             for 1k, without quotes)"
        );
        assert_eq!(
            number_in_words("invalid type: string \"1%\", expected f64"),
            "invalid type: string \"1%\", expected f64 (a number written as text; this one is \
             a fraction of 1: write 0.01 for 1%, without quotes)"
        );
        assert_eq!(
            number_in_words("invalid type: string \"fast\", expected f64"),
            "invalid type: string \"fast\", expected f64 (expected a number, without quotes)"
        );
        assert_eq!(number_in_words("missing field"), "missing field");
    }

    #[test]
    fn slips_get_a_suggestion() {
        assert_eq!(
            with_suggestion("unknown field `rtae`, expected one of `arrival`, `rate`, `steps`"),
            "unknown field `rtae` (did you mean `rate`?), expected one of `arrival`, `rate`, `steps`"
        );
        assert_eq!(
            with_suggestion("unknown kind `grpc-retry`, expected one of `timeout`, `grpc_retry`"),
            "unknown kind `grpc-retry` (did you mean `grpc_retry`?), expected one of `timeout`, `grpc_retry`"
        );
        let far = "unknown field `zzz`, expected one of `arrival`, `rate`";
        assert_eq!(with_suggestion(far), far);
        assert_eq!(with_suggestion("invalid type"), "invalid type");
        assert_eq!(
            closest("quickstrat", ["quickstart", "hedging"]),
            Some("quickstart")
        );
        assert_eq!(closest("Naive", ["naive", "no-retries"]), Some("naive"));
        assert_eq!(closest("x", ["naive"]), None);
    }

    const DOC: &str = "name = \"x\"\n\n[load]\nrate = 0\n\n[[strategies]]\nname = \"a\"\n\n[[strategies]]\nname = \"b\"\n";

    fn locate(path: &str) -> (usize, usize) {
        let span = span_of(DOC, &FieldPath::parse(path)).unwrap();
        let loc = Location::of(DOC, span.start);
        (loc.line, loc.column)
    }

    #[test]
    fn finds_values_in_tables_and_arrays_of_tables() {
        assert_eq!(locate("load.rate"), (4, 8));
        assert_eq!(locate("strategies[1].name"), (10, 8));
        assert_eq!(locate("strategies[0].name"), (7, 8));
    }

    #[test]
    fn a_missing_key_points_at_its_table() {
        let (line, _) = locate("load.duration");
        assert!(line <= 4, "points into [load], got line {line}");
    }

    #[test]
    fn paths_parse_and_print() {
        let p = FieldPath::parse("strategies[3].layers[0].timeout");
        assert_eq!(p.to_string(), "strategies[3].layers[0].timeout");
        assert_eq!(p.0.len(), 5);
    }

    #[test]
    fn display_names_file_line_field_and_shows_the_line() {
        let e = ProfileError::at(
            "p.toml",
            Some(DOC),
            FieldPath::parse("load.rate"),
            "must be above 0".into(),
        );
        let text = e.to_string();
        assert!(
            text.starts_with("p.toml:4:8: load.rate: must be above 0"),
            "{text}"
        );
        assert!(text.contains("4 | rate = 0"), "{text}");
    }
}
