//! The sweep page's charts, as inline SVG drawn with plotters: points that may be filled or
//! hollow, big or small, labelled, and joined by a line; one colour per series.
//!
//! The report's charts ([`crate::report::charts`]) draw lines and bars over time; a sweep's
//! charts are scatter plots (every point of a grid at its cost and latency) and curves with a
//! marker per point (hollow: the point did not recover), so they are drawn here, in the same
//! frame, fonts and colours (Okabe–Ito).

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

use crate::report::charts::{Axes, AxisText, Look, framed, short, span};

/// The sweep page's frame: smaller type than the report's, its charts sit two to a row.
const SWEEP: Look = Look {
    caption: 22,
    x_area: 48,
    y_area: 72,
    labels: 14,
    descs: 15,
};

/// Width of every chart, px.
pub const WIDTH: u32 = 1000;
/// Height of every chart, px.
pub const HEIGHT: u32 = 480;

/// One marker.
#[derive(Debug, Clone)]
pub struct Mark {
    /// Where.
    pub x: f64,
    /// Where.
    pub y: f64,
    /// Filled (else hollow).
    pub filled: bool,
    /// Drawn larger, with a dark outline (a frontier point).
    pub big: bool,
    /// Text beside it.
    pub label: Option<String>,
}

/// Markers of one colour, optionally joined in order.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Colour.
    pub colour: RGBColor,
    /// Join the markers with a line, in order.
    pub joined: bool,
    /// The markers.
    pub marks: Vec<Mark>,
}

/// A scatter chart.
#[derive(Debug, Clone)]
pub struct Scatter {
    /// Title.
    pub title: String,
    /// Horizontal axis description, unit included.
    pub x_desc: String,
    /// Vertical axis description, unit included.
    pub y_desc: String,
    /// A logarithmic vertical axis.
    pub y_log: bool,
    /// The series, drawn in order.
    pub series: Vec<Series>,
    /// Lines through points, each in its colour, drawn under the markers (the frontier).
    pub paths: Vec<(RGBColor, Vec<(f64, f64)>)>,
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

impl Scatter {
    /// The chart as an SVG document, or why it could not be drawn.
    pub fn svg(&self) -> Result<String, String> {
        let xs = self.series.iter().flat_map(|s| s.marks.iter().map(|m| m.x));
        let ys = self.series.iter().flat_map(|s| s.marks.iter().map(|m| m.y));
        let x = fit(xs);
        let mut y = span(ys, self.y_log, 0.01);
        if !self.y_log {
            // Room above the data for the legend, in the upper left.
            y.end *= 1.3;
        }
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
            let drawn = if self.y_log {
                self.draw(&root, x.clone(), y.clone().log_scale(), (x, y))
            } else {
                self.draw(&root, x.clone(), y.clone(), (x, y))
            };
            drawn.map_err(|e| format!("{}: {e}", self.title))?;
            root.present().map_err(|e| format!("{}: {e}", self.title))?;
        }
        Ok(buf)
    }

    fn draw<X, Y>(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        xs: X,
        ys: Y,
        (xr, yr): (Range<f64>, Range<f64>),
    ) -> Drawn
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let label = |v: &f64| short(*v);
        let y_labels = if self.y_log {
            ((yr.end / yr.start).log10().floor() as usize).max(1)
        } else {
            8
        };
        let axes = Axes {
            x: AxisText {
                desc: &self.x_desc,
                count: 8,
                label: &label,
            },
            y: AxisText {
                desc: &self.y_desc,
                count: y_labels,
                label: &label,
            },
        };
        let mut chart = framed(root, &self.title, &SWEEP, &axes, xs, ys)?;
        // Values beyond the axes are drawn at their edge (plotters maps to i32 pixels).
        let pin = |x: f64, y: f64| (x.clamp(xr.start, xr.end), y.clamp(yr.start, yr.end));
        for (colour, path) in self.paths.iter().filter(|(_, p)| p.len() > 1) {
            chart.draw_series(LineSeries::new(
                path.iter().map(|&(x, y)| pin(x, y)),
                colour.stroke_width(2),
            ))?;
        }
        for s in &self.series {
            let colour = s.colour;
            if s.joined && s.marks.len() > 1 {
                chart.draw_series(LineSeries::new(
                    s.marks.iter().map(|m| pin(m.x, m.y)),
                    colour.stroke_width(2),
                ))?;
            }
            let font = ("sans-serif", 12)
                .into_font()
                .color(&RGBColor(0x20, 0x20, 0x20));
            chart
                .draw_series(s.marks.iter().map(|m| {
                    let radius = if m.big { 7 } else { 4 };
                    let style = if m.filled {
                        colour.filled()
                    } else {
                        colour.stroke_width(2)
                    };
                    let outline = if m.big {
                        BLACK.stroke_width(1)
                    } else {
                        TRANSPARENT.stroke_width(0)
                    };
                    let text = m.label.clone().unwrap_or_default();
                    EmptyElement::at(pin(m.x, m.y))
                        + Circle::new((0, 0), radius, style)
                        + Circle::new((0, 0), radius + 1, outline)
                        + Text::new(text, (10, -14), font.clone())
                }))?
                .label(s.name.clone())
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xbb, 0xbb, 0xbb))
            .draw()?;
        Ok(())
    }
}

/// A linear range around `values` with room on both sides, so the extreme markers are not
/// cut in half (a cost axis from 0 would leave most of the chart empty: costs start at 1).
/// Values beyond ±1e15 (a tampered file) are cut to it, as the report's axes do.
fn fit(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .map(|v| v.clamp(-1e15, 1e15))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let width = (hi - lo).max(hi.abs() * 0.05).max(1e-9);
    lo - width * 0.08..hi + width * 0.08
}
