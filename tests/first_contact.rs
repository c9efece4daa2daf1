//! What a new user meets first, tried as they would: the built-in profiles (`run quickstart`
//! with the binary alone, `profiles`, `--print`), and the small things a first run trips on:
//! a folder that already holds a run, `--strategy`, `--rate 1k`, numbers written as text,
//! misspelt names, phases the run will not show, the gate applied at the end of `run`, the
//! progress line each strategy ends with, and
//! `--export csv`.

use std::path::Path;

use resilbench::profile::shipped::SHIPPED;

use crate::common::{resilbench, stderr, stdout};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under profiles/ is built in, as written: the files stay the source.
#[test]
fn every_shipped_profile_is_built_in_as_written() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("profiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut built: Vec<String> = SHIPPED.iter().map(|s| s.name.to_string()).collect();
    built.sort();
    assert_eq!(files, built);
    for s in SHIPPED {
        let file = std::fs::read_to_string(root().join(format!("profiles/{}.toml", s.name)));
        assert_eq!(file.unwrap(), s.text, "{}", s.name);
    }
}

/// `run quickstart` in an empty folder uses the built-in profile and says so; `profiles` lists
/// every one with its story; `--print` writes one out, and a file of that name then wins.
#[test]
fn the_binary_alone_runs_the_built_in_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let out = resilbench(&["profiles"], dir.path());
    assert!(out.status.success());
    let list = stdout(&out);
    for s in SHIPPED {
        assert!(list.contains(s.name), "{list}");
    }
    assert!(list.contains("long tail"), "the one-line stories: {list}");

    let out = resilbench(
        &["run", "quickstart", "--clock", "virtual", "--out", "q"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("quickstart (built in): 3 strategies"),
        "{}",
        stderr(&out)
    );
    assert!(dir.path().join("q/results.json").exists());

    let out = resilbench(&["profiles", "--print", "quickstart"], dir.path());
    let shipped = std::fs::read_to_string(root().join("profiles/quickstart.toml")).unwrap();
    assert_eq!(stdout(&out), shipped);
    let mine = shipped.replace("name = \"quickstart\"", "name = \"mine\"");
    std::fs::write(dir.path().join("quickstart"), mine).unwrap();
    let out = resilbench(&["validate", "quickstart"], dir.path());
    assert!(
        stdout(&out).starts_with("# quickstart: valid"),
        "a file wins: {}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("name = \"mine\""));

    let out = resilbench(&["run", "quickstrat", "--clock", "virtual"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `quickstart`?"),
        "{}",
        stderr(&out)
    );
}

