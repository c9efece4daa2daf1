//! `sweep.html`: the recommendation, the trade-off frontier, the load curves and every point,
//! on one self-contained page (inline SVG and CSS, no script, no outside resource: the
//! report's frame, [`crate::report::html`]).
//!
//! Everything on it comes from `sweep.json` ([`SweepDoc`]); every string from the profile or
//! the file is escaped ([`esc`]) or drawn by plotters, which escapes its own text.

use std::fmt::Write as _;
use std::path::Path;

use super::doc::{PointDoc, SweepDoc, shown};
use super::figures::Candidate;
use super::verdict::cost;
use crate::report::html::{esc, page};

/// Most rows of the table of every point (the rest are in sweep.json).
const MAX_ROWS: usize = 2000;

/// Writes the page for `doc` to `path`.
pub fn write(path: &Path, doc: &SweepDoc) -> std::io::Result<()> {
    crate::results::write_atomic(path, render(doc).as_bytes())
}

/// The page of `doc`.
pub fn render(doc: &SweepDoc) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>{}: a sweep of {} points</h1>",
        esc(&doc.name),
        doc.points_total
    );
    let _ = writeln!(b, "<p class=\"meta\">{}</p>", esc(&doc.description));
    let _ = writeln!(b, "<p class=\"meta\">{}</p>", esc(&meta(doc)));
    b.push_str(&grid_table(doc));
    if doc.partial {
        let _ = writeln!(
            b,
            "<div class=\"banner\"><h2>Partial sweep</h2><p>{} of {} points finished \
             (interrupted, stopped by an error, or one shard of several: <code>resilbench merge</code> \
             joins shards). Everything below is about the points that finished.</p></div>",
            doc.points.len(),
            doc.points_total
        );
    }
    let ok = doc.verdict.best.is_some();
    let _ = writeln!(
        b,
        "<div class=\"banner{}\"><h2>Recommendation</h2>{}</div>",
        if ok { " ok" } else { "" },
        doc.verdict
            .words
            .iter()
            .map(|w| format!("<p>{}</p>", esc(w)))
            .collect::<String>()
    );
    b.push_str(&super::page_frontier::section(doc));
    if doc.load.is_some() {
        b.push_str(&super::page_load::section(doc));
    }
    b.push_str(&all_points(doc));
    if !doc.notes.is_empty() {
        b.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &doc.notes {
            let _ = writeln!(b, "<li>{}</li>", esc(n));
        }
        b.push_str("</ul>\n");
    }
    let _ = writeln!(
        b,
        "<footer>Each point is an ordinary run folder (<code>points/NNNN/results.json</code>): \
         <code>resilbench report</code> draws its report, <code>compare</code> and \
         <code>check</code> read it. The figures here are in <code>sweep.json</code>. \
         Written by resilbench {}.</footer>",
        esc(env!("CARGO_PKG_VERSION"))
    );
    page(&format!("{}: sweep", doc.name), &b)
}

fn meta(doc: &SweepDoc) -> String {
    let shard = doc.shard.map_or(String::new(), |s| format!(", shard {s}"));
    format!(
        "profile {}, {} clock, {} of {} points finished{shard}, strategies: {}",
        doc.profile,
        doc.clock,
        doc.points.len(),
        doc.points_total,
        doc.strategies.join(", ")
    )
}

fn grid_table(doc: &SweepDoc) -> String {
    let mut b = String::from(
        "<table>\n<tr><th class=\"name\">key</th><th class=\"name\">in the plan</th><th>values</th><th class=\"name\">values</th></tr>\n",
    );
    for k in &doc.grid {
        let values: Vec<String> = k.values.iter().map(shown).collect();
        let _ = writeln!(
            b,
            "<tr><td class=\"name\"><code>{}</code></td><td class=\"name\"><code>{}</code></td><td>{}</td><td class=\"text\">{}</td></tr>",
            esc(&k.key),
            esc(&k.path),
            k.values.len(),
            esc(&values.join(", "))
        );
    }
    b.push_str("</table>\n");
    b
}

/// A table of candidates: the point, its settings, its strategy, its figures.
pub(super) fn candidate_table<'a>(
    doc: &'a SweepDoc,
    rows: impl Iterator<Item = (&'a PointDoc, &'a Candidate)>,
) -> String {
    let mut b = String::from("<div class=\"wide\"><table>\n<tr><th>point</th>");
    for k in &doc.grid {
        let _ = write!(b, "<th class=\"name\">{}</th>", esc(&k.key));
    }
    if doc.strategies.len() > 1 {
        b.push_str("<th class=\"name\">strategy</th>");
    }
    b.push_str("<th>success</th><th>p99 ms</th><th>p99.9 ms</th><th>cost</th><th>goodput/s</th><th>after trigger</th></tr>\n");
    let best = doc.verdict.best.as_ref();
    for (n, (p, c)) in rows.enumerate() {
        if n == MAX_ROWS {
            let _ = writeln!(
                b,
                "<tr><td colspan=\"99\" class=\"text\">… more in sweep.json</td></tr>"
            );
            break;
        }
        let chosen = best.is_some_and(|v| v.point == p.index && v.strategy == c.strategy);
        let _ = write!(
            b,
            "<tr><td{}>{}</td>",
            if chosen { " class=\"best\"" } else { "" },
            p.index
        );
        for k in &doc.grid {
            let v = p.settings.get(&k.key).map_or(String::new(), shown);
            let _ = write!(b, "<td class=\"name\">{}</td>", esc(&v));
        }
        if doc.strategies.len() > 1 {
            let _ = write!(b, "<td class=\"name\">{}</td>", esc(&c.strategy));
        }
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}%", v * 100.0));
        let num = |v: Option<f64>| v.map_or("–".into(), crate::table::short);
        let _ = writeln!(
            b,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            pct(c.get("success_rate")),
            num(c.get("latency_ms.e2e.p99")),
            num(c.get("latency_ms.e2e.p999")),
            cost(c).map_or("–".into(), |v| format!("{v:.3}")),
            num(c.get("goodput.per_second")),
            pct(c.stretch.after),
        );
    }
    b.push_str("</table></div>\n");
    b
}

fn all_points(doc: &SweepDoc) -> String {
    let mut b = String::from("<h2>Every point</h2>\n");
    let rows = doc
        .points
        .iter()
        .flat_map(|p| p.figures.strategies.iter().map(move |c| (p, c)));
    b.push_str(&candidate_table(doc, rows));
    b
}
