//! Client- and bidi-streaming calls through `resilbench proxy` (src/proxy/body.rs): the
//! request is relayed as the client sends it, so a client that waits for a reply before it
//! sends its next message (or half-closes) is answered at once, not at its deadline.
//!
//! Upstreams nobody here wrote: the h2 crate's server (an echo of the request's bytes) and, in
//! `.ci/run`, Python grpcio's C-core server (tests/python/echo_server.py's `acme.echo.v1.Raw`).
//! The client is the h2 crate's, driven by hand: each message is sent only once the one
//! before has been answered.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use resilbench::clock::Clock;

use crate::common::{grpc_post, runtime};
use crate::grpcio_interop::{PyServer, python};
use crate::proxy::start;
use crate::proxy_faults::CALM;

/// The longest any one step of a conversation may take: far below the call's deadline, so
/// a proxy that waits for the request's end fails here.
const STEP: Duration = Duration::from_secs(5);

/// `payload` as one uncompressed gRPC message.
fn framed(payload: &[u8]) -> Bytes {
    let mut m = vec![0u8];
    m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    m.extend_from_slice(payload);
    m.into()
}

/// `what` within [`STEP`], or the test fails naming it.
async fn step<T>(what: &str, f: impl Future<Output = T>) -> T {
    Clock::Tokio
        .timeout(STEP, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {STEP:?}"))
}

/// A bidi-streaming echo on the h2 crate's server: every DATA frame of a request is sent
/// back as it arrives; grpc-status 0 once the request has ended. Its address.
async fn h2_echo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        let head = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let Ok(mut send) = respond.send_response(head, false) else {
                            return;
                        };
                        while let Some(Ok(data)) = body.data().await {
                            let _ = body.flow_control().release_capacity(data.len());
                            if send.send_data(data, false).is_err() {
                                return;
                            }
                        }
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let _ = send.send_trailers(trailers);
                    });
                }
            });
        }
    });
    addr
}

/// A call to `path` through the proxy at `addr`, driven by hand.
struct Call {
    send: h2::SendStream<Bytes>,
    response: Option<h2::client::ResponseFuture>,
    body: Option<h2::RecvStream>,
}

impl Call {
    async fn open(addr: &str, path: &str) -> Self {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let mut client = step("the proxy's SETTINGS", client.ready()).await.unwrap();
        let request = grpc_post(&format!("http://{addr}{path}"))
            .header("grpc-timeout", "60S")
            .body(())
            .unwrap();
        let (response, send) = client.send_request(request, false).unwrap();
        Self {
            send,
            response: Some(response),
            body: None,
        }
    }

    /// Sends `message` (with END_STREAM when `end`).
    fn say(&mut self, message: Bytes, end: bool) {
        self.send.send_data(message, end).unwrap();
    }

    /// The response body, once its head has come.
    async fn body(&mut self) -> &mut h2::RecvStream {
        if let Some(response) = self.response.take() {
            let head = step("the response head", response).await.unwrap();
            assert_eq!(head.status(), 200);
            self.body = Some(head.into_body());
        }
        self.body.as_mut().unwrap()
    }

    /// The next `n` bytes of the response body.
    async fn hear(&mut self, n: usize) -> Vec<u8> {
        let body = self.body().await;
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            let data = step("response bytes", body.data())
                .await
                .unwrap_or_else(|| panic!("the response ended after {} of {n} bytes", got.len()))
                .unwrap();
            let _ = body.flow_control().release_capacity(data.len());
            got.extend_from_slice(&data);
        }
        got
    }

    /// The response's grpc-status, once its body has ended.
    async fn status(mut self) -> String {
        let body = self.body().await;
        if let Some(data) = step("the response's end", body.data()).await {
            panic!(
                "more response bytes than expected: {:?}",
                data.map(|d| d.len())
            );
        }
        let trailers = step("the trailers", body.trailers())
            .await
            .unwrap()
            .unwrap();
        trailers["grpc-status"].to_str().unwrap().to_string()
    }
}

/// A conversation: each message sent once the one before has come back, then the half-close.
async fn converse(addr: &str, path: &str, messages: &[Bytes]) {
    let mut call = Call::open(addr, path).await;
    for (i, message) in messages.iter().enumerate() {
        call.say(message.clone(), false);
        let heard = call.hear(message.len()).await;
        assert!(heard == message[..], "message {i} came back changed");
    }
    call.say(Bytes::new(), true);
    assert_eq!(call.status().await, "0");
}

/// The messages of a conversation: small ones, and one of 1 MiB (more than every window on
/// its way: the client's, the proxy's and the upstream's 64 KiB defaults).
fn messages() -> Vec<Bytes> {
    let large: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    vec![framed(b"hello"), framed(&large), framed(b"again")]
}

