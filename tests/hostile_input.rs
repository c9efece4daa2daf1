//! Hostile input: arbitrary and mutated profiles, service configs and results files never
//! panic the parsers; they are accepted, or refused with an error that names the place.
//! (proptest; each property runs its cases in well under a second.)

use proptest::prelude::*;
use resilbench::document::ResultsDoc;
use resilbench::profile::service_config::settings_for;
use resilbench::profile::{self, Overrides};
use serde_json::Value;

/// Tokens that break TOML, JSON or a value's range when dropped into a file.
const NASTY: &[&str] = &[
    "\"",
    "'",
    "[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    "\n",
    "\\",
    "#",
    "\u{0}",
    "é",
    "\u{202e}",
    "1e309",
    "-1",
    "0",
    "-0.0",
    "nan",
    "inf",
    "-inf",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "\"1ns\"",
    "\"0s\"",
    "\"36500d\"",
    "\"-5ms\"",
    "\"1.5.5s\"",
    "\"\"",
    "[]",
    "{}",
    "true",
    "null",
    "\n[[strategies]]\nname = \"x\"\n",
    "\n[[strategies.layers]]\nkind = \"fan_out\"\nn = 1000\n",
    "\n[[phases]]\nkind = \"outage\"\nstart = \"0s\"\nduration = \"1s\"\n",
    "\n[backend.stream]\nmessages = 4294967295\n",
];

/// One edit of a text: where (a fraction of its length) and what.
#[derive(Debug, Clone)]
enum Edit {
    Delete(f64, usize),
    Insert(f64, usize),
    /// Replace the value after the n-th `=` (to the end of its line) with a nasty token.
    Value(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0, 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        (0.0..1.0, 0..NASTY.len()).prop_map(|(at, t)| Edit::Insert(at, t)),
        (0usize..200, 0..NASTY.len()).prop_map(|(n, t)| Edit::Value(n, t)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
        match *e {
            Edit::Delete(f, n) => {
                let start = at(f, chars.len());
                let end = (start + n).min(chars.len());
                chars.drain(start..end);
            }
            Edit::Insert(f, t) => {
                let start = at(f, chars.len());
                chars.splice(start..start, NASTY[t].chars());
            }
            Edit::Value(n, t) => {
                let equals: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] == '=').collect();
                if equals.is_empty() {
                    continue;
                }
                let start = equals[n % equals.len()] + 1;
                let end = (start..chars.len())
                    .find(|&i| chars[i] == '\n')
                    .unwrap_or(chars.len());
                chars.splice(start..end, format!(" {}", NASTY[t]).chars());
            }
        }
    }
    chars.into_iter().collect()
}

fn shipped() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut texts: Vec<(std::path::PathBuf, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    texts.sort();
    texts.into_iter().map(|(_, t)| t).collect()
}

