//! The backend side of one strategy's run, and the stack's transport to it: in process
//! (virtual time), an embedded server on loopback, or a target elsewhere.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;

use tokio_util::sync::CancellationToken;

use super::service::Ready;
use super::target::{self, Budget, ControlFailure, connect};
use super::{ClockMode, RunError, RunOptions};
use crate::backend::server::{self, Shared};
use crate::backend::{Backend, BackendStats};
use crate::clock::Clock;
use crate::pb;
use crate::profile::Plan;
use crate::results::trust::BackendGap;
use crate::strategy::Stack;
use crate::transport::balance::RoundRobin;
use crate::transport::connection::{self, Connections};
use crate::transport::direct::DirectTransport;
use crate::transport::grpc::{self, GrpcTransport};

/// The backend side of one strategy's run.
pub(super) enum Setup {
    /// In process (virtual time): one backend per replica.
    Direct(Vec<Arc<Backend>>),
    /// An embedded server on loopback hosting every replica.
    Embedded {
        shared: Shared,
        stop: oneshot::Sender<()>,
        server: JoinHandle<()>,
    },
    /// The user's own service (`[target]`): no Control service is asked for, so nothing is
    /// reset and no backend figure is read. `unreachable`: it could not be reached when the
    /// strategy started (`load.target_may_be_down`).
    Own { unreachable: bool },
    /// A target elsewhere (`resilbench serve`, or any gRPC server).
    Remote {
        /// Its Control service's client.
        control: pb::control_client::ControlClient<Channel>,
        /// The instance number its `Reset` answered with, or why there was no reset.
        reset: Result<u64, BackendGap>,
        /// How long a Control call may take.
        timeout: Duration,
    },
}

