//! The precise timer inside a runtime's own reactor (Linux): one `timerfd` armed for the
//! earliest deadline and registered with tokio's I/O driver, served by one task.
//!
//! The timer thread of [`super::precise`] wakes a waiting task through two threads: the timer
//! thread wakes up (a context switch), then wakes the runtime's thread (a futex and an eventfd
//! write, another switch). A real run's client side is one current-thread runtime, which waits
//! in `epoll_wait` whenever it is idle: with the deadline as a `timerfd` in that same epoll set
//! the kernel's hrtimer wakes the runtime thread itself, and the wake-up costs one switch, one
//! `timerfd_settime` and one `read`. (`timerfd_create(2)`: a `CLOCK_MONOTONIC` timer, the clock
//! behind tokio's `Instant` on Linux; a relative `it_value` of zero disarms it.)
//!
//! Deadlines are kept exactly as the timer thread keeps them ([`TimerHeap`]): never early, a
//! dropped wait forgotten at once. The timer belongs to the runtime that started it; it is
//! correct from any thread (its heap is behind a mutex, its wakers are ordinary wakers) but it
//! is the cheap choice only for tasks on that runtime.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::heap::{Registration, TimerHeap, drop_registration, poll_entry};

/// A timer served by the reactor of the runtime that started it.
#[derive(Clone)]
pub struct ReactorTimer(Arc<Inner>);

impl std::fmt::Debug for ReactorTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactorTimer").finish_non_exhaustive()
    }
}

struct Inner {
    /// Deadlines waited for. The timerfd is armed, under this lock, for the earliest.
    heap: Mutex<TimerHeap>,
    fd: AsyncFd<OwnedFd>,
}

impl ReactorTimer {
    /// A timer in the current runtime's reactor, and the task that serves it (it lives as long
    /// as the runtime). `None` outside a runtime, or where the kernel gives no timerfd.
    /// Panics on a runtime built without I/O (tokio's `enable_io`).
    pub fn start() -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()?;
        // tokio 1.54 deprecates the safe `AsyncFd::new` for its successor, the `unsafe`
        // `register`, whose one condition is that the value keeps the same open descriptor
        // for its whole life: an `OwnedFd` does, by construction. This crate forbids unsafe
        // code, so it keeps the safe constructor.
        #[allow(deprecated)]
        let fd = {
            let _entered = runtime.enter();
            AsyncFd::new(fd).ok()?
        };
        let inner = Arc::new(Inner {
            heap: Mutex::default(),
            fd,
        });
        runtime.spawn(serve(Arc::clone(&inner)));
        Some(Self(inner))
    }

    /// Deadlines still waited for.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.0.heap().pending()
    }
}

impl Inner {
    fn heap(&self) -> std::sync::MutexGuard<'_, TimerHeap> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms the timerfd for `next` (disarms it for `None`). Called with the heap locked, so
    /// that the armed time always follows the heap's earliest deadline.
    fn arm(&self, next: Option<Instant>, now: Instant) {
        let it_value = match next {
            // A zero it_value disarms: a deadline already due is armed 1 ns ahead.
            Some(at) => timespec(
                at.saturating_duration_since(now)
                    .max(Duration::from_nanos(1)),
            ),
            None => timespec(Duration::ZERO),
        };
        let spec = Itimerspec {
            it_interval: timespec(Duration::ZERO),
            it_value,
        };
        // EINVAL and EBADF are the only documented failures, and neither can come from a
        // timerfd this module created with an in-range time.
        let _ = timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec);
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos().into(),
    }
}

/// The timer's task: whenever the timerfd expires, fire what is due and arm for the next.
#[allow(clippy::disallowed_methods)]
async fn serve(timer: Arc<Inner>) {
    let mut ready: Vec<Waker> = Vec::new();
    loop {
        let Ok(mut guard) = timer.fd.readable().await else {
            return;
        };
        // Read (reset) the expiration count. The next expiry is a new edge, so the readiness
        // is cleared either way (after WouldBlock, a spurious readiness, `try_io` does it).
        let mut count = [0u8; 8];
        if let Ok(Ok(_)) = guard.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut count)?)) {
            guard.clear_ready();
        }
        {
            let mut heap = timer.heap();
            let now = Instant::now();
            heap.fire_due(now, &mut ready);
            timer.arm(heap.next(), now);
        }
        for waker in ready.drain(..) {
            waker.wake();
        }
    }
}

/// A wait on a [`ReactorTimer`].
#[derive(Debug)]
pub struct ReactorSleep {
    timer: ReactorTimer,
    deadline: Instant,
    registration: Registration,
}

impl ReactorSleep {
    /// A wait until `deadline` on `timer`.
    pub fn new(timer: ReactorTimer, deadline: Instant) -> Self {
        Self {
            timer,
            deadline,
            registration: None,
        }
    }
}

impl Future for ReactorSleep {
    type Output = ();

    #[allow(clippy::disallowed_methods)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Poll::Ready(());
        }
        let this = &mut *self;
        let (timer, deadline) = (&this.timer.0, this.deadline);
        poll_entry(&mut this.registration, cx, |waker| {
            let mut heap = timer.heap();
            let (entry, key, earliest) = heap.register(deadline, waker);
            if earliest {
                // Read under the lock: a `now` from before waiting for it would arm late.
                timer.arm(Some(deadline), Instant::now());
            }
            (entry, key)
        })
    }
}

impl Drop for ReactorSleep {
    fn drop(&mut self) {
        drop_registration(&self.registration, &self.timer.0.heap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wall-clock behaviour only: never early, in any order of registration, and a dropped wait
    /// is forgotten. (How late is a performance figure, measured in benches.)
    #[test]
    #[allow(clippy::disallowed_methods)]
    fn never_wakes_early_and_forgets_dropped_waits() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let timer = ReactorTimer::start().expect("a timerfd on Linux");
            let start = Instant::now();
            let mut tasks = Vec::new();
            for us in [2_000u64, 300, 1_500, 50, 700, 700, 10, 0] {
                let timer = timer.clone();
                tasks.push(tokio::spawn(async move {
                    let deadline = start + Duration::from_micros(us);
                    ReactorSleep::new(timer, deadline).await;
                    Instant::now() >= deadline
                }));
            }
            for t in tasks {
                assert!(t.await.unwrap(), "a sleep ended before its deadline");
            }
            assert_eq!(timer.pending(), 0);
            let won = tokio::select! {
                _ = ReactorSleep::new(timer.clone(), Instant::now() + Duration::from_millis(1)) => true,
                _ = ReactorSleep::new(timer.clone(), Instant::now() + Duration::from_secs(3600)) => false,
            };
            assert!(won);
            assert_eq!(timer.pending(), 0, "the hour-long wait was forgotten");
            // The timer still serves after its earliest deadline was dropped unfired.
            let later = Instant::now() + Duration::from_micros(200);
            ReactorSleep::new(timer.clone(), later).await;
            assert!(Instant::now() >= later);
        });
    }

    /// Outside a runtime there is no reactor to serve the timer.
    #[test]
    fn needs_a_runtime() {
        assert!(ReactorTimer::start().is_none());
    }
}
