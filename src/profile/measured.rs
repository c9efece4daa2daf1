//! From measurement to model: a service time drawn from a recorded HdrHistogram
//! (`{ dist = "measured", from = "runs/x/results.json", strategy = "baseline", histogram =
//! "attempt" }`, or an `.hlog` interval log), and an error mix taken from the same run's
//! statuses (`[backend] errors_from`, in [`super::recorded_run`]).
//!
//! Why: a run against the user's own service measures it once; the embedded backend can then
//! replay that service, with outages, brownouts and retry storms added, in virtual time, a
//! million calls in seconds. Drawing from the recorded histogram (rather than fitting a
//! lognormal to it) keeps its shape: its modes, its tail, its steps.
//!
//! How a draw is made: the histogram's recorded buckets in order, each with its count; a
//! first keyed uniform picks a bucket with probability count ÷ total, a second a value
//! uniformly between the bucket's lowest and highest equivalent values (HdrHistogram's 3
//! significant digits: values within 0.1%). So the draws' distribution is the recorded one to
//! the histogram's own precision, and a draw depends only on the backend's keyed stream: exact
//! and reproducible in virtual time.
//!
//! The file's path is relative to the profile's folder; a results file or an `.hlog` of more
//! than [`MAX_FILE`] bytes is refused from its size ([`super::recorded_run`] reads them), and
//! each histogram's encoding is checked before it is decoded ([`crate::hdr`]). What was read
//! is kept in the plan (`recorded`, the histogram in the results file's own encoding), so a
//! run's results.json holds the model it ran, whatever happens to the file later.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::recorded_run::{cut_short, read_bounded, read_results, strategy_of};
use crate::hdr::Hist;

pub use super::recorded_run::MAX_FILE;

/// Which of a strategy's recorded histograms a measured latency samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recorded {
    /// Every attempt, from its send to its end, successes and failures (`histograms.attempt`).
    #[default]
    Attempt,
    /// Every call, from its intended start (`histograms.e2e`).
    E2e,
    /// Successful calls (`histograms.e2e_ok`).
    E2eOk,
}

impl Recorded {
    /// Its key under a strategy's `histograms`.
    pub fn key(self) -> &'static str {
        match self {
            Recorded::Attempt => "attempt",
            Recorded::E2e => "e2e",
            Recorded::E2eOk => "e2e_ok",
        }
    }
}

/// The unit of an `.hlog`'s values (resilbench writes microseconds; other tools nanoseconds or
/// milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Nanoseconds.
    Ns,
    /// Microseconds.
    #[default]
    Us,
    /// Milliseconds.
    Ms,
}

/// `dist = "measured"`: a service time drawn from a recorded histogram.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measured {
    /// The results file (`results.json`, or a run folder holding one) or `.hlog` file, relative
    /// to the profile's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The strategy whose histogram is read (a results file with one strategy needs none; an
    /// `.hlog` of several tags, its tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Which histogram of a results file: `attempt` (default), `e2e` or `e2e_ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Recorded>,
    /// An `.hlog`'s value unit: `us` (default, resilbench's), `ns` or `ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// The histogram read, in microseconds, HdrHistogram V2-deflate in base64 (as results.json
    /// holds its histograms): filled in when the profile is read, so the resolved plan carries
    /// its model; a profile may give it instead of `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    /// The buckets to draw from, built from `recorded` at the first draw.
    #[serde(skip)]
    table: Arc<OnceLock<Table>>,
}

impl PartialEq for Measured {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.from,
            &self.strategy,
            self.histogram,
            self.unit,
            &self.recorded,
        ) == (
            &other.from,
            &other.strategy,
            other.histogram,
            other.unit,
            &other.recorded,
        )
    }
}

impl std::fmt::Debug for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measured")
            .field("from", &self.from)
            .field("strategy", &self.strategy)
            .field("histogram", &self.histogram)
            .field("unit", &self.unit)
            .field("recorded", &self.recorded.as_ref().map(String::len))
            .finish_non_exhaustive()
    }
}

