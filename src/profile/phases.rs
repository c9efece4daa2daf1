//! Phases: what changes over time (`[[phases]]`), the triggers of retry storms and metastable
//! failures.
//!
//! Backend phases (outage, brownout, stall, error_burst) act on attempts *arriving* at the
//! backend inside their window; `load_spike` acts on the driver's schedule. Times count from
//! each strategy's start, so every strategy meets the same phases. Phases may overlap.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::codes;
use super::duration::human;
use crate::protocol::StatusCode;

/// What a phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Every attempt fails at once with `status`.
    Outage,
    /// Service times × `latency_factor`, workers × `capacity_factor`.
    Brownout,
    /// Attempts are held until the phase ends, then served.
    Stall,
    /// Errors at `errors` rates, on top of the usual ones.
    ErrorBurst,
    /// The offered rate × `factor` (driver side).
    LoadSpike,
}

/// One phase (`[[phases]]`). Each kind takes only its own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhasePlan {
    /// What the phase does.
    pub kind: PhaseKind,
    /// When it starts, from each strategy's start.
    #[serde(with = "human")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "human")]
    pub duration: Duration,
    /// The replica it affects (by name); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// outage: the status attempts fail with (default UNAVAILABLE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusCode>,
    /// brownout: service-time multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_factor: Option<f64>,
    /// brownout: worker multiplier (at least one worker stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_factor: Option<f64>,
    /// error_burst: extra error probability per status.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "codes::table"
    )]
    pub errors: BTreeMap<StatusCode, f64>,
    /// load_spike: offered-rate multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
}

impl PhasePlan {
    /// When the phase ends.
    pub fn end(&self) -> Duration {
        self.start.saturating_add(self.duration)
    }

    /// Whether `t` (from the strategy's start) falls inside the phase.
    pub fn contains(&self, t: Duration) -> bool {
        t >= self.start && t < self.end()
    }

    /// Whether the phase applies to the replica called `name`.
    pub fn targets(&self, name: &str) -> bool {
        self.replica.as_deref().is_none_or(|r| r == name)
    }
}
/// Phases that will not happen as written, in words: one that starts after the run's end (or
/// when `--duration` cut the run before it), one the end cuts short, one entirely within the
/// warmup (left out of every figure). A run of such a profile shows strategies that look
/// alike for a reason the user did not intend.
pub fn warnings(phases: &[PhasePlan], duration: Duration, warmup: Duration) -> Vec<String> {
    let fmt = super::duration::format;
    let mut out = Vec::new();
    for (i, p) in phases.iter().enumerate() {
        let what = format!(
            "phases[{i}] ({} from {} for {})",
            serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            fmt(p.start),
            fmt(p.duration)
        );
        if p.start >= duration {
            out.push(format!(
                "{what} starts after the run ends at {}: it never happens, and the strategies \
                 meet no trouble (a shorter --duration?)",
                fmt(duration)
            ));
        } else if p.end() > duration {
            out.push(format!(
                "{what} is cut short: the run ends at {}, {} into the phase",
                fmt(duration),
                fmt(duration - p.start)
            ));
        } else if p.end() <= warmup {
            out.push(format!(
                "{what} ends within the warmup ({}): calls during it are left out of every figure",
                fmt(warmup)
            ));
        }
    }
    out
}
