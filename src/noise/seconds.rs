//! Seconds, not calls, as the independent units of a run.
//!
//! Calls within a second share their trouble: an overload spike, an outage, a breaker's open
//! period or a retry storm fails (or slows) many of them together, and then the calls of one
//! second are one event, not hundreds. Seconds far enough apart are close to independent, and
//! results.json keeps each strategy's per-second timeline. So a figure that is a ratio of sums
//! over seconds, F = Σ yₜ ÷ Σ nₜ (successes ÷ calls offered, attempts ÷ calls sent), is also
//! judged second by second.
//!
//! Two strategies (two runs of one profile, or two strategies of one run) are **paired by
//! second**: a profile's phases happen at the same second in both, so what the schedule fixes
//! (an outage at 10 s fails every call in it, whatever the seed) cancels, and what chance moves
//! remains. Two numbers come of it:
//!
//! - **dispersion**: the paired residuals zₜ = (y′ₜ − F′n′ₜ)/N′ − (yₜ − Fnₜ)/N (each around its
//!   own rate) against what independent calls would give them; more than Pearson's χ² on T − 1
//!   degrees of freedom allows at 99% means the run's calls are **clustered**, and the
//!   independent-call models alone would call chance a difference;
//! - **consistency**: the paired differences around the pooled rate, δₜ, summed and divided by
//!   √(Σ δₜ²). Under a seed change alone the two runs are draws of the same profile, so each
//!   δₜ is as likely to be positive as negative whatever its size (however its calls cluster
//!   within the second): a sign-flip (permutation) argument, and Hoeffding's inequality bounds
//!   the chance of |Σ δₜ| / √(Σ δₜ²) ≥ x by 2·exp(−x²/2) (B. Efron, "Student's t-test under
//!   symmetry conditions", *JASA* 64, 1969). A burst of k seconds moves this by at most √k,
//!   however deep it is; a difference that holds second after second (a storm that does not
//!   end, a loss spread over the run) moves it by the square root of its length.
//!
//! A clustered run's share, attempts or events differ only when the difference is also
//! consistent across seconds ([`super::dist::consistent`]). The dispersion is also the design
//! effect that figures without a per-second count borrow ([`super`]). A run of few seconds
//! cannot show a clustered difference at all (√T stays below the bound): that is what seconds
//! as units mean, and the reason to gate long runs.

use std::collections::BTreeMap;

use crate::results::StrategyResult;

/// What a per-second series counts: a column of the strategy's timeline, or of its backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Calls offered in the second that succeeded.
    Succeeded,
    /// Calls offered in the second that failed.
    Failed,
    /// Calls offered in the second that were dropped.
    Dropped,
    /// Attempts the client sent in the second.
    Attempts,
    /// Attempts the backend received in the second.
    Received,
    /// Attempts the backend started executing in the second.
    Executed,
    /// Attempts the backend turned away in the second.
    Rejected,
}

/// What a series is divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Calls offered in the second.
    Offered,
    /// Calls sent in the second (offered less dropped).
    Sent,
}

/// A series: per second, (numerator, denominator).
type Series = BTreeMap<u64, (f64, f64)>;

/// The per-second series of `column` ÷ `per` of a strategy; empty when the file has no
/// timeline (or no backend timeline, for a backend column).
pub fn series(s: &StrategyResult, column: Column, per: Per) -> Series {
    let mut out = Series::new();
    for r in &s.timeline {
        let den = match per {
            Per::Offered => r.offered,
            Per::Sent => r.offered.saturating_sub(r.dropped),
        };
        let num = match column {
            Column::Succeeded => Some(r.succeeded),
            Column::Failed => Some(r.failed),
            Column::Dropped => Some(r.dropped),
            Column::Attempts => Some(r.attempts),
            _ => None,
        };
        out.insert(r.t, (num.unwrap_or(0) as f64, den as f64));
    }
    if matches!(
        column,
        Column::Received | Column::Executed | Column::Rejected
    ) {
        let backend = s.backend.as_ref().map_or(&[][..], |b| &b.timeline[..]);
        if backend.is_empty() {
            return Series::new();
        }
        // Only the measured seconds: the backend's timeline also holds the warmup's.
        for b in backend {
            if let Some(row) = out.get_mut(&b.t) {
                row.0 = match column {
                    Column::Received => b.received,
                    Column::Executed => b.executed,
                    _ => b.rejected,
                } as f64;
            }
        }
    }
    out
}

