//! Faults at chosen moments of a real run, end to end: a target that dies or restarts, one
//! that accepts and never answers, signals while connecting, draining, waiting for a start
//! time and writing, and a rerun killed while it writes. Nothing measured is lost, no wait
//! is unbounded, and a run folder holds one run.
//!
//! These run other processes on the wall clock; their time assertions are loose (several
//! times what is expected), and only tell "at once" from "after the wait it cut short".
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use resilbench::results::Results;
use resilbench::results::trust::BackendGap;

use crate::common::{bin, resilbench, stderr};
use crate::end_to_end::{serve_on, serve_with};

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -{name} {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
}

fn sleep(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// A process started now, and its output once it exits, with when it exited.
fn spawn_run(dir: &std::path::Path, args: &[&str]) -> Child {
    bin()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A TCP acceptor that takes connections, reads what comes and never answers; it runs until
/// the test process ends.
fn silent_acceptor() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

const TWO: &str = r#"
[load]
arrival = "constant"
rate = 100
duration = "2s"
deadline = "200ms"
[backend]
latency = "1ms"
[[strategies]]
name = "first"
[[strategies]]
name = "second"
"#;

/// The target dies during the first of two strategies and does not come back: the first
/// strategy's results (its outage included) are written, marked partial, with the target's
/// missing figures said as such (not "no Control service"); the run stops before the second
/// and exits 2 saying so.
#[test]
fn a_target_lost_between_strategies_keeps_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), TWO).unwrap();
    let (mut server, addr, _) = serve_with(dir.path(), "p.toml", &[]);
    let run = spawn_run(
        dir.path(),
        &[
            "run", "p.toml", "--out", "out", "--quiet", "--target", &addr, "--export", "csv",
        ],
    );
    sleep(1000);
    server.kill().unwrap();
    server.wait().unwrap();
    let out = run.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot reach the target {addr}"))
            && err.contains("the run stopped before strategy `second` (2 of 2)"),
        "{err}"
    );
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    assert!(r.partial);
    assert_eq!(r.strategies.len(), 1);
    let first = &r.strategies[0];
    assert_eq!(first.counts.offered, 200);
    assert!(
        first.status.get("OK").copied().unwrap_or(0) > 50,
        "{:?}",
        first.status
    );
    assert!(
        first.status.get("UNAVAILABLE").copied().unwrap_or(0) > 50,
        "{:?}",
        first.status
    );
    assert_eq!(first.backend_gap, Some(BackendGap::Lost));
    assert!(first.backend.is_none());
    let said = r.warnings.join("\n");
    assert!(said.contains("did not answer Stats"), "{said}");
    assert!(
        said.contains("the run stopped before strategy `second`"),
        "{said}"
    );
    assert!(!said.contains("no Control service"), "{said}");
    assert!(dir.path().join("out/first.hlog").exists());
    // Said as what it was, not as a Ctrl-C; exported like any run.
    assert_eq!(
        r.stopped,
        Some(resilbench::results::trust::Stopped::TargetLost)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("(TARGET LOST: partial results)"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "the target was lost (see the first warning): 1 of 2 strategies did not run (second)"
        ),
        "{printed}"
    );
    assert!(!printed.contains("Ctrl-C"), "{printed}");
    let page = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(page.contains("the target was lost (see the first warning)"));
    assert!(!page.contains("This run was interrupted") && !page.contains("Ctrl-C"));
    assert!(dir.path().join("out/summary.csv").exists());
}

/// The target restarts inside a strategy: the Stats answer comes from another process than
/// the Reset's, so the backend figures are the new process's, marked so and said in words,
/// and no backend amplification is made from them.
#[test]
fn a_restart_inside_a_strategy_is_detected_and_said() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        TWO.replace("duration = \"2s\"", "duration = \"3s\"")
            .replace("[[strategies]]\nname = \"second\"\n", ""),
    )
    .unwrap();
    let (mut server, addr, _) = serve_with(dir.path(), "p.toml", &[]);
    let run = spawn_run(
        dir.path(),
        &[
            "run", "p.toml", "--out", "out", "--quiet", "--target", &addr,
        ],
    );
    sleep(800);
    server.kill().unwrap();
    server.wait().unwrap();
    sleep(400);
    let (_back, again, _) = serve_on(dir.path(), "p.toml", &addr, &[]);
    assert_eq!(again, addr);
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    let s = &r.strategies[0];
    assert_eq!(s.backend_gap, Some(BackendGap::Restarted));
    let backend = s.backend.as_ref().unwrap();
    assert!(backend.received < s.attempts.total, "{backend:?}");
    assert!(s.amplification.backend.is_none());
    let said = r.warnings.join("\n");
    assert!(said.contains("restarted during the strategy"), "{said}");
    assert!(!said.contains("no Control service"), "{said}");
}

