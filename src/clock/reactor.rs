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

    /// Arms the timerfd for `at`. Called with the heap locked, when the heap says so
    /// ([`TimerHeap::arm_for`]), so that the timer always wakes by the heap's earliest deadline.
    fn arm(&self, at: Instant, now: Instant) {
        // A zero it_value disarms: a deadline already due is armed 1 ns ahead.
        let it_value = timespec(
            at.saturating_duration_since(now)
                .max(Duration::from_nanos(1)),
        );
        let spec = Itimerspec {
            it_interval: timespec(Duration::ZERO),
            it_value,
        };
        // EINVAL and EBADF are the only documented failures, and neither can come from a
        // timerfd this module created with an in-range time.
        let _ = timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec);
    }
}

/// `d` as a kernel time.
pub(crate) fn timespec(d: Duration) -> Timespec {
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
        // A count read means the timer expired; none (WouldBlock), that it was armed again
        // since (the arm resets the count) or the readiness was spurious: it is still armed.
        let mut count = [0u8; 8];
        let expired = matches!(
            guard.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut count)?)),
            Ok(Ok(_))
        );
        if expired {
            guard.clear_ready();
        }
        {
            let mut heap = timer.heap();
            if expired {
                heap.expired();
            }
            let now = Instant::now();
            heap.fire_due(now, &mut ready);
            // An expired one-shot timer is disarmed already: armed again only for a wait left.
            if let Some(next) = heap.next()
                && heap.arm_for(next)
            {
                timer.arm(next, now);
            }
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
        poll_entry(&mut this.registration, &timer.heap, cx, |waker| {
            let mut heap = timer.heap();
            let (handle, _) = heap.register(deadline, waker);
            if heap.arm_for(deadline) {
                // Read under the lock: a `now` from before waiting for it would arm late.
                timer.arm(deadline, Instant::now());
            }
            handle
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
    use crate::clock::Clock;

    /// Wall-clock behaviour only: never early, in any order of registration, and a dropped wait
    /// is forgotten. (How late is a performance figure, measured in benches.)
    #[test]
    #[allow(clippy::disallowed_methods)]
    fn never_wakes_early_and_forgets_dropped_waits() {
        let rt = crate::clock::test_runtime(false);
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

    /// Polls `sleep` once (it registers its deadline), from inside the task.
    async fn poll_once(sleep: &mut Pin<Box<ReactorSleep>>) -> Poll<()> {
        std::future::poll_fn(|cx| Poll::Ready(sleep.as_mut().poll(cx))).await
    }

    /// The timerfd is armed again only for a deadline earlier than the one it is armed for; a
    /// deadline registered earlier while the thread is busy still fires (and not early), and an
    /// arm left for a wait that was dropped expires for nothing, then serves what is left.
    #[test]
    #[allow(clippy::disallowed_methods)]
    fn arms_only_for_an_earlier_deadline_and_never_misses_one() {
        let rt = crate::clock::test_runtime(false);
        rt.block_on(async {
            let timer = ReactorTimer::start().expect("a timerfd on Linux");
            let armed = || timer.0.heap().armed();
            let t0 = Instant::now();
            let hour = t0 + Duration::from_secs(3600);
            let mut a = Box::pin(ReactorSleep::new(timer.clone(), hour));
            assert!(poll_once(&mut a).await.is_pending());
            assert_eq!(armed(), Some(hour));
            // Later deadlines (the calls' timeouts, in order) leave the arm alone.
            let two_hours = t0 + Duration::from_secs(7200);
            let mut b = Box::pin(ReactorSleep::new(timer.clone(), two_hours));
            assert!(poll_once(&mut b).await.is_pending());
            assert_eq!(armed(), Some(hour));
            // Dropping the earliest keeps the arm: it will expire for nothing.
            drop(a);
            let half = t0 + Duration::from_secs(1800);
            let mut c = Box::pin(ReactorSleep::new(timer.clone(), half));
            assert!(poll_once(&mut c).await.is_pending());
            assert_eq!(armed(), Some(half), "an earlier deadline re-arms");
            // While the thread is busy (no await), an earlier deadline: armed for it, and it
            // fires long before the half hour (the guard on the other clock is only against a
            // hang).
            let until = Instant::now() + Duration::from_micros(100);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            let near = Instant::now() + Duration::from_micros(300);
            let mut d = Box::pin(ReactorSleep::new(timer.clone(), near));
            assert!(poll_once(&mut d).await.is_pending());
            assert_eq!(armed(), Some(near));
            let fired = tokio::select! {
                _ = d => true,
                _ = Clock::Precise.sleep(Duration::from_secs(60)) => false,
            };
            assert!(fired, "the earlier deadline was not armed");
            assert!(Instant::now() >= near);
            assert_eq!(armed(), Some(half), "armed again for what is left");
            drop((b, c));
            // A short wait dropped, its arm left; a later one does not re-arm, and fires after
            // the stale expiry, at its own deadline, not before.
            let short = Instant::now() + Duration::from_micros(200);
            let mut e = Box::pin(ReactorSleep::new(timer.clone(), short));
            assert!(poll_once(&mut e).await.is_pending());
            drop(e);
            let later = Instant::now() + Duration::from_millis(2);
            let mut f = Box::pin(ReactorSleep::new(timer.clone(), later));
            assert!(poll_once(&mut f).await.is_pending());
            assert_eq!(armed(), Some(short), "a later deadline leaves the arm");
            let fired = tokio::select! {
                _ = f => true,
                _ = Clock::Precise.sleep(Duration::from_secs(60)) => false,
            };
            assert!(fired, "the later deadline was lost after the stale expiry");
            assert!(Instant::now() >= later);
            assert_eq!(timer.pending(), 0);
        });
    }

    /// Outside a runtime there is no reactor to serve the timer.
    #[test]
    fn needs_a_runtime() {
        assert!(ReactorTimer::start().is_none());
    }
}
