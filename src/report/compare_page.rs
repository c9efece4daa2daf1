//! The HTML page of `resilbench compare`: the comparison table and both runs' latency
//! distributions overlaid (A solid, B dashed, one colour per strategy).

use super::charts::Shape;
use super::charts::percentiles::{self, Dist};
use super::html::{esc, name_cell, page};
use super::palette;
use crate::compare::{Comparison, Flag, ratio_text, signed};
use crate::document::ResultsDoc;
use crate::record::histogram::Hist;

/// The comparison page of runs `a` and `b` (named by their paths).
pub fn render(c: &Comparison, a: (&ResultsDoc, &str), b: (&ResultsDoc, &str)) -> String {
    let (da, db) = (a.0, b.0);
    let mut body = format!(
        "<header>\n<h1>{} — A vs B</h1>\n<p class=\"meta\">A: {} (started {}, {} clock)<br>\
         B: {} (started {}, {} clock)</p>\n</header>\n",
        esc(da.profile_name()),
        esc(a.1),
        esc(&da.results.environment.start_time),
        esc(&da.results.environment.clock),
        esc(b.1),
        esc(&db.results.environment.start_time),
        esc(&db.results.environment.clock),
    );
    let summary = format!(
        "{} of {} figures differ beyond noise and the threshold; {} worse.",
        c.flagged(),
        c.rows.len(),
        c.worse()
    );
    let class = if c.worse() > 0 { "banner" } else { "banner ok" };
    body.push_str(&format!(
        "<div class=\"{class}\" id=\"summary\">{}",
        esc(&summary)
    ));
    if !c.notes.is_empty() {
        body.push_str("<ul>");
        for n in &c.notes {
            body.push_str(&format!("<li>{}</li>", esc(n)));
        }
        body.push_str("</ul>");
    }
    body.push_str(
        "</div>\n<section id=\"comparison\">\n<h2>Figures</h2>\n<table>\n<thead><tr>\
         <th class=\"name\">strategy</th><th class=\"name\">figure</th><th>A</th><th>B</th>\
         <th>B − A</th><th>B / A</th><th class=\"name\">flag</th></tr></thead>\n<tbody>\n",
    );
    for r in &c.rows {
        let idx = da
            .results
            .strategies
            .iter()
            .position(|s| s.name == r.strategy)
            .unwrap_or(0);
        let class = match r.flag {
            Flag::Worse => " class=\"worse\"",
            Flag::Better => " class=\"better\"",
            _ => "",
        };
        // The client flavor beside the name: A and B may run different libraries.
        let flavors = [da, db].map(|d| super::words::client_of(&d.results.profile, &r.strategy));
        let label = match flavors {
            [None, None] => r.strategy.clone(),
            [a, b] if a == b => format!("{} ({})", r.strategy, a.unwrap_or_default()),
            [a, b] => format!(
                "{} (A: {}, B: {})",
                r.strategy,
                a.as_deref().unwrap_or("a6"),
                b.as_deref().unwrap_or("a6")
            ),
        };
        body.push_str(&format!(
            "<tr>{}<td class=\"text\">{}</td><td>{}</td><td>{}</td><td{class}>{}</td><td{class}>{}</td>\
             <td class=\"text\">{}</td></tr>\n",
            name_cell(&label, &palette::css(idx)),
            esc(&r.label),
            esc(&r.shown.0),
            esc(&r.shown.1),
            esc(&signed(r.diff(), r.figure == "success_rate")),
            esc(&ratio_text(r.ratio())),
            r.flag.word(),
        ));
    }
    body.push_str(
        "</tbody>\n</table>\n<p class=\"note\">Flagged: a change beyond the relative threshold \
         and beyond sampling noise: what a seed change alone does (percentile intervals from the \
         full histograms, binomial tests for rates, the per-second timeline where failures \
         cluster; 99% confidence for the whole table).</p>\n</section>\n<section id=\"charts\">\n\
         <h2>Latency distributions</h2>\n",
    );
    let mut dists = Vec::new();
    for (i, s) in da.results.strategies.iter().enumerate() {
        let hist = |doc: &ResultsDoc| {
            doc.results
                .strategies
                .iter()
                .find(|x| x.name == s.name)
                .and_then(|x| Hist::decode(&x.histograms.e2e_ok).ok())
        };
        for (doc, tag, shape) in [(da, "A", Shape::Line), (db, "B", Shape::Dashed)] {
            if let Some(h) = hist(doc) {
                dists.push(Dist {
                    label: format!("{} ({tag})", s.name),
                    colour: palette::colour(i),
                    shape,
                    hist: h,
                });
            }
        }
    }
    let chart = percentiles::chart(
        "Latency by percentile, A (solid) and B (dashed): successful calls",
        "latency",
        &dists,
        None,
    );
    body.push_str(&super::chart_figure(
        "chart-latency".into(),
        &chart,
        "Same colour, same strategy: the solid line is run A, the dashed line run B.",
    ));
    body.push_str("</section>\n");
    page(&format!("resilbench compare: {}", da.profile_name()), &body)
}
