//! Latency histograms: HdrHistogram in microseconds, 3 significant digits.
//!
//! Every figure in the results (p50 … p99.9, max, mean) is read off a histogram, and the full
//! histogram travels with the figures in HdrHistogram's V2 compressed form (deflate, then
//! base64), so a reader can compute any other percentile, or add two runs, without loss.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Significant decimal digits kept: values are exact to 0.1%.
pub const SIGFIG: u8 = 3;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl Hist {
    /// An empty histogram that grows to fit whatever it records.
    pub fn new() -> Self {
        Self(Histogram::new(SIGFIG).expect("3 significant digits is a valid precision"))
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        // `record` grows the histogram as needed; only a value beyond any range saturates.
        if self.0.record(us).is_err() {
            self.0.saturating_record(us);
        }
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The value at quantile `q` (0..=1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1e3
    }

    /// Adds every value of `other`.
    pub fn add(&mut self, other: &Hist) {
        self.0
            .add(&other.0)
            .expect("auto-resizing histograms always add");
    }

    /// The figures of this histogram; `None` when it is empty.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.0.is_empty() {
            return None;
        }
        Some(LatencySummary {
            count: self.0.len(),
            p50: self.quantile_ms(0.5),
            p90: self.quantile_ms(0.9),
            p99: self.quantile_ms(0.99),
            p999: self.quantile_ms(0.999),
            max: self.0.max() as f64 / 1e3,
            mean: self.0.mean() / 1e3,
        })
    }

    /// The V2-deflate encoding, as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut out)
            .expect("serializing into memory cannot fail");
        out
    }

    /// The V2-deflate encoding in base64: the form stored in `results.json`.
    pub fn encode(&self) -> String {
        BASE64.encode(self.to_bytes())
    }

    /// Reads a histogram from [`Hist::encode`]'s form.
    pub fn decode(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        Self::from_bytes(&bytes)
    }

    /// Reads a histogram from [`Hist::to_bytes`]'s form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| format!("not an HdrHistogram V2 encoding: {e:?}"))?;
        h.auto(true);
        Ok(Self(h))
    }

    /// The underlying HdrHistogram.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values the figures are computed from.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_a_tenth_of_a_percent() {
        let mut h = Hist::new();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary().unwrap();
        assert_eq!(s.count, 10_000);
        for (got, want) in [
            (s.p50, 5.0),
            (s.p90, 9.0),
            (s.p99, 9.9),
            (s.p999, 9.99),
            (s.max, 10.0),
        ] {
            assert!((got - want).abs() <= want * 0.001, "got {got}, want {want}");
        }
        assert!((s.mean - 5.0005).abs() < 0.01);
    }

    #[test]
    fn empty_histograms_have_no_figures() {
        assert!(Hist::new().summary().is_none());
    }

    #[test]
    fn encoding_round_trips_every_count() {
        let mut h = Hist::new();
        for us in [0u64, 1, 5, 900, 123_456, 3_600_000_000] {
            h.record(Duration::from_micros(us));
        }
        let back = Hist::decode(&h.encode()).unwrap();
        assert_eq!(back.inner(), h.inner());
        assert_eq!(back.count(), 6);
        assert!(Hist::decode("not base64!").is_err());
        assert!(Hist::decode("aGVsbG8=").is_err());
    }
}
