//! gRPC's retry policy, gRFC A6 ("Client Retries"), as grpc-go implements it
//! (`clientStream.shouldRetry`, after grpc/grpc-go#7869), or as a client library departs from
//! it: the strategy's [`Flavor`] (docs/strategies.md, "Client flavors").
//!
//! After a failed attempt, in this order (grpc-go's, which docs/strategies.md lists too):
//! 1. A `grpc-retry-pushback-ms` that says not to retry (negative or unparseable, as the
//!    flavor reads it: [`super::pushback`]): not retried, and one throttle token is taken
//!    whatever the status (A6 "Pushback": "the only RPCs counted as failures ... receive a
//!    pushback response indicating not to retry"). C-core and grpc-js take it only with a
//!    retryable status, and a non-retryable one goes to step 2
//!    ([`Flavor::dont_retry_pushback_counts`]).
//! 2. A status not in `retryableStatusCodes`: not retried, and no token is taken; grpc-java
//!    retries any status after a valid pushback, without a token or a throttle check
//!    ([`Flavor::pushback_retries_any_status`]).
//! 3. Throttling: one token is taken, then retries stop if `token_count ≤ maxTokens / 2`
//!    (grpc-js compares only when the wait is over, [`Flavor::throttle_after_backoff`]).
//! 4. `maxAttempts` reached (values above 5 were clamped to 5): not retried.
//! 5. The wait: a valid pushback's value exactly, resetting the backoff to `initialBackoff`;
//!    otherwise the backoff ([`Backoff::GrpcA6`], or [`Backoff::GrpcA6Legacy`] on request, or
//!    the library's own, [`Backoff::Library`]), as the library's timers wait it
//!    ([`Flavor::timers`]). Newer C-core never starts a retry whose pushback is 0
//!    ([`Flavor::zero_pushback_hangs`]): the call waits for its deadline.
//!
//! The reasons recorded (`retry_denied`) follow this order for every flavor; the libraries
//! check in other orders (grpc-java and C-core read the throttle before the pushback, grpc-js
//! tests `maxAttempts` before it), which changes no outcome: the same tokens are taken and the
//! same attempts retried. A call that ends OK adds `tokenRatio`
//! (grpc-java: one whose response headers arrived, [`Flavor::success_on_headers`]). The
//! jitter's draw is keyed by (seed, call, retry), so every strategy with the same settings
//! waits the same.

use std::time::Duration;

use tonic::Code;

use super::backoff::{Backoff, BackoffState, Draws, GrpcJitter, Keyed};
use super::pushback::{Push, read};
use super::throttle::Throttle;
use super::{Denied, Policy, Wait, draw_index};
use crate::call::{Call, Failure, Outcome};
use crate::profile::client::Library;
use crate::profile::flavor::Flavor;

pub use crate::profile::service_config::MAX_ATTEMPTS_CAP;

/// A set of status codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Codes(u32);

impl Codes {
    /// The set of `codes`.
    pub fn of(codes: impl IntoIterator<Item = Code>) -> Self {
        Self(codes.into_iter().fold(0, |bits, c| bits | 1 << (c as u32)))
    }

    /// Whether `code` is in the set.
    pub fn contains(self, code: Code) -> bool {
        self.0 & (1 << (code as u32)) != 0
    }
}

/// The settings of a gRPC retry policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrpcRetry {
    /// maxAttempts, already clamped to 5.
    pub max_attempts: u32,
    /// initialBackoff.
    pub initial: Duration,
    /// maxBackoff.
    pub max: Duration,
    /// backoffMultiplier.
    pub multiplier: f64,
    /// retryableStatusCodes.
    pub retryable: Codes,
    /// Which jitter (for the A6 flavor; a library flavor has its own).
    pub jitter: GrpcJitter,
}

/// A6's retry policy for one strategy (one channel), its jitter drawn from `D`.
#[derive(Debug)]
pub struct GrpcPolicy<D = Keyed> {
    settings: GrpcRetry,
    backoff: Backoff,
    throttle: Option<Throttle>,
    draws: D,
    flavor: Flavor,
}

