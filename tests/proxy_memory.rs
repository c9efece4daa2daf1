//! What `resilbench proxy` holds in memory for a client's streaming requests, as the kernel
//! counts it: the proxy runs as its own process and its resident set is read from /proc. The
//! byte budgets (src/proxy/bounds.rs) count what a call holds; once a call's bytes no longer
//! count against them, the proxy must no longer hold them either.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilbench::clock::Clock;
use resilbench::proxy::KEPT;

use crate::common::{bin, grpc_post, runtime};
use crate::proxy_faults::CALM;

/// An upstream on the h2 crate's server that reads every request and never answers; the
/// bytes it has received, over all its streams.
async fn sink() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let got = Arc::clone(&counted);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = conn.accept().await {
                    let got = Arc::clone(&got);
                    tokio::spawn(async move {
                        let _unanswered = respond;
                        let mut body = request.into_body();
                        while let Some(Ok(data)) = body.data().await {
                            let _ = body.flow_control().release_capacity(data.len());
                            got.fetch_add(data.len(), Ordering::SeqCst);
                        }
                        std::future::pending::<()>().await;
                    });
                }
            });
        }
    });
    (addr, got)
}

/// `resilbench proxy` (one thread) with the calm profile, in front of `upstream`: the process
/// and the address it listens on.
fn proxy_process(dir: &Path, upstream: &str) -> (Child, String) {
    let profile = dir.join("calm.toml");
    std::fs::write(&profile, CALM).unwrap();
    let mut child = bin()
        .args([
            "proxy",
            profile.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--upstream", upstream, "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the proxy ended before it listened")
            .unwrap();
        if let Some(rest) = line.split(" listening on ").nth(1) {
            break rest.split(' ').next().unwrap().to_string();
        }
    };
    // Its standard error read to the end, so that it never waits on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// Process `pid`'s resident set, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Waits until the sink has received `want` bytes in all.
async fn until_received(got: &AtomicUsize, want: usize) {
    let waited = Clock::Tokio.timeout(Duration::from_secs(20), async {
        while got.load(Ordering::SeqCst) < want {
            Clock::Tokio.sleep(Duration::from_millis(5)).await;
        }
    });
    waited.await.unwrap_or_else(|_| {
        panic!(
            "the upstream received {} of {want} bytes",
            got.load(Ordering::SeqCst)
        )
    });
}

/// A client that opens stream after stream, each with a first message of 512 KiB (read
/// whole before the attempt is decided: a `Backend` call naming no request id, so what goes
/// with the upstream stream's HEADERS) and then, once that has gone upstream, more than the
/// proxy keeps to send a stream again ([`KEPT`]), and holds every stream open, unanswered.
/// Once those bytes have left the proxy they no longer count against its budgets, and the
/// proxy no longer holds them: when it held each stream's start until its call ended (a copy
/// kept to send the stream again, and the rest of the buffer it was read into; the budgets
/// counting nothing of either), 96 such streams took 52 MiB more of its memory (3.5 MiB now).
#[test]
fn a_streams_start_is_not_held_once_it_has_left_the_proxy() {
    if !Path::new("/proc/self/status").exists() {
        return;
    }
    const STREAMS: usize = 96;
    const MESSAGE: usize = 512 * 1024;
    const MORE: usize = KEPT + 16 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (upstream, got) = rt.block_on(sink());
    let (mut child, addr) = proxy_process(dir.path(), &upstream);
    let pid = child.id();
    let grown = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let mut open = Vec::new();
        let mut before = 0;
        for i in 0..=STREAMS {
            let mut client = client.clone().ready().await.unwrap();
            let request = grpc_post(&format!("http://{addr}/resilbench.v1.Backend/Call"))
                .header("grpc-timeout", "60S")
                .body(())
                .unwrap();
            let (response, mut send) = client.send_request(request, false).unwrap();
            let mut message = vec![0u8; 5 + MESSAGE];
            message[1..5].copy_from_slice(&(MESSAGE as u32).to_be_bytes());
            send.send_data(message.into(), false).unwrap();
            let sent = i * (5 + MESSAGE + MORE);
            until_received(&got, sent + 5 + MESSAGE).await;
            send.send_data(vec![0u8; MORE].into(), false).unwrap();
            until_received(&got, sent + 5 + MESSAGE + MORE).await;
            open.push((response, send));
            if i == 0 {
                before = resident_kib(pid);
            }
        }
        resident_kib(pid).saturating_sub(before)
    });
    let _ = child.kill();
    let _ = child.wait();
    let starts = (STREAMS * MESSAGE / 1024) as u64;
    assert!(
        grown < starts / 2,
        "the proxy's resident set grew {grown} KiB with {STREAMS} streams held open, their \
         starts {starts} KiB"
    );
}
