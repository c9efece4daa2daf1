//! The HTML around the charts: escaping, the page frame and its inline style.
//!
//! A report must open from disk, years later, on a machine with no network: everything is
//! inline (CSS, SVG), and a Content-Security-Policy forbids scripts and any outside resource,
//! so even a report built from a hostile results file can run nothing. Every string that comes
//! from a profile or a results file goes through [`esc`].

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours, spacing and table style of every page. Colour-blind-safe strategy colours are in
/// the charts themselves ([`super::palette`]).
const STYLE: &str = r#"
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--fg); margin: 0 auto; max-width: 1400px; padding: 24px; line-height: 1.45; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 20px 0 6px; }
p.meta, .note, figcaption { color: var(--muted); font-size: 0.9rem; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; font-size: 0.92rem; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: right; vertical-align: top; }
th { background: var(--bg-soft); }
td.name, th.name, td.text { text-align: left; }
td.name { white-space: nowrap; }
td.text { overflow-wrap: anywhere; }
td.best { font-weight: 700; background: #e6f4ea; white-space: nowrap; }
table.verdict td { white-space: nowrap; }
table.verdict tr.out td { color: var(--muted); }
table.verdict tr.choice td.name { font-weight: 700; }
p.answer { font-size: 1.1rem; font-weight: 600; margin: 8px 0 12px; }
td.worse { background: #fde8e8; font-weight: 700; }
td.better { background: #e6f4ea; font-weight: 700; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; margin-right: 6px;
  vertical-align: -0.1em; }
.banner { border: 2px solid #b35806; background: #fff4e5; padding: 10px 16px; margin: 16px 0; border-radius: 6px; }
.banner.ok { border-color: #1a7f37; background: #eef8f0; }
.banner h2 { border: 0; margin: 0 0 6px; font-size: 1.1rem; }
.banner ul { margin: 4px 0; }
div.wide { overflow-x: auto; }
figure.chart { margin: 24px 0; }
figure.chart div.plot { overflow-x: auto; }
figure.chart svg { display: block; width: 100%; min-width: 680px; height: auto;
  border: 1px solid var(--line); border-radius: 4px; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 18px; padding: 0;
  margin: 6px 0; font-size: 0.92rem; }
ul.legend .key { display: inline-block; width: 26px; height: 0; border-top: 3px solid var(--c);
  vertical-align: middle; margin-right: 6px; }
ul.legend .key.dashed { border-top-style: dashed; }
ul.legend .key.bar { height: 12px; border: 0; background: var(--c); }
ul.legend .same { color: var(--muted); }
@media (max-width: 700px) {
  body { padding: 12px; }
  table { font-size: 0.8rem; }
  th, td { padding: 3px 6px; }
}
dl.profile { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.profile dt { font-weight: 600; }
dl.profile dd { margin: 0; }
code { background: var(--bg-soft); padding: 0 3px; border-radius: 3px; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85rem; }
"#;

/// A whole page: `title` (plain text, escaped here) and `body` (HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        esc(title)
    )
}

/// A table cell with a colour swatch and an escaped strategy name.
pub fn name_cell(name: &str, colour: &str) -> String {
    format!(
        "<td class=\"name\"><span class=\"swatch\" style=\"background:{colour}\"></span>{}</td>",
        esc(name)
    )
}

/// A chart in its `<figure>`: the SVG (drawn by plotters, which escapes its own text) in a
/// frame that scrolls sideways on a phone rather than shrink its text, the legend, and a
/// caption saying how to read it.
pub fn figure(id: &str, svg: &str, legend: &str, caption: &str) -> String {
    format!(
        "<figure class=\"chart\" id=\"{}\">\n<div class=\"plot\">{svg}</div>\n{legend}\
         <figcaption>{caption}</figcaption>\n</figure>\n",
        esc(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn pages_forbid_scripts_and_outside_resources() {
        let p = page("<t>", "<p>hi</p>");
        assert!(p.contains("default-src 'none'"));
        assert!(p.contains("<title>&lt;t&gt;</title>"));
        assert!(!p.contains("http://") && !p.contains("https://"));
    }
}
