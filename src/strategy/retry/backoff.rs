//! Backoff: how long to wait before the n-th retry.
//!
//! Every formula is a pure function of the retry's position and one uniform draw `u` in [0, 1):
//! the caller supplies `u` (from keyed randomness in a run, chosen values in a test), so a test
//! can check the published formulas exactly.
//!
//! gRPC (gRFC A6, "Exponential Backoff"):
//! - [`Backoff::GrpcA6`]: the n-th retry waits `min(initialBackoff · multiplier^(n−1),
//!   maxBackoff) · random(0.8, 1.2)`. This is A6 as amended in August 2024 (grpc/proposal#452),
//!   as grpc-go implements it since grpc/grpc-go#7869 (v1.69, for issue #7514), grpc-java
//!   since grpc/grpc-java#12639 (1.80; #11858 in 1.71 wrote × random(0.4, 1.2)), grpc-js since
//!   grpc/grpc-node#2960 (1.14); gRPC C-core jitters its backoff by ±20% too.
//! - [`Backoff::GrpcA6Legacy`]: `random(0, min(initialBackoff · multiplier^(n−1), maxBackoff))`,
//!   the original A6 text (2017), which grpc-go used before v1.69, grpc-java before 1.71 and
//!   grpc-js before 1.14 (grpc/grpc-node#2960 moved it to × random(0.8, 1.2)).
//! - [`Backoff::Library`]: a client library's own rule, as a client flavor describes it
//!   (`profile::flavor`): grpc-java 1.71–1.79's × random(0.4, 1.2), old C-core's unjittered
//!   first retry, and the running product most libraries keep instead of A6's exponent.
//!
//! AWS Architecture Blog, "Exponential Backoff And Jitter" (Marc Brooker, 2015), with
//! `attempt` = n − 1 for the n-th retry (the first retry uses `base`):
//! - [`Backoff::Exponential`]: `min(cap, base · 2^attempt)`, no jitter;
//! - [`Backoff::FullJitter`]: `random(0, min(cap, base · 2^attempt))`;
//! - [`Backoff::EqualJitter`]: `t = min(cap, base · 2^attempt)`; `t/2 + random(0, t/2)`;
//! - [`Backoff::Decorrelated`]: `min(cap, random(base, previous · 3))`, `previous` starting at
//!   `base`.

use std::time::Duration;

use crate::keyed::{KeyedStream, Purpose, call_key};

/// Where a policy's uniform draws come from. A type parameter of the policies, so that a
/// test can choose the draws and state exact waits.
pub trait Draws: Send + Sync + 'static {
    /// The draw in [0, 1) for retry `n` (1 = the first) of the call with id `call_id`.
    fn draw(&self, call_id: u64, n: u32) -> f64;
}

/// Draws keyed by (seed, call, retry): a run's, reproducible whatever order calls fail in,
/// and the same for every strategy with the same settings.
#[derive(Debug, Clone, Copy)]
pub struct Keyed(pub u64);

impl Draws for Keyed {
    fn draw(&self, call_id: u64, n: u32) -> f64 {
        jitter_draw(self.0, call_id, n)
    }
}

/// The keyed draw of [`Keyed`]: for the jitter of retry `n` of call `call_id` under `seed`.
pub fn jitter_draw(seed: u64, call_id: u64, n: u32) -> f64 {
    let u = KeyedStream::new(seed, call_key(call_id), n, Purpose::Jitter).open01();
    // open01 is in (0, 1); the formulas take [0, 1).
    u.min(1.0 - f64::EPSILON)
}

/// A backoff formula with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// gRFC A6 as amended: exponential, capped, × random(0.8, 1.2).
    GrpcA6 {
        /// initialBackoff.
        initial: Duration,
        /// maxBackoff.
        max: Duration,
        /// backoffMultiplier.
        multiplier: f64,
    },
    /// gRFC A6 as first written: random(0, exponential capped).
    GrpcA6Legacy {
        /// initialBackoff.
        initial: Duration,
        /// maxBackoff.
        max: Duration,
        /// backoffMultiplier.
        multiplier: f64,
    },
    /// A client library's gRPC backoff ([`Flavor`](crate::profile::flavor::Flavor)): its
    /// growth rule and its jitter.
    Library {
        /// initialBackoff.
        initial: Duration,
        /// maxBackoff.
        max: Duration,
        /// backoffMultiplier.
        multiplier: f64,
        /// The jitter's factor range, and whether the first retry goes without it.
        jitter: Jitter,
        /// How the backoff before jitter grows.
        rule: BackoffRule,
    },
    /// AWS "Exponential": no jitter.
    Exponential {
        /// The first retry's wait.
        base: Duration,
        /// The longest wait.
        cap: Duration,
    },
    /// AWS "Full Jitter".
    FullJitter {
        /// The first retry's longest wait.
        base: Duration,
        /// The longest wait.
        cap: Duration,
    },
    /// AWS "Equal Jitter".
    EqualJitter {
        /// The first retry's longest wait.
        base: Duration,
        /// The longest wait.
        cap: Duration,
    },
    /// AWS "Decorrelated Jitter".
    Decorrelated {
        /// The shortest wait, and the first `previous`.
        base: Duration,
        /// The longest wait.
        cap: Duration,
    },
}

