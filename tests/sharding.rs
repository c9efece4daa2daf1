//! Sharded runs and `merge`: the shards' union is exactly the unsharded schedule, and the
//! merge loses nothing; mismatched or incomplete shard sets are refused with the reason.

use resilbench::merge::{ShardRun, merge};
use resilbench::record::histogram::Hist;
use resilbench::results::{Results, Shard};

use crate::common::{plan, resilbench, run_virtual, run_virtual_shard, stderr};

/// Retries without budgets or throttles (no state shared between calls) against a backend
/// without shared capacity: each call's fate depends on its id alone, so sharding changes
/// nothing.
const PROFILE: &str = r#"
seed = 11
[load]
arrival = "poisson"
rate = 500
duration = "6s"
warmup = "1s"
deadline = "300ms"
[backend]
latency = { dist = "lognormal", median = "3ms", p99 = "60ms" }
errors = { UNAVAILABLE = 0.05 }
[[strategies]]
name = "plain"
[[strategies]]
name = "retried"
[[strategies.layers]]
kind = "retry"
max_attempts = 3
[[strategies.layers]]
kind = "timeout"
timeout = "40ms"
"#;

fn shard_run(r: Results, k: u32) -> ShardRun {
    let intervals = r.strategies.iter().map(|s| s.intervals.clone()).collect();
    ShardRun {
        file: format!("shard-{k}"),
        results: r,
        intervals,
    }
}

fn values(h: &str) -> Vec<(u64, u64)> {
    Hist::decode(h)
        .unwrap()
        .inner()
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

#[test]
fn three_shards_merged_are_the_unsharded_run() {
    let p = plan(PROFILE);
    let whole = run_virtual(&p);
    let shards: Vec<ShardRun> = (0..3)
        .map(|k| shard_run(run_virtual_shard(&p, Some(Shard { index: k, count: 3 })), k))
        .collect();
    // Each shard sent about a third.
    for s in &shards {
        let offered = s.results.strategies[0].counts.offered as f64;
        let all = whole.strategies[0].counts.offered as f64;
        assert!(
            (offered / all - 1.0 / 3.0).abs() < 0.01,
            "{offered} of {all}"
        );
    }
    let merged = merge(shards).unwrap();
    assert_eq!(merged.merged_from.len(), 3);
    assert!(merged.shard.is_none());
    for (w, m) in whole.strategies.iter().zip(&merged.strategies) {
        assert_eq!(w.counts, m.counts, "{}", w.name);
        assert_eq!(w.status, m.status, "{}", w.name);
        assert_eq!(w.attempts, m.attempts, "{}", w.name);
        for (a, b) in [
            (&w.histograms.e2e, &m.histograms.e2e),
            (&w.histograms.e2e_ok, &m.histograms.e2e_ok),
            (&w.histograms.attempt, &m.histograms.attempt),
        ] {
            assert_eq!(values(a), values(b), "{}", w.name);
        }
        assert_eq!(w.latency_ms, m.latency_ms, "{}", w.name);
        assert_eq!(w.goodput, m.goodput, "{}", w.name);
        assert_eq!(w.amplification, m.amplification, "{}", w.name);
        // Second by second, percentiles included (from the per-second histograms).
        assert_eq!(w.timeline, m.timeline, "{}", w.name);
        let (wb, mb) = (w.backend.as_ref().unwrap(), m.backend.as_ref().unwrap());
        assert_eq!(
            (wb.received, wb.executed, wb.wasted),
            (mb.received, mb.executed, mb.wasted)
        );
    }
}

/// An interleaved run sharded: each shard gives its calls to the strategies by the same keyed
/// draw, merge checks each strategy's share against the schedule, and the shards merged are
/// the unsharded interleaved run.
#[test]
fn interleaved_shards_merged_are_the_unsharded_interleaved_run() {
    let p = plan(&PROFILE.replace("[backend]", "order = \"interleaved\"\n[backend]"));
    let whole = run_virtual(&p);
    let shards: Vec<ShardRun> = (0..3)
        .map(|k| shard_run(run_virtual_shard(&p, Some(Shard { index: k, count: 3 })), k))
        .collect();
    let merged = merge(shards).unwrap();
    for (w, m) in whole.strategies.iter().zip(&merged.strategies) {
        assert_eq!(w.counts, m.counts, "{}", w.name);
        assert_eq!(w.status, m.status, "{}", w.name);
        assert_eq!(w.attempts, m.attempts, "{}", w.name);
        assert_eq!(values(&w.histograms.e2e), values(&m.histograms.e2e));
        assert_eq!(w.timeline, m.timeline, "{}", w.name);
    }
    let offered: u64 = whole.strategies.iter().map(|s| s.counts.offered).sum();
    assert!(
        whole.strategies[0].counts.offered < offered * 6 / 10,
        "split between the two"
    );
}

#[test]
fn merge_refuses_incomplete_and_mismatched_shards() {
    let p = plan(
        PROFILE
            .replace("duration = \"6s\"", "duration = \"2s\"")
            .as_str(),
    );
    let shard =
        |k: u32, n: u32| shard_run(run_virtual_shard(&p, Some(Shard { index: k, count: n })), k);
    let refused = |runs: Vec<ShardRun>| merge(runs).expect_err("refused");
    assert_eq!(refused(vec![shard(0, 3), shard(2, 3)]), "missing shard 1/3");
    let twice = refused(vec![shard(0, 2), shard(1, 2), shard(1, 2)]);
    assert!(twice.starts_with("shard 1/2 is given twice"), "{twice}");
    let counts = refused(vec![shard(0, 2), shard(1, 3)]);
    assert!(counts.contains("of 2 shards"), "{counts}");
    let mut other_seed = p.clone();
    other_seed.seed = 12;
    let other = shard_run(
        run_virtual_shard(&other_seed, Some(Shard { index: 1, count: 2 })),
        1,
    );
    let seeds = refused(vec![shard(0, 2), other]);
    assert!(seeds.contains("different seeds"), "{seeds}");
    let whole = shard_run(run_virtual(&p), 0);
    let not = refused(vec![whole]);
    assert!(not.contains("not a shard"), "{not}");
    // Shards that did not start at the same instant do not line up.
    let real = |mut r: ShardRun| {
        r.results.environment.clock = "real".into();
        r
    };
    let mut late = real(shard(1, 2));
    late.results.strategies[0].start_ms += 1000;
    let when = refused(vec![real(shard(0, 2)), late]);
    assert!(when.contains("same --start-at"), "{when}");
    let mut elsewhere = shard(1, 2);
    elsewhere.results.environment.target = "10.0.0.1:50051".into();
    let target = refused(vec![shard(0, 2), elsewhere]);
    assert!(target.contains("must share a target"), "{target}");
}

/// A shard interrupted before its last strategy: that strategy is merged from the other
/// shards and marked partial, as is the run.
#[test]
fn a_strategy_some_shards_did_not_run_is_partial() {
    let p = plan(
        PROFILE
            .replace("duration = \"6s\"", "duration = \"2s\"")
            .as_str(),
    );
    let shard = |k: u32| shard_run(run_virtual_shard(&p, Some(Shard { index: k, count: 2 })), k);
    let mut cut = shard(1);
    cut.results.strategies.pop();
    cut.intervals.pop();
    cut.results.partial = true;
    let merged = merge(vec![shard(0), cut]).unwrap();
    assert!(merged.partial);
    assert!(!merged.strategies[0].partial);
    assert!(merged.strategies[1].partial);
    assert!(
        merged
            .warnings
            .iter()
            .any(|w| w.contains("interrupted") || w.contains("partial")),
        "{:?}",
        merged.warnings
    );
}

/// A `--start-at` far in the past (here Unix seconds given as milliseconds) is refused: it
/// would fire the whole overdue schedule at once.
#[test]
fn a_start_time_in_the_past_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), PROFILE).unwrap();
    let out = resilbench(
        &[
            "run",
            "p.toml",
            "--shard",
            "0/2",
            "--start-at",
            "1764000000",
            "--quiet",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("in the past (Unix seconds given as milliseconds?)"),
        "{err}"
    );
}

