//! Figures a profile's phases ask for: what a strategy did to a backend in trouble, and how
//! long it took to recover once the trouble was over.
//!
//! A profile with phases (an outage, a load spike, a brownout) is a story about a trigger.
//! The run's overall figures average the trigger away: in `retry-storm`, throttled retries
//! and no retries end with the same success, and only the timeline shows that one of them
//! could have fed a storm. So the verdict table adds, read from each strategy's per-second
//! timeline of results.json:
//!
//! - **load in phases**: attempts sent ÷ calls offered over the seconds the phases cover
//!   (1.00x: every call tried once; a retry storm shows 2.5x, a breaker that refuses 0.02x);
//! - **recovered after**: seconds from the end of the last phase until every later second's
//!   success rate is back to at least 90% of its rate before the first phase ("never" when
//!   the run ends first: a metastable failure).
//!
//! Both are derived on reading, from figures every v1 file has, so older files get them too.

use crate::profile::Plan;
use crate::results::StrategyResult;

/// Share of the pre-trigger success rate a second needs to count as recovered.
pub const RECOVERED_SHARE: f64 = 0.9;

/// The span of the profile's phases: from the start of the first to the end of the last,
/// seconds since a strategy's start. `None` without phases.
pub fn trigger(plan: &Plan) -> Option<(f64, f64)> {
    let from = plan.phases.iter().map(|p| p.start).min()?;
    let to = plan.phases.iter().map(|p| p.end()).max()?;
    (to > from).then_some((from.as_secs_f64(), to.as_secs_f64()))
}

/// Rows of the schedule (seconds before `end_s`) that offered calls.
fn rows(
    s: &StrategyResult,
    end_s: f64,
) -> impl Iterator<Item = &crate::record::timeline::TimelineRow> {
    s.timeline
        .iter()
        .filter(move |r| (r.t as f64) < end_s && r.offered > 0)
}

/// Attempts sent ÷ calls offered over the seconds that overlap `[from, to)`.
pub fn load_in(s: &StrategyResult, (from, to): (f64, f64), end_s: f64) -> Option<f64> {
    let (mut attempts, mut offered) = (0u64, 0u64);
    for r in rows(s, end_s) {
        let (a, b) = (r.t as f64, r.t as f64 + 1.0);
        if b > from && a < to {
            attempts += r.attempts;
            offered += r.offered;
        }
    }
    (offered > 0).then(|| attempts as f64 / offered as f64)
}

/// How long after the trigger a strategy recovered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Recovery {
    /// Whole seconds after the trigger's end.
    After(u64),
    /// Not before the run ended.
    Never,
}

impl Recovery {
    /// As a value for ranking (never is infinitely late).
    pub fn value(self) -> f64 {
        match self {
            Recovery::After(s) => s as f64,
            Recovery::Never => f64::INFINITY,
        }
    }

    /// As a table cell.
    pub fn text(self) -> String {
        match self {
            Recovery::After(s) => format!("{s} s"),
            Recovery::Never => "never".into(),
        }
    }
}

/// When the strategy's success came back after the trigger `(from, to)`: the first second
/// from the trigger's end on after which every second's success is at least
/// [`RECOVERED_SHARE`] of the success before the trigger. `None` when there is no second
/// before the trigger or after it to judge by.
pub fn recovery(s: &StrategyResult, (from, to): (f64, f64), end_s: f64) -> Option<Recovery> {
    let before: Vec<_> = rows(s, end_s)
        .filter(|r| (r.t as f64) + 1.0 <= from)
        .collect();
    let offered: u64 = before.iter().map(|r| r.offered).sum();
    if offered == 0 {
        return None;
    }
    let ok: u64 = before.iter().map(|r| r.succeeded).sum();
    let bar = RECOVERED_SHARE * ok as f64 / offered as f64;
    let after: Vec<_> = rows(s, end_s)
        .filter(|r| r.t as f64 >= to.floor())
        .collect();
    if after.is_empty() {
        return None;
    }
    let good =
        |r: &&crate::record::timeline::TimelineRow| r.succeeded as f64 >= bar * r.offered as f64;
    // The last second that falls short; recovery starts after it.
    match after.iter().rposition(|r| !good(r)) {
        None => Some(Recovery::After(0)),
        Some(i) if i + 1 == after.len() => Some(Recovery::Never),
        Some(i) => {
            let back = after[i + 1].t as f64;
            Some(Recovery::After((back - to).max(0.0).ceil() as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::timeline::TimelineRow;

    fn strategy(rows: &[(u64, u64, u64)]) -> StrategyResult {
        let json = include_str!("../../tests/fixtures/run-a.json");
        let mut results: crate::results::Results = serde_json::from_str(json).unwrap();
        let mut s = results.strategies.remove(0);
        s.timeline = rows
            .iter()
            .map(|&(t, succeeded, attempts)| TimelineRow {
                t,
                offered: 10,
                dropped: 0,
                succeeded,
                failed: 10 - succeeded,
                attempts,
                p50_ms: None,
                p99_ms: None,
                tokens: None,
                breaker: None,
            })
            .collect();
        s
    }

    #[test]
    fn recovery_is_counted_from_the_end_of_the_trigger() {
        let healthy = strategy(&[
            (0, 10, 10),
            (1, 10, 10),
            (2, 0, 30),
            (3, 2, 25),
            (4, 10, 10),
            (5, 10, 10),
        ]);
        assert_eq!(
            recovery(&healthy, (2.0, 3.0), 6.0),
            Some(Recovery::After(1))
        );
        assert_eq!(
            recovery(&healthy, (2.0, 4.0), 6.0),
            Some(Recovery::After(0))
        );
        let storm = strategy(&[
            (0, 10, 10),
            (1, 10, 10),
            (2, 0, 30),
            (3, 0, 30),
            (4, 9, 30),
            (5, 1, 30),
        ]);
        assert_eq!(recovery(&storm, (2.0, 3.0), 6.0), Some(Recovery::Never));
        assert_eq!(
            recovery(&storm, (0.0, 3.0), 6.0),
            None,
            "nothing before the trigger"
        );
        let load = load_in(&storm, (2.0, 3.5), 6.0).unwrap();
        assert!((load - 3.0).abs() < 1e-9, "{load}");
        assert_eq!(load_in(&storm, (2.0, 3.0), 6.0), Some(3.0));
        assert_eq!(Recovery::Never.text(), "never");
    }
}
