//! `resilbench check`: a table of gates over fixed results files, each with its exit status
//! and the rows that must fail; the JUnit XML parses and counts the failures.
//!
//! Fixtures: `run-a.json` (tests/fixtures/gate.toml on a virtual clock) and `run-b.json` (the
//! same with a backend twice as slow and three times as flaky). Their profile's [gate]: p99 e2e
//! ≤ 250 ms, success ≥ 98% (`tight`: ≥ 95%), backend amplification ≤ 1.2, no drops; budgets
//! p99 of successful calls +10%, success −1%.

use std::path::Path;

use crate::common::{fixture, fixture_json, resilbench, stderr, stdout, write_json};

struct Case {
    what: &'static str,
    /// Results file: a fixture name, or "lagged"/"newer"/"v2" for a changed copy of run-a.
    results: &'static str,
    baseline: Option<&'static str>,
    /// A gate file's text, replacing the profile's [gate].
    gate: Option<&'static str>,
    exit: i32,
    /// (strategy, figure) of every failing row, in table order.
    failing: &'static [(&'static str, &'static str)],
    /// Text the output (stdout for 0/1, stderr for 2) must contain.
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        what: "the profile's gate holds for run A",
        results: "run-a.json",
        baseline: None,
        gate: None,
        exit: 0,
        failing: &[],
        says: &["gate passed", "6 regression budget check(s) skipped"],
    },
    Case {
        what: "run A is its own baseline",
        results: "run-a.json",
        baseline: Some("run-a.json"),
        gate: None,
        exit: 0,
        failing: &[],
        says: &["+10% of baseline"],
    },
    Case {
        what: "run B breaks limits and budgets against A",
        results: "run-b.json",
        baseline: Some("run-a.json"),
        gate: None,
        exit: 1,
        failing: &[
            ("patient", "success_rate"),
            ("patient", "latency_ms.e2e_ok.p99"),
            ("patient", "success_rate"),
            ("tight", "success_rate"),
            ("tight", "success_rate"),
            ("per-try", "success_rate"),
            ("per-try", "latency_ms.e2e_ok.p99"),
            ("per-try", "success_rate"),
        ],
        says: &["GATE FAILED: 8 of 22 checks failed"],
    },
    Case {
        what: "a gate file replaces the profile's gate; per-strategy limits override",
        results: "run-a.json",
        baseline: None,
        gate: Some(
            "[limits]\n\"latency_ms.e2e_ok.p99\" = \"<= 25\"\n\
             [strategies.patient.limits]\n\"latency_ms.e2e_ok.p99\" = \"<= 40\"\n",
        ),
        exit: 0,
        failing: &[],
        says: &["gate passed: 6 checks"],
    },
    Case {
        what: "a tight limit fails every strategy it does not hold for",
        results: "run-a.json",
        baseline: None,
        gate: Some("[limits]\n\"latency_ms.e2e_ok.p99\" = \"< 20\"\n"),
        exit: 1,
        failing: &[
            ("patient", "latency_ms.e2e_ok.p99"),
            ("per-try", "latency_ms.e2e_ok.p99"),
        ],
        says: &["< 20"],
    },
    Case {
        what: "a lagging generator fails the gate",
        results: "lagged",
        baseline: None,
        gate: None,
        exit: 1,
        failing: &[("patient", "generator trust")],
        says: &["generator.lag_ms.p99 5.000 ms"],
    },
    Case {
        what: "... unless the gate allows it explicitly",
        results: "lagged",
        baseline: None,
        gate: Some("allow_untrusted = true\n[limits]\nsuccess_rate = \">= 90%\"\n"),
        exit: 0,
        failing: &[],
        says: &["allowed", "the gate allows it"],
    },
    Case {
        what: "a figure a newer build adds is gated by name",
        results: "newer",
        baseline: None,
        gate: Some("[limits]\n\"backend.duplicate_side_effects\" = \"== 0\"\n"),
        exit: 1,
        failing: &[("tight", "backend.duplicate_side_effects")],
        says: &[],
    },
    Case {
        what: "a figure the file does not have is bad input",
        results: "run-a.json",
        baseline: None,
        gate: Some("[limits]\n\"backend.duplicate_side_effects\" = \"== 0\"\n"),
        exit: 2,
        failing: &[],
        says: &[
            "`backend.duplicate_side_effects` is not a figure",
            "`backend` has executed",
        ],
    },
    Case {
        what: "a misspelt figure names what exists",
        results: "run-a.json",
        baseline: None,
        gate: Some("[limits]\n\"latency_ms.e2e.p98\" = \"<= 1\"\n"),
        exit: 2,
        failing: &[],
        says: &["`latency_ms.e2e` has count, max, mean, p50, p90, p99, p999"],
    },
    Case {
        what: "a malformed limit is located in the gate file",
        results: "run-a.json",
        baseline: None,
        gate: Some("[limits]\nsuccess_rate = \"at least 99\"\n"),
        exit: 2,
        failing: &[],
        says: &["gate.toml:2:", "is not a limit", "<= 250"],
    },
    Case {
        what: "an unknown strategy is bad input",
        results: "run-a.json",
        baseline: None,
        gate: Some("[strategies.nope.limits]\nsuccess_rate = \">= 0.9\"\n"),
        exit: 2,
        failing: &[],
        says: &["strategy `nope`", "patient, tight, per-try"],
    },
    Case {
        what: "a wrong schema version is bad input",
        results: "v2",
        baseline: None,
        gate: None,
        exit: 2,
        failing: &[],
        says: &["resilbench.results/v2", "not supported"],
    },
    Case {
        what: "a missing results file is bad input",
        results: "missing.json",
        baseline: None,
        gate: None,
        exit: 2,
        failing: &[],
        says: &["missing.json"],
    },
];

