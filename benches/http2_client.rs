//! The HTTP/2 client alone: unary-shaped calls, a number of them at a time, over an in-memory
//! pipe to a raw HTTP/2 server in the same current-thread runtime, so the scheduling is the same
//! from run to run and the work per call can be counted, not only timed.
//!
//! Run with `cargo bench --bench http2_client -- CALLS CONCURRENT` (default 200,000 and 64):
//! it prints the wall time per call (server included). For a figure that holds on a shared
//! machine, count instructions instead: `valgrind --tool=cachegrind --cache-sim=no` on the
//! bench binary (`target/release/deps/http2_client-*`) with 20,000 calls. docs/PERFORMANCE.md
//! ("The HTTP/2 client split", issue 19) compares this client before and after the split of
//! `transport/wire.rs` so.
//!
//! Each call sends the headers `transport::grpc` sends and an 8-byte message; the server
//! answers with a head (`:status`, `content-type`), a 10-byte message and `grpc-status: 0`,
//! HPACK-encoded with a dynamic table as a real server's, and gives back the window of every
//! DATA it reads. The client reads the head and the trailers as `transport::grpc` does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use resilbench::protocol::header::ResponseFields;
use resilbench::transport::connection::Io;
use resilbench::transport::http2::{self, Event};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Wall-clock time, confined to this type: `clippy.toml` bans `std::time::Instant` because
/// run code must read the run's clock.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
struct Wall(std::time::Instant);

#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
impl Wall {
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, id: u32, payload: &[u8]) {
    out.put_uint(payload.len() as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(id);
    out.extend_from_slice(payload);
}

/// Answers every request as the backend's unary fast path would.
async fn server(mut io: DuplexStream) {
    let mut preface = [0u8; 24];
    io.read_exact(&mut preface).await.unwrap();
    let mut out = Vec::new();
    frame(&mut out, 0x4, 0, 0, &[]);
    io.write_all(&out).await.unwrap();
    let mut hpack = loona_hpack::Encoder::new();
    let mut read = BytesMut::with_capacity(1 << 16);
    while io.read_buf(&mut read).await.unwrap_or(0) > 0 {
        let mut out = Vec::new();
        while read.len() >= 9 {
            let len =
                (usize::from(read[0]) << 16) | (usize::from(read[1]) << 8) | usize::from(read[2]);
            if read.len() < 9 + len {
                break;
            }
            let (kind, flags) = (read[3], read[4]);
            let id = u32::from_be_bytes([read[5], read[6], read[7], read[8]]) & 0x7fff_ffff;
            read.advance(9 + len);
            if kind == 0x4 && flags & 0x1 == 0 {
                frame(&mut out, 0x4, 0x1, 0, &[]);
            }
            if kind == 0x0 && len > 0 {
                frame(&mut out, 0x8, 0, 0, &(len as u32).to_be_bytes());
            }
            if matches!(kind, 0x0 | 0x1) && flags & 0x1 != 0 {
                let head = hpack.encode([
                    (&b":status"[..], &b"200"[..]),
                    (b"content-type", b"application/grpc"),
                ]);
                frame(&mut out, 0x1, 0x4, id, &head);
                frame(&mut out, 0x0, 0, id, &[0, 0, 0, 0, 5, 8, 1, 16, 1, 24]);
                let trailers = hpack.encode([(&b"grpc-status"[..], &b"0"[..])]);
                frame(&mut out, 0x1, 0x5, id, &trailers);
            }
        }
        if !out.is_empty() && io.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// `calls` calls, `concurrent` at a time; how many ended OK.
async fn run(calls: usize, concurrent: usize) -> usize {
    let (client, server_end) = tokio::io::duplex(1 << 20);
    tokio::spawn(server(server_end));
    let (handle, driver) = http2::handshake(Box::new(client) as Box<dyn Io>)
        .await
        .unwrap();
    tokio::spawn(driver);
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..concurrent {
        let (handle, ok) = (handle.clone(), Arc::clone(&ok));
        let share = calls / concurrent + usize::from(t < calls % concurrent);
        tasks.push(tokio::spawn(async move {
            for i in 0..share {
                let mut attempt = itoa::Buffer::new();
                let fields = [
                    (&b"content-type"[..], &b"application/grpc"[..], true),
                    (b"te", b"trailers", true),
                    (b"grpc-timeout", b"999999u", false),
                    (
                        b"resilbench-attempt",
                        attempt.format(i % 3).as_bytes(),
                        false,
                    ),
                ];
                let request = http2::Request {
                    path: b"/resilbench.v1.Backend/Call",
                    authority: b"127.0.0.1:50051",
                    https: false,
                    fields: &fields,
                    body: Bytes::from_static(&[0, 0, 0, 0, 3, 10, 1, 49]),
                    end: true,
                };
                let mut stream = handle.open(request).await.unwrap();
                loop {
                    match stream.next().await {
                        Event::Head(head) => {
                            assert_eq!(ResponseFields::of(&head).status, Some(200))
                        }
                        Event::Data(data) => assert_eq!(data.len(), 10),
                        Event::Trailers(trailers) => {
                            if ResponseFields::of(&trailers).grpc_status == Some(tonic::Code::Ok) {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            break;
                        }
                        _ => break,
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    ok.load(Ordering::Relaxed)
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are the first two other arguments.
    let numbers: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let calls = numbers.first().copied().unwrap_or(200_000);
    let concurrent = numbers.get(1).copied().unwrap_or(64).clamp(1, calls.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wall = Wall::start();
    let ok = runtime.block_on(run(calls, concurrent));
    let per_call = wall.elapsed().as_secs_f64() * 1e6 / calls as f64;
    println!("{ok} of {calls} calls OK, {concurrent} at a time: {per_call:.3} us per call");
}
