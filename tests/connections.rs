//! The client's HTTP/2 connections: failing fast while the server cannot be reached, coming
//! back when it can, reconnecting after a close, and closing when no longer used. In virtual
//! time (tokio's paused clock), over in-memory pipes to an h2 server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use resilbench::clock::Clock;
use resilbench::transport::connection::{Connections, Connector, Io};
use resilbench::transport::http2;
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

/// `load.connections`: several connections to one server, each opened once, and the calls
/// spread over them in turn.
#[tokio::test(start_paused = true)]
async fn calls_take_the_connections_in_turn() {
    let opened = Arc::new(AtomicUsize::new(0));
    let (streams_tx, mut streams) = mpsc::unbounded_channel();
    let count = Arc::clone(&opened);
    let connector: Connector = Arc::new(move || {
        let n = count.fetch_add(1, Ordering::SeqCst);
        let streams_tx = streams_tx.clone();
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(server).await else {
                    return;
                };
                while let Some(Ok((_, mut respond))) = conn.accept().await {
                    let _ = streams_tx.send(n);
                    let _ = respond.send_response(http::Response::new(()), true);
                }
            });
            Ok(Box::new(client) as Box<dyn Io>)
        })
    });
    let connections = Connections::open(connector, 3, &Clock::Tokio);
    connections.established().await.unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 3);

    let mut per_connection = [0usize; 3];
    for _ in 0..9 {
        let handle = connections.ready().await.unwrap();
        let mut stream = handle.open(request()).await.unwrap();
        assert!(matches!(stream.next().await, http2::Event::Head(_)));
        per_connection[streams.recv().await.unwrap()] += 1;
    }
    assert_eq!(per_connection, [3, 3, 3]);
    assert_eq!(
        opened.load(Ordering::SeqCst),
        3,
        "no connection opened again"
    );
}

/// The proxy's upstream (`Connections::spilling`): calls take the first connection until it
/// has that many streams open, then the one with the fewest; when they have ended, the first
/// again.
#[tokio::test(start_paused = true)]
async fn calls_spill_to_the_next_connection_only_past_the_first_ones_streams() {
    let (streams_tx, mut streams) = mpsc::unbounded_channel();
    let (release, released) = tokio::sync::watch::channel(false);
    let count = Arc::new(AtomicUsize::new(0));
    let connector: Connector = Arc::new(move || {
        let n = count.fetch_add(1, Ordering::SeqCst);
        let (streams_tx, released) = (streams_tx.clone(), released.clone());
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(server).await else {
                    return;
                };
                while let Some(Ok((_, mut respond))) = conn.accept().await {
                    let _ = streams_tx.send(n);
                    let mut released = released.clone();
                    tokio::spawn(async move {
                        let _ = released.wait_for(|r| *r).await;
                        let _ = respond.send_response(http::Response::new(()), true);
                    });
                }
            });
            Ok(Box::new(client) as Box<dyn Io>)
        })
    });
    let connections = Connections::open(connector, 2, &Clock::Tokio).spilling(2);
    connections.established().await.unwrap();
    let mut held = Vec::new();
    let mut landed = Vec::new();
    for _ in 0..5 {
        let handle = connections.ready().await.unwrap();
        held.push(handle.open(request()).await.unwrap());
        landed.push(streams.recv().await.unwrap());
    }
    // Two on the first; then the second, which has fewer; at two each, the first.
    assert_eq!(landed, [0, 0, 1, 1, 0]);
    release.send(true).unwrap();
    for mut stream in held {
        while !matches!(stream.next().await, http2::Event::End) {}
    }
    let handle = connections.ready().await.unwrap();
    let _stream = handle.open(request()).await.unwrap();
    assert_eq!(streams.recv().await, Some(0), "the first again");
}

fn request() -> http2::Request<'static> {
    http2::Request {
        path: b"/x",
        authority: b"test",
        https: false,
        fields: &[],
        body: Bytes::from_static(b"hello"),
        end: true,
    }
}

