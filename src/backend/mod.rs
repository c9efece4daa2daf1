//! The degradable backend: a gRPC service whose latency, errors, capacity, phases and methods
//! come from a profile.
//!
//! A [`Backend`] is one replica. Its methods ([`Backend::handle`] for unary calls and mutations,
//! [`Backend::stream`] for server streaming) are the one place an attempt is served: the gRPC
//! server ([`server`]) calls them for requests off the wire, and in virtual time the transport
//! calls them directly. Both paths see the same model, capacity, phases and counters.
//!
//! What happens to an attempt, in order (`attempt.rs`): it is counted as received; an outage
//! fails it at once; a stall holds it; the quota may turn it away; the script or the fault
//! model decides its status and service time; it waits for a worker (or is rejected when the
//! queue is full); it is served; a mutation's side effect happens (`mutation.rs`).
//!
//! The decision (`Backend::arrive`, then `Backend::admit`) is public: `resilbench proxy`
//! calls the same two functions for each attempt on its way to a real service, so a profile's
//! faults are the same decisions in front of the user's service as in this model.
//!
//! When the caller gives up (cancels, or its `grpc-timeout` passes), `on_cancel = "continue"`
//! (the default, like most servers) lets the work run on and hold its worker: that is *wasted
//! work*, counted, and what lets retries keep an overloaded backend overloaded.
//! `on_cancel = "stop"` stops it at once.

mod attempt;
pub use attempt::{Admitted, Arrival, HeldWorker};
pub mod capacity;
pub mod expiring;
pub mod latency;
pub mod model;
mod mutation;
pub mod phases;
pub mod quota;
pub mod serve_threads;
pub mod served;
pub mod server;
pub mod serving;
mod stream;
pub mod timeline;
mod unary;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tonic::Code;

use crate::clock::Clock;
use crate::profile::backend::{BackendPlan, OnCancel, PushbackValues, StepPlan};
use crate::profile::{Method, Plan};
use capacity::Capacity;
use expiring::Expiring;
use model::FaultModel;
use phases::Phases;
use quota::Quota;
use timeline::{BackendSecond, Timeline};

/// How long the backend remembers a request id (attempt counts, side effects).
pub const REQUEST_MEMORY: Duration = Duration::from_secs(120);

/// Most request ids remembered at once.
pub const REQUEST_MEMORY_ENTRIES: usize = 200_000;

/// An attempt as the backend receives it.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    /// Which method.
    pub method: Method,
    /// Hash of the request id ([`crate::keyed::request_key`]).
    pub request_key: u64,
    /// The request id as a number, when it is one.
    pub id_number: Option<u64>,
    /// The request id's text, when it is not the decimal form of `id_number`.
    pub id_text: Option<Arc<str>>,
    /// Attempts of this request before this one (`grpc-previous-rpc-attempts`), or `None`
    /// when the header is absent, as gRFC A6 has it on a call's first attempt.
    pub previous_attempts: Option<u32>,
    /// The client's own count of this call's attempts so far (header `resilbench-attempt`),
    /// sent by resilbench: every attempt of a call, across stacked retry layers and hedges,
    /// then gets a draw of its own.
    pub ordinal: Option<u32>,
    /// Warmup traffic is served but not counted.
    pub warmup: bool,
    /// When the caller gives up (`grpc-timeout`), if it said.
    pub deadline: Option<Instant>,
    /// A script sent with the request itself (it wins over the profile's scripts).
    pub script: Option<Arc<[StepPlan]>>,
    /// A mutation's idempotency key.
    pub idempotency_key: Option<Arc<str>>,
}

/// The backend's answer to one attempt (for a stream: how it ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// OK or the failure status.
    pub code: Code,
    /// Which attempt this was, from 1: the backend's own count for scripted requests and
    /// mutations, `grpc-previous-rpc-attempts + 1` otherwise.
    pub attempt: u32,
    /// The `grpc-retry-pushback-ms` values to send, if any.
    pub pushback: Option<PushbackValues>,
}

impl Incoming {
    /// The attempt number that keys this attempt's draws: the client's own attempt count if
    /// it sent one, else `grpc-previous-rpc-attempts`.
    pub fn draw_attempt(&self) -> u32 {
        self.ordinal.unwrap_or(self.previous())
    }

    /// Attempts of this request before this one: `grpc-previous-rpc-attempts`, 0 if absent.
    pub fn previous(&self) -> u32 {
        self.previous_attempts.unwrap_or(0)
    }
}

impl Answer {
    fn new(code: Code, attempt: u32) -> Self {
        Self {
            code,
            attempt,
            pushback: None,
        }
    }
}

/// What a streaming attempt sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// Message number n (from 1).
    Message(u32),
    /// The stream's end: OK after the last message, or a failure.
    End(Answer),
}

