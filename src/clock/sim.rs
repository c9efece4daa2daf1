//! Simulated time: exact to the nanosecond, and no wall time spent waiting.
//!
//! The clock keeps its own time and a heap of deadlines. A driver task advances the time to the
//! earliest deadline, wakes everything due then, and repeats, but only when nothing else can
//! run: every task woken at one instant runs (and may schedule new deadlines, even at the same
//! instant) before time moves on.
//!
//! To learn when the runtime is idle, the driver sleeps for one tick on tokio's *paused* clock:
//! tokio advances its paused clock, and wakes a sleeper, only once every task is waiting. tokio's
//! own time is thereby used as an idle detector and nothing else; it moves in whole
//! milliseconds, which is why the simulation cannot simply use it (every deadline would be
//! rounded up to the next millisecond: a 2.3 ms service time would take 3 ms).
//!
//! Requires a current-thread runtime started paused (`start_paused(true)`), as built for
//! `--clock virtual`. Nothing else in the run may wait on tokio's timer, and one run has one
//! simulated clock: two clocks on one runtime would each jump ahead whenever the runtime idles,
//! independently of each other.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::heap::{Registration, TimerHeap, drop_registration, poll_entry};

#[derive(Debug)]
struct Inner {
    /// Simulated time zero.
    origin: Instant,
    /// Simulated time elapsed since `origin`, in nanoseconds.
    elapsed_ns: AtomicU64,
    heap: Mutex<TimerHeap>,
    /// Wakes the driver when the first deadline is registered.
    registered: Notify,
}

/// A simulated clock. Cloning shares it.
#[derive(Debug, Clone)]
pub struct SimClock {
    inner: Arc<Inner>,
}

impl SimClock {
    /// A simulated clock starting now, driven by a task spawned on the current runtime, which
    /// must be a paused current-thread runtime.
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Self {
        let inner = Arc::new(Inner {
            origin: Instant::now(),
            elapsed_ns: AtomicU64::new(0),
            heap: Mutex::default(),
            registered: Notify::new(),
        });
        tokio::spawn(drive(Arc::clone(&inner)));
        Self { inner }
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.inner.origin + Duration::from_nanos(self.inner.elapsed_ns.load(Ordering::Acquire))
    }

    /// Deadlines still waited for (for tests of the clock's bookkeeping).
    pub fn pending(&self) -> usize {
        self.inner
            .heap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending()
    }

    /// A wait until `deadline` in simulated time.
    pub fn sleep_until(&self, deadline: Instant) -> SimSleep {
        SimSleep {
            clock: self.clone(),
            deadline,
            registration: None,
        }
    }
}

/// Advances simulated time whenever the runtime is idle. Runs as long as the runtime does.
#[allow(clippy::disallowed_methods)]
async fn drive(inner: Arc<Inner>) {
    let mut wake = Vec::new();
    loop {
        let next = inner.heap.lock().unwrap_or_else(|e| e.into_inner()).next();
        if next.is_none() {
            inner.registered.notified().await;
            continue;
        }
        // Returns only once every other task is waiting (see the module doc).
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut heap = inner.heap.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(next) = heap.next() {
            let elapsed = next.saturating_duration_since(inner.origin).as_nanos() as u64;
            inner.elapsed_ns.fetch_max(elapsed, Ordering::AcqRel);
            let now = inner.origin + Duration::from_nanos(inner.elapsed_ns.load(Ordering::Acquire));
            heap.fire_due(now, &mut wake);
        }
        drop(heap);
        for waker in wake.drain(..) {
            waker.wake();
        }
    }
}

/// A wait on simulated time.
#[derive(Debug)]
pub struct SimSleep {
    clock: SimClock,
    deadline: Instant,
    registration: Registration,
}

impl Future for SimSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now() >= self.deadline {
            return Poll::Ready(());
        }
        let this = &mut *self;
        let (deadline, inner) = (this.deadline, &this.clock.inner);
        poll_entry(&mut this.registration, &inner.heap, cx, |waker| {
            let (handle, _) = inner
                .heap
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .register(deadline, waker);
            inner.registered.notify_one();
            handle
        })
    }
}

impl Drop for SimSleep {
    fn drop(&mut self) {
        drop_registration(&self.registration, &self.clock.inner.heap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_runtime() -> tokio::runtime::Runtime {
        crate::clock::test_runtime(true)
    }

    #[test]
    fn sleeps_end_at_exactly_their_deadline() {
        sim_runtime().block_on(async {
            let clock = SimClock::start();
            let t0 = clock.now();
            for us in [1u64, 2_300, 17, 999_999, 5] {
                let before = clock.now();
                clock.sleep_until(before + Duration::from_micros(us)).await;
                assert_eq!(clock.now() - before, Duration::from_micros(us));
            }
            assert_eq!(
                clock.now() - t0,
                Duration::from_micros(1 + 2_300 + 17 + 999_999 + 5)
            );
        });
    }

    #[test]
    fn a_dropped_sleep_is_forgotten_at_once() {
        sim_runtime().block_on(async {
            let sim = SimClock::start();
            let clock = crate::clock::Clock::Sim(sim.clone());
            let t0 = clock.now();
            // The 5 ms sleep is dropped when the 1 ms one wins: its deadline must go with it,
            // or a run's memory would grow with every call's unused timeout.
            let won = tokio::select! {
                _ = clock.sleep(Duration::from_millis(1)) => true,
                _ = clock.sleep(Duration::from_millis(5)) => false,
            };
            assert!(won);
            assert_eq!(sim.pending(), 0);
            clock.sleep(Duration::from_millis(2)).await;
            assert_eq!(clock.now() - t0, Duration::from_millis(3));
            assert_eq!(sim.pending(), 0);
        });
    }

    #[test]
    fn concurrent_sleepers_wake_in_deadline_order_at_their_own_times() {
        sim_runtime().block_on(async {
            let clock = SimClock::start();
            let t0 = clock.now();
            let log = Arc::new(Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for ns in [700u64, 300, 300, 1_000_000_001, 5] {
                let (clock, log) = (clock.clone(), Arc::clone(&log));
                tasks.push(tokio::spawn(async move {
                    clock.sleep_until(t0 + Duration::from_nanos(ns)).await;
                    log.lock()
                        .unwrap()
                        .push((ns, (clock.now() - t0).as_nanos() as u64));
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let log = log.lock().unwrap();
            assert_eq!(
                *log,
                vec![
                    (5, 5),
                    (300, 300),
                    (300, 300),
                    (700, 700),
                    (1_000_000_001, 1_000_000_001)
                ]
            );
        });
    }
}
