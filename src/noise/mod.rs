//! Is a difference between two runs more than sampling noise?
//!
//! Two runs of the same profile on a real clock never agree exactly, and how much they may
//! differ by chance depends on the figure and on how many calls it rests on: a p99.9 of 1,000
//! calls is one call's latency; a success rate of 100,000 calls is tight. So each figure that
//! has a sampling model is tested at 99% confidence (z = 2.576):
//!
//! - **percentiles** (`latency_ms.*.p50` … `p999`): a distribution-free confidence interval for
//!   the quantile, read off each run's full histogram: the values at ranks
//!   n·q ± z·√(n·q·(1−q)) (the order-statistic interval). Different when the two intervals do
//!   not overlap.
//! - **proportions** (`success_rate`, `failure_rate`, `drop_rate`, `goodput.*`): the two-sample
//!   binomial test on the calls offered.
//! - **attempts per call** (`amplification.client`): the difference of two means, with each
//!   run's variance from its attempts-per-call distribution.
//!
//! - **counts** (`counts.*`, `status.*`, `backend.*` such as duplicate side effects or wasted
//!   work, `breaker.*`, `stream.*`) and backend amplification (attempts received): a count's
//!   Poisson noise (its variance is the count), per call offered (sent).
//!
//! Figures without a model (goodput per second aside, figures newer builds add that are not
//! counts) rely on the relative threshold alone. Identical runs (a virtual clock and the same seed) never differ.

use std::collections::BTreeMap;

use crate::record::histogram::Hist;
use crate::results::StrategyResult;

/// The z of a two-sided 99% confidence level.
pub const Z: f64 = 2.576;

/// Whether `va` (run A) and `vb` (run B) of `figure` differ beyond sampling noise; `None` when
/// the figure has no sampling model.
pub fn beyond_noise(
    figure: &str,
    a: &StrategyResult,
    b: &StrategyResult,
    va: f64,
    vb: f64,
) -> Option<bool> {
    if va == vb {
        return Some(false);
    }
    if let Some(rest) = figure.strip_prefix("latency_ms.") {
        let (which, pct) = rest.split_once('.')?;
        let q = match pct {
            "p50" => 0.5,
            "p90" => 0.9,
            "p99" => 0.99,
            "p999" => 0.999,
            _ => return None,
        };
        let pick = |s: &StrategyResult| {
            let text = match which {
                "e2e" => &s.histograms.e2e,
                "e2e_ok" => &s.histograms.e2e_ok,
                "attempt" => &s.histograms.attempt,
                _ => return None,
            };
            Hist::decode(text).ok()
        };
        let (ia, ib) = (interval(&pick(a)?, q)?, interval(&pick(b)?, q)?);
        return Some(ia.1 < ib.0 || ib.1 < ia.0);
    }
    match figure {
        "success_rate" | "failure_rate" | "drop_rate" | "goodput.fraction" => Some(
            proportions_differ(va, a.counts.offered, vb, b.counts.offered),
        ),
        "goodput.per_second" => Some(proportions_differ(
            a.goodput.fraction,
            a.counts.offered,
            b.goodput.fraction,
            b.counts.offered,
        )),
        "amplification.backend" => {
            // Attempts the backend received, a count: its Poisson variance, per call sent.
            let (ra, rb) = (a.backend.as_ref()?.received, b.backend.as_ref()?.received);
            Some(rates_differ(
                ra as f64,
                a.counts.sent,
                rb as f64,
                b.counts.sent,
            ))
        }
        "amplification.client" => {
            let (ma, sa) = mean_and_se(&a.attempts.per_call)?;
            let (mb, sb) = mean_and_se(&b.attempts.per_call)?;
            let se = (sa * sa + sb * sb).sqrt();
            Some(if se == 0.0 {
                ma != mb
            } else {
                (ma - mb).abs() > Z * se
            })
        }
        _ if is_count(figure, va) && is_count(figure, vb) => {
            Some(rates_differ(va, a.counts.offered, vb, b.counts.offered))
        }
        _ => None,
    }
}

