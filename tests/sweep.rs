//! `resilbench sweep`: every point is exactly the hand-written profile with its values; bad
//! grids are refused before anything runs; a load sweep finds where retries collapse; shards
//! merged are the unsharded sweep; a point is an ordinary run; an interrupted sweep keeps
//! what finished. All on the virtual clock, exact.

use std::path::{Path, PathBuf};

use resilbench::choose::SweepDoc;
use resilbench::profile::{self, Overrides};
use resilbench::results::Results;
use resilbench::runner::ClockMode;
use resilbench::sweep::run::{Options, run};
use resilbench::sweep::{Grid, Spec};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::common::{plan, resilbench, run_virtual, stderr, stdout};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(name)
}

fn sweep(args: &[&str], dir: &Path) -> std::process::Output {
    let mut all = vec!["sweep"];
    all.extend_from_slice(args);
    resilbench(&all, dir)
}

fn doc(dir: &Path) -> SweepDoc {
    SweepDoc::read(&dir.join("sweep.json")).unwrap()
}

/// A results file's JSON with the machine's and the moment's fields blanked.
fn comparable(path: &Path) -> Value {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["environment"]["start_time"] = Value::Null;
    v
}

const MAX_ATTEMPTS: &str = "strategies.unavailable-and-unknown.layers.grpc_retry.max_attempts";

/// The service-config story (profiles/service-config.toml) with one strategy, written by
/// hand: its service config retrying UNAVAILABLE and UNKNOWN `max_attempts` times.
fn hand_written(max_attempts: u32) -> String {
    let text = std::fs::read_to_string(shipped("service-config.toml")).unwrap();
    let head = &text[..text.find("[[strategies]]").unwrap()];
    format!(
        r#"{head}
[[strategies]]
name = "unavailable-and-unknown"
description = "The same, retrying UNAVAILABLE and UNKNOWN."
service_config = '''
{{
  "methodConfig": [{{
    "name": [{{ "service": "resilbench.v1.Backend" }}],
    "retryPolicy": {{
      "maxAttempts": {max_attempts},
      "initialBackoff": "0.1s",
      "backoffMultiplier": 2.0,
      "maxBackoff": "0.3s",
      "retryableStatusCodes": ["UNAVAILABLE", "UNKNOWN"]
    }}
  }}]
}}
'''
"#
    )
}

