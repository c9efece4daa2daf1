//! Integration tests, compiled into one binary (as ripgrep does) and grouped by topic.
//!
//! - `profile_errors`: bad profiles are refused with file, line, field and exit status 2.
//! - `open_loop`: the driver's schedule, in virtual time: coordinated omission, drops, warmup.
//! - `results_file`: results.json round-trips, histograms decode, interrupted runs are partial.
//! - `virtual_runs`: whole runs on a paused clock are exact and reproducible.
//! - `end_to_end`: real runs over loopback TCP, embedded and against `serve` in another process.

mod backend;
mod common;
mod end_to_end;
mod open_loop;
mod profile_errors;
mod results_file;
mod virtual_runs;
