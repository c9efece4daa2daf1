//! Virtual-time speed: simulated calls per wall second, for two transports on one plan.
//!
//! - `direct`: the backend called in process ([`DirectTransport`]), what `--clock virtual` uses.
//! - `grpc-mem`: resilbench's gRPC client ([`GrpcTransport`]) and the backend's gRPC server
//!   ([`server::serve_connections`]) over one in-memory HTTP/2 connection
//!   (`tokio::io::duplex`), with the backend on the same simulated clock as the driver.
//!
//! Run with `cargo bench --bench virtual_time`. For each plan it prints one row per transport
//! and checks that the runs agree (status counts, e2e p50 and p99, backend figures). A gRPC run
//! that disagrees gets no figure: the bench prints what went wrong instead, with the first
//! failure of each status as tonic reported it.
//!
//! Why two plans: while the backend was served by tonic's `Server`, the gRPC run misbehaved
//! with the default 1 s deadline: tonic's server enforced the `grpc-timeout` header it received
//! with `tokio::time::sleep` (and so did tonic's client, which this bench used until the client
//! moved onto h2 directly). On a simulated clock tokio's paused clock is only the idle detector
//! (see `clock::sim`): it moves 1 ms each time simulated time jumps to its next deadline, so at
//! 20,000 calls/s it runs about 40 times faster than simulated time, and a 1 s `grpc-timeout`
//! fired after some 25 ms of simulated time. The second plan moves the deadline out of that
//! timer's reach. Since the server keeps deadlines only on the backend's clock, both plans
//! agree (docs/PERFORMANCE.md).

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use resilbench::backend::server::{self, Shared};
use resilbench::backend::{Backend, BackendStats};
use resilbench::call::{Call, Failure, Outcome, Reply};
use resilbench::clock::Clock;
use resilbench::clock::sim::SimClock;
use resilbench::driver::{self, DriveSpec};
use resilbench::pb;
use resilbench::profile::{self, Overrides, Plan};
use resilbench::record::RunEnd;
use resilbench::record::{Recorder, RecorderConfig, State};
use resilbench::results::StrategyResult;
use resilbench::results::figures as summary;
use resilbench::strategy;
use resilbench::transport::BoxFuture;
use resilbench::transport::connection::{Connections, Connector, Io};
use resilbench::transport::direct::DirectTransport;
use resilbench::transport::grpc::{GrpcTransport, endpoint, status_to_failure};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Uri};
use tower::Service;

/// Constant 20,000 calls/s for 20 s of simulated time, lognormal service time (median 2 ms,
/// p99 20 ms), one strategy with no layers. `{deadline}` is filled in per plan.
const PROFILE: &str = r#"
name = "virtual-speed"
seed = 7
[load]
rate = 20000
duration = "20s"
deadline = "{deadline}"
[backend]
latency = { dist = "lognormal", median = "2ms", p99 = "20ms" }
[[strategies]]
name = "plain"
"#;

/// A gRPC run still going after this much wall time is reported as hung.
const HANG_LIMIT: Duration = Duration::from_secs(300);

/// Wall-clock time. Measuring simulated time against wall time is the point of this bench;
/// `clippy.toml` bans `std::time::Instant` because run code must read the run's clock, so the
/// wall clock is confined to this one type.
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

/// tokio's own paused clock, read (never waited on) to show how far it drifts from simulated
/// time: that drift is what tonic's and hyper's tokio timers see.
#[allow(clippy::disallowed_methods)]
fn tokio_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// What one run produced.
struct Run {
    result: StrategyResult,
    wall: Duration,
    /// Simulated time the run took.
    simulated: Duration,
    /// How far tokio's paused clock moved meanwhile.
    tokio_moved: Duration,
}

fn virtual_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused current-thread runtime")
}