/// Backend-side figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackendStats {
    /// Attempts that arrived.
    pub received: u64,
    /// Attempts that got a worker and started executing.
    pub executed: u64,
    /// Attempts turned away: queue full, or quota spent.
    pub rejected: u64,
    /// Executions that finished after their caller had given up (cancelled or deadline).
    /// (Keys added within v1 read as 0 from files written before them.)
    #[serde(default)]
    pub wasted: u64,
    /// Side effects executed again for a mutation that already had one.
    #[serde(default)]
    pub duplicate_side_effects: u64,
    /// Most attempts waiting for a worker at one time.
    pub queue_high_water: u64,
    /// The same figures per replica (empty with a single backend).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaStats>,
    /// One row per second since the strategy's start (replicas added up).
    #[serde(default)]
    pub timeline: Vec<BackendSecond>,
    /// The backend a `--target` served (its seed, `[backend]` and `[[phases]]`, as its Control
    /// service reported them; [`served`]); absent for an embedded backend, which is the
    /// profile's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<serde_json::Value>,
    /// Calls a `--target` turned away at its own limit on calls in progress (`serve
    /// --max-calls`): RESOURCE_EXHAUSTED to the client, never seen by the backend's model, so
    /// in none of the figures above (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_at_limit: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BackendStats {
    /// Adds `more`'s counts (received, executed, rejected, wasted, duplicate side effects) to
    /// these; the queue's high water is the higher of the two. Per replica and per second
    /// figures, `served` and `refused_at_limit` are left to the caller.
    pub fn add_counts(&mut self, more: &BackendStats) {
        self.received += more.received;
        self.executed += more.executed;
        self.rejected += more.rejected;
        self.wasted += more.wasted;
        self.duplicate_side_effects += more.duplicate_side_effects;
        self.queue_high_water = self.queue_high_water.max(more.queue_high_water);
    }
}

/// One replica's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaStats {
    /// The replica's name.
    pub name: String,
    /// Attempts that arrived.
    pub received: u64,
    /// Attempts that started executing.
    pub executed: u64,
    /// Attempts turned away.
    pub rejected: u64,
    /// Executions whose caller had given up.
    pub wasted: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    executed: AtomicU64,
    rejected: AtomicU64,
    wasted: AtomicU64,
    duplicates: AtomicU64,
    /// Attempts anywhere in the backend (arrived, not yet answered), warmup included.
    active: AtomicU64,
    /// Woken when `active` falls to zero.
    idle: Notify,
}

/// Per request id: attempts seen and side effects executed.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    attempts: u32,
    effects: u32,
}

/// One backend instance (one replica). Each strategy gets fresh ones.
pub struct Backend {
    name: String,
    plan: BackendPlan,
    model: FaultModel,
    phases: Phases,
    capacity: Capacity,
    quota: Option<Quota>,
    counters: Counters,
    timeline: Arc<Timeline>,
    requests: Mutex<Expiring<u64, Seen>>,
    dedup: Mutex<Expiring<Arc<str>, mutation::Stored>>,
    clock: Clock,
    start: Arc<OnceLock<Instant>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Marks the caller as gone if the handler future is dropped before it answers.
struct CallerGuard(Arc<AtomicBool>, bool);

impl Drop for CallerGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::Release);
        }
    }
}

impl Backend {
    /// Every replica of a plan's backend, fresh, on `clock`.
    pub fn replicas(plan: &Plan, clock: &Clock) -> Vec<Arc<Backend>> {
        (0..plan.backend.replica_count())
            .map(|i| Backend::new(plan, i, clock.clone()))
            .collect()
    }

    /// A fresh backend for replica `index` of a plan, waiting out service times on `clock`.
    pub fn new(plan: &Plan, index: usize, clock: Clock) -> Arc<Self> {
        let name = plan.backend.replica_name(index);
        let model_plan = plan.backend.replica(index);
        let phases = Phases::new(&plan.phases, &name);
        let start: Arc<OnceLock<Instant>> = Arc::default();
        let timeline = Arc::new(Timeline::default());
        let limit: capacity::Limit = {
            let (workers, phases, clock, start) = (
                model_plan.workers,
                phases.clone(),
                clock.clone(),
                Arc::clone(&start),
            );
            Arc::new(move || match workers {
                None => usize::MAX,
                Some(w) => {
                    let t = start.get().map_or(Duration::ZERO, |s| {
                        clock.now().saturating_duration_since(*s)
                    });
                    ((f64::from(w) * phases.capacity_factor(t)).round() as usize).max(1)
                }
            })
        };
        let levels: capacity::Levels = {
            let (timeline, clock, start) =
                (Arc::clone(&timeline), clock.clone(), Arc::clone(&start));
            Arc::new(move |queued, in_service| {
                let second = start
                    .get()
                    .map_or(0, |s| clock.now().saturating_duration_since(*s).as_secs());
                timeline.record(second, timeline::Seen::Levels, queued, in_service);
            })
        };
        let mutation = &model_plan.mutation;
        Arc::new(Self {
            model: FaultModel::new(
                plan.seed ^ (index as u64).wrapping_mul(0x9e37_79b9),
                &model_plan,
            ),
            capacity: Capacity::new(limit, model_plan.queue, Some(levels)),
            quota: model_plan.quota.as_ref().map(|q| Quota::new(q, &clock)),
            counters: Counters::default(),
            timeline,
            requests: Mutex::new(Expiring::new(REQUEST_MEMORY, REQUEST_MEMORY_ENTRIES)),
            dedup: Mutex::new(Expiring::new(
                mutation.dedup_ttl,
                mutation.dedup_capacity as usize,
            )),
            phases,
            name,
            plan: model_plan,
            clock,
            start,
        })
    }

