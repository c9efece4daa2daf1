//! The backend's two gRPC services as one HTTP service, and the connections served: each in
//! a task of its own, within the server's limits, closed gracefully at the stop.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_stream::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Shared;
use crate::backend::serving::{self, Activity, Limited, Limits, Served, Watched};
use crate::backend::unary::Unary;
use crate::clock::Clock;
use crate::pb;

/// The backend's two gRPC services as one HTTP service, told apart by the path's service name.
///
/// Connections are served with hyper's HTTP/2 server directly rather than through tonic's
/// `Server`, whose layers cost every call: its `grpc-timeout` layer starts a tokio timer for
/// each request that carries one, and registering it woke the serving thread's reactor
/// through its eventfd, a `write` system call per call (`perf record -e
/// syscalls:sys_enter_write --call-graph dwarf` on `resilbench serve`); the deadline is now
/// kept on the backend's clock, with no timer for work done at once (`Shared::handle`). Then
/// load shedding, a concurrency limit and error recovery that are all switched off here, and
/// axum's path router. docs/PERFORMANCE.md, "`serve` without tonic's `Server`", has the
/// figures.
///
/// The unary methods `Call` and `Mutate` skip tonic's codec for the usual request
/// (`backend::unary`).
#[derive(Clone)]
pub struct Services {
    shared: Shared,
    backend: pb::backend_server::BackendServer<Shared>,
    control: pb::control_server::ControlServer<Shared>,
}

impl Services {
    /// The services answering from `shared`.
    pub fn new(shared: Shared) -> Self {
        Self {
            // The limit the fast path (`unary.rs`) checks prefixes against, tonic's default
            // spelt out so the two cannot drift apart.
            backend: pb::backend_server::BackendServer::new(shared.clone())
                .max_decoding_message_size(crate::protocol::message::MAX_MESSAGE),
            control: pb::control_server::ControlServer::new(shared.clone()),
            shared,
        }
    }
}

type ServiceFuture = tonic::codegen::BoxFuture<http::Response<tonic::body::Body>, Infallible>;

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Services {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> ServiceFuture {
        use tonic::server::NamedService;
        use tower::Service;
        if let Some(unary) = Unary::of(&request) {
            let (shared, backend) = (self.shared.clone(), self.backend.clone());
            return Box::pin(async move { Ok(unary.answer(&shared, backend, request).await) });
        }
        let control = request
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(pb::control_server::ControlServer::<Shared>::NAME))
            .is_some_and(|rest| rest.starts_with('/'));
        // Everything else goes to the backend's service, which answers UNIMPLEMENTED for a
        // path it does not know, as tonic's router does.
        if control {
            self.control.clone().call(request)
        } else {
            self.backend.clone().call(request)
        }
    }
}

/// Serves [`Services`] from `shared` on every connection `incoming` yields (each in a task of
/// its own) until `stop` completes, even after `incoming` has ended; then closes each
/// connection gracefully (GOAWAY, the calls in flight finish) and returns when all have closed.
/// A connection that `incoming` fails to give is skipped after a pause (out of file
/// descriptors, say), as servers do. No limit is kept (the embedded backend's way):
/// [`serve_connections_with`] keeps some.
pub async fn serve_connections<IO>(
    shared: Shared,
    incoming: impl Stream<Item = std::io::Result<IO>>,
    stop: impl Future<Output = ()>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    serve_connections_with(shared, incoming, stop, Limits::unlimited()).await;
}

