//! Charts as inline SVG, drawn with plotters' SVG backend.
//!
//! Every chart of the report is a [`Chart`]: a title, two axes with units, series (lines,
//! dashed lines or bars, one colour per strategy) and optional shaded bands (the backend's
//! phases) and reference lines (a limit). One function draws them all ([`Chart::svg`]), so
//! every chart has the same frame, fonts and label style. The legend is HTML below the chart
//! ([`Chart::legend_html`]), so it never covers data; a line identical to an earlier one is
//! drawn dashed over it, and its legend entry says so. Text is left to the browser
//! (`font-family: sans-serif`): no font is read at build or render time.
//!
//! - [`percentiles`]: latency by percentile, the HdrHistogram plot (also the generator's lag).
//! - [`timeline`]: figures per second: p99, goodput, attempts vs offered calls, and any other
//!   per-second figure a newer results file carries (breaker state, throttle tokens).
//! - [`attempts`]: the attempts-per-call distribution.

pub mod attempts;
pub mod percentiles;
pub mod timeline;

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;

/// Width of every chart, px.
pub const WIDTH: u32 = 1000;
/// Height of every chart, px.
pub const HEIGHT: u32 = 420;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A solid line.
    Line,
    /// A dashed line (the second run of a comparison, a reference).
    Dashed,
    /// Bars of this width in x units, centred on each point, rising from the axis.
    Bars(f64),
}

/// One series of points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub colour: RGBColor,
    /// How it is drawn.
    pub shape: Shape,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// One axis: its range, log or linear, its description (with the unit), and how labels read.
pub struct Axis {
    /// The range shown.
    pub range: Range<f64>,
    /// Logarithmic scale (the range must be above 0).
    pub log: bool,
    /// The axis description, unit included: `latency (ms)`.
    pub desc: String,
    /// Label text for a value; `None` prints the number.
    pub format: Option<Box<dyn Fn(f64) -> String>>,
}

impl Axis {
    /// A linear axis.
    pub fn linear(range: Range<f64>, desc: &str) -> Self {
        Self {
            range,
            log: false,
            desc: desc.into(),
            format: None,
        }
    }

    /// A logarithmic axis.
    pub fn log(range: Range<f64>, desc: &str) -> Self {
        Self {
            log: true,
            ..Self::linear(range, desc)
        }
    }

    /// The same axis with labels written by `f`.
    pub fn labels(mut self, f: impl Fn(f64) -> String + 'static) -> Self {
        self.format = Some(Box::new(f));
        self
    }

    fn label(&self, v: f64) -> String {
        match &self.format {
            Some(f) => f(v),
            None => short(v),
        }
    }

    /// Labels on a log axis: one per power of ten (light lines between would crowd them).
    fn label_count(&self) -> usize {
        if self.log {
            ((self.range.end / self.range.start).log10().floor() as usize).max(1)
        } else {
            8
        }
    }
}

/// A shaded span of x (a backend phase).
#[derive(Debug, Clone)]
pub struct Band {
    /// Where it starts and ends, x units.
    pub from: f64,
    /// End.
    pub to: f64,
    /// Text at its top.
    pub label: String,
}

