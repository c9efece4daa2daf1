//! The backend on the wire: tonic's generated `Backend` and `Control` services ([`Services`]),
//! served over hyper's HTTP/2 server ([`serve_connections`]).
//!
//! [`serve`] takes an already-bound listener and a shutdown future (as mini-redis does), so the
//! embedded backend binds port 0 and tests stop it cleanly. Accepted connections get
//! `TCP_NODELAY`: without it, small gRPC frames wait for Nagle's algorithm and every reply is
//! late by up to the delayed-ACK timeout.
//!
//! The server's state, its backends and their figures across resets, is [`Shared`] (here);
//! what a request off the wire becomes and how it is answered, `methods.rs`; the figures as
//! Control sends them, `figures.rs`; the two services as one HTTP service and the connections
//! served, `connections.rs`.

mod connections;
mod figures;
mod methods;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::{Backend, BackendStats};
use crate::clock::Clock;
use crate::profile::Plan;

pub use connections::{Services, serve, serve_connections, serve_connections_with};
#[cfg(test)]
pub(super) use connections::{serve_in_memory, stop_server};
pub use figures::from_pb;
pub use methods::{MAX_REQUEST_ID, MAX_SCRIPT};

/// The backends behind a server. `Reset` swaps in fresh ones; attempts already in service
/// finish on the old ones.
#[derive(Debug, Clone)]
pub struct Shared {
    plan: Arc<Plan>,
    clock: Clock,
    current: Arc<RwLock<Arc<Vec<Arc<Backend>>>>>,
    /// The run start of the last keyed reset (0: none).
    reset_for: Arc<std::sync::atomic::AtomicU64>,
    log_attempts: bool,
    /// When the server state was made: log lines say how long after it an attempt ended.
    since: tokio::time::Instant,
    /// This server's instance number, sent with its figures (`BackendStats.instance`).
    instance: u64,
    /// Calls turned away at `serve --max-calls` (the limits' counter), and its value at the
    /// last reset (`BackendStats.refused_at_limit` is the difference); none without limits.
    refused: Option<(Arc<AtomicU64>, Arc<AtomicU64>)>,
    /// The figures of the backends resets replaced, added up, and the number of resets:
    /// with the current backends', the figures since the server state was made.
    retired: Arc<std::sync::Mutex<(BackendStats, u64)>>,
}

impl Shared {
    /// A server state with fresh backends for `plan`, on the precise real-time clock.
    pub fn new(plan: Arc<Plan>) -> Self {
        Self::with_clock(plan, Clock::Precise)
    }

    /// A server state with fresh backends for `plan`, waiting out service times on `clock`;
    /// their phases start now.
    pub fn with_clock(plan: Arc<Plan>, clock: Clock) -> Self {
        let shared = Self::unstarted(plan, clock);
        shared.begin(shared.clock.now());
        shared
    }

    /// Like [`Shared::with_clock`], with phases started later by [`Shared::begin`] (the
    /// embedded backend starts them at the strategy's exact time zero).
    pub fn unstarted(plan: Arc<Plan>, clock: Clock) -> Self {
        let backends = Arc::new(Backend::replicas(&plan, &clock));
        Self {
            plan,
            since: clock.now(),
            clock,
            current: Arc::new(RwLock::new(backends)),
            reset_for: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            log_attempts: false,
            instance: instance_number(),
            refused: None,
            retired: Arc::default(),
        }
    }

    /// Reports the calls `limits` turn away (`serve --max-calls`) with its figures, counted
    /// from each reset.
    pub fn count_refused(mut self, limits: &super::serving::Limits) -> Self {
        self.refused = Some((limits.refused_counter(), Arc::default()));
        self
    }

    /// Calls turned away at the limit since the last reset.
    fn refused_since_reset(&self) -> u64 {
        self.refused.as_ref().map_or(0, |(total, at_reset)| {
            total
                .load(Ordering::Relaxed)
                .saturating_sub(at_reset.load(Ordering::Relaxed))
        })
    }

