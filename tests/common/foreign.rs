//! A gRPC service that is not resilbench's, served by tonic's generated server (code from
//! tests/proto/acme/echo/v1/echo.proto, built by build.rs) with tonic-reflection's service,
//! over plaintext HTTP/2, TLS or mTLS with certificates made here (rcgen). It records what
//! each call carried, so a test sees the request and the metadata the client sent.
//!
//! `Say` echoes; it fails a call whose mood is GRUMPY with UNAVAILABLE on its first attempt
//! (no `grpc-previous-rpc-attempts`), so a retry policy visibly helps. `Count` streams
//! `count` replies. The client- and bidi-streaming methods are never called.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// The generated types and server.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("acme.echo.v1");
}

/// The service's files, with their imports (for the reflection server and protoset tests).
pub const PROTOSET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/acme_echo.protoset"));

/// The directory holding the test protos (`acme/echo/v1/echo.proto` under it).
pub fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/proto")
}

/// What one call carried, as the server decoded it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: &'static str,
    /// `id`.
    pub id: String,
    /// `n`.
    pub n: i64,
    /// `mood`.
    pub mood: i32,
    /// `detail.note`.
    pub note: String,
    /// The metadata, ASCII values.
    pub metadata: BTreeMap<String, String>,
}

/// The service: records every call.
#[derive(Clone, Default)]
pub struct Echo {
    /// Every call, in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

/// The metadata as received; a name sent several times has its values joined by ", ", in
/// the order they came.
fn metadata(m: &tonic::metadata::MetadataMap) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    let pairs = m.iter().map(|kv| match kv {
        tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
            (k.to_string(), v.to_str().unwrap_or("").to_string())
        }
        tonic::metadata::KeyAndValueRef::Binary(k, v) => (
            k.to_string(),
            String::from_utf8_lossy(&v.to_bytes().unwrap_or_default()).into_owned(),
        ),
    });
    for (name, value) in pairs {
        all.entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    all
}

type Replies = Pin<Box<dyn Stream<Item = Result<pb::SayReply, Status>> + Send>>;

#[tonic::async_trait]
impl pb::echo_server::Echo for Echo {
    async fn say(&self, req: Request<pb::SayRequest>) -> Result<Response<pb::SayReply>, Status> {
        let metadata = metadata(req.metadata());
        let r = req.into_inner();
        let first = !metadata.contains_key("grpc-previous-rpc-attempts");
        self.seen.lock().unwrap().push(Seen {
            method: "Say",
            id: r.id.clone(),
            n: r.n,
            mood: r.mood,
            note: r.detail.map(|d| d.note).unwrap_or_default(),
            metadata: metadata.clone(),
        });
        if r.mood == pb::Mood::Grumpy as i32 && first {
            return Err(Status::unavailable("grumpy at first"));
        }
        Ok(Response::new(pb::SayReply {
            id: r.id,
            n: r.n,
            metadata: metadata.into_iter().collect(),
        }))
    }

    type CountStream = Replies;

