//! What `merge` checks before it adds shards together: that each shard's files are whole,
//! agree with each other, and could have come from the run they claim to be part of.
//!
//! A shard is untrusted input (it came from another host, or was copied by hand), and a
//! merge that adds what it is given would turn an edit into a result: a copy of shard 0
//! relabelled as shard 1 counted its calls twice, `offered = 1e15` merged, and a missing or
//! corrupt `.hlog` left every merged second without percentiles, silently. So a shard is
//! refused, naming its file, when
//! - its `.hlog` file for a strategy is missing, does not parse, or does not hold one
//!   histogram per second of the strategy's timeline, each counting that second's completed
//!   calls (`succeeded + failed`);
//! - its counts do not add up: `sent + dropped = offered`, `succeeded + failed + unfinished =
//!   sent`, the status counts and the end-to-end histogram count `succeeded + failed`, and
//!   the timeline's seconds sum to the counts;
//! - it offered other than what the schedule gives its index: call *i* of the schedule is
//!   shard *i mod N*'s, and the measured calls are the schedule's calls from the end of the
//!   warmup on, so shard *k* of *N* offers exactly a number the plan fixes (fewer if it was
//!   interrupted). The schedule is walked to count them, up to [`MAX_SCHEDULE`] calls.

use crate::driver::Schedule;
use crate::profile::Plan;
use crate::record::histogram::Hist;
use crate::record::timeline::IntervalHist;
use crate::results::{Results, Shard, StrategyResult};

/// The longest schedule walked to check what each shard offered (a plan of more calls is
/// refused: no run of this size could be merged in memory anyway).
pub const MAX_SCHEDULE: u64 = 2_000_000_000;

/// Checks one strategy's figures of a shard against themselves and its `.hlog`
/// (`hlog_name`, read into `intervals`); the error says what does not add up.
pub fn strategy(
    s: &StrategyResult,
    intervals: &[IntervalHist],
    hlog_name: &str,
) -> Result<(), String> {
    let c = &s.counts;
    let name = &s.name;
    let sum = |a: u64, b: u64| a.checked_add(b);
    let completed = sum(c.succeeded, c.failed);
    if sum(c.sent, c.dropped) != Some(c.offered)
        || completed.and_then(|n| sum(n, c.unfinished)) != Some(c.sent)
    {
        return Err(format!(
            "strategy `{name}`: its counts do not add up (offered {}, sent {}, dropped {}, \
             succeeded {}, failed {}, unfinished {})",
            c.offered, c.sent, c.dropped, c.succeeded, c.failed, c.unfinished
        ));
    }
    let completed = completed.unwrap_or(u64::MAX);
    let statuses = s.status.values().try_fold(0u64, |n, v| n.checked_add(*v));
    if statuses != Some(completed) {
        return Err(format!(
            "strategy `{name}`: its status counts do not add up to the {completed} calls that \
             ended"
        ));
    }
    let e2e = Hist::decode(&s.histograms.e2e)
        .map_err(|e| format!("strategy `{name}`: histograms.e2e: {e}"))?;
    if e2e.count() != completed {
        return Err(format!(
            "strategy `{name}`: its end-to-end histogram counts {} calls, its counts {completed}",
            e2e.count()
        ));
    }
    let mut rows = (0u64, 0u64, 0u64, 0u64);
    for r in &s.timeline {
        rows.0 = rows.0.saturating_add(r.offered);
        rows.1 = rows.1.saturating_add(r.dropped);
        rows.2 = rows.2.saturating_add(r.succeeded);
        rows.3 = rows.3.saturating_add(r.failed);
    }
    if rows != (c.offered, c.dropped, c.succeeded, c.failed) {
        return Err(format!(
            "strategy `{name}`: its timeline's seconds do not add up to its counts"
        ));
    }
    if intervals.len() != s.timeline.len() {
        return Err(format!(
            "{hlog_name}: {} histograms for the {} seconds of strategy `{name}`'s timeline",
            intervals.len(),
            s.timeline.len()
        ));
    }
    for (row, interval) in s.timeline.iter().zip(intervals) {
        let h = Hist::from_bytes(&interval.bytes)
            .map_err(|e| format!("{hlog_name}: second {}: {e}", interval.t))?;
        if interval.t != row.t || h.count() != row.succeeded + row.failed {
            return Err(format!(
                "{hlog_name}: second {} counts {} calls; the timeline's second {} ended {}",
                interval.t,
                h.count(),
                row.t,
                row.succeeded + row.failed
            ));
        }
    }
    Ok(())
}