/// A target that accepts TCP and never answers: the run fails within its connect timeout
/// (2 s by default, `--connect-timeout`), exit 2, saying the target was reached but did not
/// answer, and nothing is written. (It used to wait forever on `Reset`.)
#[test]
fn a_silent_target_fails_within_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), TWO).unwrap();
    let addr = silent_acceptor();
    for (args, limit, words) in [
        (vec![], Duration::from_secs(6), "2s"),
        (
            vec!["--connect-timeout", "300ms"],
            Duration::from_secs(3),
            "300ms",
        ),
    ] {
        let started = Instant::now();
        let out = bin()
            .args([
                "run", "p.toml", "--out", "out", "--quiet", "--target", &addr,
            ])
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let took = started.elapsed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "the target {addr} was reached but Reset had no answer within {words}"
            )),
            "{err}"
        );
        assert!(took < limit, "took {took:?}");
        assert!(!dir.path().join("out").exists());
    }
}

/// Ctrl-C while the run waits for a silent target, while it waits for a `--start-at` slot,
/// and while the embedded backend drains: each acts at once (it used to wait out the
/// target forever, the 5 s to the slot, the drain); what was measured is written.
#[test]
fn sigint_acts_at_once_while_connecting_waiting_and_draining() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), TWO).unwrap();
    // The drain: calls end at their 200 ms deadline, the backend's work (10 s) goes on.
    std::fs::write(
        dir.path().join("drain.toml"),
        TWO.replace("latency = \"1ms\"", "latency = \"10s\"")
            .replace("duration = \"2s\"", "duration = \"1s\""),
    )
    .unwrap();
    let silent = silent_acceptor();
    let (_server, addr, _) = serve_with(dir.path(), "p.toml", &[]);
    let later = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        + Duration::from_secs(8))
    .as_millis()
    .to_string();
    let cases: [(&str, Vec<&str>, u64, bool); 3] = [
        (
            "connecting",
            vec!["p.toml", "--target", &silent, "--connect-timeout", "60s"],
            500,
            false,
        ),
        (
            "waiting for --start-at",
            vec!["p.toml", "--target", &addr, "--start-at", &later],
            1000,
            false,
        ),
        ("draining", vec!["drain.toml"], 2200, true),
    ];
    for (moment, args, at, measured) in cases {
        let out_dir = format!("out-{}", moment.split(' ').next().unwrap());
        let mut all = vec!["run", "--quiet", "--out", &out_dir];
        all.extend(args);
        let child = spawn_run(dir.path(), &all);
        sleep(at);
        let signalled = Instant::now();
        signal(&child, "INT");
        let out = child.wait_with_output().unwrap();
        let took = signalled.elapsed();
        assert_eq!(out.status.code(), Some(130), "{moment}: {}", stderr(&out));
        assert!(
            took < Duration::from_millis(2500),
            "{moment}: took {took:?}"
        );
        let results = dir.path().join(&out_dir).join("results.json");
        if measured {
            let r = Results::read(&results).unwrap();
            assert!(r.partial, "{moment}");
            assert_eq!(r.strategies.len(), 1, "{moment}");
            // The strategy itself ran whole; its backend figures are read as they are.
            assert!(!r.strategies[0].partial, "{moment}");
            assert_eq!(r.strategies[0].counts.offered, 100, "{moment}");
        } else {
            assert!(!results.exists(), "{moment}");
            assert!(
                stderr(&out).contains("interrupted before any strategy was measured"),
                "{moment}: {}",
                stderr(&out)
            );
        }
    }
}

