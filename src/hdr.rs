//! Latency histograms: HdrHistogram in microseconds, 3 significant digits.
//!
//! Vocabulary, below the recorder that fills them and the profile that can read one back
//! (`dist = "measured"`): a results file's histograms are a format, like the wire's.
//!
//! Every figure in the results (p50 … p99.9, max, mean) is read off a histogram, and the full
//! histogram travels with the figures in HdrHistogram's V2 compressed form (deflate, then
//! base64), so a reader can compute any other percentile, or add two runs, without loss.
//!
//! An encoding read back comes from a file, so it is untrusted: its header states the sizes
//! the decoder would allocate (a V2 header can claim a 4 GiB payload in 52 characters of
//! base64), so every size is checked against what a histogram of this precision can need
//! before anything is decoded ([`check_encoding`]): the base64 text at most [`MAX_TEXT`]
//! bytes, the compressed payload no longer than the bytes that carry it, the inflated payload
//! at most [`MAX_V2`] bytes (inflated with a cap, so a deflate bomb stops there), and at most
//! [`SIGFIG`] significant digits, which bounds the counts array over the whole `u64` range
//! to [`MAX_COUNTS`] entries. Decoding a histogram therefore needs at most about a megabyte,
//! whatever the file says.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use std::io::Read;

/// Significant decimal digits kept: values are exact to 0.1%.
pub const SIGFIG: u8 = 3;

/// The most counts a histogram of [`SIGFIG`] digits holds, over the whole `u64` range from 1
/// (hdrhistogram's layout: 55 buckets of 1,024 sub-buckets).
pub const MAX_COUNTS: usize = 56_320;

/// The longest V2 encoding (uncompressed) of such a histogram: a 40-byte header and at most
/// 9 bytes per count (LEB128-64b9B, HdrHistogram's V2 format).
pub const MAX_V2: usize = 40 + MAX_COUNTS * 9;

/// The longest base64 text accepted for one histogram: its deflated form is never longer
/// than [`MAX_V2`] plus deflate's few bytes per block, and base64 adds a third.
pub const MAX_TEXT: usize = 1 << 20;

/// The cookie of an uncompressed V2 encoding (HdrHistogram's `V2EncodingCookieBase | 0x10`).
const V2_COOKIE: u32 = 0x1c84_9313;
/// The cookie of a V2 encoding compressed with zlib.
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

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

    /// Records one duration `n` times.
    pub fn record_n(&mut self, d: Duration, n: u64) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if self.0.record_n(us, n).is_err() {
            self.0.saturating_record_n(us, n);
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

    /// Reads a histogram from [`Hist::encode`]'s form (sizes checked first: [`MAX_TEXT`]).
    pub fn decode(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(format!(
                "an encoded histogram of {} bytes; at most {MAX_TEXT} are accepted",
                text.len()
            ));
        }
        let bytes = BASE64
            .decode(text)
            .map_err(|e| format!("not base64: {e}"))?;
        Self::from_bytes(&bytes)
    }

    /// Reads a histogram from [`Hist::to_bytes`]'s form, or HdrHistogram's uncompressed V2,
    /// once [`check_encoding`] has found its sizes within bounds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let v2 = check_encoding(bytes)?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &v2[..])
            .map_err(|e| format!("not an HdrHistogram V2 encoding: {e}"))?;
        h.auto(true);
        Ok(Self(h))
    }

    /// The underlying HdrHistogram.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }
}

/// The uncompressed V2 encoding inside `bytes` (inflated if compressed), once every size its
/// headers state is found within bounds: the compressed length no more than the bytes there
/// are, the inflated encoding at most [`MAX_V2`] bytes (inflation stops there), the payload no
/// longer than what follows its header, and at most [`SIGFIG`] significant digits (so that
/// the counts array is at most [`MAX_COUNTS`] long). Nothing larger than [`MAX_V2`] is
/// allocated, whatever the headers say.
pub fn check_encoding(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match word(0) {
        Some(V2_COMPRESSED_COOKIE) => {
            let stated = word(4).ok_or("a compressed histogram cut short in its header")? as usize;
            let carried = bytes.len() - 8;
            if stated > carried {
                return Err(format!(
                    "a compressed histogram claims {stated} bytes of payload and has {carried}"
                ));
            }
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(&bytes[8..8 + stated])
                .take(MAX_V2 as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|e| format!("a compressed histogram does not inflate: {e}"))?;
            if inflated.len() > MAX_V2 {
                return Err(format!(
                    "a compressed histogram inflates to more than {MAX_V2} bytes"
                ));
            }
            check_v2(&inflated)?;
            Ok(std::borrow::Cow::Owned(inflated))
        }
        Some(V2_COOKIE) => {
            check_v2(bytes)?;
            Ok(std::borrow::Cow::Borrowed(bytes))
        }
        Some(other) => Err(format!(
            "not an HdrHistogram V2 encoding (cookie {other:#010x})"
        )),
        None => Err("not an HdrHistogram V2 encoding (fewer than 4 bytes)".into()),
    }
}

