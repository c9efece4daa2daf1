//! What a server holds for its clients, bounded: streams per connection, calls in progress,
//! connections that never speak or fall silent, and how long a stop waits for them.
//!
//! `resilbench serve` answers untrusted clients, and each call in progress holds memory (about
//! 8 KB: the request, its future, hyper's stream) and each connection a file descriptor. With
//! no bound, h2load -c200 -m1000 made `serve` hold 1.6 GB; one client that opened streams and
//! never read its answers, 690 MB in 3 s, while a well-behaved client beside it missed its
//! deadlines; a thousand idle sockets were held forever and blocked the stop. [`Limits`]
//! bounds each of these; `serve`'s defaults ([`Limits::serve`], docs/backend.md) are far
//! above what the performance harness and a sharded run need:
//!
//! | limit | default | what it bounds |
//! |---|---|---|
//! | streams per connection | 1,000 | `SETTINGS_MAX_CONCURRENT_STREAMS` (RFC 9113 §6.5.2): a client opens no more at once, read or not |
//! | calls in progress | 50,000 | calls the backend works on at once, over every connection and thread; one more is answered RESOURCE_EXHAUSTED at once |
//! | handshake | 10 s | a connection whose client has not sent HTTP/2's preface by then is closed |
//! | idle | 5 min | a connection with no call in progress and none started for that long is told to go away (GOAWAY), after one to two such periods |
//! | keep-alive | PING every 30 s, 10 s to answer | a client that stopped answering (gone, stopped) is closed, its streams freed |
//! | drain | 10 s | at the stop, calls in flight get this long; a connection still in its handshake is closed at once, one with no call in progress after [`DRAIN_GRACE`] (1 s: its client had that long to answer the GOAWAY) |
//!
//! The embedded backend serves only the run's own client and keeps no limit
//! ([`Limits::unlimited`]): its results must not depend on them.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use super::server::Services;
use crate::clock::Clock;

/// What a server allows its clients (see the module's table).
#[derive(Debug, Clone)]
pub struct Limits {
    /// HTTP/2 streams one connection may have open at once.
    pub max_streams: u32,
    /// Calls in progress at once, over every connection (shared by every thread that holds a
    /// clone of these limits).
    pub max_calls: usize,
    /// How long a new connection has to send HTTP/2's preface.
    pub handshake_timeout: Option<Duration>,
    /// How long a connection may have no call before it is told to go away.
    pub idle_timeout: Option<Duration>,
    /// HTTP/2 PING interval, and how long its answer may take.
    pub keep_alive: Option<(Duration, Duration)>,
    /// How long a stop waits for calls in flight before it closes their connections.
    pub drain_timeout: Option<Duration>,
    /// Calls in progress now, over every connection served with these limits.
    calls: Arc<AtomicUsize>,
    /// Calls turned away at `max_calls`.
    refused: Arc<AtomicU64>,
}

impl Limits {
    /// No limit (the embedded backend: the run's own client only).
    pub fn unlimited() -> Self {
        Self {
            max_streams: u32::MAX,
            max_calls: usize::MAX,
            handshake_timeout: None,
            idle_timeout: None,
            keep_alive: None,
            drain_timeout: None,
            calls: Arc::default(),
            refused: Arc::default(),
        }
    }

    /// `resilbench serve`'s defaults.
    pub fn serve() -> Self {
        Self {
            max_streams: 1_000,
            max_calls: 50_000,
            handshake_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(300)),
            keep_alive: Some((Duration::from_secs(30), Duration::from_secs(10))),
            drain_timeout: Some(Duration::from_secs(10)),
            ..Self::unlimited()
        }
    }

    /// Whether calls are counted on each connection (not without limits: the embedded
    /// backend's calls pay nothing for them).
    pub(super) fn counts_calls(&self) -> bool {
        self.max_calls != usize::MAX || self.idle_timeout.is_some()
    }

    /// The counter of calls turned away at `max_calls`, shared by every clone.
    pub(super) fn refused_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.refused)
    }

    /// Calls turned away at `max_calls` so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The hyper HTTP/2 server for these limits.
    pub fn http2(&self) -> hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor> {
        let mut http2 =
            hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        // No limit on streams reset for the client's errors (as tonic's server); no `date`
        // header: gRPC servers send none (grpc-go does not), and hyper's costs every
        // response a clock read and a header to encode and decode.
        http2
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(self.max_streams)
            .max_local_error_reset_streams(None)
            .auto_date_header(false);
        if let Some((interval, timeout)) = self.keep_alive {
            http2
                .keep_alive_interval(Some(interval))
                .keep_alive_timeout(timeout);
        }
        http2
    }
}

