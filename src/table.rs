//! Plain-text tables for the terminal (columns padded to their widest cell), and numbers as
//! labels.
//!
//! The gate's checks and the comparison print through this, so every table the tool prints
//! reads the same way. The first `left` columns are left-aligned (names), the rest
//! right-aligned (numbers).
//!
//! Text from a file (a profile's or a strategy's name in a results file from elsewhere) is
//! printed through [`printable`], so that it can never move the cursor, clear the screen or
//! reorder what follows on the terminal: every cell of a table is.

use std::borrow::Cow;
use std::io::{self, Write};

/// Whether `c` must not reach a terminal as it is: a control character, or a Unicode character
/// that reorders text (bidi marks, embeddings, overrides and isolates). Names a profile gives
/// are refused if they hold one; text read from files is escaped ([`printable`]).
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text of several lines (an error message) with [`printable`]'s escapes, line breaks kept.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_hostile(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(printable)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// `text` with its control characters, and the Unicode characters that reorder text (bidi
/// embeddings, overrides and isolates), written as escapes (`\u{1b}`), for the terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    let hostile = is_hostile;
    if !text.chars().any(hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes `headers` and `rows`, two spaces between columns.
pub fn write(
    w: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
    left: usize,
) -> io::Result<()> {
    let headers: Vec<Cow<'_, str>> = headers.iter().map(|h| printable(h)).collect();
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c)).collect())
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |w: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i < left {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
        }
        writeln!(w, "{}", text.trim_end())
    };
    line(w, &mut headers.iter().map(|h| h.as_ref()))?;
    for row in &rows {
        line(w, &mut row.iter().map(|c| c.as_ref()))?;
    }
    Ok(())
}

/// A number as a label: no trailing zeros, at most three decimals.
pub fn short(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let text = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').into()
    } else {
        text
    }
}

/// A number with as many decimals as its size deserves, trailing zeros cut.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let text = if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else if v.abs() < 0.001 {
        return format!("{v:.2e}");
    } else {
        format!("{v:.4}")
    };
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    trimmed.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_string(), "1.5".to_string()],
            vec!["long name".to_string(), "10".to_string()],
        ];
        super::write(&mut out, &["name", "value"], &rows, 1).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "name       value\na            1.5\nlong name     10\n"
        );
    }

    #[test]
    fn control_and_reordering_characters_are_escaped() {
        assert_eq!(super::printable("plain é"), "plain é");
        assert_eq!(
            super::printable("a\u{1b}[2Jb\u{202e}c\n"),
            "a\\u{1b}[2Jb\\u{202e}c\\u{a}"
        );
    }
}
