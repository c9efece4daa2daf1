//! Clients of the bounds tests of `serve` (tests/serve_limits.rs) and the proxy
//! (tests/proxy_bounds.rs): a well-behaved `Call` on a connection of its own, and a raw h2
//! client (the h2 crate's) that opens stream after stream and never reads an answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use resilbench::clock::Clock;
use resilbench::pb;

/// A raw h2 client's handle, to open streams with.
pub type Client = h2::client::SendRequest<Bytes>;

/// One `Call` at `addr` over a tonic connection of its own, within `limit`: `Ok` or the
/// status it ended with.
pub async fn one_call(addr: &str, id: &str, limit: Duration) -> Result<(), (tonic::Code, String)> {
    let call = async {
        let mut client = pb::backend_client::BackendClient::connect(format!("http://{addr}"))
            .await
            .map_err(|e| (tonic::Code::Unavailable, e.to_string()))?;
        client
            .call(pb::CallRequest {
                request_id: id.into(),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|s| (s.code(), s.message().to_string()))
    };
    Clock::Tokio.timeout(limit, call).await.unwrap_or_else(|_| {
        Err((
            tonic::Code::DeadlineExceeded,
            format!("no answer within {limit:?}"),
        ))
    })
}

/// An h2 connection to `addr` that never reads: its receive window is 0, so no DATA can
/// reach it. It may open 1,000 streams until the server's SETTINGS say how many; the caller
/// drives the connection (spawns it, or polls it to read what the server advertised).
pub async fn never_reading(
    addr: &str,
) -> (Client, h2::client::Connection<tokio::net::TcpStream, Bytes>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    h2::client::Builder::new()
        .initial_window_size(0)
        .initial_max_send_streams(1000)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap()
}

/// Opens `Backend/Call` streams on `client` (to `addr`) one after another, each sent `body`
/// (`end`: with the request's end) and held, never read, until `opened` counts `up_to` or
/// the client can open no more; then holds them all until aborted.
pub fn open_and_hold(
    mut client: Client,
    addr: &str,
    (body, end): (Bytes, bool),
    opened: Arc<AtomicU32>,
    up_to: u32,
) -> tokio::task::JoinHandle<()> {
    let uri = format!("http://{addr}/resilbench.v1.Backend/Call");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while opened.load(Ordering::SeqCst) < up_to {
            let Ok(ready) = client.ready().await else {
                return;
            };
            client = ready;
            let request = super::grpc_post(&uri).body(()).unwrap();
            let Ok((response, mut send)) = client.send_request(request, false) else {
                return;
            };
            let _ = send.send_data(body.clone(), end);
            held.push((response, send));
            opened.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
        std::future::pending::<()>().await;
    })
}

/// `n` [`one_call`]s at once at `addr` (ids `0` to `n - 1`), each within `limit`: how each
/// ended, in order.
pub async fn calls_at_once(
    addr: &str,
    n: usize,
    limit: Duration,
) -> Vec<Result<(), (tonic::Code, String)>> {
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let addr = addr.to_string();
            tokio::spawn(async move { one_call(&addr, &i.to_string(), limit).await })
        })
        .collect();
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    answers
}

/// What the Control service at `addr` (`serve`'s, or a proxy's) reports: `Stats`.
pub async fn control_stats(addr: &str) -> pb::BackendStats {
    pb::control_client::ControlClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .stats(pb::StatsRequest::default())
        .await
        .unwrap()
        .into_inner()
}