impl<D: Draws> GrpcPolicy<D> {
    /// A policy with `settings`, an optional throttle, and jitter drawn from `draws`, as the
    /// A6 text says.
    pub fn new(settings: GrpcRetry, throttle: Option<Throttle>, draws: D) -> Self {
        Self::flavored(settings, throttle, draws, Flavor::A6)
    }

    /// The same policy as `flavor`'s library runs it.
    pub fn flavored(
        settings: GrpcRetry,
        throttle: Option<Throttle>,
        draws: D,
        flavor: Flavor,
    ) -> Self {
        let (initial, max, multiplier) = (settings.initial, settings.max, settings.multiplier);
        let backoff = match (flavor.library, settings.jitter) {
            (Library::A6, GrpcJitter::A6) => Backoff::GrpcA6 {
                initial,
                max,
                multiplier,
            },
            (Library::A6, GrpcJitter::Legacy) => Backoff::GrpcA6Legacy {
                initial,
                max,
                multiplier,
            },
            _ => Backoff::Library {
                initial,
                max,
                multiplier,
                jitter: flavor.jitter,
                rule: flavor.backoff,
            },
        };
        Self {
            settings,
            backoff,
            throttle: throttle.map(|t| t.kept(flavor.bookkeeping)),
            draws,
            flavor,
        }
    }

    /// Counts a qualified failure; whether retries are still allowed (always, for a flavor
    /// that compares later).
    fn take_token(&self) -> bool {
        match &self.throttle {
            None => true,
            Some(t) if self.flavor.throttle_after_backoff => {
                t.take();
                true
            }
            Some(t) => t.on_failure(),
        }
    }
}

pub use super::backoff::jitter_draw;

impl<D: Draws> Policy for GrpcPolicy<D> {
    type CallState = BackoffState;

    fn begin(&self, _: &Call) -> BackoffState {
        BackoffState::default()
    }

    fn retry(
        &self,
        state: &mut BackoffState,
        call: &Call,
        failure: &Failure,
        attempts: u32,
        _left: Duration,
    ) -> Result<Wait, Denied> {
        let flavor = &self.flavor;
        let push = read(flavor, failure.pushback);
        let retryable = self.settings.retryable.contains(failure.code);
        // 1. "Do not retry": a throttling failure (C-core, grpc-js: with a retryable status).
        if push == Push::Stop && (retryable || flavor.dont_retry_pushback_counts) {
            self.take_token();
            return Err(Denied::Pushback);
        }
        // 2. The status (grpc-java: a valid pushback retries any, without a throttle token).
        let forced =
            !retryable && flavor.pushback_retries_any_status && matches!(push, Push::After(_));
        if !retryable && !forced {
            return Err(Denied::NotRetryable);
        }
        // 3. The throttle.
        if !forced && !self.take_token() {
            return Err(Denied::Throttled);
        }
        // 4. The attempts.
        if attempts >= self.settings.max_attempts {
            return Err(Denied::MaxAttempts);
        }
        let wait = match push {
            Push::After(delay) => {
                if delay.is_zero() && flavor.zero_pushback_hangs {
                    return Err(Denied::Hang);
                }
                *state = BackoffState::default();
                Wait {
                    delay,
                    pushback: true,
                }
            }
            Push::Absent | Push::Stop => Wait {
                delay: self
                    .backoff
                    .next(state, self.draws.draw(call.id, draw_index(call))),
                pushback: false,
            },
        };
        Ok(Wait {
            delay: flavor.timers.wait(wait.delay),
            ..wait
        })
    }

    fn before_retry(&self, _: &mut BackoffState) -> Result<(), Denied> {
        match &self.throttle {
            Some(t) if self.flavor.throttle_after_backoff && !t.allows() => {
                Err(if self.flavor.throttled_retry_hangs {
                    Denied::Hang
                } else {
                    Denied::Throttled
                })
            }
            _ => Ok(()),
        }
    }

    fn end(&self, _: BackoffState, outcome: &Outcome) {
        let success = match outcome {
            Ok(_) => true,
            Err(f) => f.committed && self.flavor.success_on_headers,
        };
        if let (Some(t), true) = (&self.throttle, success) {
            t.on_success();
        }
    }

