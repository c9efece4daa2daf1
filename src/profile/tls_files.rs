//! `[target.tls]`'s files checked when the profile is read (`validate` and `run`, before any
//! connection): the CA file holds certificates that parse, the client certificate and key
//! parse and belong together. A key given as the CA, or a certificate with another
//! certificate's key, is an error at the profile's line (or the flag), exit 2, rather than a
//! failure on the first connection.
//!
//! The same parsing as the connection's (`transport/tls`): rustls-pki-types reads the PEM,
//! webpki parses each certificate as a trust anchor, and rustls's `CertifiedKey::from_der`
//! loads the key and compares its public key with the certificate's.

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::target::TlsPlan;
use super::validate::{Invalid, invalid};

/// Largest TLS file read (a bundle of every public CA is about 200 kB).
pub const MAX_TLS_FILE: u64 = 4 << 20;

/// Checks the files of `tls` (paths already made absolute and known to be files).
pub fn check(tls: &TlsPlan) -> Result<(), Invalid> {
    if let Some(ca) = &tls.ca {
        let certs = certificates(ca, "target.tls.ca", "CA certificates")?;
        let mut roots = RootCertStore::empty();
        for (i, cert) in certs.into_iter().enumerate() {
            if let Err(e) = roots.add(cert) {
                return invalid(
                    "target.tls.ca",
                    format!("certificate {} of {ca} does not parse: {e}", i + 1),
                );
            }
        }
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        let chain = certificates(cert, "target.tls.cert", "client certificate")?;
        bounded(key, "target.tls.key")?;
        let der = PrivateKeyDer::from_pem_file(key).or_else(|e| {
            invalid(
                "target.tls.key",
                format!("no private key in {key} (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
            )
        })?;
        // The provider a connection uses (ring, the only one built in).
        let provider = rustls::ClientConfig::builder().crypto_provider().clone();
        if let Err(e) = CertifiedKey::from_der(chain, der, &provider) {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => {
                    format!("the key in {key} is not the key of the certificate in {cert}")
                }
                other => format!("the key in {key} cannot be used with {cert}: {other}"),
            };
            return invalid("target.tls.key", why);
        }
    }
    Ok(())
}

/// The certificates of the PEM file `path` (at least one).
fn certificates(
    path: &str,
    field: &str,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    bounded(path, field)?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .or_else(|e| invalid(field, format!("cannot read the {what} in {path}: {e}")))?;
    if certs.is_empty() {
        return invalid(
            field,
            format!("no certificate in {path} (expected PEM `BEGIN CERTIFICATE` blocks)"),
        );
    }
    Ok(certs)
}

/// A file of at most [`MAX_TLS_FILE`] bytes.
fn bounded(path: &str, field: &str) -> Result<(), Invalid> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > MAX_TLS_FILE {
        return invalid(
            field,
            format!("{path} is {len} bytes; a TLS file is at most {MAX_TLS_FILE} bytes"),
        );
    }
    Ok(())
}
