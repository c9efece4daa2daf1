//! Own-service checks found by a hostile probe (issue 20): TLS files that cannot be used,
//! errors found by reflection said where their key was written, an address given as the
//! profile, the `{{call}}` range against the schedule's real last call, the quick run's
//! smaller messages, and what `validate` prints for a `[target]`.

use crate::common::foreign::{self, Pki, Reflection};
use crate::common::{resilbench, stderr};
use crate::target_errors::{SAY, profile, protos, refused};

/// TLS files that cannot be used are refused when the profile is read (`validate`, and `run`
/// before any connection), at the key's line, or by the flag in a quick run: a key given as
/// the CA, a certificate file without a certificate, a key that is another certificate's.
#[test]
fn unusable_tls_files_are_refused_at_their_key() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let broken = d.join("broken.pem").display().to_string();
    let tls = |ca: &str, cert: &str, key: &str| {
        format!(
            "[target.tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"",
            ca,
            pki.path(cert),
            pki.path(key)
        )
    };
    let at = "https://localhost:1";
    for command in ["validate", "run"] {
        // ca is on line 12 of the profile, cert 13, key 14.
        refused(
            d,
            command,
            &profile(
                at,
                &protos(),
                SAY,
                "{}",
                &tls(&pki.path("client.key"), "client.pem", "client.key"),
            ),
            &[
                "p.toml:12",
                "target.tls.ca",
                "no certificate in",
                "client.key",
            ],
        );
        refused(
            d,
            command,
            &profile(
                at,
                &protos(),
                SAY,
                "{}",
                &tls(&broken, "client.pem", "client.key"),
            ),
            &[
                "p.toml:12",
                "target.tls.ca",
                "certificate 1 of",
                "does not parse",
            ],
        );
        refused(
            d,
            command,
            &profile(
                at,
                &protos(),
                SAY,
                "{}",
                &tls(&pki.path("ca.pem"), "client.key", "client.key"),
            ),
            &["p.toml:13", "target.tls.cert", "no certificate in"],
        );
        refused(
            d,
            command,
            &profile(
                at,
                &protos(),
                SAY,
                "{}",
                &tls(&pki.path("ca.pem"), "client.pem", "server.key"),
            ),
            &[
                "p.toml:14",
                "target.tls.key",
                "server.key is not the key of the certificate in",
                "client.pem",
            ],
        );
    }
    // The quick run names the flag.
    let proto = foreign::proto_dir().join("acme/echo/v1/echo.proto");
    let include = foreign::proto_dir();
    let out = resilbench(
        &[
            "run",
            "--target",
            at,
            "--proto",
            &proto.display().to_string(),
            "-i",
            &include.display().to_string(),
            "--call",
            SAY,
            "--cacert",
            &pki.path("ca.pem"),
            "--cert",
            &pki.path("client.pem"),
            "--key",
            &pki.path("server.key"),
        ],
        d,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error: --key: the key in"), "{err}");
}

