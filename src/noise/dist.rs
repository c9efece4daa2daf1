//! The critical values the noise tests compare a difference with, and the Bonferroni split of
//! the 1% false-alarm chance over a family of figures judged at once.
//!
//! Formulas, not a statistics crate (three quantile functions do not pay for one):
//! - the normal tail from the complementary error function, W. H. Press et al., *Numerical
//!   Recipes in C*, 2nd ed., §6.2, `erfcc` (Chebyshev fit, fractional error below 1.2e-7),
//!   and its quantile by bisection;
//! - the χ² quantile by E. B. Wilson and M. M. Hilferty's cube-root approximation ("The
//!   distribution of chi-square", *PNAS* 17, 1931);
//! - Hoeffding's bound for a sign-flipped sum, 2·exp(−x²/2), solved for x.

/// The false-alarm chance of one judgement: 1% (99% confidence), two-sided.
pub const ALPHA: f64 = 0.01;

/// erfc(x), Numerical Recipes' `erfcc`.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// P(Z > z) for a standard normal Z.
pub fn normal_upper(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The `x ≥ 0` at which the decreasing `upper(x)` equals `p`, by bisection.
fn invert(upper: impl Fn(f64) -> f64, p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while upper(hi) > p && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if upper(mid) > p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-9 * hi {
            break;
        }
    }
    hi
}

/// The two-sided normal critical value for one figure of a family of `family` judged at
/// once, so that a false alarm anywhere in the family has a chance of at most [`ALPHA`]
/// (Bonferroni: each figure at `ALPHA / family`).
pub fn critical(family: usize) -> f64 {
    invert(normal_upper, ALPHA / (2.0 * family.max(1) as f64))
}

/// The bound a self-normalized sign-flipped sum must pass, for one of `family` figures:
/// 2·exp(−x²/2) = `ALPHA / family` (see [`super::seconds`]).
pub fn consistent(family: usize) -> f64 {
    (2.0 * (2.0 * family.max(1) as f64 / ALPHA).ln()).sqrt()
}

/// The value a χ² with `k` degrees of freedom exceeds with chance `p` (Wilson–Hilferty).
pub fn chi2_upper(k: f64, p: f64) -> f64 {
    let k = k.max(1.0);
    let z = invert(normal_upper, p);
    let h = 2.0 / (9.0 * k);
    k * (1.0 - h + z * h.sqrt()).powi(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn normal_quantiles_match_the_tables() {
        assert!(near(critical(1), 2.5758, 2e-4), "{}", critical(1));
        // 0.01 / (2 x 50) = 1e-4 in each tail.
        assert!(near(critical(50), 3.7190, 2e-4), "{}", critical(50));
        assert!(near(normal_upper(1.959_964), 0.025, 1e-7));
        assert!(near(normal_upper(-1.0), 0.841_344_7, 1e-6));
    }

    #[test]
    fn chi2_and_the_sign_flip_bound_match_the_tables() {
        // χ²(0.99): 10 degrees of freedom 23.209, 30 50.892, 100 135.807.
        for (k, x) in [(10.0, 23.209), (30.0, 50.892), (100.0, 135.807)] {
            let got = chi2_upper(k, 0.01);
            assert!(near(got, x, 0.02 * x / 10.0), "{k}: {got}");
        }
        // 2·exp(−x²/2) = 0.01: x = 3.255; for 45 figures, 4.267.
        assert!(near(consistent(1), 3.2552, 1e-3));
        assert!(near(consistent(45), 4.2673, 1e-3));
    }
}
