//! A TLS server that requires a client certificate and, refused one, closes the connection
//! without the alert a rustls or tonic server sends: as gRPC C-core's handshaker does. In
//! TLS 1.3 the client's handshake is over before the server reads its (empty) certificate,
//! so the client learns of the refusal only as a closed connection on its first read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The server, stopped when dropped.
pub struct SilentMtls {
    /// Its address.
    pub addr: SocketAddr,
    /// Handshakes refused (closed without an alert).
    pub refused: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for SilentMtls {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves TLS 1.3 with `identity` (PEM certificate, key), ALPN `h2`, requiring a client
/// certificate signed by `client_ca` (PEM).
pub fn start(identity: &(String, String), client_ca: &str) -> SilentMtls {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(identity.0.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(identity.1.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca.as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let mut config =
        rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, refused) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (stopping, counting) = (Arc::clone(&stop), Arc::clone(&refused));
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let Ok(socket) = socket else { return };
            let (config, counting) = (Arc::clone(&config), Arc::clone(&counting));
            std::thread::spawn(move || serve(socket, config, &counting));
        }
    });
    SilentMtls {
        addr,
        refused,
        stop,
    }
}

/// One connection: the handshake driven by hand, so that a refusal writes nothing.
fn serve(mut socket: TcpStream, config: Arc<rustls::ServerConfig>, refused: &AtomicUsize) {
    let _ = socket.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let Ok(mut tls) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        while tls.wants_write() {
            if tls.write_tls(&mut socket).is_err() {
                return;
            }
        }
        let _ = socket.flush();
        let n = match socket.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut read = &buf[..n];
        while !read.is_empty() {
            if tls.read_tls(&mut read).is_err() {
                return;
            }
            if tls.process_new_packets().is_err() {
                // The alert rustls queued is never written: the socket is just closed.
                refused.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}
