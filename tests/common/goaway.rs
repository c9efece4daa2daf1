//! A raw HTTP/2 server that goes away (GOAWAY) with streams in flight, written frame by frame
//! so that nothing of its client's reaches a server library first: the streams above its last
//! stream id were not processed (RFC 9113 6.8), and the test knows exactly which.
//!
//! Used by tests/transparent.rs (the client's own transparent retry) and tests/proxy_faults.rs
//! (the proxy sending such streams again upstream).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
/// The windows the server gives: the stream's and the connection's.
const WINDOW: u32 = 1 << 20;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// The largest stream id: the last stream id of a graceful shutdown's first GOAWAY.
const MAX_ID: u32 = 0x7fff_ffff;

/// How the server goes away once the streams it waits for have come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum How {
    /// One GOAWAY with the real last stream id.
    Abrupt,
    /// RFC 9113 6.8's graceful shutdown: GOAWAY with 2^31-1 and a PING; once the PING is
    /// acknowledged, a second GOAWAY with the real last stream id.
    Graceful,
}

/// What a going-away connection does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoAway {
    pub how: How,
    /// The HEADERS it waits for before going away.
    pub streams: usize,
    /// Whether it processes the first of them (its last stream id, answered OK); else its
    /// last stream id is 0 and nothing is processed.
    pub first_processed: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS it announces, if any.
    pub max_streams: Option<u32>,
    /// How long it waits, once its streams have come, before going away.
    pub wait: std::time::Duration,
}

impl GoAway {
    /// Abruptly after `streams` HEADERS, the first of them processed, no stream limit, at
    /// once.
    pub fn after(streams: usize) -> Self {
        Self {
            how: How::Abrupt,
            streams,
            first_processed: true,
            max_streams: None,
            wait: std::time::Duration::ZERO,
        }
    }
}

/// What the server saw, over all its connections.
#[derive(Debug, Default)]
pub struct Seen {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Streams opened (HEADERS received).
    pub streams: AtomicUsize,
    /// Streams answered OK.
    pub answered: AtomicUsize,
}

/// A frame: its 9-byte head and payload.
fn frame(kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(id.to_be_bytes());
    f.extend(payload);
    f
}

fn goaway_frame(last: u32) -> Vec<u8> {
    let mut payload = last.to_be_bytes().to_vec();
    payload.extend(0u32.to_be_bytes()); // NO_ERROR
    frame(GOAWAY, 0, 0, &payload)
}

/// An OK answer to stream `id`: one empty message and `grpc-status: 0`. HPACK: `:status: 200`
/// (static index 8) and `content-type` (static name 31), then `grpc-status` as literals
/// never indexed, so that the blocks are the same every time.
fn ok(id: u32) -> Vec<u8> {
    let mut head = vec![0x88, 0x0f, 31 - 15, 16];
    head.extend(b"application/grpc");
    let mut trailers = vec![0x00, 11];
    trailers.extend(b"grpc-status");
    trailers.extend([1, b'0']);
    let mut out = frame(HEADERS, END_HEADERS, id, &head);
    out.extend(frame(DATA, 0, id, &[0; 5]));
    out.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &trailers));
    out
}

/// The next frame: kind, flags, stream id, payload; `None` once the client has gone.
async fn next<R: AsyncRead + Unpin>(read: &mut R) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    read.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    read.read_exact(&mut payload).await.ok()?;
    let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & MAX_ID;
    Some((head[3], head[4], id, payload))
}

/// Serves one connection: if one of `left` (the connections still to go away) is left when
/// its first stream comes, it takes it and goes away as `plan` says; else it answers every
/// stream OK once its request has ended. Counts what it sees in `seen`.
pub async fn serve<T: AsyncRead + AsyncWrite + Send + 'static>(
    io: T,
    plan: GoAway,
    left: Arc<AtomicUsize>,
    seen: Arc<Seen>,
) {
    let (mut read, mut write) = tokio::io::split(io);
    let mut preface = [0u8; 24];
    if read.read_exact(&mut preface).await.is_err() {
        return;
    }
    seen.connections.fetch_add(1, Ordering::SeqCst);
    let mut goaway = None;
    // Windows of 1 MiB (SETTINGS_INITIAL_WINDOW_SIZE, and the connection's), so that a
    // client may send more than HTTP/2's default 64 KiB on a stream it never hears from.
    let mut settings = [&[0, 4][..], &WINDOW.to_be_bytes()].concat();
    if let Some(n) = plan.max_streams {
        settings.extend([0, 3]);
        settings.extend(n.to_be_bytes());
    }
    let _ = write.write_all(&frame(SETTINGS, 0, 0, &settings)).await;
    let more = WINDOW - 65_535;
    let _ = write
        .write_all(&frame(WINDOW_UPDATE, 0, 0, &more.to_be_bytes()))
        .await;
    let mut ids = Vec::new();
    while let Some((kind, flags, id, payload)) = next(&mut read).await {
        let reply = match kind {
            SETTINGS if flags & ACK == 0 => frame(SETTINGS, ACK, 0, &[]),
            PING if flags & ACK == 0 => frame(PING, ACK, 0, &payload),
            HEADERS => {
                seen.streams.fetch_add(1, Ordering::SeqCst);
                let take = |n: usize| n.checked_sub(1);
                if ids.is_empty()
                    && left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
                        .is_ok()
                {
                    goaway = Some(plan);
                }
                ids.push(id);
                if goaway.is_some_and(|g| ids.len() == g.streams) {
                    break;
                }
                Vec::new()
            }
            _ => Vec::new(),
        };
        let _ = write.write_all(&reply).await;
        if goaway.is_none() && matches!(kind, HEADERS | DATA) && flags & END_STREAM != 0 {
            seen.answered.fetch_add(1, Ordering::SeqCst);
            let _ = write.write_all(&ok(id)).await;
        }
    }
    let Some(g) = goaway else { return };
    resilbench::clock::Clock::Tokio.sleep(g.wait).await;
    let last = if g.first_processed { ids[0] } else { 0 };
    if g.how == How::Graceful {
        let _ = write.write_all(&goaway_frame(MAX_ID)).await;
        let _ = write.write_all(&frame(PING, 0, 0, b"goingnow")).await;
        loop {
            match next(&mut read).await {
                Some((PING, ACK, _, _)) => break,
                Some(_) => {}
                None => return,
            }
        }
    }
    let _ = write.write_all(&goaway_frame(last)).await;
    if g.first_processed {
        seen.answered.fetch_add(1, Ordering::SeqCst);
        let _ = write.write_all(&ok(last)).await;
    }
    let _ = write.flush().await;
    // The client closes the connection once its last stream has ended.
    let mut rest = Vec::new();
    let _ = read.read_to_end(&mut rest).await;
}

/// A server of [`serve`]'s connections on 127.0.0.1, on a thread of its own for the rest of
/// the test binary's life: the first `goaways` connections to open a stream go away as `plan`
/// says, the others answer. Its address, and what it sees.
pub fn listen(plan: GoAway, goaways: usize) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let left = Arc::new(AtomicUsize::new(goaways));
    let (tx, rx) = std::sync::mpsc::channel();
    let counted = Arc::clone(&seen);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, plan, Arc::clone(&left), Arc::clone(&counted)));
            }
        });
    });
    (rx.recv().unwrap(), seen)
}
