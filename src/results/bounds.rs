//! How large a file a reader takes in: results files and `.hlog` interval logs are untrusted
//! input (another host's shard, a file from a ticket), and every reader (`report`, `compare`,
//! `check`, `merge`) holds the whole file in memory, so each is bounded before it is read.
//!
//! - A file is at most [`MAX_FILE`] bytes (checked from its size, and again while reading, in
//!   case it grows): a day-long run of a hundred strategies is far below it.
//! - A map keyed by status name (`status`, `attempts.status`, `attempts.retry_denied`,
//!   `fan_out.status`) has at most [`MAX_STATUS_KEYS`] keys (gRPC has 17 codes); attempts per
//!   call (`attempts.per_call`) at most [`MAX_PER_CALL_KEYS`]. Readers that go over such keys
//!   (the report's status table) then do a bounded amount of work.
//! - Each histogram's sizes are checked before it is decoded (`record::histogram`), and every
//!   histogram of a file is decoded once as it is read, so a file whose histograms cannot be
//!   read is refused there, naming the field, rather than drawn without them.

use std::io::Read;
use std::path::Path;

use super::Results;
use crate::record::histogram::Hist;

/// Largest results file or `.hlog` file read, in bytes (256 MiB).
pub const MAX_FILE: u64 = 256 << 20;

/// Most keys in a map keyed by status name.
pub const MAX_STATUS_KEYS: usize = 64;

/// Most keys in `attempts.per_call` (one per number of attempts a call made).
pub const MAX_PER_CALL_KEYS: usize = 4096;

/// The bytes of `path`, refused (as `InvalidData`, with the sizes) above [`MAX_FILE`].
pub fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let too_large = |n: u64| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{n} bytes or more; at most {MAX_FILE} are read"),
        )
    };
    if len > MAX_FILE {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
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
