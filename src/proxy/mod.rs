//! `resilbench proxy`: the backend's fault model in front of a real gRPC service.
//!
//! Every gRPC call the proxy receives (any method: unary, client, server or bidi streaming;
//! bodies as opaque bytes, the request's relayed as the client sends it, [`body`]) is an attempt that meets the profile's `[backend]` and `[[phases]]` as the
//! embedded backend's attempts do, through the same decision ([`Backend::arrive`], then
//! [`Backend::admit`]): an outage answers its status at once, a stall holds the attempt, the
//! quota and the capacity (workers + queue) turn it away with RESOURCE_EXHAUSTED (and
//! pushback where the profile says), the error rates and bursts answer their status after
//! their service time. An attempt whose draw is OK is forwarded to the upstream over HTTP/2
//! (this crate's client, `transport::http2`; TLS and the address forms of `[target]`), holding
//! its worker until the upstream has answered; a brownout stretches the upstream's own time by
//! its latency factor ([`attempt`]).
//!
//! Draws are keyed as the backend keys them: by (seed, request id, attempt). The request id is
//! the `resilbench-request-id` header when resilbench's client sends one, the request's
//! `request_id` field on resilbench's own `Backend` service, and otherwise a per-connection
//! counter (the connection's number and the stream's, in arrival order), so a client that is
//! not resilbench still meets reproducible faults.
//!
//! The proxy answers resilbench's Control service itself (`Reset`, `Stats`: the server state
//! [`Shared`] of `resilbench serve`, reused), so `run --target PROXY` reads the backend's
//! received / executed / rejected / wasted figures and restarts the fault clock at each
//! strategy's reset.
//!
//! Bounds ([`bounds`]): calls in progress over every connection ([`Options::max_calls`],
//! RESOURCE_EXHAUSTED beyond); streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS,
//! [`Options::max_streams`]); request bytes held per connection and in all (what is read before
//! the decision is at most one gRPC message, [`MAX_REQUEST`], within the call's deadline or
//! [`Options::max_call`]; after it, a frame at a time); a response that has not come whole
//! with its head is relayed through a channel of a few frames ([`relay`]), so an upstream
//! faster than the client is held back by HTTP/2 flow control, not by memory; every wait on
//! the upstream ends at the call's deadline or `max_call`; an unreachable upstream
//! fails the attempt UNAVAILABLE at once (the connection keeper retries behind). A client
//! connection that has not sent HTTP/2's preface within [`Options::handshake_timeout`] is
//! closed, one with no call for [`Options::idle_timeout`] told to go away (GOAWAY), by
//! `serve`'s watchdog (`backend::serving`).

pub mod attempt;
mod body;
pub mod bounds;
pub mod faults;
mod relay;
pub mod threads;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::server::Shared;
use crate::backend::serving::{self, Activity, Limits, Served, Watched};
use crate::clock::Clock;
use crate::pb;
use crate::transport::connection::Connections;

use attempt::Reply;
pub use body::{KEPT, MAX_REQUEST};

/// How the proxy reaches its upstream and what it adds.
#[derive(Debug, Clone)]
pub struct Options {
    /// `:authority` sent upstream.
    pub authority: Box<[u8]>,
    /// The upstream is TLS (`:scheme https`).
    pub https: bool,
    /// The longest a call may wait on the upstream when it has no deadline.
    pub max_call: Duration,
    /// Add the profile's drawn service time before forwarding (else the upstream's own time,
    /// stretched by brownouts).
    pub added_latency: bool,
    /// One line per attempt on stderr.
    pub log_attempts: bool,
    /// HTTP/2 streams one client connection may have open at once.
    pub max_streams: u32,
    /// Calls in progress at once, over every connection (Control's not counted).
    pub max_calls: usize,
    /// Request bytes the calls of one connection may hold in the proxy at once.
    pub connection_bytes: usize,
    /// Request bytes every call together may hold in the proxy at once.
    pub total_bytes: usize,
    /// How an outage shows itself ([`faults::OutageMode`]).
    pub outage: faults::OutageMode,
    /// Read Envoy's `x-envoy-fault-*` headers ([`faults::envoy`]).
    pub envoy_headers: bool,
    /// How long a new client connection has to send HTTP/2's preface before it is closed.
    pub handshake_timeout: Option<Duration>,
    /// How long a client connection may have no call before it is told to go away (GOAWAY).
    pub idle_timeout: Option<Duration>,
}