/// maxAttempts 2 to 5 on the service-config story: each point's plan is the hand-written
/// profile's, and its results are the hand-written run's, figure for figure.
#[test]
fn a_sweep_of_max_attempts_is_the_hand_written_service_configs_point_by_point() {
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped("service-config.toml");
    let vary = format!("{MAX_ATTEMPTS}=2..5");
    let out = sweep(
        &[
            profile.to_str().unwrap(),
            "--vary",
            &vary,
            "--strategy",
            "unavailable-and-unknown",
            "--out",
            "s",
            "-q",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let s = doc(&dir.path().join("s"));
    assert_eq!(s.points.len(), 4);
    for (i, n) in (2..=5u32).enumerate() {
        let point = &s.points[i];
        assert_eq!(point.settings[MAX_ATTEMPTS], Value::from(n));
        let file = dir.path().join("s").join(&point.dir).join("results.json");
        let swept = Results::read(&file).unwrap();
        let expected_plan = plan(&hand_written(n));
        let by_hand = run_virtual(&expected_plan);
        assert_eq!(
            swept.plan().unwrap(),
            expected_plan,
            "maxAttempts {n}: the plans"
        );
        assert_eq!(
            serde_json::to_value(&swept.strategies).unwrap(),
            serde_json::to_value(&by_hand.strategies).unwrap(),
            "maxAttempts {n}: the figures"
        );
        // And what the sweep kept of it is what the results say.
        let c = &point.figures.strategies[0];
        let r = &by_hand.strategies[0];
        assert_eq!(c.get("counts.succeeded"), Some(r.counts.succeeded as f64));
        assert_eq!(c.get("amplification.backend"), r.amplification.backend);
    }
    // The script answers UNAVAILABLE, UNKNOWN, OK: two attempts fail every call, three get
    // every call through with three attempts each.
    let success: Vec<_> = s
        .points
        .iter()
        .map(|p| p.figures.strategies[0].get("success_rate"))
        .collect();
    assert_eq!(success, [Some(0.0), Some(1.0), Some(1.0), Some(1.0)]);
}

/// gRFC A6 refuses maxAttempts 1, so `1..4` is refused before any point runs, naming the
/// point, the key and the rule; above 5 a value runs as 5, and the sweep says so.
#[test]
fn max_attempts_one_is_refused_and_the_a6_cap_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped("service-config.toml");
    let p = profile.to_str().unwrap();
    let vary = format!("{MAX_ATTEMPTS}=1..4");
    let out = sweep(&[p, "--vary", &vary, "--out", "s", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("must be 2 or more (gRFC A6), got 1"), "{e}");
    assert!(e.contains("sweep point 0 of 4"), "{e}");
    assert!(e.contains(&format!("--vary {MAX_ATTEMPTS}=1..4")), "{e}");
    assert!(!dir.path().join("s").exists(), "nothing is written");

    let vary = format!("{MAX_ATTEMPTS}=4..6");
    let out = sweep(&[p, "--vary", &vary, "--dry-run"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("`{MAX_ATTEMPTS} = 6` runs as 5")),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out).lines().count(),
        3,
        "--dry-run lists the points"
    );
}

const TINY: &str = r#"
name = "tiny"
[load]
rate = 10
duration = "2s"
[[strategies]]
name = "retry"
[[strategies.layers]]
kind = "retry"
max_attempts = 2
retry_on = ["UNAVAILABLE"]
backoff = { jitter = "none", base = "10ms", cap = "10ms" }
"#;

/// Bad keys, bad values and ranges, empty grids and bad goals: exit status 2, a message that
/// names what is wrong (and its line, for the file's [sweep]), nothing run.
#[test]
fn bad_keys_ranges_goals_and_empty_grids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.toml"), TINY).unwrap();
    let with_table = format!(
        "{TINY}\n[sweep]\ngoal = [\"success_rate >= 99%\"]\n[sweep.vary]\n\"load.rate\" = \"10..5\"\n"
    );
    std::fs::write(dir.path().join("table.toml"), with_table).unwrap();
    let bad_goal =
        format!("{TINY}\n[sweep]\ngoal = [\"success_rate 99%\"]\n[sweep.vary]\nseed = \"1,2\"\n");
    std::fs::write(dir.path().join("goal.toml"), bad_goal).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["tiny.toml", "--vary", "lod.rate=1,2"],
            "the plan has no `lod`",
        ),
        (
            &["tiny.toml", "--vary", "strategies.other.deadline=1s"],
            "no entry of `strategies` is named `other`",
        ),
        (
            &[
                "tiny.toml",
                "--vary",
                "strategies.retry.layers.retry.max_atempts=2,3",
            ],
            "unknown field `max_atempts`",
        ),
        (
            &["tiny.toml", "--vary", "load.rate=10..5"],
            "ends before it starts",
        ),
        (
            &["tiny.toml", "--vary", "load.rate=1..5 step 0"],
            "step must be above 0",
        ),
        (
            &["tiny.toml", "--vary", "load.duration=1s..5s"],
            "give a step",
        ),
        (
            &[
                "tiny.toml",
                "--vary",
                "strategies.retry.layers.retry.max_attempts=1.5",
            ],
            "not a whole number",
        ),
        (&["tiny.toml", "--vary", "load.rate="], "no values"),
        (&["tiny.toml", "--vary", "load.rate"], "expected KEY=VALUES"),
        (
            &["tiny.toml", "--vary", "load.rate=0,10"],
            "load.rate: expected calls per second",
        ),
        (&["tiny.toml"], "the sweep is empty"),
        (
            &["tiny.toml", "--vary", "seed=1,2", "--goal", "p99 <= x"],
            "is not a limit",
        ),
        (
            &["tiny.toml", "--vary", "seed=1,2", "--strategy", "nope"],
            "no strategy is named `nope`",
        ),
        (&["table.toml"], "table.toml:17:"),
        (&["goal.toml"], "goal.toml:15:"),
    ];
    for (args, want) in cases {
        let mut all = args.to_vec();
        all.extend(["--out", "out", "-q"]);
        let out = sweep(&all, dir.path());
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: expected `{want}` in:\n{e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
        assert!(
            !dir.path().join("out").exists(),
            "{args:?}: nothing written"
        );
    }
}

