//! Is a difference between two strategies' figures more than noise?
//!
//! `compare` asks it of two runs, the gate's noise-aware budgets of a run and its baseline, the
//! verdict of two strategies of one run. The yardstick is what a seed change alone does: a
//! different seed draws the same profile again (other arrivals, other backend draws), so a
//! figure is "beyond noise" only when it moved further than redrawing the profile moves it.
//! The run itself says how far that is, in two ways:
//!
//! - **as independent calls**: each figure's sampling model ([`kind`]): binomial for a share of
//!   the calls, the spread of attempts per call, Poisson for rare events, and for a latency
//!   quantile its order-statistic interval read off the full histogram ([`quantile`]);
//! - **as seconds**: failures, retries and slow calls come in clusters (an overload spike, an
//!   outage, a breaker's open period, a retry storm), and then the calls of one second are one
//!   event, not hundreds. The per-second timeline says whether a pair of strategies' seconds
//!   vary more than independent calls allow (in retry-storm, a success rate's seconds vary up
//!   to ten times as much, all of it in the 2-second spike), and if they do, a difference must
//!   also hold consistently across seconds, paired second by second ([`seconds`]).
//!
//! A latency quantile's slow calls may come from a few seconds too (a spike's retries, in
//! waves): when the slower run's calls above the faster one's quantile sit in a few seconds
//! (by the timeline's per-second p99), too few for a difference to hold across seconds, the
//! quantiles are not judged different.
//!
//! Figures the timeline does not count per second (duplicate side effects, wasted work, calls
//! a breaker refused, latency quantiles) borrow the pair's **design effect**: how many times
//! the independent-call variance its timeline shows for success and for attempts per call
//! (their dispersion, at least 1), which multiplies their own variance. It is an
//! approximation, and says so: trouble that clusters failures and retries clusters the rest
//! with them.
//!
//! Many figures are judged at once (a comparison of five strategies has some fifty), and at 99%
//! each, one of fifty would move "beyond noise" by chance in a run in three. So the 1% chance
//! of a false alarm is split over the **family** of figures judged together (Bonferroni,
//! [`dist::critical`]): 99% for the family, not for each figure.
//!
//! Figures without a model (gauges, what the schedule fixes) return `None`: the caller's
//! relative threshold alone decides. Identical values never differ.

pub mod dist;
pub mod kind;
pub mod quantile;
pub mod seconds;

use crate::record::histogram::Hist;
use crate::results::StrategyResult;
use kind::{Histogram, Model, Scale};
use seconds::{Column, Per, Seconds};

/// Two strategies' results, `a` (the baseline, or run A) and `b`, to be judged figure by
/// figure; what their timelines say about clustering is read once.
#[derive(Debug, Clone)]
pub struct Pair<'a> {
    a: &'a StrategyResult,
    b: &'a StrategyResult,
    /// The design effect: success's and attempts' per-second dispersion, the larger, at least 1.
    design: f64,
    /// Whether the seconds are read (two runs), or the calls alone (two strategies of one run).
    by_second: bool,
}

impl<'a> Pair<'a> {
    /// Two runs of a strategy: `a` (before) and `b` (after).
    pub fn new(a: &'a StrategyResult, b: &'a StrategyResult) -> Self {
        let mut pair = Self {
            a,
            b,
            design: 1.0,
            by_second: true,
        };
        let spreads = [
            pair.seconds(Column::Succeeded, Per::Offered, &|f| f * (1.0 - f)),
            pair.seconds(Column::Attempts, Per::Sent, &|_| pair.per_call_var()),
        ];
        pair.design = spreads
            .iter()
            .flatten()
            .map(|s| s.dispersion)
            .filter(|d| d.is_finite())
            .fold(1.0, f64::max);
        pair
    }

    /// Two strategies of one run. They meet the same arrivals and the same backend draws
    /// (randomness is keyed by seed, call and attempt), so the trouble that clusters calls (a
    /// spike's depth, an outage) is common to both and cancels in their difference; what is
    /// left comes from the strategies. Judged as independent calls; where they differ by a few
    /// seconds of the same trouble, that is the difference the verdict is about.
    pub fn same_run(a: &'a StrategyResult, b: &'a StrategyResult) -> Self {
        Self {
            a,
            b,
            design: 1.0,
            by_second: false,
        }
    }

    /// How many times the independent-call variance the timeline shows (at least 1): what
    /// figures without a per-second count borrow.
    pub fn design_effect(&self) -> f64 {
        self.design
    }