/// A chart.
pub struct Chart {
    /// Title, drawn above the plot.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The data.
    pub series: Vec<Series>,
    /// Shaded spans of x.
    pub bands: Vec<Band>,
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

impl Chart {
    /// The chart as an SVG document (`<svg width=.. height=..>`), or why it could not be drawn.
    pub fn svg(&self) -> Result<String, String> {
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
            let (x, y) = (&self.x, &self.y);
            let drawn = match (x.log, y.log) {
                (false, false) => self.draw(&root, x.range.clone(), y.range.clone()),
                (true, false) => self.draw(&root, x.range.clone().log_scale(), y.range.clone()),
                (false, true) => self.draw(&root, x.range.clone(), y.range.clone().log_scale()),
                (true, true) => self.draw(
                    &root,
                    x.range.clone().log_scale(),
                    y.range.clone().log_scale(),
                ),
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
    ) -> Drawn
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let (xf, yf) = (|v: &f64| self.x.label(*v), |v: &f64| self.y.label(*v));
        let axes = Axes {
            x: AxisText {
                desc: &self.x.desc,
                count: self.x.label_count(),
                label: &xf,
            },
            y: AxisText {
                desc: &self.y.desc,
                count: self.y.label_count(),
                label: &yf,
            },
        };
        let mut chart = framed(root, &self.title, &Look::REPORT, &axes, xs, ys)?;
        let (y0, y1) = (self.y.range.start, self.y.range.end);
        let (x0, x1) = (self.x.range.start, self.x.range.end);
        for band in &self.bands {
            let (from, to) = (band.from.clamp(x0, x1), band.to.clamp(x0, x1));
            let shade = RGBColor(0x99, 0x99, 0x99).mix(0.18).filled();
            chart.draw_series([Rectangle::new([(from, y0), (to, y1)], shade)])?;
            chart.draw_series([Text::new(
                band.label.clone(),
                (from, y1),
                ("sans-serif", 16)
                    .into_font()
                    .color(&RGBColor(0x40, 0x40, 0x40)),
            )])?;
        }
        // Points beyond the axes are drawn at their edge: plotters maps coordinates to i32
        // pixels, which a figure of 1e308 in a tampered file would overflow.
        let pin = |(x, y): (f64, f64)| (x.clamp(x0, x1), y.clamp(y0, y1));
        let twins = self.twins();
        let mut dashed = 0u32;
        for (s, twin) in self.series.iter().zip(&twins) {
            let colour = s.colour;
            let points: Vec<(f64, f64)> = s.points.iter().copied().map(pin).collect();
            let line = colour.stroke_width(2);
            match (s.shape, twin) {
                // A line that lies on an earlier one is drawn dashed on top of it, so that
                // both colours show; the legend says which it lies on.
                (Shape::Line | Shape::Dashed, Some(_)) => {
                    // Each twin its own period, so that twins of one line show each other.
                    let n = dashed % 3;
                    dashed += 1;
                    chart.draw_series(DashedLineSeries::new(
                        points,
                        10 + 4 * n,
                        10 + 8 * n,
                        colour.stroke_width(3),
                    ))?;
                }
                (Shape::Line, None) => {
                    chart.draw_series(LineSeries::new(points, line))?;
                }
                (Shape::Dashed, None) => {
                    chart.draw_series(DashedLineSeries::new(points, 8, 5, line))?;
                }
                (Shape::Bars(w), _) => {
                    chart.draw_series(points.into_iter().map(|(x, y)| {
                        Rectangle::new(
                            [(x - w / 2.0, y0), (x + w / 2.0, y.max(y0))],
                            colour.filled(),
                        )
                    }))?;
                }
            }
        }
        Ok(())
    }
}

/// Font sizes and label areas of a chart's frame: the report's and the sweep page's differ
/// only in these.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// The title's font size, px.
    pub caption: u32,
    /// Height of the area under the chart for the horizontal axis' labels, px.
    pub x_area: u32,
    /// Width of the area left of the chart for the vertical axis' labels, px.
    pub y_area: u32,
    /// The tick labels' font size, px.
    pub labels: u32,
    /// The axis descriptions' font size, px.
    pub descs: u32,
}

impl Look {
    /// The report's charts.
    pub const REPORT: Look = Look {
        caption: 26,
        x_area: 56,
        y_area: 84,
        labels: 18,
        descs: 18,
    };
}

/// What one axis says: its description, how many labels, how each reads.
pub struct AxisText<'a> {
    /// The description, unit included.
    pub desc: &'a str,
    /// How many labels (plotters' hint).
    pub count: usize,
    /// A label's text.
    pub label: &'a dyn Fn(&f64) -> String,
}

/// What the two axes say.
pub struct Axes<'a> {
    /// The horizontal axis.
    pub x: AxisText<'a>,
    /// The vertical axis.
    pub y: AxisText<'a>,
}

/// A chart in its frame, ready to draw series into.
pub type Framed<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// The frame every chart is drawn in (white ground, title, margins, axes, light grid), over
/// `xs` and `ys`: what is drawn into it is each chart's own.
pub fn framed<'a, 'b, X, Y>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    title: &str,
    look: &Look,
    axes: &Axes<'_>,
    xs: X,
    ys: Y,
) -> Result<Framed<'a, 'b, X::CoordDescType, Y::CoordDescType>, Box<dyn std::error::Error>>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", look.caption))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(look.x_area)
        .y_label_area_size(look.y_area)
        .build_cartesian_2d(xs, ys)?;
    chart
        .configure_mesh()
        .x_desc(axes.x.desc)
        .y_desc(axes.y.desc)
        .x_labels(axes.x.count)
        .y_labels(axes.y.count)
        .x_label_formatter(axes.x.label)
        .y_label_formatter(axes.y.label)
        .label_style(("sans-serif", look.labels))
        .axis_desc_style(("sans-serif", look.descs))
        .light_line_style(RGBColor(0, 0, 0).mix(0.05))
        .draw()?;
    Ok(chart)
}

