//! The client's HTTP/2 connections: failing fast while the server cannot be reached, coming
//! back when it can, reconnecting after a close, and closing when no longer used. In virtual
//! time (tokio's paused clock), over in-memory pipes to an h2 server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilbench::clock::Clock;
use resilbench::transport::connection::{Connections, Connector, Io};
use tokio::sync::mpsc;

/// A connector that refuses its first attempt and then hands out pipes to an h2 server; the
/// server reports each connection's end on `closed`, and can be told to drop connections.
struct Server {
    attempts: Arc<AtomicUsize>,
    closed: mpsc::UnboundedReceiver<usize>,
    kill: Arc<tokio::sync::Notify>,
}

fn server() -> (Connector, Server) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let (closed_tx, closed) = mpsc::unbounded_channel();
    let kill = Arc::new(tokio::sync::Notify::new());
    let (count, kill_all) = (Arc::clone(&attempts), Arc::clone(&kill));
    let connector: Connector = Arc::new(move || {
        let n = count.fetch_add(1, Ordering::SeqCst);
        let (closed_tx, kill) = (closed_tx.clone(), Arc::clone(&kill_all));
        Box::pin(async move {
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
            }
            let (client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(server).await else {
                    return;
                };
                tokio::select! {
                    _ = async { while conn.accept().await.is_some() {} } => {}
                    _ = kill.notified() => {}
                }
                let _ = closed_tx.send(n);
            });
            Ok(Box::new(client) as Box<dyn Io>)
        })
    });
    (
        connector,
        Server {
            attempts,
            closed,
            kill,
        },
    )
}

#[tokio::test(start_paused = true)]
async fn connections_fail_fast_come_back_reconnect_and_close() {
    let (connector, mut server) = server();
    let connections = Connections::open(connector, 1, &Clock::Tokio);

    // The first attempt is refused: the wait for the connections says why, and a call fails
    // at once rather than waiting (TRANSIENT_FAILURE, no wait-for-ready).
    let refused = connections.established().await.unwrap_err();
    assert!(refused.0.contains("refused"), "{}", refused.0);
    assert!(connections.ready().await.is_err());

    // The keeper tries again after 50 ms and the server is there.
    Clock::Tokio.sleep(Duration::from_millis(60)).await;
    assert!(connections.ready().await.is_ok());
    assert_eq!(server.attempts.load(Ordering::SeqCst), 2);

    // The server drops the connection: the keeper connects again at once.
    server.kill.notify_waiters();
    assert_eq!(server.closed.recv().await, Some(1));
    Clock::Tokio.sleep(Duration::from_millis(1)).await;
    assert!(connections.ready().await.is_ok());
    assert_eq!(server.attempts.load(Ordering::SeqCst), 3);

    // Nothing uses the connections any more: they close.
    drop(connections);
    assert_eq!(server.closed.recv().await, Some(2));
}
