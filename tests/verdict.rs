//! The answer a run gives (`resilbench::answer`): ★ only among the strategies in the running,
//! the story columns where strategies differ, and a verdict sentence whose every number is the
//! results' own.

use std::path::Path;

use resilbench::answer::answer;
use resilbench::document::ResultsDoc;
use resilbench::profile::{self, Overrides};

use crate::common::{fixture_json, run_virtual, write_json};

fn shipped(name: &str) -> ResultsDoc {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(format!("{name}.toml"));
    let plan = profile::load(&path, &Overrides::default()).unwrap();
    ResultsDoc::from_results(run_virtual(&plan))
}

fn column<'a>(a: &'a resilbench::answer::Answer, label: &str) -> &'a resilbench::answer::Column {
    a.columns
        .iter()
        .find(|c| c.label == label)
        .unwrap_or_else(|| panic!("no column `{label}`"))
}

/// A strategy that fails calls fast has the lowest latency of all, and no ★ for it.
#[test]
fn a_strategy_that_fails_more_gets_no_latency_star() {
    let mut json = fixture_json("run-a.json");
    let gate = json["profile"]["gate"].take();
    // `tight` fails 29 of 852 calls against `patient`'s 7 (beyond noise), with the fastest tail.
    let dir = tempfile::tempdir().unwrap();
    let doc = ResultsDoc::read(&write_json(dir.path(), "r.json", &json)).unwrap();
    let a = answer(&doc);
    assert_eq!(a.contenders, [true, false, true]);
    let p999 = column(&a, "p99.9 ms");
    assert_eq!(
        p999.stars,
        [false, false, true],
        "per-try's 28.6 ms, not tight's 19.9"
    );
    assert_eq!(column(&a, "success").stars, [true, false, false]);

    // The fixture's gate allows `tight` 95%: that puts it back in the running.
    assert_eq!(
        gate["strategies"]["tight"]["limits"]["success_rate"],
        ">= 95%"
    );
    json["profile"]["gate"] = gate;
    let doc = ResultsDoc::read(&write_json(dir.path(), "g.json", &json)).unwrap();
    let a = answer(&doc);
    assert_eq!(a.contenders, [true, true, true]);
    assert_eq!(column(&a, "p99.9 ms").stars, [false, true, false]);
}

/// hedging.toml: "hedge-p95 cuts p99.9 31x for 5.9% more backend load", each number
/// recomputed here from the results.
#[test]
fn the_hedging_verdict_is_computed_from_the_figures() {
    let doc = shipped("hedging");
    let a = answer(&doc);
    let s = &doc.results.strategies;
    assert_eq!(
        a.choice,
        Some(1),
        "hedge-p95: within 2x of the best tail, far cheaper"
    );
    let (none, p95) = (
        s[0].latency_ms.e2e_ok.unwrap().p999,
        s[1].latency_ms.e2e_ok.unwrap().p999,
    );
    let extra =
        (s[1].amplification.backend.unwrap() / s[0].amplification.backend.unwrap() - 1.0) * 100.0;
    let want = format!(
        "hedge-p95 cuts p99.9 {:.0}x ({none:.1} → {} ms) for {extra:.1}% more backend load than no-hedge.",
        none / p95,
        resilbench::table::short(p95)
    );
    assert_eq!(a.sentence.as_deref(), Some(want.as_str()));
    assert!(want.contains("31x") && want.contains("5.9%"), "{want}");
    // Every strategy succeeds: all are in the running; hedge-all-at-once has the best tail.
    assert_eq!(a.contenders, [true, true, true]);
    assert_eq!(column(&a, "p99.9 ms").stars, [false, false, true]);
}

/// idempotency.toml: retries without keys repeat side effects; the verdict names a strategy
/// with none, and the column shows the duplicates.
#[test]
fn the_idempotency_verdict_avoids_duplicate_side_effects() {
    let doc = shipped("idempotency");
    let a = answer(&doc);
    let dups = column(&a, "duplicate side effects");
    let names: Vec<&str> = doc
        .results
        .strategies
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let no_key = names.iter().position(|n| *n == "retry-no-key").unwrap();
    assert!(dups.values[no_key].unwrap() > 0.0);
    let chosen = a.choice.unwrap();
    assert_eq!(dups.values[chosen], Some(0.0));
    let sentence = a.sentence.clone().unwrap();
    assert!(
        sentence.contains(&format!(
            "with no duplicate side effects (retry-no-key had {})",
            dups.values[no_key].unwrap()
        )),
        "{sentence}"
    );
    assert!(!a.contenders[0], "no-retry fails 5% of its calls");
}

