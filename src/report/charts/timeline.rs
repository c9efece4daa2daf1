//! Figures per second of each strategy's run, strategies overlaid on one time axis.
//!
//! Each strategy ran the same schedule from its own second 0, so their timelines line up: the
//! same second is the same offered load and the same backend phase. Calls are filed under the
//! second of their intended start, attempts under the second they were sent (see
//! docs/results.md), so an outage's victims and a retry storm's echo show where they happened.

use plotters::style::RGBColor;
use serde_json::Value;

use super::{Axis, Band, Chart, Series, Shape, span};
use crate::document::ResultsDoc;
use crate::record::timeline::TimelineRow;
use crate::report::palette;

/// The keys every v1 timeline row has; any other numeric key gets a chart of its own.
const KNOWN: [&str; 8] = [
    "t",
    "offered",
    "dropped",
    "succeeded",
    "failed",
    "attempts",
    "p50_ms",
    "p99_ms",
];

const TIME: &str = "time since the strategy's start (s)";

/// Where a second's row is drawn: the middle of that second.
fn mid(t: u64) -> f64 {
    t as f64 + 0.5
}
const OFFERED_GREY: RGBColor = RGBColor(0x80, 0x80, 0x80);

fn per_strategy(
    doc: &ResultsDoc,
    shape: Shape,
    value: impl Fn(&TimelineRow) -> Option<f64>,
) -> Vec<Series> {
    doc.results
        .strategies
        .iter()
        .enumerate()
        .map(|(i, s)| Series {
            label: s.name.clone(),
            colour: palette::colour(i),
            shape,
            points: s
                .timeline
                .iter()
                .filter_map(|r| value(r).map(|v| (mid(r.t), v)))
                .collect(),
        })
        .collect()
}

fn x_axis(doc: &ResultsDoc, bands: &[Band]) -> Axis {
    // The schedule's end when the plan is known: seconds after it hold only late retries,
    // and an axis that reaches them shows every line falling to 0 at its right edge.
    let last = doc
        .results
        .strategies
        .iter()
        .flat_map(|s| s.timeline.last().map(|r| r.t as f64 + 1.0))
        .fold(1.0f64, f64::max);
    let scheduled = doc
        .results
        .plan()
        .map(|p| p.load.duration.as_secs_f64().ceil());
    let end = bands
        .iter()
        .map(|b| b.to)
        .fold(scheduled.map_or(last, |s| s.min(last)), f64::max);
    let start = doc
        .results
        .strategies
        .iter()
        .flat_map(|s| s.timeline.first().map(|r| r.t as f64))
        .fold(end, f64::min)
        .min(end - 1.0);
    Axis::linear(start..end, TIME)
}

/// Whether second `t` lies within the schedule. Rows after it exist when retries were still
/// being sent after the last call's intended start; they offer no calls, and drawing their
/// zero offered and zero succeeded would read as a collapse at the end of the run.
fn scheduled(doc: &ResultsDoc) -> impl Fn(u64) -> bool {
    let end = doc.results.plan().map(|p| p.load.duration.as_secs_f64());
    move |t| end.is_none_or(|end| (t as f64) < end)
}

/// The calls offered per second (the same schedule for every strategy): a grey dashed line.
fn offered(doc: &ResultsDoc) -> Option<Series> {
    let first = doc.results.strategies.first()?;
    let scheduled = scheduled(doc);
    Some(Series {
        label: "offered calls".into(),
        colour: OFFERED_GREY,
        shape: Shape::Dashed,
        points: first
            .timeline
            .iter()
            .filter(|r| scheduled(r.t))
            .map(|r| (mid(r.t), r.offered as f64))
            .collect(),
    })
}

/// p99 end-to-end latency of each second's calls.
pub fn p99(doc: &ResultsDoc, bands: &[Band]) -> Chart {
    let scheduled = scheduled(doc);
    let series = per_strategy(doc, Shape::Line, |r| r.p99_ms.filter(|_| scheduled(r.t)));
    let y = span(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        true,
        0.01,
    );
    let floor = y.start;
    let series = series
        .into_iter()
        .map(|mut s| {
            s.points.iter_mut().for_each(|p| p.1 = p.1.max(floor));
            s
        })
        .collect();
    Chart {
        title: "p99 latency over time (all completed calls, by second of intended start)".into(),
        x: x_axis(doc, bands),
        y: Axis::log(y, "p99 latency (ms, log scale)"),
        series,
        bands: bands.to_vec(),
    }
}

