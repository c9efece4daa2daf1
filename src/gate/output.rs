//! The gate's verdict, written three ways: a terminal table, a markdown summary for a CI job
//! page (GitHub's `$GITHUB_STEP_SUMMARY`, GitLab's, ...), and JUnit XML that CI systems list
//! as tests (one test case per check).
//!
//! Every writer takes `&mut impl Write`, so what the user sees is testable; every string from a
//! results or gate file is escaped for the format it lands in.

use std::io::{self, Write};

use super::evaluate::{Kind, Outcome, Verdict};

/// The headline: how many checks, how many failed.
fn headline(v: &Verdict) -> String {
    let n = v.checks.len();
    if v.passed() {
        format!("gate passed: {n} checks, none failed")
    } else {
        format!("GATE FAILED: {} of {n} checks failed", v.failures())
    }
}

/// The terminal table, then notes and the headline.
pub fn write_table(w: &mut impl Write, v: &Verdict, title: &str) -> io::Result<()> {
    writeln!(w, "{title}\n")?;
    let rows: Vec<Vec<String>> = v
        .checks
        .iter()
        .map(|c| {
            vec![
                c.strategy.clone(),
                c.figure.clone(),
                c.limit.clone(),
                c.value.clone(),
                c.outcome.word().to_string(),
            ]
        })
        .collect();
    crate::table::write(
        w,
        &["strategy", "figure", "limit", "value", "result"],
        &rows,
        3,
    )?;
    writeln!(w)?;
    for note in &v.notes {
        writeln!(w, "note: {}", crate::table::printable(note))?;
    }
    writeln!(w, "{}", headline(v))
}

fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' | '*' | '_' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A markdown summary: the headline, failures first, then every other check.
pub fn write_markdown(w: &mut impl Write, v: &Verdict, title: &str) -> io::Result<()> {
    let mark = if v.passed() { "✅" } else { "❌" };
    writeln!(w, "### {mark} resilbench {}\n", md(&headline(v)))?;
    writeln!(w, "{}\n", md(title))?;
    writeln!(w, "| | strategy | figure | limit | value |")?;
    writeln!(w, "|---|---|---|---|---|")?;
    let failed = v.checks.iter().filter(|c| c.outcome == Outcome::Fail);
    let rest = v.checks.iter().filter(|c| c.outcome != Outcome::Fail);
    for c in failed.chain(rest) {
        let icon = match c.outcome {
            Outcome::Pass => "✅",
            Outcome::Fail => "❌",
            Outcome::Allowed => "⚠️ allowed",
            Outcome::Skipped => "⏭️ skipped",
        };
        writeln!(
            w,
            "| {icon} | {} | {} | {} | {} |",
            md(&c.strategy),
            md(&c.figure),
            md(&c.limit),
            md(&c.value)
        )?;
    }
    if !v.notes.is_empty() {
        writeln!(w)?;
        for note in &v.notes {
            writeln!(w, "- {}", md(note))?;
        }
    }
    Ok(())
}

/// Escapes text for XML content and attributes; drops characters XML 1.0 cannot carry.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testsuite>` for the gate, one `<testcase>` per check.
pub fn write_junit(w: &mut impl Write, v: &Verdict, suite: &str) -> io::Result<()> {
    let count = |o: Outcome| v.checks.iter().filter(|c| c.outcome == o).count();
    let (tests, failures, skipped) = (
        v.checks.len(),
        count(Outcome::Fail),
        count(Outcome::Skipped),
    );
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<testsuites name="resilbench check" tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}">"#
    )?;
    writeln!(
        w,
        r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}">"#,
        xml(suite)
    )?;
    for c in &v.checks {
        // Stable across runs (strategy and figure only), so that a CI's test history follows
        // one check from run to run; the numbers go in the message.
        let name = xml(&match c.kind {
            Kind::Limit => c.figure.clone(),
            Kind::Budget => format!("{} (budget)", c.figure),
            Kind::Trust => c.figure.clone(),
        });
        let class = xml(&format!("resilbench.gate.{}", c.strategy));
        let said = xml(&format!(
            "{}: {} is {}; limit {}",
            c.strategy, c.figure, c.value, c.limit
        ));
        write!(w, r#"    <testcase classname="{class}" name="{name}""#)?;
        match c.outcome {
            Outcome::Pass => writeln!(
                w,
                ">\n      <system-out>{said}</system-out>\n    </testcase>"
            )?,
            Outcome::Fail => writeln!(
                w,
                ">\n      <failure message=\"{said}\" type=\"gate\">{said}</failure>\n    </testcase>"
            )?,
            Outcome::Skipped => writeln!(
                w,
                ">\n      <skipped message=\"no --baseline given\"/>\n    </testcase>"
            )?,
            Outcome::Allowed => writeln!(
                w,
                ">\n      <system-out>{said} (allowed: allow_untrusted = true)</system-out>\n    </testcase>"
            )?,
        }
    }
    writeln!(w, "  </testsuite>\n</testsuites>")
}

/// A figure's value for a table: as a percentage when its limit was written as one.
pub fn show(value: Option<f64>, percent: bool) -> String {
    match value {
        None => "not measured".into(),
        Some(v) if percent => format!("{}%", number(v * 100.0)),
        Some(v) => number(v),
    }
}

pub use crate::table::number;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_each_format() {
        assert_eq!(xml("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(md("a|b <i> `c` x_y"), "a\\|b &lt;i&gt; \\`c\\` x\\_y");
    }

    #[test]
    fn numbers_keep_the_digits_that_matter() {
        assert_eq!(number(250.0), "250");
        assert_eq!(number(31.375), "31.375");
        assert_eq!(number(0.99178), "0.9918");
        assert_eq!(number(123.456), "123.5");
        assert_eq!(number(0.00002), "2.00e-5");
        assert_eq!(show(Some(0.995), true), "99.5%");
        assert_eq!(show(None, false), "not measured");
    }
}