/// A refusal names the file and either the line or the field.
fn names_the_place(text: &str) -> Result<(), TestCaseError> {
    let plan = profile::parse(text, "hostile.toml", "hostile", &Overrides::default());
    if let Err(e) = plan {
        let shown = e.to_string();
        prop_assert!(shown.starts_with("hostile.toml"), "{shown}");
        prop_assert!(
            e.location.is_some() || !e.field.is_empty(),
            "neither line nor field: {shown}"
        );
        prop_assert!(!e.message.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any text at all.
    #[test]
    fn any_text_is_a_profile_or_a_located_error(text in "\\PC{0,300}") {
        names_the_place(&text)?;
    }

    /// The shipped profiles with a few hostile edits: values out of range, broken syntax,
    /// extra tables.
    #[test]
    fn mutated_profiles_are_accepted_or_refused_in_place(
        which in 0usize..64,
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let profiles = shipped();
        let text = apply(&profiles[which % profiles.len()], &edits);
        names_the_place(&text)?;
    }
}

/// Keys and values a service config or a results file uses, so that arbitrary JSON often
/// reaches the checks behind the first key lookup.
const WORDS: &[&str] = &[
    "methodConfig",
    "name",
    "service",
    "method",
    "resilbench.v1.Backend",
    "Call",
    "timeout",
    "retryPolicy",
    "hedgingPolicy",
    "maxAttempts",
    "initialBackoff",
    "maxBackoff",
    "backoffMultiplier",
    "retryableStatusCodes",
    "hedgingDelay",
    "nonFatalStatusCodes",
    "retryThrottling",
    "maxTokens",
    "tokenRatio",
    "UNAVAILABLE",
    "unavailable",
    "14",
    "0.1s",
    "1.5s",
    "-1s",
    "1e400s",
    "0s",
    "99999999999s",
    "5",
    "",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-10i64..10).prop_map(Value::from),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 80, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(word(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A service config shaped like a real one, with arbitrary parts.
fn service_config() -> impl Strategy<Value = Value> {
    (json(), json(), json(), any::<bool>()).prop_map(|(names, policy, throttling, hedge)| {
        let key = if hedge {
            "hedgingPolicy"
        } else {
            "retryPolicy"
        };
        serde_json::json!({
            "methodConfig": [{ "name": names, key: policy }],
            "retryThrottling": throttling,
        })
    })
}

/// Every JSON pointer in `v`, root first.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(inner, format!("{at}/{key}"), out);
            }
        }
        Value::Array(list) => {
            for (i, inner) in list.iter().enumerate() {
                pointers(inner, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// How a results file is tampered with at one place.
#[derive(Debug, Clone)]
enum Tamper {
    /// Drop the key.
    Remove,
    /// Put arbitrary JSON there.
    Any(Value),
    /// Keep the type, change the value: a number at an edge, a hostile string, a flipped
    /// bool, half an array.
    SameType(Value, String),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    let numbers = proptest::sample::select(vec![
        Value::from(0),
        Value::from(-1),
        Value::from(1e308),
        Value::from(-1e308),
        Value::from(4_294_967_296u64),
        Value::from(u64::MAX),
        Value::from(i64::MIN),
        Value::from(0.5),
    ]);
    let text = prop_oneof![
        Just("<script>alert(1)</script>".to_string()),
        Just("\u{202e}\u{0}\"'&".to_string()),
        word(),
    ];
    prop_oneof![
        1 => Just(Tamper::Remove),
        1 => json().prop_map(Tamper::Any),
        6 => (numbers, text).prop_map(|(n, t)| Tamper::SameType(n, t)),
    ]
}

fn run_a() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-a.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any JSON text, and arbitrary JSON in a service config's shape: imported or refused with
    /// a message, never a panic.
    #[test]
    fn service_configs_are_imported_or_refused(text in "\\PC{0,200}", config in service_config()) {
        for input in [text, config.to_string()] {
            if let Err(e) = settings_for(&input, "resilbench.v1.Backend", "Call") {
                prop_assert!(!e.is_empty());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A results file with some of its values replaced by arbitrary JSON, or removed: it is
    /// refused with a message naming the field, or read, and then its report renders.
    #[test]
    fn tampered_results_are_refused_or_reported(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), tamper()), 1..4),
    ) {
        let mut v = run_a();
        for (index, tamper) in edits {
            let mut all = Vec::new();
            pointers(&v, String::new(), &mut all);
            let at = index.get(&all).clone();
            if at.is_empty() {
                continue;
            }
            let (parent, last) = at.rsplit_once('/').unwrap();
            let target = v.pointer_mut(&at).unwrap();
            match tamper {
                Tamper::Remove => {
                    if let Some(Value::Object(map)) = v.pointer_mut(parent) {
                        map.remove(&last.replace("~1", "/").replace("~0", "~"));
                    }
                }
                Tamper::Any(replacement) => *target = replacement,
                Tamper::SameType(number, text) => match target {
                    Value::Number(_) => *target = number,
                    Value::String(_) => *target = Value::from(text),
                    Value::Bool(b) => *b = !*b,
                    Value::Array(list) => list.truncate(list.len() / 2),
                    _ => {}
                },
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        std::fs::write(&path, v.to_string()).unwrap();
        match ResultsDoc::read(&path) {
            Ok(doc) => {
                let html = resilbench::report::render(&doc);
                prop_assert!(html.trim_end().ends_with("</html>"));
            }
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(shown.contains("results.json"), "{shown}");
            }
        }
    }
}

/// Figures at the edge of f64 in a results file (a p99 of 1e308 ms) once made the report
/// draw an axis of 308 decades and run out of memory; now the axis is cut and the page renders.
#[test]
fn a_report_of_absurd_figures_renders() {
    let mut v = run_a();
    *v.pointer_mut("/strategies/0/timeline/0/p99_ms").unwrap() = Value::from(1e308);
    *v.pointer_mut("/strategies/0/timeline/1/attempts").unwrap() = Value::from(u64::MAX);
    *v.pointer_mut("/strategies/1/timeline/0/t").unwrap() = Value::from(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, v.to_string()).unwrap();
    let html = resilbench::report::render(&ResultsDoc::read(&path).unwrap());
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
}

/// Values at the edges that are valid run, and end: a deadline of 1 ns fails every call at
/// once with DEADLINE_EXCEEDED; the slowest and fastest rates allowed keep their schedule.
#[test]
fn edge_values_that_are_valid_run_and_end() {
    let run = |load: &str| {
        let p = crate::common::plan(&format!(
            "[load]\n{load}\n[backend]\nlatency = \"1ms\"\n[[strategies]]\nname = \"s\"\n"
        ));
        crate::common::run_virtual(&p).strategies.remove(0)
    };
    let s = run("rate = 1000\nduration = \"1s\"\ndeadline = \"1ns\"");
    assert_eq!(s.counts.offered, 1000);
    assert_eq!(s.status, [("DEADLINE_EXCEEDED".to_string(), 1000)].into());
    let s = run("rate = 0.001\nduration = \"1000s\"\narrival = \"constant\"");
    assert_eq!(s.counts.offered, 1);
    let s =
        run("rate = 10000000\nduration = \"10ms\"\narrival = \"constant\"\nmax_in_flight = 1000");
    assert_eq!(s.counts.offered, 100_000);
    assert_eq!(s.counts.sent + s.counts.dropped, 100_000);
}
