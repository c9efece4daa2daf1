//! What `resilbench proxy` adds to the profile's faults (src/proxy/faults.rs): an outage
//! shown as a reset stream or a refused connection, Envoy's fault headers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use resilbench::clock::Clock;
use resilbench::pb;
use resilbench::proxy::faults::OutageMode;

use crate::common::clients::control_stats;
use crate::common::runtime;
use crate::proxy::start_with;

pub(crate) const CALM: &str = "[load]\nrate = 1\n[backend]\nlatency = { dist = \"fixed\", value = \"1ms\" }\n\
                    [[strategies]]\nname = \"s\"\n";

pub(crate) fn outage(start: &str) -> String {
    format!(
        "[load]\nrate = 1\n[[phases]]\nkind = \"outage\"\nstart = \"{start}\"\nduration = \"1h\"\n\
         [[strategies]]\nname = \"s\"\n"
    )
}

/// An h2 client connection to `addr` (the test's own HTTP/2 peer, written by others).
async fn h2_client(addr: &str) -> Result<h2::client::SendRequest<bytes::Bytes>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (client, connection) = h2::client::handshake(tcp)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(client)
}

/// One `Call` on `client`: the response's status (`grpc-status` from its head or its
/// trailers), or the HTTP/2 error that ended the stream.
async fn h2_call(
    client: &h2::client::SendRequest<bytes::Bytes>,
    id: &str,
) -> Result<u32, h2::Error> {
    let mut client = client.clone().ready().await?;
    let request = crate::common::grpc_post("http://proxy/resilbench.v1.Backend/Call")
        .header("resilbench-request-id", id)
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false)?;
    send.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)?;
    let response = response.await?;
    let status = |h: &http::HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    if let Some(s) = status(response.headers()) {
        return Ok(s);
    }
    let mut body = response.into_body();
    while body.data().await.transpose()?.is_some() {}
    let trailers = body.trailers().await?.unwrap_or_default();
    Ok(status(&trailers).unwrap_or(2))
}

/// `--outage reset` and `reset:CANCEL`: each call in the outage is reset with that HTTP/2
/// error code, nothing answered; the attempts are counted received as with `status`.
#[test]
fn an_outage_can_reset_each_stream_with_a_chosen_reason() {
    let upstream = start_with(CALM, None, |_| {});
    for (mode, reason) in [
        (OutageMode::Reset(7), h2::Reason::REFUSED_STREAM),
        (OutageMode::Reset(8), h2::Reason::CANCEL),
    ] {
        let proxy = start_with(&outage("0s"), Some(upstream.addr.clone()), move |o| {
            o.outage = mode;
        });
        runtime().block_on(async {
            let client = h2_client(&proxy.addr).await.unwrap();
            for i in 0..3 {
                let err = h2_call(&client, &i.to_string()).await.unwrap_err();
                assert_eq!(err.reason(), Some(reason), "{err:?}");
            }
            // The connection stays usable: Control still answers on it.
            let stats = control_stats(&proxy.addr).await;
            assert_eq!((stats.received, stats.executed), (3, 0));
        });
    }
    assert_eq!(upstream.shared.stats().received, 0, "nothing forwarded");
}

/// `--outage refuse`: a connection made before the outage is served, then closed at its
/// first call in the outage (the call fails, no answer); while the outage lasts, new
/// connections are reset before HTTP/2's handshake completes.
#[test]
fn an_outage_can_refuse_connections() {
    let upstream = start_with(CALM, None, |_| {});
    let proxy = start_with(&outage("1s"), Some(upstream.addr.clone()), |o| {
        o.outage = OutageMode::Refuse;
    });
    runtime().block_on(async {
        // The fault clock starts at the first connection (its refusal check).
        let client = h2_client(&proxy.addr).await.unwrap();
        assert_eq!(
            h2_call(&client, "before").await.unwrap(),
            0,
            "served before"
        );
        Clock::Tokio.sleep(Duration::from_millis(1200)).await;
        let broken = h2_call(&client, "during").await;
        assert!(broken.is_err(), "{broken:?}");
        for i in 0..3 {
            // (h2's handshake does not wait for the server: the call finds the reset.)
            let attempt = async {
                let client = h2_client(&proxy.addr).await?;
                h2_call(&client, &format!("new-{i}"))
                    .await
                    .map_err(|e| e.to_string())
            };
            let refused = Clock::Tokio
                .timeout(Duration::from_secs(5), attempt)
                .await
                .expect("no hang");
            assert!(
                refused.is_err(),
                "a new connection in the outage is refused"
            );
        }
    });
    let counts = proxy.proxy.as_ref().unwrap().counts();
    assert!(counts.refused_connections.load(Ordering::Relaxed) >= 3);
    assert_eq!(upstream.shared.stats().received, 1, "only the call before");
}

