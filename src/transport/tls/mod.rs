//! TLS to the user's own service (`https://`): rustls with ring, HTTP/2 asked for by ALPN,
//! no OpenSSL. The connection is an [`Io`] like a TCP socket, so the HTTP/2 client above it
//! is the same.
//!
//! What a gRPC client does, and so this does:
//! - the server's certificate is verified against the system's roots (rustls-native-certs:
//!   `SSL_CERT_FILE`, `SSL_CERT_DIR`, the distribution's bundle), or Mozilla's roots built in
//!   (webpki-roots) when the system has none (a bare container; a warning says so), or the
//!   `ca` file alone when one is given (a private CA, the usual case inside a company);
//! - for the name in the address, or `server_name` (sent as SNI and checked against the
//!   certificate, as grpc-go's `WithAuthority`/ghz's `--cname` do);
//! - a client certificate and key for mTLS;
//! - ALPN `h2`, and a server that does not choose it is refused (gRPC needs HTTP/2;
//!   grpc-go fails such a connection too);
//! - `insecure` skips the certificate's verification (the handshake's signatures are still
//!   checked, so the peer holds the key of the certificate it shows), with a warning on every
//!   run.
//!
//! Each failure is one line naming the host and what to change: an unknown CA, a name the
//! certificate does not cover, an expired certificate, no HTTP/2, a client certificate the
//! server requires or refuses. TLS 1.3 servers refuse a client certificate after the
//! handshake, on the first read; the stream's errors are worded the same way there.

mod plaintext;
mod worded;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio::net::TcpStream;

use super::connection::{Connector, Io};
use crate::profile::TlsPlan;
pub use plaintext::{ANSWERED_WITH_TLS, is_tls_record};
pub use worded::worded;
use worded::{NoCertificate, Worded, worded_closed};

/// What a TLS connection to one server needs: the client's configuration and the name the
/// server's certificate is checked against.
pub struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    /// The name, as messages show it.
    shown: String,
    /// A client certificate is configured.
    has_cert: bool,
}

impl Tls {
    /// TLS to `host` as `plan` says (system roots when there is no plan); the warnings the
    /// run must print (verification off, no system roots).
    pub fn new(plan: Option<&TlsPlan>, host: &str) -> Result<(Self, Vec<String>), String> {
        let plan = plan.cloned().unwrap_or_default();
        let shown = plan.server_name.clone().unwrap_or_else(|| host.to_string());
        let name = ServerName::try_from(shown.clone())
            .map_err(|_| format!("`{shown}` is not a DNS name or an IP address for TLS"))?;
        let mut warnings = Vec::new();
        let builder = ClientConfig::builder();
        let builder = if plan.insecure {
            warnings.push(format!(
                "TLS verification is off (insecure): the server at {shown} is not \
                 authenticated, anyone in the path could answer for it"
            ));
            let provider = builder.crypto_provider().clone();
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            let (roots, warning) = roots(plan.ca.as_deref())?;
            warnings.extend(warning);
            builder.with_root_certificates(roots)
        };
        let has_cert = plan.cert.is_some() && plan.key.is_some();
        let mut config = match (&plan.cert, &plan.key) {
            (Some(cert), Some(key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<_, _>>())
                    .map_err(|e| format!("cannot read the client certificate {cert}: {e}"))?;
                if chain.is_empty() {
                    return Err(format!("no certificate in {cert}"));
                }
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("cannot read the client key {key}: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("the client certificate {cert} and its key: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok((
            Self {
                config: Arc::new(config),
                name,
                shown,
                has_cert,
            },
            warnings,
        ))
    }

    /// A connector to `socket` (`host:port`) over TCP and TLS.
    pub fn connector(self: &Arc<Self>, socket: &str) -> Connector {
        let (tls, socket): (Arc<Self>, Arc<str>) = (Arc::clone(self), socket.into());
        Arc::new(move || {
            let (tls, socket) = (Arc::clone(&tls), Arc::clone(&socket));
            Box::pin(async move { tls.connect(&socket).await })
                as Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Io>>> + Send>>
        })
    }

    /// A TLS connection to `socket`, HTTP/2 agreed.
    pub async fn connect(&self, socket: &str) -> std::io::Result<Box<dyn Io>> {
        let tcp = TcpStream::connect(socket).await?;
        tcp.set_nodelay(true)?;
        // Without a certificate, this connection notes whether the server asks for one.
        let (config, asked) = if self.has_cert {
            (Arc::clone(&self.config), None)
        } else {
            let asked = Arc::new(NoCertificate::default());
            let mut config = (*self.config).clone();
            config.client_auth_cert_resolver = asked.clone();
            (Arc::new(config), Some(asked))
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let stream = connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| {
                let refused = asked
                    .as_ref()
                    .is_some_and(|a| a.asked.load(Ordering::Relaxed));
                worded_closed(&e, &self.shown, refused)
            })?;
        if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(std::io::Error::other(format!(
                "TLS: {} did not agree to HTTP/2 (ALPN h2); gRPC runs over HTTP/2",
                self.shown
            )));
        }
        Ok(Box::new(Worded {
            inner: stream,
            host: Arc::from(self.shown.as_str()),
            asked,
            heard: false,
        }))
    }
}

/// A connector to a `[target]`-form address: TLS as `plan` says for `https://`, plain TCP
/// (h2c) otherwise; with the warnings to print. One implementation for every client of a
/// user's service: `run`'s calls and reflection, and `resilbench proxy`'s upstream.
pub fn connector_for(
    address: &crate::profile::target::Address,
    plan: Option<&TlsPlan>,
) -> Result<(Connector, Vec<String>), String> {
    let socket = address.socket();
    if address.tls {
        let (tls, warnings) = Tls::new(plan, &address.host)?;
        Ok((Arc::new(tls).connector(&socket), warnings))
    } else {
        Ok((plaintext::connector(&socket, &address.host), Vec::new()))
    }
}

/// The roots to trust: the `ca` file's certificates, or the system's, or Mozilla's built in
/// when the system has none (with a warning).
fn roots(ca: Option<&str>) -> Result<(RootCertStore, Option<String>), String> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = ca {
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read the CA certificates {ca}: {e}"))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("no CA certificate in {ca}"));
        }
        return Ok((roots, None));
    }
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added > 0 {
        return Ok((roots, None));
    }
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok((
        roots,
        Some(
            "no system CA certificates found (set SSL_CERT_FILE to a bundle); trusting the \
             Mozilla roots built into resilbench"
                .into(),
        ),
    ))
}

/// Accepts any certificate (`insecure`), still checking the handshake's signatures with the
/// provider's algorithms: the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ring is the only provider built in: the implicit default works (with two providers
    /// `ClientConfig::builder()` would panic).
    #[test]
    fn a_config_builds_with_the_system_or_bundled_roots() {
        let (tls, _) = Tls::new(None, "example.com").unwrap();
        assert_eq!(tls.config.alpn_protocols, vec![b"h2".to_vec()]);
        let insecure = TlsPlan {
            insecure: true,
            ..TlsPlan::default()
        };
        let (_, warnings) = Tls::new(Some(&insecure), "127.0.0.1").unwrap();
        assert!(warnings[0].contains("verification is off"), "{warnings:?}");
    }
}
