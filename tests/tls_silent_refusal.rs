//! An mTLS server that closes without a TLS alert when the client gives no certificate (gRPC
//! C-core's way; tonic and rustls send `certificate_required`), in process: one line naming
//! the host and saying to give `tls.cert`/`tls.key`, exit 2, nothing written.

use std::sync::atomic::Ordering;

use crate::common::foreign::Pki;
use crate::common::silent_mtls;
use crate::target_errors::{profile, protos, refused};

const SAY: &str = "acme.echo.v1.Echo/Say";

#[test]
fn a_client_certificate_refused_without_an_alert_is_one_line() {
    let pki = Pki::new();
    let server = silent_mtls::start(&pki.server, &pki.ca);
    let dir = tempfile::tempdir().unwrap();
    let address = format!("https://localhost:{}", server.addr.port());
    let tls = format!("[target.tls]\nca = \"{}\"", pki.path("ca.pem"));
    refused(
        dir.path(),
        "run",
        &profile(&address, &protos(), SAY, "{}", &tls),
        &[
            "TLS: localhost requires a client certificate: give target.tls.cert",
            "target.tls.key",
        ],
    );
    assert!(!dir.path().join("out").exists(), "no run folder is left");
    assert!(
        server.refused.load(Ordering::SeqCst) >= 1,
        "the server refused a handshake without an alert"
    );
    // With the client's certificate the handshake goes through: this server does not speak
    // HTTP/2 and never sends SETTINGS, so the client gives up waiting for them (the refusal
    // above was the certificate's, not the server's way with every client).
    let with_cert = format!(
        "{tls}\ncert = \"{}\"\nkey = \"{}\"",
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let before = server.refused.load(Ordering::SeqCst);
    std::fs::write(
        dir.path().join("p.toml"),
        profile(&address, &protos(), SAY, "{}", &with_cert),
    )
    .unwrap();
    let out = crate::common::resilbench(&["run", "p.toml", "--out", "out2", "--quiet"], dir.path());
    let err = crate::common::stderr(&out);
    assert!(!err.contains("requires a client certificate"), "{err}");
    assert!(err.contains("no HTTP/2 connection within"), "{err}");
    assert_eq!(server.refused.load(Ordering::SeqCst), before, "{err}");
}