/// `--out` into a folder that holds a run is refused unless `--force`; `--strategy` runs a
/// subset (a misspelt name is refused with the likely one); `--rate 1k` is 1,000 calls/s.
#[test]
fn out_strategy_and_rate_flags_read_as_a_user_means_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| resilbench(args, dir.path());
    let base = [
        "run",
        "quickstart",
        "--clock",
        "virtual",
        "--duration",
        "3s",
        "-q",
    ];
    let with = |more: &[&'static str]| -> Vec<&str> { base.iter().chain(more).copied().collect() };
    let out = run(&with(&[
        "--out",
        "a",
        "--strategy",
        "no-retries",
        "--rate",
        "1k",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("a/results.json")).unwrap())
            .unwrap();
    assert_eq!(json["strategies"].as_array().unwrap().len(), 1);
    assert_eq!(json["strategies"][0]["name"], "no-retries");
    assert_eq!(json["profile"]["load"]["rate"], 1000.0);

    let out = run(&with(&["--out", "a"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already holds files"),
        "{}",
        stderr(&out)
    );
    let out = run(&with(&["--out", "a", "--force"]));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(&with(&["--out", "b", "--strategy", "grpc-retrys"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `grpc-retries`?"),
        "{}",
        stderr(&out)
    );
    let out = run(&with(&["--out", "c", "--rate", "fast"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected calls per second such as 500, 1k"));
}

/// Numbers written as text, and misspelt keys, are refused in words at their line.
#[test]
fn numbers_as_text_and_misspelt_keys_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(root().join("profiles/quickstart.toml")).unwrap();
    let cases = [
        (
            "rate = 500",
            "rate = \"1k\"",
            "write 1000 for 1k, without quotes",
        ),
        (
            "UNAVAILABLE = 0.01",
            "UNAVAILABLE = \"1%\"",
            "write 0.01 for 1%, without quotes",
        ),
        (
            "rate = 500",
            "rtae = 500",
            "unknown field `rtae` (did you mean `rate`?)",
        ),
        (
            "kind = \"grpc_retry\"",
            "kind = \"grpc-retry\"",
            "(did you mean `grpc_retry`?)",
        ),
    ];
    for (from, to, said) in cases {
        assert!(shipped.contains(from), "{from}");
        std::fs::write(dir.path().join("p.toml"), shipped.replacen(from, to, 1)).unwrap();
        let out = resilbench(&["validate", "p.toml"], dir.path());
        assert_eq!(out.status.code(), Some(2), "{to}");
        assert!(stderr(&out).contains(said), "{to}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("p.toml:"),
            "the line: {}",
            stderr(&out)
        );
    }
}

/// A phase after the run's end, or cut by `--duration`, is said before the run.
#[test]
fn phases_the_run_will_not_show_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "retry-storm",
        "--clock",
        "virtual",
        "-q",
        "--duration",
    ];
    let out = resilbench(&[&args[..], &["9s", "--out", "a"]].concat(), dir.path());
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("starts after the run ends at 9s: it never happens"),
        "{}",
        stderr(&out)
    );
    let out = resilbench(&[&args[..], &["11s", "--out", "b"]].concat(), dir.path());
    assert!(
        stderr(&out).contains("is cut short: the run ends at 11s"),
        "{}",
        stderr(&out)
    );
}

/// `run` applies the profile's gate at the end and exits 1 when it fails (or `--gate FILE`);
/// a misspelt figure in a gate is an error before the run, at its line.
#[test]
fn run_applies_the_gate_and_checks_its_names_first() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| resilbench(args, dir.path());
    std::fs::write(
        dir.path().join("strict.toml"),
        "[limits]\n\"latency_ms.e2e_ok.p50\" = \"<= 0.001\"\n",
    )
    .unwrap();
    let out = run(&[
        "run",
        "quickstart",
        "--clock",
        "virtual",
        "-q",
        "--out",
        "a",
        "--gate",
        "strict.toml",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("GATE FAILED"), "{}", stdout(&out));
    assert!(
        dir.path().join("a/results.json").exists(),
        "the results are written all the same"
    );

    std::fs::write(
        dir.path().join("typo.toml"),
        "[limits]\n\"latency_ms.e2e.p98\" = \"<= 1\"\n",
    )
    .unwrap();
    let out = run(&[
        "run",
        "quickstart",
        "--clock",
        "virtual",
        "-q",
        "--out",
        "b",
        "--gate",
        "typo.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("typo.toml:2:") && err.contains("`latency_ms.e2e` has count"),
        "{err}"
    );
    assert!(!dir.path().join("b").exists(), "refused before the run");
}

/// `--export csv` writes the summary and the timeline beside results.json.
#[test]
fn export_csv_writes_the_summary_and_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let out = resilbench(
        &[
            "run",
            "quickstart",
            "--clock",
            "virtual",
            "-q",
            "--out",
            "a",
            "--export",
            "csv",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = std::fs::read_to_string(dir.path().join("a/summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 4, "{summary}");
    assert!(summary.starts_with("strategy,counts.offered,"));
    let timeline = std::fs::read_to_string(dir.path().join("a/timeline.csv")).unwrap();
    assert!(timeline.starts_with("strategy,t,offered,"));
    assert!(timeline.lines().count() > 3 * 5, "{timeline}");
    // The export is the run's own: a --force rerun without it replaces the folder whole.
    let again = resilbench(
        &[
            "run",
            "quickstart",
            "--clock",
            "virtual",
            "-q",
            "--out",
            "a",
            "--force",
        ],
        dir.path(),
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(!dir.path().join("a/summary.csv").exists());
    assert!(dir.path().join("a/results.json").exists());
}

/// `.hlog` names for strategy names with odd characters, as docs/results.md says.
#[test]
fn hlog_names_for_odd_strategy_names_are_as_documented() {
    let names = resilbench::record::hlog::file_names(["budget 10%", "a b", "a/b", "", "ok-1.2_x"]);
    assert_eq!(
        names,
        [
            "budget_10_.hlog",
            "a_b.hlog",
            "a_b-2.hlog",
            "strategy.hlog",
            "ok-1.2_x.hlog"
        ]
    );
}

/// The progress line a strategy ends with (issue 23): its calls, its success and the p99 it
/// labels "of successful calls", the same figure as the table's p99 column, read back here
/// from results.json.
#[test]
fn the_done_line_labels_its_p99_and_agrees_with_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = resilbench(
        &[
            "run",
            "quickstart",
            "--clock",
            "virtual",
            "--duration",
            "2s",
            "--out",
            "a",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let doc = resilbench::document::ResultsDoc::read(&dir.path().join("a/results.json")).unwrap();
    let n = doc.results.strategies.len();
    for (i, s) in doc.results.strategies.iter().enumerate() {
        let c = &s.counts;
        let p99 = s.latency_ms.e2e_ok.unwrap().p99;
        let done = format!(
            "[{}/{n}] {}: done  {} calls  ok {:.2}%  p99 of successful calls {p99:.2} ms",
            i + 1,
            s.name,
            c.sent,
            100.0 * c.succeeded as f64 / c.sent as f64
        );
        assert!(err.lines().any(|l| l == done), "no `{done}` in\n{err}");
        // The table's p99 column shows the same figure.
        let row = stdout(&out)
            .lines()
            .find(|l| l.starts_with(&format!("{} ", s.name)))
            .map(str::to_string)
            .unwrap();
        assert!(row.contains(&format!(" {p99:.2} ")), "{row}");
    }
}
