//! `resilbench proxy` when its upstream goes away (GOAWAY, gracefully or not) or refuses
//! streams with calls in flight: the calls it processed finish, the streams it did not
//! (RFC 9113 6.8, 8.7) are sent again once on the next connection, and what the proxy
//! counts of it all, over one span, in the line it prints when it stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;

use resilbench::clock::Clock;
use resilbench::pb;
use resilbench::proxy::KEPT;
use resilbench::proxy::faults::OutageMode;

use crate::common::goaway::{self, GoAway, How};
use crate::common::runtime;
use crate::proxy::start_with;
use crate::proxy_faults::{CALM, outage};

/// An upstream (the h2 crate's server) that sends GOAWAY on each connection after its third
/// call and finishes the calls it has: the proxy's calls in flight finish OK, the next ones go
/// to a new connection, and none fails.
#[test]
fn an_upstream_goaway_reconnects_and_calls_in_flight_finish() {
    let connections = Arc::new(AtomicUsize::new(0));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let counted = Arc::clone(&connections);
    let server = std::thread::spawn(move || {
        runtime().block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx
                .send(listener.local_addr().unwrap().to_string())
                .unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(goaway_after_three(tcp));
            }
        });
    });
    let upstream = addr_rx.recv().unwrap();
    let proxy = start_with(CALM, Some(upstream), |_| {});
    let codes = runtime().block_on(async {
        let channel = connect(&proxy.addr).await;
        let mut codes = Vec::new();
        // Five waves of three calls at once: each wave meets a GOAWAY mid-flight.
        for wave in 0..5 {
            codes.extend(three_at_once(&channel, &wave.to_string()).await);
        }
        codes
    });
    assert_eq!(codes, vec![(tonic::Code::Ok, String::new()); 15]);
    assert!(
        connections.load(Ordering::SeqCst) >= 5,
        "a new connection per wave"
    );
    drop(server); // (its thread ends with the process)
}

/// Serves one connection: each call answered OK (one empty message, `grpc-status: 0`) after
/// 100 ms; at the third call, GOAWAY (h2's graceful shutdown), the calls it has finished.
async fn goaway_after_three(tcp: tokio::net::TcpStream) {
    let Ok(mut conn) = h2::server::handshake(tcp).await else {
        return;
    };
    let mut seen = 0;
    while let Some(Ok((_request, mut respond))) = conn.accept().await {
        seen += 1;
        if seen == 3 {
            conn.graceful_shutdown();
        }
        tokio::spawn(async move {
            Clock::Tokio.sleep(Duration::from_millis(100)).await;
            let response = http::Response::builder()
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            let Ok(mut send) = respond.send_response(response, false) else {
                return;
            };
            let _ = send.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), false);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let _ = send.send_trailers(trailers);
        });
    }
}

/// Three calls at once on `channel` (ids `{wave}-0` to `{wave}-2`): the code each ended
/// with, and its message.
async fn three_at_once(
    channel: &tonic::transport::Channel,
    wave: &str,
) -> Vec<(tonic::Code, String)> {
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let mut client = pb::backend_client::BackendClient::new(channel.clone());
            let request_id = format!("{wave}-{i}");
            tokio::spawn(async move {
                let call = client.call(pb::CallRequest {
                    request_id,
                    ..Default::default()
                });
                match Clock::Tokio.timeout(Duration::from_secs(10), call).await {
                    Ok(Ok(_)) => (tonic::Code::Ok, String::new()),
                    Ok(Err(s)) => (s.code(), s.message().to_string()),
                    Err(_) => (tonic::Code::DeadlineExceeded, "the test's wait".into()),
                }
            })
        })
        .collect();
    let mut ended = Vec::new();
    for c in calls {
        ended.push(c.await.unwrap());
    }
    ended
}

