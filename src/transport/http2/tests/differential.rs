//! This client and the h2 crate's, answered the same script by the same raw server: every
//! stream must come out the same, as gRPC reads it (`:status`, `grpc-status` and pushback of
//! the head and the trailers), with the same message bytes and the same end (trailers, end of
//! stream, a reset and its code, not processed, or lost).
//!
//! Why: h2 is the reference this client replaced (docs/PERFORMANCE.md); where the two differ
//! on a valid server's frames, this one is wrong until shown otherwise. Both advertise the
//! same windows, so the scripts can send without waiting for either.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::super::driver::handshake_from;
use super::super::frame::{
    ACK, CANCEL, DATA, END_STREAM, HEADERS, Head, PREFACE, PROTOCOL_ERROR, REFUSED_STREAM,
    SETTINGS, WINDOW_UPDATE,
};
use super::super::{CONNECTION_WINDOW, Event, Exchange, STREAM_WINDOW};
use super::script::{Data, Extra, Head as Heads, Piece, render};
use super::{frame, request};
use crate::clock::Clock;
use crate::protocol::header::ResponseFields;

/// How a stream ended, as both clients can tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Trailers(ResponseFields),
    EndStream,
    Reset(u32),
    NotProcessed,
    Lost,
}

/// What a stream's caller saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    head: Option<ResponseFields>,
    data: Vec<u8>,
    end: Ending,
}

/// Requests with these body sizes, in order (the n-th is stream 2n + 1); the server answers
/// with `script` once it has read them all, and gives back window for every DATA it reads.
struct Scenario {
    name: &'static str,
    bodies: Vec<usize>,
    script: Vec<Piece>,
}

// === The server ===

async fn read_frame(io: &mut DuplexStream) -> Option<(Head, Vec<u8>)> {
    let mut head = [0u8; 9];
    io.read_exact(&mut head).await.ok()?;
    let head = Head::parse(&head)?;
    let mut payload = vec![0u8; head.len];
    io.read_exact(&mut payload).await.ok()?;
    Some((head, payload))
}

/// Reads the client's frames until it closes: acknowledges its SETTINGS, gives back the window
/// of its DATA, and writes the script once every request has ended.
async fn serve(mut io: DuplexStream, requests: usize, script: Vec<u8>) {
    let mut preface = [0u8; 24];
    io.read_exact(&mut preface).await.unwrap();
    assert_eq!(&preface[..], PREFACE);
    io.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    let (mut ended, mut answered) = (0, false);
    while let Some((head, payload)) = read_frame(&mut io).await {
        let mut out = Vec::new();
        match head.kind {
            SETTINGS if head.flags & ACK == 0 => out.extend(frame(SETTINGS, ACK, 0, &[])),
            DATA if !payload.is_empty() => {
                let n = (payload.len() as u32).to_be_bytes();
                out.extend(frame(WINDOW_UPDATE, 0, 0, &n));
                out.extend(frame(WINDOW_UPDATE, 0, head.id, &n));
            }
            _ => {}
        }
        if matches!(head.kind, HEADERS | DATA) && head.flags & END_STREAM != 0 {
            ended += 1;
        }
        if ended == requests && !answered {
            out.extend_from_slice(&script);
            answered = true;
        }
        if io.write_all(&out).await.is_err() {
            return;
        }
    }
}

// === The clients ===

async fn ours(io: DuplexStream, bodies: &[usize]) -> Vec<Outcome> {
    let (handle, driver) = handshake_from(Box::new(io), 1).await.unwrap();
    tokio::spawn(driver);
    let mut calls = Vec::new();
    for &n in bodies {
        let exchange = handle.open(request(b"/x", Bytes::from(vec![9; n]))).await;
        calls.push(tokio::spawn(our_outcome(exchange.unwrap())));
    }
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.unwrap());
    }
    outcomes
}

async fn our_outcome(mut exchange: Exchange) -> Outcome {
    let (mut head, mut data) = (None, Vec::new());
    let end = loop {
        match exchange.next().await {
            Event::Head(h) => head = Some(ResponseFields::of(&h)),
            Event::Data(d) => data.extend_from_slice(&d),
            Event::Trailers(t) => break Ending::Trailers(ResponseFields::of(&t)),
            Event::End => break Ending::EndStream,
            Event::Reset(code) => break Ending::Reset(code),
            Event::Broken(lost) if lost.processed.not_processed() => break Ending::NotProcessed,
            Event::Broken(_) => break Ending::Lost,
        }
    };
    Outcome { head, data, end }
}

