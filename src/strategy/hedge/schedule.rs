//! When the next hedge goes: gRFC A6's hedging timer, or a client library's
//! ([`Flavor`]; docs/strategies.md, "Client flavors").
//!
//! A6: the next hedge is due `hedgingDelay` after the last one went; a non-fatal status sends
//! it at once, a pushback after exactly its delay, a "don't retry" pushback never; the throttle
//! is read when a hedge is due. The libraries depart from this at named points:
//! - grpc-java reads the throttle when it *schedules* the next hedge (and freezes hedging if it
//!   says no); a non-fatal status without pushback leaves the timer alone; a positive pushback
//!   is zeroed from 1.57 on; a throttled non-fatal failure ends the call;
//! - grpc-js never reads the throttle; a non-fatal failure starts a one-shot timer (0 ms, or
//!   the pushback's delay) that sends a hedge and, if nothing is left running, ends the call
//!   with that failure, while the hedging timer keeps running; a "don't retry" pushback ends
//!   the call; every timer waits at least 1 ms (Node's `setTimeout`).

use std::time::Duration;

use tokio::time::Instant;

use super::super::retry::pushback::{Push, read};
use super::super::retry::throttle::Throttle;
use crate::call::Failure;
use crate::profile::flavor::{Flavor, HedgePushback};

/// A timer that fired.
#[derive(Debug)]
pub enum Due {
    /// The hedging timer: send the next hedge.
    Hedge,
    /// A grpc-js one-shot after a non-fatal failure: send a hedge if one may go, and end the
    /// call with this failure if no attempt is left running.
    OneShot(Failure),
}

/// What a failed attempt does to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The call ends with this failure now; the other attempts are cancelled.
    End,
    /// The call goes on.
    Go,
}

/// One call's hedging timers.
#[derive(Debug)]
pub struct Schedule {
    flavor: Flavor,
    delay: Duration,
    max: u32,
    /// The hedging timer, with the order it was armed in (ties go in that order).
    next: Option<(Instant, u64)>,
    /// grpc-java's "hedging frozen": no hedge will ever be scheduled again.
    frozen: bool,
    /// grpc-js's one-shot timers.
    extra: Vec<(Instant, u64, Failure)>,
    armed: u64,
}

impl Schedule {
    /// The timers of a call sending at most `max` attempts, `delay` apart, as `flavor` does.
    pub fn new(flavor: Flavor, delay: Duration, max: u32) -> Self {
        Self {
            flavor,
            delay: flavor.timers.wait_seconds(delay),
            max,
            next: None,
            frozen: false,
            extra: Vec::new(),
            armed: 0,
        }
    }

    fn arm(&mut self, at: Instant) -> (Instant, u64) {
        self.armed += 1;
        (at, self.armed)
    }

    /// Attempt number `sent` (counting from 1, the original) just went at `now`.
    pub fn sent(&mut self, now: Instant, sent: u32, throttle: Option<&Throttle>) {
        let more = sent < self.max && !self.frozen;
        if !self.flavor.hedge_throttle_when_scheduled {
            self.next = more.then(|| self.arm(now + self.delay));
            return;
        }
        // grpc-java: `start()` and `HedgingRunnable` schedule the next hedge only while the
        // bucket is above half; a hedge (not the original) that cannot schedule one freezes.
        if more && throttle.is_none_or(Throttle::allows) {
            self.next = Some(self.arm(now + self.delay));
        } else {
            self.next = None;
            self.frozen |= sent > 1;
        }
    }