/// A histogram's recorded buckets, as cumulative counts.
#[derive(Debug, Default)]
struct Table {
    /// (count of this bucket and all before it, lowest, highest equivalent value in µs).
    buckets: Vec<(u64, u64, u64)>,
}

impl Table {
    fn of(h: &Hist) -> Self {
        let inner = h.inner();
        let mut total = 0u64;
        let buckets = inner
            .iter_recorded()
            .map(|v| {
                total += v.count_at_value();
                let high = v.value_iterated_to();
                (total, inner.lowest_equivalent(high), high)
            })
            .collect();
        Self { buckets }
    }

    fn sample(&self, u1: f64, u2: f64) -> Duration {
        let Some(&(total, ..)) = self.buckets.last() else {
            return Duration::ZERO;
        };
        let target = ((u1 * total as f64) as u64).min(total - 1);
        let i = self.buckets.partition_point(|b| b.0 <= target);
        let (_, low, high) = self.buckets[i.min(self.buckets.len() - 1)];
        Duration::from_micros(low + ((high - low) as f64 * u2) as u64)
    }
}

impl Measured {
    /// A service time from two uniform draws in (0, 1): the first picks a recorded bucket by
    /// its count, the second a value within it.
    pub fn sample(&self, u1: f64, u2: f64) -> Duration {
        self.table
            .get_or_init(|| {
                self.recorded
                    .as_deref()
                    .and_then(|r| Hist::decode(r).ok())
                    .map(|h| Table::of(&h))
                    .unwrap_or_default()
            })
            .sample(u1, u2)
    }

    /// Values the model was read from (0 when it has not been read).
    pub fn count(&self) -> u64 {
        self.recorded
            .as_deref()
            .and_then(|r| Hist::decode(r).ok())
            .map_or(0, |h| h.count())
    }

    /// Reads the histogram `from` names (relative to `base`) into `recorded`; on error, the
    /// field (relative to this distribution) and what is wrong. A strategy marked partial is
    /// read, and said in `caveats`.
    pub fn resolve(
        &mut self,
        base: &Path,
        caveats: &mut Vec<String>,
    ) -> Result<(), (String, String)> {
        let Some(from) = self.from.clone() else {
            return match &self.recorded {
                Some(r) => Hist::decode(r)
                    .map(|_| ())
                    .map_err(|e| ("recorded".into(), e)),
                None => Err((
                    "from".into(),
                    "a measured latency needs `from`: a results.json (or run folder) or an \
                     .hlog file, relative to the profile"
                        .into(),
                )),
            };
        };
        let path = base.join(&from);
        let field = |f: &str| f.to_string();
        let hist = if from.ends_with(".hlog") {
            if self.histogram.is_some() {
                return Err((
                    field("histogram"),
                    "an .hlog holds one histogram per second of end-to-end latency: leave \
                     `histogram` out"
                        .into(),
                ));
            }
            hlog(
                &path,
                self.strategy.as_deref(),
                self.unit.unwrap_or_default(),
            )
            .map_err(|e| (field("from"), e))?
        } else {
            if self.unit.is_some() {
                return Err((
                    field("unit"),
                    "a results file's histograms are in microseconds: `unit` is for .hlog \
                     files"
                        .into(),
                ));
            }
            let results = read_results(&path).map_err(|e| (field("from"), e))?;
            let s = strategy_of(&results, self.strategy.as_deref(), &path)
                .map_err(|e| (field("strategy"), e))?;
            let key = self.histogram.unwrap_or_default().key();
            caveats.extend(cut_short(s, &path, &format!("its `{key}` histogram holds")));
            let text = s
                .get("histograms")
                .and_then(|h| h.get(key))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    (
                        field("histogram"),
                        format!("{} has no `{key}` histogram", path.display()),
                    )
                })?;
            Hist::decode(text).map_err(|e| {
                (
                    field("from"),
                    format!("{}: histograms.{key}: {e}", path.display()),
                )
            })?
        };
        if hist.count() == 0 {
            return Err((
                field("from"),
                format!(
                    "{}: the histogram is empty: nothing to draw from",
                    path.display()
                ),
            ));
        }
        self.recorded = Some(hist.encode());
        Ok(())
    }
}