/// outage-breaker.toml: the breakers lose calls (not in the running), and the table shows what
/// they bought: calls refused, load during the outage, and the cost: a later recovery.
#[test]
fn the_breaker_story_shows_what_the_breakers_bought() {
    let doc = shipped("outage-breaker");
    let a = answer(&doc);
    assert_eq!(a.contenders, [true, false, false]);
    let refused = column(&a, "refused by breaker");
    assert_eq!(refused.values[0], None);
    assert!(refused.values[1].unwrap() > 1000.0);
    let load = column(&a, "load in phases");
    assert_eq!(load.values[0], Some(1.0));
    assert!(load.values[1].unwrap() < 0.05 && load.values[2].unwrap() < 0.05);
    let back = column(&a, "recovered after");
    assert_eq!(back.cells[0], "0 s");
    assert!(back.values[1].unwrap() >= 1.0, "{:?}", back.cells);
    let sentence = a.sentence.unwrap();
    assert!(
        sentence.starts_with("no-breaker keeps the most calls (66.67%)"),
        "{sentence}"
    );
    assert!(sentence.contains("less load to the backend"), "{sentence}");
}

/// The terminal summary prints the same columns and the sentence.
#[test]
fn the_summary_prints_the_verdict_and_the_story_columns() {
    let doc = shipped("outage-breaker");
    let mut out = Vec::new();
    resilbench::summary::write_summary(&mut out, &doc).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("refused by breaker"), "{text}");
    assert!(text.contains("recovered after"), "{text}");
    assert!(
        text.contains(&format!("verdict: {}", answer(&doc).sentence.unwrap())),
        "{text}"
    );
    // A story column where every strategy agrees is left out.
    assert!(!text.contains("duplicate side effects"), "{text}");
}

/// An interrupted run says what happened: which strategies did not run, without blaming the
/// generator, on the page and in the summary.
#[test]
fn an_interrupted_run_says_which_strategies_did_not_run() {
    let mut json = fixture_json("run-a.json");
    json["strategies"].as_array_mut().unwrap().truncate(1);
    json["partial"] = true.into();
    json["warnings"] = serde_json::json!([
        "the run was interrupted: figures cover only what was measured before the stop"
    ]);
    let dir = tempfile::tempdir().unwrap();
    let doc = ResultsDoc::read(&write_json(dir.path(), "r.json", &json)).unwrap();
    let html = resilbench::report::render(&doc);
    assert!(html.contains("This run was interrupted"), "{html:.3000}");
    assert!(!html.contains("the generator shaped"));
    let said = "2 of 3 strategies did not run (tight, per-try)";
    assert!(html.contains(said));
    let mut out = Vec::new();
    resilbench::summary::write_summary(&mut out, &doc).unwrap();
    assert!(String::from_utf8(out).unwrap().contains(said));
}

/// A run whose generator fell behind says so in the verdict itself.
#[test]
fn a_verdict_on_an_untrustworthy_run_says_so() {
    let mut json = fixture_json("run-a.json");
    let dir = tempfile::tempdir().unwrap();
    let doc = ResultsDoc::read(&write_json(dir.path(), "a.json", &json)).unwrap();
    let clean = answer(&doc).sentence.unwrap();
    assert!(!clean.contains("not to be trusted"), "{clean}");
    json["strategies"][1]["generator"]["lag_ms"]["p99"] = 5.0.into();
    let doc = ResultsDoc::read(&write_json(dir.path(), "b.json", &json)).unwrap();
    let sentence = answer(&doc).sentence.unwrap();
    assert!(
        sentence.starts_with(&clean[..clean.len() - 1]),
        "{sentence}"
    );
    assert!(sentence.ends_with("these figures are not to be trusted; see the warnings.)"));
}

/// A verdict from profile text, run on the virtual clock.
fn run_text(toml: &str) -> ResultsDoc {
    ResultsDoc::from_results(run_virtual(&crate::common::plan(toml)))
}

