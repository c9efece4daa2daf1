//! Bad profiles: each is refused by `resilbench validate` with exit status 2, and the message
//! names the file, the line (and column) and the field, and says what was expected.

use crate::common::{resilbench, stderr};

/// A valid profile; each case replaces one line of it or appends to it.
const GOOD: &str = r#"name = "t"
seed = 1

[load]
rate = 100
duration = "2s"
warmup = "500ms"
deadline = "1s"

[backend]
latency = "2ms"
errors = { UNAVAILABLE = 0.01 }
workers = 8
queue = 16

[[strategies]]
name = "a"

[[strategies]]
name = "b"
deadline = "100ms"
"#;

struct Case {
    what: &'static str,
    /// (line to replace, replacement); an empty line to replace means append.
    edit: (&'static str, &'static str),
    /// Expected `file:line:` prefix line number.
    line: usize,
    /// Text the message must contain (field and expectation).
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        what: "unknown key",
        edit: ("rate = 100", "rat = 100"),
        line: 5,
        says: &["unknown field `rat`", "expected one of"],
    },
    Case {
        what: "rate 0",
        edit: ("rate = 100", "rate = 0"),
        line: 5,
        says: &["load.rate", "at least 0.001"],
    },
    Case {
        what: "negative rate",
        edit: ("rate = 100", "rate = -5"),
        line: 5,
        says: &["load.rate"],
    },
    Case {
        what: "rate as text",
        edit: ("rate = 100", "rate = \"fast\""),
        line: 5,
        says: &["load.rate", "invalid type"],
    },
    Case {
        what: "duration without unit",
        edit: ("duration = \"2s\"", "duration = 2"),
        line: 6,
        says: &["load.duration", "no unit"],
    },
    Case {
        what: "negative duration",
        edit: ("duration = \"2s\"", "duration = \"-2s\""),
        line: 6,
        says: &["load.duration", "negative"],
    },
    Case {
        what: "zero duration",
        edit: ("duration = \"2s\"", "duration = \"0s\""),
        line: 6,
        says: &["load.duration", "above 0"],
    },
    Case {
        what: "unknown unit",
        edit: ("duration = \"2s\"", "duration = \"2 fortnights\""),
        line: 6,
        says: &["load.duration", "unknown unit"],
    },
    Case {
        what: "warmup not shorter than duration",
        edit: ("warmup = \"500ms\"", "warmup = \"2s\""),
        line: 7,
        says: &["load.warmup", "shorter than load.duration"],
    },
    Case {
        what: "wake quantum beyond 10 ms",
        edit: (
            "deadline = \"1s\"",
            "deadline = \"1s\"\nwake_quantum = \"20ms\"",
        ),
        line: 9,
        says: &["load.wake_quantum", "from 0s to 10ms", "got 20ms"],
    },
    Case {
        what: "zero deadline",
        edit: ("deadline = \"1s\"", "deadline = \"0ms\""),
        line: 8,
        says: &["load.deadline", "above 0"],
    },
    Case {
        what: "probability above 1",
        edit: (
            "errors = { UNAVAILABLE = 0.01 }",
            "errors = { UNAVAILABLE = 1.5 }",
        ),
        line: 12,
        says: &["backend.errors.UNAVAILABLE", "between 0 and 1"],
    },
    Case {
        what: "unknown status",
        edit: (
            "errors = { UNAVAILABLE = 0.01 }",
            "errors = { UNAVAILIBLE = 0.01 }",
        ),
        line: 12,
        says: &["backend.errors.UNAVAILIBLE", "not a gRPC status code"],
    },
    Case {
        what: "errors add up to more than 1",
        edit: (
            "errors = { UNAVAILABLE = 0.01 }",
            "errors = { UNAVAILABLE = 0.6, INTERNAL = 0.6 }",
        ),
        line: 12,
        says: &["backend.errors", "more than 1"],
    },
    Case {
        what: "zero workers",
        edit: ("workers = 8", "workers = 0"),
        line: 13,
        says: &["backend.workers", "at least 1"],
    },
    Case {
        what: "lognormal p99 below median",
        edit: (
            "latency = \"2ms\"",
            "latency = { dist = \"lognormal\", median = \"5ms\", p99 = \"1ms\" }",
        ),
        line: 11,
        says: &["backend.latency.p99", "at least the median"],
    },
    Case {
        what: "unknown distribution",
        edit: (
            "latency = \"2ms\"",
            "latency = { dist = \"gamma\", mean = \"1ms\" }",
        ),
        line: 11,
        says: &["backend.latency", "unknown variant `gamma`"],
    },
    Case {
        what: "duplicate strategy name",
        edit: ("name = \"b\"", "name = \"a\""),
        line: 20,
        says: &["strategies[1].name", "unique"],
    },
    Case {
        what: "strategy deadline zero",
        edit: ("deadline = \"100ms\"", "deadline = \"0s\""),
        line: 21,
        says: &["strategies[1].deadline", "above 0"],
    },
    Case {
        what: "unknown layer kind",
        edit: ("", "layers = [{ kind = \"teleport\" }]"),
        line: 22,
        says: &["strategies[1].layers", "unknown kind `teleport`", "timeout"],
    },
    Case {
        what: "layer with a bad value",
        edit: ("", "layers = [{ kind = \"timeout\", timeout = \"0s\" }]"),
        line: 22,
        says: &["strategies[1].layers[0].timeout", "above 0"],
    },
    Case {
        what: "phase for an unknown replica",
        edit: (
            "",
            "[[phases]]\nkind = \"outage\"\nstart = \"1s\"\nduration = \"1s\"\nreplica = \"ghost\"",
        ),
        line: 26,
        says: &["phases[0].replica", "no replica is called `ghost`"],
    },
    Case {
        what: "a key of another phase kind",
        edit: (
            "",
            "[[phases]]\nkind = \"stall\"\nstart = \"1s\"\nduration = \"1s\"\nfactor = 2.0",
        ),
        line: 26,
        says: &["phases[0].factor", "only load_spike phases take `factor`"],
    },
    Case {
        what: "a script that names no request",
        edit: (
            "queue = 16",
            "queue = 16\n[[backend.scripts]]\nsteps = [\"UNAVAILABLE\"]",
        ),
        line: 15,
        says: &["backend.scripts[0]", "name the requests"],
    },
    Case {
        what: "a script step with an unknown status",
        edit: (
            "queue = 16",
            "queue = 16\n[[backend.scripts]]\nevery = 2\nsteps = [\"UNAVAILABLE\", \"NOPE\"]",
        ),
        line: 17,
        says: &[
            "backend.scripts[0].steps[1].status",
            "not a gRPC status code",
        ],
    },
    Case {
        what: "syntax error",
        edit: ("seed = 1", "seed = = 1"),
        line: 2,
        says: &["seed"],
    },
    Case {
        what: "unknown top-level table",
        edit: ("", "[gaet]\nx = 1"),
        line: 22,
        says: &["unknown field `gaet`"],
    },
    Case {
        what: "gate naming a strategy the profile lacks",
        edit: ("", "[gate.strategies.c.limits]\nsuccess_rate = \">= 99%\""),
        line: 22,
        says: &["gate.strategies.c", "no strategy is named `c`", "a, b"],
    },
    Case {
        what: "gate limit that does not parse",
        edit: ("", "[gate.limits]\nsuccess_rate = \"99%\""),
        line: 23,
        says: &["gate.limits.success_rate", "is not a limit", ">= 99.5%"],
    },
    Case {
        what: "gate budget without a direction",
        edit: ("", "[gate.budgets]\n\"latency_ms.e2e.p99\" = \"10%\""),
        line: 23,
        says: &["is not a budget", "+10%"],
    },
    Case {
        what: "grpc_retry with one attempt",
        edit: ("", GRPC_RETRY),
        line: 24,
        says: &[
            "strategies[1].layers[0].max_attempts",
            "2 or more (gRFC A6)",
        ],
    },
    Case {
        what: "a retryable status that does not exist",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"retry\"\nretry_on = [\"UNAVAILBLE\"]",
        ),
        line: 24,
        says: &["strategies[1].layers[0].retry_on", "not a gRPC status code"],
    },
    Case {
        what: "a throttle above A6's 1000 tokens",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"grpc_retry\"\nmax_attempts = 3\ninitial_backoff = \"10ms\"\nmax_backoff = \"1s\"\nbackoff_multiplier = 2\nretryable_status_codes = [\"UNAVAILABLE\"]\nthrottle = { max_tokens = 2000, token_ratio = 0.1 }",
        ),
        line: 29,
        says: &["throttle.max_tokens", "at most 1000"],
    },
    Case {
        what: "a budget ttl over a minute",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"retry\"\nbudget = { kind = \"tps\", ttl = \"90s\" }",
        ),
        line: 24,
        says: &["budget.ttl", "from 1s to 60s"],
    },
    Case {
        what: "an unknown backoff jitter",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"retry\"\nbackoff = { jitter = \"random\", base = \"1ms\", cap = \"1s\" }",
        ),
        line: 24,
        says: &[
            "strategies[1].layers[0].backoff.jitter",
            "unknown variant `random`",
            "decorrelated",
        ],
    },
    Case {
        what: "a service config with a millisecond timeout",
        edit: (
            "",
            "service_config = '{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"400ms\"}]}'",
        ),
        line: 22,
        says: &[
            "strategies[1].service_config",
            "methodConfig[0].timeout",
            "proto3 JSON duration",
        ],
    },
    Case {
        what: "a service config naming another service (the issue's silent no-op)",
        edit: (
            "",
            "service_config = '{\"methodConfig\": [{\"name\": [{\"service\": \"mycompany.payments.v1.Payments\"}], \"timeout\": \"0.4s\"}]}'",
        ),
        line: 22,
        says: &[
            "strategies[1].service_config",
            "no methodConfig names the method this profile calls, `resilbench.v1.Backend/Call`",
            "mycompany.payments.v1.Payments (every method)",
        ],
    },
    Case {
        what: "a service config with a method and no service",
        edit: (
            "",
            "service_config = '{\"methodConfig\": [{\"name\": [{\"method\": \"Call\"}]}]}'",
        ),
        line: 22,
        says: &[
            "strategies[1].service_config",
            "methodConfig[0].name[0]",
            "without a `service`",
        ],
    },
    Case {
        what: "a deadline margin as long as the deadline",
        edit: ("", "deadline_margin = \"100ms\""),
        line: 22,
        says: &[
            "strategies[1].deadline_margin",
            "shorter than the call deadline (100ms)",
        ],
    },
    Case {
        what: "a deadline margin with no deadline sent",
        edit: ("", "propagate_deadline = false\ndeadline_margin = \"10ms\""),
        line: 23,
        says: &[
            "strategies[1].deadline_margin",
            "needs propagate_deadline = true",
        ],
    },
    Case {
        what: "a fan-out to no one",
        edit: ("", "[[strategies.layers]]\nkind = \"fan_out\"\nn = 0"),
        line: 24,
        says: &["strategies[1].layers[0].n", "from 1 to 1000"],
    },
    Case {
        what: "a fan-out needing more answers than it asks for",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"fan_out\"\nn = 3\nneed = 4",
        ),
        line: 25,
        says: &["strategies[1].layers[0].need", "from 1 to n (3)"],
    },
    Case {
        what: "a hedge at the 95th percentile written as 95",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"hedge\"\npercentile = 95",
        ),
        line: 24,
        says: &["strategies[1].layers[0].percentile", "0.95 is p95"],
    },
    Case {
        what: "a pybreaker that never opens",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"pybreaker\"\nfail_max = 0",
        ),
        line: 24,
        says: &["strategies[1].layers[0].fail_max", "at least 1"],
    },
    Case {
        what: "a resilience4j threshold above 100%",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"resilience4j\"\nfailure_rate_threshold = 150",
        ),
        line: 24,
        says: &[
            "strategies[1].layers[0].failure_rate_threshold",
            "at most 100",
        ],
    },
    Case {
        what: "two circuit breakers in one strategy",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"pybreaker\"\n[[strategies.layers]]\nkind = \"resilience4j\"",
        ),
        line: 22,
        says: &["strategies[1].layers", "one circuit breaker"],
    },
    Case {
        what: "a gRPC hedging policy with one attempt",
        edit: (
            "",
            "[[strategies.layers]]\nkind = \"grpc_hedge\"\nmax_attempts = 1\nhedging_delay = \"10ms\"",
        ),
        line: 24,
        says: &["strategies[1].layers[0].max_attempts", "2 or more"],
    },
    Case {
        what: "an unknown client library",
        edit: ("", "client = \"grpc-rust\""),
        line: 22,
        says: &[
            "strategies[1].client",
            "unknown client `grpc-rust`",
            "grpc-java",
        ],
    },
    Case {
        what: "a client release this build does not know",
        edit: ("", "client = \"grpc-java@1.30\""),
        line: 22,
        says: &["strategies[1].client", "grpc-java@1.30", "1.41.0–1.56.1"],
    },
    Case {
        what: "a client for a strategy without an A6 policy",
        edit: ("", "client = \"grpc-go\""),
        line: 22,
        says: &["strategies[1].client", "has none"],
    },
    Case {
        what: "a client for a service config without a retry or hedging policy",
        edit: (
            "",
            "client = \"grpc-go\"\nservice_config = '{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"0.4s\"}]}'",
        ),
        line: 22,
        says: &[
            "strategies[1].client",
            "has none",
            "no retryPolicy or hedgingPolicy",
        ],
    },
    Case {
        what: "a client for a service config whose retry policy is for another service",
        // The called method matches (so the config is not refused as naming nothing called),
        // but its own entry has no policy: the other service's retryPolicy is not its.
        edit: (
            "",
            "client = \"grpc-js\"\nservice_config = '{\"methodConfig\": [{\"name\": [{\"service\": \"resilbench.v1.Backend\"}], \"timeout\": \"0.4s\"}, {\"name\": [{\"service\": \"other.v1.Other\"}], \"retryPolicy\": {\"maxAttempts\": 2, \"initialBackoff\": \"0.1s\", \"maxBackoff\": \"1s\", \"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"UNAVAILABLE\"]}}]}'",
        ),
        line: 22,
        says: &["strategies[1].client", "no retryPolicy or hedgingPolicy"],
    },
    Case {
        what: "a script step with an empty list of pushback values",
        edit: (
            "",
            "[[backend.scripts]]\nids = [\"0\"]\nsteps = [{ status = \"UNAVAILABLE\", pushback = [] }]",
        ),
        line: 24,
        says: &["backend.scripts[0].steps[0].pushback", "empty list"],
    },
    Case {
        what: "a script step with five pushback values",
        edit: (
            "",
            "[[backend.scripts]]\nids = [\"0\"]\nsteps = [{ status = \"UNAVAILABLE\", pushback = [\"1\", \"2\", \"3\", \"4\", \"5\"] }]",
        ),
        line: 24,
        says: &[
            "backend.scripts[0].steps[0].pushback",
            "at most 4 pushback values",
        ],
    },
    Case {
        what: "a legacy jitter under a library client",
        edit: (
            "",
            "client = \"grpc-go\"\n[[strategies.layers]]\nkind = \"grpc_retry\"\nmax_attempts = 3\ninitial_backoff = \"10ms\"\nmax_backoff = \"1s\"\nbackoff_multiplier = 2\nretryable_status_codes = [\"UNAVAILABLE\"]\njitter = \"legacy\"",
        ),
        line: 30,
        says: &["strategies[1].layers[0].jitter", "its own jitter"],
    },
];

