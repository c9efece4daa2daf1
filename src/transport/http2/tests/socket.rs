//! The client through a socket: a pipe to an h2 server, or to a raw server that writes
//! frames by hand.

use std::future::{Future, poll_fn};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tonic::Code;

use super::super::driver::handshake_from;
use super::super::frame::{
    ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, FLOW_CONTROL_ERROR, GOAWAY, HEADERS, Head,
    LAST_STREAM_ID, MAX_FRAME, PADDED, PING, PREFACE, PROTOCOL_ERROR, RST_STREAM, SETTINGS,
    WINDOW_UPDATE,
};
use super::super::headers::MAX_HEADER_BLOCK;
use super::super::{Event, Exchange, Handle, STREAM_WINDOW};
use super::{GRPC_OK, STATUS_200, frame, request};
use crate::protocol::Pushback;
/// What gRPC reads in a header block, which the tests check.
use crate::protocol::header::ResponseFields as Fields;

/// A client connection over a pipe whose other end is `server`; its driver is spawned.
async fn connect(server: impl FnOnce(DuplexStream) + Send + 'static) -> Handle {
    connect_from(1, server).await
}

async fn connect_from(first_id: u32, server: impl FnOnce(DuplexStream)) -> Handle {
    let (client, server_end) = tokio::io::duplex(1 << 20);
    server(server_end);
    let (handle, driver) = handshake_from(Box::new(client), first_id).await.unwrap();
    tokio::spawn(driver);
    handle
}

/// An h2 server built by `builder` over `io`, each request handed to `each`.
fn h2_server<F, Fut>(io: DuplexStream, builder: h2::server::Builder, each: F)
where
    F: Fn(http::Request<h2::RecvStream>, h2::server::SendResponse<Bytes>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut conn = builder.handshake::<_, Bytes>(io).await.unwrap();
        while let Some(Ok((req, respond))) = conn.accept().await {
            tokio::spawn(each(req, respond));
        }
    });
}

async fn read_body(mut body: h2::RecvStream) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        all.extend_from_slice(&chunk);
    }
    all
}

fn ok_response() -> http::Response<()> {
    http::Response::builder().status(200).body(()).unwrap()
}

/// Every event of a stream, data joined, up to its end.
async fn events(mut stream: Exchange) -> (Option<Fields>, Vec<u8>, Event) {
    let (mut head, mut data) = (None, Vec::new());
    loop {
        match stream.next().await {
            Event::Head(h) => head = Some(Fields::of(&h)),
            Event::Data(d) => data.extend_from_slice(&d),
            end => return (head, data, end),
        }
    }
}

/// A request larger than HTTP/2's default windows goes out as the server opens them; the
/// response's headers, data and trailers (status and pushback) come back in order.
#[tokio::test]
async fn a_request_larger_than_the_windows_waits_for_window_updates() {
    let handle = connect(|io| {
        h2_server(
            io,
            h2::server::Builder::new(),
            |req, mut respond| async move {
                let body = read_body(req.into_body()).await;
                let mut send = respond.send_response(ok_response(), false).unwrap();
                let len = (body.len() as u32).to_be_bytes();
                send.send_data(Bytes::copy_from_slice(&len), false).unwrap();
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", "14".parse().unwrap());
                trailers.insert("grpc-retry-pushback-ms", "250".parse().unwrap());
                send.send_trailers(trailers).unwrap();
            },
        );
    })
    .await;
    let big = Bytes::from(vec![7u8; 1_000_000]);
    let stream = handle.open(request(b"/big", big)).await.unwrap();
    let (head, data, end) = events(stream).await;
    assert_eq!(head.unwrap().status, Some(200));
    assert_eq!(data, 1_000_000u32.to_be_bytes());
    let Event::Trailers(trailers) = end else {
        panic!("expected trailers, got {end:?}");
    };
    let trailers = Fields::of(&trailers);
    assert_eq!(trailers.grpc_status, Some(Code::Unavailable));
    assert_eq!(trailers.pushback, Some(Pushback::after_ms(250)));
}

