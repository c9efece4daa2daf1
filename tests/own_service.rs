//! Calling one's own service: a gRPC service that is not resilbench's (tonic's generated
//! server, tests/common/foreign.rs), from a profile's `[target]` and from the quick run's
//! flags, over plaintext HTTP/2, TLS and mTLS, with its schema from `.proto` files, a
//! protoset or reflection (v1, and v1alpha alone). The server records what each call
//! carried, so the requests and metadata are checked as it decoded them, not as we sent them.

use std::collections::BTreeMap;
use std::path::Path;

use resilbench::results::Results;
use resilbench::results::trust::BackendGap;

use crate::common::foreign::{self, Pki, Reflection, Seen, ServerTls};
use crate::common::{resilbench, stderr};

/// The request every test sends: templated fields in the message and a nested one.
const REQUEST: &str = r#"{"id": "order-{{call}}", "n": {{call}}, "mood": "{{choice MOOD_HAPPY MOOD_GRUMPY}}", "detail": {"note": "{{uuid}}"}}"#;

/// A service config retrying UNAVAILABLE, for every method (the default name).
const RETRY: &str = r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;

/// A profile calling `Say` at `address` with the `schema` lines and `extra` [target] lines.
pub fn profile(address: &str, schema: &str, extra: &str) -> String {
    format!(
        r#"
name = "own"
seed = 5
[load]
rate = 100
duration = "1s"
deadline = "2s"
[target]
address = "{address}"
{schema}
method = "acme.echo.v1.Echo/Say"
request = '{REQUEST}'
{extra}
[target.metadata]
authorization = "Bearer t0k3n"
x-request-id = "{{{{request_id}}}}"
[[strategies]]
name = "baseline"
[[strategies]]
name = "retry"
service_config = '{RETRY}'
"#
    )
}

/// The schema from the test protos on disk.
pub fn protos() -> String {
    let dir = foreign::proto_dir();
    format!(
        "proto = [\"{}\"]\nimport_paths = [\"{}\"]",
        dir.join("acme/echo/v1/echo.proto").display(),
        dir.display()
    )
}