async fn theirs(io: DuplexStream, bodies: &[usize]) -> Vec<Outcome> {
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .enable_push(false);
    let (mut client, connection) = builder.handshake::<_, Bytes>(io).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut calls = Vec::new();
    for &n in bodies {
        client = client.ready().await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri("http://test:1/x")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut send) = client.send_request(request, n == 0).unwrap();
        if n > 0 {
            send.send_data(Bytes::from(vec![9; n]), true).unwrap();
        }
        calls.push(tokio::spawn(async move {
            let outcome = their_outcome(response).await;
            drop(send);
            outcome
        }));
    }
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.unwrap());
    }
    outcomes
}

async fn their_outcome(response: h2::client::ResponseFuture) -> Outcome {
    let (mut head, mut data) = (None, Vec::new());
    let ended = |e: h2::Error, head: &Option<ResponseFields>| match e.reason() {
        _ if e.is_go_away() && e.is_remote() => Ending::NotProcessed,
        Some(reason) if e.is_reset() => {
            let code = u32::from(reason);
            if code == REFUSED_STREAM && head.is_none() {
                Ending::NotProcessed
            } else {
                Ending::Reset(code)
            }
        }
        _ => Ending::Lost,
    };
    let response = match response.await {
        Ok(response) => response,
        Err(e) => {
            let end = ended(e, &head);
            return Outcome { head, data, end };
        }
    };
    let status = response.status().as_str().to_owned();
    let fields = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    head = Some(ResponseFields::of(
        [(&b":status"[..], status.as_bytes())]
            .into_iter()
            .chain(fields),
    ));
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        match chunk {
            Ok(chunk) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
            }
            Err(e) => {
                let end = ended(e, &head);
                return Outcome { head, data, end };
            }
        }
    }
    let end = match body.trailers().await {
        Ok(Some(trailers)) => Ending::Trailers(ResponseFields::of(
            trailers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
        )),
        Ok(None) => Ending::EndStream,
        Err(e) => ended(e, &head),
    };
    Outcome { head, data, end }
}

/// Runs `scenario` against a client (`ours` or `theirs`).
async fn run<F, Fut>(scenario: &Scenario, client: F) -> Vec<Outcome>
where
    F: FnOnce(DuplexStream, Vec<usize>) -> Fut,
    Fut: Future<Output = Vec<Outcome>>,
{
    let (client_end, server_end) = tokio::io::duplex(1 << 20);
    let script = render(&scenario.script);
    tokio::spawn(serve(server_end, scenario.bodies.len(), script));
    let outcomes = client(client_end, scenario.bodies.clone());
    let within = Clock::Tokio
        .timeout(Duration::from_secs(10), outcomes)
        .await;
    within.unwrap_or_else(|_| panic!("{}: no outcome within 10 s", scenario.name))
}

// === The scripts ===

fn heads(stream: u32) -> Heads {
    Heads {
        stream,
        status: 200,
        end: false,
        pad: 0,
        split: false,
        grpc: None,
    }
}

fn head(stream: u32) -> Piece {
    Piece::Head(heads(stream))
}

fn datas(stream: u32, len: u16) -> Data {
    Data {
        stream,
        len,
        pad: 0,
        end: false,
    }
}

fn data(stream: u32, len: u16) -> Piece {
    Piece::Data(datas(stream, len))
}

fn trailers(stream: u32, code: u8) -> Piece {
    Piece::Trailers {
        stream,
        code,
        pushback: vec![],
    }
}

fn reset(stream: u32, code: u32) -> Piece {
    Piece::Reset { stream, code }
}

