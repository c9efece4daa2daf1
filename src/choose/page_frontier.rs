//! The frontier section of `sweep.html`: a chart per tail latency (every candidate at its
//! cost and latency, coloured by success, the frontier outlined and labelled) and the table
//! of the p99 frontier, cheapest first.

use std::fmt::Write as _;

use plotters::style::RGBColor;

use super::charts::{Mark, Scatter, Series};
use super::doc::{PointDoc, SweepDoc, shown};
use super::figures::Candidate;
use super::frontier::{Scores, pareto};
use super::page::candidate_table;
use super::verdict::cost;
use crate::report::html::{esc, figure};

/// Most frontier points labelled with their settings on the chart (the others by number).
const MAX_LABELS: usize = 8;

/// Success bins of the frontier charts, best first: lower bound, legend, colour (Okabe–Ito).
const BINS: [(f64, &str, RGBColor); 4] = [
    (0.999, "success ≥ 99.9%", RGBColor(0x00, 0x72, 0xB2)),
    (0.99, "success ≥ 99%", RGBColor(0x00, 0x9E, 0x73)),
    (0.9, "success ≥ 90%", RGBColor(0xE6, 0x9F, 0x00)),
    (
        f64::NEG_INFINITY,
        "success < 90%",
        RGBColor(0xD5, 0x5E, 0x00),
    ),
];

/// `#7 max_attempts = 3 [grpc]`: how a candidate is named on the page.
fn label(doc: &SweepDoc, p: &PointDoc, c: &Candidate, with_settings: bool) -> String {
    let who = if doc.strategies.len() > 1 {
        format!(" [{}]", c.strategy)
    } else {
        String::new()
    };
    if with_settings {
        format!("#{} {}{who}", p.index, short_settings(doc, p))
    } else {
        format!("#{}{who}", p.index)
    }
}

/// Settings with each key shortened to its last name: `max_attempts = 3, initial_backoff = 1s`.
fn short_settings(doc: &SweepDoc, p: &PointDoc) -> String {
    doc.grid
        .iter()
        .filter_map(|k| {
            let name = k.key.rsplit('.').next().unwrap_or(&k.key);
            p.settings
                .get(&k.key)
                .map(|v| format!("{name}={}", shown(v)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn bin(success: f64) -> usize {
    BINS.iter()
        .position(|(low, _, _)| success >= *low)
        .unwrap_or(3)
}

/// The section.
pub(super) fn section(doc: &SweepDoc) -> String {
    let mut b = String::from("<h2>Trade-off frontier</h2>\n");
    let _ = writeln!(
        b,
        "<p class=\"note\">Every point and strategy at its cost ({}) and tail latency of all \
         calls, failures counted; colour is success. Large, outlined points are on the \
         frontier: no other point is at least as cheap, as fast and as successful and better \
         on one. A line in a colour joins, by cost, the frontier points of that success that \
         no other of the same colour beats on both latency and cost.</p>",
        esc(&doc.cost)
    );
    for tail in &doc.frontier {
        let on = |p: &PointDoc, c: &Candidate| {
            tail.points
                .iter()
                .any(|t| t.point == p.index && t.strategy == c.strategy)
        };
        let labelled = tail.points.len() <= MAX_LABELS;
        let mut series: Vec<Series> = BINS
            .iter()
            .map(|(_, name, colour)| Series {
                name: name.to_string(),
                colour: *colour,
                joined: false,
                marks: Vec::new(),
            })
            .collect();
        for (p, c) in doc.candidates() {
            let (Some(y), Some(x), Some(s)) =
                (c.get(&tail.latency), cost(c), c.get("success_rate"))
            else {
                continue;
            };
            let big = on(p, c);
            series[bin(s)].marks.push(Mark {
                x,
                y,
                filled: true,
                big,
                label: big.then(|| label(doc, p, c, labelled)),
            });
        }
        // Within each success bin, the frontier points that no other of the bin beats on
        // latency and cost alone, joined by cost: the bin's trade-off curve.
        let mut paths = Vec::new();
        for (b, (_, _, colour)) in BINS.iter().enumerate() {
            let mut pts: Vec<(f64, f64)> = series[b]
                .marks
                .iter()
                .filter(|m| m.big)
                .map(|m| (m.x, m.y))
                .collect();
            let flat: Vec<Option<Scores>> = pts
                .iter()
                .map(|&(x, y)| {
                    Some(Scores {
                        latency: y,
                        cost: x,
                        success: 0.0,
                    })
                })
                .collect();
            let keep = pareto(&flat);
            pts = pts
                .into_iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(p, _)| p)
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
            paths.push((*colour, pts));
        }
        let ys = series.iter().flat_map(|s| s.marks.iter().map(|m| m.y));
        let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        let which = if tail.latency.ends_with("p999") {
            "p99.9"
        } else {
            "p99"
        };
        let chart = Scatter {
            title: format!("{which} latency of all calls against cost"),
            x_desc: format!(
                "cost: {} (attempts the backend received per call)",
                doc.cost
            ),
            y_desc: format!("{which} latency, all calls (ms)"),
            y_log: lo > 0.0 && hi / lo > 20.0,
            series,
            paths,
        };
        let caption = format!(
            "{} candidates, {} on the frontier. {}",
            doc.candidates().count(),
            tail.points.len(),
            if labelled {
                "Frontier points are labelled with their settings."
            } else {
                "Frontier points are labelled with their number; the table below gives their settings."
            }
        );
        match chart.svg() {
            Ok(svg) => b.push_str(&figure(
                &format!("frontier-{which}"),
                &svg,
                "",
                &esc(&caption),
            )),
            Err(e) => {
                let _ = writeln!(b, "<p class=\"note\">chart not drawn: {}</p>", esc(&e));
            }
        }
    }
    if let Some(tail) = doc.frontier.first() {
        let _ = writeln!(b, "<h3>The p99 frontier, cheapest first</h3>");
        b.push_str(&candidate_table(
            doc,
            tail.points.iter().filter_map(|t| {
                doc.candidates()
                    .find(|(p, c)| p.index == t.point && c.strategy == t.strategy)
            }),
        ));
    }
    b
}
