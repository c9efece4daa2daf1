//! gRPC's retry policy, gRFC A6 ("Client Retries"), as grpc-go implements it
//! (`clientStream.shouldRetry`, after grpc/grpc-go#7869).
//!
//! After a failed attempt, in this order:
//! 1. `grpc-retry-pushback-ms` that is negative or unparseable: not retried, and it counts as a
//!    throttling failure whatever the status (A6 "Pushback"; "the only RPCs counted as
//!    failures ... receive a pushback response indicating not to retry").
//! 2. A status not in `retryableStatusCodes`: not retried, and no token is taken.
//! 3. Throttling: one token is taken, then retries stop if `token_count ≤ maxTokens / 2`.
//! 4. `maxAttempts` reached (values above 5 were clamped to 5): not retried.
//! 5. The wait: a valid pushback's value exactly, resetting the backoff to `initialBackoff`;
//!    otherwise the backoff ([`Backoff::GrpcA6`], or [`Backoff::GrpcA6Legacy`] on request).
//!
//! A call that ends OK adds `tokenRatio` tokens. The jitter's draw is keyed by (seed, call,
//! retry), so every strategy with the same settings waits the same.
//!
//! grpc-java differs in one place: it retries a *non-retryable* status when the server sends a
//! valid pushback (`RetriableStream.makeRetryDecision`); this policy follows grpc-go and A6's
//! retryable-status rule.

use tonic::Code;

use super::backoff::{Backoff, BackoffState, Draws, GrpcJitter, Keyed};
use super::throttle::Throttle;
use super::{Denied, Policy, Wait, draw_index};
use crate::call::{Call, Failure, Outcome};
use crate::protocol::status::Pushback;

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
    pub initial: std::time::Duration,
    /// maxBackoff.
    pub max: std::time::Duration,
    /// backoffMultiplier.
    pub multiplier: f64,
    /// retryableStatusCodes.
    pub retryable: Codes,
    /// Which jitter.
    pub jitter: GrpcJitter,
}

/// A6's retry policy for one strategy (one channel), its jitter drawn from `D`.
#[derive(Debug)]
pub struct GrpcPolicy<D = Keyed> {
    settings: GrpcRetry,
    backoff: Backoff,
    throttle: Option<Throttle>,
    draws: D,
}

impl<D: Draws> GrpcPolicy<D> {
    /// A policy with `settings`, an optional throttle, and jitter drawn from `draws`.
    pub fn new(settings: GrpcRetry, throttle: Option<Throttle>, draws: D) -> Self {
        let (initial, max, multiplier) = (settings.initial, settings.max, settings.multiplier);
        let backoff = match settings.jitter {
            GrpcJitter::A6 => Backoff::GrpcA6 {
                initial,
                max,
                multiplier,
            },
            GrpcJitter::Legacy => Backoff::GrpcA6Legacy {
                initial,
                max,
                multiplier,
            },
        };
        Self {
            settings,
            backoff,
            throttle,
            draws,
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
        _left: std::time::Duration,
    ) -> Result<Wait, Denied> {
        let pushback = match failure.pushback {
            Some(Pushback::DontRetry) => {
                if let Some(t) = &self.throttle {
                    t.on_failure();
                }
                return Err(Denied::Pushback);
            }
            Some(Pushback::RetryAfterMs(ms)) => Some(ms),
            None => None,
        };
        if !self.settings.retryable.contains(failure.code) {
            return Err(Denied::NotRetryable);
        }
        if let Some(t) = &self.throttle
            && !t.on_failure()
        {
            return Err(Denied::Throttled);
        }
        if attempts >= self.settings.max_attempts {
            return Err(Denied::MaxAttempts);
        }
        Ok(match pushback {
            Some(ms) => {
                *state = BackoffState::default();
                Wait {
                    delay: std::time::Duration::from_millis(u64::from(ms)),
                    pushback: true,
                }
            }
            None => {
                let u = self.draws.draw(call.id, draw_index(call));
                Wait {
                    delay: self.backoff.next(state, u),
                    pushback: false,
                }
            }
        })
    }

    fn end(&self, _: BackoffState, outcome: &Outcome) {
        if let (Some(t), Ok(_)) = (&self.throttle, outcome) {
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
        let stop = failure(Code::InvalidArgument, Some(Pushback::DontRetry));
        assert_eq!(
            p.retry(&mut state, &c, &stop, 1, Duration::MAX),
            Err(Denied::Pushback)
        );
        assert_eq!(p.tokens(), Some(9.0));
        let valid = failure(Code::InvalidArgument, Some(Pushback::RetryAfterMs(5)));
        assert_eq!(
            p.retry(&mut state, &c, &valid, 1, Duration::MAX),
            Err(Denied::NotRetryable)
        );
        assert_eq!(p.tokens(), Some(9.0));
    }
}