/// The server's SETTINGS_MAX_CONCURRENT_STREAMS holds further streams back until one
/// ends (h2 would refuse the excess with REFUSED_STREAM).
#[tokio::test]
async fn the_servers_limit_of_streams_holds_new_ones_back() {
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (o, m) = (Arc::clone(&open), Arc::clone(&most));
    let handle = connect(move |io| {
        let mut builder = h2::server::Builder::new();
        builder.max_concurrent_streams(2);
        h2_server(io, builder, move |req, mut respond| {
            let (open, most) = (Arc::clone(&o), Arc::clone(&m));
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = open.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                read_body(req.into_body()).await;
                tokio::task::yield_now().await;
                open.fetch_sub(1, SeqCst);
                respond.send_response(ok_response(), true).unwrap();
            }
        });
    })
    .await;
    let calls = (0..6).map(|_| {
        let handle = handle.clone();
        tokio::spawn(async move {
            let stream = handle.open(request(b"/x", Bytes::from_static(b"hi"))).await;
            events(stream.unwrap()).await
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let (head, _, end) = call.await.unwrap();
        assert_eq!(head.unwrap().status, Some(200));
        assert!(matches!(end, Event::End), "{end:?}");
    }
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A stream that has to wait for a slot under the server's limit says so as the wait begins,
/// so a wait abandoned before any slot came (a deadline, a hedge that won) is told too; one
/// that finds a slot free says nothing.
#[tokio::test]
async fn a_wait_for_a_slot_is_told_as_it_begins_even_if_abandoned() {
    let handle = connect(move |io| {
        let mut builder = h2::server::Builder::new();
        builder.max_concurrent_streams(1);
        // Never answers: the first stream keeps the one slot.
        h2_server(io, builder, |_req, _respond| std::future::pending::<()>());
    })
    .await;
    let told = std::sync::atomic::AtomicU32::new(0);
    let tell = || {
        told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    };
    let first = handle
        .open_telling(request(b"/x", Bytes::from_static(b"hi")), tell)
        .await
        .unwrap();
    assert_eq!(told.load(std::sync::atomic::Ordering::SeqCst), 0);
    let second = crate::clock::Clock::Tokio
        .timeout(
            std::time::Duration::from_millis(50),
            handle.open_telling(request(b"/x", Bytes::from_static(b"hi")), tell),
        )
        .await;
    assert!(second.is_err(), "the second stream found a slot");
    assert_eq!(told.load(std::sync::atomic::Ordering::SeqCst), 1);
    drop(first);
}

/// An attempt dropped before its stream ended resets it with CANCEL (the server stops
/// working on it); the connection goes on.
#[tokio::test]
async fn a_dropped_exchange_resets_its_stream_with_cancel() {
    let (reset_tx, mut reset_rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = connect(move |io| {
        h2_server(io, h2::server::Builder::new(), move |req, mut respond| {
            let reset_tx = reset_tx.clone();
            async move {
                if req.uri().path() == "/hang" {
                    let reason = poll_fn(|cx| respond.poll_reset(cx)).await.unwrap();
                    reset_tx.send(reason).unwrap();
                } else {
                    respond.send_response(ok_response(), true).unwrap();
                }
            }
        });
    })
    .await;
    let mut hanging = handle
        .open(request(b"/hang", Bytes::from_static(b"x")))
        .await
        .unwrap();
    tokio::select! {
        _ = hanging.next() => panic!("the server does not answer"),
        _ = tokio::task::yield_now() => {}
    }
    drop(hanging);
    assert_eq!(reset_rx.recv().await, Some(h2::Reason::CANCEL));
    let after = handle.open(request(b"/ok", Bytes::from_static(b"x"))).await;
    assert!(matches!(events(after.unwrap()).await.2, Event::End));
}

/// HPACK with a server that allows no dynamic table: the size is signalled as 0 and no
/// field is indexed, so every request still decodes.
#[tokio::test]
async fn requests_decode_with_a_server_that_allows_no_header_table() {
    let handle = connect(|io| {
        let mut builder = h2::server::Builder::new();
        builder.header_table_size(0);
        h2_server(io, builder, |req, mut respond| async move {
            assert_eq!(req.headers()["content-type"], "application/grpc");
            let status = if req.uri().path() == "/p" { 200 } else { 404 };
            let response = http::Response::builder().status(status).body(()).unwrap();
            respond.send_response(response, true).unwrap();
        });
    })
    .await;
    for _ in 0..3 {
        let stream = handle.open(request(b"/p", Bytes::from_static(b"x"))).await;
        let (head, _, _) = events(stream.unwrap()).await;
        assert_eq!(head.unwrap().status, Some(200));
    }
    let s = handle.shared.lock();
    let s = &s.conn;
    assert_eq!((s.encoder.limit, s.encoder.entries.len()), (0, 0));
}

/// The raw frames a test server reads: the preface, then (type, flags, id, payload).
async fn read_frame(io: &mut DuplexStream) -> (u8, u8, u32, Vec<u8>) {
    let mut head = [0u8; 9];
    io.read_exact(&mut head).await.unwrap();
    let mut payload = vec![0u8; Head::parse(&head).unwrap().len];
    io.read_exact(&mut payload).await.unwrap();
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
    (head[3], head[4], id, payload)
}

/// Reads frames until a HEADERS frame, whose stream id it returns.
async fn next_request(io: &mut DuplexStream) -> u32 {
    loop {
        let (kind, _, id, _) = read_frame(io).await;
        if kind == HEADERS {
            return id;
        }
    }
}

/// A raw server: the preface read and SETTINGS sent, then `script` runs.
fn raw_server<F, Fut>(io: DuplexStream, script: F)
where
    F: FnOnce(DuplexStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut io = io;
        let mut preface = [0u8; 24];
        io.read_exact(&mut preface).await.unwrap();
        assert_eq!(&preface[..], PREFACE);
        io.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
        script(io).await;
    });
}

/// What a raw server may send that the h2 crate's server does not: padding, a header block
/// split over CONTINUATION, a 1xx response before the real one, a PING to acknowledge.
#[tokio::test]
async fn padding_continuation_informational_responses_and_pings() {
    let (pong_tx, pong_rx) = tokio::sync::oneshot::channel();
    let handle = connect(|io| {
        raw_server(io, |mut io| async move {
            let id = next_request(&mut io).await;
            let mut out = Vec::new();
            out.extend(frame(PING, 0, 0, b"12345678"));
            // 100 Continue (static `:status` name, literal value), then 200 in two parts.
            out.extend(frame(HEADERS, END_HEADERS, id, b"\x08\x03100"));
            out.extend(frame(HEADERS, PADDED, id, &[2, STATUS_200[0], 0, 0]));
            out.extend(frame(CONTINUATION, END_HEADERS, id, b""));
            out.extend(frame(DATA, PADDED, id, b"\x03abcxyz"));
            out.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, GRPC_OK));
            io.write_all(&out).await.unwrap();
            loop {
                let (kind, flags, _, payload) = read_frame(&mut io).await;
                if kind == PING && flags & ACK != 0 {
                    pong_tx.send(payload).unwrap();
                    return;
                }
            }
        });
    })
    .await;
    let stream = handle.open(request(b"/x", Bytes::from_static(b"x"))).await;
    let (head, data, end) = events(stream.unwrap()).await;
    assert_eq!(head.unwrap().status, Some(200));
    assert_eq!(data, b"abc");
    let Event::Trailers(trailers) = end else {
        panic!("{end:?}");
    };
    let trailers = Fields::of(&trailers);
    assert_eq!(trailers.grpc_status, Some(Code::Ok));
    assert_eq!(pong_rx.await.unwrap(), b"12345678");
}

