//! `resilbench proxy` in front of real services: a gRPC service that is not resilbench's
//! (tonic's generated server, tests/common/foreign.rs) and `serve`'s backend. The proxy runs
//! in this process on a runtime of its own; `run` is the binary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use resilbench::backend::server::{self, Shared};
use resilbench::clock::Clock;
use resilbench::pb;
use resilbench::proxy::{Options, Proxy, threads};
use resilbench::results::Results;
use resilbench::transport::connection;
use tokio_util::sync::CancellationToken;

use crate::common::foreign::{self, Reflection};
use crate::common::{plan, stderr};
use crate::own_service::run;
use crate::proxy_faults::CALM;

/// Servers on a runtime thread of their own, stopped when dropped.
pub(crate) struct Running {
    pub(crate) addr: String,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A proxy with the faults of `toml` in front of `upstream` (or, without one, `serve`'s
/// backend of `toml`), on 127.0.0.1.
pub(crate) fn start(toml: &str, upstream: Option<String>) -> Running {
    start_with(toml, upstream, |_| {})
}

/// [`start`], the proxy's options changed by `tune`.
pub(crate) fn start_with(
    toml: &str,
    upstream: Option<String>,
    tune: impl FnOnce(&mut Options) + Send + 'static,
) -> Running {
    let plan = Arc::new(plan(toml));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let shared = Shared::new(plan);
            let stopped = async {
                let _ = stopped.await;
            };
            match upstream {
                Some(upstream) => {
                    let mut options = Options {
                        authority: upstream.clone().into_bytes().into(),
                        https: false,
                        max_call: Duration::from_secs(60),
                        added_latency: false,
                        log_attempts: false,
                        max_streams: 100,
                        max_calls: 10_000,
                        connection_bytes: 16 << 20,
                        total_bytes: 256 << 20,
                        outage: resilbench::proxy::faults::OutageMode::Status,
                        envoy_headers: false,
                        handshake_timeout: Some(Duration::from_secs(10)),
                        idle_timeout: Some(Duration::from_secs(300)),
                    };
                    tune(&mut options);
                    // As `resilbench proxy` runs: two threads, each with its own upstream
                    // connection (`--connections 1`: the default's two would make the
                    // upstream tests' counts of connections and streams less plain),
                    // client connections handed to them in turn.
                    let proxy = Proxy::unconnected(shared.clone(), options, Clock::Precise);
                    let plan = threads::Upstream {
                        connector: connection::tcp(&upstream),
                        connections: 1,
                        connect_timeout: Duration::from_secs(2),
                    };
                    let stop = CancellationToken::new();
                    let (mut servers, _upstreams) =
                        threads::start(&proxy, &plan, 2, &stop).await.unwrap();
                    tx.send((addr, Some(proxy), shared)).unwrap();
                    servers.accept(&listener, stopped).await;
                    drop(listener);
                    stop.cancel();
                    tokio::task::spawn_blocking(move || servers.join())
                        .await
                        .unwrap()
                        .unwrap();
                }
                None => {
                    tx.send((addr, None, shared.clone())).unwrap();
                    server::serve(listener, shared, stopped).await;
                }
            }
        });
    });
    let (addr, proxy, shared) = rx.recv().unwrap();
    Running {
        addr,
        proxy,
        shared,
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// The faults: keyed errors and an outage whose edges fall midway between calls (one call
/// every 50 ms), so both targets meet the same phase with every call.
pub(crate) const FAULTS: &str = r#"
name = "proxied"
seed = 11
[load]
rate = 20
duration = "2s"
deadline = "1s"
[backend]
latency = { dist = "fixed", value = "1ms" }
errors = { UNAVAILABLE = 0.2, INTERNAL = 0.05 }
[[phases]]
kind = "outage"
start = "525ms"
duration = "500ms"
[[strategies]]
name = "baseline"
[[strategies]]
name = "retry"
service_config = '{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.05s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}'
"#;

/// The same profile calling the foreign service's `Say` at `address`.
pub(crate) fn with_target(address: &str) -> String {
    format!("{FAULTS}\n{}", target_section(address))
}

/// A `[target]` calling the foreign service's `Say` at `address`, a proxy (`control = true`).
pub(crate) fn target_section(address: &str) -> String {
    let dir = foreign::proto_dir();
    format!(
        "[target]\naddress = \"{address}\"\nproto = [\"{}\"]\nimport_paths = [\"{}\"]\n\
         method = \"acme.echo.v1.Echo/Say\"\nrequest = '{{\"id\": \"{{{{call}}}}\"}}'\ncontrol = true\n",
        dir.join("acme/echo/v1/echo.proto").display(),
        dir.display()
    )
}

pub(crate) fn strategy<'a>(r: &'a Results, name: &str) -> &'a resilbench::results::StrategyResult {
    r.strategies.iter().find(|s| s.name == name).unwrap()
}