/// What a pair of per-second series says: whether its seconds vary more than independent
/// calls would make them, and how consistently the second strategy differs from the first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds {
    /// The dispersion: how many times the independent-call variance the seconds show,
    /// Σ zₜ² ÷ Σ E[zₜ²] (1 for independent calls).
    pub dispersion: f64,
    /// Whether that is more than chance (Pearson's χ² on T − 1 degrees of freedom, 99%).
    pub clustered: bool,
    /// The self-normalized sum of the paired differences, Σ δₜ ÷ √(Σ δₜ²).
    pub sum: f64,
}

/// The seconds of `a` and `b` compared (see the module doc); `per_call`: the variance of one
/// call's contribution at rate F if calls were independent (F(1 − F) for a share, F for
/// Poisson events, the spread of attempts per call). `None` with fewer than two seconds, or
/// nothing to divide by.
pub fn compare(a: &Series, b: &Series, per_call: impl Fn(f64) -> f64) -> Option<Seconds> {
    let total = |s: &Series| s.values().fold((0.0, 0.0), |t, v| (t.0 + v.0, t.1 + v.1));
    let ((ya, na), (yb, nb)) = (total(a), total(b));
    if na <= 0.0 || nb <= 0.0 {
        return None;
    }
    let (fa, fb, pooled) = (ya / na, yb / nb, (ya + yb) / (na + nb));
    let mut seconds: Vec<u64> = a.keys().chain(b.keys()).copied().collect();
    seconds.sort_unstable();
    seconds.dedup();
    if seconds.len() < 2 {
        return None;
    }
    let at = |s: &Series, t: &u64| s.get(t).copied().unwrap_or((0.0, 0.0));
    let (mut zz, mut expected, mut sum, mut squares) = (0.0, 0.0, 0.0, 0.0);
    for t in &seconds {
        let ((y, n), (y2, n2)) = (at(a, t), at(b, t));
        // Around each strategy's own rate: what moves apart from the difference itself.
        let z = (y2 - fb * n2) / nb - (y - fa * n) / na;
        zz += z * z;
        expected += (n / (na * na) + n2 / (nb * nb)) * per_call(pooled);
        // Around the pooled rate: the difference, second by second.
        let d = (y2 - pooled * n2) / nb - (y - pooled * n) / na;
        sum += d;
        squares += d * d;
    }
    let k = (seconds.len() - 1) as f64;
    let dispersion = if expected > 0.0 {
        zz / expected
    } else if zz > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    Some(Seconds {
        dispersion,
        clustered: dispersion * k > super::dist::chi2_upper(k, super::dist::ALPHA),
        sum: if squares > 0.0 {
            sum / squares.sqrt()
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(rows: &[(u64, f64, f64)]) -> Series {
        rows.iter().map(|&(t, y, n)| (t, (y, n))).collect()
    }

    fn binomial(f: f64) -> f64 {
        f * (1.0 - f)
    }

    #[test]
    fn what_the_schedule_fixes_cancels_out() {
        // Both runs lose every call of seconds 2 and 3 (an outage) and none elsewhere.
        let outage = s(&[
            (0, 100.0, 100.0),
            (1, 100.0, 100.0),
            (2, 0.0, 100.0),
            (3, 0.0, 100.0),
            (4, 100.0, 100.0),
        ]);
        let same = compare(&outage, &outage, binomial).unwrap();
        assert!(!same.clustered && same.sum == 0.0, "{same:?}");
    }

    #[test]
    fn a_burst_is_clustered_and_a_few_seconds_cannot_be_consistent() {
        let calm = s(&(0..20).map(|t| (t, 98.0, 100.0)).collect::<Vec<_>>());
        let burst = s(&(0..20)
            .map(|t| (t, if t == 10 { 60.0 } else { 98.0 }, 100.0))
            .collect::<Vec<_>>());
        let spread = s(&(0..20)
            .map(|t| (t, if t % 2 == 0 { 96.0 } else { 98.0 }, 100.0))
            .collect::<Vec<_>>());
        // Both lose 40 calls of 2,000; the burst's are one event, the spread ones ten.
        let (b, p) = (
            compare(&calm, &burst, binomial).unwrap(),
            compare(&calm, &spread, binomial).unwrap(),
        );
        assert!(b.clustered && b.dispersion > 10.0, "{b:?}");
        assert!((b.sum + 1.0).abs() < 1e-9, "one second: |sum| 1, {b:?}");
        assert!(p.sum < -2.9, "ten seconds the same way: {p:?}");
        assert!(compare(&Series::new(), &calm, binomial).is_none());
    }
}