/// Errors found only once the schema came by reflection keep their source, as those found
/// from a schema on disk do: the profile's file:line:col, the quick run's flag.
#[test]
fn reflection_errors_say_where_the_key_was_written() {
    let server = foreign::start(Reflection::Both, None);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let address = server.addr.to_string();
    refused(
        d,
        "run",
        &profile(
            &address,
            "reflection = true",
            "acme.echo.v1.Echo/Sey",
            "{}",
            "",
        ),
        &["p.toml:8:", "target.method", "has no method `Sey`"],
    );
    refused(
        d,
        "run",
        &profile(&address, "reflection = true", SAY, r#"{"idd": 1}"#, ""),
        &[
            "p.toml:9:",
            "target.request",
            "field `idd` is not in acme.echo.v1.SayRequest",
        ],
    );
    let quick = |extra: &[&str]| {
        let mut args = vec!["run", "--target", &address, "--quiet"];
        args.extend_from_slice(extra);
        let out = resilbench(&args, d);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        err
    };
    let err = quick(&["--call", "acme.echo.v1.Echo/Sey"]);
    assert!(
        err.contains("error: --call: `acme.echo.v1.Echo` has no method `Sey`"),
        "{err}"
    );
    let err = quick(&["--call", SAY, "-d", r#"{"idd": 1}"#]);
    assert!(
        err.contains("error: -d: field `idd` is not in acme.echo.v1.SayRequest"),
        "{err}"
    );
    assert!(server.seen().is_empty(), "no call was sent");
}

/// An address where the profile goes (`run 127.0.0.1:50052 --call ...`, as ghz takes its
/// host) is said to be one, with the flag it wants.
#[test]
fn an_address_given_as_the_profile_is_said_to_be_one() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &[
                "run",
                "127.0.0.1:50052",
                "--call",
                SAY,
                "--proto",
                "x.proto",
            ][..],
            "error: `127.0.0.1:50052` is not a profile; did you mean --target 127.0.0.1:50052?\n",
        ),
        (
            &["run", "https://api.example.com"][..],
            "error: `https://api.example.com` is not a profile; did you mean --target \
             https://api.example.com? (with --call package.Service/Method)\n",
        ),
    ] {
        let out = resilbench(args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
    // A file of that name is a profile, whatever it looks like.
    std::fs::write(dir.path().join("localhost:1"), "[load]\nrate = -1\n").unwrap();
    let out = resilbench(&["run", "localhost:1"], dir.path());
    assert!(
        !stderr(&out).contains("is not a profile"),
        "{}",
        stderr(&out)
    );
}

/// `{{call}}` in an int32 field is checked against the schedule's real last call: two
/// billion calls (the last is 1,999,999,999) fit; 2.2 billion do not, and the error says the
/// value that does not fit.
#[test]
fn the_call_range_is_the_schedules_last_call() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let toml = |duration: &str| {
        profile(
            "localhost:1",
            &protos(),
            "acme.echo.v1.Echo/Count",
            r#"{"count": {{call}}}"#,
            "",
        )
        .replace(
            "rate = 10\nduration = \"1s\"",
            &format!("rate = 1000000\nduration = \"{duration}\""),
        )
    };
    std::fs::write(d.join("p.toml"), toml("2000s")).unwrap();
    let out = resilbench(&["validate", "p.toml"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    refused(
        d,
        "validate",
        &toml("2200s"),
        &["target.request", "2199999999"],
    );
}

/// The quick run's smaller messages say what happened in plain words: one flag "describes",
/// an import path that is no directory is `-i`'s (not `--proto`'s), `--insecure` with a
/// plaintext address (ghz's meaning) is explained, a control character's sentence ends.
#[test]
fn quick_run_wording() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let proto = foreign::proto_dir().join("acme/echo/v1/echo.proto");
    let proto = proto.display().to_string();
    let said = |args: &[&str]| {
        let out = resilbench(args, d);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        err
    };
    let err = said(&["run", "quickstart", "--proto", &proto]);
    assert!(
        err.contains("error: --proto describes your own service"),
        "{err}"
    );
    let base = ["run", "--target", "localhost:1", "--call", SAY];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }
    let err = said(&with(&base, &["--proto", &proto, "-i", "/nonexistent-dir"]));
    assert!(
        err.contains("error: --import-path: import path /nonexistent-dir is not a directory"),
        "{err}"
    );
    let err = said(&with(&base, &["--proto", &proto, "--insecure"]));
    assert!(
        err.contains("error: --insecure skips verifying a TLS server's certificate, and this address is plaintext HTTP/2 already: drop --insecure"),
        "{err}"
    );
    let err = said(&with(&base, &["--proto", &proto, "--cname", "x"]));
    assert!(
        err.contains("error: --cname: TLS settings need an https:// address"),
        "{err}"
    );
    let err = said(&with(&base, &["--proto", &proto, "-H", "x: a\u{1}b"]));
    assert!(
        err.contains("holds a control character, which a header value cannot hold"),
        "{err}"
    );
}

/// `validate` of a `[target]` profile prints the plan without what only the embedded backend
/// uses, in the plan's order, and says so; the printed plan is a profile that validates again.
#[test]
fn validate_of_a_target_leaves_out_the_embedded_backend() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("p.toml"),
        profile("localhost:1", &protos(), SAY, "{}", ""),
    )
    .unwrap();
    let out = resilbench(&["validate", "p.toml"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("the embedded backend's settings"),
        "{printed}"
    );
    let plan: String = printed
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!plan.contains("[backend"), "{plan}");
    assert!(!plan.contains("payload_bytes"), "{plan}");
    let load = &printed[printed.find("[load]").unwrap()..printed.find("[[strategies]]").unwrap()];
    assert!(!load.contains("method ="), "{load}");
    assert!(printed.find("name = ").unwrap() < printed.find("seed = ").unwrap());
    assert!(
        printed.contains("[target]\naddress = \"localhost:1\""),
        "{printed}"
    );
    std::fs::write(d.join("again.toml"), &printed).unwrap();
    let again = resilbench(&["validate", "again.toml"], d);
    assert!(again.status.success(), "{}", stderr(&again));
    // A resilbench proxy in front (control = true) takes its faults from [backend]: kept.
    let proxied = profile("localhost:1", &protos(), SAY, "{}", "control = true");
    std::fs::write(d.join("p.toml"), proxied).unwrap();
    let out = resilbench(&["validate", "p.toml"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("\n[backend]\n"), "{printed}");
    assert!(
        printed.contains("# (the calls go to [target]: load.method and load.payload_bytes"),
        "{printed}"
    );
    // A profile of the embedded backend prints it whole.
    let out = resilbench(&["validate", "quickstart"], d);
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("[backend]") && printed.contains("method = "),
        "{printed}"
    );
}
