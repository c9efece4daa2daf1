//! Importing a gRPC service config: the JSON a client passes as `grpc.service_config`.
//!
//! A strategy given `service_config` (the JSON itself, or a file path relative to the profile)
//! behaves as a gRPC client with that config would for the method its calls use
//! ([`crate::profile::Plan::called_method`]: `resilbench.v1.Backend/Call`, `/Mutate` or
//! `/Stream` of the embedded backend, or a target's own method):
//! - the method config is chosen as grpc/grpc `doc/service_config.md` and the `Name` comment
//!   of `grpc/service_config/service_config.proto` say, and as grpc-go (`service_config.go`,
//!   `getMethodConfig`), grpc-java (`ManagedChannelServiceConfig`) and C-core do: an entry
//!   naming the service and method beats one naming the service only, which beats the default
//!   (`{}`, or an empty service); a missing key, `null` and `""` are the same; an empty service
//!   with a method is refused; a name may appear only once in the whole config; names are
//!   case-sensitive;
//! - a config none of whose names matches the method called is refused, naming that method: a
//!   client would silently run it without timeout or policy (the user would conclude that
//!   retries do not help);
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

/// One entry of a method config's `name` list, checked as gRPC clients check it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Name {
    /// `{}` (or `{"service": ""}`): the default for every method.
    Default,
    /// `{"service": "pkg.Service"}`: every method of the service.
    Service(String),
    /// `{"service": "pkg.Service", "method": "Method"}`: that method.
    Method(String, String),
}

impl Name {
    /// Reads one `name` entry. A missing key, `null` and `""` are the same (the service
    /// config proto's comment on `Name`); an empty service with a method is refused, as
    /// grpc-go (`errEmptyServiceNonEmptyMethod`), grpc-java (`missing service name for
    /// method`) and C-core (`method name populated without service name`) refuse it.
    fn read(name: &Value) -> Result<Self> {
        if !name.is_object() {
            return Err(format!(
                "expected an object like {{\"service\": \"pkg.Service\", \"method\": \"Method\"}}, \
                 got {name}"
            ));
        }
        let text = |key: &str| match field(name, key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("expected a string for `{key}`, got {other}")),
        };
        Ok(match (text("service")?, text("method")?) {
            (s, m) if s.is_empty() && m.is_empty() => Name::Default,
            (s, m) if s.is_empty() => {
                return Err(format!(
                    "`method` is \"{m}\" without a `service`: a name with a method needs its \
                     service (gRPC clients refuse the config)"
                ));
            }
            (s, m) if m.is_empty() => Name::Service(s),
            (s, m) => Name::Method(s, m),
        })
    }

    /// How specifically it matches `service`/`method`: 2 the method, 1 the service, 0 the
    /// default; `None` if it does not (names are case-sensitive, as `:path` is).
    fn specificity(&self, service: &str, method: &str) -> Option<u8> {
        match self {
            Name::Default => Some(0),
            Name::Service(s) => (s == service).then_some(1),
            Name::Method(s, m) => (s == service && m == method).then_some(2),
        }
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Default => f.write_str("{} (every method)"),
            Name::Service(s) => write!(f, "{s} (every method)"),
            Name::Method(s, m) => write!(f, "{s}/{m}"),
        }
    }
}

/// Why no name of a config matches the method called, in words, with what might have been
/// meant: the same service in another case, a leading slash, a full path written as the
/// service, the service's short name.
fn no_match(names: &[Name], service: &str, method: &str) -> String {
    let called = format!("{service}/{method}");
    let how = format!(
        "name it as {{\"service\": \"{service}\"}} (every method of the service) or \
         {{\"service\": \"{service}\", \"method\": \"{method}\"}}, or add {{}} (the default for \
         every method)"
    );
    if names.is_empty() {
        return format!(
            "the config names no method (no methodConfig with a `name`), so it sets nothing for \
             the method this profile calls, `{called}`: a gRPC client would run it without \
             timeout or retry policy; {how}"
        );
    }
    let short = service.rsplit('.').next().unwrap_or(service);
    let hint = names.iter().find_map(|n| {
        let (s, m) = match n {
            Name::Default => return None,
            Name::Service(s) => (s.as_str(), None),
            Name::Method(s, m) => (s.as_str(), Some(m.as_str())),
        };
        let bare = s.trim_matches('/');
        if s == service {
            // The service is right: the method differs.
            m.filter(|m| m.eq_ignore_ascii_case(method)).map(|m| {
                format!("`{s}/{m}` differs from `{called}` in case: names are case-sensitive")
            })
        } else if bare == service || bare == called {
            Some(format!(
                "`{s}` is written with a slash: a service is `package.Service`"
            ))
        } else if s.eq_ignore_ascii_case(service) {
            Some(format!(
                "`{s}` differs from `{service}` in case: names are case-sensitive"
            ))
        } else if s == short || s.ends_with(&format!(".{short}")) {
            Some(format!(
                "`{s}` is not `{service}`: a service is named with its full package"
            ))
        } else {
            None
        }
    });
    let listed: Vec<String> = names.iter().map(ToString::to_string).collect();
    format!(
        "no methodConfig names the method this profile calls, `{called}`; the config names {}. \
         A gRPC client would call `{called}` without timeout or retry policy; {how}{}",
        listed.join(", "),
        hint.map(|h| format!(" ({h})")).unwrap_or_default()
    )
}

