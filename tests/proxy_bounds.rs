//! What `resilbench proxy` holds for a client, bounded (src/proxy/bounds.rs): streams per
//! connection, request bytes per connection, calls in progress over every connection, silent
//! and idle connections; and a client that abuses them stops only its own calls.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilbench::clock::Clock;
use resilbench::pb;

use crate::common::clients::{calls_at_once, never_reading, one_call, open_and_hold};
use crate::common::runtime;
use crate::proxy::start_with;
use crate::proxy_faults::CALM;

/// How long a well-behaved call may take before it counts as starved.
const TEN_S: Duration = Duration::from_secs(10);

/// A client that opens stream after stream, sends 256 KiB of a request on each and never
/// ends one nor reads anything: the proxy advertises its stream limit (20), holds at most
/// its connection's request budget (1 MiB) from it, refuses the streams that would go over
/// with RESOURCE_EXHAUSTED, has no more than 20 of its calls in progress, and serves a
/// well-behaved client beside it every time. When it goes, everything it held is given back.
#[test]
fn a_client_that_sends_and_never_reads_holds_only_its_budget_and_starves_no_one() {
    let upstream = start_with(CALM, None, |_| {});
    let proxy = start_with(CALM, Some(upstream.addr.clone()), |o| {
        o.max_streams = 20;
        o.connection_bytes = 1 << 20;
    });
    let held = proxy.proxy.clone().unwrap();
    let opened = Arc::new(AtomicU32::new(0));
    let addr = proxy.addr.clone();
    let most_calls = runtime().block_on(async {
        let (client, mut connection) = never_reading(&addr).await;
        let (advertised_tx, advertised) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // Until the proxy's SETTINGS are read, the builder's 1,000 stands.
            let mut tx = Some(advertised_tx);
            let _ = std::future::poll_fn(|cx| {
                let polled = std::pin::Pin::new(&mut connection).poll(cx);
                let max = connection.max_concurrent_send_streams();
                if max != 1000
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(max);
                }
                polled
            })
            .await;
        });
        // A message prefix announcing 4 MiB, then 256 KiB of it; never the rest.
        let mut part = vec![0u8; 256 * 1024];
        part[1..5].copy_from_slice(&(4u32 << 20).to_be_bytes());
        let opener = open_and_hold(
            client,
            &addr,
            (part.into(), false),
            Arc::clone(&opened),
            200,
        );
        let mut most = 0;
        for i in 0..30 {
            assert_eq!(
                one_call(&addr, &format!("g{i}"), TEN_S).await,
                Ok(()),
                "call {i}"
            );
            most = most.max(held.held().calls.load(Ordering::Relaxed));
        }
        assert_eq!(
            advertised.await.unwrap(),
            20,
            "SETTINGS_MAX_CONCURRENT_STREAMS"
        );
        Clock::Tokio.sleep(Duration::from_millis(300)).await;
        most = most.max(held.held().calls.load(Ordering::Relaxed));
        opener.abort();
        most
    });
    let bounds = proxy.proxy.as_ref().unwrap().held();
    let high = bounds.connection_high_water.load(Ordering::Relaxed);
    assert!(high <= 1 << 20, "held {high} bytes of one connection");
    assert!(high >= 3 * 256 * 1024, "the budget was used: {high}");
    assert!(bounds.refused_bytes.load(Ordering::Relaxed) >= 1);
    assert!(opened.load(Ordering::SeqCst) >= 20);
    // 20 of the hostile client's calls at most, and the one well-behaved call in flight.
    assert!(most_calls <= 21, "{most_calls} calls in progress");
    // The hostile connection is gone with its runtime: what it held is given back.
    runtime().block_on(async {
        for _ in 0..250 {
            let held = (
                bounds.calls.load(Ordering::Relaxed),
                bounds.bytes.load(Ordering::Relaxed),
            );
            if held == (0, 0) {
                return;
            }
            Clock::Tokio.sleep(Duration::from_millis(20)).await;
        }
        panic!("still held 5 s after the client left");
    });
}

/// At most `max_calls` calls are in progress in the proxy at once, over every connection:
/// one more is answered RESOURCE_EXHAUSTED at once, naming the option, and counted.
#[test]
fn calls_beyond_the_proxys_limit_are_refused_at_once() {
    let slow = CALM.replace("\"1ms\"", "\"1s\"");
    let upstream = start_with(&slow, None, |_| {});
    let proxy = start_with(CALM, Some(upstream.addr.clone()), |o| o.max_calls = 3);
    let addr = proxy.addr.clone();
    let answers = runtime().block_on(calls_at_once(&addr, 6, TEN_S));
    let ok = answers.iter().filter(|a| a.is_ok()).count();
    let refused: Vec<_> = answers.iter().filter_map(|a| a.clone().err()).collect();
    assert_eq!(ok, 3, "{answers:?}");
    for (code, message) in &refused {
        assert_eq!(*code, tonic::Code::ResourceExhausted);
        assert!(message.contains("--max-calls"), "{message}");
    }
    let bounds = proxy.proxy.as_ref().unwrap().held();
    assert_eq!(bounds.refused_calls.load(Ordering::Relaxed), 3);
}

/// As `serve`'s watchdog: a connection that never sends HTTP/2's preface is closed at the
/// handshake timeout; one that spoke and then makes no call is told to go away (GOAWAY, after
/// one to two idle timeouts), and its client's connection then ends; a connection with calls
/// is served throughout.
#[test]
fn silent_connections_are_closed_and_idle_ones_told_to_go_away() {
    let upstream = start_with(CALM, None, |_| {});
    let proxy = start_with(CALM, Some(upstream.addr.clone()), |o| {
        o.handshake_timeout = Some(Duration::from_millis(300));
        o.idle_timeout = Some(Duration::from_millis(400));
    });
    runtime().block_on(async {
        use tokio::io::AsyncReadExt;
        let mut silent = tokio::net::TcpStream::connect(&proxy.addr).await.unwrap();
        let tcp = tokio::net::TcpStream::connect(&proxy.addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        let idle = tokio::spawn(connection);
        // A connection in use is not idle: calls on one connection every 100 ms for 1.5 s
        // (well over two idle timeouts), all answered.
        let mut busy_client =
            pb::backend_client::BackendClient::connect(format!("http://{}", proxy.addr))
                .await
                .unwrap();
        let busy = async {
            for i in 0..15 {
                let call = pb::CallRequest {
                    request_id: format!("busy-{i}"),
                    ..Default::default()
                };
                busy_client.call(call).await.unwrap();
                Clock::Tokio.sleep(Duration::from_millis(100)).await;
            }
        };
        let closed = async {
            let mut byte = [0u8; 64];
            // Nothing sent back to a client that never spoke (no SETTINGS read here either):
            // the proxy closes it; only its own SETTINGS may come first.
            let mut ended = false;
            for _ in 0..4 {
                match silent.read(&mut byte).await {
                    Ok(0) | Err(_) => {
                        ended = true;
                        break;
                    }
                    Ok(_) => {}
                }
            }
            assert!(ended, "a silent connection was not closed");
        };
        let (closed, idle_end, ()) = tokio::join!(
            Clock::Tokio.timeout(Duration::from_secs(5), closed),
            Clock::Tokio.timeout(Duration::from_secs(5), idle),
            busy
        );
        closed.expect("the silent connection was still open after 5 s");
        idle_end
            .expect("the idle connection was not told to go away within 5 s")
            .unwrap()
            .unwrap();
        drop(client);
    });
}
