//! The results file, `results.json`: the contract that reports, comparisons and CI gates read.
//!
//! Schema `resilbench.results/v1`. Key names are fixed; new keys may be added, none renamed or
//! removed without a new version. Latencies are in milliseconds, rates in calls per second.
//! Every file is written atomically (a temporary file in the same folder, synced, then renamed),
//! so a reader sees the previous complete file or the new one, never half of one.

pub mod bounds;
pub mod figures;
pub mod trust;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendStats;
use crate::profile::Plan;
use crate::record::histogram::LatencySummary;
use crate::record::timeline::{IntervalHist, TimelineRow};

/// The schema name and version this build writes and reads.
pub const SCHEMA: &str = "resilbench.results/v1";

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The resolved plan the run followed, as JSON in the shape of a profile. Kept untyped so
    /// that a reader accepts the v1 files of newer builds, whose plans may name settings (a new
    /// layer kind, a new distribution) it does not know; [`Results::plan`] types it.
    pub profile: serde_json::Value,
    /// Where and how the run happened.
    pub environment: Environment,
    /// True when the run was interrupted: figures cover only what was measured.
    pub partial: bool,
    /// Why a partial run stopped early (absent for a complete run, and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<trust::Stopped>,
    /// The load generator's own figures, over all strategies.
    pub generator: Generator,
    /// Reasons not to trust the figures fully (generator lag, rate short, partial run).
    pub warnings: Vec<String>,
    /// One entry per strategy, in profile order.
    pub strategies: Vec<StrategyResult>,
    /// Which shard of a sharded run this is (`run --shard K/N`); absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The shard files a merged file was made from (`resilbench merge`), in shard order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedShard>,
}

/// The K-th of N shards: call i of the schedule belongs to shard i mod N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// K, from 0.
    pub index: u32,
    /// N.
    pub count: u32,
}

