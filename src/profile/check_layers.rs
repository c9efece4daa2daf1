//! Checks of strategies' layers and service configs, and their resolution: `maxAttempts` above 5
//! becomes 5 (gRFC A6), and a strategy's `service_config` becomes its deadline and a
//! `grpc_retry` or `grpc_hedge` layer. Status codes were checked as they were read.

use std::path::Path;

use super::error::Num;
use super::layers::{
    BudgetPlan, EnvoyBudgetPlan, GrpcHedgePlan, GrpcJitter, GrpcRetryPlan, HedgePlan,
    Resilience4jPlan, ThrottlePlan, TpsBudgetPlan,
};
use super::plan::{LayerPlan, StrategyPlan};
use super::service_config;
use super::service_config::MAX_ATTEMPTS_CAP;
use super::validate::{Invalid, invalid};

/// Applies a strategy's service config for the method the calls use (`called`: service and
/// method, [`super::Plan::called_method`]): reads it (a path is relative to `base`), caps the
/// deadline with its timeout, and adds its retry policy as the bottom layer. A config that
/// names no such method is refused, naming it.
pub fn apply_service_config(
    field: &str,
    source: &str,
    strategy: &mut StrategyPlan,
    called: (&str, &str),
    base: &Path,
) -> Result<(), Invalid> {
    let text = if source.trim_start().starts_with('{') {
        source.to_string()
    } else {
        let path = base.join(source);
        std::fs::read_to_string(&path)
            .or_else(|e| invalid(field, format!("cannot read {}: {e}", path.display())))?
    };
    let (service, method) = called;
    let settings =
        service_config::settings_for(&text, service, method).or_else(|e| invalid(field, e))?;
    if let Some(timeout) = settings.timeout {
        strategy.deadline = strategy.deadline.min(timeout);
    }
    if let Some(retry) = settings.retry {
        strategy.layers.push(LayerPlan::GrpcRetry(retry));
    }
    if let Some(hedge) = settings.hedge {
        strategy.layers.push(LayerPlan::GrpcHedge(hedge));
    }
    Ok(())
}

fn throttle(field: &str, t: Option<&ThrottlePlan>) -> Result<(), Invalid> {
    let Some(t) = t else { return Ok(()) };
    if !(t.max_tokens > 0.0 && t.max_tokens <= 1000.0) {
        return invalid(
            &format!("{field}.throttle.max_tokens"),
            format!(
                "must be above 0 and at most 1000, got {}",
                Num(t.max_tokens)
            ),
        );
    }
    if !(t.token_ratio.is_finite() && t.token_ratio > 0.0) {
        return invalid(
            &format!("{field}.throttle.token_ratio"),
            format!("must be above 0, got {}", Num(t.token_ratio)),
        );
    }
    Ok(())
}

fn grpc_hedge(field: &str, h: &mut GrpcHedgePlan) -> Result<(), Invalid> {
    if h.max_attempts < 2 {
        return invalid(
            &format!("{field}.max_attempts"),
            format!("must be 2 or more (gRFC A6), got {}", h.max_attempts),
        );
    }
    h.max_attempts = h.max_attempts.min(MAX_ATTEMPTS_CAP);
    throttle(field, h.throttle.as_ref())
}

fn resilience4j(field: &str, b: &mut Resilience4jPlan) -> Result<(), Invalid> {
    let percent = |name: &str, v: f64| {
        if v > 0.0 && v <= 100.0 {
            Ok(())
        } else {
            invalid(
                &format!("{field}.{name}"),
                format!(
                    "must be above 0 and at most 100 (a percentage), got {}",
                    Num(v)
                ),
            )
        }
    };
    percent("failure_rate_threshold", b.failure_rate_threshold)?;
    percent("slow_call_rate_threshold", b.slow_call_rate_threshold)?;
    for (name, v) in [
        ("sliding_window_size", b.sliding_window_size),
        ("minimum_number_of_calls", b.minimum_number_of_calls),
        (
            "permitted_number_of_calls_in_half_open_state",
            b.permitted_number_of_calls_in_half_open_state,
        ),
    ] {
        if !(1..=1_000_000).contains(&v) {
            return invalid(
                &format!("{field}.{name}"),
                format!("must be from 1 to 1000000, got {v}"),
            );
        }
    }
    Ok(())
}

fn hedge(field: &str, h: &HedgePlan) -> Result<(), Invalid> {
    if !(h.percentile > 0.0 && h.percentile < 1.0) {
        return invalid(
            &format!("{field}.percentile"),
            format!(
                "must be between 0 and 1 (0.95 is p95), got {}",
                Num(h.percentile)
            ),
        );
    }
    if h.period.is_zero() {
        return invalid(&format!("{field}.period"), "must be above 0");
    }
    Ok(())
}

fn grpc_retry(field: &str, r: &mut GrpcRetryPlan) -> Result<(), Invalid> {
    if r.max_attempts < 2 {
        return invalid(
            &format!("{field}.max_attempts"),
            format!("must be 2 or more (gRFC A6), got {}", r.max_attempts),
        );
    }
    r.max_attempts = r.max_attempts.min(MAX_ATTEMPTS_CAP);
    if r.initial_backoff.is_zero() || r.max_backoff.is_zero() {
        return invalid(
            field,
            "initial_backoff and max_backoff must be above 0 (gRFC A6)",
        );
    }
    if !(r.backoff_multiplier.is_finite() && r.backoff_multiplier > 0.0) {
        return invalid(
            &format!("{field}.backoff_multiplier"),
            format!("must be above 0, got {}", Num(r.backoff_multiplier)),
        );
    }
    if r.retryable_status_codes.is_empty() {
        return invalid(
            &format!("{field}.retryable_status_codes"),
            "must not be empty (gRFC A6)",
        );
    }
    throttle(field, r.throttle.as_ref())
}

