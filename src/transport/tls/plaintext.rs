//! Plaintext HTTP/2 (h2c) to a user's service, which says so when the server speaks TLS.
//!
//! A TLS server that reads an HTTP/2 preface either answers with an alert (rustls, tonic:
//! the HTTP/2 handshake sees the TLS record and says so) or closes without a word (gRPC
//! C-core, grpcio: its handshaker drops the connection, with a reset when our bytes were
//! left unread). For the second, a connection closed or reset before the server sent a byte opens one more connection and sends a TLS ClientHello on
//! it: a server that answers with a TLS record is a TLS server, and the address wants
//! `https://`. The question is asked inside the connection attempt, so the attempt's timeout
//! (`--connect-timeout`, around the TCP connection and the HTTP/2 handshake) bounds it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::NoVerification;
use crate::transport::connection::{Connector, Io};

/// What a plaintext connection to a TLS server fails with.
pub const ANSWERED_WITH_TLS: &str = "the server answered with TLS: use an https:// address";

/// A connector to `socket` (`host:port`) over TCP, Nagle's algorithm off, whose first read
/// finding the connection closed asks whether the server speaks TLS.
pub fn connector(socket: &str, host: &str) -> Connector {
    let (socket, host): (Arc<str>, Arc<str>) = (socket.into(), host.into());
    Arc::new(move || {
        let (socket, host) = (Arc::clone(&socket), Arc::clone(&host));
        Box::pin(async move {
            let tcp = TcpStream::connect(&*socket).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(Plain {
                tcp,
                socket,
                host,
                heard: false,
                asking: None,
            }) as Box<dyn Io>)
        })
    })
}

type Asking = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A TCP stream that, closed before a byte came, asks whether the server speaks TLS.
struct Plain {
    tcp: TcpStream,
    socket: Arc<str>,
    host: Arc<str>,
    /// A byte came: the server speaks something, nothing more to ask.
    heard: bool,
    /// The question, being asked, and the error the connection closed with (none: a clean
    /// end).
    asking: Option<(Asking, Option<std::io::Error>)>,
}

impl AsyncRead for Plain {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.asking.is_none() {
            let before = buf.filled().len();
            let read = match Pin::new(&mut this.tcp).poll_read(cx, buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(read) => read,
            };
            let closed = match &read {
                Ok(()) => buf.remaining() > 0 && buf.filled().len() == before,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            };
            if this.heard || !closed {
                this.heard = true;
                return Poll::Ready(read);
            }
            let (socket, host) = (Arc::clone(&this.socket), Arc::clone(&this.host));
            this.asking = Some((Box::pin(answers_tls(socket, host)), read.err()));
        }
        let (asking, _) = this.asking.as_mut().expect("asking");
        let Poll::Ready(tls) = asking.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        let (_, closed) = this.asking.take().expect("asking");
        this.heard = true;
        Poll::Ready(match (tls, closed) {
            (true, _) => Err(std::io::Error::other(ANSWERED_WITH_TLS)),
            // Not TLS: the close as it came.
            (false, Some(reset)) => Err(reset),
            (false, None) => Ok(()),
        })
    }
}

impl AsyncWrite for Plain {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Whether the server at `socket` answers a TLS ClientHello for `host` with a TLS record.
async fn answers_tls(socket: Arc<str>, host: Arc<str>) -> bool {
    let builder = ClientConfig::builder();
    let provider = builder.crypto_provider().clone();
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a DNS name"));
    let mut hello = Vec::new();
    let written = rustls::ClientConnection::new(Arc::new(config), name).and_then(|mut c| {
        c.write_tls(&mut hello)
            .map_err(|e| rustls::Error::General(e.to_string()))
    });
    if written.is_err() {
        return false;
    }
    let Ok(mut tcp) = TcpStream::connect(&*socket).await else {
        return false;
    };
    let mut first = [0u8; 2];
    tcp.write_all(&hello).await.is_ok()
        && tcp.read_exact(&mut first).await.is_ok()
        && is_tls_record(&first)
}

/// A TLS record's first bytes: handshake (22) or alert (21), then version 3.x.
pub fn is_tls_record(first: &[u8]) -> bool {
    first.len() >= 2 && matches!(first[0], 0x15 | 0x16) && first[1] == 0x03
}
