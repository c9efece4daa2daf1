//! Real runs over loopback TCP: the embedded backend (port 0), `serve` in another process with
//! `--target`, and an interrupted run. These check behaviour, not speed: their assertions hold
//! on a slow or busy machine.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use resilbench::results::Results;

use crate::common::{bin, resilbench, stderr};

const PROFILE: &str = r#"
name = "e2e"
seed = 3
[load]
rate = 200
duration = "2s"
warmup = "200ms"
deadline = "500ms"
[backend]
latency = "1ms"
errors = { UNAVAILABLE = 0.05 }
[[strategies]]
name = "baseline"
[[strategies]]
name = "with-timeout"
layers = [{ kind = "timeout", timeout = "100ms" }]
"#;

fn write_profile(dir: &std::path::Path) {
    std::fs::write(dir.join("p.toml"), PROFILE).unwrap();
}

fn check_results(r: &Results, target: &str) {
    assert!(!r.partial);
    assert_eq!(r.environment.clock, "real");
    assert_eq!(r.environment.target, target);
    assert_eq!(r.strategies.len(), 2);
    for s in &r.strategies {
        // 1.8 s measured at 200/s: 360 calls offered, by the schedule, whatever the machine.
        assert_eq!(s.counts.offered, 360, "{}", s.name);
        assert_eq!(s.counts.succeeded + s.counts.failed + s.counts.dropped, 360);
        let unavailable = *s.status.get("UNAVAILABLE").unwrap_or(&0) as f64 / 360.0;
        assert!(
            unavailable > 0.01 && unavailable < 0.12,
            "{}: UNAVAILABLE share {unavailable}",
            s.name
        );
        let backend = s.backend.as_ref().expect("backend figures");
        // Every attempt reached the backend, except perhaps attempts the client abandoned
        // (timed out) before they arrived, which a slow CI machine could produce.
        let abandoned: u64 = ["CANCELLED", "DEADLINE_EXCEEDED"]
            .iter()
            .filter_map(|c| s.attempts.status.get(*c))
            .sum();
        assert!(
            backend.received <= s.attempts.total
                && backend.received + abandoned >= s.attempts.total,
            "{}: backend received {} of {} attempts ({abandoned} abandoned)",
            s.name,
            backend.received,
            s.attempts.total
        );
        let e2e = s.latency_ms.e2e.unwrap();
        assert!(
            e2e.p50 >= 1.0,
            "a 1 ms backend cannot answer faster than 1 ms: {}",
            e2e.p50
        );
    }
}

#[test]
fn run_against_the_embedded_backend_over_loopback() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path());
    let out = resilbench(&["run", "p.toml", "--out", "out", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("baseline") && table.contains("with-timeout") && table.contains("p99 ms"),
        "{table}"
    );
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    check_results(&r, "embedded");
    assert!(dir.path().join("out/baseline.hlog").exists());
}

/// Starts `resilbench serve` on an ephemeral port and returns it with its address.
fn serve(dir: &std::path::Path) -> (Server, String) {
    let (child, addr, _) = serve_with(dir, "p.toml", &[]);
    (child, addr)
}

