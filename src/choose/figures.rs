//! What a sweep keeps of each point: per strategy, a few headline figures (and those its goal
//! names), and how the calls fared before the profile's trigger and long after it.
//!
//! Figures are read by name from the point's results JSON ([`crate::figure`]), as `check`
//! reads them, so a goal may name any figure of results.json. The rest of the results is
//! written to the point's folder and dropped: a sweep's memory does not grow with its points'
//! histograms or timelines.
//!
//! The *stretches* answer the metastability question (Bronson et al., HotOS'21; Huang et al.,
//! OSDI'22): a trigger (the profile's phases: a load spike, an outage) ends, the load is what
//! it was before, and the question is whether the system comes back. `before` is the share of
//! calls offered before the first phase that succeeded; `after`, the share of those offered in
//! the second half of the time between the last phase's end and the end of the schedule (long
//! enough after the trigger for a healthy system to have caught up). Without phases, `after`
//! is the second half of the measured window.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::goal::Goal;
use crate::figure;
use crate::profile::Plan;
use crate::record::timeline::TimelineRow;
use crate::results::Results;

/// The figures kept for every strategy of every point.
pub const HEADLINE: [&str; 13] = [
    "success_rate",
    "goodput.per_second",
    "goodput.fraction",
    "latency_ms.e2e.p50",
    "latency_ms.e2e.p99",
    "latency_ms.e2e.p999",
    "latency_ms.e2e_ok.p99",
    "amplification.client",
    "amplification.backend",
    "counts.offered",
    "counts.succeeded",
    "counts.failed",
    "counts.dropped",
];

/// A point collapsed when fewer than this share of the calls offered long after the trigger
/// (or in the second half of a run without one) succeed.
pub const COLLAPSED_BELOW: f64 = 0.5;

/// A point recovered when the calls offered long after the trigger succeed at least this
/// share as often as those offered before it.
pub const RECOVERED_AT: f64 = 0.99;

/// One strategy at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The strategy.
    pub strategy: String,
    /// Figures by name (`null`: not measured).
    pub figures: BTreeMap<String, Option<f64>>,
    /// Before and long after the trigger.
    pub stretch: Stretch,
}

impl Candidate {
    /// A figure's value, if measured.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures.get(name).copied().flatten()
    }
}

/// Success before the trigger and long after it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stretch {
    /// Share of the calls offered before the first phase that succeeded (no phases: `null`).
    pub before: Option<f64>,
    /// Share of the calls offered long after the last phase (or in the second half of the
    /// run) that succeeded.
    pub after: Option<f64>,
    /// `after` is at least [`RECOVERED_AT`] × `before` (`null`: no phases, or already down
    /// before the first: `before` below [`COLLAPSED_BELOW`]).
    pub recovered: Option<bool>,
    /// `after` is below [`COLLAPSED_BELOW`].
    pub collapsed: bool,
}

/// What a sweep keeps of one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointFigures {
    /// The run was interrupted: its figures cover part of its schedule.
    pub partial: bool,
    /// The run's warnings (a generator that fell behind, a partial run).
    pub warnings: Vec<String>,
    /// One entry per strategy, in profile order.
    pub strategies: Vec<Candidate>,
}

/// The figures of a point's results: the headline ones and the goal's.
pub fn summarize(
    plan: &Plan,
    results: &Results,
    goal: Option<&Goal>,
) -> Result<PointFigures, String> {
    let json = serde_json::to_value(results).map_err(|e| e.to_string())?;
    let empty = Vec::new();
    let objects = json["strategies"].as_array().unwrap_or(&empty);
    let mut strategies = Vec::with_capacity(results.strategies.len());
    for (s, object) in results.strategies.iter().zip(objects) {
        let mut names: Vec<String> = HEADLINE.iter().map(|n| n.to_string()).collect();
        if let Some(goal) = goal {
            names.extend(goal.limits_for(&s.name).into_keys().map(str::to_string));
        }
        let mut figures = BTreeMap::new();
        for name in names {
            let value = figure::resolve(object, &name).map_err(|e| e.to_string())?;
            figures.insert(name, value.value().filter(|v| v.is_finite()));
        }
        strategies.push(Candidate {
            strategy: s.name.clone(),
            figures,
            stretch: stretch(plan, &s.timeline),
        });
    }
    Ok(PointFigures {
        partial: results.partial,
        warnings: results.warnings.clone(),
        strategies,
    })
}