/// What one connection's watchdog reads: calls in progress on it, calls started on it, and
/// whether its client has sent HTTP/2's preface.
/// (`resilbench proxy` watches its client connections with it too.)
#[derive(Debug, Default)]
pub(crate) struct Activity {
    in_progress: AtomicUsize,
    started: AtomicU64,
    spoke: AtomicBool,
}

impl Activity {
    /// A call has started on the connection; it is in progress until the guard is dropped.
    pub(crate) fn call(self: &Arc<Self>) -> InProgress {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_progress.fetch_add(1, Ordering::Relaxed);
        InProgress(Arc::clone(self))
    }
}

/// One call in progress on a watched connection, until dropped.
pub(crate) struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The backend's services on one connection, counting its calls against the limits.
#[derive(Clone)]
pub(super) struct Limited {
    services: Services,
    limits: Limits,
    activity: Arc<Activity>,
    /// Whether anything is counted (not without limits: the embedded backend's calls pay
    /// nothing for them).
    counting: bool,
}

impl Limited {
    pub(super) fn new(services: Services, limits: Limits, activity: Arc<Activity>) -> Self {
        let counting = limits.counts_calls();
        Self {
            services,
            limits,
            activity,
            counting,
        }
    }
}

/// Gives a call's places back when its future ends or is dropped.
struct Counted {
    calls: Arc<AtomicUsize>,
    activity: Arc<Activity>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.calls.fetch_sub(1, Ordering::Relaxed);
        self.activity.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

type ServiceFuture =
    tonic::codegen::BoxFuture<http::Response<tonic::body::Body>, std::convert::Infallible>;

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Limited {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> ServiceFuture {
        if !self.counting {
            return hyper::service::Service::call(&self.services, request);
        }
        self.activity.started.fetch_add(1, Ordering::Relaxed);
        let calls = &self.limits.calls;
        if calls.fetch_add(1, Ordering::Relaxed) >= self.limits.max_calls {
            calls.fetch_sub(1, Ordering::Relaxed);
            self.limits.refused.fetch_add(1, Ordering::Relaxed);
            let status = tonic::Status::resource_exhausted(format!(
                "the server has {} calls in progress, its limit (serve --max-calls)",
                self.limits.max_calls
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        self.activity.in_progress.fetch_add(1, Ordering::Relaxed);
        let counted = Counted {
            calls: Arc::clone(calls),
            activity: Arc::clone(&self.activity),
        };
        let answer = hyper::service::Service::call(&self.services, request);
        Box::pin(async move {
            // In progress until its answer's body is sent (or dropped): a streaming call's
            // messages, or an answer its client does not read, hold the server as a call does.
            let response = answer.await?;
            Ok(response.map(|body| {
                tonic::body::Body::new(CountedBody {
                    body,
                    _counted: counted,
                })
            }))
        })
    }
}

/// An answer's body, holding its call's places until hyper has sent or dropped it.
struct CountedBody {
    body: tonic::body::Body,
    _counted: Counted,
}

impl hyper::body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, tonic::Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's byte stream, noting when its client has sent HTTP/2's 24-byte preface.
pub(crate) struct Watched<IO> {
    io: IO,
    read: usize,
    activity: Arc<Activity>,
}

impl<IO> Watched<IO> {
    pub(crate) fn new(io: IO, activity: Arc<Activity>) -> Self {
        Self {
            io,
            read: 0,
            activity,
        }
    }
}

/// The length of HTTP/2's client connection preface (RFC 9113 §3.4).
const PREFACE: usize = 24;

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if self.read < PREFACE {
            self.read += buf.filled().len() - before;
            if self.read >= PREFACE {
                self.activity.spoke.store(true, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Why a connection's watchdog ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its client sent nothing in time (or the server stops before it did): close it now.
    Silent,
    /// No call for the idle timeout: tell it to go away.
    Idle,
}

/// Waits until a connection should end by the limits (never, without timeouts).
pub(crate) async fn watch(limits: &Limits, activity: &Activity) -> Verdict {
    if let Some(t) = limits.handshake_timeout {
        Clock::Tokio.sleep(t).await;
        if !activity.spoke.load(Ordering::Relaxed) {
            return Verdict::Silent;
        }
    }
    let Some(idle) = limits.idle_timeout else {
        return std::future::pending().await;
    };
    let mut seen = activity.started.load(Ordering::Relaxed);
    loop {
        Clock::Tokio.sleep(idle).await;
        let started = activity.started.load(Ordering::Relaxed);
        if started == seen && activity.in_progress.load(Ordering::Relaxed) == 0 {
            return Verdict::Idle;
        }
        seen = started;
    }
}

/// How long a connection told to go away at the stop may have no call in progress before it
/// is closed: the time a client that answers takes to acknowledge the GOAWAY's PING (RFC 9113
/// §6.8; h2 waits for it before its last GOAWAY) and close, many round trips over.
pub(super) const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Returns once `activity`'s connection has had no call in progress, and started none, for
/// [`DRAIN_GRACE`]: at the stop, nothing is left to finish on it. (A client that does not
/// answer the GOAWAY's PING would otherwise hold the stop for the whole drain timeout.)
pub(super) async fn nothing_to_finish(activity: &Activity) {
    const LOOK: Duration = Duration::from_millis(50);
    let mut quiet = Duration::ZERO;
    let mut seen = activity.started.load(Ordering::Relaxed);
    while quiet < DRAIN_GRACE {
        Clock::Tokio.sleep(LOOK).await;
        let started = activity.started.load(Ordering::Relaxed);
        if started == seen && activity.in_progress.load(Ordering::Relaxed) == 0 {
            quiet += LOOK;
        } else {
            quiet = Duration::ZERO;
        }
        seen = started;
    }
}

/// Whether the connection's client has sent the preface (a stop closes the others at once).
pub(crate) fn spoke(activity: &Activity) -> bool {
    activity.spoke.load(Ordering::Relaxed)
}

/// How a served connection's watch ended ([`serve_watched`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    /// It is over: it ended, or it was dropped (a silent client, `close`, a stop before its
    /// client spoke).
    Over,
    /// It was told to go away (idle, or the server stops) and has its calls to finish.
    Draining,
}

/// Serves `connection` (`serve`'s and the proxy's alike) until it ends, its watchdog finds its
/// client silent (dropped) or idle (told to go away: `go_away`, hyper's graceful shutdown),
/// `closing` is cancelled (told to go away, or dropped if its client never spoke), or `close`
/// is (dropped at once, without GOAWAY: its calls fail as on a crash).
pub(crate) async fn serve_watched<C: std::future::Future + ?Sized>(
    mut connection: Pin<&mut C>,
    go_away: impl Fn(Pin<&mut C>),
    (limits, activity): (&Limits, &Activity),
    closing: &CancellationToken,
    close: Option<&CancellationToken>,
) -> Served {
    let closed = async {
        match close {
            Some(close) => close.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        // A connection that breaks or that the client closes just ends.
        _ = connection.as_mut() => Served::Over,
        () = closed => Served::Over,
        verdict = watch(limits, activity) => match verdict {
            // Dropped: its socket closes.
            Verdict::Silent => Served::Over,
            Verdict::Idle => {
                go_away(connection);
                Served::Draining
            }
        },
        () = closing.cancelled() => {
            // Nothing to finish on a connection whose client never spoke.
            if !spoke(activity) {
                return Served::Over;
            }
            go_away(connection);
            Served::Draining
        }
    }
}
