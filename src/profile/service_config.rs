//! Importing a gRPC service config: the JSON a client passes as `grpc.service_config`.
//!
//! A strategy given `service_config` (the JSON itself, or a file path relative to the profile)
//! behaves as a gRPC client with that config would for the method its calls use
//! (`resilbench.v1.Backend/Call`, `/Mutate` or `/Stream`):
//! - the method config is chosen as grpc/grpc `doc/service_config.md` says: an entry naming the
//!   service and method beats one naming the service only, which beats the default (an empty
//!   name); a name may appear only once;
//! - its `timeout` caps the call's deadline (the caller's own deadline wins if it is tighter);
//! - its `retryPolicy` and the config's `retryThrottling` become a `grpc_retry` layer at the
//!   bottom of the stack (in a gRPC client, retries live in the channel, below the
//!   application's own layers); a `hedgingPolicy` becomes a `grpc_hedge` layer there instead
//!   (`maxAttempts` as for retries, `hedgingDelay` optional, 0 when unset,
//!   `nonFatalStatusCodes` optional).
//!
//! Validation follows gRFC A6 and grpc-go: `maxAttempts` an integer of 2 or more (above 5
//! counts as 5, without error); `initialBackoff` and `maxBackoff` proto3 JSON durations
//! (`"0.1s"`, `".1s"`) above zero; `backoffMultiplier` above zero; `retryableStatusCodes`
//! non-empty, names in any case or integers; only one of `retryPolicy` and `hedgingPolicy`;
//! `retryThrottling.maxTokens` in (0, 1000] and `tokenRatio` above zero. Field names match in
//! any case, as grpc-go's JSON decoding does (its own examples write `"MaxAttempts"`); keys the
//! importer does not use (`loadBalancingConfig`, `waitForReady`, ...) are ignored, as a
//! client that does not use them ignores them.

use std::time::Duration;

use serde_json::Value;
use tonic::Code;

use super::error::Num;
use super::layers::GrpcJitter;
use super::layers::{GrpcHedgePlan, GrpcRetryPlan, ThrottlePlan};
use crate::protocol::StatusCode;
use crate::protocol::status::parse_code;

/// A6's client-side cap on `maxAttempts` ("Limits on Retries and Hedges"): a higher value
/// counts as 5, without an error.
pub const MAX_ATTEMPTS_CAP: u32 = 5;

/// The service the backend's methods belong to, as a service config names it.
pub const SERVICE: &str = crate::protocol::path::BACKEND_SERVICE;

/// What a service config says about one method.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSettings {
    /// The method config's `timeout`.
    pub timeout: Option<Duration>,
    /// Its `retryPolicy`, with the config's `retryThrottling`.
    pub retry: Option<GrpcRetryPlan>,
    /// Its `hedgingPolicy`, with the config's `retryThrottling`.
    pub hedge: Option<GrpcHedgePlan>,
}

type Result<T> = std::result::Result<T, String>;

/// A key of a JSON object, matched in any case.
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The longest proto3 `Duration` (google/protobuf/duration.proto: about 10,000 years).
const MAX_DURATION_SECS: u64 = 315_576_000_000;

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