pub use crate::profile::flavor::{BackoffRule, Jitter};
pub use crate::profile::layers::GrpcJitter;

/// Per-call backoff position.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BackoffState {
    /// Retries since the sequence started (or was reset by pushback).
    pub n: u32,
    /// Decorrelated jitter's previous wait, or a running backoff's last `b_n`, in seconds (0
    /// before the first).
    pub previous: f64,
}

/// `base · factor^power`, computed without overflow for any power.
fn exponential(base: Duration, factor: f64, power: u32, cap: Duration) -> f64 {
    let grown = base.as_secs_f64() * factor.powi(power.min(1024) as i32);
    if grown.is_finite() {
        grown.min(cap.as_secs_f64())
    } else {
        cap.as_secs_f64()
    }
}

fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(1e9))
    } else {
        Duration::ZERO
    }
}

impl Backoff {
    /// The wait before the next retry, given a uniform draw `u` in [0, 1); advances `state`.
    pub fn next(&self, state: &mut BackoffState, u: f64) -> Duration {
        let n = state.n;
        state.n = state.n.saturating_add(1);
        match *self {
            Backoff::GrpcA6 {
                initial,
                max,
                multiplier,
            } => secs(exponential(initial, multiplier, n, max) * (0.8 + 0.4 * u)),
            Backoff::GrpcA6Legacy {
                initial,
                max,
                multiplier,
            } => secs(exponential(initial, multiplier, n, max) * u),
            Backoff::Library {
                initial,
                max,
                multiplier,
                jitter,
                rule,
            } => {
                let base = match rule {
                    BackoffRule::Exponent => exponential(initial, multiplier, n, max),
                    BackoffRule::Running { cap_first } => {
                        let max = max.as_secs_f64();
                        let b = if n == 0 {
                            let first = initial.as_secs_f64();
                            if cap_first { first.min(max) } else { first }
                        } else {
                            (state.previous * multiplier).min(max)
                        };
                        state.previous = b;
                        b
                    }
                };
                if n == 0 && jitter.first_exact {
                    secs(base)
                } else {
                    secs(base * (jitter.low + jitter.span * u))
                }
            }
            Backoff::Exponential { base, cap } => secs(exponential(base, 2.0, n, cap)),
            Backoff::FullJitter { base, cap } => secs(exponential(base, 2.0, n, cap) * u),
            Backoff::EqualJitter { base, cap } => {
                let t = exponential(base, 2.0, n, cap);
                secs(t / 2.0 + u * t / 2.0)
            }
            Backoff::Decorrelated { base, cap } => {
                let b = base.as_secs_f64();
                let previous = if state.previous > 0.0 {
                    state.previous
                } else {
                    b
                };
                let hi = previous * 3.0;
                let sleep = (b + u * (hi - b)).min(cap.as_secs_f64());
                state.previous = sleep;
                secs(sleep)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn run(b: Backoff, draws: &[f64]) -> Vec<Duration> {
        let mut state = BackoffState::default();
        draws.iter().map(|&u| b.next(&mut state, u)).collect()
    }

    fn near(got: &[Duration], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g.as_secs_f64() * 1e3 - w).abs() < 1e-6,
                "got {got:?}, want {want:?} ms"
            );
        }
    }

    #[test]
    fn grpc_a6_jitters_plus_or_minus_20_percent_around_the_capped_exponential() {
        // initialBackoff 100 ms, multiplier 2, maxBackoff 300 ms: 100, 200, 300, 300 before
        // jitter. With u = 0 (× 0.8), u = 0.5 (× 1.0) and u → 1 (× 1.2).
        let b = Backoff::GrpcA6 {
            initial: ms(100),
            max: ms(300),
            multiplier: 2.0,
        };
        near(&run(b, &[0.0, 0.0, 0.0, 0.0]), &[80.0, 160.0, 240.0, 240.0]);
        near(
            &run(b, &[0.5, 0.5, 0.5, 0.5]),
            &[100.0, 200.0, 300.0, 300.0],
        );
        // The jitter applies to maxBackoff too: a wait may exceed it by up to 20%.
        near(
            &run(b, &[0.999_999, 0.999_999, 0.999_999]),
            &[119.99996, 239.99992, 359.99988],
        );
    }

