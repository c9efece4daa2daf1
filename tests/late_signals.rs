//! Signals once a run's results are written, while it prints what is left (the export's
//! paths, the gate's table): the first Ctrl-C exits at once, 130, with the run on disk.
//! (The runtime used to be shut down before the gate, leaving tokio's handler installed and
//! nobody reading it: a Ctrl-C then did nothing, review L7.)
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use resilbench::results::Results;

use crate::common::bin;

/// A hundred strategies and ten limits for each: the gate's table (about 110 KB) is more than
/// a pipe holds, so a run whose standard output is not read stops in it, after the write.
fn gated_profile() -> String {
    let mut text = String::from("[load]\nrate = 20\nduration = \"2s\"\n");
    for i in 0..100 {
        text.push_str(&format!("[[strategies]]\nname = \"s{i}\"\n"));
    }
    text.push_str("[gate.limits]\n");
    for (figure, limit) in [
        ("success_rate", ">= 1%"),
        ("goodput.fraction", ">= 1%"),
        ("latency_ms.e2e.p50", "<= 10000"),
        ("latency_ms.e2e.p99", "<= 10000"),
        ("latency_ms.e2e.p999", "<= 10000"),
        ("attempts.total", ">= 0"),
        ("counts.failed", ">= 0"),
        ("counts.dropped", "<= 1000000"),
        ("counts.sent", ">= 0"),
        ("amplification.client", "<= 10"),
    ] {
        text.push_str(&format!("\"{figure}\" = \"{limit}\"\n"));
    }
    text
}

#[test]
fn sigint_after_the_results_are_written_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gated.toml"), gated_profile()).unwrap();
    let mut child = bin()
        .args([
            "run",
            "gated.toml",
            "--clock",
            "virtual",
            "-q",
            "--out",
            "out",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read up to the line that says the results are written, then read no more.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let written = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.starts_with("results:"));
    assert!(written);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended though its gate's table was not read"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a Ctrl-C after the results were written was not answered in 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(130));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("interrupted: the results are written; exiting without the gate's verdict"),
        "{err}"
    );
    // The run is whole on disk: a hundred strategies, not partial.
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    assert_eq!(r.strategies.len(), 100);
    assert!(!r.partial);
}
