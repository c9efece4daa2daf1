//! Time: every clock read and every wait in resilbench goes through a [`Clock`].
//!
//! A load generator lives and dies by its clock, and one clock does not fit all runs:
//!
//! - [`Clock::Reactor`] (a real run's client side, Linux): the same deadlines, kept in a
//!   `timerfd` in the run's own current-thread runtime, so the kernel wakes that thread itself
//!   at the deadline and no hand-off between threads is needed (see [`reactor`]). The open-loop
//!   driver's own wake-ups have a timerfd of their own ([`Clock::pacer`], see [`pace`]).
//! - [`Clock::Precise`] (real runs elsewhere): deadlines in a heap served by one thread that
//!   parks until the earliest (`park_timeout`, an hrtimer on Linux). tokio's own timer wheel
//!   has a 1 ms resolution and rounds every deadline *up* to the next millisecond: calls would
//!   leave up to 1 ms late (generator lag p99 ≈ 1–2 ms at any rate) and a backend told to
//!   answer in 2 ms would answer in 2–3 ms. The precise timer wakes tens of microseconds late, never early.
//! - [`Clock::Sim`] (`--clock virtual`, tests): simulated time with nanosecond resolution that
//!   jumps from one deadline to the next as soon as nothing else can run. tokio's paused clock
//!   would jump in whole milliseconds too, so it is used only to learn when the runtime is idle
//!   (see [`sim`]). Runs are exact and reproducible, and take no wall time to wait.
//! - [`Clock::Tokio`]: tokio's timer, for the layers used on their own in an ordinary tonic
//!   client, where nothing else is needed.
//!
//! `clippy.toml` bans std's `Instant`, and the module lints ban tokio's clock functions,
//! outside this module, so no code can read a different clock by accident.

pub mod calibrate;
mod heap;
pub mod pace;
pub mod precise;
#[cfg(target_os = "linux")]
pub mod reactor;
pub mod sim;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

/// Where time comes from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// tokio's timer (1 ms resolution).
    #[default]
    Tokio,
    /// Real time, on the precise timer thread.
    Precise,
    /// Real time, on a timerfd in the reactor of the runtime that started it.
    #[cfg(target_os = "linux")]
    Reactor(reactor::ReactorTimer),
    /// Simulated time.
    Sim(sim::SimClock),
}

/// The open-loop driver's shortest time between wake-ups on real time at low rates, unless the
/// profile sets `load.wake_quantum` ([`Clock::wake_quantum`]); it grows with the rate above
/// 4,000 calls/s (`profile::plan::auto_wake_quantum`).
pub const REAL_WAKE_QUANTUM: Duration = Duration::from_micros(100);

/// The deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl Clock {
    /// The current time.
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> Instant {
        match self {
            Clock::Tokio | Clock::Precise => Instant::now(),
            #[cfg(target_os = "linux")]
            Clock::Reactor(_) => Instant::now(),
            Clock::Sim(sim) => sim.now(),
        }
    }

    /// The shortest time the open-loop driver leaves between two of its planned wake-ups on
    /// this clock, for a profile's `load.wake_quantum` of `configured`: calls falling due in
    /// between leave together at the second, up to this much late (and counted late, as
    /// generator lag, never early). Zero, every call at its own instant, on simulated time and
    /// tokio's timer; `configured` (from [`REAL_WAKE_QUANTUM`] up, by default) on the precise clocks,
    /// where each wake-up of the client's thread costs a context switch: at 10,000 calls/s and
    /// more, one wake-up per call cost the client more CPU than the calls (docs/PERFORMANCE.md,
    /// "The driver's wake-ups").
    pub fn wake_quantum(&self, configured: Duration) -> Duration {
        match self {
            Clock::Precise => configured,
            #[cfg(target_os = "linux")]
            Clock::Reactor(_) => configured,
            Clock::Tokio | Clock::Sim(_) => Duration::ZERO,
        }
    }

    /// The precise real-time clock for the current runtime: its own reactor's timer where
    /// there is one (Linux, inside a runtime), else the timer thread.
    pub fn real() -> Clock {
        #[cfg(target_os = "linux")]
        if let Some(timer) = reactor::ReactorTimer::start() {
            return Clock::Reactor(timer);
        }
        Clock::Precise
    }

    /// The same time for work on other runtimes: a reactor's timer is the cheap choice only
    /// for its own runtime's tasks, so real time elsewhere is the timer thread's.
    pub fn for_other_runtimes(&self) -> Clock {
        match self {
            #[cfg(target_os = "linux")]
            Clock::Reactor(_) => Clock::Precise,
            other => other.clone(),
        }
    }

    /// The instant of this clock at wall-clock time `t`: ahead or behind now by as much as `t`
    /// is ahead of or behind the system time (an instant before the clock's own origin cannot
    /// be expressed and reads as now).
    pub fn instant_at(&self, t: std::time::SystemTime) -> Instant {
        let now = self.now();
        match t.duration_since(std::time::SystemTime::now()) {
            Ok(ahead) => now + ahead,
            Err(late) => now.checked_sub(late.duration()).unwrap_or(now),
        }
    }

    /// A future that completes at `deadline` (at once if it has passed).
    #[allow(clippy::disallowed_methods)]
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        match self {
            Clock::Tokio => Sleep::Tokio(Box::pin(tokio::time::sleep_until(deadline))),
            Clock::Precise => Sleep::Precise(precise::PreciseSleep::new(deadline)),
            #[cfg(target_os = "linux")]
            Clock::Reactor(timer) => {
                Sleep::Reactor(reactor::ReactorSleep::new(timer.clone(), deadline))
            }
            Clock::Sim(sim) => Sleep::Sim(sim.sleep_until(deadline)),
        }
    }

    /// A future that completes after `duration`.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(self.now() + duration)
    }

    /// Runs `future` until `deadline`; `Err(Elapsed)` if the deadline comes first. When both are
    /// ready at once, the future's output wins.
    pub async fn timeout_at<F: Future>(
        &self,
        deadline: Instant,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        tokio::select! {
            biased;
            out = future => Ok(out),
            _ = self.sleep_until(deadline) => Err(Elapsed),
        }
    }

    /// Runs `future` for at most `duration`.
    pub async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        self.timeout_at(self.now() + duration, future).await
    }
}

/// The future of [`Clock::sleep_until`].
#[derive(Debug)]
pub enum Sleep {
    /// On tokio's timer.
    Tokio(Pin<Box<tokio::time::Sleep>>),
    /// On the precise timer thread.
    Precise(precise::PreciseSleep),
    /// On a reactor's timerfd.
    #[cfg(target_os = "linux")]
    Reactor(reactor::ReactorSleep),
    /// On simulated time.
    Sim(sim::SimSleep),
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Sleep::Tokio(s) => s.as_mut().poll(cx),
            Sleep::Precise(s) => Pin::new(s).poll(cx),
            #[cfg(target_os = "linux")]
            Sleep::Reactor(s) => Pin::new(s).poll(cx),
            Sleep::Sim(s) => Pin::new(s).poll(cx),
        }
    }
}

/// A current-thread runtime for the tests, its time paused (simulated, tokio's `start_paused`)
/// when `paused`.
#[cfg(test)]
pub(crate) fn test_runtime(paused: bool) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all().start_paused(paused);
    builder.build().expect("a test runtime")
}