    #[test]
    fn grpc_a6_legacy_draws_from_zero_to_the_capped_exponential() {
        let b = Backoff::GrpcA6Legacy {
            initial: ms(100),
            max: ms(300),
            multiplier: 2.0,
        };
        near(&run(b, &[0.5, 0.5, 0.5, 0.25]), &[50.0, 100.0, 150.0, 75.0]);
        near(&run(b, &[0.0]), &[0.0]);
    }

    #[test]
    fn a_non_integer_multiplier_grows_as_written() {
        let b = Backoff::GrpcA6 {
            initial: ms(100),
            max: ms(10_000),
            multiplier: 1.5,
        };
        near(&run(b, &[0.5, 0.5, 0.5]), &[100.0, 150.0, 225.0]);
    }

    #[test]
    fn aws_formulas() {
        let (base, cap) = (ms(100), ms(1000));
        near(
            &run(
                Backoff::Exponential { base, cap },
                &[0.3, 0.3, 0.3, 0.3, 0.3],
            ),
            &[100.0, 200.0, 400.0, 800.0, 1000.0],
        );
        near(
            &run(
                Backoff::FullJitter { base, cap },
                &[0.5, 0.5, 0.5, 0.5, 0.5],
            ),
            &[50.0, 100.0, 200.0, 400.0, 500.0],
        );
        // Equal: t/2 + u·t/2.
        near(
            &run(Backoff::EqualJitter { base, cap }, &[0.0, 1.0 - 1e-12, 0.5]),
            &[50.0, 200.0, 300.0],
        );
        // Decorrelated: min(cap, random(base, previous·3)), previous starting at base.
        // u=0.5: random(100, 300) = 200; then random(100, 600) = 350; then random(100, 1050) = 575.
        near(
            &run(Backoff::Decorrelated { base, cap }, &[0.5, 0.5, 0.5]),
            &[200.0, 350.0, 575.0],
        );
        // u→1 three times: 300, 900, then capped at 1000.
        near(
            &run(Backoff::Decorrelated { base, cap }, &[1.0, 1.0, 1.0]),
            &[300.0, 900.0, 1000.0],
        );
    }

    /// The library rules: grpc-java 1.71's × random(0.4, 1.2); old C-core's exact first retry
    /// then ±20%; a running product from an uncapped initialBackoff (grpc-java, grpc-js)
    /// against a capped one (newer C-core) when initialBackoff exceeds maxBackoff.
    #[test]
    fn library_rules() {
        let lib = |jitter, rule, initial, max| Backoff::Library {
            initial: ms(initial),
            max: ms(max),
            multiplier: 2.0,
            jitter,
            rule,
        };
        let running = BackoffRule::Running { cap_first: false };
        let java171 = Jitter {
            low: 0.4,
            span: 0.8,
            first_exact: false,
        };
        near(
            &run(lib(java171, running, 100, 300), &[0.0, 0.5, 0.5]),
            &[40.0, 160.0, 240.0],
        );
        let old_c = Jitter {
            first_exact: true,
            ..Jitter::A6
        };
        near(
            &run(lib(old_c, running, 100, 300), &[0.0, 0.0, 0.999_999]),
            &[100.0, 160.0, 359.99988],
        );
        // initialBackoff 500 ms above maxBackoff 300 ms, no jitter to speak of (u = 0.5).
        near(
            &run(lib(Jitter::A6, running, 500, 300), &[0.5, 0.5]),
            &[500.0, 300.0],
        );
        let capped = BackoffRule::Running { cap_first: true };
        near(
            &run(lib(Jitter::A6, capped, 500, 300), &[0.5, 0.5]),
            &[300.0, 300.0],
        );
        near(
            &run(lib(Jitter::A6, BackoffRule::Exponent, 500, 300), &[0.5]),
            &[300.0],
        );
    }

    #[test]
    fn huge_retry_counts_stay_at_the_cap() {
        let b = Backoff::Exponential {
            base: ms(100),
            cap: ms(5000),
        };
        let mut state = BackoffState {
            n: 5000,
            previous: 0.0,
        };
        assert_eq!(b.next(&mut state, 0.5), ms(5000));
    }
}
