//! How large a file a reader takes in: results files and `.hlog` interval logs are untrusted
//! input (another host's shard, a file from a ticket), and every reader (`report`, `compare`,
//! `check`, `merge`) holds the whole file in memory, so each is bounded before it is read.
//!
//! - A results file is at most [`MAX_RESULTS_FILE`] bytes and an `.hlog` file at most
//!   [`MAX_FILE`] (checked from the size, and again while reading, in case it grows).
//! - A results file holds at most [`MAX_VALUES`] JSON values and keys, counted in one pass over
//!   its bytes that builds nothing ([`count_values`]), before any of it is built in memory.
//!   Bytes alone do not bound memory: `[0,0,...]` costs 2 bytes a value in the file and 32 to
//!   64 in memory, so a 16 MiB file of zeros once took 1 GB. Counted, a file at the bounds is
//!   held in a few hundred MB (docs/reliability.md, 21.3, has the measurements).
//!
//!   What fits: a run's timeline has one row per second of the run (strategies run one after
//!   another, so a run of two days has about 173,000 rows, whatever its strategies), each row
//!   17 values and keys today; a two-day run is about 3 million of [`MAX_VALUES`] and 45 MB of
//!   [`MAX_RESULTS_FILE`].
//! - A map keyed by status name (`status`, `attempts.status`, `attempts.retry_denied`,
//!   `fan_out.status`) has at most [`MAX_STATUS_KEYS`] keys (gRPC has 17 codes); attempts per
//!   call (`attempts.per_call`) at most [`MAX_PER_CALL_KEYS`]. Readers that go over such keys
//!   (the report's status table) then do a bounded amount of work.
//! - Each histogram's sizes are checked before it is decoded (`record::histogram`), and every
//!   histogram of a file is decoded once as it is read, so a file whose histograms cannot be
//!   read is refused there, naming the field, rather than drawn without them.

use std::io::Read;
use std::path::Path;

use serde::Deserializer;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::Results;
use crate::record::histogram::Hist;

/// Largest `.hlog` file read, in bytes (256 MiB: a second's histogram is one line, up to a few
/// KB for a wide one).
pub const MAX_FILE: u64 = 256 << 20;

/// Largest results file read, in bytes (64 MiB).
pub const MAX_RESULTS_FILE: u64 = 64 << 20;

/// Most JSON values and object keys in a results file (4 million).
pub const MAX_VALUES: u64 = 4_000_000;

/// Most keys in a map keyed by status name.
pub const MAX_STATUS_KEYS: usize = 64;

/// Most keys in `attempts.per_call` (one per number of attempts a call made).
pub const MAX_PER_CALL_KEYS: usize = 4096;

/// The bytes of `path`, refused (as `InvalidData`, with the sizes) above [`MAX_FILE`].
pub fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    read_at_most(path, MAX_FILE)
}

/// The bytes of `path`, refused (as `InvalidData`, with the sizes) above `max` bytes.
pub fn read_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let too_large = |n: u64| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{n} bytes or more; at most {max} are read"),
        )
    };
    if len > max {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Counts the values and object keys of the JSON text `bytes`, building none of them (strings
/// are borrowed or decoded into one reused buffer), and stops at the first one past `max`.
/// Errors are serde_json's (with line and column) or the bound's.
pub fn count_values(bytes: &[u8], max: u64) -> Result<u64, String> {
    let mut counter = Counter { seen: 0, max };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Count(&mut counter)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())?;
    Ok(counter.seen)
}

struct Counter {
    seen: u64,
    max: u64,
}

/// One JSON value (or key) to count, and the ones inside it.
struct Count<'a>(&'a mut Counter);

