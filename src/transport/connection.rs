//! HTTP/2 connections to one server, each kept up by a task of its own.
//!
//! A [`Connections`] holds a fixed number of connections and hands them out in turn. Each is
//! kept by a task that connects, publishes the ready connection, drives it (the
//! [`http2::Driver`] does the socket I/O) and, when it goes away (GOAWAY) or closes, connects
//! again: at once after a connection that had been up, then after 50 ms, doubling to at most
//! 1 s, while connecting keeps failing.
//! (gRPC's own connection backoff starts at 1 s; a load generator wants a restarted target
//! back within a tick, and its calls meanwhile fail with the status below.)
//!
//! A call that finds its connection
//! - ready: goes out on it;
//! - connecting (for the first time, or again after a close): waits for the outcome, as a
//!   gRPC call waits on a channel in CONNECTING;
//! - failed (the last attempt to connect failed): fails at once with UNAVAILABLE, as a gRPC
//!   call without wait-for-ready fails on a channel in TRANSIENT_FAILURE (gRPC's
//!   doc/connectivity-semantics-and-api.md).
//!
//! The tasks end when the last handle is dropped, closing their connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::http2;
use crate::clock::Clock;

/// How long one attempt to connect (TCP, and the HTTP/2 handshake up to the server's
/// SETTINGS) may take by default (`run --connect-timeout` sets a run's).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// A byte stream a connection runs over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Opens a byte stream to the server (a TCP connection, or an in-memory pipe in benches).
pub type Connector = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Io>>> + Send>> + Send + Sync,
>;

/// A connector to `addr` (`host:port`) over TCP, with Nagle's algorithm off.
pub fn tcp(addr: &str) -> Connector {
    let addr: Arc<str> = addr.into();
    Arc::new(move || {
        let addr = Arc::clone(&addr);
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(&*addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Box<dyn Io>)
        })
    })
}

/// One connection's state, as its keeper publishes it.
#[derive(Clone)]
enum State {
    Connecting,
    Ready(http2::Handle),
    /// The last attempt to connect failed, for this reason.
    Failed(Arc<str>),
}

/// Why no connection could be had for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub Arc<str>);

/// A fixed number of connections to one server, used in turn (or in order,
/// [`Connections::spilling`]).
#[derive(Clone)]
pub struct Connections {
    slots: Arc<[watch::Receiver<State>]>,
    next: Arc<AtomicUsize>,
    /// [`Connections::spilling`]'s threshold; `None`: in turn.
    spill: Option<usize>,
}

impl Connections {
    /// `count` connections (at least one) opened with `connector`, each kept up by a task
    /// spawned on the current runtime; `clock` times the connection attempts, each given
    /// [`CONNECT_TIMEOUT`].
    pub fn open(connector: Connector, count: usize, clock: &Clock) -> Self {
        Self::open_with(connector, count, clock, CONNECT_TIMEOUT)
    }

    /// [`Connections::open`], each attempt to connect (TCP and the HTTP/2 handshake, until
    /// the server's SETTINGS) given `timeout`: a server that accepts and never answers fails
    /// the attempt then, as one that refuses does at once.
    pub fn open_with(connector: Connector, count: usize, clock: &Clock, timeout: Duration) -> Self {
        let slots: Vec<_> = (0..count.max(1))
            .map(|_| {
                let (tx, rx) = watch::channel(State::Connecting);
                tokio::spawn(keep(Arc::clone(&connector), tx, clock.clone(), timeout));
                rx
            })
            .collect();
        Self {
            slots: slots.into(),
            next: Arc::default(),
            spill: None,
        }
    }

    /// These connections, taken by [`Connections::ready`] in order rather than in turn: the
    /// first ready with fewer than `spill` streams open and a slot free under the server's
    /// limit of streams, else the ready one with the fewest (one with a free slot first). So
    /// a connection beyond the first carries streams only when calls overlap that much, or
    /// when the server allows fewer (the proxy's upstream, docs/proxy.md "Threads").
    pub fn spilling(self, spill: usize) -> Self {
        Self {
            spill: Some(spill),
            ..self
        }
    }

