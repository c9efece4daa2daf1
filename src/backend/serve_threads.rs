//! `resilbench serve`'s threads (and `resilbench proxy`'s, [`ServeThreads::start_with`]): each runs a current-thread runtime and answers whole
//! connections, handed to the threads in turn by the thread that accepts them.
//!
//! Why: on tokio's multi-thread runtime a connection's task and its calls' tasks were spread
//! over the threads, which woke each other for every call. One connection's calls cost the
//! server a third less at 10k calls/s on one thread than on two, and with this model serve's
//! cost per call at 40k/s fell from 26 to 18 µs with both cores shared with the generator
//! (docs/PERFORMANCE.md, "How much of the server's cost is its threads handing work to each
//! other", and the run at commit a72e28d).
//!
//! Why one accepting thread rather than a listener per thread with `SO_REUSEPORT`: every
//! socket on a port shared that way must ask for it, and then a second server started on the
//! same port would silently take half the connections instead of failing to start.
//!
//! A connection stays on its thread for its whole life: a client with fewer connections than
//! there are threads leaves threads idle (`load.connections` sets a run's).

use std::thread::JoinHandle;

use tokio::sync::mpsc::UnboundedSender;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Raises this process's soft limit on open files to its hard limit, so that a server is
/// not out of file descriptors at 1,024 connections (the usual soft limit, when the hard one
/// is far above it). Returns the limits before and after, or why they could not be read or
/// set.
#[cfg(target_os = "linux")]
pub fn raise_open_files() -> Result<(u64, u64), String> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    // An unlimited hard limit cannot be the soft one for open files (the kernel's nr_open
    // bounds it): its default then.
    let target = limit.maximum.unwrap_or(1 << 20);
    if limit.current.is_none_or(|current| current >= target) {
        return Ok((before, before));
    }
    let raised = rustix::process::Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).map_err(|e| e.to_string())?;
    Ok((before, target))
}

/// Elsewhere the limit is left as it is.
#[cfg(not(target_os = "linux"))]
pub fn raise_open_files() -> Result<(u64, u64), String> {
    Err("not raised on this system".into())
}
use tokio_util::sync::CancellationToken;

use super::server::{Shared, serve_connections_with};
use super::serving::Limits;

/// The server threads, and the hand-off to each.
pub struct ServeThreads {
    /// Where each thread takes its next connection from.
    senders: Vec<UnboundedSender<std::net::TcpStream>>,
    /// Each thread.
    threads: Vec<JoinHandle<()>>,
    /// The thread the next connection goes to (modulo their number).
    next: usize,
    /// The command's name, in what is said on stderr.
    name: &'static str,
}

/// The connections handed to one thread, registered with its reactor as they arrive.
pub type Handed = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> + Send>,
>;

impl ServeThreads {
    /// `count` threads (at least one) serving `shared` within `limits` (one set, shared by
    /// every thread: the calls in progress are counted over all of them) until `stop` is
    /// cancelled; on stop each closes its connections gracefully (GOAWAY, then waits for
    /// calls in flight, up to the limits' drain timeout).
    pub fn start(
        shared: &Shared,
        count: usize,
        stop: &CancellationToken,
        limits: &Limits,
    ) -> Result<Self, String> {
        let (shared, stop, limits) = (shared.clone(), stop.clone(), limits.clone());
        Self::start_with(count, "serve", move |_| {
            let (shared, stop, limits) = (shared.clone(), stop.clone(), limits.clone());
            move |incoming: Handed| async move {
                serve_connections_with(shared, incoming, stop.cancelled_owned(), limits).await;
            }
        })
    }

