//! One whole run: each strategy in turn against a fresh backend, then the results.
//!
//! For every strategy the runner sets up a fresh backend from the same plan and seed (so every
//! strategy meets the same conditions), builds the strategy's stack over a transport to it,
//! drives the schedule, and collects the recorder's and the backend's figures.
//!
//! | clock | target | backend | transport |
//! |---|---|---|---|
//! | real | none | embedded gRPC server on 127.0.0.1:0, one per strategy | gRPC over TCP |
//! | real | `host:port` | `resilbench serve`, reset through its `Control` service | gRPC over TCP |
//! | virtual | none | in process | the backend called directly |

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::backend::server::{self, Shared};
use crate::backend::{Backend, BackendStats};
use crate::clock::Clock;
use crate::clock::sim::SimClock;
use crate::driver::{self, DriveSpec};
use crate::pb;
use crate::profile::Plan;
use crate::progress::Progress;
use crate::record::{Recorder, RecorderConfig, hlog};
use crate::results::figures::{self as summary, overall_generator};
use crate::results::trust::warnings;
use crate::results::{Environment, Results, SCHEMA, Shard, write_atomic};
use crate::strategy::{self, Stack};
use crate::transport::balance::RoundRobin;
use crate::transport::connection::{self, Connections};
use crate::transport::direct::DirectTransport;
use crate::transport::grpc::{self, GrpcTransport, endpoint};

/// Which clock the run follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockMode {
    /// Wall-clock time, real sockets.
    Real,
    /// A paused tokio clock that jumps from event to event; the backend runs in process.
    Virtual,
}

impl ClockMode {
    /// The clock of a run in this mode, started inside the run's runtime (a virtual clock: the
    /// paused, current-thread runtime; a real one: its reactor serves the timer).
    pub fn start(self) -> Clock {
        match self {
            ClockMode::Real => Clock::real(),
            ClockMode::Virtual => Clock::Sim(SimClock::start()),
        }
    }

    /// The name written in results.
    pub fn name(self) -> &'static str {
        match self {
            ClockMode::Real => "real",
            ClockMode::Virtual => "virtual",
        }
    }
}

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Real or virtual time.
    pub clock: ClockMode,
    /// A `resilbench serve` to send to instead of the embedded backend.
    pub target: Option<String>,
    /// Where progress goes.
    pub progress: Progress,
    /// Send only this shard's calls (`--shard K/N`).
    pub shard: Option<Shard>,
    /// Start each strategy's schedule at a fixed wall-clock time (`--start-at`), so that
    /// shards on several hosts line up: strategy k starts at `start_at + k × slot`.
    pub start_at: Option<SystemTime>,
}

/// How long one strategy may take on a shared timetable (`--start-at`): its warmup and
/// duration, the longest call deadline, the drain, and 2 s for connecting; a strategy that
/// overruns it starts the next one late, and that lateness is recorded as generator lag.
pub fn strategy_slot(plan: &Plan) -> Duration {
    let deadline = plan
        .strategies
        .iter()
        .map(|s| s.deadline)
        .max()
        .unwrap_or_default();
    plan.load.duration + deadline + DRAIN_REAL + Duration::from_secs(2)
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The options contradict each other.
    #[error("{0}")]
    Options(String),
    /// The target could not be reached.
    #[error("cannot reach the target {target}: {reason}")]
    Target {
        /// The address.
        target: String,
        /// Why.
        reason: String,
    },
    /// The embedded backend could not start.
    #[error("cannot start the embedded backend: {0}")]
    Embedded(String),
    /// The output could not be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why (not a `source`: the message already says it).
        error: std::io::Error,
    },
}

/// How long a real run waits, after its last call, for the backend to finish abandoned work.
pub const DRAIN_REAL: Duration = Duration::from_secs(5);

/// The same on a simulated clock, where waiting costs no wall time.
pub const DRAIN_VIRTUAL: Duration = Duration::from_secs(3600);

/// The backend side of one strategy's run.
enum Setup {
    /// In process (virtual time): one backend per replica.
    Direct(Vec<Arc<Backend>>),
    /// An embedded server on loopback hosting every replica.
    Embedded {
        shared: Shared,
        stop: oneshot::Sender<()>,
        server: JoinHandle<()>,
    },
    /// A `resilbench serve` elsewhere, and whether it has the Control service.
    Remote(pb::control_client::ControlClient<Channel>, bool),
}