/// A connection to the proxy at `addr`.
async fn connect(addr: &str) -> tonic::transport::Channel {
    resilbench::transport::grpc::endpoint(addr)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Three calls at once through the proxy at `addr`, on a connection of their own
/// ([`three_at_once`]).
fn three_calls(addr: &str) -> Vec<(tonic::Code, String)> {
    runtime().block_on(async { three_at_once(&connect(addr).await, "call").await })
}

/// The proxy's counts after a test: forwarded, sent again, and the backend's received.
fn forwarded_resent_received(proxy: &crate::proxy::Running) -> (u64, u64, u64) {
    let p = proxy.proxy.as_ref().unwrap();
    let counts = p.counts();
    (
        counts.forwarded.load(Ordering::Relaxed),
        counts.resent.load(Ordering::Relaxed),
        p.shared().stats().received,
    )
}

/// An upstream with three of the proxy's streams in flight goes away, abruptly (one GOAWAY)
/// or gracefully (GOAWAY 2^31-1, PING, then the real last stream id), with the first stream's
/// id as its last: it answers that one, and never processed the other two (RFC 9113 6.8). The
/// proxy sends those two again, once, on the connection its keeper opens, where they are
/// answered: the client sees three OKs, the fault model three attempts, the upstream five
/// streams and three answers.
#[test]
fn streams_above_an_upstream_goaways_last_id_are_sent_again_on_a_new_connection() {
    for how in [How::Abrupt, How::Graceful] {
        let plan = GoAway {
            how,
            ..GoAway::after(3)
        };
        let (upstream, seen) = goaway::listen(plan, 1);
        let proxy = start_with(CALM, Some(upstream), |_| {});
        let ended = three_calls(&proxy.addr);
        let ok = (tonic::Code::Ok, String::new());
        assert_eq!(ended, vec![ok; 3], "{how:?}");
        assert_eq!(forwarded_resent_received(&proxy), (3, 2, 3), "{how:?}");
        let seen = (
            seen.streams.load(Ordering::SeqCst),
            seen.answered.load(Ordering::SeqCst),
        );
        assert_eq!(
            seen,
            (5, 3),
            "{how:?}: streams opened and answered upstream"
        );
    }
}

/// The same while the streams wait for a place under the upstream's limit of one stream at a
/// time: the GOAWAY ends the wait of the two not yet opened, which are sent on the new
/// connection; the client sees three OKs.
#[test]
fn streams_waiting_for_an_upstream_slot_when_it_goes_away_are_sent_on_a_new_connection() {
    let plan = GoAway {
        max_streams: Some(1),
        // Time for the other two calls to reach the proxy and wait for the slot.
        wait: Duration::from_millis(500),
        ..GoAway::after(1)
    };
    let (upstream, seen) = goaway::listen(plan, 1);
    let proxy = start_with(CALM, Some(upstream), |_| {});
    let ended = three_calls(&proxy.addr);
    let ok = (tonic::Code::Ok, String::new());
    assert_eq!(ended, vec![ok; 3]);
    assert_eq!(forwarded_resent_received(&proxy), (3, 2, 3));
    assert_eq!(seen.streams.load(Ordering::SeqCst), 3, "each opened once");
}

/// A call whose client gives up while its stream waits for a place under the upstream's
/// limit of one stream is not counted `forwarded`: the upstream never received it (the
/// upstream holds the first call's stream 1.5 s, then answers it and goes away).
#[test]
fn a_call_given_up_while_it_waits_for_an_upstream_slot_is_not_forwarded() {
    let plan = GoAway {
        max_streams: Some(1),
        wait: Duration::from_millis(1500),
        ..GoAway::after(1)
    };
    let (upstream, seen) = goaway::listen(plan, 1);
    let proxy = start_with(CALM, Some(upstream), |_| {});
    // Both calls on one connection, so on one proxy thread and its one upstream connection.
    let first = runtime().block_on(async {
        let channel = resilbench::transport::grpc::endpoint(&proxy.addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let call = |id: &str| {
            let mut client = pb::backend_client::BackendClient::new(channel.clone());
            let request = pb::CallRequest {
                request_id: id.into(),
                ..Default::default()
            };
            async move { client.call(request).await }
        };
        let first = tokio::spawn(call("first"));
        Clock::Tokio.sleep(Duration::from_millis(300)).await;
        let given_up = Clock::Tokio
            .timeout(Duration::from_millis(100), call("second"))
            .await;
        assert!(given_up.is_err(), "answered while the slot was held");
        first.await.unwrap().map(|_| ())
    });
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(seen.streams.load(Ordering::SeqCst), 1);
    // Both reached the fault model; one went upstream.
    assert_eq!(forwarded_resent_received(&proxy), (1, 0, 2));
}

/// Sent again once only: an upstream whose every connection goes away without processing
/// anything (last stream id 0) gets each stream twice, and the client an UNAVAILABLE that
/// says why; the fault model counts three attempts, not six.
#[test]
fn a_stream_the_upstream_twice_did_not_process_fails_unavailable() {
    let plan = GoAway {
        first_processed: false,
        ..GoAway::after(3)
    };
    let (upstream, seen) = goaway::listen(plan, usize::MAX);
    let proxy = start_with(CALM, Some(upstream), |_| {});
    for (code, message) in three_calls(&proxy.addr) {
        assert_eq!(code, tonic::Code::Unavailable, "{message}");
        assert!(message.contains("GOAWAY"), "{message}");
    }
    assert_eq!(forwarded_resent_received(&proxy), (3, 3, 3));
    assert_eq!(seen.streams.load(Ordering::SeqCst), 6);
    assert_eq!(seen.answered.load(Ordering::SeqCst), 0);
}

/// A proxy in front of a proxy whose outage refuses each stream (RST_STREAM REFUSED_STREAM,
/// RFC 9113 8.7: not processed): the first sends each stream again once, then answers
/// UNAVAILABLE saying so; the refusing proxy counts two attempts per call, the first one.
#[test]
fn a_stream_the_upstream_refuses_is_sent_again_once() {
    let backend = start_with(CALM, None, |_| {});
    let refusing = start_with(&outage("0s"), Some(backend.addr.clone()), |o| {
        o.outage = OutageMode::Reset(7);
    });
    let proxy = start_with(CALM, Some(refusing.addr.clone()), |_| {});
    for (code, message) in three_calls(&proxy.addr) {
        assert_eq!(code, tonic::Code::Unavailable, "{message}");
        assert!(message.contains("REFUSED_STREAM"), "{message}");
    }
    assert_eq!(forwarded_resent_received(&proxy), (3, 3, 3));
    assert_eq!(
        refusing.proxy.as_ref().unwrap().shared().stats().received,
        6
    );
}

/// The line the proxy prints when it stops counts the fault model's figures and its own over
/// one span, since it started, and says so: three calls, a Control `Reset` (a strategy's
/// start), three more, two of the first sent upstream again, make received 6 and forwarded 6,
/// where `Stats` (the strategy's own) says 3.
#[test]
fn the_stopped_line_counts_everything_since_the_proxy_started() {
    let plan = GoAway::after(3);
    let (upstream, _) = goaway::listen(plan, 1);
    let proxy = start_with(CALM, Some(upstream), |_| {});
    let ok = (tonic::Code::Ok, String::new());
    assert_eq!(three_calls(&proxy.addr), vec![ok.clone(); 3]);
    runtime().block_on(async {
        pb::control_client::ControlClient::connect(format!("http://{}", proxy.addr))
            .await
            .unwrap()
            .reset(pb::ResetRequest::default())
            .await
            .unwrap();
    });
    assert_eq!(three_calls(&proxy.addr), vec![ok; 3]);
    let p = proxy.proxy.as_ref().unwrap();
    assert_eq!(p.shared().stats().received, 3, "the strategy's own");
    let line = p.stopped_line();
    assert!(
        line.contains("Since it started (1 Control reset): received 6  executed 6  rejected 0"),
        "{line}"
    );
    assert!(
        line.contains("forwarded 6  sent upstream again (not processed) 2  "),
        "{line}"
    );
}

/// A call to `/acme.chat.v1.Chat/Talk` through the proxy at `addr`, driven by hand with the h2
/// crate's client: each step waits its time, then sends its bytes (with END_STREAM when it
/// says so). The `grpc-status` and `grpc-message` it ended with.
async fn streamed(addr: &str, steps: Vec<(Duration, Bytes, bool)>) -> (String, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = crate::common::grpc_post(&format!("http://{addr}/acme.chat.v1.Chat/Talk"))
        .header("grpc-timeout", "60S")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    tokio::spawn(async move {
        for (wait, bytes, end) in steps {
            Clock::Tokio.sleep(wait).await;
            if send.send_data(bytes, end).is_err() {
                return;
            }
        }
    });
    let said = |h: &http::HeaderMap, name: &str| {
        h.get(name)
            .map_or(String::new(), |v| v.to_str().unwrap().to_string())
    };
    let wait = Duration::from_secs(10);
    let head = Clock::Tokio.timeout(wait, response).await.unwrap().unwrap();
    if head.headers().contains_key("grpc-status") {
        let h = head.headers();
        return (said(h, "grpc-status"), said(h, "grpc-message"));
    }
    let mut body = head.into_body();
    while let Some(data) = Clock::Tokio.timeout(wait, body.data()).await.unwrap() {
        let _ = body.flow_control().release_capacity(data.unwrap().len());
    }
    let trailers = body.trailers().await.unwrap().unwrap_or_default();
    (
        said(&trailers, "grpc-status"),
        said(&trailers, "grpc-message"),
    )
}

/// A call whose request is not all with the proxy when it is forwarded, and whose stream
/// the upstream then does not process: the message comes after the headers, before the
/// GOAWAY (relayed to the lost stream, and kept: under [`KEPT`] bytes) or after it (still
/// with the client). Either way the proxy has all that was sent, sends the stream again on
/// the new connection and relays the rest there; the call ends OK.
#[test]
fn a_request_the_proxy_still_has_whole_is_sent_again() {
    for message_at in [50, 900] {
        let plan = GoAway {
            first_processed: false,
            wait: Duration::from_millis(300),
            ..GoAway::after(1)
        };
        let (upstream, seen) = goaway::listen(plan, 1);
        let proxy = start_with(CALM, Some(upstream), |_| {});
        let message = Bytes::from_static(&[0, 0, 0, 0, 1, 7]);
        let steps = vec![(Duration::from_millis(message_at), message, true)];
        let ended = runtime().block_on(streamed(&proxy.addr, steps));
        assert_eq!(
            ended,
            ("0".to_string(), String::new()),
            "at {message_at} ms"
        );
        let counts = forwarded_resent_received(&proxy);
        assert_eq!(counts, (1, 1, 1), "at {message_at} ms");
        assert_eq!(seen.streams.load(Ordering::SeqCst), 2, "at {message_at} ms");
    }
}

/// A client-streaming call more of whose request than the proxy keeps ([`KEPT`]) was relayed
/// to a stream the upstream then did not process: those bytes have left the proxy, so the
/// stream is not sent again (it would arrive without them); the call fails UNAVAILABLE,
/// saying why.
#[test]
fn a_streamed_request_partly_relayed_to_a_lost_stream_is_not_sent_again() {
    let plan = GoAway {
        first_processed: false,
        wait: Duration::from_millis(600),
        ..GoAway::after(1)
    };
    let (upstream, seen) = goaway::listen(plan, 1);
    let proxy = start_with(CALM, Some(upstream), |_| {});
    let mut large = vec![7u8; 5 + 2 * KEPT];
    large[..5].copy_from_slice(&[0, 0, 2, 0, 0]);
    let steps = vec![
        (Duration::from_millis(250), Bytes::from(large), false),
        (
            Duration::from_millis(900),
            Bytes::from_static(&[0, 0, 0, 0, 0]),
            true,
        ),
    ];
    let (status, message) = runtime().block_on(streamed(&proxy.addr, steps));
    assert_eq!(status, "14", "{message}");
    assert!(message.contains("GOAWAY"), "{message}");
    assert_eq!(forwarded_resent_received(&proxy), (1, 0, 1));
    assert_eq!(seen.streams.load(Ordering::SeqCst), 1);
}
