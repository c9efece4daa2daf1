//! Service-time distributions of the backend.
//!
//! Real service times are rarely normal: most are lognormal-ish with a long tail, some have a
//! power-law tail (Pareto), and the tail that hedging and retries fight is often a *mixture*
//! ("99% at 2 ms, 1% at 200 ms": one slow replica, a GC pause, a cold cache). Each shape here is
//! written the way people describe it: a lognormal by its median and p99, not by μ and σ.
//!
//! Samples come from a [`KeyedStream`], so an attempt's service time depends only on
//! (seed, request id, attempt), never on when it was drawn.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keyed::KeyedStream;
use crate::profile::duration::human;

/// The longest service time a distribution will return; longer draws are cut to this.
pub const MAX_SAMPLE: Duration = Duration::from_secs(3600);

/// z-score of the 99th percentile of the standard normal distribution, Φ⁻¹(0.99).
pub const Z_99: f64 = 2.326_347_874_040_841;

/// A service-time distribution. In a profile, a plain duration string (`latency = "2ms"`) is a
/// fixed latency; a table names its shape with `dist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always the same.
    Fixed {
        /// The service time.
        #[serde(with = "human")]
        value: Duration,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        /// Lower bound.
        #[serde(with = "human")]
        min: Duration,
        /// Upper bound.
        #[serde(with = "human")]
        max: Duration,
    },
    /// Normal, cut at zero (a draw below zero is zero).
    Normal {
        /// Mean.
        #[serde(with = "human")]
        mean: Duration,
        /// Standard deviation.
        #[serde(with = "human")]
        stddev: Duration,
    },
    /// Lognormal, given by its median and its 99th percentile: μ = ln(median),
    /// σ = ln(p99 / median) / Φ⁻¹(0.99).
    Lognormal {
        /// The median (50th percentile).
        #[serde(with = "human")]
        median: Duration,
        /// The 99th percentile; at least the median.
        #[serde(with = "human")]
        p99: Duration,
    },
    /// Pareto (type I): P(X > x) = (scale / x)^shape for x ≥ scale. Heavy-tailed; with
    /// shape ≤ 1 its mean is infinite (draws are cut at one hour).
    Pareto {
        /// The minimum value, x_m.
        #[serde(with = "human")]
        scale: Duration,
        /// The tail index α; smaller is heavier.
        shape: f64,
    },
    /// A weighted mixture: each draw picks a component with probability weight / Σweights.
    Mixture {
        /// The components.
        of: Vec<Component>,
    },
}

/// One component of a [`Latency::Mixture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Relative weight, above 0.
    pub weight: f64,
    /// The component's distribution (a duration string or a table).
    pub latency: Latency,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed {
            value: Duration::from_millis(1),
        }
    }
}

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The derived, tagged form (`remote = "Self"` makes it an inherent function).
        Latency::serialize(self, s)
    }
}

/// A duration string is a fixed latency; a table is deserialized in the derived, tagged form.
impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Latency;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a duration like \"2ms\", or a table like { dist = \"lognormal\", median = \"2ms\", p99 = \"20ms\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Latency, E> {
                crate::profile::duration::parse(v)
                    .map(|value| Latency::Fixed { value })
                    .map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Latency, A::Error> {
                Latency::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Latency {
    /// Checks the parameters; on error returns the offending field (relative to this
    /// distribution) and what was expected.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |field: &str, msg: String| Err((field.to_string(), msg));
        for (field, d) in self.durations() {
            if d > MAX_SAMPLE {
                return err(
                    field,
                    format!("at most {MAX_SAMPLE:?} (the longest service time), got {d:?}"),
                );
            }
        }
        match self {
            Latency::Fixed { .. } => Ok(()),
            Latency::Uniform { min, max } if max < min => err(
                "max",
                format!("must be at least min ({min:?}), got {max:?}"),
            ),
            Latency::Uniform { .. } | Latency::Normal { .. } => Ok(()),
            Latency::Lognormal { median, .. } if median.is_zero() => {
                err("median", "must be above 0".into())
            }
            Latency::Lognormal { median, p99 } if p99 < median => err(
                "p99",
                format!("must be at least the median ({median:?}), got {p99:?}"),
            ),
            Latency::Lognormal { .. } => Ok(()),
            Latency::Pareto { scale, .. } if scale.is_zero() => {
                err("scale", "must be above 0".into())
            }
            Latency::Pareto { shape, .. } if !(shape.is_finite() && *shape > 0.0) => {
                err("shape", format!("must be a number above 0, got {shape}"))
            }
            Latency::Pareto { .. } => Ok(()),
            Latency::Mixture { of } if of.is_empty() => {
                err("of", "a mixture needs at least one component".into())
            }
            Latency::Mixture { of } if !of.iter().map(|c| c.weight).sum::<f64>().is_finite() => {
                err("of", "the weights must add up to a finite number".into())
            }
            Latency::Mixture { of } => {
                for (i, c) in of.iter().enumerate() {
                    if !(c.weight.is_finite() && c.weight > 0.0) {
                        return err(
                            &format!("of[{i}].weight"),
                            format!("must be a number above 0, got {}", c.weight),
                        );
                    }
                    c.latency
                        .validate()
                        .map_err(|(f, m)| (format!("of[{i}].latency.{f}"), m))?;
                }
                Ok(())
            }
        }
    }

    /// The distribution's own duration parameters, by field name.
    fn durations(&self) -> Vec<(&'static str, Duration)> {
        match self {
            Latency::Fixed { value } => vec![("value", *value)],
            Latency::Uniform { min, max } => vec![("min", *min), ("max", *max)],
            Latency::Normal { mean, stddev } => vec![("mean", *mean), ("stddev", *stddev)],
            Latency::Lognormal { median, p99 } => vec![("median", *median), ("p99", *p99)],
            Latency::Pareto { scale, .. } => vec![("scale", *scale)],
            Latency::Mixture { .. } => vec![],
        }
    }

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
    fn validation_names_the_bad_field() {
        let bad = Latency::Mixture {
            of: vec![Component {
                weight: 1.0,
                latency: Latency::Lognormal {
                    median: ms(5),
                    p99: ms(1),
                },
            }],
        };
        assert_eq!(bad.validate().unwrap_err().0, "of[0].latency.p99");
        let zero = Latency::Mixture {
            of: vec![Component {
                weight: 0.0,
                latency: Latency::default(),
            }],
        };
        assert_eq!(zero.validate().unwrap_err().0, "of[0].weight");
        assert!(
            Latency::Pareto {
                scale: ms(1),
                shape: 0.0
            }
            .validate()
            .is_err()
        );
        assert!(
            Latency::Uniform {
                min: ms(2),
                max: ms(1)
            }
            .validate()
            .is_err()
        );
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