impl Setup {
    /// `start_unix_ms`: the strategy's start on a shared timetable, which a remote target's
    /// reset is keyed by (see `ResetRequest`).
    async fn new(
        plan: &Plan,
        opts: &RunOptions,
        clock: &Clock,
        start_unix_ms: Option<u64>,
    ) -> Result<(Setup, Stack), RunError> {
        let replicas = plan.backend.replica_count();
        match (opts.clock, &opts.target) {
            (ClockMode::Virtual, Some(_)) => Err(RunError::Options(
                "--clock virtual runs the backend in process; it cannot drive a --target".into(),
            )),
            (ClockMode::Virtual, None) => {
                let backends = Backend::replicas(plan, clock);
                let transports = backends
                    .iter()
                    .map(|b| DirectTransport::new(Arc::clone(b)))
                    .collect();
                Ok((
                    Setup::Direct(backends),
                    Stack::new(RoundRobin::new(transports)),
                ))
            }
            (ClockMode::Real, None) => {
                let shared = Shared::unstarted(Arc::new(plan.clone()), clock.for_other_runtimes());
                let embedded = |e: std::io::Error| RunError::Embedded(e.to_string());
                let backend = backend_runtime().map_err(RunError::Embedded)?;
                let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(embedded)?;
                listener.set_nonblocking(true).map_err(embedded)?;
                let addr = listener.local_addr().map_err(embedded)?;
                let listener = {
                    let _backend = backend.enter();
                    TcpListener::from_std(listener).map_err(embedded)?
                };
                let (stop, stopped) = oneshot::channel::<()>();
                let server = backend.spawn(server::serve(listener, shared.clone(), async {
                    let _ = stopped.await;
                }));
                let transport =
                    grpc_replicas(&addr.to_string(), plan, clock, replicas, true).await?;
                Ok((
                    Setup::Embedded {
                        shared,
                        stop,
                        server,
                    },
                    transport,
                ))
            }
            (ClockMode::Real, Some(target)) => {
                let may_be_down = plan.load.target_may_be_down;
                let (channel, reached) = connect(target, clock, may_be_down).await?;
                let mut control = pb::control_client::ControlClient::new(channel);
                // A target without the Control service still runs; it just cannot report.
                // Nor can one that was down at the start.
                let reset = if reached {
                    control
                        .reset(pb::ResetRequest {
                            start_unix_ms: start_unix_ms.unwrap_or(0),
                        })
                        .await
                } else {
                    Err(tonic::Status::unimplemented("the target was down"))
                };
                let has_control = match reset {
                    Ok(_) => true,
                    Err(s) if s.code() == tonic::Code::Unimplemented => false,
                    Err(s) => {
                        return Err(RunError::Target {
                            target: target.clone(),
                            reason: s.message().to_string(),
                        });
                    }
                };
                let transport = grpc_replicas(target, plan, clock, replicas, reached).await?;
                Ok((Setup::Remote(control, has_control), transport))
            }
        }
    }

    /// Starts the backends' phase clocks at the strategy's time zero (a remote backend started
    /// its own at the reset, just before).
    fn begin(&self, start: Instant) {
        match self {
            Setup::Direct(backends) => backends.iter().for_each(|b| b.begin(start)),
            Setup::Embedded { shared, .. } => shared.begin(start),
            Setup::Remote(..) => {}
        }
    }

    /// The backend's figures for the strategy just run, and the backend stopped. Unless the
    /// run was interrupted, the backend first finishes the work callers abandoned (up to
    /// `drain`), so `executed` and `wasted` count it.
    /// The backend's figures after the drain; a remote target's are read at `read_at` when
    /// given (the end of a shared slot, once every shard is done).
    async fn finish(
        self,
        clock: &Clock,
        drain: Option<Duration>,
        read_at: Option<Instant>,
    ) -> Option<BackendStats> {
        async fn drained(backends: &[Arc<Backend>]) {
            for b in backends {
                b.drained().await;
            }
        }
        match self {
            Setup::Direct(backends) => {
                if let Some(limit) = drain {
                    let _ = clock.timeout(limit, drained(&backends)).await;
                }
                Some(Backend::combined(&backends))
            }
            Setup::Embedded {
                shared,
                stop,
                server,
            } => {
                let backends = shared.current();
                if let Some(limit) = drain {
                    let _ = clock.timeout(limit, drained(&backends)).await;
                    let _ = stop.send(());
                    let _ = clock.timeout(Duration::from_secs(2), server).await;
                } else {
                    server.abort();
                }
                Some(Backend::combined(&backends))
            }
            Setup::Remote(mut control, true) => {
                if let Some(at) = read_at {
                    clock.sleep_until(at).await;
                }
                control
                    .stats(pb::StatsRequest {})
                    .await
                    .ok()
                    .map(|r| server::from_pb(r.into_inner()))
            }
            Setup::Remote(_, false) => None,
        }
    }
}

