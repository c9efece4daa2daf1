//! The settings of each kind of strategy layer, as a profile writes them (`layers = [...]`).
//!
//! These types are both schema and plan (status codes are [`StatusCode`]s from the moment they
//! are read); `check_layers.rs` checks them. `docs/profiles.md` documents every key.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::Code;

use super::duration::human;
use crate::protocol::StatusCode;

/// Which jitter a gRPC retry policy applies (`jitter` in a `grpc_retry` layer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrpcJitter {
    /// × random(0.8, 1.2): A6 as amended (grpc-go 1.69+, grpc-java 1.80+, grpc-js 1.14+,
    /// C-core).
    #[default]
    A6,
    /// random(0, …): A6 as first written (grpc-go before 1.69, grpc-java before 1.71, grpc-js
    /// before 1.14).
    Legacy,
}

/// resilience4j's sliding window: count- or time-based.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowType {
    /// The last N calls.
    #[default]
    CountBased,
    /// The calls of the last N seconds.
    TimeBased,
}

/// `kind = "grpc_retry"`: gRFC A6's retry policy (usually imported from a service config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcRetryPlan {
    /// maxAttempts, the first included (2 or more; above 5 counts as 5).
    pub max_attempts: u32,
    /// initialBackoff.
    #[serde(with = "human")]
    pub initial_backoff: Duration,
    /// maxBackoff.
    #[serde(with = "human")]
    pub max_backoff: Duration,
    /// backoffMultiplier.
    pub backoff_multiplier: f64,
    /// retryableStatusCodes.
    pub retryable_status_codes: Vec<StatusCode>,
    /// Which jitter: `"a6"` (× random(0.8, 1.2)) or `"legacy"` (random(0, …)); a library
    /// `client` applies its own instead.
    #[serde(default)]
    pub jitter: GrpcJitter,
    /// retryThrottling, shared by every call of the strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottlePlan>,
}

/// `kind = "grpc_hedge"`: gRFC A6's hedging policy (usually imported from a service config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcHedgePlan {
    /// maxAttempts, the original included (2 or more; above 5 counts as 5).
    pub max_attempts: u32,
    /// hedgingDelay: the wait before each further hedge (0: all at once).
    #[serde(with = "human", default)]
    pub hedging_delay: Duration,
    /// nonFatalStatusCodes: statuses after which the other attempts go on (and the next hedge
    /// goes at once); any other status ends the call.
    #[serde(default)]
    pub non_fatal_status_codes: Vec<StatusCode>,
    /// retryThrottling, shared by every call of the strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottlePlan>,
}

/// `kind = "hedge"`: one hedge after a percentile of recent latencies (tower's `Hedge`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgePlan {
    /// The percentile of recent successful attempt latencies after which the hedge goes.
    #[serde(default = "p95")]
    pub percentile: f64,
    /// Latencies the histogram must hold before any call is hedged.
    #[serde(default = "hundred")]
    pub min_data_points: u64,
    /// How long the histogram collects before it is used (tower's rotation period).
    #[serde(with = "human", default = "ten_seconds")]
    pub period: Duration,
}

fn p95() -> f64 {
    0.95
}

fn hundred() -> u64 {
    100
}

/// `kind = "pybreaker"`: danielfm/pybreaker's circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PyBreakerPlan {
    /// Consecutive failures that open the breaker.
    #[serde(default = "five")]
    pub fail_max: u32,
    /// How long it stays open before a trial call.
    #[serde(with = "human", default = "sixty_seconds")]
    pub reset_timeout: Duration,
    /// Trial successes that close it.
    #[serde(default = "one")]
    pub success_threshold: u32,
    /// Statuses that count as failures (any other status is a success).
    #[serde(default = "breaker_failures")]
    pub failures: Vec<StatusCode>,
    /// Answer refused calls with a fallback (counted as `fallback`, not as successes).
    #[serde(default)]
    pub fallback: bool,
}

/// `kind = "resilience4j"`: resilience4j's circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resilience4jPlan {
    /// `"count_based"` or `"time_based"`.
    #[serde(default)]
    pub sliding_window_type: WindowType,
    /// Calls (count-based) or seconds (time-based).
    #[serde(default = "hundred_u32")]
    pub sliding_window_size: u32,
    /// Calls the window must hold before the rates count.
    #[serde(default = "hundred_u32")]
    pub minimum_number_of_calls: u32,
    /// Failure rate (percent) at or above which the breaker opens.
    #[serde(default = "fifty")]
    pub failure_rate_threshold: f64,
    /// Slow-call rate (percent) at or above which the breaker opens.
    #[serde(default = "hundred_f64")]
    pub slow_call_rate_threshold: f64,
    /// A call longer than this is slow.
    #[serde(with = "human", default = "sixty_seconds")]
    pub slow_call_duration_threshold: Duration,
    /// How long the breaker stays open.
    #[serde(with = "human", default = "sixty_seconds")]
    pub wait_duration_in_open_state: Duration,
    /// Trial calls in half-open.
    #[serde(default = "ten")]
    pub permitted_number_of_calls_in_half_open_state: u32,
    /// Statuses that count as failures (any other status is a success).
    #[serde(default = "breaker_failures")]
    pub failures: Vec<StatusCode>,
    /// Statuses not recorded at all (resilience4j's ignored exceptions).
    #[serde(default)]
    pub ignore: Vec<StatusCode>,
    /// Answer refused calls with a fallback (counted as `fallback`, not as successes).
    #[serde(default)]
    pub fallback: bool,
}