/// What the proxy counts beside the backend's own figures.
#[derive(Debug, Default)]
pub struct Counts {
    /// Attempts sent to the upstream (counted once their stream has gone: a stream sent again
    /// is `resent`, not another).
    pub forwarded: AtomicU64,
    /// Attempts to forward that found no upstream connection (UNAVAILABLE at once; not
    /// `forwarded`).
    pub unreachable: AtomicU64,
    /// Streams the upstream did not process (above its GOAWAY's last stream id, refused with
    /// REFUSED_STREAM, or never written before its connection went away), sent again once on
    /// a connection ready: not attempts of their own.
    pub resent: AtomicU64,
    /// Forwarded attempts reset upstream because the client gave up (cancel or deadline).
    pub cancelled: AtomicU64,
    /// Connections reset at accept in an outage (`--outage refuse`).
    pub refused_connections: AtomicU64,
    /// Attempts answered by Envoy's fault headers (aborted; delays are not counted).
    pub envoy_aborts: AtomicU64,
}

/// A proxy's state: the fault model (with its Control service), the upstream, the options.
#[derive(Clone)]
pub struct Proxy {
    pub(crate) shared: Shared,
    /// This thread's connections to the upstream (none in a template, [`Proxy::unconnected`]).
    pub(crate) upstream: Option<Connections>,
    pub(crate) options: Arc<Options>,
    pub(crate) counts: Arc<Counts>,
    pub(crate) held: Arc<bounds::Held>,
    pub(crate) clock: Clock,
    /// When the proxy started (log lines count from it).
    pub(crate) since: tokio::time::Instant,
    /// The profile's seed (the keyed draws of Envoy's percentages).
    pub(crate) seed: u64,
    connections: Arc<AtomicU64>,
}

impl Proxy {
    /// A proxy with the fault model of `shared` in front of `upstream`.
    pub fn new(shared: Shared, upstream: Connections, options: Options, clock: Clock) -> Self {
        Self {
            upstream: Some(upstream),
            ..Self::unconnected(shared, options, clock)
        }
    }

    /// A proxy with no upstream yet: the state its threads share, each given its own
    /// connections by [`Proxy::on`] ([`threads`]). Its calls would fail UNAVAILABLE.
    pub fn unconnected(shared: Shared, options: Options, clock: Clock) -> Self {
        Self {
            seed: shared.plan().seed,
            shared,
            upstream: None,
            options: Arc::new(options),
            counts: Arc::default(),
            held: Arc::default(),
            since: clock.now(),
            clock,
            connections: Arc::default(),
        }
    }

    /// This proxy's state (fault model, counts, bounds, options) in front of `upstream`,
    /// timed by `clock`: what one thread of the proxy serves with (its own runtime's
    /// connections and timer, so that an attempt never wakes another thread).
    pub fn on(&self, upstream: Connections, clock: Clock) -> Self {
        Self {
            upstream: Some(upstream),
            clock,
            ..self.clone()
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// What the proxy holds now, and what it refused for its bounds.
    pub fn held(&self) -> &bounds::Held {
        &self.held
    }

    /// The fault model's server state (its figures: `stats()`).
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// What `resilbench proxy` prints when it stops: the fault model's figures and the
    /// proxy's own counts, all over the same span, since the proxy started (every strategy's
    /// Control `Reset` included; `Stats` gives a strategy's alone).
    pub fn stopped_line(&self) -> String {
        let (stats, resets) = self.shared.since_start();
        let counts = &self.counts;
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let resets = match resets {
            1 => "1 Control reset".to_string(),
            n => format!("{n} Control resets"),
        };
        format!(
            "resilbench proxy: stopped. Since it started ({resets}): received {}  executed {}  \
             rejected {}  wasted {}  forwarded {}  sent upstream again (not processed) {}  \
             upstream unreachable {}  reset upstream (client gone) {}  refused at --max-calls \
             {}  refused for request bytes {}  connections reset in outages {}  aborted by \
             x-envoy-fault headers {}",
            stats.received,
            stats.executed,
            stats.rejected,
            stats.wasted,
            n(&counts.forwarded),
            n(&counts.resent),
            n(&counts.unreachable),
            n(&counts.cancelled),
            n(&self.held.refused_calls),
            n(&self.held.refused_bytes),
            n(&counts.refused_connections),
            n(&counts.envoy_aborts),
        )
    }
}

/// One client connection's service: Control calls answered here, every other call an attempt.
#[derive(Clone)]
struct PerConnection {
    proxy: Proxy,
    control: pb::control_server::ControlServer<Shared>,
    number: u64,
    streams: Arc<AtomicU64>,
    /// Request bytes this connection's calls hold.
    bytes: Arc<AtomicUsize>,
    /// Cancelled to close the connection at once (an outage in `refuse` mode).
    close: CancellationToken,
    /// Its calls, for its watchdog (`backend::serving::watch`).
    activity: Arc<Activity>,
}

type Response = http::Response<tonic::body::Body>;

/// A stream the proxy resets rather than answers (hyper sends RST_STREAM with its reason).
#[derive(Debug)]
pub struct Refused(h2::Error);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reset by the proxy: {}", self.0)
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for PerConnection {
    type Response = Response;
    type Error = Refused;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, Refused>> + Send>>;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        use tonic::server::NamedService;
        use tower::Service;
        let control = request
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(pb::control_server::ControlServer::<Shared>::NAME))
            .is_some_and(|rest| rest.starts_with('/'));
        let call = self.activity.call();
        if control {
            let answer = self.control.clone().call(request);
            return Box::pin(async move {
                let answer = answer.await.unwrap_or_else(|e| match e {});
                drop(call);
                Ok(answer)
            });
        }
        let stream = self.streams.fetch_add(1, Ordering::Relaxed);
        let options = &self.proxy.options;
        let Some(slot) = bounds::CallSlot::take(&self.proxy.held, options.max_calls) else {
            let message = format!(
                "the proxy has {} calls in progress, its limit (proxy --max-calls)",
                options.max_calls
            );
            let response = wire::status_response(tonic::Code::ResourceExhausted, &message, None);
            return Box::pin(async move { Ok(response) });
        };
        let limits = (options.connection_bytes, options.total_bytes);
        let held = bounds::Bytes::new(&self.proxy.held, &self.bytes, limits);
        let (proxy, number, close) = (self.proxy.clone(), self.number, self.close.clone());
        Box::pin(async move {
            match attempt::serve(proxy, (number, stream), request, (slot, held, call)).await {
                Reply::Answer(response) => Ok(response),
                // hyper resets the stream with the h2 reason it finds in the error.
                Reply::Reset(code) => Err(Refused(h2::Error::from(h2::Reason::from(code)))),
                Reply::Close => {
                    close.cancel();
                    Err(Refused(h2::Error::from(h2::Reason::REFUSED_STREAM)))
                }
            }
        })
    }
}