/// GOAWAY: a stream above its last id ends as not processed, one at or below it runs to
/// its end, no stream is opened after it, and the connection ends with its last stream.
#[tokio::test]
async fn goaway_ends_unprocessed_streams_and_then_the_connection() {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let handle = connect(|io| {
        raw_server(io, |mut io| async move {
            let first = next_request(&mut io).await;
            let second = next_request(&mut io).await;
            let mut goaway = first.to_be_bytes().to_vec();
            goaway.extend(0u32.to_be_bytes());
            io.write_all(&frame(GOAWAY, 0, 0, &goaway)).await.unwrap();
            let mut out = frame(HEADERS, END_HEADERS, first, STATUS_200);
            out.extend(frame(HEADERS, END_HEADERS | END_STREAM, first, GRPC_OK));
            io.write_all(&out).await.unwrap();
            // The client closes the connection once its last stream has ended.
            let mut rest = Vec::new();
            io.read_to_end(&mut rest).await.unwrap();
            done_tx.send(second).unwrap();
        });
    })
    .await;
    let first = handle.open(request(b"/a", Bytes::from_static(b"x"))).await;
    let second = handle.open(request(b"/b", Bytes::from_static(b"x"))).await;
    let (_, _, end) = events(second.unwrap()).await;
    assert!(
        matches!(end, Event::Broken(ref why) if why.contains("GOAWAY")),
        "{end:?}"
    );
    let refused = handle.open(request(b"/c", Bytes::from_static(b"x"))).await;
    assert!(refused.is_err());
    let (head, _, end) = events(first.unwrap()).await;
    assert_eq!(head.unwrap().status, Some(200));
    assert!(matches!(end, Event::Trailers(_)), "{end:?}");
    assert_eq!(done_rx.await.unwrap(), 3);
}