fn five() -> u32 {
    5
}

fn one() -> u32 {
    1
}

fn hundred_u32() -> u32 {
    100
}

fn fifty() -> f64 {
    50.0
}

fn hundred_f64() -> f64 {
    100.0
}

fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

fn breaker_failures() -> Vec<StatusCode> {
    [
        Code::Unavailable,
        Code::DeadlineExceeded,
        Code::Internal,
        Code::ResourceExhausted,
    ]
    .map(StatusCode::from)
    .to_vec()
}

/// `kind = "fan_out"`: each call becomes `n` sub-calls, and completes when `need` succeed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanOutPlan {
    /// Sub-calls per call (1 to 1000).
    pub n: u32,
    /// Successes that complete the call (1 to `n`; all by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need: Option<u32>,
}

/// retryThrottling (gRFC A6).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottlePlan {
    /// maxTokens, in (0, 1000].
    pub max_tokens: f64,
    /// tokenRatio, above 0 (three decimals count).
    pub token_ratio: f64,
}

/// `kind = "retry"`: a plain retrier with AWS-style backoff and an optional budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPlan {
    /// Most attempts per call, the first included.
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Statuses retried (an attempt cut by a per-try timeout is always retried).
    #[serde(default = "unavailable")]
    pub retry_on: Vec<StatusCode>,
    /// The wait between attempts.
    #[serde(default)]
    pub backoff: BackoffPlan,
    /// Honour `grpc-retry-pushback-ms` (A6's meaning).
    #[serde(default)]
    pub pushback: bool,
    /// A retry budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetPlan>,
}

fn three() -> u32 {
    3
}

fn unavailable() -> Vec<StatusCode> {
    vec![StatusCode::UNAVAILABLE]
}

/// The AWS backoff variant and its parameters. Defaults are Envoy's retry back-off: full
/// jitter from a 25 ms base, capped at 10 × base.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffPlan {
    /// `"none"` (exponential), `"full"`, `"equal"` or `"decorrelated"`.
    pub jitter: AwsJitter,
    /// The first retry's (longest) wait.
    #[serde(with = "human")]
    pub base: Duration,
    /// The longest wait.
    #[serde(with = "human")]
    pub cap: Duration,
}

impl Default for BackoffPlan {
    fn default() -> Self {
        Self {
            jitter: AwsJitter::Full,
            base: Duration::from_millis(25),
            cap: Duration::from_millis(250),
        }
    }
}

/// AWS Architecture Blog's backoff variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsJitter {
    /// min(cap, base · 2^attempt).
    None,
    /// random(0, that).
    Full,
    /// half of it plus random(0, half).
    Equal,
    /// min(cap, random(base, previous · 3)).
    Decorrelated,
}

/// A retry budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BudgetPlan {
    /// Finagle's (and tower's) TPS budget.
    Tps(TpsBudgetPlan),
    /// Envoy's cluster retry budget.
    Envoy(EnvoyBudgetPlan),
}

impl<'de> Deserialize<'de> for BudgetPlan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use super::tagged::{fields, read, unknown};
        read(d, "kind", |kind, rest| match kind {
            "tps" => fields(rest).map(BudgetPlan::Tps),
            "envoy" => fields(rest).map(BudgetPlan::Envoy),
            other => Err(unknown("kind", other, &["tps", "envoy"])),
        })
    }
}

/// `budget = { kind = "tps", ... }`: Finagle's RetryBudget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpsBudgetPlan {
    /// How long a call's deposit counts (1 to 60 s).
    #[serde(with = "human", default = "ten_seconds")]
    pub ttl: Duration,
    /// Retries allowed per second whatever the traffic.
    #[serde(default = "ten")]
    pub min_per_second: u32,
    /// Retries allowed per call, as a fraction (0.2 = 20%).
    #[serde(default = "twenty_percent")]
    pub retry_percent: f64,
}

/// `budget = { kind = "envoy", ... }`: Envoy's cluster retry budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvoyBudgetPlan {
    /// Retries in flight, as a percentage of active calls.
    #[serde(default = "twenty")]
    pub budget_percent: f64,
    /// Retries in flight allowed whatever the traffic.
    #[serde(default = "three")]
    pub min_retry_concurrency: u32,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn ten() -> u32 {
    10
}

fn twenty_percent() -> f64 {
    0.2
}

fn twenty() -> f64 {
    20.0
}

/// `kind = "adaptive_throttle"`: the SRE book's client-side throttling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptivePlan {
    /// The multiplier K (the book's 2).
    #[serde(default = "two")]
    pub k: f64,
    /// How much history counts (the book's two minutes).
    #[serde(with = "human", default = "two_minutes")]
    pub window: Duration,
    /// Statuses that mean the backend rejected a request.
    #[serde(default = "overload_statuses")]
    pub rejections: Vec<StatusCode>,
}

fn two() -> f64 {
    2.0
}

fn two_minutes() -> Duration {
    Duration::from_secs(120)
}

fn overload_statuses() -> Vec<StatusCode> {
    vec![StatusCode::RESOURCE_EXHAUSTED, StatusCode::UNAVAILABLE]
}
