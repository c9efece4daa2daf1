//! One attempt's way through the backend: arrival, phases, quota, decision, admission, service.
//!
//! [`Backend::arrive`] and [`Backend::admit`] are the fault decision: every path that meets
//! the profile's faults calls them, in that order: the backend's own unary and streaming
//! attempts (here and in `stream.rs`) and `resilbench proxy` in front of a real service
//! (`crate::proxy`), which forwards an admitted attempt whose draw is OK instead of serving it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;
use tonic::Code;

use super::capacity::Worker;
use super::model::{Draw, RequestId};
use super::timeline::Seen as Event;
use super::{Answer, Backend, Counters, Incoming, Seen, mutation};
use crate::profile::Method;
use crate::profile::backend::PushbackValues;

/// Counts an attempt as active (for [`Backend::drained`]) for as long as it lives.
pub(super) struct Active<'a>(&'a Counters);

impl<'a> Active<'a> {
    pub(super) fn new(counters: &'a Counters) -> Self {
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

/// A worker held apart from a borrow of its backend (what `resilbench proxy`'s response
/// relay holds until the upstream has answered): freed when dropped.
#[derive(Debug)]
pub struct HeldWorker(Arc<Backend>);

impl Drop for HeldWorker {
    fn drop(&mut self) {
        self.0.capacity.release();
    }
}

impl Backend {
    /// Holds `worker`, taken from this backend, apart from its borrow.
    pub fn hold(self: &Arc<Self>, worker: Worker<'_>) -> HeldWorker {
        let capacity = worker.keep();
        debug_assert!(
            std::ptr::eq(capacity, &self.capacity),
            "a worker of another backend"
        );
        HeldWorker(Arc::clone(self))
    }
}

/// What the backend noted when an attempt arrived.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The attempt number to report.
    pub count: u32,
}

/// A wait as a `grpc-retry-pushback-ms` value: whole milliseconds, rounded up (a client told
/// "0" retries at once), at most i32::MAX as A6 requires.
fn ceil_ms(wait: std::time::Duration) -> String {
    wait.as_nanos()
        .div_ceil(1_000_000)
        .min(i32::MAX as u128)
        .to_string()
}

/// An attempt that got a worker, and what it is to get.
pub struct Admitted<'a> {
    /// The worker, held until the attempt's work is done (dropping it frees the worker).
    pub worker: Worker<'a>,
    /// What the fault model decided: status, service time, pushback.
    pub draw: Draw,
    /// The attempt number the backend reports.
    pub count: u32,
}

impl Backend {
    /// The current second since the backend's start.
    pub(super) fn second(&self) -> u64 {
        self.clock
            .now()
            .saturating_duration_since(self.start())
            .as_secs()
    }

    fn count(&self, counter: &std::sync::atomic::AtomicU64, req: &Incoming, event: Event) {
        if !req.warmup {
            counter.fetch_add(1, Ordering::Relaxed);
            let (q, s) = (self.capacity.waiting(), self.capacity.in_service());
            self.timeline.record(self.second(), event, q, s);
        }
    }

    /// An attempt arrives: it is counted, and so is its request id's attempt count where the
    /// backend keeps one (scripted requests and mutations). Every attempt that reaches the
    /// backend counts, whatever happens to it next. Returns the attempt number to report: that
    /// count, or the client's `grpc-previous-rpc-attempts + 1` for other requests.
    pub fn arrive(&self, req: &Incoming) -> Arrival {
        self.count(&self.counters.received, req, Event::Received);
        let id = RequestId {
            number: req.id_number,
            text: req.id_text.as_deref(),
        };
        let scripted = req.script.is_some() || self.model.script(id).is_some();
        if !(scripted || req.method == Method::Mutate) {
            return Arrival {
                count: req.previous().saturating_add(1),
            };
        }
        let now = self.clock.now();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let seen = requests.entry(req.request_key, now, Seen::default);
        seen.attempts = seen.attempts.saturating_add(1);
        Arrival {
            count: seen.attempts,
        }
    }

