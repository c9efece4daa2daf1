//! From measurement to model: a run's recorded histogram and statuses seed the embedded
//! backend (`dist = "measured"`, `errors_from`), replayed in virtual time, exactly; and every
//! way of pointing at the wrong thing is refused with file, line and field.

use std::path::Path;

use resilbench::record::histogram::Hist;
use serde_json::Value;

use crate::common::{resilbench, stderr};

/// "The service": a two-mode latency with a tail, and errors, measured once.
const SERVICE: &str = r#"name = "service"
seed = 9
[load]
rate = 500
duration = "40s"
warmup = "1s"
deadline = "2s"
[backend]
latency = { dist = "mixture", of = [
  { weight = 0.8, latency = { dist = "lognormal", median = "4ms", p99 = "12ms" } },
  { weight = 0.2, latency = { dist = "uniform", min = "30ms", max = "60ms" } },
] }
errors = { UNAVAILABLE = 0.05, INTERNAL = 0.01 }
[[strategies]]
name = "baseline"
"#;

/// The model of it, replayed: the measured latency and error mix, nothing added.
const REPLAY: &str = r#"name = "replay"
seed = 21
[load]
rate = 500
duration = "40s"
warmup = "1s"
deadline = "2s"
[backend]
latency = { dist = "measured", from = "measured", strategy = "baseline", histogram = "attempt" }
errors_from = { from = "measured/results.json", strategy = "baseline" }
[[strategies]]
name = "baseline"
"#;

fn run(dir: &Path, profile: &str, name: &str) -> Value {
    std::fs::write(dir.join(format!("{name}.toml")), profile).unwrap();
    let out = resilbench(
        &[
            "run",
            &format!("{name}.toml"),
            "--clock",
            "virtual",
            "--quiet",
            "--out",
            name,
        ],
        dir,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&std::fs::read_to_string(dir.join(name).join("results.json")).unwrap())
        .unwrap()
}

fn hist(s: &Value, key: &str) -> Hist {
    Hist::decode(s["histograms"][key].as_str().unwrap()).unwrap()
}

fn share(s: &Value, status: &str) -> f64 {
    let all: u64 = s["attempts"]["status"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    s["attempts"]["status"][status].as_u64().unwrap_or(0) as f64 / all as f64
}

/// Measured once, replayed: the replay's attempts take the measured times (the same
/// distribution, within the draws' noise) and fail in the measured shares;
/// the plan keeps the model it ran; two replays are identical to the byte.
#[test]
fn a_measured_run_replays_as_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let measured = run(dir.path(), SERVICE, "measured");
    let replayed = run(dir.path(), REPLAY, "replay");
    let (m, r) = (&measured["strategies"][0], &replayed["strategies"][0]);
    let (hm, hr) = (hist(m, "attempt"), hist(r, "attempt"));
    // The two distributions of ~19,500 attempts each are the same one: their largest CDF
    // difference (Kolmogorov–Smirnov) is below its 0.1% critical value, 1.95 × √(2/n).
    let n = hm.count().min(hr.count()) as f64;
    let critical = 1.95 * (2.0 / n).sqrt();
    let ks = hm
        .inner()
        .iter_recorded()
        .map(|v| {
            let x = v.value_iterated_to();
            (hm.inner().quantile_below(x) - hr.inner().quantile_below(x)).abs()
        })
        .fold(0.0, f64::max);
    assert!(ks < critical, "KS {ks} against {critical}");
    for q in [0.5, 0.9, 0.99] {
        let (want, got) = (hm.quantile_ms(q), hr.quantile_ms(q));
        assert!((got - want).abs() <= want * 0.05, "q{q}: {got} vs {want}");
    }
    for status in ["UNAVAILABLE", "INTERNAL", "OK"] {
        let (want, got) = (share(m, status), share(r, status));
        assert!((got - want).abs() < 0.006, "{status}: {got} vs {want}");
    }
    let backend = &replayed["profile"]["backend"];
    assert_eq!(backend["latency"]["dist"], "measured");
    let recorded = Hist::decode(backend["latency"]["recorded"].as_str().unwrap()).unwrap();
    assert_eq!(recorded.count(), hm.count());
    assert!(backend["errors"]["UNAVAILABLE"].as_f64().unwrap() > 0.04);
    // The report says where the model came from.
    let page = std::fs::read_to_string(dir.path().join("replay/report.html")).unwrap();
    for want in [
        "measured: the attempt histogram of `baseline` in measured",
        "errors per attempt (as measured in measured/results.json)",
    ] {
        assert!(page.contains(want), "want {want:?} in the report");
    }
    let again = run(dir.path(), REPLAY, "replay-again");
    assert_eq!(
        serde_json::to_string(&again["strategies"]).unwrap(),
        serde_json::to_string(&replayed["strategies"]).unwrap()
    );
}

/// An `.hlog` (the run's end-to-end seconds) is a model too: its intervals added up.
#[test]
fn an_hlog_is_read_as_its_seconds_added_up() {
    let dir = tempfile::tempdir().unwrap();
    let measured = run(dir.path(), SERVICE, "measured");
    let replay = REPLAY.replace(
        r#"{ dist = "measured", from = "measured", strategy = "baseline", histogram = "attempt" }"#,
        r#"{ dist = "measured", from = "measured/baseline.hlog" }"#,
    );
    let replayed = run(dir.path(), &replay, "from-hlog");
    let e2e = hist(&measured["strategies"][0], "e2e");
    let recorded = replayed["profile"]["backend"]["latency"]["recorded"]
        .as_str()
        .unwrap();
    let recorded = Hist::decode(recorded).unwrap();
    assert_eq!(recorded.count(), e2e.count());
    for q in [0.5, 0.9, 0.99] {
        assert_eq!(recorded.quantile_ms(q), e2e.quantile_ms(q), "q{q}");
    }
}

