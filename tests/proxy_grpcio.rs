//! `resilbench proxy` between implementations nobody here wrote: Python grpcio (gRPC C-core)
//! as the upstream (tests/python/echo_server.py) and as the client, with a retry service
//! config (tests/python/retry_client.py).
//!
//! grpcio comes from pip: `.ci/run` installs it (pinned) into a virtual environment and names
//! its interpreter in `RESILBENCH_PYTHON`. Without grpcio these tests say SKIPPED and pass,
//! except where `CI` is set, where a missing grpcio is a failure (as `grpcio_interop`).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

use crate::common::clients::control_stats;
use crate::common::stderr;
use crate::grpcio_interop::{PyServer, python};
use crate::own_service::run;
use crate::proxy::{start, strategy, target_section, through_and_direct};
use crate::proxy_faults::CALM;

/// run → proxy → grpcio's server meets the same faults as run → `serve` with the same
/// profile and seed, and the proxy counts the client's attempts (`through_and_direct`);
/// grpcio receives exactly what the proxy forwarded, without resilbench's headers.
#[test]
fn an_outage_through_the_proxy_to_grpcio_meets_the_same_faults_as_serve() {
    let Some(python) =
        python("an_outage_through_the_proxy_to_grpcio_meets_the_same_faults_as_serve")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let upstream = PyServer::start(&python, dir.path(), &[]);
    let (proxy, _) = through_and_direct(format!("127.0.0.1:{}", upstream.port));
    let forwarded = &proxy.proxy.as_ref().unwrap().counts().forwarded;
    let seen = upstream.seen();
    assert_eq!(seen.len() as u64, forwarded.load(Ordering::Relaxed));
    assert!(!seen.is_empty());
    // (C-core takes `grpc-timeout` out of the metadata it shows; tests/proxy.rs checks the
    // time left against tonic's server.)
    for call in &seen {
        assert!(call.metadata.keys().all(|k| !k.starts_with("resilbench-")));
    }
}

/// What retry_client.py printed: each call's status.
fn client(python: &str, target: &str, calls: u32, max_attempts: u32) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/retry_client.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--target", target, "--calls", &calls.to_string()])
        .args(["--max-attempts", &max_attempts.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    line["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// The attempts the proxy's Stats counted so far.
fn received(addr: &str) -> u64 {
    crate::common::runtime()
        .block_on(control_stats(addr))
        .received
}

/// A real C-core client with a retry service config, through a proxy whose outage covers
/// the whole test: every call fails UNAVAILABLE after exactly the attempts its config allows,
/// as the proxy's Stats count them: 3 for maxAttempts 3, and 5 for maxAttempts 7 (gRFC A6:
/// values above 5 are treated as 5). Nothing reaches the upstream.
#[test]
fn a_grpcio_client_with_retries_makes_the_attempts_its_config_allows_through_an_outage() {
    let Some(python) = python(
        "a_grpcio_client_with_retries_makes_the_attempts_its_config_allows_through_an_outage",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let upstream = PyServer::start(&python, dir.path(), &[]);
    let outage = "[load]\nrate = 1\n[[phases]]\nkind = \"outage\"\nstart = \"0s\"\n\
                  duration = \"1h\"\n[[strategies]]\nname = \"s\"\n";
    let proxy = start(outage, Some(format!("127.0.0.1:{}", upstream.port)));
    let codes = client(&python, &proxy.addr, 5, 3);
    assert_eq!(codes, vec!["UNAVAILABLE"; 5]);
    assert_eq!(received(&proxy.addr), 5 * 3, "3 attempts per call");
    let codes = client(&python, &proxy.addr, 5, 7);
    assert_eq!(codes, vec!["UNAVAILABLE"; 5]);
    assert_eq!(
        received(&proxy.addr),
        5 * 3 + 5 * 5,
        "5 attempts per call at most"
    );
    let counts = proxy.proxy.as_ref().unwrap().counts();
    assert_eq!(counts.forwarded.load(Ordering::Relaxed), 0);
    assert!(upstream.seen().is_empty());
}

/// grpcio's server going away every 300 ms (`grpc.max_connection_age_ms`: C-core's graceful
/// GOAWAY, 2^31-1 then the last stream id) under the proxy, one stream at a time
/// (`grpc.max_concurrent_streams = 1`, overload protection off, 4 ms a call, Poisson
/// arrivals at half its capacity), for a strategy without retries. C-core leaves no stream
/// above its last id (it processes what came before its final GOAWAY), but a call waiting
/// for the one slot when the GOAWAY comes was never sent: the proxy sends it on the new
/// connection (a few per run; before it did, each was an UNAVAILABLE at the client, 2 and 6
/// in two runs). No call fails, grpcio receives each attempt once, and the fault model counts
/// the client's attempts.
#[test]
fn a_grpcio_upstream_that_keeps_going_away_fails_no_call_through_the_proxy() {
    let Some(python) =
        python("a_grpcio_upstream_that_keeps_going_away_fails_no_call_through_the_proxy")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--max-connection-age-ms",
        "300",
        "--max-concurrent-streams",
        "1",
        "--delay-ms",
        "4",
        "--overload-protection",
        "0",
    ];
    let upstream = PyServer::start(&python, dir.path(), &args);
    let proxy = start(CALM, Some(format!("127.0.0.1:{}", upstream.port)));
    let profile = format!(
        "name = \"goaway\"\n[load]\nrate = 125\narrival = \"poisson\"\nduration = \"3s\"\ndeadline = \"2s\"\n\
         [[strategies]]\nname = \"baseline\"\n{}",
        target_section(&proxy.addr)
    );
    let (out, results) = run(dir.path(), &profile, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = results.unwrap();
    let s = strategy(&results, "baseline");
    assert_eq!(
        s.status.get("OK").copied().unwrap_or(0),
        s.counts.sent,
        "{:?}",
        s.status
    );
    let p = proxy.proxy.as_ref().unwrap();
    let counts = p.counts();
    let (forwarded, resent) = (
        counts.forwarded.load(Ordering::Relaxed),
        counts.resent.load(Ordering::Relaxed),
    );
    assert_eq!(s.backend.as_ref().unwrap().received, s.attempts.total);
    assert_eq!(upstream.seen().len() as u64, forwarded);
    eprintln!("{forwarded} forwarded, {resent} sent again after grpcio went away");
}
