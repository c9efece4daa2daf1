//! Bad input for one's own service, each refused before any load with its message and exit
//! status 2: a `.proto` that does not compile, a method that is not there or streams from the
//! client, a request field the message lacks, a value of the wrong type, a server without
//! reflection, TLS failures (unknown CA, a name the certificate lacks, expired, no HTTP/2, a
//! client certificate required), an address with a path or an unknown scheme; and the quick
//! run's errors name its flags.

use std::path::Path;

use crate::common::foreign::{self, Pki, Reflection, ServerTls};
use crate::common::{resilbench, stderr};

pub(crate) fn protos() -> String {
    let dir = foreign::proto_dir();
    format!(
        "proto = [\"{}\"]\nimport_paths = [\"{}\"]",
        dir.join("acme/echo/v1/echo.proto").display(),
        dir.display()
    )
}

pub(crate) fn profile(
    address: &str,
    schema: &str,
    method: &str,
    request: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[load]
rate = 10
duration = "1s"
[target]
address = "{address}"
{schema}
method = "{method}"
request = '{request}'
{extra}
[[strategies]]
name = "baseline"
"#
    )
}

/// Runs `command p.toml` with `toml` in `dir`: exit status 2, nothing written, and the
/// error's one line holding each of `needles`.
pub(crate) fn refused(dir: &Path, command: &str, toml: &str, needles: &[&str]) {
    std::fs::write(dir.join("p.toml"), toml).unwrap();
    let out = resilbench(
        &[command, "p.toml", "--out", "out", "--quiet"][..if command == "run" { 5 } else { 2 }],
        dir,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!dir.join("out/results.json").exists());
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    for needle in needles {
        assert!(line.contains(needle), "`{needle}` not in: {line}");
    }
}

pub(crate) const SAY: &str = "acme.echo.v1.Echo/Say";

/// Errors found from the schema on disk, by `validate` (and `run`) before anything else.
#[test]
fn schema_method_and_request_errors_name_where_and_what() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = d.join("bad.proto");
    std::fs::write(
        &bad,
        "syntax = \"proto3\";\nmessage A {\n  int32 a = 1\n  int32 b = 2;\n}\n",
    )
    .unwrap();
    let schema = format!("proto = [\"{}\"]", bad.display());
    let expected = format!(
        "{}:4:3: expected ';' or '[', but found 'int32'",
        bad.display()
    );
    refused(
        d,
        "validate",
        &profile("localhost:1", &schema, SAY, "{}", ""),
        &["target.proto", &expected],
    );
    for (method, says) in [
        (
            "acme.echo.v1.Echo/Sey",
            "`acme.echo.v1.Echo` has no method `Sey` (did you mean `Say`?); its methods: Say \
             (unary), Count (server streaming), Collect (client streaming), Chat \
             (bidirectional streaming)",
        ),
        (
            "acme.echo.v1.Ecco/Say",
            "no service `acme.echo.v1.Ecco` in the schema (did you mean `acme.echo.v1.Echo`?)",
        ),
        (
            "acme.echo.v1.Echo/Collect",
            "is client streaming; resilbench calls unary and server-streaming methods",
        ),
    ] {
        refused(
            d,
            "validate",
            &profile("localhost:1", &protos(), method, "{}", ""),
            &["target.method", says],
        );
    }
    for (request, says) in [
        (
            r#"{"idd": "x"}"#,
            "field `idd` is not in acme.echo.v1.SayRequest (did you mean `id`?); its fields: id, n, mood, detail, tags, at",
        ),
        (
            r#"{"detail": {"nite": "x"}}"#,
            "field `detail.nite` is not in acme.echo.v1.Detail (did you mean `note`?)",
        ),
        (
            r#"{"n": "many"}"#,
            "field `n` (int64 in acme.echo.v1.SayRequest): invalid digit found in string",
        ),
        (
            r#"{"mood": "MOOD_SAD"}"#,
            "unrecognized enum value 'MOOD_SAD'; its values: MOOD_UNSPECIFIED, MOOD_HAPPY, MOOD_GRUMPY",
        ),
        (
            r#"{"detail": {"depth": {{int 1 99999999999}}}}"#,
            "with {{int 1 99999999999}} as 99999999999: field `detail.depth` (int32 in acme.echo.v1.Detail)",
        ),
        (
            r#"{"id": "{{uid}}"}"#,
            "unknown placeholder `uid` (did you mean `uuid`?)",
        ),
    ] {
        refused(
            d,
            "validate",
            &profile("localhost:1", &protos(), SAY, request, ""),
            &["target.request", says],
        );
    }
    // The same from `run`, before any connection: nothing listens at port 1.
    refused(
        d,
        "run",
        &profile("localhost:1", &protos(), SAY, r#"{"idd": "x"}"#, ""),
        &["field `idd`"],
    );
}

#[test]
fn addresses_with_a_path_or_an_unknown_scheme_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (address, says) in [
        ("https://api.example.com/v1", "has a path (`/v1`)"),
        ("grpc://api.example.com:443", "unknown scheme `grpc://`"),
        ("api.example.com", "no port"),
    ] {
        refused(
            dir.path(),
            "validate",
            &profile(address, &protos(), SAY, "{}", ""),
            &[
                "target.address",
                says,
                "expected host:port, http://host:port or https://host[:port]",
            ],
        );
    }
    // TLS settings with a plaintext address.
    let tls = "[target.tls]\ninsecure = true";
    refused(
        dir.path(),
        "validate",
        &profile("localhost:1", &protos(), SAY, "{}", tls),
        &["target.tls", "need an https:// address"],
    );
    // A proxy listens in plaintext.
    refused(
        dir.path(),
        "validate",
        &profile(
            "https://localhost:1",
            &protos(),
            SAY,
            "{}",
            "control = true",
        ),
        &["target.control", "plaintext"],
    );
}

