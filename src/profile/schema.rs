//! What a profile file says: the TOML schema, before defaults and checks.
//!
//! Every table refuses unknown keys, so a typo (`rat = 100`) is an error that names the key,
//! never a silently ignored setting. Defaults are filled in, and values checked, when the
//! profile becomes a [`Plan`](super::Plan) (see `validate.rs`); `docs/profiles.md` documents
//! every key.

use serde::Deserialize;

use super::backend::BackendPlan;
use super::client::Client;
use super::duration::HumanDuration;
use super::gate::GatePlan;
use super::phases::PhasePlan;
use super::plan::{Arrival, LayerPlan, Method, Order};
use super::sweep::SweepSpec;
use super::target::TargetPlan;

/// A profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name; defaults to the file's stem.
    pub name: Option<String>,
    /// What the profile shows.
    pub description: Option<String>,
    /// Seed of every random draw; defaults to 1.
    pub seed: Option<u64>,
    /// The offered load.
    pub load: LoadSpec,
    /// The backend's fault model; defaults to a healthy 1 ms backend.
    #[serde(default)]
    pub backend: BackendPlan,
    /// What changes over time.
    #[serde(default)]
    pub phases: Vec<PhasePlan>,
    /// The strategies to compare, in order.
    #[serde(default)]
    pub strategies: Vec<StrategySpec>,
    /// Limits and regression budgets for `resilbench check` (see [`crate::gate`]).
    pub gate: Option<GatePlan>,
    /// The user's own gRPC service, called instead of resilbench's backend.
    pub target: Option<TargetPlan>,
    /// What `resilbench sweep` varies; `run` runs the profile as written and ignores it.
    pub sweep: Option<SweepSpec>,
}

/// `[load]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// `constant` (default) or `poisson`.
    pub arrival: Option<Arrival>,
    /// `unary` (default), `mutate` or `stream`.
    pub method: Option<Method>,
    /// Calls per second.
    pub rate: f64,
    /// Rate changes over time.
    #[serde(default)]
    pub steps: Vec<StepSpec>,
    /// Length of the schedule, warmup included; default 10 s.
    pub duration: Option<HumanDuration>,
    /// Excluded start of the schedule; default 0 s.
    pub warmup: Option<HumanDuration>,
    /// Per-call deadline; default 1 s.
    pub deadline: Option<HumanDuration>,
    /// Cap on calls outstanding; default 10,000.
    pub max_in_flight: Option<u64>,
    /// Request payload size; default 0.
    pub payload_bytes: Option<u32>,
    /// Run against a `--target` that cannot be reached; default false.
    pub target_may_be_down: Option<bool>,
    /// HTTP/2 connections per replica (real clock); default 1.
    pub connections: Option<u32>,
    /// Shortest time between the driver's wake-ups (real clock); default 100 µs.
    pub wake_quantum: Option<HumanDuration>,
    /// `sequential` (default) or `interleaved`.
    pub order: Option<Order>,
    /// Pause between strategies run in turn; default 5 s against a target, else none.
    pub cooldown: Option<HumanDuration>,
}

/// One `[[load.steps]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// When the rate changes.
    pub at: HumanDuration,
    /// The new rate.
    pub rate: f64,
}

/// One `[[strategies]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySpec {
    /// Unique name.
    pub name: String,
    /// What it is.
    pub description: Option<String>,
    /// Call deadline; defaults to `load.deadline`.
    pub deadline: Option<HumanDuration>,
    /// Layers, top to bottom; none is one attempt per call.
    #[serde(default)]
    pub layers: Vec<LayerPlan>,
    /// A gRPC service config (its JSON, or a path relative to the profile).
    pub service_config: Option<String>,
    /// The gRPC library the strategy's A6 policies behave as; default the A6 text.
    pub client: Option<Client>,
    /// Send the deadline to the backend as `grpc-timeout`; default true.
    pub propagate_deadline: Option<bool>,
    /// Tell the backend this much less time than is left; default 0.
    pub deadline_margin: Option<HumanDuration>,
    /// Attach an idempotency key to mutations; default false.
    pub idempotency_keys: Option<bool>,
}
