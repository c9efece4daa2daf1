//! Fan-out (scatter-gather) in virtual time: sub-calls, completion on all or on the first k,
//! and the tail amplification 1 − (1 − p)^N.

use tonic::Code;

use crate::common::scripted::{Seen, drive_profile as drive, ms, ok, profile, status};
use crate::common::{plan, run_virtual};

fn fan_out(n: u32, need: Option<u32>) -> String {
    let need = need.map_or(String::new(), |k| format!("need = {k}"));
    profile(
        "10s",
        &format!("[[strategies.layers]]\nkind = \"fan_out\"\nn = {n}\n{need}\n"),
    )
}

/// Call 2 fans out to sub-calls 6, 7, 8 (id × n + i), all at once; needing all three, it
/// ends with the slowest.
#[test]
fn a_call_waits_for_all_its_sub_calls() {
    let run = drive(&fan_out(3, None), &[(2, ms(0))], |call| {
        (ms(10 * (call.id - 5)), ok())
    });
    let ids: Vec<u64> = run.sent.iter().map(|s| s.id).collect();
    assert_eq!(ids, [6, 7, 8]);
    assert!(run.sent.iter().all(|s| s.at == ms(0)));
    let end = run.ended(2);
    assert_eq!((end.code, end.at), (Code::Ok, ms(30)));
    let subs = run
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::SubCall { .. }))
        .count();
    assert_eq!(subs, 3);
}

/// Needing all, the first failure ends the call at once and cancels the rest; needing 2 of 3,
/// the call ends at the second success.
#[test]
fn a_failure_that_makes_need_impossible_ends_the_call() {
    let answer = |call: &resilbench::call::Call| match call.id % 3 {
        0 => (ms(50), ok()),
        1 => (ms(20), status(Code::Unavailable)),
        _ => (ms(30), ok()),
    };
    let all = drive(&fan_out(3, None), &[(0, ms(0))], answer);
    let end = all.ended(0);
    assert_eq!((end.code, end.at), (Code::Unavailable, ms(20)));
    let two = drive(&fan_out(3, Some(2)), &[(0, ms(0))], answer);
    let end = two.ended(0);
    assert_eq!((end.code, end.at), (Code::Ok, ms(50)));
    let first = drive(&fan_out(3, Some(1)), &[(0, ms(0))], answer);
    assert_eq!(first.ended(0).at, ms(30));
}

/// The whole path: the parent counts its sub-calls' attempts; results.json has the
/// per-sub-call figures beside the per-call ones.
#[test]
fn results_report_sub_calls_separately() {
    let p = plan(
        r#"
[load]
rate = 10
duration = "10s"
[backend]
latency = "2ms"
[[strategies]]
name = "fan-out"
[[strategies.layers]]
kind = "fan_out"
n = 5
"#,
    );
    let r = run_virtual(&p);
    let s = &r.strategies[0];
    assert_eq!(s.counts.offered, 100);
    assert_eq!(s.attempts.total, 500);
    assert_eq!(s.attempts.per_call.get(&5), Some(&100));
    let f = s.fan_out.as_ref().unwrap();
    assert_eq!(f.sub_calls, 500);
    assert_eq!(f.status.get("OK"), Some(&500));
    assert_eq!(s.backend.as_ref().unwrap().received, 500);
}