impl Chart {
    /// For each series, the earlier series it lies on, if any: identical results (two
    /// strategies that behaved the same) or lines within 2.5% of the chart's height of each
    /// other at ≥ 90% of their points would otherwise hide one under the other. Bars and
    /// dashed reference lines are never twins.
    pub fn twins(&self) -> Vec<Option<(usize, bool)>> {
        let solid = |s: &Series| s.shape == Shape::Line && s.points.len() >= 2;
        self.series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if !solid(s) {
                    return None;
                }
                (0..i).filter(|j| solid(&self.series[*j])).find_map(|j| {
                    let o = &self.series[j];
                    if o.points == s.points {
                        Some((j, true))
                    } else {
                        self.lies_on(s, o).then_some((j, false))
                    }
                })
            })
            .collect()
    }

    /// Whether line `a` lies on line `b`, as drawn: within 2.5% of the y axis at ≥ 90% of
    /// `a`'s points (on a log axis, in decades).
    fn lies_on(&self, a: &Series, b: &Series) -> bool {
        let y = &self.y;
        let f = |v: f64| {
            if y.log {
                v.max(y.range.start).log10()
            } else {
                v
            }
        };
        let span = (f(y.range.end) - f(y.range.start))
            .abs()
            .max(f64::MIN_POSITIVE);
        let at = |x: f64| -> Option<f64> {
            let k = b.points.iter().position(|p| p.0 >= x)?;
            let (x1, y1) = b.points[k];
            if k == 0 || x1 == x {
                return (x1 == x).then_some(y1);
            }
            let (x0, y0) = b.points[k - 1];
            Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
        };
        let close = a
            .points
            .iter()
            .filter(|(x, v)| at(*x).is_some_and(|w| (f(w) - f(*v)).abs() <= 0.025 * span))
            .count();
        close as f64 >= 0.9 * a.points.len() as f64
    }

    /// The legend, as HTML below the chart: it never covers data, and its text stays
    /// readable whatever the chart's size. A line identical to another says so.
    pub fn legend_html(&self) -> String {
        let esc = crate::report::html::esc;
        let mut out = String::from("<ul class=\"legend\">");
        for (s, twin) in self.series.iter().zip(self.twins()) {
            let RGBColor(r, g, b) = s.colour;
            let kind = match (s.shape, twin) {
                (Shape::Bars(_), _) => "bar",
                (Shape::Dashed, _) | (_, Some(_)) => "dashed",
                (Shape::Line, None) => "line",
            };
            let same = twin.map_or(String::new(), |(j, exact)| {
                format!(
                    " <span class=\"same\">({} {}: drawn dashed over it)</span>",
                    if exact { "identical to" } else { "lies on" },
                    esc(&self.series[j].label)
                )
            });
            out.push_str(&format!(
                "<li><span class=\"key {kind}\" style=\"--c:#{r:02x}{g:02x}{b:02x}\"></span>{}{same}</li>",
                esc(&s.label)
            ));
        }
        out.push_str("</ul>\n");
        out
    }
}

pub use crate::table::short;

/// The largest magnitude an axis reaches, and the most decades a log axis spans: far beyond
/// any real run's figures (an hour is 3.6e6 ms), so that a tampered results file with a
/// figure of 1e308 gets a chart with its line off the top, not an axis of a thousand decades.
const AXIS_LIMIT: f64 = 1e15;
const MAX_DECADES: f64 = 15.0;

/// A range that holds every value of `values` (padded), or `fallback` when there is none.
/// On a log axis the range stays above `floor`. Values beyond ±[`AXIS_LIMIT`] are cut to it.
pub fn span(values: impl Iterator<Item = f64>, log: bool, floor: f64) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        let v = v.clamp(-AXIS_LIMIT, AXIS_LIMIT);
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { floor..floor * 10.0 } else { 0.0..1.0 };
    }
    if log {
        let lo = (lo.max(floor) / 1.5).max(floor);
        let hi = (hi.max(lo) * 1.5).max(lo * 10.0);
        // Whole decades, so every power of ten on the axis is labelled.
        let (lo, hi) = (lo.log10().floor(), hi.log10().ceil());
        10f64.powf(lo)..10f64.powf(hi.min(lo + MAX_DECADES))
    } else {
        let hi = if hi <= 0.0 { 1.0 } else { hi * 1.08 };
        lo.min(0.0)..hi
    }
}
