//! Drawing service times from the profile's distributions ([`Latency`]).
//!
//! Samples come from a [`KeyedStream`], so an attempt's service time depends only on
//! (seed, request id, attempt), never on when it was drawn.

use std::time::Duration;

use crate::keyed::KeyedStream;
pub use crate::profile::latency::{Component, Latency, MAX_SAMPLE};

/// z-score of the 99th percentile of the standard normal distribution, Φ⁻¹(0.99).
pub const Z_99: f64 = 2.326_347_874_040_841;

impl Latency {
    /// Draws one service time.
    pub fn sample(&self, rng: &mut KeyedStream) -> Duration {
        let secs = match self {
            Latency::Fixed { value } => return (*value).min(MAX_SAMPLE),
            Latency::Uniform { min, max } => {
                let (a, b) = (min.as_secs_f64(), max.as_secs_f64());
                a + (b - a) * rng.open01()
            }
            Latency::Normal { mean, stddev } => {
                mean.as_secs_f64() + stddev.as_secs_f64() * standard_normal(rng)
            }
            Latency::Lognormal { median, p99 } => {
                let (mu, sigma) = lognormal_params(*median, *p99);
                (mu + sigma * standard_normal(rng)).exp()
            }
            Latency::Pareto { scale, shape } => {
                scale.as_secs_f64() / rng.open01().powf(1.0 / shape)
            }
            Latency::Measured(m) => {
                let (u1, u2) = (rng.open01(), rng.open01());
                return m.sample(u1, u2).min(MAX_SAMPLE);
            }
            Latency::Mixture { of } => {
                let total: f64 = of.iter().map(|c| c.weight).sum();
                let mut pick = rng.open01() * total;
                let last = of.len() - 1;
                for (i, c) in of.iter().enumerate() {
                    if pick < c.weight || i == last {
                        return c.latency.sample(rng);
                    }
                    pick -= c.weight;
                }
                unreachable!("the last component is always taken")
            }
        };
        to_duration(secs)
    }
}

/// μ and σ of a lognormal given its median and 99th percentile.
pub fn lognormal_params(median: Duration, p99: Duration) -> (f64, f64) {
    let mu = median.as_secs_f64().ln();
    let sigma = (p99.as_secs_f64() / median.as_secs_f64()).ln() / Z_99;
    (mu, sigma)
}

/// A standard normal draw by the Box–Muller transform (two uniforms, one normal).
fn standard_normal(rng: &mut KeyedStream) -> f64 {
    let (u1, u2) = (rng.open01(), rng.open01());
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Seconds to a duration, clamped to [0, MAX_SAMPLE].
fn to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else if secs >= MAX_SAMPLE.as_secs_f64() {
        MAX_SAMPLE
    } else {
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed::Purpose;

    const N: usize = 100_000;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Draws N samples (fixed seed) and returns them sorted, in milliseconds.
    fn sorted_samples(dist: &Latency) -> Vec<f64> {
        let mut v: Vec<f64> = (0..N as u64)
            .map(|id| {
                let mut rng = KeyedStream::new(7, id, 0, Purpose::Latency);
                dist.sample(&mut rng).as_secs_f64() * 1e3
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    fn quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
    }

    fn assert_close(what: &str, got: f64, want: f64, rel: f64) {
        assert!(
            (got - want).abs() <= rel * want.abs(),
            "{what}: got {got:.4}, want {want:.4} (±{:.1}%)",
            rel * 100.0
        );
    }

    #[test]
    fn fixed_is_exact() {
        let s = sorted_samples(&Latency::Fixed { value: ms(2) });
        assert_eq!((s[0], s[N - 1]), (2.0, 2.0));
    }

    #[test]
    fn uniform_quantiles_match() {
        let s = sorted_samples(&Latency::Uniform {
            min: ms(10),
            max: ms(20),
        });
        for q in [0.1, 0.5, 0.9, 0.99] {
            assert_close(
                &format!("uniform q{q}"),
                quantile(&s, q),
                10.0 + 10.0 * q,
                0.01,
            );
        }
        assert!(s[0] >= 10.0 && s[N - 1] <= 20.0);
    }

    #[test]
    fn normal_quantiles_match() {
        let s = sorted_samples(&Latency::Normal {
            mean: ms(100),
            stddev: ms(10),
        });
        // Φ⁻¹(0.9) = 1.281552, Φ⁻¹(0.99) = 2.326348.
        assert_close("normal p50", quantile(&s, 0.5), 100.0, 0.005);
        assert_close("normal p90", quantile(&s, 0.9), 112.81552, 0.005);
        assert_close("normal p99", quantile(&s, 0.99), 123.26348, 0.01);
        assert_close("normal p10", quantile(&s, 0.1), 87.18448, 0.005);
    }

    #[test]
    fn lognormal_has_the_median_and_p99_it_was_given() {
        let s = sorted_samples(&Latency::Lognormal {
            median: ms(2),
            p99: ms(20),
        });
        assert_close("lognormal p50", quantile(&s, 0.5), 2.0, 0.02);
        assert_close("lognormal p99", quantile(&s, 0.99), 20.0, 0.04);
        // p90 = exp(μ + σ·Φ⁻¹(0.9)).
        let (mu, sigma) = lognormal_params(ms(2), ms(20));
        let p90 = (mu + sigma * 1.281_551_565_5).exp() * 1e3;
        assert_close("lognormal p90", quantile(&s, 0.9), p90, 0.03);
    }

    #[test]
    fn pareto_quantiles_match() {
        // Q(q) = scale / (1 − q)^(1/shape).
        let s = sorted_samples(&Latency::Pareto {
            scale: ms(1),
            shape: 2.0,
        });
        for q in [0.5f64, 0.9, 0.99] {
            let want = 1.0 / (1.0 - q).powf(0.5);
            assert_close(&format!("pareto q{q}"), quantile(&s, q), want, 0.03);
        }
        assert!(s[0] >= 1.0);
    }

    #[test]
    fn mixture_puts_the_slow_share_in_the_tail() {
        let dist = Latency::Mixture {
            of: vec![
                Component {
                    weight: 99.0,
                    latency: Latency::Fixed { value: ms(2) },
                },
                Component {
                    weight: 1.0,
                    latency: Latency::Fixed { value: ms(200) },
                },
            ],
        };
        let s = sorted_samples(&dist);
        let slow = s.iter().filter(|&&v| v == 200.0).count() as f64 / N as f64;
        assert_close("slow share", slow, 0.01, 0.08);
        assert_eq!(quantile(&s, 0.98), 2.0);
        assert_eq!(quantile(&s, 0.995), 200.0);
    }

    #[test]
    fn draws_are_cut_to_the_maximum() {
        let heavy = Latency::Pareto {
            scale: Duration::from_secs(1000),
            shape: 0.1,
        };
        let s = sorted_samples(&heavy);
        assert_eq!(s[N - 1], MAX_SAMPLE.as_secs_f64() * 1e3);
    }
}