/// What `config` (service config JSON text) says about `method` of `service` (the method the
/// profile calls, [`crate::profile::Plan::called_method`]). A config none of whose names
/// match that method is an error that names it: it would do nothing, silently.
pub fn settings_for(config_text: &str, service: &str, method: &str) -> Result<MethodSettings> {
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
    let mut seen: Vec<Name> = Vec::new();
    for (i, mc) in list.iter().enumerate() {
        // An entry without a `name` applies to nothing; grpc-go skips it unread.
        let Some(names) = field(mc, "name").filter(|n| !n.is_null()) else {
            continue;
        };
        let Value::Array(names) = names else {
            return Err(format!(
                "methodConfig[{i}].name: expected a list of names like [{{\"service\": \
                 \"pkg.Service\"}}], got {names}"
            ));
        };
        for (j, name) in names.iter().enumerate() {
            let path = format!("methodConfig[{i}].name[{j}]");
            let name = Name::read(name).map_err(|e| format!("{path}: {e}"))?;
            // A name may appear once in the whole config (grpc-go `errDuplicatedName`,
            // grpc-java "Duplicate service/method/default method config").
            if seen.contains(&name) {
                return Err(format!(
                    "{path}: {name} is named twice; a name may appear in one methodConfig \
                     only (gRPC clients refuse the config)"
                ));
            }
            if let Some(level) = name.specificity(service, method)
                && best.is_none_or(|(b, _)| level > b)
            {
                best = Some((level, i));
            }
            seen.push(name);
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
        return Err(no_match(&seen, service, method));
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

    /// The embedded backend's service.
    const B: &str = "resilbench.v1.Backend";

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
        let s = settings_for(SEED, B, "Call").unwrap();
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
        let e = settings_for(&SEED.replace("\"0.4s\"", "\"400ms\""), B, "Call").unwrap_err();
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
        let r = settings_for(cfg, B, "Call").unwrap().retry.unwrap();
        assert_eq!(r.max_attempts, 4);
        assert_eq!(r.retryable_status_codes, vec!["UNAVAILABLE", "UNKNOWN"]);
    }

    /// One config, every way of naming: the method beats its service, which beats the
    /// default; another service's entry does not apply.
    #[test]
    fn the_most_specific_name_wins() {
        let cfg = r#"{"methodConfig":[
            {"name":[{}], "timeout":"1s"},
            {"name":[{"service":"resilbench.v1.Backend"}], "timeout":"2s"},
            {"name":[{"service":"resilbench.v1.Backend","method":"Mutate"}], "timeout":"3s"},
            {"name":[{"service":"other.Service"}], "timeout":"4s"},
            {"name":[{"service":"other.Service","method":"Call"}], "timeout":"5s"}]}"#;
        let timeout = |service, method| settings_for(cfg, service, method).unwrap().timeout;
        assert_eq!(timeout(B, "Mutate"), Some(Duration::from_secs(3)));
        assert_eq!(timeout(B, "Call"), Some(Duration::from_secs(2)));
        assert_eq!(
            timeout("other.Service", "Call"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            timeout("other.Service", "Get"),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            timeout("third.Service", "Call"),
            Some(Duration::from_secs(1))
        );
        let only_default = r#"{"methodConfig":[{"name":[{}], "timeout":"1s"}]}"#;
        assert_eq!(
            settings_for(only_default, B, "Stream").unwrap().timeout,
            Some(Duration::from_secs(1))
        );
    }

    /// Every form of `name` that gRFC A6 and the service config proto give, each matched, or
    /// not, against `acme.v1.Payments/Charge` as gRPC clients match it.
    #[test]
    fn every_name_form_matches_as_clients_match_it() {
        let (svc, method) = ("acme.v1.Payments", "Charge");
        let cases: [(&str, Option<u8>); 14] = [
            // The default: no keys, empty strings, nulls (the proto's comment: all the same).
            (r#"{}"#, Some(0)),
            (r#"{"service": ""}"#, Some(0)),
            (r#"{"service": null, "method": null}"#, Some(0)),
            (r#"{"service": "", "method": ""}"#, Some(0)),
            // The service: method absent, null or empty.
            (r#"{"service": "acme.v1.Payments"}"#, Some(1)),
            (
                r#"{"service": "acme.v1.Payments", "method": null}"#,
                Some(1),
            ),
            (r#"{"service": "acme.v1.Payments", "method": ""}"#, Some(1)),
            // The method.
            (
                r#"{"service": "acme.v1.Payments", "method": "Charge"}"#,
                Some(2),
            ),
            // Keys in another case, as grpc-go's JSON decoding reads them.
            (
                r#"{"Service": "acme.v1.Payments", "Method": "Charge"}"#,
                Some(2),
            ),
            // Not this method: another method, service, or case.
            (
                r#"{"service": "acme.v1.Payments", "method": "Refund"}"#,
                None,
            ),
            (r#"{"service": "acme.v1.Refunds"}"#, None),
            (r#"{"service": "acme.v1.payments"}"#, None),
            (r#"{"service": "Payments"}"#, None),
            (
                r#"{"service": "acme.v1.Payments", "method": "charge"}"#,
                None,
            ),
        ];
        for (name, want) in cases {
            let level = Name::read(&serde_json::from_str(name).unwrap())
                .unwrap()
                .specificity(svc, method);
            assert_eq!(level, want, "{name}");
            // As a whole config: it applies, or it is refused for matching nothing.
            let cfg = format!(r#"{{"methodConfig":[{{"name":[{name}],"timeout":"7s"}}]}}"#);
            match (settings_for(&cfg, svc, method), want) {
                (Ok(s), Some(_)) => assert_eq!(s.timeout, Some(Duration::from_secs(7))),
                (Err(e), None) => assert!(e.contains("`acme.v1.Payments/Charge`"), "{e}"),
                (other, _) => panic!("{name}: {other:?}"),
            }
        }
    }

    /// What clients refuse: a method without its service, a name twice (in one entry or in
    /// two, the default included), a name that is not an object, a `name` that is not a list,
    /// a service or method that is not a string.
    #[test]
    fn names_clients_refuse_are_refused() {
        let cases = [
            (
                r#"[{"method": "Charge"}]"#,
                "`method` is \"Charge\" without a `service`",
            ),
            (
                r#"[{"service": "", "method": "Charge"}]"#,
                "without a `service`",
            ),
            (
                r#"[{"service": "a.B"}, {"service": "a.B", "method": ""}]"#,
                "named twice",
            ),
            (
                r#"[{}, {"service": null}]"#,
                "{} (every method) is named twice",
            ),
            (r#"["acme.v1.Payments"]"#, "expected an object"),
            (
                r#"{"service": "acme.v1.Payments"}"#,
                "expected a list of names",
            ),
            (r#"[{"service": 7}]"#, "expected a string for `service`"),
            (
                r#"[{"service": "a.B", "method": ["C"]}]"#,
                "expected a string for `method`",
            ),
        ];
        for (names, want) in cases {
            let cfg = format!(r#"{{"methodConfig":[{{"name":{names}}}]}}"#);
            let e = settings_for(&cfg, "a.B", "C").unwrap_err();
            assert!(
                e.contains("methodConfig[0].name") && e.contains(want),
                "{names}: {e}"
            );
        }
        // Twice across two method configs.
        let twice = r#"{"methodConfig":[{"name":[{"service":"a.B","method":"C"}]},
            {"name":[{"service":"a.B","method":"C"}]}]}"#;
        let e = settings_for(twice, "a.B", "C").unwrap_err();
        assert!(
            e.starts_with("methodConfig[1].name[0]: a.B/C is named twice"),
            "{e}"
        );
        // An empty list names nothing, and is no error by itself.
        let empty = r#"{"methodConfig":[{"name":[]},{"name":[{}],"timeout":"2s"}]}"#;
        assert_eq!(
            settings_for(empty, "a.B", "C").unwrap().timeout,
            Some(Duration::from_secs(2))
        );
    }

    /// A config that names only other methods is refused, naming the method called (the
    /// embedded backend's included) and what might have been meant.
    #[test]
    fn a_config_matching_nothing_names_the_method_called() {
        let payments = r#"{"methodConfig":[{"name":[{"service":"mycompany.payments.v1.Payments"}],
            "retryPolicy":{"maxAttempts":3,"initialBackoff":"0.1s","maxBackoff":"1s",
            "backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}"#;
        let e = settings_for(payments, B, "Call").unwrap_err();
        assert!(
            e.contains(
                "no methodConfig names the method this profile calls, `resilbench.v1.Backend/Call`"
            ) && e.contains("the config names mycompany.payments.v1.Payments (every method)")
                && e.contains(r#"{"service": "resilbench.v1.Backend"}"#),
            "{e}"
        );
        let hints = [
            (
                r#"{"service":"/resilbench.v1.Backend"}"#,
                "written with a slash",
            ),
            (
                r#"{"service":"/resilbench.v1.Backend/Call"}"#,
                "written with a slash",
            ),
            (
                r#"{"service":"Resilbench.V1.Backend"}"#,
                "differs from `resilbench.v1.Backend` in case",
            ),
            (r#"{"service":"Backend"}"#, "named with its full package"),
            (
                r#"{"service":"resilbench.v1.Backend","method":"call"}"#,
                "differs from `resilbench.v1.Backend/Call` in case",
            ),
        ];
        for (name, want) in hints {
            let cfg = format!(r#"{{"methodConfig":[{{"name":[{name}]}}]}}"#);
            let e = settings_for(&cfg, B, "Call").unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
        }
        for nothing in [
            r#"{}"#,
            r#"{"methodConfig":[]}"#,
            r#"{"retryThrottling":{"maxTokens":10,"tokenRatio":0.1}}"#,
        ] {
            let e = settings_for(nothing, B, "Stream").unwrap_err();
            assert!(
                e.contains("names no method") && e.contains("`resilbench.v1.Backend/Stream`"),
                "{e}"
            );
        }
    }

    #[test]
    fn max_attempts_above_five_counts_as_five_and_below_two_is_refused() {
        let with = |n: &str| SEED.replace("\"maxAttempts\": 3", &format!("\"maxAttempts\": {n}"));
        assert_eq!(
            settings_for(&with("9"), B, "Call")
                .unwrap()
                .retry
                .unwrap()
                .max_attempts,
            5
        );
        let e = settings_for(&with("1"), B, "Call").unwrap_err();
        assert!(
            e.contains("methodConfig[0].retryPolicy.maxAttempts") && e.contains("2 or more"),
            "{e}"
        );
        assert!(
            settings_for(&with("2.5"), B, "Call")
                .unwrap_err()
                .contains("integer")
        );
        // ProtoJSON's string form of a uint32, which grpc-go reads.
        let quoted = settings_for(&with("\"4\""), B, "Call").unwrap();
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
        let h = settings_for(cfg, B, "Call").unwrap().hedge.unwrap();
        assert_eq!(h.max_attempts, 5);
        assert_eq!(h.hedging_delay, Duration::from_millis(500));
        assert_eq!(
            h.non_fatal_status_codes,
            ["UNAVAILABLE", "INTERNAL", "ABORTED"]
        );
        assert!(h.throttle.is_some());
        let bare = r#"{"methodConfig":[{"name":[{}],"hedgingPolicy":{"maxAttempts":2}}]}"#;
        let h = settings_for(bare, B, "Call").unwrap().hedge.unwrap();
        assert_eq!(
            (h.hedging_delay, h.non_fatal_status_codes.len()),
            (Duration::ZERO, 0)
        );
        let bad = r#"{"methodConfig":[{"name":[{}],"hedgingPolicy":{"maxAttempts":1}}]}"#;
        let e = settings_for(bad, B, "Call").unwrap_err();
        assert!(e.contains("hedgingPolicy.maxAttempts"), "{e}");
    }

    #[test]
    fn nameless_entries_are_skipped_and_durations_have_a_range() {
        let nameless = r#"{"methodConfig":[
            {"retryPolicy":{"maxAttempts":1}},
            {"name":[{"service":"resilbench.v1.Backend"}], "timeout":"2s"}]}"#;
        assert_eq!(
            settings_for(nameless, B, "Call").unwrap().timeout,
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
            let e = settings_for(&cfg, B, "Call").unwrap_err();
            assert!(e.contains(want), "want {want:?} in {e:?}");
        }
    }
}
