//! Service-time distributions as a profile writes them, and their checks.
//!
//! Real service times are rarely normal: most are lognormal-ish with a long tail, some have a
//! power-law tail (Pareto), and the tail that hedging and retries fight is often a *mixture*
//! ("99% at 2 ms, 1% at 200 ms": one slow replica, a GC pause, a cold cache). Each shape here is
//! written the way people describe it: a lognormal by its median and p99, not by μ and σ.
//! Drawing from them is the backend's (`crate::backend::latency`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::human;
pub use super::measured::Measured;

/// The longest service time a distribution will return; longer draws are cut to this.
pub const MAX_SAMPLE: Duration = Duration::from_secs(3600);

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
    /// Drawn from a recorded HdrHistogram: a strategy's histogram in a results file, or an
    /// `.hlog` ([`Measured`]).
    Measured(Measured),
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
            Latency::Measured(m) if m.recorded.is_none() => {
                err("from", "the recorded histogram was not read".into())
            }
            Latency::Measured(_) => Ok(()),
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
    pub(crate) fn durations(&self) -> Vec<(&'static str, Duration)> {
        match self {
            Latency::Fixed { value } => vec![("value", *value)],
            Latency::Uniform { min, max } => vec![("min", *min), ("max", *max)],
            Latency::Normal { mean, stddev } => vec![("mean", *mean), ("stddev", *stddev)],
            Latency::Lognormal { median, p99 } => vec![("median", *median), ("p99", *p99)],
            Latency::Pareto { scale, .. } => vec![("scale", *scale)],
            Latency::Mixture { .. } | Latency::Measured(_) => vec![],
        }
    }

    /// Reads every measured distribution's histogram (this one, or a mixture's), paths
    /// relative to `base`; on error, the field (relative to this distribution) and why. What
    /// a reader must know of a source (a partial strategy) goes to `caveats`.
    pub fn read_measured(
        &mut self,
        base: &std::path::Path,
        caveats: &mut Vec<String>,
    ) -> Result<(), (String, String)> {
        match self {
            Latency::Measured(m) => m.resolve(base, caveats),
            Latency::Mixture { of } => {
                for (i, c) in of.iter_mut().enumerate() {
                    c.latency
                        .read_measured(base, caveats)
                        .map_err(|(f, m)| (format!("of[{i}].latency.{f}"), m))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
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
}