/// Two Ctrl-C while the results are written: the second exits at once (130), the folder
/// being written is removed and no run folder is half made. (Both used to be swallowed: the
/// signal handler no longer ran, and the process exited 0.)
#[test]
fn two_sigints_while_writing_exit_at_once_and_leave_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    // A hundred strategies (the most a profile may have) over 100 s of timeline: their results
    // take a moment to write (about 600 ms in a debug build; with 20 s of timeline, 200 ms,
    // and a test thread held off the CPU that long under a loaded machine once saw the write
    // finish before the second signal).
    let mut text = String::from("[load]\nrate = 10\nduration = \"100s\"\n");
    for i in 0..100 {
        text.push_str(&format!("[[strategies]]\nname = \"s{i}\"\n"));
    }
    std::fs::write(dir.path().join("many.toml"), text).unwrap();
    let mut child = bin()
        .args(["run", "many.toml", "--clock", "virtual", "--out", "out"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Progress (plain lines on a pipe) says when the last strategy is done: writing starts.
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.map_while(Result::ok) {
        if line.contains("[100/100] s99: done") {
            break;
        }
    }
    signal(&child, "INT");
    sleep(20);
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!dir.path().join("out").exists());
}

/// A rerun into a folder that holds a run, killed (SIGKILL) at moments through its writing:
/// the folder always holds one run, the old or the new, its `.hlog` files those of its
/// results.json's strategies. (`.hlog` files used to be renamed in before results.json: a
/// kill in between left the new ones beside the old results.) A disk that fills leaves the
/// old run whole too (`end_to_end::a_write_that_fails_midway_leaves_the_previous_results`).
#[test]
fn a_rerun_killed_while_writing_leaves_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let profile = |names: [&str; 2]| {
        format!(
            "[load]\nrate = 5000\nduration = \"2s\"\n[[strategies]]\nname = \"{}\"\n\
             [[strategies]]\nname = \"{}\"\n",
            names[0], names[1]
        )
    };
    std::fs::write(dir.path().join("old.toml"), profile(["a", "b"])).unwrap();
    std::fs::write(dir.path().join("new.toml"), profile(["c", "d"])).unwrap();
    // Each run replaces the one before it (`--force`: the folder holds a run).
    let args = |p: &'static str| {
        [
            "run", p, "--clock", "virtual", "--out", "out", "-q", "--force",
        ]
    };
    let started = Instant::now();
    let first = resilbench(&args("old.toml"), dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    // Kills spread over a whole run's time (writing is at its end), and a little past it.
    let whole = started.elapsed().as_millis() as u64;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..10u64 {
        let delay = whole * (6 + i) / 14;
        let child = bin()
            .args(args(if i % 2 == 0 { "new.toml" } else { "old.toml" }))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        sleep(delay);
        signal(&child, "KILL");
        let _ = child.wait_with_output();
        let r = Results::read(&dir.path().join("out/results.json"))
            .unwrap_or_else(|e| panic!("killed at {delay} ms: {e}"));
        let names: Vec<&str> = r.strategies.iter().map(|s| s.name.as_str()).collect();
        let mut hlogs: Vec<String> = std::fs::read_dir(dir.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".hlog"))
            .collect();
        hlogs.sort();
        let expected: Vec<String> = names.iter().map(|n| format!("{n}.hlog")).collect();
        assert_eq!(hlogs, expected, "killed at {delay} ms");
        seen.insert(names.join(""));
    }
    // A disk that fills while the new run is written (a file-size limit, SIGXFSZ ignored,
    // fails writes as ENOSPC does): the .hlog files fit, results.json does not. The old run
    // stays whole, without the new run's .hlog files beside it.
    let bin = env!("CARGO_BIN_EXE_resilbench");
    let full = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "trap '' XFSZ; ulimit -f 8; exec {bin} run new.toml --clock virtual --out out -q --force"
            ),
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(2), "{}", stderr(&full));
    assert!(
        stderr(&full).contains("File too large"),
        "{}",
        stderr(&full)
    );
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    let names: Vec<&str> = r.strategies.iter().map(|s| s.name.as_str()).collect();
    assert!(
        !dir.path().join("out/c.hlog").exists() || names == ["c", "d"],
        "{names:?} beside c.hlog"
    );
    // Each kill left a whole run; and some runs were put in place before their kill.
    let last = resilbench(&args("new.toml"), dir.path());
    assert!(last.status.success(), "{}", stderr(&last));
    let r = Results::read(&dir.path().join("out/results.json")).unwrap();
    assert_eq!(r.strategies[0].name, "c");
    assert!(seen.contains("ab"), "{seen:?}");
}