/// Stream ids run out at 2^31-1: the last one is used, then no stream is opened and the
/// connection ends when that stream has.
#[tokio::test]
async fn the_connection_ends_when_its_stream_ids_run_out() {
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    let handle = connect_from(LAST_STREAM_ID, |io| {
        raw_server(io, |mut io| async move {
            let id = next_request(&mut io).await;
            let mut out = frame(HEADERS, END_HEADERS, id, STATUS_200);
            out.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, GRPC_OK));
            io.write_all(&out).await.unwrap();
            let mut rest = Vec::new();
            io.read_to_end(&mut rest).await.unwrap();
            closed_tx.send(id).unwrap();
        });
    })
    .await;
    let last = handle.open(request(b"/a", Bytes::from_static(b"x"))).await;
    let refused = handle.open(request(b"/b", Bytes::from_static(b"x"))).await;
    assert!(refused.err().unwrap().contains("stream ids"));
    assert!(matches!(events(last.unwrap()).await.2, Event::Trailers(_)));
    assert_eq!(closed_rx.await.unwrap(), LAST_STREAM_ID);
}

/// A broken connection ends every stream still going as lost.
#[tokio::test]
async fn a_broken_connection_ends_its_streams() {
    let handle = connect(|io| {
        raw_server(io, |mut io| async move {
            next_request(&mut io).await;
            drop(io);
        });
    })
    .await;
    let stream = handle.open(request(b"/a", Bytes::from_static(b"x"))).await;
    let (_, _, end) = events(stream.unwrap()).await;
    assert!(matches!(end, Event::Broken(_)), "{end:?}");
    assert!(
        handle
            .open(request(b"/b", Bytes::from_static(b"x")))
            .await
            .is_err()
    );
}

/// GOAWAY while a call waits for a stream slot: the call fails at once rather than
/// waiting for the open stream to end.
#[tokio::test]
async fn goaway_fails_the_calls_waiting_for_a_stream_slot() {
    let handle = connect(|io| {
        tokio::spawn(async move {
            let mut io = io;
            let mut preface = [0u8; 24];
            io.read_exact(&mut preface).await.unwrap();
            // One stream at a time (SETTINGS_MAX_CONCURRENT_STREAMS = 1).
            io.write_all(&frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 1]))
                .await
                .unwrap();
            let first = next_request(&mut io).await;
            let mut goaway = first.to_be_bytes().to_vec();
            goaway.extend(0u32.to_be_bytes());
            io.write_all(&frame(GOAWAY, 0, 0, &goaway)).await.unwrap();
            // The first call is never answered; the connection stays open.
            let mut rest = Vec::new();
            let _ = io.read_to_end(&mut rest).await;
        });
    })
    .await;
    let _first = handle
        .open(request(b"/a", Bytes::from_static(b"x")))
        .await
        .unwrap();
    let waiting = handle.open(request(b"/b", Bytes::from_static(b"x"))).await;
    assert!(waiting.err().unwrap().contains("GOAWAY"));
    // And the keeper would have been told to open another connection.
    crate::clock::Clock::Tokio
        .timeout(std::time::Duration::from_secs(5), handle.going_away())
        .await
        .unwrap();
}

