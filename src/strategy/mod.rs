//! Strategies as tower layers over a typed [`Call`].
//!
//! A strategy is a stack, built once per run from its [`StrategyPlan`]:
//!
//! ```text
//! deadline (the call's deadline, covering every attempt)
//!   → the profile's layers, top to bottom (per-attempt timeout, retries, hedges, throttles)
//!     → instrument (one event per attempt start and end)
//!       → transport (gRPC, or the backend called directly)
//! ```
//!
//! A strategy's `client` (its [`Flavor`]) tells the A6 layers which library to behave as; a
//! library that fails some responses itself gets a [`library::ReadLayer`] above the transport,
//! and one without hedging drops a `grpc_hedge` layer.
//!
//! Each layer is a plain `tower::Layer`, usable in any tower stack over `Call`. A layer reports
//! what it does through an [`EventSink`], never by reaching into the recorder. Adding a strategy
//! is a new module here, a [`LayerPlan`] variant, and one arm in [`build`].

pub mod adaptive;
pub mod breaker;
pub mod fanout;
pub mod hedge;
pub mod instrument;
pub mod library;
pub mod retry;
pub mod stack;
pub mod timeout;

use std::sync::Arc;

use tokio::time::Instant;
use tower::{Layer, Service};

use crate::call::{Call, Failure, Outcome, Reply};
use crate::clock::Clock;
use crate::profile::flavor::Flavor;
use crate::profile::layers::{
    AwsJitter, BudgetPlan, EnvoyBudgetPlan, GrpcRetryPlan, RetryPlan, TpsBudgetPlan,
};
use crate::profile::{LayerPlan, StrategyPlan};

pub use stack::Stack;

/// Something a strategy did, reported to the [`EventSink`].
#[derive(Debug)]
pub enum Event<'a> {
    /// An attempt is about to be sent.
    AttemptStarted {
        /// The attempt (its kind and number are on the call).
        call: &'a Call,
        /// When.
        at: Instant,
    },
    /// An attempt ended: answered, failed, or abandoned by the client.
    AttemptFinished {
        /// The attempt.
        call: &'a Call,
        /// When it was sent.
        started: Instant,
        /// When it ended.
        ended: Instant,
        /// Its outcome. An abandoned attempt is CANCELLED, or DEADLINE_EXCEEDED if its
        /// deadline had passed.
        outcome: &'a Outcome,
        /// Streams of its call the server did not process, and transparent retries, counted
        /// since the last attempt of the call ended.
        unprocessed: crate::call::Unprocessed,
        /// Streams of its call that waited in the client for a slot under the server's limit
        /// of concurrent streams, counted since the last attempt of the call ended.
        slot_waits: u32,
    },
    /// A retry layer will send another attempt after `wait`.
    Retry {
        /// The call.
        call: &'a Call,
        /// The wait, and whether server pushback set it.
        wait: retry::Wait,
    },
    /// A retry layer decided not to retry a failed attempt.
    RetryDenied {
        /// The call.
        call: &'a Call,
        /// Why.
        reason: retry::Denied,
    },
    /// A6 retry throttling's token count changed.
    Tokens {
        /// When.
        at: Instant,
        /// Tokens now.
        tokens: f64,
    },
    /// A hedging layer's call was decided.
    HedgeOutcome {
        /// The call.
        call: &'a Call,
        /// A hedge (not the original) decided it.
        won_by_hedge: bool,
        /// Attempts still out when it was decided, cancelled.
        cancelled: u32,
    },
    /// A fan-out sub-call ended.
    SubCall {
        /// The sub-call.
        call: &'a Call,
        /// From the fan-out to its end.
        latency: std::time::Duration,
        /// How it ended.
        outcome: &'a Outcome,
    },
    /// A circuit breaker's state changed (and, when a breaker is built, its first state).
    BreakerState {
        /// When.
        at: Instant,
        /// The state now.
        state: breaker::State,
    },
    /// A circuit breaker refused a call.
    ShortCircuited {
        /// The call.
        call: &'a Call,
        /// The strategy answers refused calls with a fallback.
        fallback: bool,
    },
    /// A client-side throttle refused to send a call at all.
    Rejected {
        /// The call.
        call: &'a Call,
        /// When.
        at: Instant,
    },
}