/// Starts `resilbench serve PROFILE ARGS` on an ephemeral port; returns it, its address, and
/// the lines it prints after the first.
/// A `serve` process, killed when dropped, so a failing test never leaves it running (and
/// holding the test harness's output pipe open).
pub(crate) struct Server(pub(crate) Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn serve_with(
    dir: &std::path::Path,
    profile: &str,
    args: &[&str],
) -> (Server, String, std::sync::mpsc::Receiver<String>) {
    serve_on(dir, profile, "127.0.0.1:0", args)
}

/// Starts `resilbench serve PROFILE --listen LISTEN ARGS`, as [`serve_with`].
pub(crate) fn serve_on(
    dir: &std::path::Path,
    profile: &str,
    listen: &str,
    args: &[&str],
) -> (Server, String, std::sync::mpsc::Receiver<String>) {
    let mut child = bin()
        .args(["serve", profile, "--listen", listen])
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines.next().expect("serve prints its address").unwrap();
    let addr = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    // Keep draining stderr so the server never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Server(child), addr, rx)
}

/// `serve` as a sandbox for any gRPC client: the generated client calls it over real TCP with
/// a scripted request id, the way an operator checks a service config by hand.
#[test]
fn serve_answers_a_scripted_sequence_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sandbox.toml"),
        r#"
[load]
rate = 1
[backend]
latency = "1ms"
[[backend.scripts]]
ids = ["123abc"]
steps = ["UNAVAILABLE", { status = "UNKNOWN", pushback = "250" }, "OK"]
[[strategies]]
name = "s"
"#,
    )
    .unwrap();
    let (mut server, addr, lines) = serve_with(dir.path(), "sandbox.toml", &["--log-attempts"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = rt.block_on(async {
        let mut client =
            resilbench::pb::backend_client::BackendClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        let mut seen = Vec::new();
        for previous in 0..3u32 {
            let mut request = tonic::Request::new(resilbench::pb::CallRequest {
                request_id: "123abc".into(),
                ..Default::default()
            });
            // As a gRPC client: no header on the first attempt (gRFC A6).
            if previous > 0 {
                request
                    .metadata_mut()
                    .insert("grpc-previous-rpc-attempts", previous.into());
            }
            seen.push(match client.call(request).await {
                Ok(reply) => (tonic::Code::Ok, reply.into_inner().attempt, None),
                Err(status) => (
                    status.code(),
                    0,
                    status
                        .metadata()
                        .get("grpc-retry-pushback-ms")
                        .map(|v| v.to_str().unwrap().to_string()),
                ),
            });
        }
        seen
    });
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        seen,
        vec![
            (tonic::Code::Unavailable, 0, None),
            (tonic::Code::Unknown, 0, Some("250".to_string())),
            (tonic::Code::Ok, 3, None),
        ]
    );
    // The server is gone: its stderr reaches EOF and the reader hands over every line.
    let logged: Vec<String> = lines.iter().collect();
    assert!(
        logged.iter().any(|l| l.contains(
            "request_id=123abc attempt=2 grpc-previous-rpc-attempts=1 status=UNKNOWN pushback=250"
        )),
        "{logged:?}"
    );
    // An absent header is logged as absent, not as 0.
    assert!(
        logged.iter().any(|l| l.contains(
            "request_id=123abc attempt=1 grpc-previous-rpc-attempts=absent status=UNAVAILABLE"
        )),
        "{logged:?}"
    );
}

#[test]
fn run_against_serve_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path());
    let (mut server, addr) = serve(dir.path());
    let out = resilbench(
        &[
            "run", "p.toml", "--out", "out", "--quiet", "--target", &addr,
        ],
        dir.path(),
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("another backend"),
        "{}",
        stderr(&out)
    );
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    check_results(&r, &addr);
}

/// A run against `serve` of another profile says so (through the Control service, which tells
/// which backend it serves), and its report describes the backend that actually ran.
#[test]
fn run_against_serve_of_another_profile_warns_and_reports_the_served_backend() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path());
    let (mut server, addr, _) = serve_with(dir.path(), "quickstart", &[]);
    let out = resilbench(
        &[
            "run",
            "p.toml",
            "--out",
            "out",
            "--quiet",
            "--target",
            &addr,
            "--duration",
            "1s",
            "--strategy",
            "baseline",
        ],
        dir.path(),
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "the target {addr} serves another backend than this profile's"
        )) && err.contains("seed, backend"),
        "{err}"
    );
    assert_eq!(
        err.matches("another backend").count(),
        1,
        "said once: {err}"
    );
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(
        html.contains("served another backend than the profile"),
        "{html:.2000}"
    );
    assert!(
        html.contains("lognormal, median 2ms, p99 40ms"),
        "the quickstart's backend, which ran, is described"
    );
}

#[test]
fn an_unreachable_target_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path());
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = resilbench(
        &[
            "run", "p.toml", "--out", "out", "--quiet", "--target", &addr,
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the target {addr}")),
        "{err}"
    );
    assert!(!dir.path().join("out/results.json").exists());

    // Unless the profile says the target may be down: then the run goes ahead, and every
    // call fails with UNAVAILABLE.
    let text = std::fs::read_to_string(dir.path().join("p.toml")).unwrap();
    let down_ok = text.replace("[load]", "[load]\ntarget_may_be_down = true");
    std::fs::write(dir.path().join("p.toml"), down_ok).unwrap();
    let out = resilbench(
        &[
            "run", "p.toml", "--out", "out", "--quiet", "--target", &addr,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("running anyway"), "{}", stderr(&out));
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    for s in &r.strategies {
        assert_eq!(
            s.status.get("UNAVAILABLE"),
            Some(&s.counts.offered),
            "{:?}",
            s.status
        );
        assert!(s.backend.is_none());
    }
}

#[cfg(unix)]
#[test]
fn sigint_ends_the_run_early_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("long.toml"),
        PROFILE.replace("duration = \"2s\"", "duration = \"60s\""),
    )
    .unwrap();
    let child = bin()
        .args(["run", "long.toml", "--out", "out", "--quiet"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Another process runs on the wall clock; there is no runtime to wait on here.
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(1500));
    // The shell's own `kill`, so the test needs no procps.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    assert!(r.partial);
    assert!(r.strategies[0].partial);
    assert!(r.strategies[0].counts.offered > 0);
}