    /// The earliest timer, if any.
    pub fn due(&self) -> Option<Instant> {
        let extra = self.extra.iter().map(|(at, _, _)| *at).min();
        match (self.next.map(|(at, _)| at), extra) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes a timer due at `now`, the earliest first.
    pub fn pop(&mut self, now: Instant) -> Option<Due> {
        let first_extra = (0..self.extra.len())
            .filter(|&i| self.extra[i].0 <= now)
            .min_by_key(|&i| (self.extra[i].0, self.extra[i].1));
        let next = self.next.filter(|(at, _)| *at <= now);
        match (next, first_extra) {
            (Some(n), Some(i)) if (n.0, n.1) < (self.extra[i].0, self.extra[i].1) => {
                self.next = None;
                Some(Due::Hedge)
            }
            (_, Some(i)) => Some(Due::OneShot(self.extra.remove(i).2)),
            (Some(_), None) => {
                self.next = None;
                Some(Due::Hedge)
            }
            (None, None) => None,
        }
    }

    /// Whether the hedge whose timer fired may go, after `sent` attempts (A6 reads the
    /// throttle now; the libraries do not).
    pub fn may_send(&self, sent: u32, throttle: Option<&Throttle>) -> bool {
        let reads_now =
            !self.flavor.hedge_throttle_when_scheduled && !self.flavor.hedges_ignore_throttle;
        sent < self.max && !(reads_now && throttle.is_some_and(|t| !t.allows()))
    }

    /// Whether a hedge may still go, after `sent` attempts.
    pub fn potential(&self, sent: u32) -> bool {
        if self.flavor.hedge_throttle_when_scheduled {
            // grpc-java's `hasPotentialHedging`: not frozen, attempts left, timer or not.
            !self.frozen && sent < self.max
        } else {
            self.next.is_some() || !self.extra.is_empty()
        }
    }

    /// The call is decided: no timer fires any more.
    pub fn stop(&mut self) {
        self.next = None;
        self.extra.clear();
        self.frozen = true;
    }

    /// An attempt failed at `now` (`fatal`: a status outside nonFatalStatusCodes, or after the
    /// call committed): takes its throttle token (the second value: whether it did) and moves
    /// the timers.
    pub fn failed(
        &mut self,
        now: Instant,
        failure: &Failure,
        fatal: bool,
        throttle: Option<&Throttle>,
    ) -> (Verdict, bool) {
        let flavor = self.flavor;
        let push = read(&flavor, failure.pushback);
        let stop = push == Push::Stop;
        // A6: non-fatal statuses and "don't retry" pushback are the throttle's failures.
        let (mut allowed, mut counted) = (true, false);
        if let Some(t) = throttle
            && (!fatal || (stop && flavor.dont_retry_pushback_counts))
        {
            allowed = t.on_failure();
            counted = true;
        }
        if fatal
            || (!allowed && flavor.throttled_hedge_ends_call)
            || (stop && flavor.stop_pushback_ends_hedged_call)
        {
            return (Verdict::End, counted);
        }
        if flavor.hedge_pushback == HedgePushback::ExtraTimer {
            // grpc-js: a one-shot timer; the hedging timer runs on.
            let delay = match push {
                Push::After(d) => d,
                Push::Absent | Push::Stop => Duration::ZERO,
            };
            let (at, n) = self.arm(now + flavor.timers.wait(delay));
            self.extra.push((at, n, failure.clone()));
            return (Verdict::Go, counted);
        }
        if !allowed {
            // A6: no further hedge; the attempts already out may still win.
            self.next = None;
        }
        match push {
            Push::Stop => {
                self.next = None;
                self.frozen = true;
            }
            Push::Absent if flavor.non_fatal_waits_for_timer => {}
            Push::Absent | Push::After(_) if self.next.is_some() => {
                let delay = match push {
                    Push::After(d) if flavor.hedge_pushback == HedgePushback::Reschedule => d,
                    _ => Duration::ZERO,
                };
                self.next = Some(self.arm(now + delay));
            }
            Push::Absent | Push::After(_) => {}
        }
        (Verdict::Go, counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::client::{Library, Version};

    /// A hedge is scheduled while the bucket is full; other calls' failures then empty it
    /// to half before the hedge is due. A6 reads the throttle when the hedge is due and sends
    /// nothing; grpc-java read it when it scheduled the hedge, and sends it.
    #[tokio::test(start_paused = true)]
    async fn grpc_java_reads_the_throttle_when_it_schedules_a_hedge() {
        let now = crate::clock::Clock::Tokio.now();
        let delay = Duration::from_millis(10);
        for (flavor, sends) in [
            (Flavor::A6, false),
            (Flavor::of(Library::GrpcJava, Version(1, 83, 1)), true),
        ] {
            let throttle = Throttle::new(10.0, 0.1);
            let mut schedule = Schedule::new(flavor, delay, 3);
            schedule.sent(now, 1, Some(&throttle));
            assert_eq!(schedule.due(), Some(now + delay));
            for _ in 0..5 {
                throttle.on_failure();
            }
            assert!(matches!(schedule.pop(now + delay), Some(Due::Hedge)));
            assert_eq!(schedule.may_send(1, Some(&throttle)), sends, "{flavor:?}");
        }
        // grpc-java schedules nothing from a half-empty bucket, without freezing: a later
        // pushback finds no timer to move.
        let throttle = Throttle::new(10.0, 0.1);
        for _ in 0..5 {
            throttle.on_failure();
        }
        let mut java = Schedule::new(Flavor::of(Library::GrpcJava, Version(1, 83, 1)), delay, 3);
        java.sent(now, 1, Some(&throttle));
        assert_eq!(java.due(), None);
        assert!(java.potential(1));
    }
}