/// Where strategies report what they did.
///
/// (The variants below cover attempts, retries and throttling; hedging and breakers add their
/// own as they arrive.)
pub trait EventSink: Send + Sync + 'static {
    /// Records one event. Called on the hot path: keep it short.
    fn record(&self, event: Event<'_>);
}

/// Builds the stack of a strategy over a transport; its clock reads and waits go through
/// `clock`, and its random draws (jitter, local rejections) are keyed by `seed`.
pub fn build<T>(
    strategy: &StrategyPlan,
    transport: T,
    sink: Arc<dyn EventSink>,
    clock: &Clock,
    seed: u64,
) -> Stack
where
    T: Service<Call, Response = Reply, Error = Failure> + Clone + Send + 'static,
    T::Future: Send + 'static,
{
    let flavor = strategy.client.flavor();
    let instrument = instrument::InstrumentLayer::new(Arc::clone(&sink), clock.clone());
    let mut stack = match library::ReadLayer::for_flavor(&flavor) {
        Some(read) => Stack::new(instrument.layer(read.layer(transport))),
        None => Stack::new(instrument.layer(transport)),
    };
    for layer in strategy.layers.iter().rev() {
        let (sink, clock) = (Arc::clone(&sink), clock.clone());
        stack = match layer {
            LayerPlan::Timeout(t) => {
                Stack::new(timeout::TimeoutLayer::per_attempt(t.timeout, clock).layer(stack))
            }
            LayerPlan::GrpcRetry(r) => {
                let policy = grpc_policy(r, seed, flavor);
                Stack::new(retry::RetryLayer::new(policy, sink, clock).layer(stack))
            }
            LayerPlan::Retry(r) => {
                let policy = generic_policy(r, seed, &clock);
                Stack::new(retry::RetryLayer::new(policy, sink, clock).layer(stack))
            }
            // A library without hedging ignores the policy (the run says so in words).
            LayerPlan::GrpcHedge(_) if !flavor.hedging => stack,
            LayerPlan::GrpcHedge(h) => {
                let settings = hedge::grpc::GrpcHedging {
                    max_attempts: h.max_attempts,
                    delay: h.hedging_delay,
                    non_fatal: codes(&h.non_fatal_status_codes),
                };
                let throttle = h
                    .throttle
                    .map(|t| retry::throttle::Throttle::new(t.max_tokens, t.token_ratio));
                Stack::new(
                    hedge::grpc::GrpcHedgeLayer::flavored(settings, throttle, sink, clock, flavor)
                        .layer(stack),
                )
            }
            LayerPlan::Hedge(h) => {
                let settings = hedge::adaptive::AdaptiveHedging {
                    percentile: h.percentile,
                    min_data_points: h.min_data_points,
                    period: h.period,
                };
                Stack::new(
                    hedge::adaptive::AdaptiveHedgeLayer::new(settings, sink, clock).layer(stack),
                )
            }
            LayerPlan::FanOut(f) => Stack::new(
                fanout::FanOutLayer::new(f.n, f.need.unwrap_or(f.n), sink, clock).layer(stack),
            ),
            LayerPlan::Pybreaker(b) => {
                let machine = breaker::pybreaker::PyBreaker::new(breaker::pybreaker::Settings {
                    fail_max: b.fail_max,
                    reset_timeout: b.reset_timeout,
                    success_threshold: b.success_threshold,
                });
                let classes = breaker::Classes {
                    failures: codes(&b.failures),
                    ignore: Codes::default(),
                };
                Stack::new(
                    breaker::BreakerLayer::new(machine, classes, b.fallback, sink, clock)
                        .layer(stack),
                )
            }
            LayerPlan::Resilience4j(b) => {
                let settings = breaker::resilience4j::Settings {
                    window_type: b.sliding_window_type,
                    window_size: b.sliding_window_size,
                    minimum_number_of_calls: b.minimum_number_of_calls,
                    failure_rate_threshold: b.failure_rate_threshold,
                    slow_call_rate_threshold: b.slow_call_rate_threshold,
                    slow_call_duration_threshold: b.slow_call_duration_threshold,
                    wait_duration_in_open_state: b.wait_duration_in_open_state,
                    permitted_calls_in_half_open: b.permitted_number_of_calls_in_half_open_state,
                };
                let machine = breaker::resilience4j::Resilience4j::new(settings, clock.now());
                let classes = breaker::Classes {
                    failures: codes(&b.failures),
                    ignore: codes(&b.ignore),
                };
                Stack::new(
                    breaker::BreakerLayer::new(machine, classes, b.fallback, sink, clock)
                        .layer(stack),
                )
            }
            LayerPlan::AdaptiveThrottle(a) => {
                let settings = adaptive::Settings {
                    k: a.k,
                    window: a.window,
                    rejections: codes(&a.rejections),
                    seed,
                };
                Stack::new(adaptive::AdaptiveThrottleLayer::new(settings, sink, clock).layer(stack))
            }
        };
    }
    Stack::new(timeout::TimeoutLayer::call_deadline(clock.clone()).layer(stack))
}

