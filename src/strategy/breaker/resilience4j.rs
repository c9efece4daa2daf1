//! resilience4j's `CircuitBreakerStateMachine` and `CircuitBreakerMetrics`
//! (resilience4j-circuitbreaker, `internal/`), as a state machine.
//!
//! - Closed: every recorded outcome goes into a sliding window, count-based (the last
//!   `sliding_window_size` calls) or time-based (the calls of the last `sliding_window_size`
//!   seconds, in one-second buckets). Once the window holds `minimum_number_of_calls` (for a
//!   count-based window, at most its size), the breaker opens when the failure rate is at or
//!   above `failure_rate_threshold` %, or the slow-call rate at or above
//!   `slow_call_rate_threshold` %. A call is slow when it took strictly longer than
//!   `slow_call_duration_threshold`, success or failure.
//! - Open: calls are refused until strictly after `opened_at + wait_duration_in_open_state`;
//!   the first call after that moves the breaker to half-open (resilience4j's default, without
//!   automatic transition) and is its first trial. Outcomes that arrive while open are still
//!   recorded in the window the breaker opened with.
//! - Half-open: `permitted_number_of_calls_in_half_open_state` calls may go, the others are
//!   refused; their outcomes go into a fresh count-based window of that size, whose minimum is
//!   min(`minimum_number_of_calls`, permitted). Once it holds that many, the breaker opens if
//!   either rate is at or above its threshold and closes (with a fresh window) otherwise. An
//!   ignored outcome gives its permit back.
//!
//! Defaults are resilience4j's `CircuitBreakerConfig`: failure rate 50 %, slow-call rate 100 %,
//! slow-call duration 60 s, 10 calls in half-open, count-based window of 100, minimum 100
//! calls, 60 s open.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{Machine, State, Verdict};

pub use crate::profile::layers::WindowType;

/// resilience4j's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Count- or time-based window.
    pub window_type: WindowType,
    /// Calls (count-based) or seconds (time-based).
    pub window_size: u32,
    /// Calls the window must hold before the rates count.
    pub minimum_number_of_calls: u32,
    /// Failure rate, in percent, at or above which the breaker opens.
    pub failure_rate_threshold: f64,
    /// Slow-call rate, in percent, at or above which the breaker opens.
    pub slow_call_rate_threshold: f64,
    /// A call longer than this is slow.
    pub slow_call_duration_threshold: Duration,
    /// How long the breaker stays open.
    pub wait_duration_in_open_state: Duration,
    /// Trial calls in half-open.
    pub permitted_calls_in_half_open: u32,
}

/// One call's outcome, as the windows count it.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    calls: u32,
    failures: u32,
    slow: u32,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.calls += o.calls;
        self.failures += o.failures;
        self.slow += o.slow;
    }

    fn sub(&mut self, o: Counts) {
        self.calls -= o.calls;
        self.failures -= o.failures;
        self.slow -= o.slow;
    }
}

/// A sliding window and its running totals.
#[derive(Debug)]
enum Window {
    /// The last `size` outcomes.
    Count {
        size: usize,
        ring: VecDeque<Counts>,
        total: Counts,
    },
    /// Per-second buckets of the last `size` seconds, keyed by second since `origin`.
    Time {
        size: u64,
        origin: Instant,
        buckets: VecDeque<(u64, Counts)>,
        total: Counts,
    },
}

impl Window {
    fn count(size: u32) -> Self {
        Window::Count {
            size: size.max(1) as usize,
            ring: VecDeque::new(),
            total: Counts::default(),
        }
    }

    fn time(size: u32, origin: Instant) -> Self {
        Window::Time {
            size: u64::from(size.max(1)),
            origin,
            buckets: VecDeque::new(),
            total: Counts::default(),
        }
    }

    fn record(&mut self, now: Instant, outcome: Counts) -> Counts {
        match self {
            Window::Count { size, ring, total } => {
                if ring.len() == *size
                    && let Some(old) = ring.pop_front()
                {
                    total.sub(old);
                }
                ring.push_back(outcome);
                total.add(outcome);
                *total
            }
            Window::Time {
                size,
                origin,
                buckets,
                total,
            } => {
                let second = now.saturating_duration_since(*origin).as_secs();
                while buckets.front().is_some_and(|(s, _)| s + *size <= second) {
                    if let Some((_, old)) = buckets.pop_front() {
                        total.sub(old);
                    }
                }
                match buckets.back_mut() {
                    Some((s, c)) if *s == second => c.add(outcome),
                    _ => buckets.push_back((second, outcome)),
                }
                total.add(outcome);
                *total
            }
        }
    }
}

/// What a window's totals say.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    BelowMinimum,
    Below,
    Above,
}