    /// Waits until every connection is up or has failed once; the first failure's reason,
    /// if any failed.
    pub async fn established(&self) -> Result<(), Unavailable> {
        for slot in self.slots.iter() {
            let mut slot = slot.clone();
            let state = slot
                .wait_for(|s| !matches!(s, State::Connecting))
                .await
                .map(|s| s.clone());
            if let Ok(State::Failed(reason)) = state {
                return Err(Unavailable(reason));
            }
        }
        Ok(())
    }

    /// The connection for a new stream: the next in turn ([`Connections::spilling`]: the
    /// first with room), waiting while it is connecting, failing at once while it is failing.
    pub async fn ready(&self) -> Result<http2::Handle, Unavailable> {
        if let Some(spill) = self.spill {
            // Fewest streams open among those with a free slot under the server's limit; a
            // connection at its limit only when every one is.
            let mut least: Option<((bool, usize), http2::Handle)> = None;
            for slot in self.slots.iter() {
                let State::Ready(handle) = &*slot.borrow() else {
                    continue;
                };
                let Some((open, free)) = handle.open_streams() else {
                    continue;
                };
                if open < spill && free {
                    return Ok(handle.clone());
                }
                let load = (!free, open);
                if least.as_ref().is_none_or(|(fewest, _)| load < *fewest) {
                    least = Some((load, handle.clone()));
                }
            }
            if let Some((_, handle)) = least {
                return Ok(handle);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].clone();
        // A connection that opens no more streams (GOAWAY) is not picked: its keeper is
        // about to replace it, as a gRPC channel replaces a draining subchannel.
        let state = match slot
            .wait_for(|s| match s {
                State::Connecting => false,
                State::Ready(handle) => handle.opens_streams(),
                State::Failed(_) => true,
            })
            .await
        {
            Ok(state) => state.clone(),
            Err(_) => return Err(Unavailable("the connection was shut down".into())),
        };
        match state {
            State::Ready(handle) => Ok(handle),
            State::Failed(reason) => Err(Unavailable(reason)),
            State::Connecting => unreachable!("waited until it was ready or failed"),
        }
    }
}

/// Keeps one connection up until every receiver of `tx` is gone.
async fn keep(connector: Connector, tx: watch::Sender<State>, clock: Clock, timeout: Duration) {
    let mut retry = RETRY_FIRST;
    loop {
        tx.send_replace(State::Connecting);
        let attempt = tokio::select! {
            attempt = clock.timeout(timeout, handshake(&connector)) => attempt,
            _ = tx.closed() => return,
        };
        let reason: Arc<str> = match attempt {
            Ok(Ok((handle, mut connection))) => {
                retry = RETRY_FIRST;
                tx.send_replace(State::Ready(handle.clone()));
                tokio::select! {
                    // Closed by the server, or broken: connect again at once.
                    _ = &mut connection => continue,
                    // Going away (GOAWAY, or its stream ids used up): it finishes its streams
                    // on its own while the next calls wait for a new connection, as a gRPC
                    // channel replaces a draining subchannel.
                    _ = handle.going_away() => {
                        tokio::spawn(connection);
                        continue;
                    }
                    _ = tx.closed() => return,
                }
            }
            Ok(Err(reason)) => reason.into(),
            Err(_) => format!(
                "no HTTP/2 connection within {} (TCP and the server's SETTINGS)",
                crate::profile::duration::format(timeout)
            )
            .into(),
        };
        tx.send_replace(State::Failed(reason));
        tokio::select! {
            _ = clock.sleep(retry) => {}
            _ = tx.closed() => return,
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
}

async fn handshake(connector: &Connector) -> Result<(http2::Handle, http2::Driver), String> {
    let io = connector().await.map_err(|e| e.to_string())?;
    http2::handshake(io)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))
}