use retry::grpc::Codes;

use crate::protocol::StatusCode;

/// A set of status codes.
fn codes(codes: &[StatusCode]) -> retry::grpc::Codes {
    retry::grpc::Codes::of(codes.iter().map(|c| c.code()))
}

fn grpc_policy(r: &GrpcRetryPlan, seed: u64, flavor: Flavor) -> retry::grpc::GrpcPolicy {
    let settings = retry::grpc::GrpcRetry {
        max_attempts: r.max_attempts,
        initial: r.initial_backoff,
        max: r.max_backoff,
        multiplier: r.backoff_multiplier,
        retryable: codes(&r.retryable_status_codes),
        jitter: r.jitter,
    };
    let throttle = r
        .throttle
        .map(|t| retry::throttle::Throttle::new(t.max_tokens, t.token_ratio));
    retry::grpc::GrpcPolicy::flavored(settings, throttle, retry::backoff::Keyed(seed), flavor)
}

fn generic_policy(r: &RetryPlan, seed: u64, clock: &Clock) -> retry::generic::GenericPolicy {
    use retry::backoff::Backoff;
    use retry::generic::Budget;
    let (base, cap) = (r.backoff.base, r.backoff.cap);
    let backoff = match r.backoff.jitter {
        AwsJitter::None => Backoff::Exponential { base, cap },
        AwsJitter::Full => Backoff::FullJitter { base, cap },
        AwsJitter::Equal => Backoff::EqualJitter { base, cap },
        AwsJitter::Decorrelated => Backoff::Decorrelated { base, cap },
    };
    let budget = match r.budget {
        None => Budget::None,
        Some(BudgetPlan::Tps(TpsBudgetPlan {
            ttl,
            min_per_second,
            retry_percent,
        })) => Budget::Tps(retry::budget::TpsBudget::new(
            clock.clone(),
            ttl,
            min_per_second,
            retry_percent,
        )),
        Some(BudgetPlan::Envoy(EnvoyBudgetPlan {
            budget_percent,
            min_retry_concurrency,
        })) => Budget::Envoy(retry::budget::EnvoyBudget::new(
            budget_percent,
            min_retry_concurrency,
        )),
    };
    retry::generic::GenericPolicy {
        max_attempts: r.max_attempts,
        retry_on: codes(&r.retry_on),
        backoff,
        pushback: r.pushback,
        budget,
        draws: retry::backoff::Keyed(seed),
    }
}