impl Setup {
    /// `start_unix_ms`: the strategy's start on a shared timetable, which a remote target's
    /// reset is keyed by (see `ResetRequest`). `served_said`: whether this run already said
    /// the target serves another backend (said once per run).
    pub(super) async fn new(
        plan: &Plan,
        opts: &RunOptions,
        clock: &Clock,
        start_unix_ms: Option<u64>,
        served_said: &mut bool,
        own: Option<&Ready>,
    ) -> Result<(Setup, Stack), RunError> {
        if let Some(own) = own {
            return own_service(plan, opts, clock, own, start_unix_ms).await;
        }
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
                let budget = Budget::from_now(clock, opts.connect_timeout);
                let transport =
                    grpc_replicas(&addr.to_string(), plan, clock, replicas, true, budget).await?;
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
                let budget = Budget::from_now(clock, opts.connect_timeout);
                let (channel, reached) = connect(target, clock, may_be_down, budget).await?;
                let mut control = pb::control_client::ControlClient::new(channel);
                // A target without the Control service still runs; it just cannot report.
                // Nor can one that was down at the start.
                let reset = if reached {
                    let start = start_unix_ms.unwrap_or(0);
                    match target::reset(&mut control, clock, start, budget).await {
                        Ok(reply) => {
                            let served = &reply.served_json;
                            if !*served_said
                                && let Some(w) =
                                    crate::backend::served::warning(plan, target, served)
                            {
                                *served_said = true;
                                crate::progress::line(w);
                            }
                            Ok(reply.instance)
                        }
                        Err(ControlFailure::Unimplemented) => Err(BackendGap::NoControl),
                        Err(ControlFailure::NoAnswer(reason)) if may_be_down => {
                            crate::progress::line(format!(
                                "warning: the target {target} was reached but {reason}; running \
                                 anyway (load.target_may_be_down)"
                            ));
                            Err(BackendGap::Unreachable)
                        }
                        Err(ControlFailure::NoAnswer(reason)) => {
                            return Err(RunError::Control {
                                target: target.clone(),
                                reason,
                            });
                        }
                    }
                } else {
                    Err(BackendGap::Unreachable)
                };
                let answering = reset != Err(BackendGap::Unreachable);
                let transport =
                    grpc_replicas(target, plan, clock, replicas, answering, budget).await?;
                Ok((
                    Setup::Remote {
                        control,
                        reset,
                        timeout: opts.connect_timeout,
                    },
                    transport,
                ))
            }
        }
    }

    /// Starts the backends' phase clocks at the strategy's time zero (a remote backend started
    /// its own at the reset, just before).
    pub(super) fn begin(&self, start: Instant) {
        match self {
            Setup::Direct(backends) => backends.iter().for_each(|b| b.begin(start)),
            Setup::Embedded { shared, .. } => shared.begin(start),
            Setup::Own { .. } | Setup::Remote { .. } => {}
        }
    }

    /// The backend's figures for the strategy just run, and why they are missing or partial
    /// if they are; the backend stopped. Unless the run was interrupted, the backend first
    /// finishes the work callers abandoned (up to `drain`), so `executed` and `wasted` count
    /// it; a remote target's are read at `read_at` when given (the end of a shared slot, once
    /// every shard is done). Cancelling `stop` cuts every wait short (the drain, the slot,
    /// the `Stats` call): the figures are then read as they are.
    pub(super) async fn finish(
        self,
        clock: &Clock,
        drain: Option<Duration>,
        read_at: Option<Instant>,
        stop: &CancellationToken,
    ) -> (Option<BackendStats>, Option<BackendGap>) {
        async fn drained(backends: &[Arc<Backend>]) {
            for b in backends {
                b.drained().await;
            }
        }
        match self {
            // The user's service is sent nothing but the calls.
            Setup::Own { unreachable } => (
                None,
                Some(if unreachable {
                    BackendGap::Unreachable
                } else {
                    BackendGap::NotAsked
                }),
            ),
            Setup::Direct(backends) => {
                if let Some(limit) = drain {
                    unless_stopped(stop, clock.timeout(limit, drained(&backends))).await;
                }
                (Some(Backend::combined(&backends)), None)
            }
            Setup::Embedded {
                shared,
                stop: stop_server,
                server,
            } => {
                let backends = shared.current();
                if let Some(limit) = drain {
                    unless_stopped(stop, clock.timeout(limit, drained(&backends))).await;
                }
                if stop.is_cancelled() {
                    server.abort();
                } else {
                    let _ = stop_server.send(());
                    unless_stopped(stop, clock.timeout(Duration::from_secs(2), server)).await;
                }
                (Some(Backend::combined(&backends)), None)
            }
            Setup::Remote {
                mut control,
                reset,
                timeout,
            } => {
                let instance = match reset {
                    Ok(instance) => instance,
                    Err(gap) => return (None, Some(gap)),
                };
                if let Some(at) = read_at {
                    unless_stopped(stop, clock.sleep_until(at)).await;
                }
                let budget = Budget::from_now(clock, timeout);
                match unless_stopped(stop, target::stats(&mut control, clock, budget)).await {
                    Some(Ok(reply)) => {
                        // 0: a server that predates the instance number.
                        let restarted =
                            instance != 0 && reply.instance != 0 && reply.instance != instance;
                        (
                            Some(server::from_pb(reply)),
                            restarted.then_some(BackendGap::Restarted),
                        )
                    }
                    Some(Err(ControlFailure::Unimplemented)) => (None, Some(BackendGap::NoControl)),
                    Some(Err(ControlFailure::NoAnswer(reason))) => {
                        crate::progress::line(format!(
                            "warning: the target did not answer after the strategy: {reason}"
                        ));
                        (None, Some(BackendGap::Lost))
                    }
                    None => (None, Some(BackendGap::Interrupted)),
                }
            }
        }
    }
}

/// `future`'s output, or `None` if `stop` is cancelled first (then `future` is dropped).
pub(super) async fn unless_stopped<F: std::future::Future>(
    stop: &CancellationToken,
    future: F,
) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = stop.cancelled() => None,
        out = future => Some(out),
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

