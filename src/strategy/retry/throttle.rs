//! gRPC retry throttling (gRFC A6, "Throttling Retry Attempts and Hedged RPCs").
//!
//! One token bucket per channel (here: per strategy): `token_count` starts at `maxTokens` and
//! stays in [0, maxTokens]; every failed RPC takes 1 token, every successful RPC adds
//! `tokenRatio`; retries and hedges are allowed only while `token_count > maxTokens / 2`.
//!
//! Exactly as the implementations do it:
//! - tokens are integer milli-tokens (grpc-java's `Throttle`), so `tokenRatio`'s three decimal
//!   places are exact and further decimals are ignored, as A6 says;
//! - a qualified failure first takes its token, *then* the count is compared with the
//!   threshold (grpc-go's `retryThrottler.throttle`, grpc-java's
//!   `onQualifiedFailureThenCheckIsAboveThreshold`), and this happens even on the last attempt;
//! - a success is counted once per RPC, when the call ends OK.
//!
//! Only retryable (or hedging non-fatal) statuses and pushback that says "don't retry" are
//! qualified failures; a status such as INVALID_ARGUMENT takes no token.
//!
//! grpc-js 1.8.0–1.13.0 kept the bucket with `min` and `max` swapped
//! ([`Bookkeeping::SwappedMinMax`]; fixed by grpc/grpc-node#2927 in 1.13.1): a failure set the
//! count to `min(count − 1, 0)`, a success to `max(count + tokenRatio, maxTokens)`.

use std::sync::atomic::{AtomicI64, Ordering};

pub use crate::profile::flavor::Bookkeeping;

/// A6's token bucket.
#[derive(Debug)]
pub struct Throttle {
    max: i64,
    ratio: i64,
    tokens: AtomicI64,
    bookkeeping: Bookkeeping,
}

/// Milli-units of a number with at most three decimals; further decimals are dropped.
pub fn milli(x: f64) -> i64 {
    // The small nudge keeps 0.57 (0.56999…) from truncating to 569.
    (x * 1000.0 + 1e-6).floor() as i64
}

impl Throttle {
    /// A full bucket of `max_tokens`, refilled by `token_ratio` per success.
    pub fn new(max_tokens: f64, token_ratio: f64) -> Self {
        let max = milli(max_tokens);
        Self {
            max,
            // A ratio above the bucket refills it in one success; larger values change nothing
            // and could overflow.
            ratio: milli(token_ratio).min(max),
            tokens: AtomicI64::new(max),
            bookkeeping: Bookkeeping::A6,
        }
    }

    /// The same bucket kept as `bookkeeping` says.
    pub fn kept(mut self, bookkeeping: Bookkeeping) -> Self {
        self.bookkeeping = bookkeeping;
        self
    }

    /// Takes a failure's token without comparing (grpc-js compares later, [`Throttle::allows`]).
    pub fn take(&self) {
        let swapped = self.bookkeeping == Bookkeeping::SwappedMinMax;
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(if swapped {
                    (t - 1000).min(0)
                } else {
                    (t - 1000).max(0)
                })
            });
    }

    fn threshold(&self) -> i64 {
        self.max / 2
    }

    /// Counts a qualified failure; returns whether retries and hedges are still allowed.
    pub fn on_failure(&self) -> bool {
        if self.bookkeeping == Bookkeeping::SwappedMinMax {
            self.take();
            return self.allows();
        }
        let before = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some((t - 1000).max(0))
            })
            .expect("the update always succeeds");
        (before - 1000).max(0) > self.threshold()
    }

    /// Counts a successful RPC.
    pub fn on_success(&self) {
        let (max, ratio) = (self.max, self.ratio);
        let swapped = self.bookkeeping == Bookkeeping::SwappedMinMax;
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(if swapped {
                    t.saturating_add(ratio).max(max)
                } else {
                    (t + ratio).min(max)
                })
            });
    }

    /// Whether retries and hedges are allowed now (without counting anything).
    pub fn allows(&self) -> bool {
        self.tokens.load(Ordering::Acquire) > self.threshold()
    }

    /// The token count now.
    pub fn tokens(&self) -> f64 {
        self.tokens.load(Ordering::Acquire) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// grpc-js 1.8.0–1.13.0: the first failure empties the bucket (and more go below zero);
    /// one success fills it (and more go above maxTokens).
    #[test]
    fn swapped_bookkeeping_follows_the_last_event() {
        let t = Throttle::new(10.0, 0.1).kept(Bookkeeping::SwappedMinMax);
        assert!(!t.on_failure());
        assert_eq!(t.tokens(), 0.0);
        t.take();
        assert_eq!(t.tokens(), -1.0);
        t.on_success();
        assert_eq!(t.tokens(), 10.0);
        assert!(t.allows());
        t.on_success();
        assert_eq!(t.tokens(), 10.1);
        assert!(!t.on_failure(), "min(10.1 - 1, 0) = 0");
    }

    #[test]
    fn ratios_keep_three_decimals() {
        assert_eq!(milli(0.1), 100);
        assert_eq!(milli(0.57), 570);
        assert_eq!(milli(0.5678), 567);
        assert_eq!(milli(10.0), 10_000);
    }

    /// maxTokens 10, tokenRatio 0.1: the threshold is 5 tokens. Failures take 10 → 9 → 8 → 7
    /// → 6 (each still above 5: allowed) → 5 (not above: throttled).
    #[test]
    fn failures_take_a_token_then_compare_with_half_the_bucket() {
        let t = Throttle::new(10.0, 0.1);
        let allowed: Vec<bool> = (0..6).map(|_| t.on_failure()).collect();
        assert_eq!(allowed, vec![true, true, true, true, false, false]);
        assert_eq!(t.tokens(), 4.0);
        for _ in 0..10 {
            t.on_failure();
        }
        assert_eq!(t.tokens(), 0.0, "never below zero");
    }

    /// From an empty bucket, a failure is allowed again only once it leaves more than 5
    /// tokens: 6.1 before it, i.e. 61 successes of 0.1.
    #[test]
    fn sixty_one_successes_re_enable_retries_from_empty() {
        let t = Throttle::new(10.0, 0.1);
        for _ in 0..20 {
            t.on_failure();
        }
        for _ in 0..60 {
            t.on_success();
        }
        assert!(!t.on_failure(), "6.0 - 1 = 5.0 is not above the threshold");
        let t = Throttle::new(10.0, 0.1);
        for _ in 0..20 {
            t.on_failure();
        }
        for _ in 0..61 {
            t.on_success();
        }
        assert!(t.allows());
        assert!(t.on_failure(), "6.1 - 1 = 5.1 is above the threshold");
        for _ in 0..1000 {
            t.on_success();
        }
        assert_eq!(t.tokens(), 10.0, "never above maxTokens");
    }
}