/// A server that sends GOAWAY (as grpc-go does at its MaxConnectionAge): the next calls go out
/// on a new connection at once, while the old one finishes the call it had.
#[tokio::test(start_paused = true)]
async fn a_connection_going_away_is_replaced_while_it_finishes_its_calls() {
    let opened = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let (closed_tx, mut closed) = mpsc::unbounded_channel();
    let (count, answer) = (Arc::clone(&opened), Arc::clone(&release));
    let connector: Connector = Arc::new(move || {
        let n = count.fetch_add(1, Ordering::SeqCst);
        let (answer, closed_tx) = (Arc::clone(&answer), closed_tx.clone());
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(server).await else {
                    return;
                };
                let ok = || http::Response::new(());
                if n == 0 {
                    let (_, mut respond) = conn.accept().await.unwrap().unwrap();
                    conn.graceful_shutdown();
                    tokio::spawn(async move {
                        answer.notified().await;
                        respond.send_response(ok(), true).unwrap();
                    });
                }
                while let Some(Ok((_, mut respond))) = conn.accept().await {
                    respond.send_response(ok(), true).unwrap();
                }
                let _ = closed_tx.send(n);
            });
            Ok(Box::new(client) as Box<dyn Io>)
        })
    });
    let connections = Connections::open(connector, 1, &Clock::Tokio);
    connections.established().await.unwrap();
    let old = connections.ready().await.unwrap();
    let mut held = old.open(request()).await.unwrap();

    // The GOAWAY arrives: a second connection is opened without waiting for the held call.
    for _ in 0..1000 {
        if opened.load(Ordering::SeqCst) == 2 {
            break;
        }
        Clock::Tokio.sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        opened.load(Ordering::SeqCst),
        2,
        "a second connection, within 1 s"
    );
    let new = connections.ready().await.unwrap();
    let mut next = new.open(request()).await.unwrap();
    assert!(matches!(next.next().await, http2::Event::Head(_)));
    assert!(
        old.open(request()).await.is_err(),
        "no new stream on the old one"
    );

    // The old connection still answers the call it had, then closes.
    release.notify_one();
    assert!(matches!(held.next().await, http2::Event::Head(_)));
    assert_eq!(closed.recv().await, Some(0));
    assert_eq!(opened.load(Ordering::SeqCst), 2);
}

/// An upstream whose SETTINGS_MAX_CONCURRENT_STREAMS is below the spill threshold: a
/// connection with no slot free counts as full, so a second call goes on the second
/// connection (as in turn) rather than waiting for the first one's only slot.
#[tokio::test(start_paused = true)]
async fn spilling_uses_the_next_connection_when_the_first_is_at_the_upstreams_stream_limit() {
    let connector: Connector = Arc::new(move || {
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::Builder::new()
                    .max_concurrent_streams(1)
                    .handshake::<_, Bytes>(server)
                    .await
                else {
                    return;
                };
                let mut held = Vec::new();
                // Streams accepted and never answered.
                while let Some(Ok(stream)) = conn.accept().await {
                    held.push(stream);
                }
            });
            Ok(Box::new(client) as Box<dyn Io>)
        })
    });
    for spill in [None, Some(16)] {
        let mut connections = Connections::open(Arc::clone(&connector), 2, &Clock::Tokio);
        if let Some(spill) = spill {
            connections = connections.spilling(spill);
        }
        connections.established().await.unwrap();
        let first = connections.ready().await.unwrap();
        let _held = first.open(request()).await.unwrap();
        let second = connections.ready().await.unwrap();
        let opened = Clock::Tokio
            .timeout(Duration::from_secs(1), second.open(request()))
            .await;
        assert!(
            opened.is_ok_and(|o| o.is_ok()),
            "spill {spill:?}: a second call waits for the first connection's one stream \
             while the second connection is idle"
        );
    }
}
