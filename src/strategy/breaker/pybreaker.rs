//! danielfm/pybreaker's `CircuitBreaker` (`src/pybreaker/__init__.py`), as a state machine.
//!
//! - Closed: a failure increments the failure counter, and the breaker opens once the counter
//!   reaches `fail_max`; a success resets the counter, so it opens after `fail_max`
//!   *consecutive* failures. Statuses that are not failures (pybreaker's excluded exceptions)
//!   count as successes.
//! - Open: a call is refused while `now < opened_at + reset_timeout`; the first call at or
//!   after that instant moves the breaker to half-open and goes through.
//! - Half-open: calls go through; a success increments the success counter and closes the
//!   breaker once it reaches `success_threshold`; a failure re-opens it (a new `opened_at`).
//! - Counters as pybreaker keeps them: closing resets both, opening and half-opening reset the
//!   success counter; the failure counter moves on every outcome, whatever the state.
//!
//! Defaults are pybreaker's: `fail_max` 5, `reset_timeout` 60 s, `success_threshold` 1.

use std::time::Duration;

use tokio::time::Instant;

use super::{Machine, State, Verdict};

/// pybreaker's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Consecutive failures that open the breaker.
    pub fail_max: u32,
    /// How long the breaker stays open before a trial call.
    pub reset_timeout: Duration,
    /// Trial successes that close it again.
    pub success_threshold: u32,
}

/// pybreaker's state machine.
#[derive(Debug)]
pub struct PyBreaker {
    settings: Settings,
    state: State,
    fail_counter: u32,
    success_counter: u32,
    opened_at: Option<Instant>,
}

impl PyBreaker {
    /// A closed breaker.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            state: State::Closed,
            fail_counter: 0,
            success_counter: 0,
            opened_at: None,
        }
    }

    fn open(&mut self, now: Instant) {
        self.opened_at = Some(now);
        self.state = State::Open;
        self.success_counter = 0;
    }

    /// The failure counter (for tests).
    pub fn fail_counter(&self) -> u32 {
        self.fail_counter
    }
}

impl Machine for PyBreaker {
    fn admit(&mut self, now: Instant) -> bool {
        if self.state != State::Open {
            return true;
        }
        if self
            .opened_at
            .is_some_and(|at| now < at + self.settings.reset_timeout)
        {
            return false;
        }
        self.state = State::HalfOpen;
        self.success_counter = 0;
        true
    }

    fn record(&mut self, now: Instant, verdict: Verdict, _: Duration) {
        match verdict {
            Verdict::Failure => {
                self.fail_counter = self.fail_counter.saturating_add(1);
                match self.state {
                    State::Closed if self.fail_counter >= self.settings.fail_max => self.open(now),
                    State::HalfOpen => self.open(now),
                    _ => {}
                }
            }
            Verdict::Success | Verdict::Ignored => {
                self.fail_counter = 0;
                if self.state == State::HalfOpen {
                    self.success_counter += 1;
                    if self.success_counter >= self.settings.success_threshold {
                        self.state = State::Closed;
                        self.success_counter = 0;
                    }
                }
            }
        }
    }

    fn state(&self) -> State {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(fail_max: u32, success_threshold: u32) -> PyBreaker {
        PyBreaker::new(Settings {
            fail_max,
            reset_timeout: Duration::from_secs(60),
            success_threshold,
        })
    }

    fn at(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn consecutive_failures_open_it_and_a_success_resets_the_count() {
        let t0 = crate::clock::Clock::Tokio.now();
        let mut b = breaker(3, 1);
        let d = Duration::ZERO;
        b.record(t0, Verdict::Failure, d);
        b.record(t0, Verdict::Failure, d);
        b.record(t0, Verdict::Success, d);
        assert_eq!((b.state(), b.fail_counter()), (State::Closed, 0));
        for _ in 0..3 {
            assert!(b.admit(t0));
            b.record(t0, Verdict::Failure, d);
        }
        assert_eq!(b.state(), State::Open);
    }

    /// Open until `opened_at + reset_timeout` exclusive; at that instant the call goes through
    /// as a trial.
    #[test]
    fn the_reset_timeout_is_inclusive() {
        let t0 = crate::clock::Clock::Tokio.now();
        let mut b = breaker(1, 2);
        b.record(t0, Verdict::Failure, Duration::ZERO);
        assert!(!b.admit(at(t0, 60) - Duration::from_nanos(1)));
        assert_eq!(b.state(), State::Open);
        assert!(b.admit(at(t0, 60)));
        assert_eq!(b.state(), State::HalfOpen);
        b.record(at(t0, 60), Verdict::Success, Duration::ZERO);
        assert_eq!(
            b.state(),
            State::HalfOpen,
            "success_threshold 2: one is not enough"
        );
        b.record(at(t0, 60), Verdict::Success, Duration::ZERO);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn a_failure_in_half_open_reopens_with_a_new_timeout() {
        let t0 = crate::clock::Clock::Tokio.now();
        let mut b = breaker(1, 1);
        b.record(t0, Verdict::Failure, Duration::ZERO);
        assert!(b.admit(at(t0, 60)));
        b.record(at(t0, 61), Verdict::Failure, Duration::ZERO);
        assert_eq!(b.state(), State::Open);
        assert!(
            !b.admit(at(t0, 120)),
            "opened again at 61 s: closed to calls until 121 s"
        );
        assert!(b.admit(at(t0, 121)));
    }
}
