//! The degradable backend: a gRPC service whose latency, errors and capacity come from a profile.
//!
//! [`Backend::handle`] is the one place an attempt is served. The tonic server ([`server`]) calls
//! it for requests off the wire; in virtual time the transport calls it directly. Both paths see
//! the same model, the same capacity and the same counters.
//!
//! Work goes on after the caller gives up (a timed-out or cancelled attempt keeps its worker
//! until its service time is over), as in most servers, whose handlers do not watch for
//! cancellation. That wasted work is what lets retries keep an overloaded backend overloaded.

pub mod capacity;
pub mod latency;
pub mod model;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;
use tonic::Code;

use crate::clock::Clock;
use crate::profile::Plan;
use capacity::Capacity;
use model::FaultModel;

/// An attempt as the backend receives it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming {
    /// Hash of the request id ([`crate::keyed::request_key`]).
    pub request_key: u64,
    /// Attempts of this request before this one (`grpc-previous-rpc-attempts`).
    pub previous_attempts: u32,
    /// Warmup traffic is served but not counted.
    pub warmup: bool,
}

/// The backend's answer to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// OK or the failure status.
    pub code: Code,
    /// Which attempt this was, from 1.
    pub attempt: u32,
    /// The `grpc-retry-pushback-ms` value to send, if any.
    pub pushback: Option<String>,
}

/// Backend-side figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackendStats {
    /// Attempts that arrived.
    pub received: u64,
    /// Attempts that got a worker and started executing.
    pub executed: u64,
    /// Attempts turned away because the queue was full.
    pub rejected: u64,
    /// Most attempts waiting for a worker at one time.
    pub queue_high_water: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    executed: AtomicU64,
    rejected: AtomicU64,
    /// Attempts queued or in service, warmup included.
    active: AtomicU64,
    /// Woken when `active` falls to zero.
    idle: Notify,
}

/// Counts an attempt as active for as long as it lives.
struct Active<'a>(&'a Counters);

impl<'a> Active<'a> {
    fn new(counters: &'a Counters) -> Self {
        counters.active.fetch_add(1, Ordering::AcqRel);
        Self(counters)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// One backend instance: its model, its capacity, its counters. Each strategy gets a fresh one.
#[derive(Debug)]
pub struct Backend {
    model: FaultModel,
    capacity: Option<Capacity>,
    counters: Counters,
    clock: Clock,
}

impl Backend {
    /// A fresh backend for a plan, waiting out service times on `clock`.
    pub fn new(plan: &Plan, clock: Clock) -> Arc<Self> {
        let b = &plan.backend;
        Arc::new(Self {
            model: FaultModel::new(plan.seed, b),
            capacity: b.workers.map(|w| Capacity::new(w, b.queue)),
            counters: Counters::default(),
            clock,
        })
    }

    /// Serves one attempt. The work runs in its own task: if the caller stops waiting, the
    /// attempt still holds its worker until its service time is over.
    pub async fn handle(self: &Arc<Self>, req: Incoming) -> Answer {
        if !req.warmup {
            self.counters.received.fetch_add(1, Ordering::Relaxed);
        }
        let this = Arc::clone(self);
        match tokio::spawn(async move { this.execute(req).await }).await {
            Ok(answer) => answer,
            // The runtime is shutting down (or the work panicked, which would be a bug).
            Err(_) => Answer {
                code: Code::Unavailable,
                attempt: req.previous_attempts.saturating_add(1),
                pushback: None,
            },
        }
    }

    async fn execute(&self, req: Incoming) -> Answer {
        let _active = Active::new(&self.counters);
        let attempt = req.previous_attempts.saturating_add(1);
        let draw = self.model.draw(req.request_key, req.previous_attempts);
        let _worker = match &self.capacity {
            None => None,
            Some(capacity) => match capacity.admit(!req.warmup).await {
                Some(permit) => Some(permit),
                None => {
                    if !req.warmup {
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    return Answer {
                        code: Code::ResourceExhausted,
                        attempt,
                        pushback: None,
                    };
                }
            },
        };
        if !req.warmup {
            self.counters.executed.fetch_add(1, Ordering::Relaxed);
        }
        self.clock.sleep(draw.latency).await;
        Answer {
            code: draw.code,
            attempt,
            pushback: None,
        }
    }

    /// Waits until no attempt is queued or in service: work that callers abandoned included.
    pub async fn drained(&self) {
        loop {
            let idle = self.counters.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.counters.active.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// The figures so far.
    pub fn stats(&self) -> BackendStats {
        BackendStats {
            received: self.counters.received.load(Ordering::Relaxed),
            executed: self.counters.executed.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
            queue_high_water: self.capacity.as_ref().map_or(0, Capacity::queue_high_water),
        }
    }
}