/// Over real TCP: a mutation answered from the dedup store, a stream that fails after its
/// third message, a script sent with the request, and the replica header (a malformed one is
/// refused).
#[test]
fn serve_speaks_every_method_over_tcp() {
    use resilbench::pb::{CallRequest, MutateRequest, ScriptStep};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("all.toml"),
        r#"
[load]
rate = 1
[backend]
latency = "1ms"
[backend.mutation]
lost_response = { rate = 1.0 }
dedup = true
[backend.stream]
messages = 5
interval = "1ms"
fail_after = { message = 3, rate = 1.0, status = "DATA_LOSS" }
[[backend.replicas]]
name = "one"
[[backend.replicas]]
name = "two"
errors = { PERMISSION_DENIED = 1.0 }
[[strategies]]
name = "s"
"#,
    )
    .unwrap();
    // One thread: the same answers as the default (serve --threads).
    let (mut server, addr, _lines) = serve_with(dir.path(), "all.toml", &["--threads", "1"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client =
            resilbench::pb::backend_client::BackendClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        // The reply to the first execution is lost; the repeat with the same key gets the
        // stored result.
        let mutate = || MutateRequest {
            request_id: "m1".into(),
            idempotency_key: "key-1".into(),
            ..Default::default()
        };
        let first = client.mutate(mutate()).await.unwrap_err();
        assert_eq!(first.code(), tonic::Code::Unavailable);
        let repeat = client.mutate(mutate()).await.unwrap().into_inner();
        assert_eq!(repeat.request_id, "m1");
        // Three messages, then DATA_LOSS.
        let mut stream = client
            .stream(CallRequest {
                request_id: "s1".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut got = Vec::new();
        let end = loop {
            match stream.message().await {
                Ok(Some(m)) => got.push(m.message),
                Ok(None) => break tonic::Code::Ok,
                Err(status) => break status.code(),
            }
        };
        assert_eq!((got, end), (vec![1, 2, 3], tonic::Code::DataLoss));
        // A stream that fails before its first message is answered Trailers-Only: the call
        // fails before any response headers, so a gRPC client may still retry it (gRFC A6).
        let early = client
            .stream(CallRequest {
                request_id: "s2".into(),
                script: vec![ScriptStep {
                    status_code: 14,
                    latency_ms: 0,
                    pushback: String::new(),
                }],
                ..Default::default()
            })
            .await;
        assert_eq!(
            early.err().map(|s| s.code()),
            Some(tonic::Code::Unavailable)
        );
        // A script carried by the request itself.
        let scripted = CallRequest {
            request_id: "c1".into(),
            script: vec![ScriptStep {
                status_code: 10,
                latency_ms: 0,
                pushback: "-1".into(),
            }],
            ..Default::default()
        };
        let status = client.call(scripted.clone()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Aborted);
        assert_eq!(
            status.metadata().get("grpc-retry-pushback-ms").unwrap(),
            "-1"
        );
        assert!(client.call(scripted).await.is_ok(), "past the script: OK");
        // Replica "two" (index 1) denies everything; a malformed replica header is refused.
        let mut to_two = tonic::Request::new(CallRequest {
            request_id: "r1".into(),
            ..Default::default()
        });
        to_two
            .metadata_mut()
            .insert("resilbench-replica", "1".parse().unwrap());
        assert_eq!(
            client.call(to_two).await.unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        let mut bad = tonic::Request::new(CallRequest {
            request_id: "r2".into(),
            ..Default::default()
        });
        bad.metadata_mut()
            .insert("resilbench-replica", "two".parse().unwrap());
        let refused = client.call(bad).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().contains("resilbench-replica"),
            "{}",
            refused.message()
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}

/// Runs profile text on the real clock against the embedded backend (over loopback TCP);
/// returns its results.
fn run_real(toml: &str) -> Results {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), toml).unwrap();
    let out = resilbench(&["run", "p.toml", "--out", "out", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    Results::read(&dir.path().join("out/results.json")).unwrap()
}

/// Over real TCP, through the gRPC transport: a stream's response headers commit the call
/// (gRFC A6), so a hedge due after them is never sent. Each stream takes about 100 ms and
/// its headers come after 5 ms; without the commit every call would be hedged at 50 ms.
#[test]
fn response_headers_commit_a_hedged_stream_over_tcp() {
    let r = run_real(
        r#"
[load]
arrival = "constant"
rate = 50
duration = "1s"
deadline = "2s"
method = "stream"
[backend]
latency = "5ms"
[backend.stream]
messages = 10
interval = "10ms"
[[strategies]]
name = "hedged"
[[strategies.layers]]
kind = "grpc_hedge"
max_attempts = 2
hedging_delay = "50ms"
"#,
    );
    let s = &r.strategies[0];
    assert_eq!(s.counts.succeeded, 50);
    assert_eq!(s.stream.unwrap().messages, 500);
    assert!(
        s.attempts.hedges < 25,
        "{} of 50 calls hedged after their headers",
        s.attempts.hedges
    );
}

/// The target dies in the middle of a run and comes back: the run goes on, records the
/// failures with their status, ends on schedule with complete results, and calls succeed
/// again once the target is back.
#[test]
// Other processes run on the wall clock; there is no runtime to wait on or time here.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn a_target_killed_mid_run_fails_calls_until_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.toml"),
        r#"
[load]
arrival = "constant"
rate = 100
duration = "5s"
deadline = "250ms"
[backend]
latency = "1ms"
[[strategies]]
name = "plain"
"#,
    )
    .unwrap();
    let (mut server, addr, _) = serve_with(dir.path(), "k.toml", &[]);
    let started = std::time::Instant::now();
    let run = bin()
        .args([
            "run", "k.toml", "--out", "out", "--quiet", "--target", &addr,
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill().unwrap();
    server.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let (_back, again, _) = serve_on(dir.path(), "k.toml", &addr, &[]);
    assert_eq!(again, addr);
    let out = run.wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    // 5 s of schedule, a connection check and writing the results: never the deadline of
    // every call stacked up.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    assert!(!r.partial);
    let s = &r.strategies[0];
    assert_eq!(s.counts.offered, 500);
    assert_eq!(s.counts.succeeded + s.counts.failed + s.counts.dropped, 500);
    assert_eq!(s.counts.unfinished, 0);
    // While it was down, calls failed with UNAVAILABLE (or at their deadline).
    let down: u64 = ["UNAVAILABLE", "DEADLINE_EXCEEDED"]
        .iter()
        .filter_map(|c| s.status.get(*c))
        .sum();
    assert!(down >= 50, "{:?}", s.status);
    // Before the kill and after the restart, calls succeeded.
    let ok_in = |t: u64| {
        s.timeline
            .iter()
            .find(|row| row.t == t)
            .map_or(0, |row| row.succeeded)
    };
    assert!(ok_in(0) > 50, "{:?}", s.timeline);
    assert!(ok_in(4) > 50, "{:?}", s.timeline);
    assert!(ok_in(2) < 50, "{:?}", s.timeline);
}

/// An output folder that cannot be made is refused before the run starts, with the path and
/// the reason, and nothing is written.
#[test]
fn an_output_folder_that_cannot_be_made_is_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path());
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let out = resilbench(
        &["run", "p.toml", "--out", "a-file/out", "--quiet"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot write a-file/out: Not a directory"),
        "{err}"
    );
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a-file")).unwrap(),
        ""
    );
}

/// SIGTERM or SIGKILL at any moment of a run, writing included: results.json is the previous
/// complete file or the new one, never part of one.
#[cfg(unix)]
#[test]
// Another process runs on the wall clock; there is no runtime to wait on here.
#[allow(clippy::disallowed_methods)]
fn a_run_killed_at_any_moment_leaves_a_whole_results_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        PROFILE.replace("rate = 200", "rate = 20000"),
    )
    .unwrap();
    let args = [
        "run", "w.toml", "--out", "out", "--quiet", "--clock", "virtual",
    ];
    let first = resilbench(&args, dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    let results = dir.path().join("out/results.json");
    let mut outcomes = std::collections::BTreeMap::new();
    for (i, delay) in [0u64, 10, 25, 50, 75, 100, 150, 200, 300, 400]
        .iter()
        .enumerate()
    {
        let signal = if i % 2 == 0 { "TERM" } else { "KILL" };
        let child = bin()
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = std::process::Command::new("sh")
            .args(["-c", &format!("kill -{signal} {} 2>/dev/null", child.id())])
            .status();
        let status = child.wait_with_output().unwrap().status;
        *outcomes
            .entry(format!("{signal} {:?}", status.code()))
            .or_insert(0) += 1;
        let r = Results::read(&results)
            .unwrap_or_else(|e| panic!("after SIG{signal} at {delay} ms: {e}"));
        // The previous complete file, a new complete one, or a new one marked partial.
        assert!(
            r.partial || r.strategies.len() == 2,
            "{signal} at {delay} ms"
        );
        *outcomes
            .entry(format!("partial {}", r.partial))
            .or_insert(0) += 1;
    }
    // The kills landed at different moments: some runs were cut short, some not.
    assert!(outcomes.len() > 2, "{outcomes:?}");
}

/// `serve` answers untrusted clients: a request id or idempotency key over 256 bytes, a
/// script over 64 steps, and a message over gRPC's 4 MiB limit are refused, so no client can
/// make the backend hold what it sends; the server goes on answering.
#[test]
fn serve_refuses_requests_that_would_make_it_hold_too_much() {
    use resilbench::pb::{CallRequest, MutateRequest, ScriptStep};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[load]\nrate = 1\n[[strategies]]\nname = \"s\"\n",
    )
    .unwrap();
    let (_server, addr, _lines) = serve_with(dir.path(), "s.toml", &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client =
            resilbench::pb::backend_client::BackendClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        let long_id = CallRequest {
            request_id: "x".repeat(257),
            ..Default::default()
        };
        let refused = client.call(long_id).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        let long_key = MutateRequest {
            request_id: "m".into(),
            idempotency_key: "k".repeat(257),
            ..Default::default()
        };
        let refused = client.mutate(long_key).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        let long_script = CallRequest {
            request_id: "s".into(),
            script: vec![ScriptStep::default(); 65],
            ..Default::default()
        };
        let refused = client.call(long_script).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        let huge = CallRequest {
            request_id: "h".into(),
            payload: vec![0u8; 5 << 20].into(),
            ..Default::default()
        };
        let refused = client.call(huge).await.unwrap_err();
        assert!(
            matches!(
                refused.code(),
                tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
            ),
            "{refused:?}"
        );
        // At the limits, and after all that: answered.
        let fine = CallRequest {
            request_id: "y".repeat(256),
            script: vec![ScriptStep::default(); 64],
            ..Default::default()
        };
        assert!(client.call(fine).await.is_ok());
    });
}