/// The review's E5: the cheaper strategy's tail is 44% worse. The sentence says what it
/// trades, with both tails, and never that it "matches".
#[test]
fn a_cheaper_strategy_with_a_worse_tail_says_what_it_trades() {
    let doc = run_text(
        r#"
name = "e5"
[load]
rate = 500
duration = "20s"
[backend]
latency = { dist = "lognormal", median = "10ms", p99 = "20ms" }
[[strategies]]
name = "hedge-all"
[[strategies.layers]]
kind = "grpc_hedge"
max_attempts = 2
hedging_delay = "0ms"
[[strategies]]
name = "plain"
"#,
    );
    let a = answer(&doc);
    let s = &doc.results.strategies;
    assert_eq!(a.choice, Some(1), "plain: half the load, tail within 2x");
    let (hedged, plain) = (
        s[0].latency_ms.e2e_ok.unwrap().p999,
        s[1].latency_ms.e2e_ok.unwrap().p999,
    );
    assert!(plain > 1.2 * hedged, "{plain} vs {hedged}");
    let sentence = a.sentence.unwrap();
    assert!(!sentence.contains("matches"), "{sentence}");
    let short = resilbench::table::short;
    assert!(
        sentence.contains(&format!(
            "for a p99.9 of {} ms instead of {}",
            short(plain),
            short(hedged)
        )),
        "{sentence}"
    );
    assert!(
        sentence.starts_with("plain keeps hedge-all's success with 50% less backend load, for"),
        "{sentence}"
    );
}

/// The review's E6: every call fails. No strategy is recommended and no tail is quoted.
#[test]
fn when_every_strategy_fails_none_is_recommended() {
    let doc = run_text(
        r#"
name = "e6"
[load]
rate = 100
duration = "3s"
[backend]
errors = { UNAVAILABLE = 1.0 }
[[strategies]]
name = "retries"
[[strategies.layers]]
kind = "retry"
max_attempts = 3
retry_on = ["UNAVAILABLE"]
[[strategies]]
name = "plain"
"#,
    );
    let a = answer(&doc);
    assert_eq!(a.choice, None);
    let sentence = a.sentence.unwrap();
    assert_eq!(
        sentence,
        "No strategy succeeded: all 2 strategies failed every call, so none is recommended."
    );
}

/// One strategy: nothing to choose between, no sentence. A strategy offered no call is never
/// named, and a second strategy identical to the first ties with it: the first is named and
/// nothing is claimed for the other.
#[test]
fn one_strategy_ties_and_a_strategy_with_no_calls() {
    let one = run_text(
        "name = \"one\"\n[load]\nrate = 100\nduration = \"2s\"\n[[strategies]]\nname = \"only\"\n",
    );
    let a = answer(&one);
    assert_eq!((a.choice, a.sentence), (None, None));

    let twins = run_text(
        "name = \"twins\"\n[load]\nrate = 100\nduration = \"3s\"\n[backend]\nerrors = { \
         UNAVAILABLE = 0.05 }\n[[strategies]]\nname = \"a\"\n[[strategies]]\nname = \"b\"\n",
    );
    assert_eq!(
        twins.results.strategies[0].counts,
        twins.results.strategies[1].counts
    );
    let a = answer(&twins);
    assert_eq!(a.choice, Some(0));
    let sentence = a.sentence.unwrap();
    assert!(
        sentence.starts_with("a has the best success ("),
        "{sentence}"
    );
    assert!(!sentence.contains(" b "), "{sentence}");

    let mut json = serde_json::to_value(&twins.results).unwrap();
    let empty = &mut json["strategies"][1];
    empty["counts"] = serde_json::json!({"offered": 0, "sent": 0, "succeeded": 0, "failed": 0,
        "dropped": 0, "unfinished": 0});
    empty["status"] = serde_json::json!({});
    empty["attempts"]["per_call"] = serde_json::json!({});
    empty["amplification"] = serde_json::json!({"client": 0.0, "backend": 0.0});
    empty["latency_ms"]["e2e_ok"] = serde_json::Value::Null;
    empty["timeline"] = serde_json::json!([]);
    let dir = tempfile::tempdir().unwrap();
    let doc = ResultsDoc::read(&write_json(dir.path(), "r.json", &json)).unwrap();
    let a = answer(&doc);
    assert_eq!(
        a.choice,
        Some(0),
        "b sent nothing: cheapest, but not a strategy to name"
    );
    assert!(!a.contenders[1]);
}

