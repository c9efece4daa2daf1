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

use super::backoff::{Backoff, BackoffState, GrpcJitter};
use super::throttle::Throttle;
use super::{Denied, Policy, Wait};
use crate::call::{Call, Failure, Outcome};
use crate::keyed::{KeyedStream, Purpose, call_key};
use crate::status::Pushback;

/// A6's client-side cap on `maxAttempts` ("Limits on Retries and Hedges").
pub const MAX_ATTEMPTS_CAP: u32 = 5;

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

/// A6's retry policy for one strategy (one channel).
#[derive(Debug)]
pub struct GrpcPolicy {
    settings: GrpcRetry,
    backoff: Backoff,
    throttle: Option<Throttle>,
    seed: u64,
}

impl GrpcPolicy {
    /// A policy with `settings`, an optional throttle, and jitter drawn from `seed`.
    pub fn new(settings: GrpcRetry, throttle: Option<Throttle>, seed: u64) -> Self {
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
            seed,
        }
    }
}

/// The uniform draw for the jitter of retry `n` of the call with id `call_id`.
pub fn jitter_draw(seed: u64, call_id: u64, n: u32) -> f64 {
    let u = KeyedStream::new(seed, call_key(call_id), n, Purpose::Jitter).open01();
    // open01 is in (0, 1); the formulas take [0, 1).
    u.min(1.0 - f64::EPSILON)
}

impl Policy for GrpcPolicy {
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
                let u = jitter_draw(self.seed, call.id, attempts);
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