/// [`serve_connections`] within `limits` (streams per connection, calls in progress, silent
/// and idle connections, keep-alive, how long the stop waits: [`crate::backend::serving`]).
pub async fn serve_connections_with<IO>(
    shared: Shared,
    incoming: impl Stream<Item = std::io::Result<IO>>,
    stop: impl Future<Output = ()>,
    limits: Limits,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let services = Services::new(shared);
    let http2 = limits.http2();
    let closing = CancellationToken::new();
    let connections = TaskTracker::new();
    // Boxed, so that it can be dropped (the listener closed) before the drain below.
    let mut incoming = Box::pin(incoming);
    tokio::pin!(stop);
    let mut stopped = false;
    loop {
        let io = tokio::select! {
            () = &mut stop => {
                stopped = true;
                break;
            }
            next = incoming.next() => match next {
                None => break,
                Some(Ok(io)) => io,
                Some(Err(_)) => {
                    tokio::select! {
                        () = &mut stop => {
                            stopped = true;
                            break;
                        }
                        () = Clock::Tokio.sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let activity = Arc::new(Activity::default());
        let service = Limited::new(services.clone(), limits.clone(), Arc::clone(&activity));
        let io = TokioIo::new(Watched::new(io, Arc::clone(&activity)));
        let connection = http2.serve_connection(io, service);
        let (closing, limits) = (closing.clone(), limits.clone());
        connections.spawn(async move {
            tokio::pin!(connection);
            let served = serving::serve_watched(
                connection.as_mut(),
                |c| c.graceful_shutdown(),
                (&limits, &activity),
                &closing,
                None,
            );
            if served.await == Served::Over {
                return;
            }
            match limits.drain_timeout {
                Some(limit) => {
                    // Done when its calls are: a client that does not answer the GOAWAY
                    // (silent, stopped) holds the stop no longer than the grace.
                    let counted = limits.counts_calls();
                    tokio::select! {
                        _ = Clock::Tokio.timeout(limit, connection) => {}
                        () = serving::nothing_to_finish(&activity), if counted => {}
                    }
                }
                None => {
                    let _ = connection.await;
                }
            }
        });
    }
    // New connections are refused at once while the open ones drain (a client then fails
    // fast or goes elsewhere, rather than waiting on a socket nobody reads).
    drop(incoming);
    if !stopped {
        // No more connections: the open ones are served until the stop.
        stop.await;
    }
    closing.cancel();
    connections.close();
    connections.wait().await;
}

/// Serves the backend (and its control service) on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, shared: Shared, shutdown: impl Future<Output = ()>) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            // Served without it if it cannot be set, as tonic's server did.
            let _ = stream.set_nodelay(true);
        })
    });
    serve_connections(shared, incoming, shutdown).await;
}

/// A server of [`test_shared`] on one in-memory connection (tests): the client's end of
/// it, the server's stop, the server.
#[cfg(test)]
pub(in crate::backend) fn serve_in_memory() -> (
    tokio::io::DuplexStream,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_connections(
        super::test_shared(),
        tokio_stream::once(Ok(server_io)),
        async {
            let _ = stopped.await;
        },
    ));
    (client_io, stop, server)
}

/// Stops a test server and waits (10 s at most) for it to return.
#[cfg(test)]
pub(in crate::backend) async fn stop_server(
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
) {
    stop.send(()).unwrap();
    Clock::Tokio
        .timeout(Duration::from_secs(10), server)
        .await
        .expect("the server returned after its stop")
        .unwrap();
}

#[cfg(test)]
mod tests {
    use tonic::{Code, Request};

    use super::super::test_shared;
    use super::*;

    /// Each service answers on its own paths, any other path is UNIMPLEMENTED (as tonic's
    /// router answered), and a stopped server closes its open connections and returns.
    #[tokio::test]
    async fn each_service_answers_on_its_paths_and_a_stopped_server_returns() {
        let shared = test_shared();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, shared, async {
            let _ = stopped.await;
        }));
        let channel = crate::transport::grpc::endpoint(&addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let reply = pb::backend_client::BackendClient::new(channel.clone())
            .call(pb::CallRequest {
                request_id: "7".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(reply.into_inner().request_id, "7");
        let stats = pb::control_client::ControlClient::new(channel.clone())
            .stats(pb::StatsRequest::default())
            .await
            .unwrap();
        assert_eq!(stats.into_inner().received, 1);
        for path in [
            "/resilbench.v1.Nothing/Call",
            "/resilbench.v1.Control2/Stats",
            "/resilbench.v1.Backend/Nothing",
            "/resilbench.v1.Control/Nothing",
            "/",
        ] {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let answer = grpc
                .unary(
                    Request::new(pb::CallRequest::default()),
                    path.parse().unwrap(),
                    tonic_prost::ProstCodec::<pb::CallRequest, pb::CallReply>::default(),
                )
                .await;
            assert_eq!(answer.unwrap_err().code(), Code::Unimplemented, "{path}");
        }
        // The client's connection is still open.
        stop_server(stop, server).await;
    }

    /// A connection already open is served after the stream of connections has ended, until
    /// the stop (an in-memory connection, as `benches/virtual_time.rs` serves).
    #[tokio::test]
    async fn open_connections_are_served_after_the_incoming_stream_ends() {
        let (client_io, stop, server) = serve_in_memory();
        let pipe = Arc::new(std::sync::Mutex::new(Some(client_io)));
        let channel = tonic::transport::Endpoint::from_static("http://in-memory")
            .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                let io = pipe.lock().unwrap().take();
                async move {
                    io.map(hyper_util::rt::TokioIo::new)
                        .ok_or_else(|| std::io::Error::other("one connection only"))
                }
            }))
            .await
            .unwrap();
        let mut client = pb::backend_client::BackendClient::new(channel);
        for id in ["1", "2"] {
            // Yields between calls: the server's accept loop has seen the stream's end.
            tokio::task::yield_now().await;
            let reply = client
                .call(pb::CallRequest {
                    request_id: id.into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(reply.into_inner().request_id, id);
        }
        assert!(!server.is_finished());
        stop_server(stop, server).await;
    }
}