const GRPC_RETRY: &str = r#"[[strategies.layers]]
kind = "grpc_retry"
max_attempts = 1
initial_backoff = "10ms"
max_backoff = "1s"
backoff_multiplier = 2
retryable_status_codes = ["UNAVAILABLE"]"#;

fn apply(edit: (&str, &str)) -> String {
    match edit {
        ("", extra) => format!("{GOOD}{extra}\n"),
        (from, to) => {
            assert!(GOOD.contains(from), "case edits a line that exists: {from}");
            GOOD.replacen(from, to, 1)
        }
    }
}

#[test]
fn the_good_profile_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), GOOD).unwrap();
    let out = resilbench(&["validate", "p.toml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn every_bad_profile_is_refused_with_its_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        std::fs::write(dir.path().join("bad.toml"), apply(case.edit)).unwrap();
        let out = resilbench(&["validate", "bad.toml"], dir.path());
        let err = stderr(&out);
        let prefix = format!("bad.toml:{}:", case.line);
        let ok = out.status.code() == Some(2)
            && err.matches(&prefix).count() == 1
            && err.matches("error:").count() == 1
            && case.says.iter().all(|s| err.contains(s))
            && !err.contains("panicked");
        if !ok {
            failures.push(format!(
                "{} (status {:?}, want line {}):\n{err}",
                case.what,
                out.status.code(),
                case.line
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn run_refuses_a_bad_profile_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        GOOD.replace("rate = 100", "rate = 0"),
    )
    .unwrap();
    let out = resilbench(&["run", "bad.toml", "--out", "out", "--quiet"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("load.rate"));
    assert!(
        !dir.path().join("out").exists(),
        "nothing is written for a bad profile"
    );
}

#[test]
fn a_bad_override_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), GOOD).unwrap();
    let out = resilbench(
        &[
            "run", "p.toml", "--rate", "0", "--quiet", "--clock", "virtual",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--rate 0") && err.contains("load.rate"),
        "{err}"
    );
    let out = resilbench(
        &[
            "run",
            "p.toml",
            "--duration",
            "400ms",
            "--quiet",
            "--clock",
            "virtual",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("load.warmup") && err.contains("--duration 400ms"),
        "{err}"
    );
}

#[test]
fn missing_and_unreadable_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = resilbench(&["validate", "nope.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nope.toml: cannot read the profile"),
        "{}",
        stderr(&out)
    );
    std::fs::write(dir.path().join("bin.toml"), [0xff, 0xfe, 0x00]).unwrap();
    let out = resilbench(&["validate", "bin.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not UTF-8"), "{}", stderr(&out));
}

#[test]
fn validate_prints_the_resolved_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), GOOD).unwrap();
    let out = resilbench(&["validate", "p.toml"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    // Defaults are filled in: the first strategy inherits load.deadline, arrival is constant.
    assert!(text.contains("arrival = \"constant\""), "{text}");
    assert!(text.contains("max_in_flight = 10000"), "{text}");
    let reparsed = resilbench::profile::parse(
        &text,
        "plan",
        "t",
        &resilbench::profile::Overrides::default(),
    );
    assert!(
        reparsed.is_ok(),
        "the printed plan is itself a valid profile: {reparsed:?}"
    );
}

/// Every profile the project ships is valid.
#[test]
fn every_shipped_profile_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let plan = resilbench::profile::load(&path, &resilbench::profile::Overrides::default());
            assert!(plan.is_ok(), "{}: {}", path.display(), plan.unwrap_err());
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "found {checked} profiles in {}",
        dir.display()
    );
}

