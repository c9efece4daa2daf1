//! The [`Plan`]: a profile with every default filled in, every value checked and resolved.
//!
//! Everything downstream (driver, backend, strategies, results) reads the plan, never the raw
//! profile. The plan is written into `results.json` as `profile`, in the same shape and with the
//! same key names as a profile file, so a run can be understood, and repeated, from its results.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::backend::BackendPlan;
use super::client::Client;
use super::gate::GatePlan;
use super::layers::{
    AdaptivePlan, FanOutPlan, GrpcHedgePlan, GrpcRetryPlan, HedgePlan, PyBreakerPlan,
    Resilience4jPlan, RetryPlan,
};
use super::phases::{PhaseKind, PhasePlan};
use super::target::TargetPlan;
use crate::profile::duration::{HumanDuration, human};

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
    /// What changes over time: outages, brownouts, stalls, error bursts, load spikes.
    pub phases: Vec<PhasePlan>,
    /// The strategies, run one after another in this order.
    pub strategies: Vec<StrategyPlan>,
    /// The CI gate `resilbench check` applies to the run's results, if the profile has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GatePlan>,
    /// The user's own gRPC service the calls go to (`[target]`), instead of resilbench's
    /// backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetPlan>,
    /// What the reader must know of the recorded runs the profile's models were read from
    /// (a source strategy marked partial), one sentence each: found when the profile is read,
    /// printed then and kept in the results' warnings. Not part of the plan's text: the run's
    /// results carry them as warnings.
    #[serde(skip)]
    pub caveats: Vec<String>,
}

impl Plan {
    /// The gRPC method every call of the run calls, as a service config names it:
    /// `(service, method)`, the service with its package (`resilbench.v1.Backend`,
    /// `mycompany.payments.v1.Payments`) and the method alone (`Call`). Service configs are
    /// matched against it (`service_config::settings_for`). With a `[target]`, its
    /// `target.method` (checked before the strategies are read); else the embedded backend's
    /// `Backend` service and `load.method`'s method.
    pub fn called_method(&self) -> (&str, &str) {
        match self.target.as_ref().and_then(TargetPlan::called_method) {
            Some(called) => called,
            None => (
                crate::protocol::path::BACKEND_SERVICE,
                self.load.method.grpc_name(),
            ),
        }
    }

    /// What the strategies' `client`s change that the reader must be told, one sentence
    /// each (a hedging policy that the library ignores): printed when the profile loads, and
    /// said again in the report's profile section.
    pub fn client_warnings(&self) -> Vec<String> {
        self.strategies
            .iter()
            .filter_map(StrategyPlan::client_warning)
            .collect()
    }
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

/// Which of the backend's methods the calls use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `Call`: unary, no side effect.
    #[default]
    Unary,
    /// `Mutate`: unary with a side effect the backend counts (and may deduplicate).
    Mutate,
    /// `Stream`: server streaming.
    Stream,
}

impl Method {
    /// The backend's gRPC method of this kind: `Call`, `Mutate` or `Stream`.
    pub fn grpc_name(self) -> &'static str {
        match self {
            Method::Unary => "Call",
            Method::Mutate => "Mutate",
            Method::Stream => "Stream",
        }
    }
}

/// How the strategies share the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// One after another, each with the whole schedule and a fresh backend (a cooldown
    /// between them against a live target).
    #[default]
    Sequential,
    /// At the same time: each call of the one schedule is given to one strategy by a keyed
    /// draw, so every strategy meets the same minutes of a live service.
    Interleaved,
}

impl Order {
    /// Whether this is the default, [`Order::Sequential`] (left out of a written plan).
    pub fn is_sequential(&self) -> bool {
        *self == Order::Sequential
    }
}

/// The offered load: an open-loop schedule fixed before the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPlan {
    /// Arrival process.
    pub arrival: Arrival,
    /// The method every call uses.
    pub method: Method,
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
    /// With a `--target`: start even if it cannot be reached (its calls fail with UNAVAILABLE
    /// until it answers) instead of refusing to run.
    #[serde(default)]
    pub target_may_be_down: bool,
    /// HTTP/2 connections to each replica on a real clock, calls spread over them in turn
    /// (a server that serves each connection on one thread is then used on several).
    #[serde(default = "one_connection")]
    pub connections: u32,
    /// On a real clock, the shortest time between two of the open-loop driver's planned
    /// wake-ups: calls falling due in between leave together at the second, late by less than
    /// this (and counted late, as generator lag). Each wake-up costs the client's thread a
    /// context switch and the server a read and a write, so fewer cost both sides less CPU per
    /// call. Simulated time sends every call at its own instant.
    #[serde(with = "human", default = "default_wake_quantum")]
    pub wake_quantum: Duration,
    /// How the strategies share the run: in turn (the default) or interleaved call by call.
    #[serde(default, skip_serializing_if = "Order::is_sequential")]
    pub order: Order,
    /// The pause between one strategy's end and the next one's start (strategies in turn),
    /// so that one strategy's retry storm does not spill into the next one's figures. Unset:
    /// [`DEFAULT_TARGET_COOLDOWN`] against a `--target`, none otherwise (a fresh embedded
    /// backend per strategy has nothing to recover from). A real run writes the one it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<HumanDuration>,
}