/// Success before the first phase and long after the last (see the module's doc).
pub fn stretch(plan: &Plan, timeline: &[TimelineRow]) -> Stretch {
    let secs = |d: Duration| d.as_secs_f64();
    let (warmup, end) = (secs(plan.load.warmup), secs(plan.load.duration));
    let success = |from: f64, to: f64| {
        let (ok, offered) = timeline
            .iter()
            .filter(|r| r.t as f64 >= from && (r.t + 1) as f64 <= to)
            .fold((0u64, 0u64), |(o, n), r| (o + r.succeeded, n + r.offered));
        (offered > 0).then(|| ok as f64 / offered as f64)
    };
    let first = plan.phases.iter().map(|p| secs(p.start)).reduce(f64::min);
    let last = plan.phases.iter().map(|p| secs(p.end())).reduce(f64::max);
    let (before, after) = match (first, last) {
        (Some(first), Some(last)) => {
            let from = last + (end - last).max(0.0) / 2.0;
            (success(warmup.ceil(), first), success(from.ceil(), end))
        }
        _ => (None, success((warmup + (end - warmup) / 2.0).ceil(), end)),
    };
    Stretch {
        before,
        after,
        // Only a point that was up before its trigger can come back from it.
        recovered: match (before, after) {
            (Some(b), Some(a)) if b >= COLLAPSED_BELOW => Some(a >= RECOVERED_AT * b),
            _ => None,
        },
        collapsed: after.is_some_and(|a| a < COLLAPSED_BELOW),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: u64, offered: u64, succeeded: u64) -> TimelineRow {
        TimelineRow {
            t,
            offered,
            dropped: 0,
            succeeded,
            failed: offered - succeeded,
            attempts: offered,
            p50_ms: None,
            p99_ms: None,
            tokens: None,
            breaker: None,
        }
    }

    fn plan(phases: &str) -> Plan {
        crate::profile::parse(
            &format!(
                "[load]\nrate = 10\nduration = \"20s\"\nwarmup = \"2s\"\n{phases}\n[[strategies]]\nname = \"a\"\n"
            ),
            "t.toml",
            "t",
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn stretches_before_and_long_after_the_trigger() {
        let spike = plan(
            "[[phases]]\nkind = \"load_spike\"\nstart = \"5s\"\nduration = \"3s\"\nfactor = 2.0",
        );
        // Healthy until 5 s, failing from then on: before 1, after (14..20) 0.
        let rows: Vec<_> = (2..20)
            .map(|t| row(t, 10, if t < 5 { 10 } else { 0 }))
            .collect();
        let s = stretch(&spike, &rows);
        assert_eq!((s.before, s.after), (Some(1.0), Some(0.0)));
        assert_eq!((s.recovered, s.collapsed), (Some(false), true));
        // Back from 10 s: after counts 14..20 only, so it recovered.
        let rows: Vec<_> = (2..20)
            .map(|t| row(t, 10, if (5..10).contains(&t) { 0 } else { 10 }))
            .collect();
        let s = stretch(&spike, &rows);
        assert_eq!((s.recovered, s.collapsed), (Some(true), false));
        // Without phases: the second half of the measured window (11..20), no before.
        let rows: Vec<_> = (2..20)
            .map(|t| row(t, 10, if t < 11 { 0 } else { 4 }))
            .collect();
        let s = stretch(&plan(""), &rows);
        assert_eq!((s.before, s.after, s.recovered), (None, Some(0.4), None));
        assert!(s.collapsed);
        // Down before the trigger: nothing to recover from.
        let rows: Vec<_> = (2..20).map(|t| row(t, 10, 1)).collect();
        let s = stretch(&spike, &rows);
        assert_eq!(
            (s.before, s.recovered, s.collapsed),
            (Some(0.1), None, true)
        );
    }
}