/// The corpus under `tests/data/bad/`: each profile names what its error must say in
/// `# expect:` lines; each results file in a `.expect` file beside it. Every one is refused
/// with exit status 2, one error naming the file, and no panic. A profile of 10,000
/// strategies is made here rather than kept in the corpus.
#[test]
fn the_bad_file_corpus_is_refused_as_each_file_expects() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad");
    let dir = tempfile::tempdir().unwrap();
    let mut many = String::from(
        "# expect: strategies: at most 100 strategies, got 10000\n[load]\nrate = 10\n",
    );
    for i in 0..10_000 {
        many.push_str(&format!("[[strategies]]\nname = \"s{i}\"\n"));
    }
    std::fs::write(dir.path().join("ten-thousand-strategies.toml"), many).unwrap();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .chain(std::fs::read_dir(dir.path()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml" || x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (expects, out) = if name.ends_with(".toml") {
            let text = std::fs::read_to_string(path).unwrap();
            let expects: Vec<String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# expect: "))
                .map(String::from)
                .collect();
            let folder = path.parent().unwrap();
            (expects, resilbench(&["validate", &name], folder))
        } else {
            let expect = std::fs::read_to_string(format!("{}.expect", path.display())).unwrap();
            let expects = expect.lines().map(String::from).collect();
            let out_html = dir.path().join("out.html");
            let out = resilbench(
                &["report", &name, "--out", out_html.to_str().unwrap()],
                path.parent().unwrap(),
            );
            assert!(!out_html.exists(), "{name}: a report was written");
            (expects, out)
        };
        assert!(!expects.is_empty(), "{name} says what it expects");
        let err = stderr(&out);
        let ok = out.status.code() == Some(2)
            && err.starts_with(&format!("error: {name}"))
            && err.matches("error:").count() == 1
            && expects.iter().all(|e| err.contains(e.as_str()))
            && !err.contains("panicked");
        if !ok {
            failures.push(format!(
                "{name} ({:?}): want {expects:?}\n{err}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// With a `[target]`, service configs are matched against the target's method
/// (`Plan::called_method`), not the embedded backend's: a config naming the target's service
/// (or its method) is taken, one naming `resilbench.v1.Backend` is refused, naming
/// `acme.echo.v1.Echo/Say`. No server is needed: `validate` reads the schema from disk.
#[test]
fn with_a_target_service_configs_match_the_targets_method() {
    let dir = tempfile::tempdir().unwrap();
    let policy = r#""retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#;
    let config = |name: &str| {
        format!(
            "\n[[strategies]]\nname = \"named\"\nservice_config = '{{\"methodConfig\": \
             [{{\"name\": [{name}], {policy}}}]}}'\n"
        )
    };
    let validate = |name: &str| {
        let text = crate::own_service::profile("127.0.0.1:1", &crate::own_service::protos(), "")
            + &config(name);
        std::fs::write(dir.path().join("t.toml"), text).unwrap();
        resilbench(&["validate", "t.toml"], dir.path())
    };
    for taken in [
        r#"{"service": "acme.echo.v1.Echo"}"#,
        r#"{"service": "acme.echo.v1.Echo", "method": "Say"}"#,
    ] {
        let out = validate(taken);
        assert!(out.status.success(), "{taken}: {}", stderr(&out));
    }
    let out = validate(r#"{"service": "resilbench.v1.Backend"}"#);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "no methodConfig names the method this profile calls, `acme.echo.v1.Echo/Say`"
        ) && err.contains("strategies[2].service_config"),
        "{err}"
    );
}