/// Three shard processes with a common `--start-at` against one `serve`, merged: the same
/// calls offered, at the same rate, as one process running the whole schedule. (Every call
/// must succeed: the deadline is 1 s, not the 200 ms it was, under which four processes on
/// two loaded cores once let 12 of 935 calls time out: latency is not what this measures.)
#[test]
fn three_shard_processes_with_a_common_start_merge_into_one_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        r#"
seed = 4
[load]
arrival = "poisson"
rate = 300
duration = "3s"
deadline = "1s"
[backend]
latency = "1ms"
[[strategies]]
name = "plain"
"#,
    )
    .unwrap();
    let (_server, addr, _) = serve_with(dir.path(), "s.toml", &[]);
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 2000;
    let shards: Vec<Child> = (0..3)
        .map(|k| {
            let (shard, out) = (format!("{k}/3"), format!("s{k}"));
            let at = at.to_string();
            bin()
                .args([
                    "run", "s.toml", "--quiet", "--target", &addr, "--shard", &shard,
                ])
                .args(["--start-at", &at, "--out", &out])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in shards {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let merged = resilbench(&["merge", "s0", "s1", "s2", "--out", "m"], dir.path());
    assert!(merged.status.success(), "{}", stderr(&merged));
    let single = resilbench(
        &[
            "run", "s.toml", "--quiet", "--target", &addr, "--out", "one",
        ],
        dir.path(),
    );
    assert!(single.status.success(), "{}", stderr(&single));
    let (m, one) = (
        Results::read(&dir.path().join("m/results.json")).unwrap(),
        Results::read(&dir.path().join("one/results.json")).unwrap(),
    );
    let (ms, os) = (&m.strategies[0], &one.strategies[0]);
    assert_eq!(ms.counts.offered, os.counts.offered);
    let rate = ms.generator.offered_rate / os.generator.offered_rate;
    assert!((rate - 1.0).abs() < 0.01, "offered rate ratio {rate}");
    let achieved = ms.generator.achieved_rate / os.generator.achieved_rate;
    assert!(
        (achieved - 1.0).abs() < 0.01,
        "achieved rate ratio {achieved}"
    );
    assert_eq!(ms.counts.succeeded, ms.counts.offered);
    // The target was reset once for the run (the three keyed resets are one) and read at the
    // end of the slot by every shard: it saw exactly the attempts the three shards sent.
    assert_eq!(ms.backend.as_ref().unwrap().received, ms.attempts.total);
    // Every shard's schedule started at the given instant: their timelines line up.
    for k in 0..3 {
        let r = Results::read(&dir.path().join(format!("s{k}/results.json"))).unwrap();
        assert_eq!(u128::from(r.strategies[0].start_ms), at);
    }
}

/// Over the gRPC transport, a deadline sent earlier than the client's own (a deadline margin)
/// ends the attempt at the backend with DEADLINE_EXCEEDED (its work goes on: `on_cancel`
/// defaults to "continue"), before the client's own deadline; never CANCELLED.
#[test]
fn an_expired_sent_deadline_is_deadline_exceeded_not_cancelled() {
    let r = run_real(
        r#"
[load]
arrival = "constant"
rate = 20
duration = "1s"
deadline = "600ms"
[backend]
latency = "1s"
[[strategies]]
name = "margin"
deadline_margin = "300ms"
"#,
    );
    let s = &r.strategies[0];
    assert_eq!(
        s.status,
        [("DEADLINE_EXCEEDED".to_string(), 20)].into(),
        "{:?}",
        s.status
    );
    assert!(
        !s.attempts.status.contains_key("CANCELLED"),
        "{:?}",
        s.attempts.status
    );
    // Answered at the deadline sent (300 ms), not the client's own (600 ms), nor earlier
    // (every call takes as long: its median is the same).
    let e2e = s.latency_ms.e2e.as_ref().expect("completed calls");
    assert!(e2e.p50 >= 299.0 && e2e.max < 550.0, "{e2e:?}");
    assert_eq!(s.backend.as_ref().unwrap().received, 20);
}

/// A disk that fills while the results are written (simulated with a file-size limit, which
/// makes writes fail as ENOSPC would): a clear error naming the file, exit 2, the previous
/// results.json untouched, and no temporary file left behind.
#[cfg(unix)]
#[test]
fn a_write_that_fails_midway_leaves_the_previous_results() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.toml"),
        "[load]\nrate = 500\nduration = \"2s\"\n[[strategies]]\nname = \"a\"\n[[strategies]]\nname = \"b\"\n",
    )
    .unwrap();
    let first = resilbench(
        &["run", "f.toml", "--clock", "virtual", "--out", "out", "-q"],
        dir.path(),
    );
    assert!(first.status.success(), "{}", stderr(&first));
    let before = std::fs::read(dir.path().join("out/results.json")).unwrap();
    assert!(before.len() > 4096);
    // 4 blocks: the .hlog files fit, results.json does not. SIGXFSZ ignored, so the write
    // fails with EFBIG instead of killing the process.
    let bin = env!("CARGO_BIN_EXE_resilbench");
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "trap '' XFSZ; ulimit -f 4; exec {bin} run f.toml --clock virtual --rate 1000 --out out --force -q"
            ),
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot write out/results.json: File too large"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("out/results.json")).unwrap(),
        before
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `load.connections`: a real run over several connections gets every call answered, and the
/// setting is kept in the results' profile.
#[test]
fn a_run_over_several_connections_answers_every_call() {
    let r = run_real(
        r#"
[load]
arrival = "constant"
rate = 300
duration = "1s"
connections = 4
[[strategies]]
name = "plain"
"#,
    );
    let s = &r.strategies[0];
    assert_eq!(s.counts.sent, 300);
    assert_eq!(s.counts.succeeded, 300);
    assert_eq!(r.profile["load"]["connections"], 4);
}