/// Serves the connections `incoming` yields until `stop` completes (or `incoming` ends), then
/// closes each gracefully (GOAWAY; calls in flight get 10 s) and returns.
pub async fn serve_connections(
    proxy: Proxy,
    incoming: impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>>,
    stop: impl Future<Output = ()>,
) {
    use tokio_stream::StreamExt;
    let mut limits = Limits::serve();
    limits.max_streams = proxy.options.max_streams;
    limits.handshake_timeout = proxy.options.handshake_timeout;
    limits.idle_timeout = proxy.options.idle_timeout;
    let http2 = limits.http2();
    let closing = CancellationToken::new();
    let tasks = TaskTracker::new();
    // Boxed, so that it can be dropped (the listener closed) before the drain below.
    let mut incoming = Box::pin(incoming);
    tokio::pin!(stop);
    loop {
        let io = tokio::select! {
            () = &mut stop => break,
            next = incoming.next() => match next {
                None => break,
                Some(Ok(io)) => io,
                // Out of file descriptors, say: pause and go on, as servers do.
                Some(Err(_)) => {
                    proxy.clock.sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if proxy.options.outage == faults::OutageMode::Refuse
            && proxy
                .shared
                .current()
                .iter()
                .any(|b| b.outage_now().is_some())
        {
            // A server that is down: the connection is reset at once.
            let _ = io.set_zero_linger();
            proxy
                .counts
                .refused_connections
                .fetch_add(1, Ordering::Relaxed);
            drop(io);
            continue;
        }
        let _ = io.set_nodelay(true);
        let close = CancellationToken::new();
        let activity = Arc::new(Activity::default());
        let service = PerConnection {
            proxy: proxy.clone(),
            control: pb::control_server::ControlServer::new(proxy.shared.clone()),
            number: proxy.connections.fetch_add(1, Ordering::Relaxed),
            streams: Arc::default(),
            bytes: Arc::default(),
            close: close.clone(),
            activity: Arc::clone(&activity),
        };
        let io = TokioIo::new(Watched::new(io, Arc::clone(&activity)));
        let connection = http2.serve_connection(io, service);
        let (closing, limits) = (closing.clone(), limits.clone());
        tasks.spawn(async move {
            tokio::pin!(connection);
            // As `serve`'s (a client that never sent the preface is closed, an idle one told
            // to go away), and closed at once by an outage's `close`.
            let served = serving::serve_watched(
                connection.as_mut(),
                |c| c.graceful_shutdown(),
                (&limits, &activity),
                &closing,
                Some(&close),
            );
            if served.await == Served::Draining {
                let _ = Clock::Tokio
                    .timeout(Duration::from_secs(10), connection)
                    .await;
            }
        });
    }
    drop(incoming);
    closing.cancel();
    tasks.close();
    tasks.wait().await;
}