/// The retry-storm story at three loads: naive retries collapse at a lower load than
/// throttled or budgeted ones, and stay down after the spike; the others come back.
#[test]
fn the_load_sweep_shows_naive_retries_collapsing_first_and_not_recovering() {
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped("retry-storm.toml");
    let out = sweep(
        &[
            profile.to_str().unwrap(),
            "--vary",
            "load.rate=150, 250, 350",
            "--out",
            "s",
            "-q",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let s = doc(&dir.path().join("s"));
    let load = s.load.as_ref().expect("a load sweep");
    let curve = |name: &str| load.curves.iter().find(|c| c.strategy == name).unwrap();
    let naive = curve("naive");
    assert_eq!(naive.collapse_at, Some(250.0), "{naive:?}");
    assert_eq!(naive.recovers_up_to, Some(150.0));
    for p in naive.points.iter().filter(|p| p.load >= 250.0) {
        assert_eq!(p.recovered, Some(false), "naive at {}: {p:?}", p.load);
        assert!(p.after.unwrap() < 0.01, "naive at {}: {p:?}", p.load);
    }
    for name in ["grpc-a6", "budget-10%", "no-retries"] {
        let c = curve(name);
        assert_eq!(c.collapse_at, None, "{c:?}");
        assert_eq!(c.recovers_up_to, Some(350.0), "{c:?}");
        assert!(c.points.iter().all(|p| p.recovered == Some(true)), "{c:?}");
    }
    // Goodput of the throttled retries grows with the load; the naive one's falls to nothing.
    let goodput = |c: &resilbench::choose::load::Curve| -> Vec<f64> {
        c.points.iter().map(|p| p.goodput.unwrap()).collect()
    };
    let a6 = goodput(curve("grpc-a6"));
    assert!(a6[0] < a6[1] && a6[1] < a6[2], "{a6:?}");
    let naive = goodput(naive);
    assert!(naive[1] < 0.5 * a6[1], "{naive:?} {a6:?}");
    let page = std::fs::read_to_string(dir.path().join("s/sweep.html")).unwrap();
    assert!(page.contains("goodput against offered load"));
}

/// Three shards merged are the unsharded sweep: the same points with the same figures, the
/// same frontier and verdict, and each point's results.json the same.
#[test]
fn shards_merged_equal_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped("sweep-retries.toml");
    let p = profile.to_str().unwrap();
    let common = [
        "--duration",
        "30s",
        "--vary",
        "strategies.grpc.layers.grpc_retry.initial_backoff=400ms..1600ms x2",
        "-q",
    ];
    let mut whole = vec![p, "--out", "whole"];
    whole.extend(common);
    let out = sweep(&whole, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let mut shards = Vec::new();
    for k in 0..3 {
        let (shard, name) = (format!("{k}/3"), format!("shard{k}"));
        let mut args = vec![p, "--out", &name, "--shard", &shard];
        args.extend(common);
        let out = sweep(&args, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(doc(&dir.path().join(&name)).shard.unwrap().index, k);
        shards.push(name);
    }
    // Two shards are not the whole: refused.
    let out = resilbench(
        &["merge", "shard0", "shard1", "--out", "merged"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("shard 2/3 is missing"),
        "{}",
        stderr(&out)
    );
    let out = resilbench(
        &[
            "merge", &shards[2], &shards[0], &shards[1], "--out", "merged",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (whole, merged) = (
        doc(&dir.path().join("whole")),
        doc(&dir.path().join("merged")),
    );
    assert_eq!(whole.points.len(), 12);
    assert_eq!(merged.points, whole.points);
    assert_eq!(merged.frontier, whole.frontier);
    assert_eq!(merged.verdict, whole.verdict);
    assert_eq!((merged.partial, merged.shard), (false, None));
    for point in &whole.points {
        let file = |d: &str| dir.path().join(d).join(&point.dir).join("results.json");
        assert_eq!(
            comparable(&file("merged")),
            comparable(&file("whole")),
            "point {}",
            point.index
        );
    }
    assert!(dir.path().join("merged/sweep.html").exists());
    // A second sweep into the same folder is refused unless --force.
    let mut again = vec![p, "--out", "whole"];
    again.extend(common);
    let out = sweep(&again, dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already holds a sweep"),
        "{}",
        stderr(&out)
    );
    again.push("--force");
    let out = sweep(&again, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(doc(&dir.path().join("whole")).points, whole.points);
}

/// A point's folder is an ordinary run folder: report, compare and check read it.
#[test]
fn a_point_is_an_ordinary_run_for_report_compare_and_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.toml"), TINY).unwrap();
    let out = sweep(
        &[
            "tiny.toml",
            "--vary",
            "seed=1,2",
            "--out",
            "s",
            "-q",
            "--goal",
            "success_rate >= 99%",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Recommended: point 0 (seed = 1)"),
        "{}",
        stdout(&out)
    );
    let (a, b) = ("s/points/0000/results.json", "s/points/0001/results.json");
    let out = resilbench(&["report", a], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("s/points/0000/report.html").exists());
    let out = resilbench(&["compare", a, b], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(
        dir.path().join("gate.toml"),
        "[limits]\nsuccess_rate = \">= 99%\"\n",
    )
    .unwrap();
    let out = resilbench(&["check", a, "--gate", "gate.toml"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // A goal nothing meets: exit 1, and the closest point named with what it misses.
    let out = sweep(
        &[
            "tiny.toml",
            "--vary",
            "seed=1,2",
            "--out",
            "s2",
            "-q",
            "--goal",
            "latency_ms.e2e.p99 <= 0.5",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("No candidate meets"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("misses latency_ms.e2e.p99 <= 0.5 (got "),
        "{}",
        stdout(&out)
    );
    // A goal naming no figure stops the sweep: exit 2.
    let out = sweep(
        &[
            "tiny.toml",
            "--vary",
            "seed=1,2",
            "--out",
            "s3",
            "-q",
            "--goal",
            "latency_ms.e2e.p98 <= 5",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a figure of results.json"),
        "{}",
        stderr(&out)
    );
}

/// Stopped after its first point (as Ctrl-C stops it), a sweep keeps that point and starts no
/// other.
#[test]
fn an_interrupted_sweep_keeps_the_points_that_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.toml");
    std::fs::write(&path, TINY).unwrap();
    let base = profile::load(&path, &Overrides::default()).unwrap();
    let spec = Spec::read(&path)
        .unwrap()
        .with_flags(&["seed=1..6".into()])
        .unwrap();
    let grid = Grid::build(spec, base).unwrap();
    let opts = Options {
        clock: ClockMode::Virtual,
        jobs: 1,
        shard: None,
        target: None,
        quiet: true,
    };
    let stop = CancellationToken::new();
    let mut done = Vec::new();
    // Stopped as the first point is summed up, on its thread: before the next one starts.
    let summarize = |_: &profile::Plan, r: &Results| {
        stop.cancel();
        Ok(r.partial)
    };
    let ended = run(&grid, &opts, dir.path(), &stop, &summarize, &mut |d| {
        done.push(d.index)
    })
    .unwrap();
    assert!(ended.interrupted);
    assert_eq!((ended.done, ended.planned), (1, 6));
    assert_eq!(done, [0]);
    assert!(dir.path().join("points/0000/results.json").exists());
    assert!(!dir.path().join("points/0001").exists());
}

/// Names from the profile reach the page escaped.
#[test]
fn the_page_escapes_what_the_profile_says() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = TINY
        .replace("name = \"retry\"", "name = \"<script>alert(1)</script>\"")
        .replace("name = \"tiny\"", "name = \"<b>tiny</b>\"");
    std::fs::write(dir.path().join("h.toml"), hostile).unwrap();
    let out = sweep(
        &["h.toml", "--vary", "seed=1,2", "--out", "s", "-q"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(dir.path().join("s/sweep.html")).unwrap();
    assert!(
        !page.contains("<script>") && !page.contains("<b>tiny"),
        "escaped"
    );
    assert!(page.contains("&lt;b&gt;tiny&lt;/b&gt;"));
    assert_eq!(page.matches("<svg").count(), 2, "the two frontier charts");
}