    async fn count(&self, req: Request<pb::CountRequest>) -> Result<Response<Replies>, Status> {
        let metadata = metadata(req.metadata());
        let r = req.into_inner();
        self.seen.lock().unwrap().push(Seen {
            method: "Count",
            id: r.id.clone(),
            n: i64::from(r.count),
            mood: 0,
            note: String::new(),
            metadata,
        });
        let replies = (0..r.count.max(0)).map(move |i| {
            Ok(pb::SayReply {
                id: r.id.clone(),
                n: i64::from(i),
                metadata: Default::default(),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn collect(
        &self,
        _: Request<Streaming<pb::SayRequest>>,
    ) -> Result<Response<pb::SayReply>, Status> {
        Err(Status::unimplemented("never called"))
    }

    type ChatStream = Replies;

    async fn chat(
        &self,
        _: Request<Streaming<pb::SayRequest>>,
    ) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("never called"))
    }
}

/// Which reflection services the server has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reflection {
    /// None.
    None,
    /// `grpc.reflection.v1` and `v1alpha`.
    Both,
    /// `grpc.reflection.v1alpha` only (as grpcio-reflection).
    V1Alpha,
}

/// The server's TLS: its certificate, and a CA its clients' certificates must be signed by
/// (required or optional).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// PEM certificate and key.
    pub identity: (String, String),
    /// PEM CA for client certificates, and whether one is required.
    pub clients: Option<(String, bool)>,
}

/// A server running on its own threads until dropped.
pub struct Running {
    /// Its address.
    pub addr: SocketAddr,
    /// What it has seen.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Running {
    /// The calls seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts the service on 127.0.0.1 (a free port) with `reflection` and `tls`.
pub fn start(reflection: Reflection, tls: Option<ServerTls>) -> Running {
    let echo = Echo::default();
    let seen = Arc::clone(&echo.seen);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let mut builder = tonic::transport::Server::builder();
            if let Some(tls) = tls {
                let mut config = tonic::transport::ServerTlsConfig::new().identity(
                    tonic::transport::Identity::from_pem(&tls.identity.0, &tls.identity.1),
                );
                if let Some((ca, required)) = tls.clients {
                    config = config
                        .client_ca_root(tonic::transport::Certificate::from_pem(ca))
                        .client_auth_optional(!required);
                }
                builder = builder.tls_config(config).unwrap();
            }
            let mut router = builder.add_service(pb::echo_server::EchoServer::new(echo));
            let reflect = || {
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(PROTOSET)
            };
            if reflection == Reflection::Both {
                router = router.add_service(reflect().build_v1().unwrap());
            }
            if reflection != Reflection::None {
                router = router.add_service(reflect().build_v1alpha().unwrap());
            }
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
    });
    Running {
        addr: rx.recv().unwrap(),
        seen,
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// Certificates for the tests, as PEM files in a folder: a CA, a server certificate for
/// localhost and 127.0.0.1, a client certificate, an expired server certificate, and an
/// unrelated CA.
pub struct Pki {
    /// The folder (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The CA's certificate (PEM).
    pub ca: String,
    /// Server certificate.
    pub server: (String, String),
    /// Expired server certificate.
    pub expired: (String, String),
}

impl Pki {
    /// Makes the certificates and writes them: ca.pem, server.pem/.key, client.pem/.key,
    /// other-ca.pem.
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let ca_for = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, name);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let ca = ca_for("resilbench test CA");
        let other = ca_for("another CA");
        let leaf = |names: Vec<String>, purpose, expired: bool| {
            let mut p = CertificateParams::new(names).unwrap();
            p.extended_key_usages = vec![purpose];
            if expired {
                p.not_before = rcgen::date_time_ymd(2020, 1, 1);
                p.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let server = leaf(names.clone(), ExtendedKeyUsagePurpose::ServerAuth, false);
        let client = leaf(
            vec!["client.test".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        let expired = leaf(names, ExtendedKeyUsagePurpose::ServerAuth, true);
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other.pem()),
            ("server.pem", server.0.clone()),
            ("server.key", server.1.clone()),
            ("client.pem", client.0.clone()),
            ("client.key", client.1.clone()),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Self {
            dir,
            ca: ca.pem(),
            server,
            expired,
        }
    }

    /// A file of the folder.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// A bare TLS server (tokio-rustls) with certificate `identity` offering `alpn`, which
/// completes handshakes and closes: for what tonic's server cannot be made to do (an expired
/// certificate, no ALPN, ALPN without h2).
pub fn bare_tls_server(identity: (String, String), alpn: Vec<Vec<u8>>) -> (SocketAddr, Running) {
    tls_server_closing(identity, alpn, false)
}

/// [`bare_tls_server`] that closes a connection whose first byte is not TLS's without a
/// word, as gRPC C-core's handshaker does (a rustls server answers it with an alert).
pub fn silent_tls_server(identity: (String, String)) -> (SocketAddr, Running) {
    tls_server_closing(identity, vec![b"h2".to_vec()], true)
}

fn tls_server_closing(
    identity: (String, String),
    alpn: Vec<Vec<u8>>,
    silent: bool,
) -> (SocketAddr, Running) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(identity.0.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(identity.1.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = alpn;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { return };
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let mut first = [0u8; 1];
                            if silent && (socket.peek(&mut first).await.is_err() || first[0] != 0x16) {
                                return;
                            }
                            if let Ok(mut tls) = acceptor.accept(socket).await {
                                use tokio::io::AsyncReadExt;
                                let mut buf = [0u8; 64];
                                let _ = tls.read(&mut buf).await;
                            }
                        });
                    }
                }
            }
        });
    });
    let addr = rx.recv().unwrap();
    (
        addr,
        Running {
            addr,
            seen: Arc::default(),
            stop: Some(stop),
            thread: Some(thread),
        },
    )
}