/// The threads the embedded backend runs on, apart from the run's client thread (half the
/// cores, at least one), so that the two never wait for each other's turn on one thread.
/// Started at the first embedded run and kept for the life of the process.
fn backend_runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads((cores / 2).max(1))
                .thread_name("resilbench-backend")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Connections to the server at `addr` for each replica, each replica's named in its
/// requests, behind round-robin. When the server was `reachable`, they are open before the
/// schedule starts (so connecting is not part of the first calls' latency).
async fn grpc_replicas(
    addr: &str,
    plan: &Plan,
    clock: &Clock,
    replicas: usize,
    reachable: bool,
) -> Result<Stack, RunError> {
    let target_error = |reason: String| RunError::Target {
        target: addr.to_string(),
        reason,
    };
    let authority = grpc::authority(addr).map_err(target_error)?;
    let mut transports = Vec::with_capacity(replicas);
    for i in 0..replicas {
        let connections = Connections::open(
            connection::tcp(&authority),
            plan.load.connections as usize,
            clock,
        );
        if reachable {
            connections
                .established()
                .await
                .map_err(|e| target_error(e.0.to_string()))?;
        }
        let replica = (replicas > 1).then_some(i);
        let transport = GrpcTransport::new(
            connections,
            &authority,
            plan.load.payload_bytes,
            clock.clone(),
            replica,
        )
        .map_err(target_error)?;
        transports.push(transport);
    }
    Ok(Stack::new(RoundRobin::new(transports)))
}

