//! `resilbench merge`: the results of a sharded run's shards, put together into one ordinary
//! `results.json` without losing precision.
//!
//! Counts and status maps are summed; histograms (end-to-end, successful, per attempt, lag, fan-out
//! sub-calls, and each second's end-to-end histogram from the `.hlog` files) are added as
//! HdrHistograms; every derived figure (percentiles, rates, amplification, goodput) is
//! recomputed from the merged data, never averaged. Timelines line up by second since the
//! strategy's start, which `--start-at` makes the same wall-clock second on every shard.
//!
//! What does not add up is said plainly: a throttle's tokens and a breaker's state are per
//! shard (each shard is its own client), so merged timelines carry neither, and a breaker's
//! transitions are every shard's, in time order. Shards that ran against one shared `--target`
//! each read that target's own figures, so the merged backend figures are those of the shard
//! that read the most (the last to finish), not a sum; embedded backends (one per shard) are
//! summed.

use std::path::{Path, PathBuf};

pub mod check;
mod strategy;

use strategy::merge_strategy;

use crate::record::hlog;
use crate::record::timeline::IntervalHist;
use crate::results::{MergedShard, Results, Shard, StrategyResult};

/// One shard's results, as read from its run folder.
pub struct ShardRun {
    /// The path as given.
    pub file: String,
    /// Its results.
    pub results: Results,
    /// Per strategy, its per-second histograms from the `.hlog` beside the results.
    pub intervals: Vec<Vec<IntervalHist>>,
}

impl ShardRun {
    /// Reads `path` (a `results.json`, or a run folder holding one) and its `.hlog` files,
    /// and checks them ([`check`]): a missing, truncated or corrupt `.hlog`, counts that do
    /// not add up, or a shard that offered other than its schedule gives it, is refused,
    /// naming the file.
    pub fn read(path: &Path) -> Result<Self, String> {
        let file = if path.is_dir() {
            path.join("results.json")
        } else {
            path.to_path_buf()
        };
        let results = Results::read(&file).map_err(|e| e.to_string())?;
        let shown = file.display().to_string();
        let dir = file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let names = hlog::file_names(results.strategies.iter().map(|s| s.name.as_str()));
        let mut intervals = Vec::with_capacity(names.len());
        for (s, name) in results.strategies.iter().zip(&names) {
            let hlog_path = dir.join(name);
            let at = hlog_path.display().to_string();
            let bytes = crate::results::bounds::read_bounded(&hlog_path)
                .map_err(|e| format!("{at}: {e}"))?;
            let read = hlog::read(&bytes).map_err(|e| format!("{at}: {e}"))?;
            check::strategy(s, &read, &at).map_err(|e| {
                if e.starts_with(&at) {
                    e
                } else {
                    format!("{shown}: {e}")
                }
            })?;
            intervals.push(read);
        }
        if let Some(shard) = results.shard {
            check::offered(&results, shard, &shown)?;
        }
        Ok(Self {
            file: path.display().to_string(),
            results,
            intervals,
        })
    }
}

