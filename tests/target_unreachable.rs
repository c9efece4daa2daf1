//! One's own service as a user first meets it when something is off: a schema or request file
//! that is not there or not JSON, TLS spoken to a plaintext server, a port nothing listens on,
//! a peer that accepts and never speaks HTTP/2 (plaintext or TLS), a sweep of it. Each is
//! refused with exit status 2 and one line naming the file and line, or the address, within
//! seconds, before any load, and nothing is written.
//!
//! These run the binary on the wall clock; their time limits are loose (several times the
//! connect timeout) and only tell "within the timeout" from "stuck".
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::foreign::{self, Reflection};
use crate::common::{resilbench, stderr};

const SAY: &str = "acme.echo.v1.Echo/Say";

/// A profile calling Say at `address` with `schema` and `request` (whole TOML lines).
fn profile(address: &str, schema: &str, request: &str) -> String {
    format!(
        "[load]\nrate = 10\nduration = \"1s\"\n[target]\naddress = \"{address}\"\n{schema}\n\
         method = \"{SAY}\"\n{request}\n[[strategies]]\nname = \"baseline\"\n"
    )
}

fn protos() -> String {
    let dir = foreign::proto_dir();
    format!(
        "proto = [\"{}\"]\nimport_paths = [\"{}\"]",
        dir.join("acme/echo/v1/echo.proto").display(),
        dir.display()
    )
}

/// `args` then `p.toml` holding `toml`, in `dir`: exit status 2 within `limit`, no results,
/// and the error line (with the lines after it, the pointer into the file) holding `needles`.
fn refused(dir: &Path, args: &[&str], toml: &str, limit: Duration, needles: &[&str]) {
    std::fs::write(dir.join("p.toml"), toml).unwrap();
    let mut all = args.to_vec();
    all.extend(["p.toml", "--out", "out", "--quiet"]);
    if args[0] == "validate" {
        all.truncate(2);
    }
    let started = Instant::now();
    let out = resilbench(&all, dir);
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(took < limit, "took {took:?}: {err}");
    assert!(!dir.join("out/results.json").exists());
    let from = err
        .find("error: ")
        .unwrap_or_else(|| panic!("no error: {err}"));
    for needle in needles {
        assert!(err[from..].contains(needle), "`{needle}` not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// Files that are missing or not JSON: named, with the profile's line and column.
#[test]
fn missing_and_malformed_files_name_the_profiles_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let quick = Duration::from_secs(10);
    let schema = "proto = [\"nope.proto\"]";
    refused(
        d,
        &["validate"],
        &profile("localhost:1", schema, "request = '{}'"),
        quick,
        &[
            "p.toml:6:9: target.proto: cannot read",
            "nope.proto",
            "6 | proto = [\"nope.proto\"]",
        ],
    );
    let from_file = "request_file = \"req.json\"";
    refused(
        d,
        &["validate"],
        &profile("localhost:1", &protos(), from_file),
        quick,
        &["target.request_file: cannot read", "req.json"],
    );
    std::fs::write(d.join("req.json"), "{\"id\": \n").unwrap();
    refused(
        d,
        &["validate"],
        &profile("localhost:1", &protos(), from_file),
        quick,
        &["target.request_file: not valid JSON", "line 2"],
    );
    std::fs::write(d.join("req.json"), "{\"id\": \"a\", \"extra\": 1}").unwrap();
    refused(
        d,
        &["validate"],
        &profile("localhost:1", &protos(), from_file),
        quick,
        &["target.request_file: field `extra` is not in acme.echo.v1.SayRequest"],
    );
    refused(
        d,
        &["validate"],
        &profile("localhost:1", &protos(), "request = '{\"id\": \"x\",}'"),
        quick,
        &["target.request: not valid JSON: trailing comma at line 1 column 12"],
    );
}

/// A port nothing listens on, TLS to a plaintext server: refused at once, naming the address.
#[test]
fn a_closed_port_and_tls_to_a_plaintext_server_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let address = format!("127.0.0.1:{closed}");
    refused(
        d,
        &["run"],
        &profile(&address, &protos(), "request = '{}'"),
        Duration::from_secs(10),
        &[&format!(
            "cannot reach the target {address}: Connection refused"
        )],
    );
    let server = foreign::start(Reflection::None, None);
    let https = format!("https://127.0.0.1:{}", server.addr.port());
    refused(
        d,
        &["run"],
        &profile(&https, &protos(), "request = '{}'"),
        Duration::from_secs(10),
        &[
            &format!("cannot reach the target {https}"),
            "TLS: 127.0.0.1 did not answer as a TLS server (a plaintext server? then use host:port or http://)",
        ],
    );
    assert!(server.seen().is_empty(), "no call was sent");
}

/// A peer that accepts TCP and never answers (no TLS handshake, no SETTINGS, no reflection
/// answer): refused after `--connect-timeout`, not left waiting.
#[test]
fn a_silent_peer_is_given_up_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The kernel completes the handshakes into the backlog; nothing is ever read or written.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let timeout = ["run", "--connect-timeout", "300ms"];
    for (address, schema) in [
        (format!("127.0.0.1:{port}"), protos()),
        (format!("https://127.0.0.1:{port}"), protos()),
        (format!("127.0.0.1:{port}"), "reflection = true".to_string()),
    ] {
        refused(
            d,
            &timeout,
            &profile(&address, &schema, "request = '{}'"),
            Duration::from_secs(5),
            &[
                &format!("cannot reach the target {address}"),
                "no HTTP/2 connection within 300ms",
            ],
        );
    }
    drop(silent);
}

/// `sweep` (and `validate` of a profile with a `[sweep]`) refuses `[target]` in words: a
/// sweep varies the embedded backend's profile.
#[test]
fn a_sweep_of_ones_own_service_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}[sweep.vary]\n\"load.rate\" = [10, 20]\n",
        profile("localhost:1", &protos(), "request = '{}'")
    );
    let says = "`resilbench sweep` varies profiles of the embedded backend and does not call \
                your own service";
    for command in [&["sweep"][..], &["validate"]] {
        refused(dir.path(), command, &toml, Duration::from_secs(10), &[says]);
    }
    assert!(!dir.path().join("out").exists());
}
