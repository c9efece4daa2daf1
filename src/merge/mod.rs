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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod check;

use crate::backend::timeline::BackendSecond;
use crate::backend::{BackendStats, ReplicaStats};
use crate::record::histogram::Hist;
use crate::record::hlog;
use crate::record::timeline::{IntervalHist, TimelineRow};
use crate::results::figures::{goodput, lag};
use crate::results::{
    Amplification, Attempts, BreakerFigures, Counts, FanOutFigures, Generator, Histograms,
    Latencies, MergedShard, Results, Shard, StrategyResult, StreamFigures,
};

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

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

fn add_maps<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

/// The sum of the histograms `text` picks from each part; an error names a broken one.
fn merged_hist<'a>(
    parts: &[(&'a StrategyResult, &[IntervalHist])],
    which: &str,
    text: impl Fn(&'a StrategyResult) -> Option<&'a str>,
) -> Result<Option<Hist>, String> {
    let mut sum = Hist::new();
    let mut any = false;
    for (s, _) in parts {
        // A shard may lack an optional histogram (no sub-call of its ended): it adds nothing.
        let Some(t) = text(s) else {
            continue;
        };
        let h = Hist::decode(t)
            .map_err(|e| format!("strategy `{}`: histograms.{which}: {e}", s.name))?;
        sum.add(&h);
        any = true;
    }
    Ok(any.then_some(sum))
}

fn merge_strategy(
    parts: &[(&StrategyResult, &[IntervalHist])],
    shared_target: bool,
) -> Result<StrategyResult, String> {
    let first = parts[0].0;
    let mut counts = Counts::default();
    let mut status = BTreeMap::new();
    let mut attempts = Attempts::default();
    let mut good = 0u64;
    // How late each shard's last send was: achieved = sent / (window + late).
    let mut late = 0.0f64;
    for (s, _) in parts {
        let c = &s.counts;
        counts.offered += c.offered;
        counts.sent += c.sent;
        counts.succeeded += c.succeeded;
        counts.failed += c.failed;
        counts.dropped += c.dropped;
        counts.unfinished += c.unfinished;
        add_maps(&mut status, &s.status);
        let a = &s.attempts;
        attempts.total += a.total;
        attempts.retries += a.retries;
        attempts.hedges += a.hedges;
        attempts.hedges_won += a.hedges_won;
        attempts.hedges_cancelled += a.hedges_cancelled;
        attempts.pushback_waits += a.pushback_waits;
        attempts.rejected_locally += a.rejected_locally;
        attempts.transparent += a.transparent;
        attempts.not_processed.refused += a.not_processed.refused;
        attempts.not_processed.goaway += a.not_processed.goaway;
        attempts.not_processed.unsent += a.not_processed.unsent;
        add_maps(&mut attempts.per_call, &a.per_call);
        add_maps(&mut attempts.status, &a.status);
        add_maps(&mut attempts.retry_denied, &a.retry_denied);
        // results.json keeps goodput as a fraction of the calls offered: the count is exact.
        good += (s.goodput.fraction * c.offered as f64).round() as u64;
        if s.generator.achieved_rate > 0.0 {
            late = late.max(c.sent as f64 / s.generator.achieved_rate - s.duration_s);
        }
    }
    let e2e = merged_hist(parts, "e2e", |s| Some(&s.histograms.e2e))?.unwrap_or_default();
    let e2e_ok = merged_hist(parts, "e2e_ok", |s| Some(&s.histograms.e2e_ok))?.unwrap_or_default();
    let attempt =
        merged_hist(parts, "attempt", |s| Some(&s.histograms.attempt))?.unwrap_or_default();
    let lag_hist = merged_hist(parts, "lag", |s| Some(&s.histograms.lag))?.unwrap_or_default();
    // Each shard's own sends: the distribution of every generator's interval error; none
    // when a shard's file predates it (the figure would cover only some shards).
    let interval_error = if parts
        .iter()
        .all(|(s, _)| s.histograms.interval_error.is_some())
    {
        merged_hist(parts, "interval_error", |s| {
            s.histograms.interval_error.as_deref()
        })?
    } else {
        None
    };
    let sub_call = merged_hist(parts, "sub_call", |s| s.histograms.sub_call.as_deref())?;
    let duration_s = parts.iter().map(|(s, _)| s.duration_s).fold(0.0, f64::max);
    let (timeline, intervals) = merge_timelines(parts)?;
    let backend = merge_backend(parts, shared_target);
    let per_sent = |n: u64| {
        if counts.sent > 0 {
            n as f64 / counts.sent as f64
        } else {
            0.0
        }
    };
    let stream = parts[0].0.stream.map(|_| {
        let mut f = StreamFigures::default();
        for (s, _) in parts {
            if let Some(x) = s.stream {
                f.messages += x.messages;
                f.failed_after_commit += x.failed_after_commit;
                f.messages_before_failure += x.messages_before_failure;
            }
        }
        f
    });
    let fan_out = parts.iter().any(|(s, _)| s.fan_out.is_some()).then(|| {
        let mut f = FanOutFigures::default();
        for (s, _) in parts {
            if let Some(x) = &s.fan_out {
                f.sub_calls += x.sub_calls;
                add_maps(&mut f.status, &x.status);
            }
        }
        f.latency_ms = sub_call.as_ref().and_then(Hist::summary);
        f
    });
    let breaker = parts.iter().any(|(s, _)| s.breaker.is_some()).then(|| {
        let mut b = BreakerFigures::default();
        for (s, _) in parts {
            if let Some(x) = &s.breaker {
                b.short_circuited += x.short_circuited;
                b.fallback += x.fallback;
                b.opened += x.opened;
                b.transitions.extend(x.transitions.iter().copied());
            }
        }
        b.transitions.sort_by(|x, y| x.at_s.total_cmp(&y.at_s));
        b
    });
    Ok(StrategyResult {
        // A gap in any shard's figures is the merged figures' gap.
        backend_gap: parts.iter().find_map(|(s, _)| s.backend_gap),
        name: first.name.clone(),
        partial: parts.iter().any(|(s, _)| s.partial),
        start_ms: parts.iter().map(|(s, _)| s.start_ms).min().unwrap_or(0),
        duration_s,
        status,
        amplification: Amplification {
            client: per_sent(attempts.total),
            backend: backend.as_ref().map(|b| per_sent(b.received)),
        },
        attempts,
        latency_ms: Latencies {
            e2e: e2e.summary(),
            e2e_ok: e2e_ok.summary(),
            attempt: attempt.summary(),
        },
        goodput: goodput(good, counts.offered, duration_s),
        counts,
        generator: Generator {
            lag_ms: lag(&lag_hist),
            interval_error_ms: interval_error.as_ref().map(lag),
            offered_rate: rate(counts.offered, duration_s),
            achieved_rate: rate(counts.sent, duration_s + late.max(0.0)),
        },
        histograms: Histograms {
            e2e: e2e.encode(),
            e2e_ok: e2e_ok.encode(),
            attempt: attempt.encode(),
            lag: lag_hist.encode(),
            interval_error: interval_error.as_ref().map(Hist::encode),
            sub_call: sub_call.as_ref().map(Hist::encode),
        },
        timeline,
        backend,
        stream,
        fan_out,
        breaker,
        intervals,
    })
}

/// Timelines summed second by second; each second's percentiles from the shards' histograms
/// of that second added together. One second's histogram is decoded at a time, so memory
/// holds the shards' compressed seconds and one histogram, whatever the run's length.
fn merge_timelines(
    parts: &[(&StrategyResult, &[IntervalHist])],
) -> Result<(Vec<TimelineRow>, Vec<IntervalHist>), String> {
    let mut rows: BTreeMap<u64, TimelineRow> = BTreeMap::new();
    for (s, _) in parts {
        for r in &s.timeline {
            let row = rows.entry(r.t).or_insert_with(|| TimelineRow {
                t: r.t,
                offered: 0,
                dropped: 0,
                succeeded: 0,
                failed: 0,
                attempts: 0,
                p50_ms: None,
                p99_ms: None,
                tokens: None,
                breaker: None,
            });
            row.offered += r.offered;
            row.dropped += r.dropped;
            row.succeeded += r.succeeded;
            row.failed += r.failed;
            row.attempts += r.attempts;
        }
    }
    let mut seconds: BTreeMap<u64, Vec<(&str, &[u8])>> = BTreeMap::new();
    for (s, iv) in parts {
        for i in *iv {
            seconds
                .entry(i.t)
                .or_default()
                .push((s.name.as_str(), &i.bytes));
        }
    }
    let mut intervals = Vec::with_capacity(seconds.len());
    for (t, shards) in seconds {
        let mut h = Hist::new();
        for (name, bytes) in shards {
            let one = Hist::from_bytes(bytes)
                .map_err(|e| format!("strategy `{name}`: .hlog second {t}: {e}"))?;
            h.add(&one);
        }
        if let (Some(row), Some(summary)) = (rows.get_mut(&t), h.summary()) {
            row.p50_ms = Some(summary.p50);
            row.p99_ms = Some(summary.p99);
        }
        intervals.push(IntervalHist {
            t,
            bytes: h.to_bytes(),
        });
    }
    Ok((rows.into_values().collect(), intervals))
}

fn merge_backend(
    parts: &[(&StrategyResult, &[IntervalHist])],
    shared_target: bool,
) -> Option<BackendStats> {
    let all: Vec<&BackendStats> = parts
        .iter()
        .map(|(s, _)| s.backend.as_ref())
        .collect::<Option<_>>()?;
    if shared_target {
        // One backend, read by every shard: the last reader saw the most.
        return all.into_iter().max_by_key(|b| b.received).cloned();
    }
    let mut sum = BackendStats::default();
    let mut replicas: Vec<ReplicaStats> = Vec::new();
    let mut by_name: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut seconds: BTreeMap<u64, BackendSecond> = BTreeMap::new();
    for b in all {
        sum.received += b.received;
        sum.executed += b.executed;
        sum.rejected += b.rejected;
        sum.wasted += b.wasted;
        sum.duplicate_side_effects += b.duplicate_side_effects;
        sum.queue_high_water = sum.queue_high_water.max(b.queue_high_water);
        for r in &b.replicas {
            // By name through an index: linear in the replicas.
            match by_name.get(r.name.as_str()) {
                Some(&i) => {
                    let x: &mut ReplicaStats = &mut replicas[i];
                    x.received += r.received;
                    x.executed += r.executed;
                    x.rejected += r.rejected;
                    x.wasted += r.wasted;
                }
                None => {
                    by_name.insert(&r.name, replicas.len());
                    replicas.push(r.clone());
                }
            }
        }
        for sec in &b.timeline {
            let row = seconds.entry(sec.t).or_insert_with(|| BackendSecond {
                t: sec.t,
                ..BackendSecond::default()
            });
            row.received += sec.received;
            row.executed += sec.executed;
            row.rejected += sec.rejected;
            row.queue_max = row.queue_max.max(sec.queue_max);
            row.in_service_max += sec.in_service_max;
        }
    }
    sum.replicas = replicas;
    sum.timeline = seconds.into_values().collect();
    Some(sum)
}