    fn reset_refused(&self) {
        if let Some((total, at_reset)) = &self.refused {
            at_reset.store(total.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// This server's instance number: drawn when it started, never 0.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Starts the phases of the backends in service at `start`.
    pub fn begin(&self, start: tokio::time::Instant) {
        for b in self.current().iter() {
            b.begin(start);
        }
    }

    /// Prints one line per attempt to stderr (`serve --log-attempts`).
    pub fn log_attempts(mut self, on: bool) -> Self {
        self.log_attempts = on;
        self
    }

    fn fresh(plan: &Plan, clock: &Clock) -> Arc<Vec<Arc<Backend>>> {
        let backends = Backend::replicas(plan, clock);
        let start = clock.now();
        for b in &backends {
            b.begin(start);
        }
        Arc::new(backends)
    }

    /// The plan served (its seed keys the proxy's own draws).
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The backends now in service, one per replica.
    pub fn current(&self) -> Arc<Vec<Arc<Backend>>> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the backends with fresh ones; returns the old ones' figures.
    pub fn reset(&self) -> BackendStats {
        let fresh = Self::fresh(&self.plan, &self.clock);
        self.reset_refused();
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        self.retire(Backend::combined(&std::mem::replace(&mut *slot, fresh)))
    }

    /// Adds the figures of backends a reset replaced to the figures since the start; returns
    /// them.
    fn retire(&self, replaced: BackendStats) -> BackendStats {
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let (total, resets) = &mut *retired;
        total.add_counts(&replaced);
        *resets += 1;
        replaced
    }

    /// The figures since this server state was made, over every reset (received, executed,
    /// rejected, wasted, duplicate side effects; the queue's high water the highest), and the
    /// number of resets. The figures of the backends a reset replaced are taken at the reset:
    /// an attempt still in service then that ends wasted later is not counted wasted here.
    pub fn since_start(&self) -> (BackendStats, u64) {
        let (mut total, resets) = self
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        total.add_counts(&Backend::combined(&self.current()));
        (total, resets)
    }

    /// A reset for the run starting at `start_unix_ms` (Unix ms): the first one for that start
    /// replaces the backends, with phases starting at that instant; a repeat (another shard of
    /// the same run) changes nothing. Returns the figures of the backends replaced or kept.
    pub fn reset_for_start(&self, start_unix_ms: u64) -> BackendStats {
        if self.reset_for.swap(start_unix_ms, Ordering::AcqRel) == start_unix_ms {
            return self.stats();
        }
        // A client's value is untrusted: one past what SystemTime holds starts the phases now.
        let at = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_millis(start_unix_ms))
            .unwrap_or_else(std::time::SystemTime::now);
        let start = self.clock.instant_at(at);
        let fresh = Arc::new(Backend::replicas(&self.plan, &self.clock));
        for b in fresh.iter() {
            b.begin(start);
        }
        self.reset_refused();
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        self.retire(Backend::combined(&std::mem::replace(&mut *slot, fresh)))
    }

    /// The figures of the backends now in service.
    pub fn stats(&self) -> BackendStats {
        BackendStats {
            refused_at_limit: self.refused_since_reset(),
            ..Backend::combined(&self.current())
        }
    }
}

/// A number for a server state, different from any other process's with near certainty:
/// the time and the process id, mixed (SplitMix64's finalizer); never 0, which means "not
/// sent" on the wire.
fn instance_number() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).max(1)
}

#[cfg(test)]
/// A server state for a one-strategy profile with the default backend (tests).
pub(super) fn test_shared() -> Shared {
    let text = "[load]\nrate = 1\n[[strategies]]\nname = \"s\"\n";
    let plan = crate::profile::parse(text, "t.toml", "t", &Default::default()).unwrap();
    Shared::new(Arc::new(plan))
}