/// resilience4j's state machine.
#[derive(Debug)]
pub struct Resilience4j {
    settings: Settings,
    state: State,
    window: Window,
    /// The window's minimum number of calls.
    minimum: u32,
    opened_at: Option<Instant>,
    permits: u32,
    origin: Instant,
}

impl Resilience4j {
    /// A closed breaker whose time-based window counts seconds from `origin`.
    pub fn new(settings: Settings, origin: Instant) -> Self {
        let mut b = Self {
            settings,
            state: State::Closed,
            window: Window::count(1),
            minimum: 1,
            opened_at: None,
            permits: 0,
            origin,
        };
        b.close();
        b
    }

    fn close(&mut self) {
        let s = self.settings;
        self.state = State::Closed;
        (self.window, self.minimum) = match s.window_type {
            WindowType::CountBased => (
                Window::count(s.window_size),
                s.minimum_number_of_calls.min(s.window_size),
            ),
            WindowType::TimeBased => (
                Window::time(s.window_size, self.origin),
                s.minimum_number_of_calls,
            ),
        };
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open;
        self.opened_at = Some(now);
    }

    fn half_open(&mut self) {
        let permitted = self.settings.permitted_calls_in_half_open;
        self.state = State::HalfOpen;
        self.window = Window::count(permitted);
        self.minimum = self.settings.minimum_number_of_calls.min(permitted);
        self.permits = permitted;
    }

    fn check(&self, total: Counts) -> Check {
        if total.calls == 0 || total.calls < self.minimum {
            return Check::BelowMinimum;
        }
        let rate = |n: u32| f64::from(n) * 100.0 / f64::from(total.calls);
        if rate(total.failures) >= self.settings.failure_rate_threshold
            || rate(total.slow) >= self.settings.slow_call_rate_threshold
        {
            Check::Above
        } else {
            Check::Below
        }
    }
}

impl Machine for Resilience4j {
    fn admit(&mut self, now: Instant) -> bool {
        if self.state == State::Open {
            let wait = self.settings.wait_duration_in_open_state;
            if self.opened_at.is_some_and(|at| now <= at + wait) {
                return false;
            }
            self.half_open();
        }
        if self.state == State::HalfOpen {
            if self.permits == 0 {
                return false;
            }
            self.permits -= 1;
        }
        true
    }

    fn record(&mut self, now: Instant, verdict: Verdict, duration: Duration) {
        let slow = duration > self.settings.slow_call_duration_threshold;
        let outcome = match verdict {
            Verdict::Ignored => {
                if self.state == State::HalfOpen {
                    self.permits += 1;
                }
                return;
            }
            Verdict::Failure => Counts {
                calls: 1,
                failures: 1,
                slow: u32::from(slow),
            },
            Verdict::Success => Counts {
                calls: 1,
                failures: 0,
                slow: u32::from(slow),
            },
        };
        let total = self.window.record(now, outcome);
        match (self.state, self.check(total)) {
            (State::Closed, Check::Above) => self.open(now),
            (State::HalfOpen, Check::Above) => self.open(now),
            (State::HalfOpen, Check::Below) => self.close(),
            _ => {}
        }
    }

