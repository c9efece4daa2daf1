//! One's own service on an implementation nobody here wrote: Python grpcio's server (gRPC
//! C-core's HTTP/2 and TLS, Python protobuf decoding our requests, grpcio-reflection serving
//! v1alpha only), tests/python/echo_server.py, as a child process.
//!
//! grpcio comes from pip: `.ci/run` installs it (pinned) into a virtual environment and names
//! its interpreter in `RESILBENCH_PYTHON`. Without grpcio the tests are skipped with a message,
//! except where `CI` is set (as CI systems set it): there a missing grpcio is a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::foreign::{self, Pki, Seen};
use crate::common::stderr;
use crate::own_service::{check_unary_run, profile, protos, run};

/// The Python interpreter with grpcio and grpcio-reflection, if there is one.
pub(crate) fn python(test: &str) -> Option<String> {
    let python = std::env::var("RESILBENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import grpc, grpc_reflection"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{python} lacks grpcio, and CI is set: .ci/run must install it (RESILBENCH_PYTHON)");
    }
    eprintln!(
        "SKIPPED {test}: {python} lacks grpcio (pip install grpcio grpcio-reflection, or set \
         RESILBENCH_PYTHON); CI=true makes this a failure"
    );
    None
}

/// The Python server, killed (by its process id) when dropped.
pub(crate) struct PyServer {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PyServer {
    /// Starts echo_server.py in `dir` with `args` after the protoset and the log.
    pub(crate) fn start(python: &str, dir: &Path, args: &[&str]) -> Self {
        let protoset = dir.join("echo.protoset");
        std::fs::write(&protoset, foreign::PROTOSET).unwrap();
        let log = dir.join("grpcio.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/echo_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg("--protoset")
            .arg(&protoset)
            .arg("--log")
            .arg(&log)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // Importing grpcio takes a while on a busy machine.
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the grpcio server did not start: {line:?}"));
        Self { child, port, log }
    }

    /// What the server decoded, call by call.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                Seen {
                    method: if v["method"] == "Say" { "Say" } else { "Count" },
                    id: v["id"].as_str().unwrap().to_string(),
                    n: v["n"].as_i64().unwrap(),
                    mood: v["mood"].as_i64().unwrap() as i32,
                    note: v["note"].as_str().unwrap().to_string(),
                    metadata: v["metadata"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect(),
                }
            })
            .collect()
    }
}

/// mTLS and reflection (v1 refused, v1alpha served) on grpcio: the templated requests and
/// metadata arrive as Python protobuf decodes them, retries save the grumpy calls.
#[test]
fn grpcio_over_mtls_with_reflection() {
    let Some(python) = python("grpcio_over_mtls_with_reflection") else {
        return;
    };
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (server_cert, server_key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    let server = PyServer::start(
        &python,
        dir.path(),
        &["--tls", &server_cert, &server_key, &ca],
    );
    let address = format!("https://localhost:{}", server.port);
    let mtls = format!(
        "[target.tls]\nca = \"{ca}\"\ncert = \"{}\"\nkey = \"{}\"",
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let (out, results) = run(
        dir.path(),
        &profile(&address, "reflection = true", &mtls),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    check_unary_run(&server.seen(), &results.unwrap());
}

/// A server-streaming method on grpcio over plaintext HTTP/2, schema from the .proto files.
#[test]
fn grpcio_server_streaming_over_plaintext() {
    let Some(python) = python("grpcio_server_streaming_over_plaintext") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = PyServer::start(&python, dir.path(), &[]);
    let toml = format!(
        r#"
[load]
rate = 50
duration = "1s"
[target]
address = "127.0.0.1:{}"
{}
method = "acme.echo.v1.Echo/Count"
request = '{{"id": "s-{{{{call}}}}", "count": {{{{int 0 4}}}}}}'
[[strategies]]
name = "baseline"
"#,
        server.port,
        protos()
    );
    let (out, results) = run(dir.path(), &toml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = results.unwrap();
    let s = &results.strategies[0];
    assert_eq!((s.counts.offered, s.counts.succeeded), (50, 50));
    let seen = server.seen();
    assert_eq!(seen.len(), 50);
    let sent: i64 = seen.iter().map(|c| c.n).sum();
    assert_eq!(s.stream.as_ref().unwrap().messages as i64, sent);
}

/// C-core's TLS fails a handshake by closing the socket, without the alert a rustls server
/// sends: a client certificate it requires and was not given, and a plaintext HTTP/2 preface,
/// still read as the one line docs/targets.md promises.
#[test]
fn grpcio_tls_refusals_are_one_line() {
    let Some(python) = python("grpcio_tls_refusals_are_one_line") else {
        return;
    };
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.path("ca.pem");
    let server = PyServer::start(
        &python,
        dir.path(),
        &[
            "--tls",
            &pki.path("server.pem"),
            &pki.path("server.key"),
            &ca,
        ],
    );
    let first_error = |out: &std::process::Output| {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        err.lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line: {err}"))
            .to_string()
    };
    let no_cert = format!("[target.tls]\nca = \"{ca}\"");
    let address = format!("https://localhost:{}", server.port);
    for schema in ["reflection = true", &protos()] {
        let (out, _) = run(dir.path(), &profile(&address, schema, &no_cert), &[]);
        let line = first_error(&out);
        assert!(
            line.contains("TLS: localhost requires a client certificate: give target.tls.cert"),
            "{line}"
        );
    }
    let plain = format!("127.0.0.1:{}", server.port);
    for schema in ["reflection = true", &protos()] {
        let (out, _) = run(dir.path(), &profile(&plain, schema, ""), &[]);
        let line = first_error(&out);
        assert!(
            line.contains("the server answered with TLS: use an https:// address"),
            "{line}"
        );
    }
    assert!(server.seen().is_empty());
}