/// The command line: `--shard` is checked, and `merge` says why it refuses (exit 2).
#[test]
fn shard_and_merge_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        PROFILE.replace("\"6s\"", "\"2s\""),
    )
    .unwrap();
    let bad = resilbench(
        &["run", "p.toml", "--clock", "virtual", "--shard", "3/3"],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("expected K/N"), "{}", stderr(&bad));
    for k in 0..2 {
        let shard = format!("{k}/2");
        let out_dir = format!("s{k}");
        let out = resilbench(
            &[
                "run", "p.toml", "--clock", "virtual", "--quiet", "--shard", &shard, "--out",
                &out_dir,
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = resilbench(&["merge", "s0", "--out", "m"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing shard 1/2"),
        "{}",
        stderr(&out)
    );
    let out = resilbench(
        &["merge", "s0", "s1/results.json", "--out", "m"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let merged = Results::read(&dir.path().join("m/results.json")).unwrap();
    assert_eq!(merged.merged_from.len(), 2);
    assert!(dir.path().join("m/report.html").exists());
    assert!(dir.path().join("m/retried.hlog").exists());
    // An ordinary results file: compare and check read it as they read any run.
    let out = resilbench(&["compare", "m/results.json", "m/results.json"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(
        dir.path().join("gate.toml"),
        "[limits]\nsuccess_rate = \">= 50%\"\n\"counts.dropped\" = \"== 0\"\n",
    )
    .unwrap();
    let out = resilbench(
        &["check", "m/results.json", "--gate", "gate.toml"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}