/// The calls the schedule of `plan` gives `shard` in each strategy's measured window, one
/// count per strategy: the calls from the end of the warmup on whose number is the shard's
/// modulo the shard count (all of them each strategy's in turn; interleaved, each one the
/// strategy its keyed draw gives it).
pub fn offered_by_schedule(plan: &Plan, shard: Shard) -> Result<Vec<u64>, String> {
    let planned: f64 = plan
        .load
        .segments(&plan.phases)
        .windows(2)
        .map(|w| w[0].1 * (w[1].0 - w[0].0).as_secs_f64())
        .sum::<f64>()
        + plan
            .load
            .segments(&plan.phases)
            .last()
            .map_or(0.0, |(at, rate)| {
                rate * plan.load.duration.saturating_sub(*at).as_secs_f64()
            });
    // Poisson arrivals stray from the rate: room for it before the walk is refused.
    if planned > MAX_SCHEDULE as f64 * 0.9 {
        return Err(format!(
            "its profile plans about {planned:.0} calls per strategy; merge checks shards \
             against schedules of at most {MAX_SCHEDULE}"
        ));
    }
    let lanes = plan.strategies.len();
    let interleaved = plan.load.order == crate::profile::Order::Interleaved;
    let (mut before, mut total) = (0u64, 0u64);
    let mut each = vec![0u64; lanes];
    for (id, offset) in Schedule::new(&plan.load, &plan.phases, plan.seed).enumerate() {
        if offset < plan.load.warmup {
            before += 1;
        } else if interleaved && shard.owns(id as u64) {
            each[crate::driver::order::lane(plan.seed, id as u64, lanes)] += 1;
        }
        total += 1;
        if total > MAX_SCHEDULE {
            return Err(format!(
                "its schedule has more than {MAX_SCHEDULE} calls per strategy"
            ));
        }
    }
    if interleaved {
        return Ok(each);
    }
    Ok(vec![in_class(before, total, shard); lanes])
}

/// How many of the numbers `from..to` are `shard.index` modulo `shard.count`.
fn in_class(from: u64, to: u64, shard: Shard) -> u64 {
    let (k, n) = (u64::from(shard.index), u64::from(shard.count));
    // Numbers below `x` in the class: ⌈(x − k) / n⌉ for x > k.
    let below = |x: u64| if x > k { (x - k).div_ceil(n) } else { 0 };
    below(to) - below(from)
}

/// Checks that each strategy of a shard offered what its schedule gives it (exactly; at most,
/// for a strategy cut short).
pub fn offered(results: &Results, shard: Shard, file: &str) -> Result<(), String> {
    let Some(plan) = results.plan() else {
        // A newer build's profile: its schedule cannot be walked here.
        return Ok(());
    };
    let by_strategy = offered_by_schedule(&plan, shard).map_err(|e| format!("{file}: {e}"))?;
    for s in &results.strategies {
        let Some(i) = plan.strategies.iter().position(|p| p.name == s.name) else {
            continue;
        };
        let expected = by_strategy[i];
        let got = s.counts.offered;
        if got > expected || (got < expected && !s.partial) {
            return Err(format!(
                "{file}: shard {shard} offered {got} calls in strategy `{}`; its schedule gives \
                 shard {shard} {}{expected} (an edited shard index, or a file of another run?)",
                s.name,
                if s.partial { "at most " } else { "exactly " },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_splits_by_class_as_the_driver_splits_calls() {
        for n in 1..6u32 {
            for from in 0..12u64 {
                for to in from..20 {
                    for k in 0..n {
                        let shard = Shard { index: k, count: n };
                        let counted = (from..to).filter(|i| shard.owns(*i)).count() as u64;
                        assert_eq!(in_class(from, to, shard), counted, "{from}..{to} {shard}");
                    }
                }
            }
        }
    }
}