    /// `count` threads (at least one), named `resilbench-NAME-i`, each running the future
    /// `make(i)` gives on a current-thread runtime of its own, with the connections handed to
    /// that thread. `make(i)` is called here; what it returns is called on its thread, inside
    /// the thread's runtime (so that what it spawns or registers lives there).
    pub fn start_with<M, S, F>(
        count: usize,
        name: &'static str,
        mut make: M,
    ) -> Result<Self, String>
    where
        M: FnMut(usize) -> S,
        S: FnOnce(Handed) -> F + Send + 'static,
        F: std::future::Future<Output = ()>,
    {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<std::net::TcpStream>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a server thread's runtime: {e}"))?;
            let serve = make(i);
            let thread = std::thread::Builder::new()
                .name(format!("resilbench-{name}-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let incoming: Handed = Box::pin(
                            UnboundedReceiverStream::new(rx).map(tokio::net::TcpStream::from_std),
                        );
                        serve(incoming).await;
                    });
                })
                .map_err(|e| format!("cannot start a server thread: {e}"))?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok(Self {
            senders,
            threads,
            next: 0,
            name,
        })
    }

    /// Hands an accepted connection to the next thread in turn, with `TCP_NODELAY` (small
    /// gRPC frames must not wait for Nagle's algorithm). Fails if that thread has ended
    /// (`join` says why).
    pub fn hand(&mut self, stream: tokio::net::TcpStream) -> Result<(), String> {
        let i = self.next % self.senders.len();
        self.next = self.next.wrapping_add(1);
        stream
            .set_nodelay(true)
            .and_then(|()| stream.into_std())
            .map_err(|e| format!("a connection could not be served: {e}"))
            .and_then(|stream| {
                self.senders[i]
                    .send(stream)
                    .map_err(|_| format!("server thread {i} has ended"))
            })
    }

    /// Hands every connection `listener` accepts to the threads, until `shutdown` completes
    /// or a thread has ended (its `join` says why). A failed accept (out of file descriptors,
    /// a connection reset before it was taken) is said once, and accepting is tried again
    /// after a pause that doubles from 5 ms to 1 s while it keeps failing; the next
    /// connection accepted says how many failed. Out of file descriptors, the connections
    /// waiting in the listen queue are taken as soon as some close (a silent connection is
    /// closed at the handshake timeout, an idle one at the idle timeout).
    pub async fn accept(
        &mut self,
        listener: &tokio::net::TcpListener,
        shutdown: impl std::future::Future,
    ) {
        tokio::pin!(shutdown);
        let first = std::time::Duration::from_millis(5);
        let mut pause = first;
        let mut failed = 0u64;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        if failed > 0 {
                            eprintln!(
                                "resilbench {}: accepting again, after {failed} failed accepts",
                                self.name
                            );
                            failed = 0;
                            pause = first;
                        }
                        if let Err(e) = self.hand(stream) {
                            eprintln!("resilbench {}: {e}", self.name);
                            return;
                        }
                    }
                    Err(e) => {
                        if failed == 0 {
                            eprintln!("resilbench {}: accept: {e} (trying again)", self.name);
                        }
                        failed += 1;
                        tokio::select! {
                            _ = &mut shutdown => return,
                            () = crate::clock::Clock::Tokio.sleep(pause) => {}
                        }
                        pause = (pause * 2).min(std::time::Duration::from_secs(1));
                    }
                },
            }
        }
    }

    /// Waits for every thread to finish (after `stop`); fails if one panicked.
    pub fn join(self) -> Result<(), String> {
        drop(self.senders);
        let panicked = self
            .threads
            .into_iter()
            .map(JoinHandle::join)
            .filter(Result::is_err)
            .count();
        match panicked {
            0 => Ok(()),
            n => Err(format!("{n} server thread(s) panicked")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    /// The threads answer the connections handed to them, each on its own runtime, and all
    /// end when told to stop.
    #[test]
    fn serve_threads_answer_the_connections_handed_to_them_and_stop() {
        let shared = crate::backend::server::test_shared();
        let stop = CancellationToken::new();
        let mut threads = ServeThreads::start(&shared, 2, &stop, &Limits::serve()).unwrap();
        let rt = crate::clock::test_runtime(false);
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = format!("http://{}", listener.local_addr().unwrap());
            for i in 0..3 {
                let (connected, accepted) = tokio::join!(
                    pb::backend_client::BackendClient::connect(addr.clone()),
                    listener.accept()
                );
                threads.hand(accepted.unwrap().0).unwrap();
                let reply = connected
                    .unwrap()
                    .call(pb::CallRequest {
                        request_id: format!("r{i}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(reply.into_inner().request_id, format!("r{i}"));
            }
        });
        assert_eq!(shared.stats().received, 3);
        // The clients' connections close with their runtime; the threads then stop.
        drop(rt);
        stop.cancel();
        threads.join().unwrap();
    }
}