/// `load.wake_quantum`: on a real clock the driver wakes at most once per quantum, so calls
/// due in between leave together, late (never early). With 5 ms between wake-ups and a call
/// every millisecond, four calls in five leave at least a millisecond late by construction,
/// whatever the machine: the median lag is at least that. (How close to its instant a call
/// leaves with the default is a performance figure, measured in benches.)
#[test]
fn a_longer_wake_quantum_sends_calls_together_late() {
    let r = run_real(
        r#"
[load]
arrival = "constant"
rate = 1000
duration = "1s"
wake_quantum = "5ms"
[[strategies]]
name = "plain"
"#,
    );
    let s = &r.strategies[0];
    assert_eq!(s.counts.succeeded, 1000);
    assert!(s.generator.lag_ms.p50 >= 1.0, "{:?}", s.generator.lag_ms);
    assert_eq!(r.profile["load"]["wake_quantum"], "5ms");
}

/// The binary's allocator commits its arenas on demand (`.cargo/config.toml`), so that memory
/// it frees leaves the resident set (docs/PERFORMANCE.md, "Memory"). A build that misses the
/// setting (a CFLAGS of its environment takes precedence) fails here rather than quietly
/// holding twice the memory.
#[test]
fn the_allocator_commits_its_arenas_on_demand() {
    let out = bin()
        .arg("--version")
        .env("MIMALLOC_VERBOSE", "1")
        .env_remove("MIMALLOC_ARENA_EAGER_COMMIT")
        .output()
        .unwrap();
    assert!(out.status.success());
    let options = String::from_utf8_lossy(&out.stderr);
    assert!(
        options.contains("option 'arena_eager_commit': 0"),
        "{options}"
    );
}