fn scenarios() -> Vec<Scenario> {
    let mut small_data = vec![head(0)];
    small_data.extend((0..300).map(|i| data(0, i % 5)));
    small_data.push(trailers(0, 0));
    let resets = [CANCEL, REFUSED_STREAM, PROTOCOL_ERROR, 0x0, 0x2, 0xb, 0x42];
    let mut reset_script: Vec<Piece> = (0..resets.len() as u32)
        .map(|s| reset(s, resets[s as usize]))
        .collect();
    let after = resets.len() as u32;
    reset_script.extend([head(after), data(after, 10), reset(after, CANCEL)]);
    reset_script.extend([head(after + 1), reset(after + 1, REFUSED_STREAM)]);
    vec![
        Scenario {
            name: "a response",
            bodies: vec![5],
            script: vec![head(0), data(0, 20), trailers(0, 0)],
        },
        Scenario {
            name: "Trailers-Only, and error statuses with pushback in trailers",
            bodies: vec![5, 5, 5],
            script: vec![
                Piece::Head(Heads {
                    grpc: Some(14),
                    end: true,
                    ..heads(0)
                }),
                head(1),
                Piece::Trailers {
                    stream: 1,
                    code: 8,
                    pushback: vec!["250"],
                },
                head(2),
                Piece::Trailers {
                    stream: 2,
                    code: 14,
                    pushback: vec!["10", "20"],
                },
            ],
        },
        Scenario {
            name: "RST_STREAM with several reasons, before and after the head",
            bodies: vec![5; resets.len() + 2],
            script: reset_script,
        },
        Scenario {
            name: "GOAWAY mid-flight: streams 5 and 7 above its last id 3",
            bodies: vec![5; 4],
            script: vec![
                head(0),
                Piece::Extra(Extra::GoAway(1)),
                data(0, 3),
                trailers(0, 0),
                head(1),
                trailers(1, 0),
            ],
        },
        Scenario {
            name: "padding, a 1xx response, CONTINUATION",
            bodies: vec![0, 5],
            script: vec![
                Piece::Head(Heads {
                    status: 100,
                    ..heads(0)
                }),
                Piece::Head(Heads { pad: 3, ..heads(0) }),
                Piece::Data(Data {
                    pad: 200,
                    ..datas(0, 7)
                }),
                Piece::Data(Data {
                    pad: 1,
                    end: true,
                    ..datas(0, 0)
                }),
                Piece::Head(Heads {
                    split: true,
                    ..heads(1)
                }),
                trailers(1, 0),
            ],
        },
        Scenario {
            name: "a response in 300 DATA frames of 0 to 4 bytes",
            bodies: vec![5],
            script: small_data,
        },
        Scenario {
            name: "window updates: a request body of 200,000 bytes, a 1 MB response",
            bodies: vec![200_000, 70_000],
            script: vec![
                Piece::Extra(Extra::Window(0, 1_000)),
                Piece::Extra(Extra::Window(1, 1_000)),
                head(0),
                data(0, 16_000),
                head(1),
                trailers(0, 0),
            ]
            .into_iter()
            .chain((0..64).map(|_| data(1, 16_000)))
            .chain([trailers(1, 0)])
            .collect(),
        },
    ]
}

/// The scripts above, to both clients: the same outcome for every stream.
#[tokio::test]
async fn this_client_and_h2s_see_the_same_streams() {
    for scenario in scenarios() {
        let mine = run(&scenario, |io, b| async move { ours(io, &b).await }).await;
        let h2s = run(&scenario, |io, b| async move { theirs(io, &b).await }).await;
        for (i, (a, b)) in mine.iter().zip(&h2s).enumerate() {
            assert_eq!(a, b, "{}: stream {}", scenario.name, 2 * i + 1);
        }
        let ends: Vec<&Ending> = mine.iter().map(|o| &o.end).collect();
        match scenario.name {
            name if name.starts_with("GOAWAY") => assert!(
                matches!(
                    ends[..],
                    [
                        Ending::Trailers(_),
                        Ending::Trailers(_),
                        Ending::NotProcessed,
                        Ending::NotProcessed
                    ]
                ),
                "{ends:?}"
            ),
            name if name.starts_with("RST") => {
                assert_eq!(ends[1], &Ending::NotProcessed);
                assert_eq!(ends[0], &Ending::Reset(CANCEL));
            }
            _ => assert!(
                ends.iter()
                    .all(|e| matches!(e, Ending::Trailers(_) | Ending::EndStream)),
                "{}: {ends:?}",
                scenario.name
            ),
        }
    }
}
