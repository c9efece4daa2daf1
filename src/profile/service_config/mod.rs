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

mod names;
mod policy;

use names::{Name, no_match};
pub use policy::parse_duration;
use policy::{duration_field, hedging_policy, retry_policy, throttling};

use std::time::Duration;

use serde_json::Value;

use super::layers::{GrpcHedgePlan, GrpcRetryPlan};

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

pub(super) type Result<T> = std::result::Result<T, String>;

/// A key of a JSON object, matched in any case.
pub(super) fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
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
mod tests;