fn duration_field(v: &Value, key: &str, path: &str) -> Result<Option<Duration>> {
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

fn positive_duration(v: &Value, key: &str, path: &str) -> Result<Duration> {
    match duration_field(v, key, path)? {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(format!("{path}.{key}: must be greater than zero")),
        None => Err(format!("{path}.{key}: required")),
    }
}

fn codes(v: &Value, key: &str, path: &str) -> Result<Vec<StatusCode>> {
    let list = codes_list(v, key, path)?;
    if list.is_empty() {
        return Err(format!("{path}.{key}: must not be empty"));
    }
    Ok(list)
}

/// A list of status codes, names in any case or integers; it may be empty.
fn codes_list(v: &Value, key: &str, path: &str) -> Result<Vec<StatusCode>> {
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

fn max_attempts(v: &Value, path: &str) -> Result<u32> {
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

fn retry_policy(v: &Value, path: &str, throttle: Option<ThrottlePlan>) -> Result<GrpcRetryPlan> {
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

fn hedging_policy(v: &Value, path: &str, throttle: Option<ThrottlePlan>) -> Result<GrpcHedgePlan> {
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

fn throttling(config: &Value) -> Result<Option<ThrottlePlan>> {
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

/// How specifically a `name` entry matches `method`: 2 service and method, 1 service only,
/// 0 the default; `None` if it does not match.
fn specificity(name: &Value, method: &str) -> Result<Option<u8>> {
    let text = |key: &str| match field(name, key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(format!("expected a string for `{key}`, got {other}")),
    };
    let (service, m) = (text("service")?, text("method")?);
    Ok(match (service, m) {
        ("", "") => Some(0),
        ("", _) => return Err("a `method` needs its `service`".into()),
        (s, "") if s == SERVICE => Some(1),
        (s, x) if s == SERVICE && x == method => Some(2),
        _ => None,
    })
}

/// What `config` (service config JSON text) says about `method` of the backend.
pub fn settings_for(config_text: &str, method: &str) -> Result<MethodSettings> {
    let config: Value = serde_json::from_str(config_text).map_err(|e| {
        format!(
            "not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        )
    })?;
    if !config.is_object() {
        return Err("a service config is a JSON object".into());
    }
    let throttle = throttling(&config)?;
    let list = match field(&config, "methodConfig") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Err("methodConfig: expected a list".into()),
    };
    let mut best: Option<(u8, usize)> = None;
    let mut seen = std::collections::HashSet::new();
    for (i, mc) in list.iter().enumerate() {
        // An entry without a `name` applies to nothing; grpc-go skips it unread.
        let Some(names) = field(mc, "name").filter(|n| !n.is_null()) else {
            continue;
        };
        let names = names.as_array().cloned().unwrap_or_default();
        for (j, name) in names.iter().enumerate() {
            let path = format!("methodConfig[{i}].name[{j}]");
            let key = (
                field(name, "service")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                field(name, "method")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
            if !seen.insert(key.clone()) {
                return Err(format!("{path}: {}/{} is named twice", key.0, key.1));
            }
            if let Some(level) = specificity(name, method).map_err(|e| format!("{path}: {e}"))?
                && best.is_none_or(|(b, _)| level > b)
            {
                best = Some((level, i));
            }
        }
        // Every method config is checked, matched or not: a client would refuse the whole config.
        let path = format!("methodConfig[{i}]");
        let retry = field(mc, "retryPolicy").filter(|v| !v.is_null());
        let hedge = field(mc, "hedgingPolicy").filter(|v| !v.is_null());
        if retry.is_some() && hedge.is_some() {
            return Err(format!(
                "{path}: only one of retryPolicy and hedgingPolicy may be set"
            ));
        }
        if let Some(r) = retry {
            retry_policy(r, &format!("{path}.retryPolicy"), throttle)?;
        }
        if let Some(h) = hedge {
            hedging_policy(h, &format!("{path}.hedgingPolicy"), throttle)?;
        }
        duration_field(mc, "timeout", &path)?;
    }
    let Some((_, i)) = best else {
        return Ok(MethodSettings {
            timeout: None,
            retry: None,
            hedge: None,
        });
    };
    let mc = &list[i];
    let path = format!("methodConfig[{i}]");
    Ok(MethodSettings {
        // A zero timeout means none, as in gRPC C-core (grpc-python's core); grpc-go would
        // fail every call at once.
        timeout: duration_field(mc, "timeout", &path)?.filter(|t| !t.is_zero()),
        retry: field(mc, "retryPolicy")
            .filter(|v| !v.is_null())
            .map(|r| retry_policy(r, &format!("{path}.retryPolicy"), throttle))
            .transpose()?,
        hedge: field(mc, "hedgingPolicy")
            .filter(|v| !v.is_null())
            .map(|h| hedging_policy(h, &format!("{path}.hedgingPolicy"), throttle))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed document's config, with its timeout written as proto3 JSON requires.
    const SEED: &str = r#"{
      "methodConfig": [{
        "name": [{"service": "resilbench.v1.Backend"}],
        "timeout": "0.4s",
        "retryPolicy": {
          "maxAttempts": 3,
          "initialBackoff": "0.05s",
          "maxBackoff": "0.25s",
          "backoffMultiplier": 2.0,
          "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
        }
      }],
      "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
    }"#;

    #[test]
    fn durations_parse_as_proto3_json_writes_them() {
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration(".1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.000000001s"), Ok(Duration::new(1, 1)));
        for bad in [
            "",
            "s",
            "1",
            "0.1ms",
            "1.0000000001s",
            "-1s",
            "1e3s",
            "1.s.s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_seed_config_loads_unchanged() {
        let s = settings_for(SEED, "Call").unwrap();
        assert_eq!(s.timeout, Some(Duration::from_millis(400)));
        let r = s.retry.unwrap();
        assert_eq!(
            (r.max_attempts, r.initial_backoff, r.max_backoff),
            (3, Duration::from_millis(50), Duration::from_millis(250))
        );
        assert_eq!(
            r.retryable_status_codes,
            vec!["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
        );
        assert_eq!(
            r.throttle,
            Some(ThrottlePlan {
                max_tokens: 10.0,
                token_ratio: 0.1
            })
        );
    }

    /// The seed document writes `"timeout": "400ms"`. A real client refuses that config whole:
    /// grpc-python 1.85 (C-core) fails the channel with "errors validating service config:
    /// [field:methodConfig[0].timeout error:Not a duration (not a number of seconds)]", and
    /// grpc-go's parser rejects it too. So does the importer, saying where.
    #[test]
    fn a_timeout_in_milliseconds_is_refused_as_real_clients_refuse_it() {
        let e = settings_for(&SEED.replace("\"0.4s\"", "\"400ms\""), "Call").unwrap_err();
        assert!(
            e.contains("methodConfig[0].timeout")
                && e.contains("`400ms` is not a proto3 JSON duration"),
            "{e}"
        );
    }

    #[test]
    fn grpc_go_style_capitalised_keys_and_numeric_codes_load() {
        let cfg = r#"{"methodConfig":[{"name":[{"service":"resilbench.v1.Backend"}],"waitForReady":true,
            "retryPolicy":{"MaxAttempts":4,"InitialBackoff":".01s","MaxBackoff":".01s","BackoffMultiplier":1.0,
            "RetryableStatusCodes":["unavailable", 2]}}]}"#;
        let r = settings_for(cfg, "Call").unwrap().retry.unwrap();
        assert_eq!(r.max_attempts, 4);
        assert_eq!(r.retryable_status_codes, vec!["UNAVAILABLE", "UNKNOWN"]);
    }

    #[test]
    fn the_most_specific_name_wins() {
        let cfg = r#"{"methodConfig":[
            {"name":[{}], "timeout":"1s"},
            {"name":[{"service":"resilbench.v1.Backend"}], "timeout":"2s"},
            {"name":[{"service":"resilbench.v1.Backend","method":"Mutate"}], "timeout":"3s"},
            {"name":[{"service":"other.Service"}], "timeout":"4s"}]}"#;
        assert_eq!(
            settings_for(cfg, "Mutate").unwrap().timeout,
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            settings_for(cfg, "Call").unwrap().timeout,
            Some(Duration::from_secs(2))
        );
        let only_default = r#"{"methodConfig":[{"name":[{}], "timeout":"1s"}]}"#;
        assert_eq!(
            settings_for(only_default, "Stream").unwrap().timeout,
            Some(Duration::from_secs(1))
        );
        let other = r#"{"methodConfig":[{"name":[{"service":"x.Y"}], "timeout":"1s"}]}"#;
        assert_eq!(
            settings_for(other, "Call").unwrap(),
            MethodSettings {
                timeout: None,
                retry: None,
                hedge: None
            }
        );
    }

    #[test]
    fn max_attempts_above_five_counts_as_five_and_below_two_is_refused() {
        let with = |n: &str| SEED.replace("\"maxAttempts\": 3", &format!("\"maxAttempts\": {n}"));
        assert_eq!(
            settings_for(&with("9"), "Call")
                .unwrap()
                .retry
                .unwrap()
                .max_attempts,
            5
        );
        let e = settings_for(&with("1"), "Call").unwrap_err();
        assert!(
            e.contains("methodConfig[0].retryPolicy.maxAttempts") && e.contains("2 or more"),
            "{e}"
        );
        assert!(
            settings_for(&with("2.5"), "Call")
                .unwrap_err()
                .contains("integer")
        );
        // ProtoJSON's string form of a uint32, which grpc-go reads.
        let quoted = settings_for(&with("\"4\""), "Call").unwrap();
        assert_eq!(quoted.retry.unwrap().max_attempts, 4);
    }

    /// grpc-go skips a method config without a name, unread; a duration beyond proto3's range
    /// is refused.
    /// A6's hedging example loads as a `grpc_hedge` layer with the config's throttling;
    /// `hedgingDelay` and `nonFatalStatusCodes` may be left out.
    #[test]
    fn a_hedging_policy_loads() {
        let cfg = r#"{"methodConfig":[{"name":[{"service":"resilbench.v1.Backend"}],
            "hedgingPolicy":{"maxAttempts":7,"hedgingDelay":".5s",
            "nonFatalStatusCodes":["UNAVAILABLE","internal",10]}}],
            "retryThrottling":{"maxTokens":10,"tokenRatio":0.1}}"#;
        let h = settings_for(cfg, "Call").unwrap().hedge.unwrap();
        assert_eq!(h.max_attempts, 5);
        assert_eq!(h.hedging_delay, Duration::from_millis(500));
        assert_eq!(
            h.non_fatal_status_codes,
            ["UNAVAILABLE", "INTERNAL", "ABORTED"]
        );
        assert!(h.throttle.is_some());
        let bare = r#"{"methodConfig":[{"name":[{}],"hedgingPolicy":{"maxAttempts":2}}]}"#;
        let h = settings_for(bare, "Call").unwrap().hedge.unwrap();
        assert_eq!(
            (h.hedging_delay, h.non_fatal_status_codes.len()),
            (Duration::ZERO, 0)
        );
        let bad = r#"{"methodConfig":[{"name":[{}],"hedgingPolicy":{"maxAttempts":1}}]}"#;
        let e = settings_for(bad, "Call").unwrap_err();
        assert!(e.contains("hedgingPolicy.maxAttempts"), "{e}");
    }

    #[test]
    fn nameless_entries_are_skipped_and_durations_have_a_range() {
        let nameless = r#"{"methodConfig":[
            {"retryPolicy":{"maxAttempts":1}},
            {"name":[{"service":"resilbench.v1.Backend"}], "timeout":"2s"}]}"#;
        assert_eq!(
            settings_for(nameless, "Call").unwrap().timeout,
            Some(Duration::from_secs(2))
        );
        assert!(parse_duration("315576000000s").is_ok());
        let e = parse_duration("315576000001s").unwrap_err();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn invalid_configs_say_where_and_why() {
        let cases = [
            (
                SEED.replace("\"0.05s\"", "\"0s\""),
                "initialBackoff: must be greater than zero",
            ),
            (
                SEED.replace("\"0.25s\"", "\"250ms\""),
                "maxBackoff: `250ms` is not a proto3 JSON duration",
            ),
            (
                SEED.replace("2.0", "0"),
                "backoffMultiplier: must be greater than zero",
            ),
            (
                SEED.replace("[\"UNAVAILABLE\", \"RESOURCE_EXHAUSTED\"]", "[]"),
                "retryableStatusCodes: must not be empty",
            ),
            (
                SEED.replace("\"UNAVAILABLE\", ", "\"NOT_A_CODE\", "),
                "retryableStatusCodes[0]",
            ),
            (
                SEED.replace("\"maxTokens\": 10", "\"maxTokens\": 1001"),
                "maxTokens: must be above 0 and at most 1000",
            ),
            (
                SEED.replace("\"tokenRatio\": 0.1", "\"tokenRatio\": 0"),
                "tokenRatio: must be greater than zero",
            ),
            (
                SEED.replace(
                    "\"timeout\": \"0.4s\",",
                    "\"hedgingPolicy\": {\"maxAttempts\": 2},",
                ),
                "only one of retryPolicy and hedgingPolicy",
            ),
            ("{ not json".to_string(), "not valid JSON (line 1"),
            (
                SEED.replace("\"retryableStatusCodes\"", "\"retryableStatusCode\""),
                "retryableStatusCodes: required",
            ),
        ];
        for (cfg, want) in cases {
            let e = settings_for(&cfg, "Call").unwrap_err();
            assert!(e.contains(want), "want {want:?} in {e:?}");
        }
    }
}
