//! What a profile's `[sweep]` says: the keys a sweep varies and the values each takes, the goal
//! a recommendation must meet, and which strategies each point runs.
//!
//! ```toml
//! [sweep]
//! goal = ["success_rate >= 99.9%", "latency_ms.e2e.p99 <= 500"]   # default: the [gate]'s limits
//! strategies = ["grpc"]                                         # default: every strategy
//!
//! [sweep.vary]
//! "strategies.grpc.layers.grpc_retry.max_attempts" = "2..5"
//! "strategies.grpc.layers.grpc_retry.initial_backoff" = "10ms, 100ms, 1s"
//! ```
//!
//! A profile with a `[sweep]` is still an ordinary profile: `resilbench run` runs it as written
//! (its base point) and leaves the table alone. `resilbench sweep` reads it: the key names,
//! the value syntax and the checks of every point are the sweep's (`crate::sweep`,
//! docs/sweeps.md). It is kept here, as data read with the profile, so that a typo in the
//! table's own names (`[sweep] gaol = ...`) is refused at its line by every command, like any
//! other key of a profile.

use serde::Deserialize;

/// `[sweep]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Each key (a dotted name of the resolved plan, as `resilbench validate` prints it) and
    /// its values: a string in the sweep's value syntax (`"1..5"`, `"10ms, 100ms"`), an array
    /// of values, or one value. Nested tables are joined into dotted keys.
    #[serde(default)]
    pub vary: toml::Table,
    /// Conditions the recommended point must meet (`"success_rate >= 99.9%"`); when empty, the
    /// limits of the profile's `[gate]`.
    #[serde(default)]
    pub goal: Vec<String>,
    /// The strategies each point runs; when empty, all of them.
    #[serde(default)]
    pub strategies: Vec<String>,
}