    /// Whether `va` (of `a`) and `vb` (of `b`) of `figure` differ beyond noise, judged as one of
    /// `family` figures; `None` when the figure has no sampling model.
    pub fn differs(&self, figure: &str, va: f64, vb: f64, family: usize) -> Option<bool> {
        if va == vb {
            return Some(false);
        }
        let (a, b) = (self.a, self.b);
        let d = self.design;
        Some(match kind::model(figure) {
            Model::None => return None,
            Model::Share { scale, column } => {
                let (pa, pb) = (share(a, scale, va), share(b, scale, vb));
                let per = Model::per(scale);
                let iid = binomial(pa, calls(a, per)) + binomial(pb, calls(b, per));
                match column {
                    Some(c) => {
                        let s = self.seconds(c, per, &|f| f * (1.0 - f));
                        judge(pb - pa, iid, s, family)
                    }
                    None => judge(pb - pa, iid * d, None, family),
                }
            }
            Model::Attempts { scale, column } => {
                let (ma, mb) = (share(a, scale, va), share(b, scale, vb));
                let v = self.per_call_var();
                let iid = v / calls(a, Per::Sent) + v / calls(b, Per::Sent);
                match self.seconds(column, Per::Sent, &|_| v) {
                    Some(s) => judge(mb - ma, iid, Some(s), family),
                    None => judge(mb - ma, iid * d, None, family),
                }
            }
            Model::Events { column } => {
                if [va, vb].iter().any(|v| *v < 0.0 || v.fract() != 0.0) {
                    return None;
                }
                let (na, nb) = (calls(a, Per::Offered), calls(b, Per::Offered));
                let poisson = va / (na * na) + vb / (nb * nb);
                let diff = vb / nb - va / na;
                match column.and_then(|c| self.seconds(c, Per::Offered, &|f| f)) {
                    Some(s) => judge(diff, poisson, Some(s), family),
                    None => judge(diff, poisson * d, None, family),
                }
            }
            Model::Quantile { of, q } => {
                if self.by_second && self.tail_in_few_seconds(va.min(vb), va < vb, family) {
                    return Some(false);
                }
                let (ha, hb) = (histogram(a, of)?, histogram(b, of)?);
                let c = dist::critical(family);
                let (ra, rb) = (
                    quantile::reach(&ha, q, d, c)?,
                    quantile::reach(&hb, q, d, c)?,
                );
                quantile::differ(ra, rb)
            }
        })
    }

    /// The two strategies' seconds of `column` ÷ `per` compared ([`seconds`]).
    fn seconds(&self, column: Column, per: Per, per_call: &dyn Fn(f64) -> f64) -> Option<Seconds> {
        if !self.by_second {
            return None;
        }
        seconds::compare(
            &seconds::series(self.a, column, per),
            &seconds::series(self.b, column, per),
            per_call,
        )
    }

    /// Whether the calls slower than `value` in the slower strategy (`b` if `b_slower`) come
    /// from a few seconds of its run (at most half, and too few for a difference carried by
    /// them to be consistent across seconds, [`seconds`]). A spike's slow calls are one event:
    /// which wave of retries the p99 falls in, in a one-second burst, is chance. Read from the
    /// timeline's per-second p99 (of every call): a second whose p99 is above `value` holds at
    /// least 1% of its calls above it.
    fn tail_in_few_seconds(&self, value: f64, b_slower: bool, family: usize) -> bool {
        let slower = if b_slower { self.b } else { self.a };
        let seconds: Vec<_> = slower.timeline.iter().filter(|r| r.offered > 0).collect();
        let tail = seconds
            .iter()
            .filter(|r| r.p99_ms.is_some_and(|p| p > value))
            .count();
        2 * tail <= seconds.len() && (tail as f64) <= dist::consistent(family).powi(2)
    }

    /// The variance of one call's number of attempts, both strategies' calls pooled.
    fn per_call_var(&self) -> f64 {
        let (mut n, mut sum, mut squares) = (0.0, 0.0, 0.0);
        for s in [self.a, self.b] {
            for (k, c) in &s.attempts.per_call {
                let (k, c) = (f64::from(*k), *c as f64);
                n += c;
                sum += k * c;
                squares += k * k * c;
            }
        }
        if n == 0.0 {
            return 0.0;
        }
        let mean = sum / n;
        (squares / n - mean * mean).max(0.0)
    }
}

/// Whether `a` and `b` differ beyond noise in `figure`, judged alone (a family of one).
pub fn beyond_noise(
    figure: &str,
    a: &StrategyResult,
    b: &StrategyResult,
    va: f64,
    vb: f64,
) -> Option<bool> {
    Pair::new(a, b).differs(figure, va, vb, 1)
}

/// Whether `diff` is beyond noise as independent calls (variance `iid`), and, when the seconds
/// show clustered calls, also consistently across seconds; for one of `family` figures.
fn judge(diff: f64, iid: f64, seconds: Option<Seconds>, family: usize) -> bool {
    if diff == 0.0 {
        return false;
    }
    let as_calls = iid <= 0.0 || diff.abs() > dist::critical(family) * iid.sqrt();
    let as_seconds = match seconds {
        Some(s) if s.clustered => s.sum.abs() > dist::consistent(family),
        _ => true,
    };
    as_calls && as_seconds
}

/// Calls offered (or sent), at least one.
fn calls(s: &StrategyResult, per: Per) -> f64 {
    let n = match per {
        Per::Offered => s.counts.offered,
        Per::Sent => s.counts.sent,
    };
    n.max(1) as f64
}

/// A figure's value on its model's scale.
fn share(s: &StrategyResult, scale: Scale, v: f64) -> f64 {
    match scale {
        Scale::AsIs => v,
        Scale::PerOffered => v / calls(s, Per::Offered),
        Scale::PerSent => v / calls(s, Per::Sent),
        Scale::GoodputFraction => s.goodput.fraction,
    }
}

/// The binomial variance of a share `p` of `n` calls.
fn binomial(p: f64, n: f64) -> f64 {
    (p * (1.0 - p)).max(0.0) / n.max(1.0)
}

fn histogram(s: &StrategyResult, of: Histogram) -> Option<Hist> {
    let text = match of {
        Histogram::E2e => &s.histograms.e2e,
        Histogram::E2eOk => &s.histograms.e2e_ok,
        Histogram::Attempt => &s.histograms.attempt,
        Histogram::SubCall => s.histograms.sub_call.as_ref()?,
    };
    Hist::decode(text).ok()
}

#[cfg(test)]
mod tests;