/// Merges the shards of one run; refuses, with the reason, shards of different profiles,
/// seeds, shard counts or strategies, and a missing or duplicated shard.
pub fn merge(mut runs: Vec<ShardRun>) -> Result<Results, String> {
    let Some(first) = runs.first() else {
        return Err("no results to merge".into());
    };
    let count = shard_of(first)?.count;
    for run in &runs {
        let shard = shard_of(run)?;
        if shard.count == 0 || shard.index >= shard.count {
            return Err(format!("{}: shard {shard} is not a valid shard", run.file));
        }
        if shard.count != count {
            return Err(format!(
                "{} is shard {shard} but {} is of {count} shards: shards of different runs",
                run.file, first.file
            ));
        }
    }
    runs.sort_by_key(|r| r.results.shard.map_or(0, |s| s.index));
    for pair in runs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if shard_of(a)?.index == shard_of(b)?.index {
            return Err(format!(
                "shard {} is given twice: {} and {}",
                shard_of(a)?,
                a.file,
                b.file
            ));
        }
    }
    let present: Vec<u32> = runs
        .iter()
        .filter_map(|r| r.results.shard.map(|s| s.index))
        .collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !present.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing shard {}", missing.join(", ")));
    }
    let base = &runs[0];
    for run in &runs[1..] {
        if run.results.environment.clock != base.results.environment.clock {
            return Err(format!(
                "{} ran on a {} clock, {} on a {} clock",
                base.file, base.results.environment.clock, run.file, run.results.environment.clock
            ));
        }
        if run.results.profile != base.results.profile {
            let what = |r: &Results| r.profile.get("seed").cloned();
            let reason = if what(&run.results) != what(&base.results) {
                "different seeds"
            } else {
                "different profiles"
            };
            return Err(format!(
                "{} and {} are runs of {reason}: shards must run the same profile",
                base.file, run.file
            ));
        }
        if run.results.environment.target != base.results.environment.target {
            return Err(format!(
                "{} ran against {}, {} against {}: shards must share a target",
                base.file,
                base.results.environment.target,
                run.file,
                run.results.environment.target
            ));
        }
        // Equal profiles name the same strategies; an interrupted shard may have fewer. On a
        // real clock each strategy's second 0 must be the same wall-clock instant (a virtual
        // run's strategies each start at their own exact zero).
        let real = base.results.environment.clock == "real";
        for (a, b) in base.results.strategies.iter().zip(&run.results.strategies) {
            if real && a.start_ms != b.start_ms {
                return Err(format!(
                    "{} started strategy `{}` at {} ms, {} at {} ms: shards must start at the \
                     same instant (give them all the same --start-at)",
                    base.file, a.name, a.start_ms, run.file, b.start_ms
                ));
            }
        }
    }
    let shared_target = base.results.environment.target != "embedded";
    let strategies_n = runs
        .iter()
        .map(|r| r.results.strategies.len())
        .max()
        .unwrap_or(0);
    let mut strategies = Vec::with_capacity(strategies_n);
    for i in 0..strategies_n {
        let parts: Vec<(&StrategyResult, &[IntervalHist])> = runs
            .iter()
            .filter_map(|r| {
                let s = r.results.strategies.get(i)?;
                Some((s, r.intervals.get(i).map_or(&[][..], Vec::as_slice)))
            })
            .collect();
        let mut merged = merge_strategy(&parts, shared_target)?;
        // A strategy some shards never ran covers only part of the schedule.
        merged.partial |= parts.len() < runs.len();
        strategies.push(merged);
    }
    let partial = runs.iter().any(|r| r.results.partial) || strategies.iter().any(|s| s.partial);
    let mut environment = base.results.environment.clone();
    environment.host = runs
        .iter()
        .map(|r| r.results.environment.host.as_str())
        .collect::<Vec<_>>()
        .join(",");
    environment.start_time = runs
        .iter()
        .map(|r| r.results.environment.start_time.clone())
        .min()
        .unwrap_or_default();
    // The merged figures' own trust checks, then what only a shard could say (once each).
    // The shards' machines: the worst wake-up floor among them.
    environment.timer = runs
        .iter()
        .filter_map(|r| r.results.environment.timer)
        .max_by(|a, b| a.lag_floor_ms().total_cmp(&b.lag_floor_ms()));
    let mut warnings =
        crate::results::trust::warnings(&strategies, partial, environment.timer.as_ref());
    for r in &runs {
        for w in &r.results.warnings {
            let w = format!("shard {}: {w}", shard_of(r)?);
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }
    let generator = crate::results::figures::overall_generator(&strategies);
    Ok(Results {
        schema: base.results.schema.clone(),
        profile: base.results.profile.clone(),
        environment,
        partial,
        stopped: runs.iter().find_map(|r| r.results.stopped),
        generator,
        warnings,
        merged_from: runs
            .iter()
            .map(|r| {
                Ok(MergedShard {
                    shard: shard_of(r)?,
                    file: r.file.clone(),
                    host: r.results.environment.host.clone(),
                    start_time: r.results.environment.start_time.clone(),
                })
            })
            .collect::<Result<_, String>>()?,
        strategies,
        shard: None,
    })
}

fn shard_of(run: &ShardRun) -> Result<Shard, String> {
    run.results.shard.ok_or_else(|| {
        format!(
            "{} is not a shard (it was not run with --shard K/N)",
            run.file
        )
    })
}
