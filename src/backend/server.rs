//! The backend on the wire: a tonic server for the `Backend` and `Control` services.
//!
//! [`serve`] takes an already-bound listener and a shutdown future (as mini-redis does), so the
//! embedded backend binds port 0 and tests stop it cleanly. Accepted connections get
//! `TCP_NODELAY`: without it, small gRPC frames wait for Nagle's algorithm and every reply is
//! late by up to the delayed-ACK timeout.

use std::future::Future;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::{Code, Request, Response, Status};

use super::{Backend, BackendStats, Incoming};
use crate::clock::Clock;
use crate::keyed::request_key;
use crate::pb;
use crate::profile::Plan;
use crate::status::PUSHBACK_HEADER;

/// Request header that marks warmup traffic, which the backend serves but does not count.
pub const WARMUP_HEADER: &str = "resilbench-warmup";

/// Request header of gRFC A6: how many attempts of this call came before this one.
pub const PREVIOUS_ATTEMPTS_HEADER: &str = "grpc-previous-rpc-attempts";

/// The backend behind a server. `Reset` swaps in a fresh instance; attempts already in
/// service finish on the old one.
#[derive(Debug, Clone)]
pub struct Shared {
    plan: Arc<Plan>,
    clock: Clock,
    current: Arc<RwLock<Arc<Backend>>>,
}

impl Shared {
    /// A server state with a fresh backend for `plan`, on the precise real-time timer.
    pub fn new(plan: Arc<Plan>) -> Self {
        Self::with_clock(plan, Clock::Precise)
    }

    /// A server state with a fresh backend for `plan`, waiting out service times on `clock`
    /// (the run's simulated clock, for a server on a paused runtime).
    pub fn with_clock(plan: Arc<Plan>, clock: Clock) -> Self {
        let backend = Backend::new(&plan, clock.clone());
        Self {
            plan,
            clock,
            current: Arc::new(RwLock::new(backend)),
        }
    }

    /// The backend now in service.
    pub fn current(&self) -> Arc<Backend> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the backend with a fresh one; returns the old one's figures.
    pub fn reset(&self) -> BackendStats {
        let fresh = Backend::new(&self.plan, self.clock.clone());
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *slot, fresh).stats()
    }
}

fn to_pb(s: BackendStats) -> pb::BackendStats {
    pb::BackendStats {
        received: s.received,
        executed: s.executed,
        rejected: s.rejected,
        queue_high_water: s.queue_high_water,
    }
}

/// Converts figures received from a `Control` call.
pub fn from_pb(s: pb::BackendStats) -> BackendStats {
    BackendStats {
        received: s.received,
        executed: s.executed,
        rejected: s.rejected,
        queue_high_water: s.queue_high_water,
    }
}

#[tonic::async_trait]
impl pb::backend_server::Backend for Shared {
    async fn call(
        &self,
        request: Request<pb::CallRequest>,
    ) -> Result<Response<pb::CallReply>, Status> {
        let meta = request.metadata();
        let previous_attempts = meta
            .get(PREVIOUS_ATTEMPTS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let warmup = meta.contains_key(WARMUP_HEADER);
        let body = request.into_inner();
        let incoming = Incoming {
            request_key: request_key(body.request_id.as_bytes()),
            previous_attempts,
            warmup,
        };
        let answer = self.current().handle(incoming).await;
        if answer.code == Code::Ok {
            return Ok(Response::new(pb::CallReply {
                request_id: body.request_id,
                attempt: answer.attempt,
            }));
        }
        let mut status = Status::new(answer.code, format!("attempt {}", answer.attempt));
        if let Some(value) = answer
            .pushback
            .and_then(|p| MetadataValue::try_from(p).ok())
        {
            status.metadata_mut().insert(PUSHBACK_HEADER, value);
        }
        Err(status)
    }
}

#[tonic::async_trait]
impl pb::control_server::Control for Shared {
    async fn reset(
        &self,
        _: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::BackendStats>, Status> {
        Ok(Response::new(to_pb(Shared::reset(self))))
    }

    async fn stats(
        &self,
        _: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::BackendStats>, Status> {
        Ok(Response::new(to_pb(self.current().stats())))
    }
}

/// The tonic router of the backend and its control service, ready to serve over any incoming
/// stream of connections (`serve_with_incoming` and friends).
pub fn router(shared: Shared) -> Router {
    tonic::transport::Server::builder()
        .add_service(pb::backend_server::BackendServer::new(shared.clone()))
        .add_service(pb::control_server::ControlServer::new(shared))
}

/// Serves the backend (and its control service) on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    shared: Shared,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    router(shared)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
