//! What calling one's own service costs the client per call, against the built-in proto: the
//! request made from a JSON template (once when it has no placeholder; its placeholders'
//! fields per call; or parsed whole per call) and its metadata, through the same gRPC
//! transport, HTTP/2 client and TCP connection.
//!
//! Six kinds of request: `builtin` (`resilbench.v1.Backend/Call`, as every built-in profile
//! sends: a request id per call), and for tests/proto's `acme.echo.v1.Echo/Say`: `constant`
//! (no placeholder), `id` (one placeholder, the request id, like the built-in's), `fields`
//! (four placeholders in singular fields, and a templated header), `list` (two placeholders in
//! singular fields and one in a list, and the header: its fields per call, the list whole),
//! `parsed` (a placeholder in a `Timestamp`, whose JSON is not its fields: the message parsed
//! per call). Two measures each:
//! - encoding alone: 200,000 framed requests, time and allocations per call;
//! - the client at a fixed rate (20,000 calls/s by default): calls sent on a 1 ms tick to a
//!   minimal HTTP/2 server in another process over loopback TCP (so this process counts the
//!   client alone), the client thread's CPU time (CLOCK_THREAD_CPUTIME_ID) and the process's
//!   allocations per call. The kinds take turns round after round, so a busy moment of a
//!   shared machine falls on all of them; each kind's median round is printed, with the load
//!   average before and after.
//!
//! Allocations are counted by stats_alloc around the system allocator (the project forbids
//! the unsafe code a counting wrapper of mimalloc would take); the binary runs on mimalloc, on
//! which an allocation costs less than here.
//!
//! Run: `cargo bench --bench own_service -- [RATE] [SECONDS] [ROUNDS] [--only KIND]` (default
//! 20000 2 5, every kind; `--only` runs one kind, e.g. under a profiler). docs/PERFORMANCE.md
//! ("Calling one's own service") has the figures.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::Service;

use resilbench::call::{AttemptKind, Call, CallMeter};
use resilbench::clock::Clock;
use resilbench::profile::Method;
use resilbench::profile::target::Values;
use resilbench::schema::request::Encoding;
use resilbench::schema::{self, RequestTemplate};
use resilbench::transport::connection::{self, Connections};
use resilbench::transport::grpc::GrpcTransport;
use resilbench::transport::own::OwnService;

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const KINDS: [&str; 6] = ["builtin", "constant", "id", "fields", "list", "parsed"];

fn request(kind: &str) -> &'static str {
    match kind {
        "constant" => r#"{"id": "order-1", "n": 7, "mood": "MOOD_HAPPY", "detail": {"note": "x"}}"#,
        "id" => {
            r#"{"id": "{{request_id}}", "n": 7, "mood": "MOOD_HAPPY", "detail": {"note": "x"}}"#
        }
        "fields" => {
            r#"{"id": "order-{{call}}", "n": {{call}}, "mood": "{{choice MOOD_HAPPY MOOD_GRUMPY}}", "detail": {"note": "{{uuid}}"}}"#
        }
        "list" => r#"{"id": "order-{{call}}", "n": {{call}}, "tags": ["a", "{{choice x y}}"]}"#,
        _ => r#"{"id": "order-{{call}}", "at": "2026-01-0{{int 1 9}}T00:00:00Z"}"#,
    }
}

/// How `kind`'s request is encoded per call.
fn encoding(kind: &str) -> Option<Encoding> {
    match kind {
        "builtin" => None,
        "constant" => Some(Encoding::Once),
        "parsed" => Some(Encoding::Parsed),
        _ => Some(Encoding::Fields),
    }
}

/// The own service's calls for `kind`: the echo method, its request, an authorization header
/// (and a templated request id header for the `fields` and `parsed` kinds).
fn own(kind: &str) -> Arc<OwnService> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/proto");
    let pool = schema::proto::compile(&[dir.join("acme/echo/v1/echo.proto")], &[dir]).unwrap();
    let called = schema::find_method(&pool, "acme.echo.v1.Echo/Say").unwrap();
    let template = RequestTemplate::new(&called.input(), request(kind), 1, 10_000_000).unwrap();
    if let Some(expected) = encoding(kind) {
        assert_eq!(template.encoding(), expected, "{kind}");
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("authorization".to_string(), Values::one("Bearer t0k3n"));
    if matches!(kind, "fields" | "list" | "parsed") {
        metadata.insert("x-request-id".to_string(), Values::one("{{request_id}}"));
    }
    let service = OwnService::new(&called, template, "127.0.0.1", false, &metadata, 1).unwrap();
    Arc::new(service)
}

fn transport(kind: &str, connections: Connections, clock: &Clock) -> GrpcTransport {
    if kind == "builtin" {
        GrpcTransport::new(connections, "127.0.0.1:1", 0, clock.clone(), None).unwrap()
    } else {
        GrpcTransport::own(connections, own(kind), clock.clone())
    }
}

fn call(id: u64, clock: &Clock) -> Call {
    let now = clock.now();
    Call {
        id,
        intended: now,
        deadline: now + Duration::from_secs(10),
        previous_attempts: 0,
        ordinal: 0,
        kind: AttemptKind::Original,
        warmup: false,
        payload_bytes: 0,
        method: Method::Unary,
        idempotency_key: false,
        sent_deadline: Some(now + Duration::from_secs(10)),
        meter: Arc::new(CallMeter::default()),
        commit: None,
        transparent: resilbench::profile::flavor::Transparent::A6,
    }
}