/// [`FAULTS`] run through a proxy in front of `upstream` (`[target]` calling `Say`) and run
/// directly against `serve`: the proxy and the results through it, once checked that the two
/// baselines met the same faults (statuses, backend received and executed equal: keyed
/// draws, the fault clock restarted at each strategy's reset) and that under retries the
/// backend's count of attempts is the client's, both ways.
pub(crate) fn through_and_direct(upstream: String) -> (Running, Results) {
    let proxy = start(FAULTS, Some(upstream));
    let dir = tempfile::tempdir().unwrap();
    let (out, through) = run(dir.path(), &with_target(&proxy.addr), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let through = through.unwrap();
    let served = start(FAULTS, None);
    let dir = tempfile::tempdir().unwrap();
    let (out, direct) = run(dir.path(), FAULTS, &["--target", &served.addr]);
    assert!(out.status.success(), "{}", stderr(&out));
    let direct = direct.unwrap();
    let (p, s) = (
        strategy(&through, "baseline"),
        strategy(&direct, "baseline"),
    );
    assert_eq!(p.status, s.status, "the same statuses through the proxy");
    let (pb_, sb) = (p.backend.as_ref().unwrap(), s.backend.as_ref().unwrap());
    assert_eq!(
        (pb_.received, pb_.executed),
        (sb.received, sb.executed),
        "the same backend counts"
    );
    for r in [&through, &direct] {
        let retry = strategy(r, "retry");
        let backend = retry.backend.as_ref().unwrap();
        assert!(
            retry.attempts.total > retry.counts.offered,
            "retries happened"
        );
        assert_eq!(
            backend.received, retry.attempts.total,
            "the backend's count of attempts is the client's"
        );
    }
    (proxy, through)
}

/// run → proxy → a tonic service meets the same faults as run → `serve` with the same
/// profile and seed ([`through_and_direct`]), an outage's UNAVAILABLE among them; the service
/// receives exactly the attempts the proxy forwarded, without resilbench's headers, with a
/// `grpc-timeout` no longer than the call's deadline.
#[test]
fn an_outage_through_the_proxy_meets_the_same_faults_as_serve() {
    let upstream = foreign::start(Reflection::None, None);
    let (proxy, through) = through_and_direct(upstream.addr.to_string());
    let baseline = strategy(&through, "baseline");
    assert!(
        baseline.status.get("UNAVAILABLE").copied().unwrap_or(0) >= 10,
        "{:?}",
        baseline.status
    );
    let forwarded = proxy
        .proxy
        .as_ref()
        .unwrap()
        .counts()
        .forwarded
        .load(Ordering::Relaxed);
    let seen = upstream.seen();
    assert_eq!(seen.len() as u64, forwarded);
    assert!(forwarded > 0);
    for call in &seen {
        assert!(
            call.metadata.keys().all(|k| !k.starts_with("resilbench-")),
            "{:?}",
            call.metadata
        );
        let left = call.metadata.get("grpc-timeout").expect("a deadline");
        let left = resilbench::protocol::timeout::parse(left).unwrap();
        assert!(left <= Duration::from_secs(1), "{left:?}");
    }
}

/// One `Backend/Call` to `addr` that the client gives up after 100 ms, before its answer (its
/// stream reset); then `settle` for the proxy and the upstream to see it.
fn call_given_up(addr: &str, settle: Duration) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let channel = resilbench::transport::grpc::endpoint(addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = pb::backend_client::BackendClient::new(channel);
        let call = client.call(pb::CallRequest {
            request_id: "1".into(),
            ..Default::default()
        });
        assert!(
            Clock::Tokio
                .timeout(Duration::from_millis(100), call)
                .await
                .is_err(),
            "cancelled before its answer"
        );
        Clock::Tokio.sleep(settle).await;
    });
}

/// A client that cancels its call resets the upstream's stream: the upstream (`serve`'s
/// backend, 300 ms per call, no deadline sent) counts the work as wasted, and the proxy counts
/// the reset.
#[test]
fn a_cancelled_call_resets_the_upstream_stream() {
    let slow = "[load]\nrate = 1\n[backend]\nlatency = { dist = \"fixed\", value = \"300ms\" }\n\
                [[strategies]]\nname = \"s\"\n";
    let upstream = start(slow, None);
    let calm = "[load]\nrate = 1\n[[strategies]]\nname = \"s\"\n";
    let proxy = start(calm, Some(upstream.addr.clone()));
    call_given_up(&proxy.addr, Duration::from_millis(600));
    let stats = upstream.shared.stats();
    assert_eq!((stats.received, stats.wasted), (1, 1), "{stats:?}");
    let counts = proxy.proxy.as_ref().unwrap().counts();
    assert_eq!(counts.cancelled.load(Ordering::Relaxed), 1);
    // The proxy's own fault model counts the attempt's work abandoned, as `serve` does.
    let own = proxy.shared.stats();
    assert_eq!(
        (own.received, own.executed, own.wasted),
        (1, 1, 1),
        "{own:?}"
    );
}