impl Shard {
    /// Whether call `id` of the schedule is this shard's.
    pub fn owns(self, id: u64) -> bool {
        id % u64::from(self.count) == u64::from(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N`, K from 0 to N − 1.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("expected K/N with 0 <= K < N <= 10000 (like 0/3), got `{text}`");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || count > 10_000 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// One shard file of a merged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShard {
    /// The shard.
    pub shard: Shard,
    /// The file as given to `merge`.
    pub file: String,
    /// The host that ran it.
    pub host: String,
    /// When it started, RFC 3339 UTC.
    pub start_time: String,
}

/// Where and how a run happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// `resilbench` and its version.
    pub tool: String,
    /// Host name.
    pub host: String,
    /// Operating system and architecture.
    pub os: String,
    /// CPU cores available to the process.
    pub cores: usize,
    /// `real` or `virtual`.
    pub clock: String,
    /// How attempts travelled: `grpc` (HTTP/2 over TCP) or `direct` (in process).
    pub transport: String,
    /// `embedded` or the target's address.
    pub target: String,
    /// When the run started, RFC 3339 UTC.
    pub start_time: String,
    /// How precisely this machine woke the client's thread, calibrated before a real run
    /// (absent on a virtual clock, and from files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<TimerFloor>,
}

/// How precisely the machine wakes a sleeping thread (`clock::calibrate`), and what the
/// driver adds to it: the lag a generator that keeps up still shows on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimerFloor {
    /// How late the calibration's wake-ups were after their deadlines, ms.
    pub wake_overshoot_ms: Lag,
    /// Wake-ups measured.
    pub samples: u64,
    /// How long the calibration slept, seconds.
    pub calibrated_s: f64,
    /// The driver's wake quantum, ms: calls falling due within it leave together, by design up
    /// to this much late.
    pub wake_quantum_ms: f64,
}

impl TimerFloor {
    /// The lag p99 a generator that keeps its schedule shows on this machine: its wake-ups'
    /// p99 lateness plus the quantum.
    pub fn lag_floor_ms(&self) -> f64 {
        self.wake_overshoot_ms.p99 + self.wake_quantum_ms
    }
}

/// The load generator's own figures: can the measurement be trusted?
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    /// How late calls were sent after their intended start, ms.
    pub lag_ms: Lag,
    /// Inter-send interval error, ms: how far the gap between two consecutive sends was from
    /// the gap between their intended starts. Absent from files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_error_ms: Option<Lag>,
    /// Calls offered per second of the measured window.
    pub offered_rate: f64,
    /// Calls actually sent per second (drops and lateness make it fall short of offered).
    pub achieved_rate: f64,
}

/// Generator lag in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// One strategy's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyResult {
    /// The strategy's name.
    pub name: String,
    /// True when this strategy's run was cut short.
    pub partial: bool,
    /// When the schedule started (timeline second 0), in ms: Unix time on a real clock; time
    /// since the run's start on a virtual clock (so virtual runs are reproducible to the byte).
    pub start_ms: u64,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// What happened to the calls.
    pub counts: Counts,
    /// Final status of each call, by canonical status name (`OK`, `UNAVAILABLE`, ...).
    pub status: BTreeMap<String, u64>,
    /// What the strategy sent.
    pub attempts: Attempts,
    /// How much load the strategy added.
    pub amplification: Amplification,
    /// Latency figures.
    pub latency_ms: Latencies,
    /// Calls that succeeded within their deadline.
    pub goodput: Goodput,
    /// The generator's figures during this strategy.
    pub generator: Generator,
    /// Full histograms, HdrHistogram V2-deflate in base64, values in microseconds.
    pub histograms: Histograms,
    /// One row per second of the measured window.
    pub timeline: Vec<TimelineRow>,
    /// What the backend saw (`null` when a target could not report it).
    pub backend: Option<BackendStats>,
    /// Why `backend` is missing or covers less than the strategy (absent: it is whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_gap: Option<trust::BackendGap>,
    /// Streaming calls' figures (present when the calls use the `stream` method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamFigures>,
    /// Fan-out sub-calls' figures (present when the strategy fans out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOutFigures>,
    /// The circuit breaker's figures (present when the strategy has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerFigures>,
    /// Per-second end-to-end histograms for the `.hlog` file (not in the JSON).
    #[serde(skip)]
    pub intervals: Vec<IntervalHist>,
}

/// What happened to the calls of the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Calls the schedule offered.
    pub offered: u64,
    /// Calls sent (offered minus dropped).
    pub sent: u64,
    /// Calls that ended OK.
    pub succeeded: u64,
    /// Calls that ended with another status.
    pub failed: u64,
    /// Calls not sent because `max_in_flight` calls were outstanding.
    pub dropped: u64,
    /// Calls still outstanding when an interrupted run stopped (0 for complete runs).
    pub unfinished: u64,
}

/// What the strategy sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempts {
    /// Attempts sent to the transport.
    pub total: u64,
    /// Of those, retries.
    pub retries: u64,
    /// Of those, hedges.
    pub hedges: u64,
    /// Calls that a hedge (not the original) decided.
    #[serde(default)]
    pub hedges_won: u64,
    /// Attempts cancelled because another attempt of their call decided it first (the
    /// losers of a hedge race, the original included).
    #[serde(default)]
    pub hedges_cancelled: u64,
    /// Calls by number of attempts they made.
    pub per_call: BTreeMap<u32, u64>,
    /// Attempts by their status (abandoned attempts: CANCELLED or DEADLINE_EXCEEDED).
    pub status: BTreeMap<String, u64>,
    /// Failed attempts a retry layer did not retry, by reason: `not_retryable`,
    /// `max_attempts`, `throttle`, `budget`, `deadline`, `pushback`, `committed`.
    #[serde(default)]
    pub retry_denied: BTreeMap<String, u64>,
    /// Retries that waited as the server's pushback said.
    #[serde(default)]
    pub pushback_waits: u64,
    /// Requests a client-side throttle refused to send.
    #[serde(default)]
    pub rejected_locally: u64,
    /// Streams sent again at once, within their attempt, because the server did not process
    /// them (gRFC A6's transparent retries): not attempts, not counted by the retry policy
    /// or its throttle. 0 in files written before it existed, and on a virtual clock.
    #[serde(default)]
    pub transparent: u64,
    /// Streams the server did not process, by how it is known; each was sent again (counted
    /// in `transparent`) or failed its attempt UNAVAILABLE.
    #[serde(default)]
    pub not_processed: NotProcessedCounts,
    /// Streams that had to wait in the client for a free slot under the server's limit of
    /// concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS), whether they
    /// opened or their attempt ended first: their wait is in their attempt's latency. 0 on a
    /// virtual clock, and in files written before it existed.
    #[serde(default)]
    pub slot_waits: u64,
}

/// Streams the server did not process (`attempts.not_processed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotProcessedCounts {
    /// Refused with RST_STREAM(REFUSED_STREAM) before any response.
    pub refused: u64,
    /// Above the last stream id of the server's GOAWAY.
    pub goaway: u64,
    /// Never left the client (the connection ended or went away first).
    pub unsent: u64,
}

impl NotProcessedCounts {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.refused + self.goaway + self.unsent
    }
}

/// Extra load, as multiples of the calls sent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Amplification {
    /// Attempts the client sent ÷ calls sent.
    pub client: f64,
    /// Attempts the backend received ÷ calls sent (`null` without backend figures).
    pub backend: Option<f64>,
}

/// Latency figures, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// Every completed call, from its intended start to its end (successes and failures).
    pub e2e: Option<LatencySummary>,
    /// Successful calls only.
    pub e2e_ok: Option<LatencySummary>,
    /// Every attempt, from its send to its end.
    pub attempt: Option<LatencySummary>,
}