/// Whether `figure` is a count of events (calls, attempts, side effects) with value `v`.
fn is_count(figure: &str, v: f64) -> bool {
    let counted = [
        "counts.",
        "status.",
        "attempts.",
        "backend.",
        "breaker.",
        "stream.",
    ];
    counted.iter().any(|p| figure.starts_with(p)) && v >= 0.0 && v.fract() == 0.0
}

/// Whether two counts, `ca` of `na` calls and `cb` of `nb`, differ beyond their Poisson noise
/// (a count's variance is the count): the per-call rates compared with a z test.
pub fn rates_differ(ca: f64, na: u64, cb: f64, nb: u64) -> bool {
    let (na, nb) = (na.max(1) as f64, nb.max(1) as f64);
    let var = ca / (na * na) + cb / (nb * nb);
    if var <= 0.0 {
        return ca / na != cb / nb;
    }
    (ca / na - cb / nb).abs() > Z * var.sqrt()
}

/// The 99% confidence interval of quantile `q` of `hist`, ms.
pub fn interval(hist: &Hist, q: f64) -> Option<(f64, f64)> {
    let n = hist.count() as f64;
    if n == 0.0 {
        return None;
    }
    let half = Z * (q * (1.0 - q) / n).sqrt();
    let lo = (q - half).max(0.0);
    let hi = (q + half).min(1.0);
    Some((hist.quantile_ms(lo), hist.quantile_ms(hi)))
}

/// Two-sample test of proportions `pa` of `na` and `pb` of `nb`.
pub fn proportions_differ(pa: f64, na: u64, pb: f64, nb: u64) -> bool {
    if na == 0 || nb == 0 {
        return pa != pb;
    }
    let var = pa * (1.0 - pa) / na as f64 + pb * (1.0 - pb) / nb as f64;
    if var <= 0.0 {
        return pa != pb;
    }
    (pa - pb).abs() > Z * var.sqrt()
}

/// Mean attempts per call and its standard error.
fn mean_and_se(per_call: &BTreeMap<u32, u64>) -> Option<(f64, f64)> {
    let n: f64 = per_call.values().map(|c| *c as f64).sum();
    if n == 0.0 {
        return None;
    }
    let mean = per_call
        .iter()
        .map(|(k, c)| f64::from(*k) * *c as f64)
        .sum::<f64>()
        / n;
    let var = per_call
        .iter()
        .map(|(k, c)| (f64::from(*k) - mean).powi(2) * *c as f64)
        .sum::<f64>()
        / n;
    Some((mean, (var / n).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn proportions_need_enough_calls_to_differ() {
        assert!(
            !proportions_differ(0.99, 100, 0.98, 100),
            "1 call in 100 is noise"
        );
        assert!(proportions_differ(0.99, 100_000, 0.98, 100_000));
        assert!(
            proportions_differ(1.0, 10, 0.0, 10),
            "no variance: any change counts"
        );
        assert!(
            !proportions_differ(1.0, 10, 0.9, 10),
            "one call in ten is noise"
        );
    }

    #[test]
    fn counts_differ_beyond_their_poisson_noise() {
        assert!(
            !rates_differ(56.0, 1800, 84.0, 1800),
            "a seed's worth of wasted work"
        );
        assert!(rates_differ(0.0, 1800, 201.0, 1800));
        assert!(!rates_differ(0.0, 1800, 0.0, 1800));
        assert!(rates_differ(1000.0, 1000, 3000.0, 1000));
    }

    #[test]
    fn quantile_intervals_narrow_with_more_samples() {
        let mut small = Hist::new();
        let mut large = Hist::new();
        for i in 0..100u64 {
            small.record(Duration::from_micros(1000 + i * 10));
        }
        for i in 0..100_000u64 {
            large.record(Duration::from_micros(1000 + (i % 100) * 10));
        }
        let (s, l) = (
            interval(&small, 0.99).unwrap(),
            interval(&large, 0.99).unwrap(),
        );
        assert!(s.1 - s.0 >= l.1 - l.0, "{s:?} vs {l:?}");
        assert!(interval(&Hist::new(), 0.5).is_none());
    }
}