/// A request with no body ends with its HEADERS frame.
#[tokio::test]
async fn a_request_without_a_body_ends_with_its_headers() {
    let handle = connect(|io| {
        h2_server(
            io,
            h2::server::Builder::new(),
            |req, mut respond| async move {
                assert!(req.body().is_end_stream());
                respond.send_response(ok_response(), true).unwrap();
            },
        );
    })
    .await;
    let stream = handle.open(request(b"/x", Bytes::new())).await.unwrap();
    assert_eq!(events(stream).await.0.unwrap().status, Some(200));
}

/// A header block that never ends (the CONTINUATION flood) ends the connection with a
/// GOAWAY(PROTOCOL_ERROR) once it passes its limit.
#[tokio::test]
async fn an_endless_header_block_ends_the_connection() {
    let (goaway_tx, goaway_rx) = tokio::sync::oneshot::channel();
    let handle = connect(|io| {
        raw_server(io, |mut io| async move {
            let id = next_request(&mut io).await;
            io.write_all(&frame(HEADERS, 0, id, STATUS_200))
                .await
                .unwrap();
            let filler = vec![0u8; MAX_FRAME];
            for _ in 0..=MAX_HEADER_BLOCK / MAX_FRAME {
                if io
                    .write_all(&frame(CONTINUATION, 0, id, &filler))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            loop {
                let (kind, _, _, payload) = read_frame(&mut io).await;
                if kind == GOAWAY {
                    goaway_tx.send(payload[4..8].to_vec()).unwrap();
                    return;
                }
            }
        });
    })
    .await;
    let stream = handle.open(request(b"/x", Bytes::from_static(b"x"))).await;
    let (_, _, end) = events(stream.unwrap()).await;
    assert!(
        matches!(end, Event::Broken(ref why) if why.contains("header block")),
        "{end:?}"
    );
    assert_eq!(goaway_rx.await.unwrap(), PROTOCOL_ERROR.to_be_bytes());
}

/// A stream's receive window is given back as its attempt takes the data; a server that
/// sends past the window gets the stream reset with FLOW_CONTROL_ERROR.
#[tokio::test]
async fn a_streams_window_is_given_back_as_its_data_is_taken() {
    let (update_tx, update_rx) = tokio::sync::oneshot::channel();
    let (reset_tx, reset_rx) = tokio::sync::oneshot::channel();
    let (more_tx, more_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = connect(|io| {
        raw_server(io, |mut io| async move {
            let id = next_request(&mut io).await;
            let chunk = vec![1u8; MAX_FRAME];
            let mut out = frame(HEADERS, END_HEADERS, id, STATUS_200);
            for _ in 0..64 {
                out.extend(frame(DATA, 0, id, &chunk));
            }
            io.write_all(&out).await.unwrap();
            loop {
                let (kind, _, on, payload) = read_frame(&mut io).await;
                if kind == WINDOW_UPDATE && on == id {
                    update_tx.send(payload).unwrap();
                    break;
                }
            }
            more_rx.await.unwrap();
            // Past the 2 MiB window, with nothing taken by the attempt.
            for _ in 0..=STREAM_WINDOW as usize / MAX_FRAME {
                io.write_all(&frame(DATA, 0, id, &chunk)).await.unwrap();
            }
            loop {
                let (kind, _, on, payload) = read_frame(&mut io).await;
                if kind == RST_STREAM && on == id {
                    reset_tx.send(payload).unwrap();
                    return;
                }
            }
        });
    })
    .await;
    let mut stream = handle
        .open(request(b"/x", Bytes::from_static(b"x")))
        .await
        .unwrap();
    let mut taken = 0;
    while taken < 64 * MAX_FRAME {
        match stream.next().await {
            Event::Head(_) => {}
            Event::Data(d) => taken += d.len(),
            other => panic!("{other:?}"),
        }
    }
    let increment = u32::from_be_bytes(update_rx.await.unwrap()[..4].try_into().unwrap());
    assert_eq!(increment as usize, 64 * MAX_FRAME);
    more_tx.send(()).unwrap();
    assert_eq!(reset_rx.await.unwrap(), FLOW_CONTROL_ERROR.to_be_bytes());
}