/// The cooldown between strategies against a `--target` when the profile sets none: long
/// enough for a service's queues to drain and its retry throttles and breakers (and a
/// client's connections) to settle after a storm.
pub const DEFAULT_TARGET_COOLDOWN: Duration = Duration::from_secs(5);

impl LoadPlan {
    /// The offered rate as a piecewise-constant function: `(start, calls per second)` segments in
    /// order, the first at 0. Rate steps set the base rate; `load_spike` phases multiply it while
    /// they last.
    pub fn segments(&self, phases: &[PhasePlan]) -> Vec<(Duration, f64)> {
        let spikes: Vec<&PhasePlan> = phases
            .iter()
            .filter(|p| p.kind == PhaseKind::LoadSpike)
            .collect();
        let mut bounds = vec![Duration::ZERO];
        bounds.extend(self.steps.iter().map(|s| s.at));
        for spike in &spikes {
            bounds.extend([spike.start, spike.end()]);
        }
        bounds.retain(|b| *b < self.duration);
        bounds.sort();
        bounds.dedup();
        bounds
            .into_iter()
            .map(|at| {
                let base = self
                    .steps
                    .iter()
                    .rev()
                    .find(|s| s.at <= at)
                    .map_or(self.rate, |s| s.rate);
                let factor: f64 = spikes
                    .iter()
                    .filter(|p| p.contains(at))
                    .map(|p| p.factor.unwrap_or(1.0))
                    .product();
                (at, base * factor)
            })
            .collect()
    }
}

/// `load.connections` when the profile sets none.
pub(super) fn one_connection() -> u32 {
    1
}

/// `load.wake_quantum` when the profile sets none: it grows with the highest rate the schedule
/// asks for, so that at high rates one wake-up of the client's thread sends several calls
/// (each wake-up is a context switch, and on a KVM guest one costs tens of microseconds),
/// while at low rates every call keeps a wake-up of its own: the rate × 25 ns, from
/// [`REAL_WAKE_QUANTUM`](crate::clock::REAL_WAKE_QUANTUM) (100 µs, up to 4,000 calls/s) to
/// 500 µs (from 20,000 calls/s: half the 1 ms lag limit, so that a machine that wakes a
/// thread within 0.5 ms keeps lag p99 under it). Measured: docs/PERFORMANCE.md, "Wake-ups
/// per call".
pub(super) fn auto_wake_quantum(load: &LoadPlan) -> Duration {
    const PER_CALL_PER_SECOND_NS: f64 = 25.0;
    const MOST: Duration = Duration::from_micros(500);
    let peak = load.steps.iter().map(|s| s.rate).fold(load.rate, f64::max);
    let grown = Duration::from_nanos((peak * PER_CALL_PER_SECOND_NS).min(1e12) as u64);
    grown.clamp(crate::clock::REAL_WAKE_QUANTUM, MOST)
}

/// `load.wake_quantum` of a plan read back from a file written before it was kept.
pub(super) fn default_wake_quantum() -> Duration {
    crate::clock::REAL_WAKE_QUANTUM
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
    /// Send the time left before the deadline to the backend (`grpc-timeout`).
    #[serde(default = "yes")]
    pub propagate_deadline: bool,
    /// How much less than the time left the backend is told: the margin a parent keeps to
    /// answer after its child call's deadline.
    #[serde(with = "human", default)]
    pub deadline_margin: Duration,
    /// Attach an idempotency key to mutations, the same on every attempt (AIP-155).
    #[serde(default)]
    pub idempotency_keys: bool,
    /// The gRPC library its A6 policies (`grpc_retry`, `grpc_hedge`) behave as; the A6 text
    /// when left out.
    #[serde(default, skip_serializing_if = "Client::is_a6")]
    pub client: Client,
}