/// Each wrong pointer is refused before any load, with the profile's file, line and field,
/// and what is there instead.
#[test]
fn wrong_pointers_are_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), SERVICE, "measured");
    let latency =
        r#"{ dist = "measured", from = "measured", strategy = "baseline", histogram = "attempt" }"#;
    let cases: &[(&str, &str, &[&str])] = &[
        (
            latency,
            r#"{ dist = "measured", from = "nowhere/results.json" }"#,
            &[
                "r.toml:9:",
                "backend.latency.from",
                "cannot read",
                "nowhere/results.json",
            ],
        ),
        (
            latency,
            r#"{ dist = "measured", from = "measured", strategy = "baselin" }"#,
            &[
                "backend.latency.strategy",
                "no strategy `baselin`",
                "did you mean `baseline`",
            ],
        ),
        (
            latency,
            r#"{ dist = "measured", from = "measured", histogram = "lag" }"#,
            &["backend.latency", "unknown variant `lag`", "e2e_ok"],
        ),
        (
            latency,
            r#"{ dist = "measured", from = "measured/baseline.hlog", histogram = "e2e" }"#,
            &["backend.latency.histogram", "leave `histogram` out"],
        ),
        (
            latency,
            r#"{ dist = "measured", from = "r.toml" }"#,
            &["backend.latency.from", "is not a results file"],
        ),
        (
            latency,
            r#"{ dist = "measured" }"#,
            &["backend.latency.from", "needs `from`"],
        ),
        (
            "errors_from = {",
            "errors = { UNAVAILABLE = 0.1 }\nerrors_from = {",
            &["backend.errors_from", "not both"],
        ),
        (
            r#"errors_from = { from = "measured/results.json", strategy = "baseline" }"#,
            r#"errors_from = { from = "measured/results.json", strategy = "other" }"#,
            &[
                "backend.errors_from.strategy",
                "its strategies are baseline",
            ],
        ),
    ];
    // Sparse: no disk is used; a reader that read it would hold 256 MiB of zeros.
    std::fs::File::create(dir.path().join("huge.hlog"))
        .unwrap()
        .set_len(resilbench::profile::measured::MAX_FILE + 1)
        .unwrap();
    let huge = [(
        latency,
        r#"{ dist = "measured", from = "huge.hlog" }"#,
        &[
            "backend.latency.from",
            "huge.hlog is 268435457 bytes or more",
        ][..],
    )];
    for (from, to, want) in cases.iter().chain(&huge) {
        let profile = REPLAY.replace(from, to);
        assert_ne!(profile, REPLAY, "{to}");
        std::fs::write(dir.path().join("r.toml"), &profile).unwrap();
        let out = resilbench(&["validate", "r.toml"], dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        for w in *want {
            assert!(err.contains(w), "{to}: want {w:?} in {err}");
        }
    }
}

/// A replay of a strategy whose results are marked partial (its run was interrupted) is run,
/// and said: on stderr when the profile loads, and in the replay's results warnings, for the
/// histogram and the error mix each; a complete strategy is read without a word.
#[test]
fn a_partial_strategy_read_as_a_model_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let short = SERVICE.replace("duration = \"40s\"", "duration = \"3s\"");
    run(dir.path(), &short, "measured");
    let replay = REPLAY.replace("duration = \"40s\"", "duration = \"2s\"");
    let replayed = run(dir.path(), &replay, "replay");
    let said = |w: &Value| {
        w.as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("marked partial"))
    };
    assert!(!said(&replayed["warnings"]), "{}", replayed["warnings"]);
    // Marked as an interrupted run marks it.
    let file = dir.path().join("measured/results.json");
    let mut results: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    results["partial"] = Value::Bool(true);
    results["strategies"][0]["partial"] = Value::Bool(true);
    std::fs::write(&file, results.to_string()).unwrap();
    std::fs::write(dir.path().join("replay.toml"), &replay).unwrap();
    let out = resilbench(
        &[
            "run",
            "replay.toml",
            "--clock",
            "virtual",
            "--quiet",
            "--out",
            "again",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for want in [
        "warning: backend.latency: strategy `baseline` of ",
        "is marked partial (its run stopped before the strategy ended): its `attempt` \
         histogram holds only its calls before the stop",
        "warning: backend.errors_from: strategy `baseline` of ",
        "the error mix holds only its calls before the stop",
    ] {
        assert!(err.contains(want), "want {want:?} in {err}");
    }
    let again: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("again/results.json")).unwrap(),
    )
    .unwrap();
    let warnings: Vec<&str> = again["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|w| w.contains("marked partial"))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("backend.latency: "), "{warnings:?}");
    assert!(
        warnings[1].starts_with("backend.errors_from: "),
        "{warnings:?}"
    );
    // `validate` says it too.
    let out = resilbench(&["validate", "replay.toml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is marked partial"),
        "{}",
        stderr(&out)
    );
}
