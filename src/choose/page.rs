//! `sweep.html`: the recommendation, the trade-off frontier, the load curves and every point,
//! on one self-contained page (inline SVG and CSS, no script, no outside resource: the
//! report's frame, [`crate::report::html`]).
//!
//! Everything on it comes from `sweep.json` ([`SweepDoc`]); every string from the profile or
//! the file is escaped ([`esc`]) or drawn by plotters, which escapes its own text.

use std::fmt::Write as _;
use std::path::Path;

use plotters::style::RGBColor;

use super::charts::{Mark, Scatter, Series};
use super::doc::{PointDoc, SweepDoc, shown};
use super::figures::Candidate;
use super::frontier::{Scores, pareto};
use super::verdict::cost;
use crate::report::html::{esc, figure, page};
use crate::report::palette;

/// Most rows of the table of every point (the rest are in sweep.json).
const MAX_ROWS: usize = 2000;

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
    b.push_str(&frontier(doc));
    if doc.load.is_some() {
        b.push_str(&load(doc));
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

fn frontier(doc: &SweepDoc) -> String {
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
            Ok(svg) => b.push_str(&figure(&format!("frontier-{which}"), &svg, &esc(&caption))),
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

fn candidate_table<'a>(
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

fn load(doc: &SweepDoc) -> String {
    let Some(load) = &doc.load else {
        return String::new();
    };
    let mut b = String::from("<h2>Load: goodput against offered load</h2>\n");
    let _ = writeln!(
        b,
        "<p class=\"note\">Each strategy's goodput (calls that succeeded within their \
         deadline, per second) and its success long after the profile's trigger, at each \
         offered load (<code>{}</code>). A hollow marker is a point that did not come back \
         after the trigger ended: the load that tipped it over is gone, and it stays down \
         (a metastable failure).</p>",
        esc(&load.key)
    );
    let name = |c: &super::load::Curve| {
        if c.fixed.is_empty() {
            c.strategy.clone()
        } else {
            format!("{} ({})", c.strategy, c.fixed)
        }
    };
    for (title, y_desc, pick) in [
        (
            "goodput against offered load",
            "goodput (calls/s)",
            (|p: &super::load::LoadPoint| p.goodput) as fn(&super::load::LoadPoint) -> Option<f64>,
        ),
        (
            "success long after the trigger against offered load",
            "success after the trigger (%)",
            |p: &super::load::LoadPoint| p.after.map(|a| a * 100.0),
        ),
    ] {
        let series = load
            .curves
            .iter()
            .enumerate()
            .map(|(i, c)| Series {
                name: name(c),
                colour: palette::colour(i),
                joined: true,
                marks: c
                    .points
                    .iter()
                    .filter_map(|p| {
                        pick(p).map(|y| Mark {
                            x: p.load,
                            y,
                            filled: p.recovered.unwrap_or(!p.collapsed),
                            big: false,
                            label: None,
                        })
                    })
                    .collect(),
            })
            .collect();
        let chart = Scatter {
            title: title.into(),
            x_desc: "offered load (calls/s)".into(),
            y_desc: y_desc.into(),
            y_log: false,
            series,
            paths: Vec::new(),
        };
        match chart.svg() {
            Ok(svg) => b.push_str(&figure(
                &format!("load-{}", title.split(' ').next().unwrap_or("chart")),
                &svg,
                "Hollow markers: the point did not recover after the trigger.",
            )),
            Err(e) => {
                let _ = writeln!(b, "<p class=\"note\">chart not drawn: {}</p>", esc(&e));
            }
        }
    }
    let goal = doc.goal.is_some();
    let _ = writeln!(
        b,
        "<table>\n<tr><th class=\"name\">strategy</th><th>collapses at (calls/s)</th>\
         <th>recovers up to (calls/s)</th>{}</tr>",
        if goal {
            "<th>meets the goal up to (calls/s)</th>"
        } else {
            ""
        }
    );
    for (i, c) in load.curves.iter().enumerate() {
        let at = |v: Option<f64>| v.map_or("–".into(), crate::table::short);
        let meets = if goal {
            format!("<td>{}</td>", at(c.meets_goal_up_to))
        } else {
            String::new()
        };
        let _ = writeln!(
            b,
            "<tr>{}<td>{}</td><td>{}</td>{meets}</tr>",
            crate::report::html::name_cell(&name(c), &palette::css(i)),
            at(c.collapse_at),
            at(c.recovers_up_to)
        );
    }
    b.push_str("</table>\n");
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
