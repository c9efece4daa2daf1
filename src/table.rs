//! Plain-text tables for the terminal (columns padded to their widest cell), and numbers as
//! labels.
//!
//! The gate's checks and the comparison print through this, so every table the tool prints
//! reads the same way. The first `left` columns are left-aligned (names), the rest
//! right-aligned (numbers).

use std::io::{self, Write};

/// Writes `headers` and `rows`, two spaces between columns.
pub fn write(
    w: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
    left: usize,
) -> io::Result<()> {
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
    line(w, &mut headers.iter().copied())?;
    for row in rows {
        line(w, &mut row.iter().map(String::as_str))?;
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
}
