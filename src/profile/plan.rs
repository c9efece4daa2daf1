//! The [`Plan`]: a profile with every default filled in, every value checked and resolved.
//!
//! Everything downstream (driver, backend, strategies, results) reads the plan, never the raw
//! profile. The plan is written into `results.json` as `profile`, in the same shape and with the
//! same key names as a profile file, so a run can be understood, and repeated, from its results.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::latency::Latency;
use crate::gate::GatePlan;
use crate::profile::duration::human;

/// A resolved, validated profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Short name, used in folder names and titles.
    pub name: String,
    /// What the profile shows, in a sentence or two.
    pub description: String,
    /// Seed of every random draw of the run (arrivals, backend draws, strategy jitter).
    pub seed: u64,
    /// The offered load.
    pub load: LoadPlan,
    /// The backend's fault model.
    pub backend: BackendPlan,
    /// The strategies, run one after another in this order.
    pub strategies: Vec<StrategyPlan>,
    /// The CI gate `resilbench check` applies to the run's results, if the profile has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GatePlan>,
}

/// How calls arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Evenly spaced: call k of a rate segment starts at k / rate.
    Constant,
    /// A Poisson process: exponential gaps with mean 1 / rate, from the plan's seed.
    Poisson,
}

/// The offered load: an open-loop schedule fixed before the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPlan {
    /// Arrival process.
    pub arrival: Arrival,
    /// Calls per second from the start (until the first step).
    pub rate: f64,
    /// Rate changes over time, in order of `at`.
    pub steps: Vec<RateStep>,
    /// Length of the schedule, warmup included.
    #[serde(with = "human")]
    pub duration: Duration,
    /// Calls starting before this are sent but left out of every figure.
    #[serde(with = "human")]
    pub warmup: Duration,
    /// Per-call deadline, counted from the call's intended start (strategies may override it).
    #[serde(with = "human")]
    pub deadline: Duration,
    /// Most calls outstanding at once; a call that would exceed it is counted as dropped.
    pub max_in_flight: u64,
    /// Request payload size in bytes.
    pub payload_bytes: u32,
}

/// From `at` on, calls arrive at `rate` per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStep {
    /// When the new rate starts, from the start of the run.
    #[serde(with = "human")]
    pub at: Duration,
    /// Calls per second from then on (0 pauses the load).
    pub rate: f64,
}

/// The backend's fault model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendPlan {
    /// Service time of an attempt once a worker takes it.
    pub latency: Latency,
    /// Probability of answering with each status code (canonical names), per attempt.
    pub errors: BTreeMap<String, f64>,
    /// Requests served at once; `None` is unlimited.
    pub workers: Option<u32>,
    /// Requests that may wait for a worker; `None` is unlimited. Beyond it: RESOURCE_EXHAUSTED.
    pub queue: Option<u32>,
}

/// One strategy: a name and a stack of layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyPlan {
    /// Unique name, shown in tables and charts.
    pub name: String,
    /// What the strategy is, in words.
    pub description: String,
    /// The call deadline for this strategy (covers every attempt).
    #[serde(with = "human")]
    pub deadline: Duration,
    /// Layers from the top (nearest the caller) to the bottom (nearest the wire).
    pub layers: Vec<LayerPlan>,
}

/// One layer of a strategy stack. Adding a strategy adds a variant here and one arm in
/// [`crate::strategy::build`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerPlan {
    /// Bounds each attempt below it: an attempt still running after `timeout` is cancelled and
    /// fails with DEADLINE_EXCEEDED.
    Timeout {
        /// How long an attempt may run.
        #[serde(with = "human")]
        timeout: Duration,
    },
}

impl LayerPlan {
    /// The layer's kind as written in a profile.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerPlan::Timeout { .. } => "timeout",
        }
    }
}

impl LoadPlan {
    /// Calls per second in effect at `t` from the start.
    pub fn rate_at(&self, t: Duration) -> f64 {
        self.steps
            .iter()
            .rev()
            .find(|s| s.at <= t)
            .map_or(self.rate, |s| s.rate)
    }

    /// Expected number of calls over the whole schedule (exact for constant arrivals).
    pub fn expected_calls(&self) -> f64 {
        self.expected_calls_between(Duration::ZERO, self.duration)
    }

    /// Expected number of calls with intended start in `[from, to)`.
    pub fn expected_calls_between(&self, from: Duration, to: Duration) -> f64 {
        let mut bounds = vec![Duration::ZERO];
        bounds.extend(self.steps.iter().map(|s| s.at));
        bounds.push(self.duration);
        bounds
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0].max(from), w[1].min(to));
                if b > a {
                    self.rate_at(w[0]) * (b - a).as_secs_f64()
                } else {
                    0.0
                }
            })
            .sum()
    }
}