/// Calls that succeeded, per second of intended start, against the calls offered.
pub fn goodput(doc: &ResultsDoc, bands: &[Band]) -> Chart {
    let scheduled = scheduled(doc);
    let mut series = per_strategy(doc, Shape::Line, |r| {
        scheduled(r.t).then_some(r.succeeded as f64)
    });
    series.extend(offered(doc));
    let y = span(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        false,
        0.0,
    );
    Chart {
        title: "Goodput over time: calls that succeeded, against calls offered".into(),
        x: x_axis(doc, bands),
        y: Axis::linear(y, "calls per second"),
        series,
        bands: bands.to_vec(),
    }
}

/// Attempts sent per second against calls offered per second: amplification over time.
pub fn attempts(doc: &ResultsDoc, bands: &[Band]) -> Chart {
    let scheduled = scheduled(doc);
    let mut series = per_strategy(doc, Shape::Line, |r| {
        scheduled(r.t).then_some(r.attempts as f64)
    });
    series.extend(offered(doc));
    let y = span(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        false,
        0.0,
    );
    Chart {
        title: "Amplification over time: attempts sent per second vs calls offered".into(),
        x: x_axis(doc, bands),
        y: Axis::linear(y, "per second"),
        series,
        bands: bands.to_vec(),
    }
}

/// Each circuit breaker's state over time, drawn from its exact transitions as steps: closed
/// at 0, half-open at 1, open at 2. `None` when no strategy has a breaker.
pub fn breaker(doc: &ResultsDoc, bands: &[Band]) -> Option<Chart> {
    use crate::strategy::breaker::State;
    let level = |s: State| match s {
        State::Closed => 0.0,
        State::HalfOpen => 1.0,
        State::Open => 2.0,
    };
    let x = x_axis(doc, bands);
    let end = x.range.end;
    let series: Vec<Series> = doc
        .results
        .strategies
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s, s.breaker.as_ref()?)))
        .enumerate()
        .map(|(k, (i, s, b))| {
            // Breakers that agree would hide each other: each line sits a little apart.
            let lift = 0.04 * k as f64;
            let mut at = 0.0;
            let mut state = 0.0;
            let mut points = vec![(at, state + lift)];
            for t in &b.transitions {
                at = t.at_s;
                points.push((at, state + lift));
                state = level(t.to);
                points.push((at, state + lift));
            }
            points.push((end.max(at), state + lift));
            Series {
                label: s.name.clone(),
                colour: palette::colour(i),
                shape: Shape::Line,
                points,
            }
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    Some(Chart {
        title: "Circuit breaker state over time".into(),
        x,
        y: Axis::linear(-0.25..2.5, "breaker state").labels(|v| {
            let name = match v.round() as i64 {
                _ if (v - v.round()).abs() > 0.01 => "",
                0 => "closed",
                1 => "half-open",
                2 => "open",
                _ => "",
            };
            name.to_string()
        }),
        series,
        bands: bands.to_vec(),
    })
}

/// Numeric per-second figures beyond v1's (breaker state, throttle tokens, ...), flattened to
/// dotted names, in first-seen order.
pub fn extra_keys(doc: &ResultsDoc) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for row in rows(&doc.json) {
        let mut found = Vec::new();
        leaves(row, "", &mut found);
        for (k, _) in found {
            if !KNOWN.contains(&k.as_str()) && seen.insert(k.clone()) {
                keys.push(k);
            }
        }
    }
    keys
}

fn rows(json: &Value) -> impl Iterator<Item = &Value> {
    json.get("strategies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| {
            s.get("timeline")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
}

fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(inner, &name, out);
            }
        }
        Value::Number(n) => out.extend(n.as_f64().map(|f| (prefix.to_string(), f))),
        Value::Bool(b) => out.push((prefix.to_string(), f64::from(u8::from(*b)))),
        _ => {}
    }
}

/// A chart of one extra per-second figure, for every strategy that has it.
pub fn extra(doc: &ResultsDoc, key: &str, bands: &[Band]) -> Chart {
    let series: Vec<Series> = doc
        .json
        .get("strategies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("?");
            let points = s
                .get("timeline")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|row| {
                    let t = mid(row.get("t")?.as_u64()?);
                    let mut found = Vec::new();
                    leaves(row, "", &mut found);
                    found
                        .into_iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| (t, v))
                })
                .collect();
            Series {
                label: name.to_string(),
                colour: palette::colour(i),
                shape: Shape::Line,
                points,
            }
        })
        .filter(|s: &Series| !s.points.is_empty())
        .collect();
    let y = span(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        false,
        0.0,
    );
    let (title, unit) = match key {
        "tokens" => (
            "Retry throttle (gRFC A6): tokens over time".to_string(),
            "tokens at the end of the second".to_string(),
        ),
        _ => (
            format!("{} over time", key.replace('_', " ")),
            format!("{key} (as in results.json)"),
        ),
    };
    Chart {
        title,
        x: x_axis(doc, bands),
        y: Axis::linear(y, &unit),
        series,
        bands: bands.to_vec(),
    }
}