/// Connects to `addr`, failing within about two seconds with the reason; or, when the
/// target `may_be_down`, saying so and returning a channel that connects when it can (and
/// `false`: not reached).
async fn connect(
    addr: &str,
    clock: &Clock,
    may_be_down: bool,
) -> Result<(Channel, bool), RunError> {
    let target_error = |reason: String| RunError::Target {
        target: addr.to_string(),
        reason,
    };
    let endpoint = endpoint(addr).map_err(|e| target_error(error_chain(&e)))?;
    let reason = match clock
        .timeout(Duration::from_secs(2), endpoint.connect())
        .await
    {
        Ok(Ok(channel)) => return Ok((channel, true)),
        Ok(Err(e)) => error_chain(&e),
        Err(_) => "no connection within 2 s".into(),
    };
    if !may_be_down {
        return Err(target_error(reason));
    }
    // Through the painter, in order with the progress of the strategies before.
    crate::progress::line(format!(
        "warning: cannot reach the target {addr}: {reason}; running anyway \
         (load.target_may_be_down): its calls fail with UNAVAILABLE until it answers"
    ));
    Ok((endpoint.connect_lazy(), false))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Runs every strategy of `plan` in turn on `clock` (from [`ClockMode::start`]). Cancelling
/// `stop` ends the run early; what was measured is still returned, marked partial.
pub async fn execute(
    plan: &Plan,
    opts: &RunOptions,
    clock: &Clock,
    stop: CancellationToken,
) -> Result<Results, RunError> {
    let start_time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let origin = clock.now();
    let mut strategies = Vec::with_capacity(plan.strategies.len());
    let mut partial = false;
    for (index, strategy) in plan.strategies.iter().enumerate() {
        if stop.is_cancelled() {
            partial = true;
            break;
        }
        // On a shared timetable the schedule starts at its slot's wall-clock time, whenever
        // this process got there: early, it waits; late, its calls are late (lag).
        let slot = opts
            .start_at
            .filter(|_| opts.clock == ClockMode::Real)
            .map(|at| at + strategy_slot(plan) * index as u32);
        let remote = opts.target.is_some();
        if let (Some(slot_start), true) = (slot, remote) {
            // A shared target is reset once per slot, a second before it starts: by then
            // every shard has finished the previous slot and read its figures.
            clock
                .sleep_until(clock.instant_at(slot_start - Duration::from_secs(1)))
                .await;
        }
        let (setup, transport) = Setup::new(plan, opts, clock, slot.map(unix_ms)).await?;
        let (start, start_ms) = match (opts.clock, slot) {
            (ClockMode::Real, Some(slot_start)) => {
                (clock.instant_at(slot_start), unix_ms(slot_start))
            }
            (ClockMode::Real, None) => (clock.now(), unix_ms(SystemTime::now())),
            (ClockMode::Virtual, _) => (
                clock.now(),
                clock.now().duration_since(origin).as_millis() as u64,
            ),
        };
        let config = RecorderConfig {
            start,
            warmup: plan.load.warmup,
            duration: plan.load.duration,
            deadline: strategy.deadline,
        };
        setup.begin(config.start);
        let recorder = Arc::new(Recorder::new(config));
        let stack = strategy::build(
            strategy,
            transport,
            Arc::clone(&recorder) as _,
            clock,
            plan.seed,
        );
        let ticker = opts
            .progress
            .begin(plan, index, Arc::clone(&recorder), clock);
        let spec = DriveSpec {
            load: &plan.load,
            phases: &plan.phases,
            seed: plan.seed,
            deadline: strategy.deadline,
            start: config.start,
            clock: clock.clone(),
            idempotency_keys: strategy.idempotency_keys,
            propagate_deadline: strategy.propagate_deadline,
            deadline_margin: strategy.deadline_margin,
            shard: opts.shard,
            wake_quantum: clock.wake_quantum(plan.load.wake_quantum),
        };
        let end = driver::drive(spec, stack, Arc::clone(&recorder), stop.clone()).await;
        // Nothing that ends after this point is counted.
        let state = recorder.finish().expect("the recorder is finished once");
        let drain = (!end.interrupted).then_some(match opts.clock {
            ClockMode::Real => DRAIN_REAL,
            ClockMode::Virtual => DRAIN_VIRTUAL,
        });
        // A shared target's figures are read at the end of the slot, once every shard's calls
        // (and their drain) are done.
        let read_at = slot
            .filter(|_| remote && !end.interrupted)
            .map(|s| clock.instant_at(s + strategy_slot(plan) - Duration::from_millis(1500)));
        let backend = setup.finish(clock, drain, read_at).await;
        let result = summary::strategy_result(
            &strategy.name,
            start_ms,
            &config,
            state,
            end,
            backend,
            plan.load.method == crate::profile::Method::Stream,
        );
        ticker.finish(&result);
        strategies.push(result);
        if end.interrupted {
            partial = true;
            break;
        }
    }
    let generator = overall_generator(&strategies);
    let warnings = warnings(&strategies, partial);
    Ok(Results {
        schema: SCHEMA.to_string(),
        profile: serde_json::to_value(plan).expect("a plan always serializes"),
        environment: environment(opts, start_time),
        partial,
        generator,
        warnings,
        strategies,
        shard: opts.shard,
        merged_from: Vec::new(),
    })
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn environment(opts: &RunOptions, start_time: String) -> Environment {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map_or_else(|| "unknown".to_string(), |h| h.trim().to_string());
    Environment {
        tool: format!("resilbench {}", env!("CARGO_PKG_VERSION")),
        host,
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        clock: opts.clock.name().to_string(),
        transport: match opts.clock {
            ClockMode::Real => "grpc",
            ClockMode::Virtual => "direct",
        }
        .to_string(),
        target: opts
            .target
            .clone()
            .unwrap_or_else(|| "embedded".to_string()),
        start_time,
    }
}

/// The default run folder: `reports/<profile>-<UTC timestamp>`.
pub fn default_out_dir(plan: &Plan) -> PathBuf {
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let base = Path::new("reports").join(format!("{}-{stamp}", hlog::tag_for(&plan.name)));
    // Two runs started in the same second get their own folders.
    let mut dir = base.clone();
    let mut n = 2;
    while dir.exists() {
        dir = base.with_file_name(format!(
            "{}-{n}",
            base.file_name().unwrap_or_default().to_string_lossy()
        ));
        n += 1;
    }
    dir
}

/// Creates the run folder, failing before the run if it cannot be written.
/// Returns whether the folder was created (so a run that fails can remove it again).
pub fn prepare_out_dir(dir: &Path) -> Result<bool, RunError> {
    let write = |error| RunError::Write {
        path: dir.to_path_buf(),
        error,
    };
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(write)?;
    let probe = dir.join(format!(".resilbench-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(write)?;
    let _ = std::fs::remove_file(probe);
    Ok(created)
}

/// Writes `results.json` and one `.hlog` per strategy into `dir`, each atomically. Returns the
/// path of `results.json`.
pub fn write_outputs(dir: &Path, results: &Results) -> Result<PathBuf, RunError> {
    for (s, name) in results.strategies.iter().zip(hlog::file_names(
        results.strategies.iter().map(|s| s.name.as_str()),
    )) {
        let path = dir.join(name);
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(s.start_ms);
        write_atomic(&path, &hlog::write(&s.intervals, started, &s.name))
            .map_err(|error| RunError::Write { path, error })?;
    }
    let path = dir.join("results.json");
    write_atomic(&path, results.to_json().as_bytes()).map_err(|error| RunError::Write {
        path: path.clone(),
        error,
    })?;
    Ok(path)
}
