//! `resilbench compare`: known differences are flagged, identical runs are not, and the page
//! overlays both runs.

use resilbench::compare::{self, DEFAULT_THRESHOLD, Flag};
use resilbench::document::ResultsDoc;

use crate::common::{fixture, plan, resilbench, run_virtual, stderr, stdout};

fn doc(name: &str) -> ResultsDoc {
    ResultsDoc::read(&fixture(name)).unwrap()
}

fn flag(c: &compare::Comparison, strategy: &str, label: &str) -> Flag {
    c.rows
        .iter()
        .find(|r| r.strategy == strategy && r.label == label)
        .unwrap_or_else(|| panic!("{strategy} {label}"))
        .flag
}

#[test]
fn identical_runs_flag_nothing() {
    let a = doc("run-a.json");
    let c = compare::compare(&a, &a, DEFAULT_THRESHOLD);
    assert_eq!(c.rows.len(), 3 * 7);
    assert!(c.rows.iter().all(|r| r.flag == Flag::None), "{:?}", c.rows);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
}

#[test]
fn a_slower_flakier_backend_is_flagged_worse() {
    let c = compare::compare(&doc("run-a.json"), &doc("run-b.json"), DEFAULT_THRESHOLD);
    // Twice the median service time, on ~1,000 calls a strategy: beyond any noise.
    for s in ["patient", "tight", "per-try"] {
        assert_eq!(flag(&c, s, "p50 ms"), Flag::Worse, "{s}");
        assert_eq!(flag(&c, s, "attempts/call"), Flag::None, "{s}");
    }
    // Three times the errors: every strategy loses calls. `tight` and `per-try` lose 6-7% of
    // theirs, beyond noise.
    for s in ["tight", "per-try"] {
        assert_eq!(flag(&c, s, "success"), Flag::Worse, "{s}");
        assert_eq!(flag(&c, s, "goodput/s"), Flag::Worse, "{s}");
    }
    // `patient` goes from 99.2% to 97.1% of some 850 calls: 7 failures to 25, z = 3.2. Alone
    // that would be beyond noise (2.58); as one of the comparison's 21 figures, whose 1% chance
    // of a false alarm is shared (Bonferroni, 3.50), it is said, not flagged.
    assert_eq!(flag(&c, "patient", "success"), Flag::Noise);
    // The p99 of 1,000 calls doubled, but its 99% interval is wide: said, not flagged.
    assert_eq!(flag(&c, "patient", "p99 ms"), Flag::Noise);
    assert!(
        c.notes.iter().any(|n| n.contains("differ in: backend")),
        "{:?}",
        c.notes
    );
}

#[test]
fn another_seed_is_noise_not_a_difference() {
    const PROFILE: &str = r#"
name = "noise"
[load]
arrival = "poisson"
rate = 500
duration = "10s"
[backend]
latency = { dist = "lognormal", median = "2ms", p99 = "20ms" }
errors = { UNAVAILABLE = 0.01 }
[[strategies]]
name = "one"
"#;
    let p = plan(PROFILE);
    let mut q = p.clone();
    q.seed = p.seed + 1;
    let (a, b) = (
        ResultsDoc::from_results(run_virtual(&p)),
        ResultsDoc::from_results(run_virtual(&q)),
    );
    let c = compare::compare(&a, &b, DEFAULT_THRESHOLD);
    // Failures 0.95% vs 0.77% of 5,000 calls: a fifth fewer, which chance explains.
    assert_eq!(flag(&c, "one", "success"), Flag::Noise);
    for label in ["p50 ms", "attempts/call"] {
        assert_eq!(flag(&c, "one", label), Flag::None, "{label}: {:?}", c.rows);
    }
    assert_eq!(
        c.flagged(),
        0,
        "nothing is called a difference: {:?}",
        c.rows
    );
}

#[test]
fn the_command_prints_the_table_and_writes_the_overlay_page() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (fixture("run-a.json"), fixture("run-b.json"));
    let out = resilbench(
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            "cmp.html",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("WORSE") && text.contains("within noise"),
        "{text}"
    );
    assert!(text.contains("B / A"));
    let html = std::fs::read_to_string(dir.path().join("cmp.html")).unwrap();
    let svgs = crate::report_page::svgs(&html);
    assert_eq!(svgs.len(), 1);
    assert!(html.contains("patient (A)") && html.contains("patient (B)"));
    assert!(html.contains("class=\"worse\""));

    let out = resilbench(&["compare", a.to_str().unwrap(), "nope.json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

/// A seed change alone on every shipped profile (virtual clock): differences within noise,
/// nothing WORSE.
#[test]
fn a_seed_change_alone_is_never_worse_on_the_shipped_profiles() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    for name in [
        "quickstart",
        "retry-storm",
        "hedging",
        "idempotency",
        "outage-breaker",
    ] {
        let p = resilbench::profile::load(
            &root.join(format!("{name}.toml")),
            &resilbench::profile::Overrides::default(),
        )
        .unwrap();
        let mut q = p.clone();
        q.seed = p.seed + 1000;
        let (a, b) = (
            ResultsDoc::from_results(run_virtual(&p)),
            ResultsDoc::from_results(run_virtual(&q)),
        );
        let c = compare::compare(&a, &b, DEFAULT_THRESHOLD);
        let worse: Vec<_> = c
            .rows
            .iter()
            .filter(|r| r.flag == Flag::Worse)
            .map(|r| format!("{} {} {:?} -> {:?}", r.strategy, r.label, r.a, r.b))
            .collect();
        assert!(worse.is_empty(), "{name}: {worse:#?}");
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("differ only in their seed")),
            "{name}: {:?}",
            c.notes
        );
    }
}

/// `--fail-on-worse` exits 1 on a real regression and 0 on identical runs; runs of different
/// profiles are refused (exit 2) unless `--force`; a partial run and another clock are said.
#[test]
fn compare_fails_on_worse_refuses_unrelated_runs_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (fixture("run-a.json"), fixture("run-b.json"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let out = resilbench(&["compare", a, b, "--fail-on-worse"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("--fail-on-worse: "));
    let out = resilbench(&["compare", a, a, "--fail-on-worse"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let mut other = crate::common::fixture_json("run-a.json");
    other["profile"]["name"] = "something-else".into();
    other["environment"]["clock"] = "real".into();
    other["partial"] = true.into();
    other["strategies"].as_array_mut().unwrap().truncate(2);
    let other = crate::common::write_json(dir.path(), "other.json", &other);
    let other = other.to_str().unwrap();
    let out = resilbench(&["compare", a, other], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("A is a run of profile `gate-fixture`, B of profile `something-else`"),
        "{}",
        stderr(&out)
    );
    let out = resilbench(&["compare", a, other, "--force"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("B is a partial run (interrupted): 2 of 3 strategies measured"),
        "{text}"
    );
    assert!(
        text.contains("A ran on a virtual clock, B on a real clock"),
        "{text}"
    );
}

/// The page labels a strategy with its client flavor, and says so when A and B differ.
#[test]
fn the_page_names_each_strategys_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = crate::common::fixture_json("run-a.json");
    let name = b["profile"]["strategies"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    b["profile"]["strategies"][0]["client"] = "grpc-java@1.41".into();
    let b = crate::common::write_json(dir.path(), "b.json", &b);
    let a = fixture("run-a.json");
    let out = resilbench(
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            "cmp.html",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(dir.path().join("cmp.html")).unwrap();
    assert!(
        html.contains(&format!("{name} (A: a6, B: grpc-java@1.41)")),
        "{html}"
    );
}
