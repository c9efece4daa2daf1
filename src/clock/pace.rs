//! One task's own wake-ups, one at a time: the open-loop driver's pacing.
//!
//! The driver sleeps until its next planned wake-up once per quantum, always alone (it waits
//! for nothing else meanwhile but a cancellation). On the reactor clock ([`super::reactor`])
//! that sleep was a deadline among the calls' timeouts in the shared [`super::heap`]: each
//! wake-up cost two `timerfd_settime` (the timer's task, having fired the wake-up, armed the
//! timerfd for the next deadline left, a call's timeout; then the driver registered its next
//! wake-up, earlier, and armed it again), a `read` of the expiration count, and a hop through
//! the timer's task to wake the driver.
//!
//! A [`Pacer`] on the reactor clock is a timerfd of its own, in the same runtime's epoll set,
//! polled by the waiting task itself: one `timerfd_settime` per wake-up, no `read` (a
//! `timerfd_settime` resets the expiration count: Linux fs/timerfd.c, `timerfd_setup`,
//! `ctx->ticks = 0`; tokio registers the descriptor edge-triggered, so each expiry after an arm
//! is a new event), no other task woken, no entry in the shared heap. The heap's timerfd, left
//! to the calls' timeouts (registered in the order they fall due, so rarely the earliest), is
//! rarely re-armed. Never early: a wait ends only once the clock reads its deadline or later,
//! whatever the descriptor reported (a stale expiry of an earlier, abandoned wait included). On
//! every other clock a pacer is the clock's own [`Clock::sleep_until`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;

use super::{Clock, Sleep};

/// Wake-ups of one task, one at a time ([`Clock::pacer`]).
#[derive(Debug)]
pub struct Pacer(Kind);

#[derive(Debug)]
enum Kind {
    /// The clock's own sleeps.
    Clock(Clock),
    /// A timerfd of its own in the current runtime's reactor.
    #[cfg(target_os = "linux")]
    Fd(fd::PaceFd),
}

impl Clock {
    /// A pacer for one task's wake-ups on this clock: on the reactor clock a timerfd of its
    /// own in the current runtime (one `timerfd_settime` per wake-up), else this clock's sleeps.
    pub fn pacer(&self) -> Pacer {
        #[cfg(target_os = "linux")]
        if let Clock::Reactor(_) = self
            && let Some(fd) = fd::PaceFd::new()
        {
            return Pacer(Kind::Fd(fd));
        }
        Pacer(Kind::Clock(self.clone()))
    }
}

impl Pacer {
    /// A wait until `deadline` (at once if it has passed). Dropping it abandons the wait.
    pub fn sleep_until(&mut self, deadline: Instant) -> PaceSleep<'_> {
        PaceSleep(match &mut self.0 {
            Kind::Clock(clock) => Wait::Clock(clock.sleep_until(deadline)),
            #[cfg(target_os = "linux")]
            Kind::Fd(fd) => Wait::Fd {
                fd,
                deadline,
                armed: false,
            },
        })
    }

    /// Whether this pacer has a timerfd of its own (for tests).
    #[cfg(test)]
    fn has_own_fd(&self) -> bool {
        !matches!(self.0, Kind::Clock(_))
    }
}

/// The future of [`Pacer::sleep_until`].
#[derive(Debug)]
pub struct PaceSleep<'a>(Wait<'a>);

#[derive(Debug)]
enum Wait<'a> {
    Clock(Sleep),
    #[cfg(target_os = "linux")]
    Fd {
        fd: &'a mut fd::PaceFd,
        deadline: Instant,
        armed: bool,
    },
}

impl Future for PaceSleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.get_mut().0 {
            Wait::Clock(sleep) => Pin::new(sleep).poll(cx),
            #[cfg(target_os = "linux")]
            Wait::Fd {
                fd,
                deadline,
                armed,
            } => fd.poll_until(*deadline, armed, cx),
        }
    }
}

#[cfg(target_os = "linux")]
mod fd {
    use std::os::fd::OwnedFd;
    use std::task::{Context, Poll};

    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::unix::AsyncFd;
    use tokio::time::Instant;

    use crate::clock::reactor::timespec;

    /// A timerfd registered with the current runtime's reactor, armed for one deadline at a time.
    #[derive(Debug)]
    pub(super) struct PaceFd(AsyncFd<OwnedFd>);

    impl PaceFd {
        /// `None` outside a runtime or where the kernel gives no timerfd.
        pub(super) fn new() -> Option<Self> {
            tokio::runtime::Handle::try_current().ok()?;
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .ok()?;
            // As in `reactor::ReactorTimer::start`: the safe constructor, for an `OwnedFd`.
            #[allow(deprecated)]
            let fd = AsyncFd::new(fd).ok()?;
            Some(Self(fd))
        }