/// Drives the plan's strategy through `transport` on `clock`, as the runner does.
async fn drive_one<T>(plan: &Plan, clock: &Clock, transport: T) -> (RecorderConfig, State, RunEnd)
where
    T: Service<Call, Response = Reply, Error = Failure> + Clone + Send + 'static,
    T::Future: Send + 'static,
{
    let s = &plan.strategies[0];
    let config = RecorderConfig {
        start: clock.now(),
        warmup: plan.load.warmup,
        duration: plan.load.duration,
        deadline: s.deadline,
    };
    let recorder = Arc::new(Recorder::new(config));
    let stack = strategy::build(s, transport, Arc::clone(&recorder) as _, clock, plan.seed);
    let spec = DriveSpec {
        load: &plan.load,
        phases: &plan.phases,
        seed: plan.seed,
        start: config.start,
        clock: clock.clone(),
        shard: None,
        wake_quantum: clock.wake_quantum(plan.load.wake_quantum),
    };
    // The strategy's call settings as these runs have always used them.
    let lane = resilbench::driver::Lane {
        stack,
        recorder: Arc::clone(&recorder),
        deadline: s.deadline,
        idempotency_keys: false,
        propagate_deadline: true,
        deadline_margin: Duration::ZERO,
        transparent: resilbench::profile::flavor::Transparent::A6,
    };
    let end = driver::drive(spec, lane, CancellationToken::new()).await;
    let state = recorder.finish().expect("finished once");
    (config, state, end)
}

/// Runs `body` on a fresh paused runtime with a simulated clock, timed on the wall clock.
fn timed<F, Fut>(body: F) -> Run
where
    F: FnOnce(Clock) -> Fut,
    Fut: Future<Output = (RecorderConfig, State, RunEnd, BackendStats)>,
{
    let wall = Wall::start();
    let runtime = virtual_runtime();
    let (result, simulated, tokio_moved) = runtime.block_on(async {
        let clock = Clock::Sim(SimClock::start());
        let (sim0, tokio0) = (clock.now(), tokio_now());
        let (config, state, end, backend) = body(clock.clone()).await;
        let result =
            summary::strategy_result("plain", 0, &config, state, end, Some(backend), false);
        (result, clock.now() - sim0, tokio_now() - tokio0)
    });
    drop(runtime);
    Run {
        result,
        wall: wall.elapsed(),
        simulated,
        tokio_moved,
    }
}

/// a. The backend called directly.
fn run_direct(plan: &Plan) -> Run {
    timed(|clock| async move {
        let backend = Backend::new(plan, 0, clock.clone());
        backend.begin(clock.now());
        let transport = DirectTransport::new(Arc::clone(&backend));
        let (config, state, end) = drive_one(plan, &clock, transport).await;
        (config, state, end, backend.stats())
    })
}

/// The backend's gRPC server and the client's half of one in-memory connection to it, the
/// backend waiting out service times on `clock`. The pipe cannot be reopened: once taken (or
/// closed), later connection attempts fail and their calls fail UNAVAILABLE.
async fn in_memory_server(plan: &Plan, clock: &Clock) -> (Shared, Pipe) {
    let shared = Shared::with_clock(Arc::new(plan.clone()), clock.clone());
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    // One connection: the stream yields the server's half and ends; the server goes on serving
    // the connection it accepted (in a task of its own) until its stop, which never comes.
    let incoming = tokio_stream::once(Ok::<_, std::io::Error>(server_io));
    tokio::spawn(server::serve_connections(
        shared.clone(),
        incoming,
        std::future::pending(),
    ));
    (shared, Arc::new(Mutex::new(Some(client_io))))
}

type Pipe = Arc<Mutex<Option<tokio::io::DuplexStream>>>;

fn take(pipe: &Pipe) -> std::io::Result<tokio::io::DuplexStream> {
    pipe.lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the in-memory connection closed and cannot be reopened",
            )
        })
}

/// A tonic channel over the pipe (for [`Probe`]).
async fn tonic_channel(pipe: Pipe) -> Channel {
    // tonic 0.14's connector must return hyper's IO traits: `TokioIo` adapts tokio's.
    let connector = tower::service_fn(move |_: Uri| {
        let io = take(&pipe);
        async move { io.map(TokioIo::new) }
    });
    endpoint("in-memory:50051")
        .expect("a valid endpoint")
        .connect_with_connector(connector)
        .await
        .expect("the in-memory connection")
}

