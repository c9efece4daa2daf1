//! Whether two latency quantiles differ beyond noise, read off the runs' full histograms.
//!
//! The q-quantile of n calls has a distribution-free confidence interval: the values at the
//! ranks n·(q ± c·√(q(1−q)/n)) (the order-statistic interval, with the normal approximation of
//! the binomial rank). When calls are not independent (slow calls come together in a spike or
//! a storm), n is worth fewer calls: the interval is Woodruff's, the share q ± c·se read back
//! through the histogram, with se² = D·q(1−q)/n for a design effect D (R. S. Woodruff,
//! "Confidence intervals for medians and other position measures", *JASA* 47, 1952; D comes
//! from the run's timeline, [`super`]).
//!
//! A rank beyond the sample does not bound anything: the p99.9 of 3,000 calls has three calls
//! above it, and nothing in the run says how far above the largest one the true p99.9 may lie.
//! So an interval that reaches past the largest value is open above (and one below the
//! smallest, open below), and a quantile with such an interval on the side facing the other
//! run cannot be judged different.

use crate::record::histogram::Hist;

/// A quantile's value and how far its interval reaches each way, ms (infinite: not bounded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// The quantile's value as the histogram reads it.
    pub value: f64,
    /// How far below it the interval reaches.
    pub below: f64,
    /// How far above it the interval reaches.
    pub above: f64,
}

/// The interval of quantile `q` of `hist`, for a design effect `design` (1: independent
/// calls) and critical value `c`; `None` for an empty histogram.
pub fn reach(hist: &Hist, q: f64, design: f64, c: f64) -> Option<Reach> {
    let n = hist.count() as f64;
    if n == 0.0 {
        return None;
    }
    let half = c * (design.max(1.0) * q * (1.0 - q) / n).sqrt();
    let value = hist.quantile_ms(q);
    let below = if q - half < 0.0 || !half.is_finite() {
        f64::INFINITY
    } else {
        value - hist.quantile_ms(q - half)
    };
    let above = if q + half > 1.0 || !half.is_finite() {
        f64::INFINITY
    } else {
        hist.quantile_ms(q + half) - value
    };
    Some(Reach {
        value,
        below,
        above,
    })
}

/// Whether `a` and `b` differ: the gap between them exceeds the two intervals' reaches on
/// the sides that face each other, added as independent errors (each reach is c standard
/// errors, so this is the two-sample test at the same c).
pub fn differ(a: Reach, b: Reach) -> bool {
    let gap = (b.value - a.value).abs();
    if gap == 0.0 {
        return false;
    }
    let (lower, upper) = if a.value < b.value { (a, b) } else { (b, a) };
    let reach = lower.above.hypot(upper.below);
    reach.is_finite() && gap > reach
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hist(values_us: impl IntoIterator<Item = u64>) -> Hist {
        let mut h = Hist::new();
        for v in values_us {
            h.record(Duration::from_micros(v));
        }
        h
    }

    #[test]
    fn intervals_narrow_with_more_calls_and_open_past_the_sample() {
        let small = hist((0..100).map(|i| 1000 + i * 10));
        let large = hist((0..100_000).map(|i| 1000 + i / 10));
        let (s, l) = (
            reach(&small, 0.5, 1.0, 2.576).unwrap(),
            reach(&large, 0.5, 1.0, 2.576).unwrap(),
        );
        assert!(s.above > l.above && s.below > l.below, "{s:?} {l:?}");
        // Two calls cannot bound their median; 3,000 cannot bound their p99.9 from above.
        let two = reach(&hist([1000, 2000]), 0.5, 1.0, 2.576).unwrap();
        assert!(two.above.is_infinite() && two.below.is_infinite());
        let p999 = reach(&hist((0..3000).map(|i| 1000 + i)), 0.999, 1.0, 2.576).unwrap();
        assert!(p999.above.is_infinite() && p999.below.is_finite());
        // A design effect of 4 is a quarter of the calls.
        let clustered = reach(&large, 0.5, 4.0, 2.576).unwrap();
        assert!(clustered.above > l.above);
        assert!(reach(&Hist::new(), 0.5, 1.0, 2.576).is_none());
    }

    #[test]
    fn medians_ten_times_apart_differ_and_open_intervals_never_do() {
        let fast = hist((0..1000).map(|i| 1000 + i));
        let slow = hist((0..1000).map(|i| 10_000 + 10 * i));
        let (f, s) = (
            reach(&fast, 0.5, 1.0, 3.7).unwrap(),
            reach(&slow, 0.5, 1.0, 3.7).unwrap(),
        );
        assert!(differ(f, s) && differ(s, f));
        assert!(!differ(f, f));
        let open = Reach {
            above: f64::INFINITY,
            ..f
        };
        assert!(
            !differ(open, s),
            "the slower run may be within the open side"
        );
    }
}