/// Every interval of an `.hlog` (those tagged `tag`, when given) added up, in microseconds.
fn hlog(path: &Path, tag: Option<&str>, unit: Unit) -> Result<Hist, String> {
    use hdrhistogram::serialization::interval_log::{
        IntervalLogIterator, LogEntry, LogIteratorError,
    };
    let bytes = read_bounded(path)?;
    let mut sum = Hist::new();
    let mut tags = std::collections::BTreeSet::new();
    for entry in IntervalLogIterator::new(&bytes) {
        match entry {
            Ok(LogEntry::Interval(h)) => {
                let this = h.tag().map(|t| t.as_str().to_string());
                if let Some(t) = &this {
                    tags.insert(t.clone());
                }
                if tag.is_some_and(|want| this.as_deref() != Some(want)) {
                    continue;
                }
                let second = Hist::decode(h.encoded_histogram()).map_err(|e| {
                    format!(
                        "{}: the interval at {:?}: {e}",
                        path.display(),
                        h.start_timestamp()
                    )
                })?;
                add_scaled(&mut sum, &second, unit);
            }
            Ok(_) => {}
            Err(LogIteratorError::ParseError { offset }) => {
                return Err(format!(
                    "{} is not an HdrHistogram interval log from byte {offset} on",
                    path.display()
                ));
            }
        }
    }
    if let (Some(want), 0) = (tag, sum.count()) {
        return Err(format!(
            "{} has no interval tagged `{want}`; its tags are {}",
            path.display(),
            if tags.is_empty() {
                "none".to_string()
            } else {
                tags.into_iter().collect::<Vec<_>>().join(", ")
            }
        ));
    }
    Ok(sum)
}

/// Adds `from`'s values to `into`, converted from `unit` to microseconds.
fn add_scaled(into: &mut Hist, from: &Hist, unit: Unit) {
    if unit == Unit::Us {
        into.add(from);
        return;
    }
    for v in from.inner().iter_recorded() {
        let value = v.value_iterated_to();
        let us = match unit {
            Unit::Ns => Duration::from_nanos(value),
            Unit::Ms => Duration::from_millis(value),
            Unit::Us => Duration::from_micros(value),
        };
        into.record_n(us, v.count_at_value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws follow the recorded histogram to its own precision: each quantile of 100,000
    /// draws is within 0.2% (plus the draws' own noise) of the histogram's.
    #[test]
    fn draws_follow_the_recorded_histogram() {
        let mut h = Hist::new();
        // Two modes and a tail: 2 ms (70%), 8 ms (25%), 200 ms (5%).
        for (ms, n) in [(2u64, 7_000u64), (8, 2_500), (200, 500)] {
            for i in 0..n {
                h.record(Duration::from_micros(ms * 1000 + i % 97));
            }
        }
        let m = Measured {
            recorded: Some(h.encode()),
            ..Measured::default()
        };
        let mut draws: Vec<u64> = (0..100_000u64)
            .map(|i| {
                let mut s = crate::keyed::KeyedStream::new(3, i, 0, crate::keyed::Purpose::Latency);
                m.sample(s.open01(), s.open01()).as_micros() as u64
            })
            .collect();
        draws.sort_unstable();
        for q in [0.1, 0.5, 0.69, 0.8, 0.96, 0.999] {
            let got = draws[(q * draws.len() as f64) as usize] as f64;
            let want = h.quantile_ms(q) * 1000.0;
            assert!(
                (got - want).abs() <= want * 0.01 + 10.0,
                "q{q}: {got} vs {want}"
            );
        }
        assert_eq!(m.count(), 10_000);
    }

    #[test]
    fn an_empty_table_draws_zero() {
        assert_eq!(Table::default().sample(0.5, 0.5), Duration::ZERO);
    }
}
