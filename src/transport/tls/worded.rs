//! TLS failures in words: one line naming the host and what to change, for the handshake's
//! errors and for those a server shows after it (a TLS 1.3 server refuses a client
//! certificate on the first read).
//!
//! Servers refuse differently. rustls (tonic's TLS) sends an alert, `certificate_required`
//! for a missing client certificate; gRPC C-core (grpcio, and every C-core wrapper) closes
//! the socket without an alert, so the client sees only an end without `close_notify`. So
//! this client remembers whether the server asked for a certificate (rustls asks the
//! client's [`ResolvesClientCert`] when a CertificateRequest arrives) and, when it had none
//! to give and the server then closed before saying anything, says the certificate is what
//! is missing.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use rustls::client::ResolvesClientCert;
use rustls::pki_types::UnixTime;
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, CertificateError, SignatureScheme};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TLS failure in one line, naming the host and what to change.
pub fn worded(e: &std::io::Error, host: &str) -> std::io::Error {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return std::io::Error::new(e.kind(), e.to_string());
    };
    std::io::Error::new(e.kind(), words(tls, host))
}

/// What a client without a certificate says when the server asked for one and then closed.
pub fn certificate_required(host: &str) -> String {
    format!(
        "TLS: {host} requires a client certificate: give target.tls.cert and target.tls.key \
         (--cert, --key)"
    )
}

/// A client that has no certificate to give, and notes whether the server asked for one.
#[derive(Debug, Default)]
pub struct NoCertificate {
    /// The server sent a CertificateRequest.
    pub asked: AtomicBool,
}

impl ResolvesClientCert for NoCertificate {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// [`worded`], and a connection closed by a server that had asked for the certificate this
/// client did not have (`refused`) as [`certificate_required`].
pub fn worded_closed(e: &std::io::Error, host: &str, refused: bool) -> std::io::Error {
    let closed = matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
    );
    if closed && refused {
        return std::io::Error::new(e.kind(), certificate_required(host));
    }
    worded(e, host)
}

fn words(e: &rustls::Error, host: &str) -> String {
    use rustls::Error as E;
    let ca = "give its CA's certificate as target.tls.ca (--cacert), or skip verification with \
              target.tls.insecure (--insecure)";
    match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            format!("TLS: the certificate of {host} is not signed by a CA this client trusts; {ca}")
        }
        E::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. }) => {
            let names: Vec<String> = presented.iter().map(|p| shown_name(p)).collect();
            format!(
                "TLS: the certificate of the server is not valid for {host}: it is for {}; \
                 connect by one of those names or set target.tls.server_name (--cname)",
                names.join(", ")
            )
        }
        E::InvalidCertificate(CertificateError::NotValidForName) => format!(
            "TLS: the certificate of the server is not valid for {host}; connect by a name it \
             has or set target.tls.server_name (--cname)"
        ),
        E::InvalidCertificate(CertificateError::ExpiredContext { not_after, .. }) => format!(
            "TLS: the certificate of {host} expired on {}",
            date(*not_after)
        ),
        E::InvalidCertificate(CertificateError::Expired) => {
            format!("TLS: the certificate of {host} has expired")
        }
        E::InvalidCertificate(CertificateError::NotValidYetContext { not_before, .. }) => format!(
            "TLS: the certificate of {host} is not valid before {} (is this machine's clock \
             right?)",
            date(*not_before)
        ),
        E::InvalidCertificate(CertificateError::NotValidYet) => {
            format!("TLS: the certificate of {host} is not valid yet")
        }
        E::InvalidCertificate(other) => {
            format!("TLS: the certificate of {host} is refused: {other:?}")
        }
        E::AlertReceived(AlertDescription::NoApplicationProtocol) => {
            format!("TLS: {host} does not speak HTTP/2 (it refused ALPN h2); gRPC runs over HTTP/2")
        }
        E::AlertReceived(AlertDescription::CertificateRequired) => certificate_required(host),
        E::AlertReceived(
            a @ (AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked),
        ) => format!("TLS: {host} refused the client certificate (alert {a:?})"),
        E::AlertReceived(a) => format!("TLS: {host} ended the handshake (alert {a:?})"),
        E::InvalidMessage(_) => format!(
            "TLS: {host} did not answer as a TLS server (a plaintext server? then use \
             host:port or http://)"
        ),
        other => format!("TLS with {host}: {other}"),
    }
}

/// `DnsName("localhost")` as `localhost`, `IpAddress(127.0.0.1)` as `127.0.0.1`.
fn shown_name(presented: &str) -> String {
    presented
        .trim_start_matches("DnsName(\"")
        .trim_start_matches("IpAddress(")
        .trim_end_matches(')')
        .trim_end_matches('"')
        .to_string()
}

fn date(t: UnixTime) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.as_secs());
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A TLS stream whose errors are worded as [`worded_closed`] words them (a client
/// certificate refused after the handshake shows on the first read).
pub struct Worded {
    /// The stream.
    pub inner: tokio_rustls::client::TlsStream<TcpStream>,
    /// The server's name, as messages show it.
    pub host: Arc<str>,
    /// Whether the server asked for the certificate this client does not have (None: it has
    /// one).
    pub asked: Option<Arc<NoCertificate>>,
    /// Bytes have been read: a close after that is no refusal of the handshake.
    pub heard: bool,
}

impl Worded {
    /// The server asked for a certificate and nothing was heard since: a close now is its
    /// refusal of the handshake.
    fn refused(&self) -> bool {
        !self.heard && (self.asked.as_ref()).is_some_and(|a| a.asked.load(Ordering::Relaxed))
    }
}

impl AsyncRead for Worded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let refused = self.refused();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(worded_closed(&e, &this.host, refused))),
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.heard = true;
                Poll::Ready(Ok(()))
            }
            // The end, cleanly (close_notify), before a byte.
            Poll::Ready(Ok(())) if refused && buf.remaining() > 0 => {
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    certificate_required(&this.host),
                )))
            }
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Worded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let refused = self.refused();
        let this = &mut *self;
        Pin::new(&mut this.inner)
            .poll_write(cx, buf)
            .map_err(|e| worded_closed(&e, &this.host, refused))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let refused = self.refused();
        let this = &mut *self;
        Pin::new(&mut this.inner)
            .poll_write_vectored(cx, bufs)
            .map_err(|e| worded_closed(&e, &this.host, refused))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let refused = self.refused();
        let this = &mut *self;
        Pin::new(&mut this.inner)
            .poll_flush(cx)
            .map_err(|e| worded_closed(&e, &this.host, refused))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
