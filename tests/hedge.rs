//! Hedging in virtual time: gRFC A6's hedging policy and tower's latency-driven hedge, every
//! attempt's send time exact.

use std::time::Duration;

use resilbench::call::{AttemptKind, Call};
use resilbench::protocol::Pushback;
use tonic::Code;

use crate::common::scripted::{
    Run, Seen, drive_profile as drive, every, ms, ok, profile, pushback, status,
};
use crate::common::{plan, run_virtual};

fn a6(max_attempts: u32, delay: &str, extra: &str) -> String {
    profile(
        "10s",
        &format!(
            r#"
[[strategies.layers]]
kind = "grpc_hedge"
max_attempts = {max_attempts}
hedging_delay = "{delay}"
non_fatal_status_codes = ["UNAVAILABLE"]
{extra}
"#
        ),
    )
}

fn outcomes(run: &Run) -> Vec<(u64, bool, u32)> {
    run.seen
        .iter()
        .filter_map(|s| match s {
            Seen::Hedged {
                id,
                won_by_hedge,
                cancelled,
            } => Some((*id, *won_by_hedge, *cancelled)),
            _ => None,
        })
        .collect()
}

fn kinds(run: &Run, id: u64) -> Vec<(AttemptKind, u32)> {
    run.of(id).iter().map(|s| (s.kind, s.previous)).collect()
}

const ALONE: [(u64, Duration); 1] = [(0, Duration::ZERO)];

/// A6: the original at once, then one more every hedgingDelay up to maxAttempts while nothing
/// has answered; each carries `grpc-previous-rpc-attempts`. The first OK decides the call and
/// the others are cancelled.
#[test]
fn hedges_go_every_hedging_delay_and_the_first_ok_wins() {
    let run = drive(&a6(3, "100ms", ""), &ALONE, |_| (ms(1000), ok()));
    assert_eq!(run.times(0), [ms(0), ms(100), ms(200)]);
    assert_eq!(
        kinds(&run, 0),
        [
            (AttemptKind::Original, 0),
            (AttemptKind::Hedge, 1),
            (AttemptKind::Hedge, 2)
        ]
    );
    let end = run.ended(0);
    assert_eq!((end.code, end.at), (Code::Ok, ms(1000)));
    assert_eq!(outcomes(&run), [(0, false, 2)]);
}

/// A hedge that answers first wins; hedges not yet due are never sent.
#[test]
fn a_fast_hedge_wins_and_later_hedges_are_not_sent() {
    let run = drive(&a6(5, "100ms", ""), &ALONE, |call| {
        let latency = if call.ordinal == 0 { 1000 } else { 10 };
        (ms(latency), ok())
    });
    assert_eq!(run.times(0), [ms(0), ms(100)]);
    assert_eq!(run.ended(0).at, ms(110));
    assert_eq!(outcomes(&run), [(0, true, 1)]);
}

/// hedgingDelay 0 sends every attempt at once.
#[test]
fn a_zero_delay_sends_every_attempt_at_once() {
    let run = drive(&a6(7, "0s", ""), &ALONE, |_| (ms(50), ok()));
    assert_eq!(run.times(0), [ms(0); 5], "maxAttempts 7 counts as 5");
    assert_eq!(outcomes(&run), [(0, false, 4)]);
}

/// A non-fatal status sends the next hedge at once, and the ones after it hedgingDelay apart
/// again (A6 "Summary of Retry and Hedging Logic", 2).
#[test]
fn a_non_fatal_status_sends_the_next_hedge_at_once() {
    let run = drive(&a6(4, "100ms", ""), &ALONE, |call| match call.ordinal {
        0 => (ms(30), status(Code::Unavailable)),
        _ => (ms(1000), ok()),
    });
    assert_eq!(run.times(0), [ms(0), ms(30), ms(130), ms(230)]);
    assert_eq!(run.ended(0).at, ms(1030));
}

/// Any other status ends the call at once and cancels the other attempts.
#[test]
fn a_fatal_status_ends_the_call_and_cancels_the_rest() {
    let run = drive(&a6(3, "100ms", ""), &ALONE, |call| match call.ordinal {
        1 => (ms(20), status(Code::InvalidArgument)),
        _ => (ms(1000), ok()),
    });
    assert_eq!(run.times(0), [ms(0), ms(100)]);
    let end = run.ended(0);
    assert_eq!((end.code, end.at), (Code::InvalidArgument, ms(120)));
    assert_eq!(outcomes(&run), [(0, true, 1)]);
}