/// `serve --threads` takes 1 to 1024; anything else is refused before serving.
#[test]
fn serve_refuses_a_thread_count_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path());
    for bad in ["0", "1025", "many"] {
        let out = resilbench(&["serve", "p.toml", "--threads", bad], dir.path());
        assert_eq!(out.status.code(), Some(2), "--threads {bad}");
        assert!(stderr(&out).contains("--threads"), "{}", stderr(&out));
    }
}

/// `serve` stops on SIGTERM while a client still holds its connection open: it stops
/// accepting, tells the client to go away (GOAWAY), drains, prints its figures and exits 0.
#[test]
fn serve_stops_on_sigterm_while_a_client_stays_connected() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path());
    let (mut server, addr, lines) = serve_with(dir.path(), "p.toml", &[]);
    // A runtime with a thread of its own keeps the client's connection answering while this
    // thread waits for the server.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        let mut client =
            resilbench::pb::backend_client::BackendClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        let request = resilbench::pb::CallRequest {
            request_id: "1".into(),
            ..Default::default()
        };
        client.call(request).await.unwrap();
        client
    });
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", server.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..200 {
        exited = server.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        // Another process on the wall clock; no runtime to wait on here.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = exited.expect("serve exits within 10 s of SIGTERM");
    assert!(exited.success(), "{exited:?}");
    let said: Vec<String> = lines.try_iter().collect();
    assert!(
        said.iter().any(|l| l.contains("stopped. received 1 ")),
        "{said:?}"
    );
    drop(client);
}

/// Before a real run the machine's wake-up floor is calibrated and kept (issue 26): the
/// lateness of a few hundred wake-ups and the driver's quantum; a virtual run has none.
#[test]
fn a_real_run_keeps_the_machines_wake_up_floor() {
    let profile = r#"
[load]
arrival = "constant"
rate = 20
duration = "1s"
warmup = "0s"
wake_quantum = "250us"
[[strategies]]
name = "plain"
"#;
    let r = run_real(profile);
    let t = r
        .environment
        .timer
        .expect("a real run calibrates the timer");
    assert!(t.samples >= 100, "{t:?}"); // 300 ms of waits of 1 ms at most
    assert!(t.calibrated_s >= 0.3, "{t:?}");
    assert_eq!(t.wake_quantum_ms, 0.25);
    let o = t.wake_overshoot_ms;
    assert!(o.p50 <= o.p99 && o.p99 <= o.max, "{o:?}");
    assert_eq!(t.lag_floor_ms(), o.p99 + 0.25);
    let virtual_run = crate::common::run_virtual(&crate::common::plan(profile));
    assert_eq!(virtual_run.environment.timer, None);
}