/// b. resilbench's gRPC client and the backend's gRPC server over in-memory HTTP/2.
fn run_grpc(plan: &Plan) -> Run {
    timed(|clock| async move {
        let (shared, pipe) = in_memory_server(plan, &clock).await;
        let connector: Connector = Arc::new(move || {
            let io = take(&pipe);
            Box::pin(async move { io.map(|io| Box::new(io) as Box<dyn Io>) })
        });
        let connections = Connections::open(connector, 1, &clock);
        connections
            .established()
            .await
            .expect("the in-memory connection");
        let transport = GrpcTransport::new(
            connections,
            "in-memory:50051",
            plan.load.payload_bytes,
            clock.clone(),
            None,
        )
        .expect("a valid address");
        let (config, state, end) = drive_one(plan, &clock, transport).await;
        (config, state, end, shared.stats())
    })
}

/// The first failure of one status code seen by [`Probe`].
struct FirstFailure {
    count: u64,
    /// The status with its chain of sources.
    text: String,
    /// Simulated and tokio time since the start when it happened.
    at_sim: Duration,
    at_tokio: Duration,
}

type Seen = Arc<Mutex<BTreeMap<String, FirstFailure>>>;

/// The gRPC transport's request, sent with the generated client directly so that the status
/// message and its sources (which [`GrpcTransport`] reduces to a code) can be shown.
#[derive(Clone)]
struct Probe {
    client: pb::backend_client::BackendClient<Channel>,
    clock: Clock,
    origin: (tokio::time::Instant, tokio::time::Instant),
    seen: Seen,
}

impl Service<Call> for Probe {
    type Response = Reply;
    type Error = Failure;
    type Future = BoxFuture<Outcome>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let mut client = self.client.clone();
        let mut request = tonic::Request::new(pb::CallRequest {
            request_id: call.id.to_string(),
            payload: Default::default(),
            script: vec![],
        });
        request.set_timeout(call.deadline.saturating_duration_since(self.clock.now()));
        let (clock, origin, seen) = (self.clock.clone(), self.origin, Arc::clone(&self.seen));
        Box::pin(async move {
            match client.call(request).await {
                Ok(reply) => Ok(Reply {
                    backend_attempt: reply.get_ref().attempt,
                    messages: 0,
                    fallback: false,
                }),
                Err(status) => {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    let first = seen
                        .entry(format!("{:?}", status.code()))
                        .or_insert_with(|| {
                            let mut text = format!("{:?}: {}", status.code(), status.message());
                            let mut source = std::error::Error::source(&status);
                            while let Some(s) = source {
                                text.push_str(&format!(" <- {s}"));
                                source = s.source();
                            }
                            FirstFailure {
                                count: 0,
                                text,
                                at_sim: clock.now() - origin.0,
                                at_tokio: tokio_now() - origin.1,
                            }
                        });
                    first.count += 1;
                    Err(status_to_failure(&status, 0, false))
                }
            }
        })
    }
}

/// The gRPC run again with [`Probe`] as the transport, to see what the failures were.
fn probe_grpc(plan: &Plan) -> BTreeMap<String, FirstFailure> {
    let seen = Seen::default();
    let out = Arc::clone(&seen);
    timed(|clock| async move {
        let (shared, pipe) = in_memory_server(plan, &clock).await;
        let channel = tonic_channel(pipe).await;
        let transport = Probe {
            client: pb::backend_client::BackendClient::new(channel),
            origin: (clock.now(), tokio_now()),
            clock: clock.clone(),
            seen: out,
        };
        let (config, state, end) = drive_one(plan, &clock, transport).await;
        (config, state, end, shared.stats())
    });
    std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Runs `f` on a thread of its own, giving up after [`HANG_LIMIT`] of wall time.
fn watched<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG_LIMIT).ok()
}

