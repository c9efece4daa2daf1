//! `resilbench proxy`'s threads: one current-thread runtime per core, each holding its own
//! connections to the upstream, its own timer, and whole client connections handed to it in
//! turn by the thread that accepts them (`backend::serve_threads`, as `resilbench serve`).
//!
//! Why: on tokio's multi-thread runtime an attempt's work was spread over the threads (hyper's
//! connection task, the stream's task, the attempt's task, the upstream connection's driver,
//! the precise timer's own thread), which woke each other for every call, and a wake across
//! CPUs costs tens of microseconds on a virtual machine. Here an attempt is received, decided,
//! forwarded and relayed on one thread: its client connection's, whose upstream connections
//! and reactor timer ([`Clock::real`]) belong to the same runtime. Counts per call, before and
//! after: docs/PERFORMANCE.md ("The proxy in front of a service").
//!
//! What the threads share: the fault model and its Control service, the counts and the bounds
//! ([`Proxy::on`]). A client with fewer connections than there are threads leaves threads
//! idle, as with `serve`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Proxy, serve_connections};
use crate::backend::serve_threads::{Handed, ServeThreads};
use crate::clock::Clock;
use crate::transport::connection::{Connections, Connector};

/// Streams open on a thread's first upstream connection before its calls spill over to the
/// others (each then to the one with the fewest): at low rates the calls of a thread share
/// one connection, and so one of the upstream's threads (a second connection only added
/// wake-ups: at 20,000 calls/s, round robin over two cost the proxy 23-27% of a core and 6,300-
/// 7,000 context switches/s, one connection 19% and 5,100); under load a second connection
/// lets a second thread of the upstream share them (docs/proxy.md, "Threads").
const SPILL: usize = 16;

/// How each thread reaches the upstream.
#[derive(Clone)]
pub struct Upstream {
    /// Opens a byte stream to the upstream (TCP, TLS).
    pub connector: Connector,
    /// HTTP/2 connections each thread keeps to the upstream.
    pub connections: usize,
    /// How long one attempt to connect may take.
    pub connect_timeout: Duration,
}

/// Starts `count` threads (at least one) serving `template`'s proxy, each with its own
/// connections to `upstream`, until `stop` is cancelled (then each closes its client
/// connections gracefully). Returns the threads (hand them connections, [`ServeThreads::accept`])
/// and each thread's upstream connections, once every thread has opened them.
pub async fn start(
    template: &Proxy,
    upstream: &Upstream,
    count: usize,
    stop: &CancellationToken,
) -> Result<(ServeThreads, Vec<Connections>), String> {
    let mut opened = Vec::new();
    let threads = ServeThreads::start_with(count, "proxy", |_| {
        let (template, upstream, stop) = (template.clone(), upstream.clone(), stop.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        opened.push(rx);
        move |incoming: Handed| async move {
            let clock = Clock::real();
            let connections = Connections::open_with(
                upstream.connector,
                upstream.connections,
                &clock,
                upstream.connect_timeout,
            )
            .spilling(SPILL);
            let _ = tx.send(connections.clone());
            let proxy = template.on(connections, clock);
            serve_connections(proxy, incoming, stop.cancelled_owned()).await;
        }
    })?;
    let mut connections = Vec::new();
    for rx in opened {
        connections.push(
            rx.await
                .map_err(|_| "a proxy thread ended before it connected".to_string())?,
        );
    }
    Ok((threads, connections))
}
