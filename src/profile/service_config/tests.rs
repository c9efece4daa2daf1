//! The service config importer's tests: method matching, every `name` form, validation.

use super::names::*;
use super::policy::*;
use super::*;
use crate::profile::layers::ThrottlePlan;

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