fn status_counts(r: &StrategyResult) -> String {
    r.status
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn e2e(r: &StrategyResult) -> (f64, f64) {
    r.latency_ms
        .e2e
        .map_or((f64::NAN, f64::NAN), |l| (l.p50, l.p99))
}

/// Whether two runs of one plan produced the same figures.
fn agree(a: &StrategyResult, b: &StrategyResult) -> bool {
    a.counts == b.counts && a.status == b.status && e2e(a) == e2e(b) && a.backend == b.backend
}

fn header() {
    println!(
        "{:<9} {:>8} {:>7} {:>12} {:>8} {:>7} {:>7} {:>9}",
        "transport", "calls", "wall s", "sim calls/s", "ok", "p50 ms", "p99 ms", "tokio s"
    );
}

fn row(name: &str, run: &Run) {
    let r = &run.result;
    let wall = run.wall.as_secs_f64();
    let (p50, p99) = e2e(r);
    println!(
        "{name:<9} {:>8} {wall:>7.2} {:>12.0} {:>8} {p50:>7.3} {p99:>7.3} {:>9.1}",
        r.counts.sent,
        r.counts.sent as f64 / wall,
        r.counts.succeeded,
        run.tokio_moved.as_secs_f64(),
    );
}

fn plan_with_deadline(deadline: &str) -> Plan {
    let text = PROFILE.replace("{deadline}", deadline);
    profile::parse(
        &text,
        "virtual_time.toml",
        "virtual-speed",
        &Overrides::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs both transports on `plan` and prints how they compare.
fn compare(title: &str, plan: &Plan) {
    println!("\n{title}");
    header();
    let direct = run_direct(plan);
    row("direct", &direct);
    let p = plan.clone();
    let Some(grpc) = watched(move || run_grpc(&p)) else {
        println!(
            "grpc-mem  no figure: the run did not finish within {HANG_LIMIT:?} of wall time (hung)"
        );
        std::process::exit(1);
    };
    let (a, b) = (&direct.result, &grpc.result);
    let same = agree(a, b);
    if same {
        row("grpc-mem", &grpc);
    } else {
        println!(
            "grpc-mem  no figure: the run misbehaves ({} of {} calls ok; {})",
            b.counts.succeeded,
            b.counts.sent,
            status_counts(b)
        );
    }
    let ((a50, a99), (b50, b99)) = (e2e(a), e2e(b));
    println!(
        "check: ok {} vs {}, p50 {a50:.3} vs {b50:.3} ms, p99 {a99:.3} vs {b99:.3} ms, backend received {:?} vs {:?}: {}",
        a.counts.succeeded,
        b.counts.succeeded,
        a.backend.as_ref().map(|s| s.received),
        b.backend.as_ref().map(|s| s.received),
        if same { "agree" } else { "DISAGREE" }
    );
    let drift = direct.tokio_moved.as_secs_f64() / direct.simulated.as_secs_f64();
    println!(
        "tokio's paused clock moved {:.1} s during {:.1} s of simulated time ({drift:.0}x): a tokio timer of {:?} fires after ~{:.1} ms simulated",
        direct.tokio_moved.as_secs_f64(),
        direct.simulated.as_secs_f64(),
        plan.strategies[0].deadline,
        plan.strategies[0].deadline.as_secs_f64() * 1e3 / drift,
    );
    if !same {
        println!("what went wrong (the same run with the failures' messages kept):");
        let p = plan.clone();
        match watched(move || probe_grpc(&p)) {
            None => println!("  the probe run hung"),
            Some(seen) => {
                for f in seen.values() {
                    println!(
                        "  {} x, first at {:.6} s simulated ({:.3} s on tokio's clock): {}",
                        f.count,
                        f.at_sim.as_secs_f64(),
                        f.at_tokio.as_secs_f64(),
                        f.text
                    );
                }
            }
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no options.
    println!(
        "virtual time: constant 20,000 calls/s for 20 s simulated, lognormal median 2 ms p99 20 ms, one strategy, no layers"
    );
    compare(
        "plan 1: deadline 1s (the default; sent as grpc-timeout)",
        &plan_with_deadline("1s"),
    );
    compare(
        "plan 2: deadline 1h (grpc-timeout out of reach of tokio's drifting clock)",
        &plan_with_deadline("1h"),
    );
}
