//! Against a gRPC server nobody on this project wrote: Python grpcio (gRPC C-core's HTTP/2
//! stack), the one foreign Python server of the tests (`tests/python/echo_server.py`, also
//! tests/grpcio_interop.rs's) with the C-core options below, called as one's own service
//! (`[target]`, `acme.echo.v1.Echo/Say` from the tests' protoset).
//!
//! - `grpc.max_concurrent_streams = 10`, its calls slowed so that about ten are open at
//!   once: C-core refuses streams (RST_STREAM REFUSED_STREAM) although the client never opens
//!   more than ten (its overload protection counts a stream until the application has
//!   finished with it: docs/targets.md). Every refusal is counted, the A6 text sends one per
//!   call again at once, the C-core flavor none, and every UNAVAILABLE is a refusal that was
//!   not sent again: no failure is left unexplained.
//! - `grpc.max_connection_age_ms`: the server sends GOAWAY every 300 ms; the client opens
//!   another connection each time, keeps its schedule and loses no call.
//!
//! Needs `python3` with grpcio (`RESILBENCH_PYTHON` names another interpreter; `.ci/run`
//! installs grpcio in a venv and sets it). Without it the tests say so and pass, except under
//! `CI`, where a missing grpcio is a failure.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::foreign;
use crate::common::{resilbench, stderr};

/// The interpreter with grpcio, or `None` (after saying why) when there is none outside CI.
fn python() -> Option<String> {
    let python = std::env::var("RESILBENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import grpc, grpc_reflection"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{python} cannot import grpc and grpc_reflection, and CI is set: .ci/run must install them"
    );
    eprintln!(
        "skipped: {python} has no grpcio (pip install grpcio grpcio-reflection, or set \
         RESILBENCH_PYTHON); CI=true makes this a failure"
    );
    None
}

/// A running grpcio server, killed (by its id) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts echo_server.py with `args`, its protoset written into `dir` (where the profile
    /// names it), without a call log (a line per call would slow the server measured).
    fn start(python: &str, dir: &Path, args: &[&str]) -> Server {
        std::fs::write(dir.join("echo.protoset"), foreign::PROTOSET).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/echo_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--protoset")
            .arg(dir.join("echo.protoset"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the grpcio server starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the grpcio server prints its port within a minute");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("the grpcio server did not print its port: {line:?}\n{err}")
            });
        Server { child, port }
    }

    /// Stops the server; what it wrote to stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        err
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `profile` against the server, as its `[target]`; its results, and the summary it
/// printed.
fn run(dir: &Path, profile: &str, server: &Server) -> (Value, String) {
    let target = format!(
        "\n[target]\naddress = \"127.0.0.1:{}\"\nprotoset = \"echo.protoset\"\n\
         method = \"acme.echo.v1.Echo/Say\"\nrequest = '{{\"id\": \"{{{{call}}}}\"}}'\n",
        server.port
    );
    std::fs::write(dir.join("p.toml"), format!("{profile}{target}")).unwrap();
    let out = resilbench(&["run", "p.toml", "--out", "out"], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.join("out/results.json")).unwrap();
    let results: Value = serde_json::from_str(&text).unwrap();
    (results, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn count(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

#[test]
fn a_grpcio_server_at_its_stream_limit_refuses_streams_and_every_failure_is_explained() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &python,
        dir.path(),
        &["--max-concurrent-streams", "10", "--delay-ms", "5"],
    );
    let (results, summary) = run(
        dir.path(),
        r#"name = "grpcio-streams"
[load]
rate = 1500
duration = "3s"

[[strategies]]
name = "a6"

[[strategies]]
name = "c-core"
client = "c-core"
layers = [{ kind = "grpc_retry", max_attempts = 2, initial_backoff = "10ms",
            max_backoff = "10ms", backoff_multiplier = 1,
            retryable_status_codes = ["RESOURCE_EXHAUSTED"] }]
"#,
        &server,
    );
    server.stop();
    // The user's own service is sent nothing but the calls: nothing only a backend knows is
    // made up.
    assert!(
        summary.contains("The target is your own service"),
        "{summary}"
    );
    let warnings = results["warnings"].to_string();
    for s in results["strategies"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let (sent, ok, failed) = (
            count(s, "/counts/sent"),
            count(s, "/counts/succeeded"),
            count(s, "/counts/failed"),
        );
        assert_eq!(
            (ok + failed, count(s, "/counts/unfinished")),
            (sent, 0),
            "{s}"
        );
        let refused = count(s, "/attempts/not_processed/refused");
        let not_processed = refused
            + count(s, "/attempts/not_processed/goaway")
            + count(s, "/attempts/not_processed/unsent");
        let transparent = count(s, "/attempts/transparent");
        assert!(refused > 0, "{name}: C-core refused no stream: {s}");
        // Every UNAVAILABLE is a stream the server refused and the client did not send again.
        assert_eq!(
            count(s, "/status/UNAVAILABLE"),
            not_processed - transparent,
            "{name}: {s}"
        );
        assert!(s["backend"].is_null() && s["amplification"]["backend"].is_null());
        assert_eq!(s["backend_gap"], "not_asked");
        // The policy saw none of the transparent retries: one attempt per call.
        assert_eq!(count(s, "/attempts/total"), sent, "{name}");
        match name {
            // Once per call at most.
            "a6" => assert!(transparent > 0 && transparent <= sent, "{s}"),
            // C-core does not mark RST_STREAM(REFUSED_STREAM) as not seen by the server.
            _ => assert_eq!(transparent, 0, "{s}"),
        }
        assert!(
            warnings.contains(&format!(
                "{name}: the server did not process {not_processed} streams"
            )),
            "{warnings}"
        );
        eprintln!(
            "{name}: {sent} calls, {failed} failed, {refused} streams refused, {transparent} \
             sent again"
        );
    }
}

#[test]
fn a_grpcio_server_that_goes_away_mid_run_loses_no_call() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &python,
        dir.path(),
        &[
            "--max-connection-age-ms",
            "300",
            "--max-connection-age-grace-ms",
            "5000",
        ],
    );
    let (results, _) = run(
        dir.path(),
        "name = \"grpcio-goaway\"\n[load]\nrate = 500\nduration = \"3s\"\n\
         [[strategies]]\nname = \"a6\"\n",
        &server,
    );
    let log = server.stop();
    let s = &results["strategies"][0];
    let sent = count(s, "/counts/sent");
    // Nothing lost: every call answered OK, none left over.
    assert_eq!(
        (
            count(s, "/counts/succeeded"),
            count(s, "/counts/unfinished")
        ),
        (sent, 0),
        "{s}"
    );
    assert_eq!(count(s, "/counts/offered"), 1500, "{s}");
    // The schedule kept: every call offered was sent, at the rate offered.
    let g = &s["generator"];
    assert!(
        g["achieved_rate"].as_f64().unwrap() >= 0.99 * g["offered_rate"].as_f64().unwrap(),
        "{g}"
    );
    // Every stream the server did not process was sent again (GOAWAY is transparent).
    let not_processed = count(s, "/attempts/not_processed/refused")
        + count(s, "/attempts/not_processed/goaway")
        + count(s, "/attempts/not_processed/unsent");
    assert_eq!(count(s, "/attempts/transparent"), not_processed, "{s}");
    // The server went away several times, and the client came back each time.
    let connections = log.lines().filter(|l| l.starts_with("peer ")).count();
    assert!(connections >= 3, "{connections} connections:\n{log}");
    eprintln!(
        "{sent} calls over {connections} connections, {not_processed} streams not processed, \
         all sent again"
    );
}