#[test]
fn a_server_without_reflection_is_said_so() {
    let server = foreign::start(Reflection::None, None);
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        "run",
        &profile(&server.addr.to_string(), "reflection = true", SAY, "{}", ""),
        &["does not serve gRPC reflection", "target.proto"],
    );
    assert!(server.seen().is_empty(), "no call was sent");
}

/// Each TLS failure is one line naming the host and what to change.
#[test]
fn tls_failures_are_one_line_each_naming_the_host() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tls_server = |clients| {
        foreign::start(
            Reflection::None,
            Some(ServerTls {
                identity: pki.server.clone(),
                clients,
            }),
        )
    };
    let server = tls_server(None);
    let port = server.addr.port();
    let ca = |file: &str| format!("[target.tls]\nca = \"{}\"", pki.path(file));
    let at = |host: &str, p: u16| format!("https://{host}:{p}");
    // A CA the client does not trust (the system's roots, then another CA).
    for tls in ["", &ca("other-ca.pem")] {
        refused(
            d,
            "run",
            &profile(&at("localhost", port), &protos(), SAY, "{}", tls),
            &[
                "TLS: the certificate of localhost is not signed by a CA this client trusts",
                "--cacert",
            ],
        );
    }
    // A name the certificate does not have.
    let wrong = format!("{}\nserver_name = \"wrong.example\"", ca("ca.pem"));
    refused(
        d,
        "run",
        &profile(&at("localhost", port), &protos(), SAY, "{}", &wrong),
        &[
            "TLS: the certificate of the server is not valid for wrong.example: it is for localhost, 127.0.0.1",
        ],
    );
    // Plaintext HTTP/2 to a TLS server.
    refused(
        d,
        "run",
        &profile(&format!("127.0.0.1:{port}"), &protos(), SAY, "{}", ""),
        &[&format!("127.0.0.1:{port}"), "answered with TLS"],
    );
    drop(server);
    // The same to a server that closes without an alert (as gRPC C-core does).
    let (silent, _s) = foreign::silent_tls_server(pki.server.clone());
    refused(
        d,
        "run",
        &profile(
            &format!("127.0.0.1:{}", silent.port()),
            &protos(),
            SAY,
            "{}",
            "",
        ),
        &[
            &format!("127.0.0.1:{}", silent.port()),
            "HTTP/2 handshake: the server answered with TLS: use an https:// address",
        ],
    );
    // A client certificate required and not given.
    let server = tls_server(Some((pki.ca.clone(), true)));
    refused(
        d,
        "run",
        &profile(
            &at("localhost", server.addr.port()),
            &protos(),
            SAY,
            "{}",
            &ca("ca.pem"),
        ),
        &["TLS: localhost requires a client certificate", "--cert"],
    );
    drop(server);
    // Expired; no ALPN; ALPN without h2 (bare TLS servers).
    let (expired, _e) = foreign::bare_tls_server(pki.expired.clone(), vec![b"h2".to_vec()]);
    refused(
        d,
        "run",
        &profile(
            &at("localhost", expired.port()),
            &protos(),
            SAY,
            "{}",
            &ca("ca.pem"),
        ),
        &["TLS: the certificate of localhost expired on 2021-01-01T00:00:00Z"],
    );
    let (none, _n) = foreign::bare_tls_server(pki.server.clone(), vec![]);
    refused(
        d,
        "run",
        &profile(
            &at("localhost", none.port()),
            &protos(),
            SAY,
            "{}",
            &ca("ca.pem"),
        ),
        &["TLS: localhost did not agree to HTTP/2 (ALPN h2)"],
    );
    let (h1, _h) = foreign::bare_tls_server(pki.server.clone(), vec![b"http/1.1".to_vec()]);
    refused(
        d,
        "run",
        &profile(
            &at("localhost", h1.port()),
            &protos(),
            SAY,
            "{}",
            &ca("ca.pem"),
        ),
        &["TLS: localhost does not speak HTTP/2 (it refused ALPN h2)"],
    );
}

/// The quick run's errors name the flag the value came from; its flags beside a profile are
/// refused.
#[test]
fn quick_run_errors_name_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let proto = foreign::proto_dir()
        .join("acme/echo/v1/echo.proto")
        .display()
        .to_string();
    let include = foreign::proto_dir().display().to_string();
    let quick = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--target",
            "localhost:1",
            "--proto",
            &proto,
            "-i",
            &include,
        ];
        args.extend_from_slice(extra);
        let out = resilbench(&args, d);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        stderr(&out)
    };
    assert!(
        quick(&["--call", "acme.echo.v1.Echo/Sey"])
            .contains("error: --call: `acme.echo.v1.Echo` has no method `Sey`")
    );
    assert!(
        quick(&["--call", SAY, "-d", r#"{"idd": 1}"#])
            .contains("error: -d: field `idd` is not in acme.echo.v1.SayRequest")
    );
    assert!(
        quick(&["--call", SAY, "-H", "grpc-timeout: 1S"])
            .contains("error: -H/-m: `grpc-timeout` is set by the gRPC client itself")
    );
    assert!(
        quick(&["--call", SAY, "--service-config", "nope.json"])
            .contains("error: --service-config nope.json: cannot read")
    );
    assert!(quick(&[]).contains("needs --call"));
    let out = resilbench(&["run", "quickstart", "--call", SAY], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--call describes your own service for a run without a profile"),
        "{}",
        stderr(&out)
    );
}
