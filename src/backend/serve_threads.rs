//! `resilbench serve`'s threads: each runs a current-thread runtime and answers whole
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
use tokio_util::sync::CancellationToken;

use super::server::{Shared, serve_connections};

/// The server threads, and the hand-off to each.
pub struct ServeThreads {
    /// Where each thread takes its next connection from.
    senders: Vec<UnboundedSender<std::net::TcpStream>>,
    /// Each thread.
    threads: Vec<JoinHandle<()>>,
    /// The thread the next connection goes to (modulo their number).
    next: usize,
}

impl ServeThreads {
    /// `count` threads (at least one) serving `shared` until `stop` is cancelled; on stop
    /// each closes its connections gracefully (GOAWAY, then waits for calls in flight).
    pub fn start(shared: &Shared, count: usize, stop: &CancellationToken) -> Result<Self, String> {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<std::net::TcpStream>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a server thread's runtime: {e}"))?;
            let (shared, stop) = (shared.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("resilbench-serve-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        use tokio_stream::StreamExt;
                        // Registered with this thread's reactor as they arrive.
                        let incoming = tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
                            .map(tokio::net::TcpStream::from_std);
                        serve_connections(shared, incoming, stop.cancelled()).await;
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
    /// or a thread has ended (its `join` says why). A failed accept (out of file
    /// descriptors, a connection reset before it was taken) is said and the loop goes on
    /// after a moment, as servers do.
    pub async fn accept(
        &mut self,
        listener: &tokio::net::TcpListener,
        shutdown: impl std::future::Future,
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        if let Err(e) = self.hand(stream) {
                            eprintln!("resilbench serve: {e}");
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("resilbench serve: accept: {e}");
                        crate::clock::Clock::Tokio
                            .sleep(std::time::Duration::from_millis(50))
                            .await;
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
        let mut threads = ServeThreads::start(&shared, 2, &stop).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
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