/// This thread's CPU time.
fn cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Encoding alone: nanoseconds (thread CPU) and allocations per framed request.
fn encode_alone(kind: &str, calls: u64) -> (f64, f64) {
    let (own, builtin) = (own(kind), kind == "builtin");
    let payload = bytes::Bytes::new();
    let region = Region::new(GLOBAL);
    let start = cpu();
    let mut bytes = 0usize;
    for id in 0..calls {
        let body = if builtin {
            resilbench::protocol::message::encode(&resilbench::pb::CallRequest {
                request_id: id.to_string(),
                payload: payload.clone(),
                script: vec![],
            })
        } else {
            own.body(id).unwrap()
        };
        bytes += body.len();
    }
    let ns = (cpu() - start).as_nanos() as f64 / calls as f64;
    let allocs = region.change().allocations as f64 / calls as f64;
    assert!(bytes > 0);
    (ns, allocs)
}

/// One round: `rate` calls per second for `seconds` over `connections`, on a 1 ms tick; the
/// client thread's CPU µs and the allocations per call, and the calls answered OK.
async fn round(kind: &str, addr: &str, rate: u64, seconds: u64) -> (f64, f64, u64) {
    let clock = Clock::Tokio;
    let connections = Connections::open(connection::tcp(addr), 1, &clock);
    connections.established().await.unwrap();
    let transport = transport(kind, connections, &clock);
    let per_tick = rate / 1000;
    let total = per_tick * 1000 * seconds;
    let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let region = Region::new(GLOBAL);
    let start = cpu();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut next = clock.now();
    for tick in 0..1000 * seconds {
        next += Duration::from_millis(1);
        clock.sleep_until(next).await;
        for i in 0..per_tick {
            let (mut t, ok) = (transport.clone(), Arc::clone(&ok));
            let c = call(tick * per_tick + i, &clock);
            tasks.push(tokio::spawn(async move {
                if t.call(c).await.is_ok() {
                    ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let us = (cpu() - start).as_secs_f64() * 1e6 / total as f64;
    let allocs = region.change().allocations as f64 / total as f64;
    (us, allocs, ok.load(std::sync::atomic::Ordering::Relaxed))
}

/// The minimal server (in a child process): every request's stream is answered with a head,
/// one message (a `CallReply` with attempt 1, which the built-in client decodes) and
/// `grpc-status: 0`; window given back for every DATA.
fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        loop {
            let (io, _) = listener.accept().await.unwrap();
            io.set_nodelay(true).unwrap();
            tokio::spawn(answer(io));
        }
    });
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, id: u32, payload: &[u8]) {
    out.put_uint(payload.len() as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(id);
    out.extend_from_slice(payload);
}

async fn answer(mut io: tokio::net::TcpStream) {
    let mut preface = [0u8; 24];
    if io.read_exact(&mut preface).await.is_err() {
        return;
    }
    let mut out = Vec::new();
    frame(&mut out, 0x4, 0, 0, &[]);
    let _ = io.write_all(&out).await;
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
                frame(&mut out, 0x0, 0, id, &[0, 0, 0, 0, 2, 0x10, 0x01]);
                let trailers = hpack.encode([(&b"grpc-status"[..], &b"0"[..])]);
                frame(&mut out, 0x1, 0x5, id, &trailers);
            }
        }
        if !out.is_empty() && io.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        return serve();
    }
    let numbers: Vec<u64> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let rate = numbers.first().copied().unwrap_or(20_000).max(1000);
    let seconds = numbers.get(1).copied().unwrap_or(2).max(1);
    let rounds = numbers.get(2).copied().unwrap_or(5).max(1);
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    let kinds: Vec<&str> = KINDS
        .into_iter()
        .filter(|k| only.as_deref().is_none_or(|o| o == *k))
        .collect();
    assert!(!kinds.is_empty(), "--only takes one of {KINDS:?}");
    println!("load average before: {}", load());
    println!("\nencoding alone (200,000 calls):");
    println!("{:<10} {:>10} {:>14}", "kind", "ns/call", "allocs/call");
    for &kind in &kinds {
        let (ns, allocs) = encode_alone(kind, 200_000);
        println!("{kind:<10} {ns:>10.0} {allocs:>14.2}");
    }
    let mut server = Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut results: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in 0..rounds {
        for &kind in &kinds {
            let (us, allocs, ok) = runtime.block_on(round(kind, &addr, rate, seconds));
            assert_eq!(ok, rate / 1000 * 1000 * seconds, "{kind}: calls failed");
            eprintln!("round {r} {kind}: {us:.2} us, {allocs:.2} allocs per call");
            let e = results.entry(kind).or_default();
            e.0.push(us);
            e.1.push(allocs);
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    println!("\nthe client at {rate} calls/s, {seconds} s a round, median of {rounds} rounds:");
    println!(
        "{:<10} {:>14} {:>14} {:>12}",
        "kind", "CPU us/call", "allocs/call", "vs builtin"
    );
    let base = results.get("builtin").map(|r| median(r.0.clone()));
    for &kind in &kinds {
        let (us, allocs) = results[kind].clone();
        let us = median(us);
        let versus = base.map_or("-".to_string(), |b| {
            format!("{:+.1}%", (us / b - 1.0) * 100.0)
        });
        println!(
            "{kind:<10} {us:>14.2} {:>14.2} {versus:>12}",
            median(allocs)
        );
    }
    println!("\nload average after: {}", load());
}