/// Checks a strategy's `client`, once its service config (if any, `service_config`) is imported
/// into its layers: it needs an A6 policy to apply to (a `grpc_retry` or `grpc_hedge` layer,
/// written or imported), and a library's own jitter replaces `jitter`.
pub fn client(field: &str, strategy: &StrategyPlan, service_config: bool) -> Result<(), Invalid> {
    let client = strategy.client;
    if client.is_a6() {
        return Ok(());
    }
    if !strategy.has_a6_policy() {
        let fix = if service_config {
            "its service_config has no retryPolicy or hedgingPolicy for the method the load \
             calls: add one, or a grpc_retry or grpc_hedge layer"
        } else {
            "add a service_config with a retryPolicy or hedgingPolicy, or a grpc_retry or \
             grpc_hedge layer"
        };
        return invalid(
            &format!("{field}.client"),
            format!(
                "`{client}` says which library runs the strategy's A6 policies, and this \
                 strategy has none: {fix}"
            ),
        );
    }
    for (j, layer) in strategy.layers.iter().enumerate() {
        if let LayerPlan::GrpcRetry(r) = layer
            && r.jitter == GrpcJitter::Legacy
        {
            return invalid(
                &format!("{field}.layers[{j}].jitter"),
                format!(
                    "`jitter` chooses between the A6 texts for client = \"a6\"; {client} \
                     applies its own jitter (remove `jitter`, or use client = \"a6\")"
                ),
            );
        }
    }
    Ok(())
}

/// Checks and resolves every layer of `strategy` (the strategy's path is `field`).
pub fn layers(field: &str, strategy: &mut StrategyPlan) -> Result<(), Invalid> {
    let (mut breakers, mut fan_outs) = (0, 0);
    for (j, layer) in strategy.layers.iter_mut().enumerate() {
        let f = format!("{field}.layers[{j}]");
        match layer {
            LayerPlan::Timeout(t) if t.timeout.is_zero() => {
                return invalid(&format!("{f}.timeout"), "must be above 0");
            }
            LayerPlan::Timeout(_) => {}
            LayerPlan::GrpcRetry(r) => grpc_retry(&f, r)?,
            LayerPlan::GrpcHedge(h) => grpc_hedge(&f, h)?,
            LayerPlan::Hedge(h) => hedge(&f, h)?,
            LayerPlan::FanOut(fan) => {
                if !(1..=1000).contains(&fan.n) {
                    return invalid(
                        &format!("{f}.n"),
                        format!("must be from 1 to 1000, got {}", fan.n),
                    );
                }
                if let Some(need) = fan.need
                    && !(1..=fan.n).contains(&need)
                {
                    return invalid(
                        &format!("{f}.need"),
                        format!("must be from 1 to n ({}), got {need}", fan.n),
                    );
                }
                fan_outs += 1;
            }
            LayerPlan::Pybreaker(b) => {
                for (name, v) in [
                    ("fail_max", b.fail_max),
                    ("success_threshold", b.success_threshold),
                ] {
                    if v == 0 {
                        return invalid(&format!("{f}.{name}"), "must be at least 1");
                    }
                }
                breakers += 1;
            }
            LayerPlan::Resilience4j(b) => {
                resilience4j(&f, b)?;
                breakers += 1;
            }
            LayerPlan::Retry(r) => {
                if !(1..=100).contains(&r.max_attempts) {
                    return invalid(
                        &format!("{f}.max_attempts"),
                        format!("must be from 1 to 100, got {}", r.max_attempts),
                    );
                }
                if r.backoff.cap < r.backoff.base {
                    return invalid(&format!("{f}.backoff.cap"), "must be at least the base");
                }
                match r.budget {
                    Some(BudgetPlan::Tps(TpsBudgetPlan {
                        ttl, retry_percent, ..
                    })) => {
                        if !(1..=60).contains(&ttl.as_secs()) || ttl.subsec_nanos() != 0 {
                            return invalid(
                                &format!("{f}.budget.ttl"),
                                "must be a whole number of seconds from 1s to 60s",
                            );
                        }
                        if !(0.0..=1000.0).contains(&retry_percent) {
                            return invalid(
                                &format!("{f}.budget.retry_percent"),
                                "must be from 0 to 1000 (a fraction: 0.2 is 20%)",
                            );
                        }
                    }
                    Some(BudgetPlan::Envoy(EnvoyBudgetPlan { budget_percent, .. }))
                        if !(0.0..=100.0).contains(&budget_percent) =>
                    {
                        return invalid(
                            &format!("{f}.budget.budget_percent"),
                            "must be from 0 to 100",
                        );
                    }
                    _ => {}
                }
            }
            LayerPlan::AdaptiveThrottle(a) => {
                if !(a.k.is_finite() && a.k >= 1.0) {
                    return invalid(
                        &format!("{f}.k"),
                        format!("must be at least 1, got {}", Num(a.k)),
                    );
                }
                if a.window.as_secs() == 0 {
                    return invalid(&format!("{f}.window"), "must be at least 1s");
                }
            }
        }
    }
    if fan_outs > 1 {
        return invalid(&format!("{field}.layers"), "a strategy may fan out once");
    }
    if breakers > 1 {
        return invalid(
            &format!("{field}.layers"),
            "a strategy may have one circuit breaker (compare placements in two strategies)",
        );
    }
    Ok(())
}