/// Connections to the user's own service, open before the schedule starts (unless it may be
/// down: then its calls fail UNAVAILABLE until it answers).
async fn own_service(
    plan: &Plan,
    opts: &RunOptions,
    clock: &Clock,
    own: &Ready,
    start_unix_ms: Option<u64>,
) -> Result<(Setup, Stack), RunError> {
    let address = plan
        .target
        .as_ref()
        .map_or_else(String::new, |t| t.address.clone());
    let proxy = proxy_control(plan, opts, clock, start_unix_ms).await?;
    let connections = Connections::open_with(
        Arc::clone(&own.connector),
        plan.load.connections as usize,
        clock,
        opts.connect_timeout,
    );
    let reached = connections.established().await;
    let unreachable = reached.is_err();
    if let Err(e) = reached {
        if !plan.load.target_may_be_down {
            return Err(RunError::Target {
                target: address,
                reason: e.0.to_string(),
            });
        }
        crate::progress::line(format!(
            "warning: cannot reach the target {address}: {}; running anyway \
             (load.target_may_be_down): its calls fail with UNAVAILABLE until it answers",
            e.0
        ));
    }
    let transport = GrpcTransport::own_with(
        connections,
        Arc::clone(&own.service),
        clock.clone(),
        proxy.is_some(),
    );
    let setup = match proxy {
        Some((control, instance)) => Setup::Remote {
            control,
            reset: Ok(instance),
            timeout: opts.connect_timeout,
        },
        None => Setup::Own { unreachable },
    };
    Ok((setup, Stack::new(RoundRobin::new(vec![transport]))))
}

/// A `[target]` with `control = true` is a `resilbench proxy` in front of the user's
/// service: it is reset (its fault clock restarts) and its figures are read as a `serve`
/// target's, and the calls carry resilbench's headers for its draws. Without it the service
/// is sent nothing but the calls (no Control call it did not ask for). A target that says
/// `control = true` and does not answer Control is an error naming the key: it is not the
/// proxy it was said to be (an unreachable one is left to the connections below, which say
/// so, or wait with load.target_may_be_down).
async fn proxy_control(
    plan: &Plan,
    opts: &RunOptions,
    clock: &Clock,
    start_unix_ms: Option<u64>,
) -> Result<Option<(pb::control_client::ControlClient<Channel>, u64)>, RunError> {
    let Some(target) = plan.target.as_ref().filter(|t| t.control) else {
        return Ok(None);
    };
    let Ok(address) = target.parsed_address() else {
        return Ok(None);
    };
    let socket = address.socket();
    let budget = Budget::from_now(clock, opts.connect_timeout);
    let Ok((channel, _)) = connect(&socket, clock, false, budget).await else {
        return Ok(None);
    };
    let mut control = pb::control_client::ControlClient::new(channel);
    let reply = match target::reset(&mut control, clock, start_unix_ms.unwrap_or(0), budget).await {
        Ok(reply) => reply,
        Err(ControlFailure::Unimplemented) => {
            return Err(RunError::Service(format!(
                "[target] control = true, but {} answers UNIMPLEMENTED to resilbench's Control \
                 service: it is not a resilbench proxy (point address at `resilbench proxy`, or \
                 leave control out for your service itself)",
                target.address
            )));
        }
        Err(ControlFailure::NoAnswer(reason)) => {
            return Err(RunError::Control {
                target: target.address.clone(),
                reason,
            });
        }
    };
    if let Some(w) = crate::backend::served::warning(plan, &socket, &reply.served_json) {
        crate::progress::line(w);
    }
    Ok(Some((control, reply.instance)))
}

/// Connections to the server at `addr` for each replica, each replica's named in its
/// requests, behind round-robin. When the server was `reachable`, they are open before the
/// schedule starts (so connecting is not part of the first calls' latency): every replica's at
/// once, each attempt bounded by the budget's timeout.
async fn grpc_replicas(
    addr: &str,
    plan: &Plan,
    clock: &Clock,
    replicas: usize,
    reachable: bool,
    budget: Budget,
) -> Result<Stack, RunError> {
    let target_error = |reason: String| RunError::Target {
        target: addr.to_string(),
        reason,
    };
    let authority = grpc::authority(addr).map_err(target_error)?;
    let opened: Vec<Connections> = (0..replicas)
        .map(|_| {
            Connections::open_with(
                connection::tcp(&authority),
                plan.load.connections as usize,
                clock,
                budget.timeout,
            )
        })
        .collect();
    if reachable {
        for connections in &opened {
            connections
                .established()
                .await
                .map_err(|e| target_error(e.0.to_string()))?;
        }
    }
    let mut transports = Vec::with_capacity(replicas);
    for (i, connections) in opened.into_iter().enumerate() {
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