/// Checks an uncompressed V2 header: cookie, payload length, offset, digits, lowest, highest,
/// ratio (40 bytes), then the payload.
fn check_v2(v2: &[u8]) -> Result<(), String> {
    if v2.len() < 40 || v2.len() > MAX_V2 {
        return Err(format!(
            "an HdrHistogram V2 encoding of {} bytes; expected 40 to {MAX_V2}",
            v2.len()
        ));
    }
    let word = |at: usize| u32::from_be_bytes([v2[at], v2[at + 1], v2[at + 2], v2[at + 3]]);
    let (stated, digits) = (word(4) as usize, word(12));
    if stated > v2.len() - 40 {
        return Err(format!(
            "a histogram claims {stated} bytes of counts and has {}",
            v2.len() - 40
        ));
    }
    if digits > u32::from(SIGFIG) {
        return Err(format!(
            "a histogram of {digits} significant digits; at most {SIGFIG} are accepted"
        ));
    }
    Ok(())
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

    /// A V2 header (uncompressed) with the given sizes, and `payload` after it.
    fn v2(stated: u32, digits: u32, low: u64, high: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&V2_COOKIE.to_be_bytes());
        out.extend_from_slice(&stated.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&digits.to_be_bytes());
        out.extend_from_slice(&low.to_be_bytes());
        out.extend_from_slice(&high.to_be_bytes());
        out.extend_from_slice(&1.0f64.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// `inner` deflated with zlib behind the compressed cookie, its length stated as `stated`.
    fn compressed(inner: &[u8], stated: Option<u32>) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(inner).unwrap();
        let body = z.finish().unwrap();
        let mut out = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        out.extend_from_slice(&stated.unwrap_or(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// The counts array bound is hdrhistogram's own for 3 digits over the whole range.
    #[test]
    fn the_counts_bound_is_the_widest_histogram_of_three_digits() {
        let widest = Histogram::<u64>::new_with_bounds(1, u64::MAX, SIGFIG).unwrap();
        assert_eq!(widest.distinct_values(), MAX_COUNTS);
        // The widest histogram a run can write, every count at its largest, fits the bounds.
        let mut h = Hist::new();
        for shift in 0..64 {
            h.0.saturating_record(1u64 << shift);
        }
        let text = h.encode();
        assert!(text.len() < MAX_TEXT);
        assert_eq!(Hist::decode(&text).unwrap().count(), 64);
    }

    /// A header claiming a 4 GiB payload (52 bytes of base64 in a results file made the
    /// readers allocate it) is refused from its sizes, before anything is decoded; so is a
    /// compressed one claiming more bytes than it carries, a deflate bomb, and precision that
    /// would make the counts array huge.
    #[test]
    fn headers_claiming_more_than_they_carry_are_refused_before_decoding() {
        let huge = BASE64.encode(v2(u32::MAX, 3, 1, 2, &[]));
        let e = Hist::decode(&huge).unwrap_err();
        assert!(
            e.contains("claims 4294967295 bytes of counts and has 0"),
            "{e}"
        );
        let e = Hist::from_bytes(&compressed(&v2(0, 3, 1, 2, &[]), Some(u32::MAX))).unwrap_err();
        assert!(e.contains("claims 4294967295 bytes of payload"), "{e}");
        let e = Hist::from_bytes(&v2(0, 5, 1, u64::MAX, &[])).unwrap_err();
        assert!(e.contains("5 significant digits"), "{e}");
        // 16 MiB of zeros inflate from a few kilobytes; inflation stops at the bound.
        let bomb = compressed(&v2(16 << 20, 3, 1, 2, &vec![0u8; 16 << 20]), None);
        assert!(bomb.len() < 64 << 10);
        let e = Hist::from_bytes(&bomb).unwrap_err();
        assert!(e.contains(&format!("more than {MAX_V2} bytes")), "{e}");
        let e = Hist::decode(&"A".repeat(MAX_TEXT + 4)).unwrap_err();
        assert!(e.contains("at most 1048576"), "{e}");
        // Still decoded: a well-formed encoding, compressed or not.
        let mut h = Hist::new();
        h.record(Duration::from_millis(3));
        let plain = check_encoding(&h.to_bytes()).unwrap().into_owned();
        assert_eq!(Hist::from_bytes(&plain).unwrap().count(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Any header and any bytes after it, compressed or not: refused, or decoded within
        /// the bounds. Counted, not timed: what the decoder holds is the checked encoding (at
        /// most MAX_V2 bytes) and the counts array (at most MAX_COUNTS entries).
        #[test]
        fn hostile_encodings_are_refused_or_decoded_within_bounds(
            stated in proptest::prelude::any::<u32>(),
            digits in 0u32..8,
            low in proptest::prelude::any::<u64>(),
            high in proptest::prelude::any::<u64>(),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            wrap in 0u8..3,
            claimed in proptest::prelude::any::<u32>(),
        ) {
            let inner = v2(stated, digits, low, high, &payload);
            let bytes = match wrap {
                0 => inner,
                1 => compressed(&inner, None),
                _ => compressed(&inner, Some(claimed)),
            };
            if let Ok(checked) = check_encoding(&bytes) {
                proptest::prop_assert!(checked.len() <= MAX_V2);
            }
            if let Ok(h) = Hist::from_bytes(&bytes) {
                proptest::prop_assert!(h.inner().distinct_values() <= MAX_COUNTS);
            }
        }
    }
}