        /// Polls a wait until `deadline`: arms the timerfd on the first poll that finds the
        /// deadline ahead (`armed` records it), then waits for its expiry.
        #[allow(clippy::disallowed_methods)]
        pub(super) fn poll_until(
            &self,
            deadline: Instant,
            armed: &mut bool,
            cx: &mut Context<'_>,
        ) -> Poll<()> {
            if !*armed {
                let now = Instant::now();
                if now >= deadline {
                    return Poll::Ready(());
                }
                // Relative to a `now` read before the call: the expiry can only be later than
                // the deadline, by the time between the two (never early). A zero would disarm;
                // the deadline is ahead, so the time is not zero.
                let spec = Itimerspec {
                    it_interval: timespec(std::time::Duration::ZERO),
                    it_value: timespec(deadline - now),
                };
                // EINVAL and EBADF are the only documented failures, and neither can come from
                // a timerfd this module created with an in-range time.
                let _ = timerfd_settime(self.0.get_ref(), TimerfdTimerFlags::empty(), &spec);
                *armed = true;
            }
            // The readiness is looked at before the clock, so that the expiry that ends a wait
            // is consumed by it, not left to the next wait.
            loop {
                match self.0.poll_read_ready(cx) {
                    Poll::Ready(Ok(mut guard)) => {
                        // The expiry is not read: the next arm resets its count, and only an
                        // expiry after it makes a new event. Clearing keeps any event that came
                        // after this one was observed (tokio compares readiness ticks).
                        guard.clear_ready();
                        if Instant::now() >= deadline {
                            return Poll::Ready(());
                        }
                        // An earlier, abandoned wait's expiry: wait for this one's.
                    }
                    // Polled past the deadline before the reactor saw the expiry (a busy
                    // thread), or the reactor is shutting down (nothing will run to wait for).
                    Poll::Pending | Poll::Ready(Err(_)) => {
                        return if Instant::now() >= deadline {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Arms a wait until `at` (one poll) and abandons it, as the driver's cancelled sleep.
    #[cfg(target_os = "linux")]
    async fn arm_and_abandon(pacer: &mut Pacer, at: Instant) {
        let mut wait = std::pin::pin!(pacer.sleep_until(at));
        let polled = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
        assert!(polled.is_pending());
    }

    /// Busy for `d` without letting the runtime poll its reactor.
    #[allow(clippy::disallowed_methods)]
    fn busy(d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// Wall-clock behaviour only (how late is a performance figure, measured in benches): never
    /// early, whether each wait is the next after one that fired, after an abandoned earlier one
    /// whose expiry the reactor saw or that came while the thread was busy; and an earlier wait
    /// after an abandoned later one, set while the thread is busy, fires (the timerfd re-armed).
    #[cfg(target_os = "linux")]
    #[test]
    #[allow(clippy::disallowed_methods)]
    fn own_timerfd_never_wakes_early_and_rearms_for_an_earlier_wait() {
        let rt = crate::clock::test_runtime(false);
        rt.block_on(async {
            let clock = Clock::real();
            assert!(matches!(clock, Clock::Reactor(_)));
            let mut pacer = clock.pacer();
            assert!(pacer.has_own_fd());
            // One after the other, as the driver paces.
            let mut at = Instant::now();
            for us in [300u64, 50, 0, 1_000, 10] {
                at += Duration::from_micros(us);
                pacer.sleep_until(at).await;
                assert!(Instant::now() >= at, "a wait ended before its deadline");
            }
            // Armed for an hour and abandoned; while the thread is busy, an earlier wait: it
            // fires, long before the hour (the guard on the other timer is only against a hang).
            arm_and_abandon(&mut pacer, Instant::now() + Duration::from_secs(3600)).await;
            busy(Duration::from_micros(100));
            let soon = Instant::now() + Duration::from_micros(200);
            let fired = tokio::select! {
                _ = pacer.sleep_until(soon) => true,
                _ = clock.sleep(Duration::from_secs(60)) => false,
            };
            assert!(fired, "the earlier wait was not armed");
            assert!(Instant::now() >= soon);
            // An earlier wait abandoned, its expiry seen by the reactor (the task waits on
            // another timer past it): the readiness left behind must not end a later wait.
            let early = Instant::now() + Duration::from_micros(100);
            arm_and_abandon(&mut pacer, early).await;
            clock.sleep_until(early + Duration::from_micros(500)).await;
            let later = Instant::now() + Duration::from_millis(2);
            pacer.sleep_until(later).await;
            assert!(Instant::now() >= later, "a stale expiry ended a later wait");
            // The same with the expiry coming while the thread is busy.
            let early = Instant::now() + Duration::from_micros(100);
            arm_and_abandon(&mut pacer, early).await;
            busy(Duration::from_micros(400));
            let later = Instant::now() + Duration::from_millis(2);
            pacer.sleep_until(later).await;
            assert!(Instant::now() >= later, "a stale expiry ended a later wait");
        });
    }

    /// On the other clocks a pacer is the clock's own sleep: exact on simulated time.
    #[test]
    fn on_simulated_time_it_is_the_clocks_sleep() {
        let rt = crate::clock::test_runtime(true);
        rt.block_on(async {
            let clock = Clock::Sim(crate::clock::sim::SimClock::start());
            let mut pacer = clock.pacer();
            assert!(!pacer.has_own_fd());
            let t0 = clock.now();
            pacer.sleep_until(t0 + Duration::from_nanos(2_345)).await;
            assert_eq!(clock.now() - t0, Duration::from_nanos(2_345));
        });
    }
}
