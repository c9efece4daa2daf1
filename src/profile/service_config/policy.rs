//! The policies of a method config and the config's `retryThrottling`, read and checked as
//! gRFC A6 and grpc-go check them (the rules: the parent module's doc).

use std::time::Duration;

use serde_json::Value;
use tonic::Code;

use super::super::error::Num;
use super::super::layers::GrpcJitter;
use super::super::layers::{GrpcHedgePlan, GrpcRetryPlan, ThrottlePlan};
use super::{MAX_ATTEMPTS_CAP, Result, field};
use crate::protocol::StatusCode;
use crate::protocol::status::parse_code;
/// The longest proto3 `Duration` (google/protobuf/duration.proto: about 10,000 years).
pub(super) const MAX_DURATION_SECS: u64 = 315_576_000_000;

/// Parses a proto3 JSON duration: decimal seconds with an `s` suffix, up to 9 fractional digits.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || {
        format!(
            "`{text}` is not a proto3 JSON duration: write seconds with an `s` (\"0.1s\", \"2s\"); \
             gRPC clients refuse a config with anything else"
        )
    };
    let body = text.strip_suffix('s').ok_or_else(bad)?;
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    if whole.starts_with('-') {
        return Err(format!("`{text}` is negative"));
    }
    if (whole.is_empty() && frac.is_empty())
        || frac.len() > 9
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    if secs > MAX_DURATION_SECS {
        return Err(format!(
            "`{text}` is out of range: a proto3 duration is at most {MAX_DURATION_SECS}s"
        ));
    }
    let nanos: u32 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

pub(super) fn duration_field(v: &Value, key: &str, path: &str) -> Result<Option<Duration>> {
    match field(v, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_duration(s)
            .map(Some)
            .map_err(|e| format!("{path}.{key}: {e}")),
        Some(other) => Err(format!(
            "{path}.{key}: expected a duration string like \"0.1s\", got {other}"
        )),
    }
}

pub(super) fn positive_duration(v: &Value, key: &str, path: &str) -> Result<Duration> {
    match duration_field(v, key, path)? {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(format!("{path}.{key}: must be greater than zero")),
        None => Err(format!("{path}.{key}: required")),
    }
}

pub(super) fn codes(v: &Value, key: &str, path: &str) -> Result<Vec<StatusCode>> {
    let list = codes_list(v, key, path)?;
    if list.is_empty() {
        return Err(format!("{path}.{key}: must not be empty"));
    }
    Ok(list)
}

/// A list of status codes, names in any case or integers; it may be empty.
pub(super) fn codes_list(v: &Value, key: &str, path: &str) -> Result<Vec<StatusCode>> {
    let Some(Value::Array(list)) = field(v, key) else {
        return Err(format!("{path}.{key}: required, a list of status codes"));
    };
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let code = match c {
                Value::String(s) => parse_code(s),
                Value::Number(n) => n
                    .as_i64()
                    .filter(|n| (0..=16).contains(n))
                    .map(|n| Code::from_i32(n as i32)),
                _ => None,
            };
            code.map(StatusCode::from)
                .ok_or_else(|| format!("{path}.{key}[{i}]: {c} is not a gRPC status code"))
        })
        .collect()
}

pub(super) fn max_attempts(v: &Value, path: &str) -> Result<u32> {
    let value = field(v, "maxAttempts").ok_or_else(|| format!("{path}.maxAttempts: required"))?;
    // ProtoJSON writes a uint32 as a number or as a string of one ("3"); grpc-go reads both.
    let n = match value {
        Value::String(s) => s.trim().parse::<f64>().ok(),
        other => other.as_f64(),
    }
    .filter(|n| n.is_finite() && n.fract() == 0.0)
    .ok_or_else(|| format!("{path}.maxAttempts: expected an integer, got {value}"))?;
    if n < 2.0 {
        return Err(format!("{path}.maxAttempts: must be 2 or more, got {n}"));
    }
    Ok(n.min(f64::from(MAX_ATTEMPTS_CAP)) as u32)
}

pub(super) fn retry_policy(
    v: &Value,
    path: &str,
    throttle: Option<ThrottlePlan>,
) -> Result<GrpcRetryPlan> {
    let multiplier = field(v, "backoffMultiplier")
        .ok_or_else(|| format!("{path}.backoffMultiplier: required"))?
        .as_f64()
        .ok_or_else(|| format!("{path}.backoffMultiplier: expected a number"))?;
    if !(multiplier.is_finite() && multiplier > 0.0) {
        return Err(format!(
            "{path}.backoffMultiplier: must be greater than zero, got {}",
            Num(multiplier)
        ));
    }
    Ok(GrpcRetryPlan {
        max_attempts: max_attempts(v, path)?,
        initial_backoff: positive_duration(v, "initialBackoff", path)?,
        max_backoff: positive_duration(v, "maxBackoff", path)?,
        backoff_multiplier: multiplier,
        retryable_status_codes: codes(v, "retryableStatusCodes", path)?,
        jitter: GrpcJitter::A6,
        throttle,
    })
}

pub(super) fn hedging_policy(
    v: &Value,
    path: &str,
    throttle: Option<ThrottlePlan>,
) -> Result<GrpcHedgePlan> {
    let non_fatal = match field(v, "nonFatalStatusCodes") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => codes_list(v, "nonFatalStatusCodes", path)?,
    };
    Ok(GrpcHedgePlan {
        max_attempts: max_attempts(v, path)?,
        // Optional: unset or "0s" sends every attempt at once.
        hedging_delay: duration_field(v, "hedgingDelay", path)?.unwrap_or_default(),
        non_fatal_status_codes: non_fatal,
        throttle,
    })
}

pub(super) fn throttling(config: &Value) -> Result<Option<ThrottlePlan>> {
    let Some(t) = field(config, "retryThrottling").filter(|t| !t.is_null()) else {
        return Ok(None);
    };
    let num = |key: &str| {
        field(t, key)
            .ok_or_else(|| format!("retryThrottling.{key}: required"))?
            .as_f64()
            .ok_or_else(|| format!("retryThrottling.{key}: expected a number"))
    };
    let (max_tokens, token_ratio) = (num("maxTokens")?, num("tokenRatio")?);
    if !(max_tokens > 0.0 && max_tokens <= 1000.0) {
        return Err(format!(
            "retryThrottling.maxTokens: must be above 0 and at most 1000, got {}",
            Num(max_tokens)
        ));
    }
    if !(token_ratio.is_finite() && token_ratio > 0.0) {
        return Err(format!(
            "retryThrottling.tokenRatio: must be greater than zero, got {}",
            Num(token_ratio)
        ));
    }
    Ok(Some(ThrottlePlan {
        max_tokens,
        token_ratio,
    }))
}
