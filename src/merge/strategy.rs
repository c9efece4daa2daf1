//! One strategy's results from every shard's, summed: counts and status maps added,
//! histograms added as HdrHistograms and every figure recomputed from them, timelines second by
//! second, backend figures summed (embedded) or the last reader's (one shared target).

use std::collections::BTreeMap;

use crate::backend::timeline::BackendSecond;
use crate::backend::{BackendStats, ReplicaStats};
use crate::record::histogram::Hist;
use crate::record::timeline::{IntervalHist, TimelineRow};
use crate::results::figures::{goodput, lag};
use crate::results::{
    Amplification, Attempts, BreakerFigures, Counts, FanOutFigures, Generator, Histograms,
    Latencies, StrategyResult, StreamFigures,
};

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

pub(super) fn merge_strategy(
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
        attempts.slot_waits += a.slot_waits;
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
    // A gap in any shard's figures is the merged figures' gap.
    let backend_gap = parts.iter().find_map(|(s, _)| s.backend_gap);
    Ok(StrategyResult {
        backend_gap,
        name: first.name.clone(),
        partial: parts.iter().any(|(s, _)| s.partial),
        start_ms: parts.iter().map(|(s, _)| s.start_ms).min().unwrap_or(0),
        duration_s,
        status,
        amplification: Amplification {
            client: per_sent(attempts.total),
            // As the run's rule: a restarted target's figures are another process's, over
            // another span, so no ratio of these calls (nor when any shard's are missing).
            backend: backend
                .as_ref()
                .filter(|_| backend_gap.is_none())
                .map(|b| per_sent(b.received)),
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
        sum.add_counts(b);
        sum.refused_at_limit += b.refused_at_limit;
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