    fn tokens(&self) -> Option<f64> {
        self.throttle.as_ref().map(Throttle::tokens)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::call::{AttemptKind, CallMeter, FailureSource};
    use crate::protocol::Pushback;

    /// Draws chosen by the test: the same `u` for every retry.
    struct Fixed(f64);

    impl Draws for Fixed {
        fn draw(&self, _: u64, _: u32) -> f64 {
            self.0
        }
    }

    fn policy(u: f64, throttle: Option<Throttle>) -> GrpcPolicy<Fixed> {
        let settings = GrpcRetry {
            max_attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(300),
            multiplier: 2.0,
            retryable: Codes::of([Code::Unavailable]),
            jitter: GrpcJitter::A6,
        };
        GrpcPolicy::new(settings, throttle, Fixed(u))
    }

    fn call() -> Call {
        let now = crate::clock::Clock::Tokio.now();
        Call {
            id: 0,
            intended: now,
            deadline: now,
            previous_attempts: 0,
            ordinal: 0,
            kind: AttemptKind::Original,
            warmup: false,
            payload_bytes: 0,
            method: crate::profile::Method::Unary,
            idempotency_key: false,
            sent_deadline: Some(now),
            meter: Arc::new(CallMeter::default()),
            commit: None,
            transparent: crate::profile::flavor::Transparent::A6,
        }
    }

    fn failure(code: Code, pushback: Option<Pushback>) -> Failure {
        Failure {
            code,
            pushback,
            source: FailureSource::Backend,
            messages: 0,
            committed: false,
        }
    }

    fn waits(p: &GrpcPolicy<Fixed>) -> Vec<Duration> {
        let (c, f) = (call(), failure(Code::Unavailable, None));
        let mut state = p.begin(&c);
        (1..5)
            .map(|n| p.retry(&mut state, &c, &f, n, Duration::MAX).unwrap().delay)
            .collect()
    }

    /// The window's ends: u = 0 gives exactly 0.8 of the capped exponential; u just under 1
    /// gives 1.2 of it (0.8 + 0.4u rounds to 1.2 in floating point, as it does in grpc-go).
    #[test]
    fn the_jitter_window_is_0_8_to_1_2_of_the_capped_exponential() {
        let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
        assert_eq!(
            waits(&policy(0.0, None)),
            [ms(80.0), ms(160.0), ms(240.0), ms(240.0)]
        );
        let top = waits(&policy(1.0 - f64::EPSILON, None));
        for (w, cap) in top.iter().zip([100.0, 200.0, 300.0, 300.0]) {
            assert!(*w <= ms(cap * 1.2) && *w > ms(cap * 1.2 - 1e-3), "{top:?}");
        }
    }

    /// grpc-go's order: a "don't retry" pushback is checked before the status, and takes a
    /// token even for a status that is not retryable; a valid pushback on a non-retryable
    /// status does not make it retryable.
    #[test]
    fn pushback_is_read_before_the_status() {
        let p = policy(0.5, Some(Throttle::new(10.0, 0.1)));
        let c = call();
        let mut state = p.begin(&c);
        let stop = failure(Code::InvalidArgument, Some(Pushback::dont_retry()));
        assert_eq!(
            p.retry(&mut state, &c, &stop, 1, Duration::MAX),
            Err(Denied::Pushback)
        );
        assert_eq!(p.tokens(), Some(9.0));
        let valid = failure(Code::InvalidArgument, Some(Pushback::after_ms(5)));
        assert_eq!(
            p.retry(&mut state, &c, &valid, 1, Duration::MAX),
            Err(Denied::NotRetryable)
        );
        assert_eq!(p.tokens(), Some(9.0));
        // A retryable status with a "don't retry" pushback, the bucket at its threshold: the
        // pushback is the reason recorded (step 1), not the throttle, and the token is taken.
        for _ in 0..4 {
            p.take_token();
        }
        let stop = failure(Code::Unavailable, Some(Pushback::dont_retry()));
        assert_eq!(
            p.retry(&mut state, &c, &stop, 1, Duration::MAX),
            Err(Denied::Pushback)
        );
        assert_eq!(p.tokens(), Some(4.0));
    }
}