/// Runs `resilbench run p.toml` in `dir` with `args`; the results when it succeeded.
pub fn run(dir: &Path, toml: &str, args: &[&str]) -> (std::process::Output, Option<Results>) {
    std::fs::write(dir.join("p.toml"), toml).unwrap();
    let mut all = vec!["run", "p.toml", "--out", "out", "--quiet"];
    all.extend_from_slice(args);
    let out = resilbench(&all, dir);
    let results = std::fs::read_to_string(dir.join("out/results.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (out, results)
}

/// What the server saw, per strategy (the calls of the first run of each id, in order of
/// arrival): the baseline's attempts are the first 100 arrivals.
fn by_id(seen: &[Seen]) -> BTreeMap<String, Vec<&Seen>> {
    let mut map: BTreeMap<String, Vec<&Seen>> = BTreeMap::new();
    for s in seen {
        map.entry(s.id.clone()).or_default().push(s);
    }
    map
}

/// The unary method of a foreign service: every call's request and metadata arrive as the
/// templates say (keyed by the call: the same in both strategies and on every attempt), the
/// grumpy calls fail UNAVAILABLE once and the service config's retries save them, and no
/// backend figure is invented.
pub fn check_unary_run(seen: &[Seen], results: &Results) {
    assert_eq!(results.strategies.len(), 2);
    let grumpy = seen
        .iter()
        .filter(|s| s.mood == foreign::pb::Mood::Grumpy as i32)
        .map(|s| s.n)
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert!(grumpy > 20 && grumpy < 80, "{grumpy} grumpy calls of 100");
    let (baseline, retry) = (&results.strategies[0], &results.strategies[1]);
    for s in [baseline, retry] {
        assert_eq!(s.counts.offered, 100, "{}", s.name);
        assert!(s.backend.is_none(), "nothing invented without Control");
        assert_eq!(s.backend_gap, Some(BackendGap::NotAsked));
    }
    assert_eq!(baseline.counts.succeeded, 100 - grumpy);
    assert_eq!(baseline.status.get("UNAVAILABLE"), Some(&grumpy));
    assert_eq!(retry.counts.succeeded, 100);
    assert_eq!(retry.attempts.retries, grumpy);
    // Baseline: 100 attempts; retry: 100 + one per grumpy call.
    assert_eq!(seen.len() as u64, 200 + grumpy);
    let ids = by_id(seen);
    assert_eq!(ids.len(), 100);
    for (id, calls) in &ids {
        let n: i64 = id.strip_prefix("order-").unwrap().parse().unwrap();
        assert!((0..100).contains(&n));
        let first = calls[0];
        assert_eq!(first.n, n);
        // The same UUID and request id for the call in both strategies, on every attempt.
        assert_eq!(first.note.len(), 36, "{}", first.note);
        let request_id = &first.metadata["x-request-id"];
        assert_eq!(request_id.len(), 16);
        for c in calls {
            assert_eq!((c.n, &c.note, c.mood), (n, &first.note, first.mood));
            assert_eq!(&c.metadata["x-request-id"], request_id);
            assert_eq!(c.metadata["authorization"], "Bearer t0k3n");
            assert!(
                !c.metadata.keys().any(|k| k.starts_with("resilbench-")),
                "the service gets what its own clients send: {:?}",
                c.metadata
            );
        }
        let retried = calls
            .iter()
            .filter(|c| {
                c.metadata
                    .get("grpc-previous-rpc-attempts")
                    .map(String::as_str)
                    == Some("1")
            })
            .count();
        let grumpy = first.mood == foreign::pb::Mood::Grumpy as i32;
        assert_eq!(calls.len(), if grumpy { 3 } else { 2 }, "{id}");
        assert_eq!(retried, usize::from(grumpy), "{id}");
    }
    let uuids: std::collections::BTreeSet<&str> =
        ids.values().map(|c| c[0].note.as_str()).collect();
    assert_eq!(uuids.len(), 100, "a UUID per call");
}

#[test]
fn a_profile_calls_a_foreign_services_unary_method_over_plaintext_http2() {
    let server = foreign::start(Reflection::None, None);
    let dir = tempfile::tempdir().unwrap();
    // `--target` points the profile's [target] elsewhere.
    let toml = profile("127.0.0.1:1", &protos(), "");
    let (out, results) = run(dir.path(), &toml, &["--target", &server.addr.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = results.unwrap();
    assert_eq!(results.environment.target, server.addr.to_string());
    check_unary_run(&server.seen(), &results);
    // What gRPC clients send (tonic shows it; C-core keeps it to itself).
    for c in server.seen() {
        assert_eq!(c.metadata["te"], "trailers");
        assert_eq!(c.metadata["content-type"], "application/grpc");
        assert!(c.metadata.contains_key("grpc-timeout"));
    }
}

/// The protoset and reflection (v1; v1alpha alone, as grpcio serves it) give the same schema.
#[test]
fn the_schema_comes_from_a_protoset_or_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let protoset = dir.path().join("echo.protoset");
    std::fs::write(&protoset, foreign::PROTOSET).unwrap();
    for (reflection, schema) in [
        (
            Reflection::None,
            format!("protoset = \"{}\"", protoset.display()),
        ),
        (Reflection::Both, "reflection = true".to_string()),
        (Reflection::V1Alpha, "reflection = true".to_string()),
    ] {
        let server = foreign::start(reflection, None);
        let toml = profile(&server.addr.to_string(), &schema, "");
        let (out, results) = run(dir.path(), &toml, &["--force"]);
        assert!(out.status.success(), "{schema}: {}", stderr(&out));
        check_unary_run(&server.seen(), &results.unwrap());
    }
}

/// A server-streaming method: each call's messages are counted.
#[test]
fn a_server_streaming_method_counts_its_messages() {
    let server = foreign::start(Reflection::Both, None);
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[load]
rate = 50
duration = "1s"
[target]
address = "{}"
reflection = true
method = "acme.echo.v1.Echo/Count"
request = '{{"id": "s-{{{{call}}}}", "count": {{{{int 1 3}}}}}}'
[[strategies]]
name = "baseline"
"#,
        server.addr
    );
    let (out, results) = run(dir.path(), &toml, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = results.unwrap();
    let s = &results.strategies[0];
    assert_eq!((s.counts.offered, s.counts.succeeded), (50, 50));
    assert!(server.seen().iter().all(|c| c.method == "Count"));
    let sent: i64 = server.seen().iter().map(|c| c.n).sum();
    let stream = s
        .stream
        .as_ref()
        .expect("stream figures for a streaming method");
    assert_eq!(stream.messages as i64, sent);
    assert_eq!(results.profile["load"]["method"], "stream");
}

/// TLS with the server's CA, mTLS with a client certificate, and verification skipped (with
/// a warning); `:scheme https` on every call.
#[test]
fn tls_and_mtls_with_certificates_made_for_the_test() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let server = foreign::start(
        Reflection::Both,
        Some(ServerTls {
            identity: pki.server.clone(),
            clients: Some((pki.ca.clone(), true)),
        }),
    );
    let address = format!("https://localhost:{}", server.addr.port());
    let mtls = format!(
        "[target.tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
        pki.path("ca.pem"),
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
    drop(server);

    // Server TLS only, by IP address, verification off: it works and says so.
    let server = foreign::start(
        Reflection::None,
        Some(ServerTls {
            identity: pki.server.clone(),
            clients: None,
        }),
    );
    let address = format!("https://127.0.0.1:{}", server.addr.port());
    let insecure = "[target.tls]\ninsecure = true";
    let (out, results) = run(
        dir.path(),
        &profile(&address, &protos(), insecure),
        &["--force"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: TLS verification is off (insecure)"),
        "{}",
        stderr(&out)
    );
    check_unary_run(&server.seen(), &results.unwrap());
}

/// The quick run: ghz's flags, one strategy per service config beside a baseline.
#[test]
fn the_quick_run_builds_the_same_profile_from_flags() {
    let server = foreign::start(Reflection::Both, None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("retries.json"), RETRY).unwrap();
    let out = resilbench(
        &[
            "run",
            "--target",
            &server.addr.to_string(),
            "--call",
            "acme.echo.v1.Echo/Say",
            "-d",
            REQUEST,
            "-H",
            "Authorization: Bearer t0k3n",
            "-m",
            r#"{"x-request-id": "{{request_id}}"}"#,
            "--rate",
            "100",
            "--duration",
            "1s",
            "--deadline",
            "2s",
            "--seed",
            "5",
            "--service-config",
            "retries.json",
            "--out",
            "out",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("out/results.json")).unwrap();
    let results: Results = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = results.strategies.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["baseline", "retries"]);
    assert_eq!(results.profile["target"]["reflection"], true);
    check_unary_run(&server.seen(), &results);
}

/// A metadata name given several times is sent with every value, each a header field of its
/// own, as gRPC metadata allows: `-H` twice, `-H` and `-m`, in any case (quick run); a list,
/// and names differing in case (profile). The server sees them all, in order.
#[test]
fn repeated_metadata_sends_every_value() {
    let server = foreign::start(Reflection::Both, None);
    let dir = tempfile::tempdir().unwrap();
    let address = server.addr.to_string();
    let out = resilbench(
        &[
            "run",
            "--target",
            &address,
            "--call",
            "acme.echo.v1.Echo/Say",
            "-H",
            "x-tag: a",
            "-H",
            "X-Tag: b-{{call}}",
            "-m",
            r#"{"x-tag": "c"}"#,
            "--rate",
            "20",
            "--duration",
            "1s",
            "--cooldown",
            "0s",
            "--out",
            "quick",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = server.seen();
    assert!(!seen.is_empty());
    for c in &seen {
        let n: u64 = c.metadata["x-tag"]
            .strip_prefix("a, b-")
            .and_then(|rest| rest.strip_suffix(", c"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("x-tag: {:?}", c.metadata["x-tag"]));
        assert!(n < 40, "{n}");
    }
    let toml = profile(&address, "reflection = true", "").replace(
        "authorization = \"Bearer t0k3n\"",
        "authorization = \"Bearer t0k3n\"\nx-tag = [\"a\", \"b\"]\nX-Tag = \"c\"",
    );
    let before = server.seen().len();
    let (out, results) = run(dir.path(), &toml, &["--cooldown", "0s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = server.seen();
    assert!(seen.len() > before);
    for c in &seen[before..] {
        assert_eq!(c.metadata["x-tag"], "c, a, b", "{:?}", c.metadata);
    }
    // The plan written keeps the list.
    assert_eq!(
        results.unwrap().profile["target"]["metadata"]["x-tag"],
        serde_json::json!(["c", "a", "b"])
    );
}