/// One `Call` through tonic with `headers` as metadata: its status code and how long it
/// took.
async fn call_with(
    addr: &str,
    id: &str,
    headers: &[(&'static str, &str)],
) -> (tonic::Code, Duration) {
    let mut client = pb::backend_client::BackendClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::CallRequest {
        request_id: id.into(),
        ..Default::default()
    });
    for (name, value) in headers {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    let t0 = Clock::Tokio.now();
    let code = match client.call(request).await {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    (code, Clock::Tokio.now() - t0)
}

/// With `--envoy-fault-headers`, a call asks for its own fault as with Envoy's fault filter:
/// a gRPC abort, an HTTP abort (503, read by the client as UNAVAILABLE), a delay, and an
/// abort for a percentage of calls (keyed: the same calls each time); aborted calls never
/// reach the upstream. Without the option the headers change nothing.
#[test]
fn envoy_fault_headers_abort_and_delay_calls_that_ask() {
    let upstream = start_with(CALM, None, |_| {});
    let proxy = start_with(CALM, Some(upstream.addr.clone()), |o| {
        o.envoy_headers = true
    });
    let plain = start_with(CALM, Some(upstream.addr.clone()), |_| {});
    runtime().block_on(async {
        let grpc = [("x-envoy-fault-abort-grpc-request", "8")];
        assert_eq!(
            call_with(&proxy.addr, "a", &grpc).await.0,
            tonic::Code::ResourceExhausted
        );
        let http = [("x-envoy-fault-abort-request", "503")];
        assert_eq!(
            call_with(&proxy.addr, "b", &http).await.0,
            tonic::Code::Unavailable
        );
        let delay = [("x-envoy-fault-delay-request", "300")];
        let (code, took) = call_with(&proxy.addr, "c", &delay).await;
        assert_eq!(code, tonic::Code::Ok);
        assert!(took >= Duration::from_millis(300), "{took:?}");
        let half = [
            ("x-envoy-fault-abort-grpc-request", "14"),
            ("x-envoy-fault-abort-request-percentage", "50"),
        ];
        let mut first = Vec::new();
        for i in 0..100 {
            first.push(call_with(&proxy.addr, &format!("p{i}"), &half).await.0);
        }
        let aborted = first
            .iter()
            .filter(|c| **c == tonic::Code::Unavailable)
            .count();
        assert!((30..=70).contains(&aborted), "{aborted} of 100 at 50%");
        assert_eq!(
            aborted + first.iter().filter(|c| **c == tonic::Code::Ok).count(),
            100
        );
        let before = upstream.shared.stats().received;
        assert_eq!(
            before,
            1 + 100 - aborted as u64,
            "aborted calls are not forwarded"
        );
        for (i, code) in first.iter().enumerate().take(20) {
            assert_eq!(
                call_with(&proxy.addr, &format!("p{i}"), &half).await.0,
                *code
            );
        }
        // Without --envoy-fault-headers: forwarded, answered by the upstream.
        assert_eq!(call_with(&plain.addr, "d", &grpc).await.0, tonic::Code::Ok);
    });
    let counts = proxy.proxy.as_ref().unwrap().counts();
    assert!(counts.envoy_aborts.load(Ordering::Relaxed) >= 2);
}