    /// Takes an arrived attempt to a worker. `Err` is an answer given without one: outage,
    /// quota spent, queue full.
    pub async fn admit(&self, req: &Incoming, arrival: Arrival) -> Result<Admitted<'_>, Answer> {
        let start = self.start();
        let count = arrival.count;
        // Stalls hold the attempt; a later stall, or an outage, may be in force when it is let
        // go, so the phases are read again then.
        let fx = loop {
            let now = self.clock.now();
            let fx = self.phases.at(now.saturating_duration_since(start));
            match fx.stall_until {
                Some(until) if start + until > now => self.clock.sleep_until(start + until).await,
                _ => break fx,
            }
        };
        if let Some(code) = fx.outage {
            return Err(Answer::new(code, count));
        }
        if let Some(quota) = &self.quota
            && let Err(wait) = quota.check()
        {
            self.count(&self.counters.rejected, req, Event::Rejected);
            let mut answer = Answer::new(Code::ResourceExhausted, count);
            if self.plan.quota.is_some_and(|q| q.pushback) {
                answer.pushback = Some(PushbackValues::one(ceil_ms(wait)));
            }
            return Err(answer);
        }
        let id = RequestId {
            number: req.id_number,
            text: req.id_text.as_deref(),
        };
        let draw = match req.script.as_deref().or_else(|| self.model.script(id)) {
            Some(steps) => {
                self.model
                    .scripted(steps, count, req.request_key, req.draw_attempt(), &fx)
            }
            None => self.model.draw(req.request_key, req.draw_attempt(), &fx),
        };
        let Some(worker) = self.capacity.admit(!req.warmup).await else {
            self.count(&self.counters.rejected, req, Event::Rejected);
            let mut answer = Answer::new(Code::ResourceExhausted, count);
            answer.pushback = self.queue_pushback().map(PushbackValues::one);
            return Err(answer);
        };
        self.count(&self.counters.executed, req, Event::Executed);
        Ok(Admitted {
            worker,
            draw,
            count,
        })
    }

    /// The brownouts' latency factor now (1 outside them): a proxy stretches the upstream's
    /// own time by it, as the backend stretches its drawn service time.
    pub fn latency_factor(&self) -> f64 {
        let now = self.clock.now();
        self.phases
            .at(now.saturating_duration_since(self.start()))
            .latency_factor
    }

    /// The status of the outage in force now, if one is (a proxy shows it otherwise when told:
    /// a reset stream, a closed connection).
    pub fn outage_now(&self) -> Option<Code> {
        let now = self.clock.now();
        self.phases
            .at(now.saturating_duration_since(self.start()))
            .outage
    }

    /// The `grpc-retry-pushback-ms` value for a full queue, if the profile asks for one.
    fn queue_pushback(&self) -> Option<String> {
        let p = self.plan.pushback?;
        let wait = match (p.fixed, p.per_queued) {
            (Some(fixed), _) => fixed.0,
            (None, Some(per)) => per
                .0
                .saturating_mul(self.capacity.waiting().min(u64::from(u32::MAX)) as u32),
            (None, None) => return None,
        };
        Some(ceil_ms(wait))
    }

    /// Counts the execution as wasted if its caller had given up by now.
    pub fn finish_work(&self, req: &Incoming, gone: &AtomicBool) {
        let late = req.deadline.is_some_and(|d| self.clock.now() >= d);
        if !req.warmup && (gone.load(Ordering::Acquire) || late) {
            self.counters.wasted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Serves a unary attempt (`Call` or `Mutate`) to its answer.
    pub(super) async fn serve(&self, req: Incoming, gone: Arc<AtomicBool>) -> Answer {
        let _active = Active::new(&self.counters);
        let arrival = self.arrive(&req);
        let dedup = match req.method {
            Method::Mutate => match self.dedup_begin(&req, arrival.count).await {
                mutation::Begin::Answered(answer) => return answer,
                mutation::Begin::Execute(publisher) => publisher,
            },
            _ => None,
        };
        let admitted = match self.admit(&req, arrival).await {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        self.clock.sleep(admitted.draw.latency).await;
        let mut answer = Answer {
            code: admitted.draw.code,
            attempt: admitted.count,
            pushback: admitted.draw.pushback.clone(),
        };
        self.finish_work(&req, &gone);
        drop(admitted.worker);
        if req.method == Method::Mutate && answer.code == Code::Ok {
            answer = self.side_effect(&req, answer, dedup).await;
        }
        answer
    }

    /// The moment a caller's deadline passes, or an hour from now if it set none.
    pub(super) fn deadline_or_hour(&self, req: &Incoming) -> Instant {
        req.deadline
            .unwrap_or_else(|| self.clock.now() + std::time::Duration::from_secs(3600))
    }
}