/// A bidi call through the proxy to the h2 crate's echo: each message comes back before the
/// next is sent, the 1 MiB one included; the call ends OK; what the proxy held is given back.
#[test]
fn a_bidi_call_whose_client_waits_for_each_reply_is_relayed_as_it_goes() {
    let rt = runtime();
    let upstream = rt.block_on(h2_echo());
    let proxy = start(CALM, Some(upstream));
    rt.block_on(converse(
        &proxy.addr,
        "/acme.chat.v1.Chat/Talk",
        &messages(),
    ));
    let p = proxy.proxy.as_ref().unwrap();
    assert_eq!(p.counts().forwarded.load(Ordering::Relaxed), 1);
    rt.block_on(async {
        for _ in 0..100 {
            if p.held().bytes.load(Ordering::Relaxed) == 0 {
                return;
            }
            Clock::Tokio.sleep(Duration::from_millis(20)).await;
        }
        panic!("request bytes still held after the call");
    });
}

/// Through the proxy to grpcio's C-core server: a bidi call (Raw/Chat) answered message by
/// message, and a client-streaming call (Raw/Gather) whose messages are sent apart, answered
/// with their count and size once the client has half-closed.
#[test]
fn streaming_calls_through_the_proxy_to_grpcio() {
    let Some(python) = python("streaming_calls_through_the_proxy_to_grpcio") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let upstream = PyServer::start(&python, dir.path(), &[]);
    let proxy = start(CALM, Some(format!("127.0.0.1:{}", upstream.port)));
    let rt = runtime();
    rt.block_on(converse(&proxy.addr, "/acme.echo.v1.Raw/Chat", &messages()));
    rt.block_on(async {
        let mut call = Call::open(&proxy.addr, "/acme.echo.v1.Raw/Gather").await;
        let sent = [framed(b"one"), framed(&[7u8; 100_000]), framed(b"three")];
        for message in &sent {
            call.say(message.clone(), false);
            Clock::Tokio.sleep(Duration::from_millis(50)).await;
        }
        call.say(Bytes::new(), true);
        let size = 3 + 100_000 + 5;
        let answer = format!("3 {size}");
        let heard = call.hear(answer.len() + 5).await;
        assert_eq!(heard, framed(answer.as_bytes()));
        assert_eq!(call.status().await, "0");
    });
    let p = proxy.proxy.as_ref().unwrap();
    assert_eq!(p.counts().forwarded.load(Ordering::Relaxed), 2);
}

/// A client that sends a message as 1,500 DATA frames of one byte each, all at once (and a
/// second call beside it 64 KiB frames): the proxy relays what arrived together as one piece,
/// so the upstream (the h2 crate's server, which closes a connection that has too many small
/// DATA frames waiting: GOAWAY ENHANCE_YOUR_CALM, "too_many_data_frames") keeps the connection
/// every client of the proxy's thread shares, and both calls come back whole.
#[test]
fn a_burst_of_tiny_frames_reaches_the_upstream_as_few() {
    let rt = runtime();
    let upstream = rt.block_on(h2_echo());
    let proxy = start(CALM, Some(upstream));
    rt.block_on(async {
        // 1,500 frames: past what the upstream's budget allows waiting (about 128 of one
        // byte, for the default 64 KiB window), within what the proxy's own server allows its
        // client (about 2,000, for hyper's 1 MiB connection window).
        let payload: Vec<u8> = (0..1_495u32).map(|i| (i % 251) as u8).collect();
        let tiny = framed(&payload);
        let mut small = Call::open(&proxy.addr, "/acme.chat.v1.Chat/Talk").await;
        let mut large = Call::open(&proxy.addr, "/acme.chat.v1.Chat/Talk").await;
        let big = framed(&vec![9u8; 1 << 20]);
        let mut given = 0;
        for (i, byte) in tiny.iter().enumerate() {
            small.say(Bytes::copy_from_slice(&[*byte]), false);
            if i % 100 == 0 && given < big.len() {
                let piece = big.slice(given..(given + 65_536).min(big.len()));
                given += piece.len();
                large.say(piece, false);
            }
        }
        let heard = small.hear(tiny.len()).await;
        assert!(heard == tiny[..], "the tiny frames came back changed");
        small.say(Bytes::new(), true);
        assert_eq!(small.status().await, "0");
        let heard = large.hear(given).await;
        assert!(heard == big[..given], "the large frames came back changed");
        large.say(Bytes::new(), true);
        assert_eq!(large.status().await, "0");
    });
}