    /// Starts the backend's clock for phases: `start` is the strategy's time zero (unless an
    /// attempt already started it). Brownouts' capacity changes are applied at their instants
    /// from then on. Call it once.
    pub fn begin(self: &Arc<Self>, start: Instant) {
        let start = *self.start.get_or_init(|| start);
        let changes = self.phases.capacity_changes();
        if changes.is_empty() {
            return;
        }
        let weak = Arc::downgrade(self);
        let clock = self.clock.clone();
        tokio::spawn(async move {
            for at in changes {
                clock.sleep_until(start + at).await;
                match weak.upgrade() {
                    Some(backend) => backend.capacity.rebalance(),
                    None => return,
                }
            }
        });
    }

    /// The replica's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn start(&self) -> Instant {
        *self.start.get_or_init(|| self.clock.now())
    }

    /// Serves one unary attempt (`Call` or `Mutate`).
    pub async fn handle(self: &Arc<Self>, req: Incoming) -> Answer {
        let gone = Arc::new(AtomicBool::new(false));
        let mut guard = CallerGuard(Arc::clone(&gone), false);
        let attempt = req.previous().saturating_add(1);
        let answer = match self.plan.on_cancel {
            // The work goes on if this future is dropped: work done at its first poll (no
            // latency, no queue) is answered here, other work moves to a task of its own.
            OnCancel::Continue => {
                let this = Arc::clone(self);
                let mut work = Box::pin(async move { this.serve(req, gone).await });
                match std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await {
                    Poll::Ready(answer) => answer,
                    Poll::Pending => tokio::spawn(work)
                        .await
                        .unwrap_or_else(|_| Answer::new(Code::Unavailable, attempt)),
                }
            }
            // The work is this future: dropping it stops the work; so does the deadline.
            OnCancel::Stop => match req.deadline {
                Some(deadline) => {
                    let clock = self.clock.clone();
                    clock
                        .timeout_at(deadline, self.serve(req, gone))
                        .await
                        .unwrap_or_else(|_| Answer::new(Code::DeadlineExceeded, attempt))
                }
                None => self.serve(req, gone).await,
            },
        };
        guard.1 = true;
        answer
    }

    /// Serves one streaming attempt: messages and the end arrive on the returned channel.
    pub fn stream(self: &Arc<Self>, req: Incoming) -> mpsc::Receiver<StreamEvent> {
        let (tx, rx) = mpsc::channel(16);
        let this = Arc::clone(self);
        let task = async move { this.serve_stream(req, tx).await };
        // A stopped stream ends when its receiver goes: `serve_stream` checks the channel.
        tokio::spawn(task);
        rx
    }

    /// Waits until no attempt is queued or in service: work callers abandoned included.
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
        let c = &self.counters;
        BackendStats {
            received: c.received.load(Ordering::Relaxed),
            executed: c.executed.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            wasted: c.wasted.load(Ordering::Relaxed),
            duplicate_side_effects: c.duplicates.load(Ordering::Relaxed),
            queue_high_water: self.capacity.queue_high_water(),
            replicas: Vec::new(),
            timeline: self.timeline.rows(),
            served: None,
            refused_at_limit: 0,
        }
    }

    /// Figures of several replicas: totals, with each replica's own.
    pub fn combined(backends: &[Arc<Backend>]) -> BackendStats {
        let each: Vec<BackendStats> = backends.iter().map(|b| b.stats()).collect();
        let mut total = BackendStats::default();
        for (b, s) in backends.iter().zip(&each) {
            total.add_counts(s);
            for row in &s.timeline {
                let t = row.t as usize;
                if total.timeline.len() <= t {
                    total.timeline.resize_with(t + 1, BackendSecond::default);
                }
                let r = &mut total.timeline[t];
                r.t = row.t;
                r.received += row.received;
                r.executed += row.executed;
                r.rejected += row.rejected;
                r.queue_max += row.queue_max;
                r.in_service_max += row.in_service_max;
            }
            if backends.len() > 1 {
                total.replicas.push(ReplicaStats {
                    name: b.name.clone(),
                    received: s.received,
                    executed: s.executed,
                    rejected: s.rejected,
                    wasted: s.wasted,
                });
            }
        }
        total
    }
}
