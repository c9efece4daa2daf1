//! results.json: the contract. It round-trips, its histograms decode to its counts, and an
//! interrupted run still writes a complete, readable file marked partial.

use std::time::Duration;

use resilbench::clock::Clock;
use resilbench::clock::sim::SimClock;
use resilbench::progress::Progress;
use resilbench::record::histogram::Hist;
use resilbench::results::{Results, SCHEMA};
use resilbench::runner::{self, ClockMode, RunOptions};
use tokio_util::sync::CancellationToken;

use crate::common::{plan, run_virtual, virtual_runtime};

const PROFILE: &str = r#"
name = "rt"
seed = 7
[load]
arrival = "poisson"
rate = 200
duration = "5s"
warmup = "1s"
deadline = "100ms"
[backend]
latency = { dist = "lognormal", median = "5ms", p99 = "80ms" }
errors = { UNAVAILABLE = 0.02 }
[[strategies]]
name = "plain"
[[strategies]]
name = "tight"
deadline = "30ms"
"#;

#[test]
fn results_round_trip_and_histograms_decode_to_the_counts() {
    let results = run_virtual(&plan(PROFILE));
    let dir = tempfile::tempdir().unwrap();
    let path = runner::write_outputs(dir.path(), &results).unwrap();
    let back = Results::read(&path).unwrap();
    let mut expected = results.clone();
    for s in &mut expected.strategies {
        s.intervals.clear(); // written to the .hlog files, not to the JSON
    }
    assert_eq!(back, expected);
    assert_eq!(back.schema, SCHEMA);
    for s in &back.strategies {
        let completed = s.counts.succeeded + s.counts.failed;
        assert_eq!(Hist::decode(&s.histograms.e2e).unwrap().count(), completed);
        assert_eq!(
            Hist::decode(&s.histograms.e2e_ok).unwrap().count(),
            s.counts.succeeded
        );
        assert_eq!(
            Hist::decode(&s.histograms.attempt).unwrap().count(),
            s.attempts.total
        );
        assert_eq!(
            Hist::decode(&s.histograms.lag).unwrap().count(),
            s.counts.offered
        );
        assert_eq!(s.status.values().sum::<u64>(), completed);
        assert_eq!(s.attempts.per_call.values().sum::<u64>(), completed);
        let rows: u64 = s.timeline.iter().map(|r| r.offered).sum();
        assert_eq!(
            rows, s.counts.offered,
            "the timeline covers every offered call"
        );
        assert!(dir.path().join(format!("{}.hlog", s.name)).exists());
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_newer_schema_or_a_broken_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.json");
    std::fs::write(&p, r#"{"schema": "resilbench.results/v9"}"#).unwrap();
    let e = Results::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("resilbench.results/v9") && e.contains("not supported"),
        "{e}"
    );
    std::fs::write(&p, "{ not json").unwrap();
    assert!(
        Results::read(&p)
            .unwrap_err()
            .to_string()
            .contains("not JSON")
    );
    std::fs::write(&p, format!(r#"{{"schema": "{SCHEMA}", "partial": 3}}"#)).unwrap();
    assert!(Results::read(&p).unwrap_err().to_string().contains("field"));
}

#[test]
fn an_interrupted_run_is_partial_and_readable() {
    let plan = plan(PROFILE);
    let opts = RunOptions {
        clock: ClockMode::Virtual,
        target: None,
        progress: Progress::Quiet,
        shard: None,
        start_at: None,
        connect_timeout: resilbench::runner::CONNECT_TIMEOUT,
    };
    let stop = CancellationToken::new();
    let results = virtual_runtime().block_on(async {
        // Stops the run 2.5 s into the first strategy (0–5 s), on the run's own clock.
        let clock = Clock::Sim(SimClock::start());
        let (cancel, timer) = (stop.clone(), clock.clone());
        tokio::spawn(async move {
            timer.sleep(Duration::from_millis(2500)).await;
            cancel.cancel();
        });
        runner::execute(&plan, &opts, &clock, stop).await.unwrap()
    });
    assert!(results.partial);
    assert_eq!(
        results.strategies.len(),
        1,
        "the second strategy never started"
    );
    let s = &results.strategies[0];
    assert!(s.partial);
    assert!(
        (s.duration_s - 1.5).abs() < 1e-6,
        "measured 1.0 s → 2.5 s, got {}",
        s.duration_s
    );
    assert!(
        s.counts.offered > 200 && s.counts.offered < 400,
        "{:?}",
        s.counts
    );
    assert!(results.warnings.iter().any(|w| w.contains("interrupted")));
    let dir = tempfile::tempdir().unwrap();
    let path = runner::write_outputs(dir.path(), &results).unwrap();
    let back = Results::read(&path).unwrap();
    assert!(back.partial && back.strategies[0].partial);
}

/// A v1 file from a newer build (new keys, a layer kind this build does not know) still reads:
/// only its typed plan is unavailable.
#[test]
fn newer_v1_files_still_read() {
    let results = run_virtual(&plan(PROFILE));
    let mut json: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
    json["profile"]["strategies"][0]["layers"] =
        serde_json::json!([{ "kind": "teleport", "hops": 3 }]);
    json["profile"]["load"]["burst"] = serde_json::json!(true);
    json["strategies"][0]["new_figure"] = serde_json::json!(1.5);
    json["something_new"] = serde_json::json!({ "a": 1 });
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("newer.json");
    std::fs::write(&p, serde_json::to_string(&json).unwrap()).unwrap();
    let doc = resilbench::document::ResultsDoc::read(&p).unwrap();
    let back = doc.results.clone();
    assert_eq!(back.strategies.len(), 2);
    assert!(back.plan().is_none());
    assert!(results.plan().is_some());
    let mut table = Vec::new();
    resilbench::summary::write_summary(&mut table, &doc).unwrap();
    assert!(String::from_utf8(table).unwrap().contains("plain"));
}

/// A file written before `load.connections` existed reads as the one connection it ran with
/// (and so for other keys added since), so it compares and merges with a newer file of the
/// same profile as the same profile.
#[test]
fn a_file_from_before_load_connections_reads_as_one_connection() {
    let results = run_virtual(&plan(PROFILE));
    let mut json: serde_json::Value = serde_json::from_str(&results.to_json()).unwrap();
    assert_eq!(json["profile"]["load"]["connections"], 1);
    assert_eq!(json["profile"]["load"]["wake_quantum"], "100us");
    // As written before load.connections (and load.target_may_be_down, load.wake_quantum)
    // existed.
    let load = json["profile"]["load"].as_object_mut().unwrap();
    load.remove("connections");
    load.remove("target_may_be_down");
    load.remove("wake_quantum");
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.json"), dir.path().join("new.json"));
    std::fs::write(&old, serde_json::to_string(&json).unwrap()).unwrap();
    std::fs::write(&new, results.to_json()).unwrap();
    let (old, new) = (Results::read(&old).unwrap(), Results::read(&new).unwrap());
    assert_eq!(old.profile["load"]["connections"], 1);
    assert_eq!(old.profile, new.profile);
}