/// The review's E9: a strategy whose backend figures were lost is not taken to have run no
/// duplicate side effects, and cost is counted in attempts sent, said as such.
#[test]
fn missing_backend_figures_are_said_not_read_as_zero() {
    let doc = shipped("idempotency");
    let mut json = serde_json::to_value(&doc.results).unwrap();
    let i = doc
        .results
        .strategies
        .iter()
        .position(|s| s.name == "retry-with-key")
        .unwrap();
    json["strategies"][i]["backend"] = serde_json::Value::Null;
    json["strategies"][i]["backend_gap"] = "lost".into();
    json["strategies"][i]["amplification"]["backend"] = serde_json::Value::Null;
    let dir = tempfile::tempdir().unwrap();
    let edited = ResultsDoc::read(&write_json(dir.path(), "r.json", &json)).unwrap();
    let a = answer(&edited);
    assert_ne!(a.choice, Some(i), "its duplicates are unknown");
    let sentence = a.sentence.unwrap();
    assert!(!sentence.contains("backend load"), "{sentence}");
    assert!(
        sentence
            .ends_with("(Cost counted in attempts sent: no backend figures for retry-with-key.)"),
        "{sentence}"
    );
    // Every number it states is one of the results' (no duplicate count of the lost one).
    let named = &edited.results.strategies[a.choice.unwrap()];
    assert!(
        sentence.starts_with(&format!("{} ", named.name)),
        "{sentence}"
    );
    assert!(
        sentence.contains("with no duplicate side effects (retry-no-key had"),
        "{sentence}"
    );
}

/// A reference whose name ends in s: "hedges'", not "hedges's"; no double spaces.
#[test]
fn names_ending_in_s_and_spacing() {
    let doc = run_text(
        r#"
name = "possessive"
[load]
rate = 500
duration = "10s"
[backend]
latency = { dist = "lognormal", median = "5ms", p99 = "10ms" }
[[strategies]]
name = "hedges"
[[strategies.layers]]
kind = "grpc_hedge"
max_attempts = 2
hedging_delay = "8ms"
[[strategies]]
name = "plain"
"#,
    );
    let a = answer(&doc);
    assert_eq!(a.choice, Some(1), "plain: cheaper, its tail within 2x");
    let sentence = a.sentence.unwrap();
    assert!(
        sentence.starts_with("plain matches hedges' success and p99.9 with "),
        "{sentence}"
    );
    assert!(
        !sentence.contains("'s") && !sentence.contains("  "),
        "{sentence}"
    );
}

/// streaming.toml: the failed-after-commit column (issue 23's story columns) holds each
/// strategy's `stream.failed_after_commit`, in the answer, the summary and the page, with the
/// page's note that no strategy can save those streams.
#[test]
fn the_streaming_story_shows_streams_that_failed_after_commit() {
    let doc = shipped("streaming");
    let a = answer(&doc);
    let col = column(&a, "failed after commit");
    let expected: Vec<Option<f64>> = doc
        .results
        .strategies
        .iter()
        .map(|s| Some(s.stream.unwrap().failed_after_commit as f64))
        .collect();
    assert_eq!(col.values, expected);
    // 3% of streams fail after message 5, whatever the strategy: every one shows some.
    assert!(
        col.values.iter().all(|v| v.unwrap() > 10.0),
        "{:?}",
        col.values
    );
    assert_eq!(
        col.cells,
        expected
            .iter()
            .map(|v| format!("{}", v.unwrap() as u64))
            .collect::<Vec<_>>()
    );

    let mut out = Vec::new();
    resilbench::summary::write_summary(&mut out, &doc).unwrap();
    let text = String::from_utf8(out).unwrap();
    let header = text
        .lines()
        .find(|l| l.contains("failed after commit"))
        .unwrap_or_else(|| panic!("{text}"));
    let at = header.find("failed after commit").unwrap();
    for (s, v) in doc.results.strategies.iter().zip(&col.cells) {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{} ", s.name)))
            .unwrap_or_else(|| panic!("no row for {}: {text}", s.name));
        assert!(
            row.get(at..)
                .is_some_and(|r| r.trim_start().starts_with(v.as_str())),
            "{}: {v} under the column in {row:?}\n{text}",
            s.name
        );
    }

    let page = resilbench::report::render(&doc);
    assert!(page.contains("<th>failed after commit</th>"), "page");
    assert!(page.contains("no strategy can save them"), "page");
}
