//! Hedging: sending a call again *before* the first attempt has failed, to cut the tail.
//!
//! - [`grpc::GrpcHedge`]: gRFC A6's hedging policy (fixed delay, up to `maxAttempts`, non-fatal
//!   statuses, pushback, the shared retry throttle), also loaded from a service config's
//!   `hedgingPolicy`;
//! - [`adaptive::AdaptiveHedge`]: tower's latency-driven hedge ("The Tail at Scale"): one hedge
//!   after the recent p-th percentile of successful latencies.
//!
//! Both report each decided call ([`super::Event::HedgeOutcome`]): whether a hedge won, and
//! how many attempts were cancelled because another decided the call. A hedge goes to a
//! replica the call has not tried yet, when there is one (`transport::balance`).

pub mod adaptive;
pub mod grpc;
pub mod schedule;