impl Count<'_> {
    fn one<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.0.seen += 1;
        if self.0.seen > self.0.max {
            return Err(E::custom(format!(
                "more than {} JSON values and keys, the most a results file may hold (about \
                 two days of a run's timeline)",
                self.0.max
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(mut self, _: bool) -> Result<(), E> {
        self.one()
    }

    fn visit_i64<E: serde::de::Error>(mut self, _: i64) -> Result<(), E> {
        self.one()
    }

    fn visit_u64<E: serde::de::Error>(mut self, _: u64) -> Result<(), E> {
        self.one()
    }

    fn visit_f64<E: serde::de::Error>(mut self, _: f64) -> Result<(), E> {
        self.one()
    }

    fn visit_str<E: serde::de::Error>(mut self, _: &str) -> Result<(), E> {
        self.one()
    }

    fn visit_unit<E: serde::de::Error>(mut self) -> Result<(), E> {
        self.one()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.one()?;
        while seq.next_element_seed(Count(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.one()?;
        while map.next_key_seed(Count(self.0))?.is_some() {
            map.next_value_seed(Count(self.0))?;
        }
        Ok(())
    }
}

/// Checks the maps of every strategy against their bounds, and that every histogram decodes;
/// the error names the field.
pub fn check(results: &Results) -> Result<(), String> {
    for (i, s) in results.strategies.iter().enumerate() {
        let h = &s.histograms;
        let histograms = [
            ("e2e", Some(&h.e2e)),
            ("e2e_ok", Some(&h.e2e_ok)),
            ("attempt", Some(&h.attempt)),
            ("lag", Some(&h.lag)),
            ("interval_error", h.interval_error.as_ref()),
            ("sub_call", h.sub_call.as_ref()),
        ];
        for (field, text) in histograms {
            if let Some(text) = text {
                Hist::decode(text)
                    .map_err(|e| format!("field `strategies[{i}].histograms.{field}`: {e}"))?;
            }
        }
        let status_maps = [
            ("status", s.status.len()),
            ("attempts.status", s.attempts.status.len()),
            ("attempts.retry_denied", s.attempts.retry_denied.len()),
            (
                "fan_out.status",
                s.fan_out.as_ref().map_or(0, |f| f.status.len()),
            ),
        ];
        for (field, n) in status_maps {
            if n > MAX_STATUS_KEYS {
                return Err(format!(
                    "field `strategies[{i}].{field}`: {n} keys; at most {MAX_STATUS_KEYS} \
                     (one per status name) are accepted"
                ));
            }
        }
        let n = s.attempts.per_call.len();
        if n > MAX_PER_CALL_KEYS {
            return Err(format!(
                "field `strategies[{i}].attempts.per_call`: {n} keys; at most \
                 {MAX_PER_CALL_KEYS} are accepted"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value and every key is one, whatever its kind or size.
    #[test]
    fn values_and_keys_are_counted_one_each() {
        let text = br#"{"a": [1, -2, 3.5, "x\ny", true, null], "b": {}, "c": {"d": []}}"#;
        // The object, a, the array and its 6, b and its object, c, its object, d, its array.
        assert_eq!(count_values(text, 100), Ok(1 + 1 + 1 + 6 + 2 + 2 + 2));
        assert_eq!(count_values(b"0", 1), Ok(1));
    }

    /// Past the bound the count stops there, with the bound in the error; bad JSON and
    /// trailing text are serde_json's errors, with the place.
    #[test]
    fn the_count_stops_past_the_bound_and_refuses_what_is_not_json() {
        let e = count_values(b"[0,0,0]", 3).unwrap_err();
        assert!(e.starts_with("more than 3 JSON values and keys"), "{e}");
        assert!(e.ends_with("at line 1 column 6"), "{e}");
        assert_eq!(count_values(b"[0,0,0]", 4), Ok(4));
        assert!(count_values(b"[0,", 10).unwrap_err().contains("EOF"));
        assert!(count_values(b"{} x", 10).unwrap_err().contains("trailing"));
        // Depth is serde_json's recursion limit, before any counting matters.
        let deep = "[".repeat(10_000);
        assert!(
            count_values(deep.as_bytes(), u64::MAX)
                .unwrap_err()
                .contains("recursion limit")
        );
    }
}