/// The results file a case names, made in `dir` when it is a changed copy.
fn results_path(name: &str, dir: &Path) -> std::path::PathBuf {
    let mut json = fixture_json("run-a.json");
    match name {
        "lagged" => json["strategies"][0]["generator"]["lag_ms"]["p99"] = 5.0.into(),
        "newer" => {
            for (i, s) in json["strategies"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                s["backend"]["duplicate_side_effects"] = (i % 2).into();
            }
        }
        "v2" => json["schema"] = "resilbench.results/v2".into(),
        "missing.json" => return dir.join("missing.json"),
        other => return fixture(other),
    }
    write_json(dir, &format!("{name}.json"), &json)
}

/// Failing rows of the terminal table: (strategy, figure).
fn failing_rows(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter(|l| l.trim_end().ends_with("FAIL"))
        .map(|l| {
            let cols: Vec<&str> = l
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            (cols[0].to_string(), cols[1].to_string())
        })
        .collect()
}

#[test]
fn every_gate_case_exits_as_expected_and_names_its_failures() {
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        let results = results_path(case.results, dir.path());
        let mut args = vec!["check".to_string(), results.display().to_string()];
        if let Some(b) = case.baseline {
            args.extend(["--baseline".into(), fixture(b).display().to_string()]);
        }
        if let Some(text) = case.gate {
            std::fs::write(dir.path().join("gate.toml"), text).unwrap();
            args.extend(["--gate".into(), "gate.toml".into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = resilbench(&args, dir.path());
        let (stdout, stderr) = (stdout(&out), stderr(&out));
        assert_eq!(
            out.status.code(),
            Some(case.exit),
            "{}: exit status\n{stdout}\n{stderr}",
            case.what
        );
        let failing: Vec<(&str, &str)> = case.failing.to_vec();
        let got = failing_rows(&stdout);
        let got: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, failing, "{}: failing rows\n{stdout}", case.what);
        let text = if case.exit == 2 { &stderr } else { &stdout };
        for s in case.says {
            assert!(text.contains(s), "{}: expected {s:?} in\n{text}", case.what);
        }
        if case.exit == 2 {
            assert!(stdout.is_empty(), "{}: no table on bad input", case.what);
        }
    }
}

#[test]
fn junit_and_markdown_report_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let (b, a) = (fixture("run-b.json"), fixture("run-a.json"));
    let out = resilbench(
        &[
            "check",
            b.to_str().unwrap(),
            "--baseline",
            a.to_str().unwrap(),
            "--junit",
            "junit.xml",
            "--markdown",
            "summary.md",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("JUnit output is well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let failures = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .count();
    assert_eq!(cases.len(), 22, "one test case per check");
    assert_eq!(failures, 8);
    assert_eq!(suite.attribute("failures"), Some("8"));
    assert_eq!(suite.attribute("tests"), Some("22"));
    // Names are the strategy (classname) and the figure: stable from run to run, so a CI's
    // test history follows one check; the numbers are in the message.
    let tight = cases
        .iter()
        .find(|c| {
            c.attribute("classname") == Some("resilbench.gate.tight")
                && c.attribute("name") == Some("success_rate")
        })
        .expect("the tight strategy's success limit");
    let failure = tight
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("it fails");
    let message = failure.attribute("message").unwrap();
    assert!(
        message.contains(">= 95%") && message.contains("tight: success_rate is"),
        "{message}"
    );
    assert!(
        cases
            .iter()
            .any(|c| c.attribute("name") == Some("latency_ms.e2e_ok.p99 (budget)"))
    );
    let mut names: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| {
            (
                c.attribute("classname").unwrap(),
                c.attribute("name").unwrap(),
            )
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "every test case's name is unique");
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(
        md.starts_with("### ❌ resilbench GATE FAILED: 8 of 22 checks failed"),
        "{md}"
    );
    assert_eq!(md.matches("| ❌ |").count(), 8, "{md}");
    // Failures come first.
    let first_row = md
        .lines()
        .find(|l| l.starts_with("| ✅") || l.starts_with("| ❌"));
    assert!(first_row.unwrap().starts_with("| ❌"));
}

#[test]
fn a_gate_with_a_skipped_budget_is_a_skipped_junit_case() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture("run-a.json");
    let out = resilbench(
        &["check", a.to_str().unwrap(), "--junit", "j.xml"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let xml = std::fs::read_to_string(dir.path().join("j.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let skipped = doc
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .count();
    assert_eq!(skipped, 6);
}

/// The example of docs/ci.md, as written there: a virtual quickstart run passes its gate.
#[test]
fn the_documented_virtual_gate_passes() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let profile = root.join("profiles/quickstart.toml");
    let gate = root.join("docs/quickstart.gate.toml");
    let out = resilbench(
        &[
            "run",
            profile.to_str().unwrap(),
            "--clock",
            "virtual",
            "--out",
            "out",
            "-q",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = resilbench(
        &[
            "check",
            "out/results.json",
            "--gate",
            gate.to_str().unwrap(),
            "--markdown",
            "gate.md",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("6 regression budget check(s) skipped"));
}

/// `check RESULTS --baseline B` with no gate anywhere applies the default regression gate:
/// noise-aware, so another seed alone passes, and a backend ten times slower fails.
#[test]
fn the_default_regression_gate_passes_a_seed_change_and_fails_a_slower_run() {
    let dir = tempfile::tempdir().unwrap();
    let profile = |median: &str| {
        format!(
            r#"
name = "regression"
seed = 3
[load]
arrival = "poisson"
rate = 500
duration = "10s"
[backend]
latency = {{ dist = "lognormal", median = "{median}", p99 = "40ms" }}
errors = {{ UNAVAILABLE = 0.01 }}
[[strategies]]
name = "one"
[[strategies]]
name = "retries"
[[strategies.layers]]
kind = "retry"
max_attempts = 3
retry_on = ["UNAVAILABLE"]
"#
        )
    };
    std::fs::write(dir.path().join("p.toml"), profile("2ms")).unwrap();
    std::fs::write(dir.path().join("slow.toml"), profile("20ms")).unwrap();
    let run = |args: &[&str]| {
        let out = resilbench(args, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
    };
    run(&["run", "p.toml", "--clock", "virtual", "--out", "base", "-q"]);
    run(&[
        "run", "p.toml", "--clock", "virtual", "--seed", "4", "--out", "seed", "-q",
    ]);
    run(&[
        "run",
        "slow.toml",
        "--clock",
        "virtual",
        "--out",
        "slow",
        "-q",
    ]);
    let check = |what: &str| {
        resilbench(
            &[
                "check",
                &format!("{what}/results.json"),
                "--baseline",
                "base/results.json",
            ],
            dir.path(),
        )
    };
    let out = check("seed");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("the default regression gate"), "{text}");
    assert!(text.contains("beyond noise of baseline"), "{text}");
    let out = check("slow");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("latency_ms.e2e_ok.p50"));
    // With no baseline and no gate there is nothing to ask: exit 2, saying what would do.
    let out = resilbench(&["check", "seed/results.json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--baseline FILE for the default regression gate"));
}

/// `"+10% beyond noise"` and the gate-wide `noise_aware`: a seed change moves the p99 more
/// than 10% on a few thousand calls, which fails a plain budget and passes a noise-aware one.
#[test]
fn noise_aware_budgets_forgive_what_sampling_explains() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let profile = root.join("profiles/hedging.toml");
    let profile = profile.to_str().unwrap();
    for (seed, out) in [("13", "a"), ("14", "b")] {
        let args = [
            "run",
            profile,
            "--clock",
            "virtual",
            "--seed",
            seed,
            "--duration",
            "10s",
            "--out",
            out,
            "-q",
        ];
        let done = resilbench(&args, dir.path());
        assert!(done.status.success(), "{}", stderr(&done));
    }
    let gate = |text: &str| {
        std::fs::write(dir.path().join("g.toml"), text).unwrap();
        resilbench(
            &[
                "check",
                "b/results.json",
                "--baseline",
                "a/results.json",
                "--gate",
                "g.toml",
            ],
            dir.path(),
        )
    };
    let plain = gate("[budgets]\n\"latency_ms.e2e_ok.p999\" = \"+0%\"\n");
    assert_eq!(plain.status.code(), Some(1), "{}", stdout(&plain));
    let noisy = gate("[budgets]\n\"latency_ms.e2e_ok.p999\" = \"+0% beyond noise\"\n");
    assert_eq!(noisy.status.code(), Some(0), "{}", stdout(&noisy));
    assert!(stdout(&noisy).contains("(within noise)"));
    let wide = gate("noise_aware = true\n[budgets]\n\"latency_ms.e2e_ok.p999\" = \"+0%\"\n");
    assert_eq!(wide.status.code(), Some(0), "{}", stdout(&wide));
}
