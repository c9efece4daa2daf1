//! How many attempts calls took: one bar per strategy for each number of attempts.
//!
//! The share of calls is on a log scale: in a healthy run 99% of calls take one attempt, and
//! the 0.1% that took four are the ones that say how hard a strategy leans on the backend.
//! Calls refused before any attempt (an open breaker) have their bar at 0.

use super::{Axis, Chart, Series, Shape, span};
use crate::document::ResultsDoc;
use crate::report::palette;

/// The attempts-per-call chart.
pub fn chart(doc: &ResultsDoc) -> Chart {
    let strategies = &doc.results.strategies;
    let most = strategies
        .iter()
        .filter_map(|s| s.attempts.per_call.keys().max().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    // Calls a breaker or a throttle refused made no attempt: their bars stand at 0.
    let least = strategies
        .iter()
        .filter_map(|s| s.attempts.per_call.keys().min().copied())
        .min()
        .unwrap_or(1)
        .min(1);
    let n = strategies.len().max(1) as f64;
    let width = 0.8 / n;
    let series: Vec<Series> = strategies
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let calls: u64 = s.attempts.per_call.values().sum();
            let offset = -0.4 + width * (i as f64 + 0.5);
            Series {
                label: s.name.clone(),
                colour: palette::colour(i),
                shape: Shape::Bars(width * 0.9),
                points: s
                    .attempts
                    .per_call
                    .iter()
                    .filter(|(_, c)| **c > 0 && calls > 0)
                    .map(|(k, c)| (f64::from(*k) + offset, 100.0 * *c as f64 / calls as f64))
                    .collect(),
            }
        })
        .collect();
    let y = span(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        true,
        0.001,
    );
    // Shares never pass 100%: end the axis there.
    let y = y.start.min(10.0)..100.0;
    Chart {
        title: "Attempts per call: share of completed calls by number of attempts".into(),
        x: Axis::linear(
            f64::from(least) - 0.5..f64::from(most) + 0.5,
            "attempts made by the call",
        )
        .labels(|x| {
            if (x - x.round()).abs() < 1e-6 && x >= 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        }),
        y: Axis::log(y, "share of calls (%, log scale)"),
        series,
        bands: Vec::new(),
    }
}