/// Pushback on a hedge: a valid value is the wait before the next hedge, and later hedges
/// resume at that plus hedgingDelay; "don't retry" stops further hedges, while the attempts
/// already out may still answer.
#[test]
fn pushback_delays_or_stops_the_next_hedge() {
    let run = drive(&a6(4, "100ms", ""), &ALONE, |call| match call.ordinal {
        0 => (ms(30), pushback(Code::Unavailable, Pushback::after_ms(250))),
        _ => (ms(1000), ok()),
    });
    assert_eq!(run.times(0), [ms(0), ms(280), ms(380), ms(480)]);

    let run = drive(&a6(4, "100ms", ""), &ALONE, |call| match call.ordinal {
        1 => (ms(30), pushback(Code::Unavailable, Pushback::dont_retry())),
        _ => (ms(1000), ok()),
    });
    assert_eq!(run.times(0), [ms(0), ms(100)]);
    let end = run.ended(0);
    assert_eq!(
        (end.code, end.at),
        (Code::Ok, ms(1000)),
        "the original still wins"
    );
}

/// When every attempt has failed and no more may go, the call fails with the status of the
/// last attempt to end.
#[test]
fn when_all_fail_the_last_status_is_returned() {
    let run = drive(&a6(3, "100ms", ""), &ALONE, |call| match call.ordinal {
        0 => (ms(500), status(Code::Unavailable)),
        1 => (ms(50), status(Code::Unavailable)),
        _ => (ms(600), status(Code::Unavailable)),
    });
    // Hedge 1 fails at 150: hedge 2 goes at once. The original fails at 500, hedge 2 at 750.
    assert_eq!(run.times(0), [ms(0), ms(100), ms(150)]);
    let end = run.ended(0);
    assert_eq!((end.code, end.at), (Code::Unavailable, ms(750)));
}

/// A6 throttling applies to hedges: every non-fatal failure takes a token, and a hedge goes
/// only while more than maxTokens/2 are left (the original always goes). maxTokens 10: call 0
/// sends its original and 4 hedges, each failing at once (10 → 9, 8, 7, 6: each hedge finds
/// more than 5; the fifth failure leaves 5); every later call sends only its original.
#[test]
fn the_throttle_stops_hedges() {
    let p = a6(5, "0s", "throttle = { max_tokens = 10, token_ratio = 0.1 }");
    let run = drive(&p, &every(20, ms(1000)), |_| {
        (ms(1), status(Code::Unavailable))
    });
    assert_eq!(run.of(0).len(), 5);
    assert_eq!(run.sent.len(), 5 + 19);
    assert_eq!(run.last_tokens(), 0.0);
}

fn adaptive(min: u64, extra: &str) -> String {
    profile(
        "10s",
        &format!(
            r#"
[[strategies.layers]]
kind = "hedge"
percentile = 0.9
min_data_points = {min}
period = "1s"
{extra}
"#
        ),
    )
}

/// tower's hedge: no hedge until the read histogram (the previous period) holds
/// `min_data_points`; then one hedge after its percentile. Calls every 10 ms take 2 ms (a
/// value HdrHistogram keeps exactly at 3 significant digits), except every 10th original,
/// which takes 500 ms: no hedges in the first second (nothing has been read yet); from the
/// second on, p90 of successful latencies is 2 ms, so a slow call's hedge goes at 2 ms and
/// answers at 4 ms.
#[test]
fn an_adaptive_hedge_goes_after_the_recent_percentile() {
    let slow = |call: &Call| call.id % 10 == 5 && call.ordinal == 0;
    let run = drive(&adaptive(50, ""), &every(300, ms(10)), move |call| {
        (ms(if slow(call) { 500 } else { 2 }), ok())
    });
    for id in [5, 95] {
        assert_eq!(run.of(id).len(), 1, "call {id}: first period, no data");
        assert_eq!(run.ended(id).at - ms(10) * id as u32, ms(500));
    }
    for id in [105, 205, 295] {
        let start = ms(10) * id as u32;
        assert_eq!(run.times(id), [start, start + ms(2)], "call {id}");
        assert_eq!(run.ended(id).at, start + ms(4));
    }
    // At most one hedge per call, and only slow calls were hedged.
    assert_eq!(outcomes(&run).len(), 20);
    assert!(
        outcomes(&run)
            .iter()
            .all(|(_, by_hedge, c)| *by_hedge && *c == 1)
    );
}

/// tower's `Select`: whichever attempt ends first decides, even with an error; a failure
/// before the hedge delay sends no hedge.
#[test]
fn an_adaptive_hedge_takes_the_first_answer_even_an_error() {
    let run = drive(&adaptive(10, ""), &every(200, ms(10)), |call| {
        if call.id == 150 {
            (ms(2), status(Code::Internal))
        } else {
            (ms(5), ok())
        }
    });
    assert_eq!(run.of(150).len(), 1);
    assert_eq!(run.ended(150).code, Code::Internal);
}

