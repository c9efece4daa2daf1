//! The HdrHistogram percentile plot: latency against "1 − percentile" on a log axis.
//!
//! The x axis is 1 / (1 − q), so 90%, 99%, 99.9%, 99.99% are evenly spaced and the tail, where
//! strategies differ, gets as much room as the median. Each line is read from a full
//! histogram of results.json, so it shows every percentile the run measured, not only the
//! five in the tables.

use plotters::style::RGBColor;

use super::{Axis, Chart, Series, Shape, span};
use crate::record::histogram::Hist;

/// Lowest latency shown, ms (the histograms' resolution is 1 µs).
pub const FLOOR_MS: f64 = 0.001;

/// One distribution to draw.
pub struct Dist {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub colour: RGBColor,
    /// Solid or dashed.
    pub shape: Shape,
    /// The histogram, microseconds.
    pub hist: Hist,
}

/// "99.9%" for x = 1000.
pub fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".into();
    }
    let p = 100.0 * (1.0 - 1.0 / x);
    let decimals = (x.log10().ceil() as usize).saturating_sub(2);
    format!("{p:.decimals$}%")
}

/// The points of one histogram: (1 / (1 − q), value in ms), the last at the maximum.
pub fn points(hist: &Hist) -> Vec<(f64, f64)> {
    let h = hist.inner();
    let n = h.len() as f64;
    if h.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(f64, f64)> = vec![(1.0, h.min() as f64 / 1e3)];
    for step in h.iter_quantiles(4) {
        let q = step.quantile_iterated_to();
        let x = if q >= 1.0 {
            n
        } else {
            (1.0 / (1.0 - q)).min(n)
        };
        let ms = h.highest_equivalent(step.value_iterated_to()) as f64 / 1e3;
        if x >= 1.0 && out.last().is_none_or(|&(px, _)| x >= px) {
            out.push((x, ms.min(h.max() as f64 / 1e3)));
        }
    }
    out.push((n.max(1.0), h.max() as f64 / 1e3));
    out
}

/// The chart of `dists`, with an optional horizontal reference line (value ms, label).
pub fn chart(title: &str, what: &str, dists: &[Dist], limit: Option<(f64, String)>) -> Chart {
    let mut series: Vec<Series> = dists
        .iter()
        .map(|d| Series {
            label: d.label.clone(),
            colour: d.colour,
            shape: d.shape,
            points: points(&d.hist),
        })
        .collect();
    let most = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(100.0f64, f64::max);
    let x_end = 10f64.powf(most.log10().ceil());
    let y = span(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(limit.iter().map(|l| l.0)),
        true,
        FLOOR_MS,
    );
    // A value below the axis (a lag of 0) lies on its floor.
    for s in &mut series {
        s.points.iter_mut().for_each(|p| p.1 = p.1.max(y.start));
    }
    if let Some((v, label)) = limit {
        series.push(Series {
            label,
            colour: RGBColor(0xB2, 0x18, 0x2B),
            shape: Shape::Dashed,
            points: vec![(1.0, v), (x_end, v)],
        });
    }
    Chart {
        title: title.into(),
        x: Axis::log(1.0..x_end, "percentile (log scale of 1 / (1 − percentile))")
            .labels(percentile_label),
        y: Axis::log(y, &format!("{what} (ms, log scale)")),
        series,
        bands: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn labels_read_as_percentiles() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10000.0), "99.99%");
    }

    #[test]
    fn points_climb_to_the_maximum() {
        let mut h = Hist::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us * 10));
        }
        let p = points(&h);
        assert!(
            p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
            "{p:?}"
        );
        let last = p.last().unwrap();
        assert_eq!(last.0, 1000.0);
        assert!((last.1 - 10.0).abs() < 0.02, "{last:?}");
        assert!(points(&Hist::new()).is_empty());
    }
}
