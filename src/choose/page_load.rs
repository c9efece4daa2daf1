//! The load section of `sweep.html`: goodput and late success against the offered load, one
//! curve per strategy (hollow markers: points that did not recover after the trigger), and
//! the table of where each collapses, recovers and meets the goal.

use std::fmt::Write as _;

use super::charts::{Mark, Scatter, Series};
use super::doc::SweepDoc;
use super::load::{Curve, LoadPoint};
use crate::report::html::{esc, figure, name_cell};
use crate::report::palette;

/// The section (empty when the sweep is not a load sweep).
pub(super) fn section(doc: &SweepDoc) -> String {
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
    let name = |c: &Curve| {
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
            (|p: &LoadPoint| p.goodput) as fn(&LoadPoint) -> Option<f64>,
        ),
        (
            "success long after the trigger against offered load",
            "success after the trigger (%)",
            |p: &LoadPoint| p.after.map(|a| a * 100.0),
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
                "",
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
            name_cell(&name(c), &palette::css(i)),
            at(c.collapse_at),
            at(c.recovers_up_to)
        );
    }
    b.push_str("</table>\n");
    b
}