impl StrategyPlan {
    /// Whether it has an A6 policy (a `grpc_retry` or `grpc_hedge` layer).
    pub fn has_a6_policy(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, LayerPlan::GrpcRetry(_) | LayerPlan::GrpcHedge(_)))
    }

    /// What its `client` changes that the reader must be told, in words: a hedging policy
    /// the library does not implement is ignored.
    pub fn client_warning(&self) -> Option<String> {
        let hedges = self
            .layers
            .iter()
            .any(|l| matches!(l, LayerPlan::GrpcHedge(_)));
        let kinds: Vec<&str> = self.layers.iter().map(LayerPlan::kind).collect();
        (hedges && !self.client.flavor().hedging).then(|| {
            format!(
                "strategy `{}`: {} ({}) does not implement hedging: {}",
                self.name,
                self.client,
                self.client.library.described(),
                hedging_ignored(&kinds)
            )
        })
    }
}

/// The layer kinds that send a call again (a retry, or tower's hedge).
const RESENDERS: [&str; 3] = ["grpc_retry", "retry", "hedge"];

/// What happens to the hedging policy of a strategy whose library has none, in words, given
/// the kinds of its layers: it is ignored, and each call is sent once unless another of its
/// layers sends it again.
pub fn hedging_ignored(kinds: &[&str]) -> String {
    let others: Vec<String> = kinds
        .iter()
        .filter(|k| RESENDERS.contains(k))
        .map(|k| format!("`{k}`"))
        .collect();
    let then = match others.as_slice() {
        [] => "each call is sent once".to_string(),
        [one] => format!("only its {one} layer sends a call again"),
        several => format!(
            "only its {} layers send a call again",
            several.join(" and ")
        ),
    };
    format!("its hedging policy is ignored, as that library does ({then})")
}

fn yes() -> bool {
    true
}

/// One layer of a strategy stack. Adding a strategy adds a variant here, its kind in
/// [`LayerPlan::KINDS`] and its arm in `deserialize`, and one arm in [`crate::strategy::build`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LayerPlan {
    /// Bounds each attempt below it: an attempt still running after `timeout` is cancelled and
    /// fails with DEADLINE_EXCEEDED (a retryable failure for a `retry` layer above it).
    Timeout(TimeoutPlan),
    /// gRFC A6's retry policy, with its throttling and server pushback.
    GrpcRetry(GrpcRetryPlan),
    /// A plain retrier: attempts, statuses, AWS backoff, an optional budget.
    Retry(RetryPlan),
    /// gRFC A6's hedging policy.
    GrpcHedge(GrpcHedgePlan),
    /// One hedge after a percentile of recent latencies (tower's `Hedge`).
    Hedge(HedgePlan),
    /// Scatter-gather: `n` sub-calls per call.
    FanOut(FanOutPlan),
    /// pybreaker's circuit breaker.
    Pybreaker(PyBreakerPlan),
    /// resilience4j's circuit breaker.
    Resilience4j(Resilience4jPlan),
    /// The SRE book's client-side adaptive throttling.
    AdaptiveThrottle(AdaptivePlan),
}

/// `kind = "timeout"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutPlan {
    /// How long an attempt may run.
    #[serde(with = "human")]
    pub timeout: Duration,
}

impl<'de> Deserialize<'de> for LayerPlan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use super::tagged::{fields, read, unknown};
        read(d, "kind", |kind, rest| match kind {
            "timeout" => fields(rest).map(LayerPlan::Timeout),
            "grpc_retry" => fields(rest).map(LayerPlan::GrpcRetry),
            "retry" => fields(rest).map(LayerPlan::Retry),
            "grpc_hedge" => fields(rest).map(LayerPlan::GrpcHedge),
            "hedge" => fields(rest).map(LayerPlan::Hedge),
            "fan_out" => fields(rest).map(LayerPlan::FanOut),
            "pybreaker" => fields(rest).map(LayerPlan::Pybreaker),
            "resilience4j" => fields(rest).map(LayerPlan::Resilience4j),
            "adaptive_throttle" => fields(rest).map(LayerPlan::AdaptiveThrottle),
            other => Err(unknown("kind", other, &LayerPlan::KINDS)),
        })
    }
}

impl LayerPlan {
    /// Every kind of layer, as written in a profile.
    pub const KINDS: [&'static str; 9] = [
        "fan_out",
        "timeout",
        "grpc_retry",
        "retry",
        "grpc_hedge",
        "hedge",
        "pybreaker",
        "resilience4j",
        "adaptive_throttle",
    ];

    /// The layer's kind as written in a profile.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerPlan::Timeout(_) => "timeout",
            LayerPlan::GrpcRetry(_) => "grpc_retry",
            LayerPlan::Retry(_) => "retry",
            LayerPlan::GrpcHedge(_) => "grpc_hedge",
            LayerPlan::Hedge(_) => "hedge",
            LayerPlan::FanOut(_) => "fan_out",
            LayerPlan::Pybreaker(_) => "pybreaker",
            LayerPlan::Resilience4j(_) => "resilience4j",
            LayerPlan::AdaptiveThrottle(_) => "adaptive_throttle",
        }
    }
}