/// With replicas, a hedge goes to one the call has not tried: one replica takes 1 s, the
/// other 1 ms. Every original sent to the slow replica is hedged, every hedge lands on the
/// fast one and wins, so no call takes longer than the delay plus 1 ms. (Plain round-robin
/// would send some hedges to the slow replica: hedges take turns in the rotation too.)
#[test]
fn hedges_go_to_a_replica_not_yet_tried() {
    let p = plan(
        r#"
seed = 3
[load]
rate = 100
duration = "5s"
deadline = "5s"
[backend]
latency = "1ms"
[[backend.replicas]]
name = "slow"
latency = "1s"
[[backend.replicas]]
name = "fast"
[[strategies]]
name = "hedged"
[[strategies.layers]]
kind = "grpc_hedge"
max_attempts = 2
hedging_delay = "20ms"
"#,
    );
    let r = run_virtual(&p);
    let s = &r.strategies[0];
    assert_eq!(s.counts.succeeded, s.counts.offered);
    let max = s.latency_ms.e2e.as_ref().unwrap().max;
    assert!(max <= 21.1, "max e2e {max} ms");
    let backend = s.backend.as_ref().unwrap();
    let slow = backend.replicas.iter().find(|r| r.name == "slow").unwrap();
    assert!(s.attempts.hedges > 0);
    assert_eq!(slow.received, s.attempts.hedges);
    assert_eq!(s.attempts.hedges_won, s.attempts.hedges);
}

/// A server stream: 5 ms to its first message, then 9 more 1 ms apart; `layer` is the
/// strategy's hedging layer.
fn stream_plan(latency: &str, layer: &str) -> resilbench::profile::Plan {
    plan(&format!(
        r#"
seed = 5
[load]
arrival = "constant"
rate = 10
duration = "1s"
deadline = "1s"
method = "stream"
[backend]
latency = {latency}
[backend.stream]
messages = 10
interval = "1ms"
[[strategies]]
name = "hedged"
[[strategies.layers]]
{layer}
"#
    ))
}

/// gRFC A6: the first response headers commit the call to their attempt. A hedge already out
/// is cancelled and no further hedge goes; the committed stream runs to its end.
#[test]
fn a_stream_commits_at_its_first_message_and_cancels_the_hedges() {
    let layer = |delay: &str| {
        format!(
            "kind = \"grpc_hedge\"\nmax_attempts = 3\nhedging_delay = \"{delay}\"\nnon_fatal_status_codes = [\"UNAVAILABLE\"]"
        )
    };
    // Hedge at 3 ms, original's first message at 5 ms: the hedge is cancelled and the third
    // attempt (due at 6 ms) never goes.
    let r = run_virtual(&stream_plan("\"5ms\"", &layer("3ms")));
    let s = &r.strategies[0];
    let calls = s.counts.offered;
    assert_eq!(calls, 10);
    assert_eq!(s.counts.succeeded, calls);
    assert_eq!(s.attempts.per_call, [(2, calls)].into_iter().collect());
    assert_eq!(
        (
            s.attempts.hedges,
            s.attempts.hedges_won,
            s.attempts.hedges_cancelled
        ),
        (calls, 0, calls)
    );
    assert_eq!(s.attempts.status.get("CANCELLED"), Some(&calls));
    assert_eq!(s.backend.as_ref().unwrap().wasted, calls);
    let e2e = s.latency_ms.e2e.unwrap();
    // 5 ms + 9 × 1 ms, as HdrHistogram's 3 significant digits report it.
    assert!(e2e.p50 >= 14.0 && e2e.max < 14.01, "{e2e:?}");
    assert_eq!(s.stream.unwrap().messages, 10 * calls);

    // Hedging delay 7 ms: the call is committed at 5 ms, before any hedge is due.
    let r = run_virtual(&stream_plan("\"5ms\"", &layer("7ms")));
    let s = &r.strategies[0];
    assert_eq!(s.attempts.total, s.counts.offered);
    assert_eq!(s.attempts.hedges, 0);
    assert_eq!(s.counts.succeeded, s.counts.offered);
}

/// tower's hedge: a stream's latency is the time to its response headers (when tower's inner
/// future resolves), so the hedge delay is a percentile of first-message times, and the first
/// stream to start is the one that runs.
#[test]
fn an_adaptive_hedge_on_streams_races_to_the_first_message() {
    // First messages from 1 to 9 ms; whole streams take 9 ms more.
    let p = stream_plan(
        "{ dist = \"uniform\", min = \"1ms\", max = \"9ms\" }",
        "kind = \"hedge\"\npercentile = 0.5\nmin_data_points = 1\nperiod = \"100ms\"",
    );
    let mut p = p;
    p.load.rate = 200.0;
    let r = run_virtual(&p);
    let s = &r.strategies[0];
    assert_eq!(s.counts.succeeded, s.counts.offered);
    // With whole-stream latencies (10 to 18 ms) in the histogram, no hedge would ever go
    // before a first message; with first-message times, about half the calls are hedged.
    let share = s.attempts.hedges as f64 / s.counts.offered as f64;
    assert!(share > 0.3 && share < 0.7, "{share}");
    // Every race ends with one attempt cancelled, and each call ran one whole stream.
    assert_eq!(s.attempts.hedges_cancelled, s.attempts.hedges);
    assert_eq!(s.stream.unwrap().messages, 10 * s.counts.offered);
}
