//! `.hlog` files: a strategy's per-second end-to-end histograms in the HdrHistogram interval
//! log format, so HdrHistogram's own tools (HistogramLogProcessor, HdrHistogram plotters) can
//! read them.
//!
//! Timestamps are seconds since the run's start (`BaseTime` = `StartTime` = the run's start);
//! values are microseconds, so the max column is divided by 1000 to read in milliseconds.

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::histogram::Hist;
use super::timeline::IntervalHist;

/// The interval log of `intervals`, for a run started at `start`.
pub fn write(intervals: &[IntervalHist], start: SystemTime, tag: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("resilbench end-to-end latency per second, microseconds")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0);
    let mut writer = builder
        .begin_log_with(&mut out, &mut serializer)
        .expect("writing to memory cannot fail");
    let tag_text = tag_for(tag);
    let tag = Tag::new(&tag_text);
    for interval in intervals {
        let Ok(hist) = Hist::from_bytes(&interval.bytes) else {
            continue;
        };
        writer
            .write_histogram(
                hist.inner(),
                Duration::from_secs(interval.t),
                Duration::from_secs(1),
                tag,
            )
            .expect("writing to memory cannot fail");
    }
    drop(writer);
    out
}

/// The interval histograms of an interval log written by [`write`], in order; an error says
/// where the log stops being one (a line that does not parse, a histogram that does not
/// decode: each is checked before it is decoded, `Hist::decode`).
pub fn read(bytes: &[u8]) -> Result<Vec<IntervalHist>, String> {
    use hdrhistogram::serialization::interval_log::{
        IntervalLogIterator, LogEntry, LogIteratorError,
    };
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry {
            Ok(LogEntry::Interval(h)) => {
                let t = h.start_timestamp().as_secs();
                let hist = Hist::decode(h.encoded_histogram())
                    .map_err(|e| format!("the histogram of second {t}: {e}"))?;
                out.push(IntervalHist {
                    t,
                    bytes: hist.to_bytes(),
                });
            }
            Ok(_) => {}
            Err(LogIteratorError::ParseError { offset }) => {
                return Err(format!("not an interval log from byte {offset} on"));
            }
        }
    }
    Ok(out)
}

/// The `.hlog` file name of each strategy, by name, in order: its tag, with `-2`, `-3`... for
/// names that make the same tag.
pub fn file_names<'a>(strategies: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut used = std::collections::HashSet::new();
    strategies
        .into_iter()
        .map(|s| {
            let base = tag_for(s);
            let mut name = format!("{base}.hlog");
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}.hlog");
                n += 1;
            }
            name
        })
        .collect()
}

/// A tag safe for the interval log (no commas, spaces or other separators).
pub fn tag_for(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "strategy".into() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn hdrhistogram_reads_the_log_back() {
        let mut h = Hist::new();
        h.record(Duration::from_millis(5));
        h.record(Duration::from_millis(7));
        let intervals = vec![
            IntervalHist {
                t: 3,
                bytes: h.to_bytes(),
            },
            IntervalHist {
                t: 4,
                bytes: Hist::new().to_bytes(),
            },
        ];
        let log = write(
            &intervals,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            "a b",
        );
        let text = String::from_utf8(log.clone()).unwrap();
        assert!(text.contains("#[StartTime: 1700000000"), "{text}");
        let histograms: Vec<_> = IntervalLogIterator::new(&log)
            .filter_map(|e| match e.unwrap() {
                LogEntry::Interval(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(histograms.len(), 2);
        assert_eq!(histograms[0].start_timestamp(), Duration::from_secs(3));
        assert_eq!(histograms[0].tag().unwrap().as_str(), "a_b");
        let back = Hist::decode(histograms[0].encoded_histogram()).unwrap();
        assert_eq!(back.count(), 2);
        assert!((histograms[0].max() - 7.0).abs() < 0.01);
    }
}