    fn state(&self) -> State {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            window_type: WindowType::CountBased,
            window_size: 10,
            minimum_number_of_calls: 5,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_secs(60),
            wait_duration_in_open_state: Duration::from_secs(60),
            permitted_calls_in_half_open: 3,
        }
    }

    const FAST: Duration = Duration::from_millis(1);

    /// Nothing opens it before the minimum number of calls; then a rate *at* the threshold
    /// opens it (≥, not >).
    #[test]
    fn the_failure_rate_counts_from_the_minimum_and_opens_at_the_threshold() {
        let t0 = crate::clock::Clock::Tokio.now();
        let mut b = Resilience4j::new(settings(), t0);
        for _ in 0..4 {
            b.record(t0, Verdict::Failure, FAST);
        }
        assert_eq!(b.state(), State::Closed, "4 calls: below the minimum of 5");
        let mut b = Resilience4j::new(settings(), t0);
        for v in [Verdict::Success, Verdict::Success, Verdict::Success] {
            b.record(t0, v, FAST);
        }
        b.record(t0, Verdict::Failure, FAST);
        assert_eq!(b.state(), State::Closed);
        b.record(t0, Verdict::Failure, FAST);
        assert_eq!(b.state(), State::Closed, "2 of 5 = 40%");
        b.record(t0, Verdict::Failure, FAST);
        assert_eq!(b.state(), State::Open, "3 of 6 = 50%: at the threshold");
    }

    /// A call is slow only when strictly longer than the threshold.
    #[test]
    fn slow_calls_are_strictly_longer_than_the_threshold() {
        let t0 = crate::clock::Clock::Tokio.now();
        let s = Settings {
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_millis(100),
            ..settings()
        };
        let mut b = Resilience4j::new(s, t0);
        for _ in 0..5 {
            b.record(t0, Verdict::Success, Duration::from_millis(100));
        }
        assert_eq!(
            b.state(),
            State::Closed,
            "exactly at the threshold is not slow"
        );
        let mut b = Resilience4j::new(s, t0);
        for _ in 0..5 {
            b.record(t0, Verdict::Success, Duration::from_millis(101));
        }
        assert_eq!(b.state(), State::Open, "five slow successes of five: 100%");
    }

    /// The count-based window forgets the oldest calls: 5 failures among the last 10 open it,
    /// though they are only 5 of the 13 calls recorded.
    #[test]
    fn the_count_window_slides() {
        let t0 = crate::clock::Clock::Tokio.now();
        let mut b = Resilience4j::new(settings(), t0);
        let record = |b: &mut Resilience4j, v, n| {
            for _ in 0..n {
                b.record(t0, v, FAST);
            }
        };
        record(&mut b, Verdict::Success, 3);
        record(&mut b, Verdict::Failure, 2);
        record(&mut b, Verdict::Success, 5);
        assert_eq!(b.state(), State::Closed, "2 of 10");
        record(&mut b, Verdict::Failure, 2);
        assert_eq!(b.state(), State::Closed, "4 of the last 10");
        record(&mut b, Verdict::Failure, 1);
        assert_eq!(b.state(), State::Open, "5 of the last 10");
    }

    /// Open until strictly after the wait; then `permitted` trials, the rest refused; the
    /// trials' rate decides.
    #[test]
    fn half_open_permits_its_trials_and_their_rate_decides() {
        let t0 = crate::clock::Clock::Tokio.now();
        let mut b = Resilience4j::new(settings(), t0);
        for _ in 0..5 {
            b.record(t0, Verdict::Failure, FAST);
        }
        assert_eq!(b.state(), State::Open);
        let wait = Duration::from_secs(60);
        assert!(!b.admit(t0 + wait), "at exactly the wait: still open");
        let t = t0 + wait + Duration::from_nanos(1);
        assert!(b.admit(t) && b.admit(t) && b.admit(t));
        assert_eq!(b.state(), State::HalfOpen);
        assert!(!b.admit(t), "a fourth trial is refused");
        b.record(t, Verdict::Success, FAST);
        b.record(t, Verdict::Failure, FAST);
        assert_eq!(b.state(), State::HalfOpen, "2 of 3 trials recorded");
        b.record(t, Verdict::Success, FAST);
        assert_eq!(b.state(), State::Closed, "1 failure of 3 = 33% < 50%");
    }

    #[test]
    fn failing_trials_reopen_it() {
        let t0 = crate::clock::Clock::Tokio.now();
        let mut b = Resilience4j::new(settings(), t0);
        for _ in 0..5 {
            b.record(t0, Verdict::Failure, FAST);
        }
        let t = t0 + Duration::from_secs(61);
        for _ in 0..3 {
            assert!(b.admit(t));
        }
        b.record(t, Verdict::Failure, FAST);
        b.record(t, Verdict::Failure, FAST);
        assert_eq!(b.state(), State::HalfOpen);
        b.record(t, Verdict::Success, FAST);
        assert_eq!(b.state(), State::Open, "2 of 3 = 67%");
        assert!(!b.admit(t + Duration::from_secs(60)));
    }

    /// An ignored outcome in half-open gives its permit back.
    #[test]
    fn an_ignored_trial_returns_its_permit() {
        let t0 = crate::clock::Clock::Tokio.now();
        let mut b = Resilience4j::new(settings(), t0);
        for _ in 0..5 {
            b.record(t0, Verdict::Failure, FAST);
        }
        let t = t0 + Duration::from_secs(61);
        for _ in 0..3 {
            assert!(b.admit(t));
        }
        assert!(!b.admit(t));
        b.record(t, Verdict::Ignored, FAST);
        assert!(b.admit(t));
    }

    /// The time-based window counts the calls of the last N seconds.
    #[test]
    fn the_time_window_forgets_old_seconds() {
        let t0 = crate::clock::Clock::Tokio.now();
        let s = Settings {
            window_type: WindowType::TimeBased,
            window_size: 10,
            minimum_number_of_calls: 5,
            ..settings()
        };
        let mut b = Resilience4j::new(s, t0);
        for _ in 0..4 {
            b.record(t0, Verdict::Failure, FAST);
        }
        // Ten seconds later those four are gone: four new failures are below the minimum.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..4 {
            b.record(later, Verdict::Failure, FAST);
        }
        assert_eq!(b.state(), State::Closed);
        b.record(later, Verdict::Failure, FAST);
        assert_eq!(b.state(), State::Open);
    }
}
