//! The backend side of one strategy's run, and the stack's transport to it: in process
//! (virtual time), an embedded server on loopback, or a target elsewhere.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::target::connect;
use super::{ClockMode, RunError, RunOptions};
use crate::backend::server::{self, Shared};
use crate::backend::{Backend, BackendStats};
use crate::clock::Clock;
use crate::pb;
use crate::profile::Plan;
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
    /// A `resilbench serve` elsewhere, and whether it has the Control service.
    Remote(pb::control_client::ControlClient<Channel>, bool),
}

impl Setup {
    /// `start_unix_ms`: the strategy's start on a shared timetable, which a remote target's
    /// reset is keyed by (see `ResetRequest`).
    pub(super) async fn new(
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
                    Ok(reply) => {
                        let served = &reply.get_ref().served_json;
                        if let Some(w) = crate::backend::served::warning(plan, target, served) {
                            crate::progress::line(w);
                        }
                        true
                    }
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
    pub(super) fn begin(&self, start: Instant) {
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
    pub(super) async fn finish(
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