/// A client that leaves while the proxy itself holds its call (`--latency profile`: the
/// profile's 300 ms drawn before forwarding) ends the attempt there: never forwarded, its work
/// counted wasted by the proxy's fault model, no upstream stream to reset.
#[test]
fn a_call_cancelled_in_the_proxys_own_latency_is_never_forwarded() {
    let upstream = start(CALM, None);
    let slow = "[load]\nrate = 1\n[backend]\nlatency = { dist = \"fixed\", value = \"300ms\" }\n\
                [[strategies]]\nname = \"s\"\n";
    let proxy = start_with(slow, Some(upstream.addr.clone()), |o| {
        o.added_latency = true
    });
    call_given_up(&proxy.addr, Duration::from_millis(500));
    let counts = proxy.proxy.as_ref().unwrap().counts();
    assert_eq!(counts.forwarded.load(Ordering::Relaxed), 0);
    assert_eq!(counts.cancelled.load(Ordering::Relaxed), 0);
    let own = proxy.shared.stats();
    assert_eq!(
        (own.received, own.executed, own.wasted),
        (1, 1, 1),
        "{own:?}"
    );
    assert_eq!(upstream.shared.stats().received, 0);
}

/// An upstream nobody listens on: each call fails UNAVAILABLE at once, and the proxy goes on
/// serving (its Control service answers, the next call fails the same way).
#[test]
fn an_unreachable_upstream_fails_calls_at_once_and_the_proxy_keeps_serving() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    let calm = "[load]\nrate = 1\n[[strategies]]\nname = \"s\"\n";
    let proxy = start(calm, Some(nobody));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let channel = resilbench::transport::grpc::endpoint(&proxy.addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = pb::backend_client::BackendClient::new(channel.clone());
        // The first call may wait while the first connection attempt is made (2 s at most).
        for _ in 0..3 {
            let call = client.call(pb::CallRequest {
                request_id: "1".into(),
                ..Default::default()
            });
            let status = Clock::Tokio
                .timeout(Duration::from_secs(3), call)
                .await
                .expect("no hang")
                .unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
            assert!(
                status.message().contains("upstream unreachable"),
                "{status:?}"
            );
        }
        let stats = pb::control_client::ControlClient::new(channel)
            .stats(pb::StatsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stats.received, 3);
    });
    let counts = proxy.proxy.as_ref().unwrap().counts();
    assert_eq!(counts.unreachable.load(Ordering::Relaxed), 3);
}

/// `[target] control` is explicit: without it a target that is a proxy is sent nothing but
/// the calls (no Reset, no Stats: no backend figures, its counts not restarted between
/// strategies); with it, a service that is not a proxy is an error naming the key, exit 2.
#[test]
fn control_is_asked_of_a_target_only_when_the_profile_says_it_is_a_proxy() {
    let upstream = foreign::start(Reflection::None, None);
    let proxy = start(FAULTS, Some(upstream.addr.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let without = with_target(&proxy.addr).replace("control = true\n", "");
    let (out, results) = run(dir.path(), &without, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = results.unwrap();
    assert!(results.strategies.iter().all(|s| s.backend.is_none()));
    let attempts: u64 = results.strategies.iter().map(|s| s.attempts.total).sum();
    assert_eq!(
        proxy.shared.stats().received,
        attempts,
        "never reset: every strategy's attempts counted together"
    );
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run(dir.path(), &with_target(&upstream.addr.to_string()), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("control = true") && stderr(&out).contains("not a resilbench proxy"),
        "{}",
        stderr(&out)
    );
}

/// A brownout's `latency_factor` k (`--latency upstream`, the default) releases a unary
/// answer the upstream gave after `d` at `k·d` (docs/proxy.md), once: its message and
/// trailers, read while its head is held, are not stretched again from when the head was let
/// go (which took 6.4 s here, k³·d). k = 4, d = 100 ms: at least 400 ms, well under 1.5 s.
#[test]
fn a_brownout_stretches_an_upstream_answer_once_not_per_frame() {
    let slow = "[load]\nrate = 1\n[backend]\nlatency = { dist = \"fixed\", value = \"100ms\" }\n\
                [[strategies]]\nname = \"s\"\n";
    let upstream = start(slow, None);
    let brownout = "[load]\nrate = 1\n[[phases]]\nkind = \"brownout\"\nstart = \"0s\"\n\
                    duration = \"1h\"\nlatency_factor = 4.0\n[[strategies]]\nname = \"s\"\n";
    let proxy = start(brownout, Some(upstream.addr.clone()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let took = runtime.block_on(async {
        let channel = resilbench::transport::grpc::endpoint(&proxy.addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = pb::backend_client::BackendClient::new(channel);
        let start = Clock::Tokio.now();
        let answer = Clock::Tokio
            .timeout(
                Duration::from_secs(20),
                client.call(pb::CallRequest {
                    request_id: "1".into(),
                    ..Default::default()
                }),
            )
            .await;
        let took = Clock::Tokio.now() - start;
        assert!(matches!(answer, Ok(Ok(_))), "{answer:?}");
        took
    });
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "100 ms upstream × 4 took {took:?}"
    );
}