/// What streaming calls received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFigures {
    /// Messages received, over all completed calls.
    pub messages: u64,
    /// Calls that failed after their first message: committed (gRFC A6), so never retried.
    #[serde(alias = "failed_after_first_message")]
    pub failed_after_commit: u64,
    /// Messages those calls had received before they failed.
    #[serde(default)]
    pub messages_before_failure: u64,
}

/// What a fan-out's sub-calls did (sub-calls cancelled once their call was decided are not
/// counted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FanOutFigures {
    /// Sub-calls that ended.
    pub sub_calls: u64,
    /// Their statuses.
    pub status: BTreeMap<String, u64>,
    /// Their latency, from the fan-out to their end.
    pub latency_ms: Option<LatencySummary>,
}

/// What a circuit breaker did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BreakerFigures {
    /// Calls (or attempts, for a breaker below a retry layer) it refused.
    pub short_circuited: u64,
    /// Calls answered by the strategy's fallback (counted among the failed calls).
    pub fallback: u64,
    /// Times it opened.
    pub opened: u64,
    /// Every change of state, in order.
    pub transitions: Vec<Transition>,
}

/// A circuit breaker's change of state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Seconds since the strategy's start (warmup included).
    pub at_s: f64,
    /// The state it moved to.
    pub to: crate::strategy::breaker::State,
}

/// Calls that succeeded within their deadline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// Per second of the measured window.
    pub per_second: f64,
    /// As a fraction of the calls offered.
    pub fraction: f64,
}

/// Full histograms (V2-deflate, base64, microseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// End-to-end latency of every completed call.
    pub e2e: String,
    /// End-to-end latency of successful calls.
    pub e2e_ok: String,
    /// Latency of every attempt.
    pub attempt: String,
    /// Generator lag.
    pub lag: String,
    /// Inter-send interval error (absent from files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_error: Option<String>,
    /// Fan-out sub-calls' latency (strategies that fan out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_call: Option<String>,
}

/// Errors reading or writing results.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a results file this build understands.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Results {
    /// The plan of the run, if this build understands every setting in it.
    pub fn plan(&self) -> Option<Plan> {
        // Read in place: the profile is not copied (it may be most of a large file).
        Plan::deserialize(&self.profile).ok()
    }

    /// The strategies the run was to measure: the profile's, in its order, then any measured
    /// strategy the profile does not list. An interrupted run measured fewer.
    pub fn planned_strategies(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .profile
            .get("strategies")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(serde_json::Value::as_str))
            .collect();
        for s in &self.strategies {
            if !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
        names
    }

    /// Reads and checks a results file.
    pub fn read(path: &Path) -> Result<Results, ResultsError> {
        Self::read_with_json(path).map(|(results, _)| results)
    }

    /// Reads and checks a results file; also returns its JSON as read, keys this build does
    /// not know included (reports and gates find figures of newer builds there), but for
    /// `profile`, which is moved into the typed results (`null` in the JSON) rather than held
    /// twice.
    pub fn read_with_json(path: &Path) -> Result<(Results, serde_json::Value), ResultsError> {
        let io = |source| ResultsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |message: String| ResultsError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let bytes = bounds::read_at_most(path, bounds::MAX_RESULTS_FILE).map_err(io)?;
        // Counted before anything is built: memory follows the values, not the bytes.
        bounds::count_values(&bytes, bounds::MAX_VALUES)
            .map_err(|e| invalid(format!("not JSON, or too large: {e}")))?;
        let mut value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        drop(bytes);
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "schema `{other}` is not supported; this build reads `{SCHEMA}`"
                )));
            }
            None => return Err(invalid(format!("no `schema` key; expected `{SCHEMA}`"))),
        }
        // The profile moves into the typed results rather than being copied: the JSON view
        // keeps the other keys (readers find the profile in `Results::profile`).
        let profile = value.get_mut("profile").map(serde_json::Value::take);
        let mut results: Results = serde_path_to_error::deserialize(&value)
            .map_err(|e| invalid(format!("field `{}`: {}", e.path(), e.inner())))?;
        if let Some(profile) = profile {
            results.profile = profile;
        }
        bounds::check(&results).map_err(invalid)?;
        fill_profile_defaults(&mut results.profile);
        Ok((results, value))
    }

    /// The results as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results always serialize")
    }
}

/// Keys added to the profile of schema v1 after its first files were written (such as
/// `load.connections`) are filled in with the value a file without them ran with, by reading
/// the profile as a plan and writing it again, so that `compare` and `merge` see a file of an
/// older build and one of a newer build of the same profile as the same profile. A profile
/// this build cannot read (a newer build's) is left as it is.
fn fill_profile_defaults(profile: &mut serde_json::Value) {
    if let Some(filled) = Plan::deserialize(&*profile)
        .ok()
        .and_then(|plan| serde_json::to_value(plan).ok())
    {
        *profile = filled;
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed over.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
