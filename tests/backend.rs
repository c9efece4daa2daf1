//! The degradable backend: each failure mode does exactly what the profile says, checked on a
//! simulated clock (whole runs) or by calling the backend directly.

use std::sync::Arc;
use std::time::Duration;

use resilbench::backend::{Answer, Backend, Incoming};
use resilbench::clock::Clock;
use resilbench::clock::sim::SimClock;
use resilbench::keyed::call_key;
use resilbench::profile::Method;
use resilbench::results::StrategyResult;
use tonic::Code;

use crate::common::{plan, run_virtual, virtual_runtime};

fn row(s: &StrategyResult, t: u64) -> &resilbench::record::timeline::TimelineRow {
    s.timeline
        .iter()
        .find(|r| r.t == t)
        .unwrap_or_else(|| panic!("no row for second {t}"))
}

/// Runs `f` with fresh backends for `toml` on a simulated clock.
fn with_backend<F, Fut>(toml: &str, f: F)
where
    F: FnOnce(Vec<Arc<Backend>>, Clock) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let p = plan(toml);
    virtual_runtime().block_on(async {
        let clock = Clock::Sim(SimClock::start());
        let backends = Backend::replicas(&p, &clock);
        for b in &backends {
            b.begin(clock.now());
        }
        f(backends, clock).await;
    });
}

fn request(id: u64, method: Method) -> Incoming {
    Incoming {
        method,
        request_key: call_key(id),
        id_number: Some(id),
        ..Incoming::default()
    }
}

// === scripts ===

const SCRIPTED: &str = r#"
[load]
rate = 1
[backend]
latency = "3ms"
[[backend.scripts]]
ids = ["7", "sandbox-1"]
steps = ["UNAVAILABLE", { status = "UNKNOWN", latency = "40ms", pushback = "120" }, "OK"]
[[strategies]]
name = "s"
"#;

/// The n-th attempt of a scripted request gets the n-th step, counted by the backend per
/// request id whatever the client says; past the script, OK.
#[test]
fn scripted_requests_get_their_steps_in_order() {
    with_backend(SCRIPTED, |backends, clock| async move {
        let b = &backends[0];
        let mut seen = Vec::new();
        for _ in 0..4 {
            let t0 = clock.now();
            let a = b.handle(request(7, Method::Unary)).await;
            let pushback = a.pushback.map(|p| p.to_string());
            seen.push((a.code, a.attempt, pushback, clock.now() - t0));
        }
        let ms = Duration::from_millis;
        assert_eq!(
            seen,
            vec![
                (Code::Unavailable, 1, None, ms(3)),
                (Code::Unknown, 2, Some("120".into()), ms(40)),
                (Code::Ok, 3, None, ms(3)),
                (Code::Ok, 4, None, ms(3)),
            ]
        );
        // An unscripted request follows the fault model (healthy here); its attempt number is
        // the client's grpc-previous-rpc-attempts + 1.
        let mut other = request(8, Method::Unary);
        other.previous_attempts = Some(2);
        assert_eq!(
            b.handle(other).await,
            Answer {
                code: Code::Ok,
                attempt: 3,
                pushback: None
            }
        );
        // A script sent with the request itself wins.
        let mut own = request(9, Method::Unary);
        own.script = Some(Arc::from(vec![resilbench::profile::backend::StepPlan {
            status: Code::Aborted.into(),
            latency: None,
            pushback: None,
        }]));
        assert_eq!(b.handle(own.clone()).await.code, Code::Aborted);
        assert_eq!(b.handle(own).await.code, Code::Ok);
    });
}

// === capacity ===

/// 2 workers, a queue of 3, 1 s per request, 10 requests 10 ms apart: 2 start, 3 wait, 5 are
/// turned away with the configured pushback; the queue's high water is 3.
#[test]
fn a_full_queue_rejects_with_pushback_as_the_arithmetic_says() {
    let toml = r#"
[load]
rate = 100
duration = "100ms"
deadline = "10s"
[backend]
latency = "1s"
workers = 2
queue = 3
pushback = { fixed = "250ms" }
[[strategies]]
name = "s"
"#;
    let r = run_virtual(&plan(toml));
    let s = &r.strategies[0];
    let b = s.backend.as_ref().unwrap();
    assert_eq!(
        (b.received, b.executed, b.rejected, b.queue_high_water),
        (10, 5, 5, 3)
    );
    assert_eq!(s.status.get("RESOURCE_EXHAUSTED"), Some(&5));
    assert_eq!(s.status.get("OK"), Some(&5));
    // Calls 0 and 1 run 0–1 s and 0.01–1.01 s; calls 2 and 3 (queued) take their workers at
    // 1 s and 1.01 s; call 4, due at 40 ms, is third in the queue and waits for call 2's worker:
    // it runs 2–3 s, 2.96 s after its intended start.
    let ok = s.latency_ms.e2e_ok.unwrap();
    assert!(
        (ok.max - 2960.0).abs() <= 3.0,
        "the last queued call ended at 3 s: {}",
        ok.max
    );

    with_backend(
        &toml.replace(
            "pushback = { fixed = \"250ms\" }",
            "pushback = { per_queued = \"20ms\" }",
        ),
        |backends, _| async move {
            let b = Arc::clone(&backends[0]);
            let mut waiting = Vec::new();
            for id in 0..5 {
                let b = Arc::clone(&b);
                waiting.push(tokio::spawn(async move {
                    b.handle(request(id, Method::Unary)).await
                }));
                tokio::task::yield_now().await;
            }
            let rejected = b.handle(request(99, Method::Unary)).await;
            assert_eq!(rejected.code, Code::ResourceExhausted);
            assert_eq!(
                rejected.pushback.map(|p| p.to_string()).as_deref(),
                Some("60"),
                "3 queued × 20 ms"
            );
            for w in waiting {
                assert_eq!(w.await.unwrap().code, Code::Ok);
            }
        },
    );
}

/// A quota of 10/s with a burst of 5 lets 5 + 10/s through; the rest get RESOURCE_EXHAUSTED.
#[test]
fn a_quota_admits_its_rate_and_burst() {
    let toml = r#"
[load]
rate = 50
duration = "2s"
[backend]
quota = { rate = 10, burst = 5, pushback = true }
[[strategies]]
name = "s"
"#;
    let r = run_virtual(&plan(toml));
    let s = &r.strategies[0];
    let ok = *s.status.get("OK").unwrap();
    // 5 at once, then one token every 100 ms for 2 s (the first refill lands at 100 ms).
    assert!((24..=25).contains(&ok), "admitted {ok}");
    assert_eq!(s.backend.as_ref().unwrap().rejected, 100 - ok);
}

// === cancellation and wasted work ===

const ABANDONED: &str = r#"
[load]
rate = 100
duration = "2s"
deadline = "50ms"
[backend]
latency = "100ms"
on_cancel = "ON_CANCEL"
[[strategies]]
name = "s"
"#;

/// Every caller gives up at 50 ms of a 100 ms job. A backend that carries on wastes every
/// execution; one that stops wastes none.
#[test]
fn work_abandoned_by_callers_is_wasted_unless_the_backend_stops() {
    let r = run_virtual(&plan(&ABANDONED.replace("ON_CANCEL", "continue")));
    let b = r.strategies[0].backend.clone().unwrap();
    assert_eq!(r.strategies[0].status.get("DEADLINE_EXCEEDED"), Some(&200));
    assert_eq!((b.executed, b.wasted), (200, 200));
    let r = run_virtual(&plan(&ABANDONED.replace("ON_CANCEL", "stop")));
    let b = r.strategies[0].backend.clone().unwrap();
    assert_eq!((b.executed, b.wasted), (200, 0));
}

// === phases ===

fn phase_run(phase: &str, backend: &str) -> StrategyResult {
    let toml = format!(
        r#"
[load]
rate = 100
duration = "4s"
deadline = "5s"
[backend]
{backend}
[[phases]]
{phase}
start = "1s"
duration = "1s"
[[strategies]]
name = "s"
"#
    );
    run_virtual(&plan(&toml)).strategies.remove(0)
}

/// Each phase kind changes exactly the calls offered inside its window.
#[test]
fn each_phase_changes_exactly_the_calls_inside_its_window() {
    let s = phase_run(
        "kind = \"outage\"\nstatus = \"INTERNAL\"",
        "latency = \"2ms\"",
    );
    assert_eq!(s.status.get("INTERNAL"), Some(&100));
    assert_eq!(
        (row(&s, 0).failed, row(&s, 1).failed, row(&s, 2).failed),
        (0, 100, 0)
    );

    let s = phase_run(
        "kind = \"error_burst\"\nerrors = { UNAVAILABLE = 1.0 }",
        "latency = \"2ms\"",
    );
    assert_eq!(
        (row(&s, 0).failed, row(&s, 1).failed, row(&s, 2).failed),
        (0, 100, 0)
    );

    let s = phase_run(
        "kind = \"brownout\"\nlatency_factor = 10.0",
        "latency = \"2ms\"",
    );
    assert_eq!(row(&s, 0).p99_ms, Some(2.0));
    assert!(
        (row(&s, 1).p50_ms.unwrap() - 20.0).abs() < 0.05,
        "{:?}",
        row(&s, 1)
    );
    assert_eq!(row(&s, 2).p99_ms, Some(2.0));

    // Held until 2 s: the call due at 1.00 s waits 1 s (+2 ms of service), the one at 1.99 s
    // 10 ms; of those 100 values (1002, 992, …, 12 ms) the p99 is the 99th, 992 ms.
    let s = phase_run("kind = \"stall\"", "latency = \"2ms\"");
    assert!(
        (row(&s, 1).p99_ms.unwrap() - 992.0).abs() < 1.0,
        "{:?}",
        row(&s, 1)
    );
    assert!(
        (row(&s, 1).p50_ms.unwrap() - 502.0).abs() < 1.0,
        "{:?}",
        row(&s, 1)
    );
    assert_eq!(row(&s, 2).p99_ms, Some(2.0));

    let s = phase_run("kind = \"load_spike\"\nfactor = 3.0", "latency = \"2ms\"");
    assert_eq!(
        (row(&s, 0).offered, row(&s, 1).offered, row(&s, 2).offered),
        (100, 300, 100)
    );

    // Half the workers during the window: at most 1 in service then, 2 outside.
    let s = phase_run(
        "kind = \"brownout\"\ncapacity_factor = 0.5",
        "latency = \"15ms\"\nworkers = 2",
    );
    let tl = &s.backend.as_ref().unwrap().timeline;
    let in_service = |t: usize| tl[t].in_service_max;
    assert_eq!(
        (in_service(0), in_service(1), in_service(3)),
        (2, 1, 2),
        "{tl:?}"
    );
}

/// A phase aimed at one replica spares the others; round-robin spreads calls evenly.
#[test]
fn replicas_have_their_own_phases_and_figures() {
    let toml = r#"
[load]
rate = 100
duration = "3s"
[backend]
latency = "2ms"
[[backend.replicas]]
name = "good"
[[backend.replicas]]
name = "bad"
[[phases]]
kind = "outage"
start = "1s"
duration = "1s"
replica = "bad"
[[strategies]]
name = "s"
"#;
    let s = run_virtual(&plan(toml)).strategies.remove(0);
    let b = s.backend.unwrap();
    let names: Vec<_> = b
        .replicas
        .iter()
        .map(|r| (r.name.as_str(), r.received))
        .collect();
    assert_eq!(names, vec![("good", 150), ("bad", 150)]);
    assert_eq!(
        s.status.get("UNAVAILABLE"),
        Some(&50),
        "half of the second's calls hit the bad replica"
    );
}

// === mutations ===

const MUTATION: &str = r#"
[load]
rate = 1
method = "mutate"
[backend]
latency = "5ms"
[backend.mutation]
lost_response = { rate = 1.0 }
dedup = DEDUP
[[strategies]]
name = "s"
"#;

/// Every reply is lost after its side effect. Sending each mutation twice (as a retry would)
/// executes it twice unless the backend deduplicates by the idempotency key.
#[test]
fn lost_responses_cause_duplicate_side_effects_unless_deduplicated() {
    for (dedup, with_key, duplicates) in [(false, true, 10), (true, false, 10), (true, true, 0)] {
        with_backend(
            &MUTATION.replace("DEDUP", &dedup.to_string()),
            |backends, _| async move {
                let b = &backends[0];
                for id in 0..10 {
                    let mut req = request(id, Method::Mutate);
                    req.idempotency_key = with_key.then(|| Arc::from(format!("key-{id}")));
                    let first = b.handle(req.clone()).await;
                    assert_eq!(first.code, Code::Unavailable, "the first reply is lost");
                    req.previous_attempts = Some(1);
                    let second = b.handle(req).await;
                    let want = if dedup && with_key {
                        Code::Ok
                    } else {
                        Code::Unavailable
                    };
                    assert_eq!(second.code, want, "dedup {dedup}, key {with_key}");
                }
                let stats = b.stats();
                assert_eq!(
                    stats.duplicate_side_effects, duplicates,
                    "dedup {dedup}, key {with_key}"
                );
                assert_eq!(
                    stats.executed,
                    20 - (10 - duplicates),
                    "dedup {dedup}, key {with_key}"
                );
            },
        );
    }
}

// === streaming ===

fn stream_run(faults: &str) -> StrategyResult {
    let toml = format!(
        r#"
[load]
rate = 10
duration = "1s"
method = "stream"
[backend]
latency = "4ms"
[backend.stream]
messages = 5
interval = "2ms"
{faults}
[[strategies]]
name = "s"
"#
    );
    run_virtual(&plan(&toml)).strategies.remove(0)
}

/// A stream delivers its messages on time; a fault after message 3 ends it there; a fault
/// before the first message delivers none.
#[test]
fn streams_deliver_messages_up_to_their_failure_point() {
    let s = stream_run("");
    assert_eq!(s.status.get("OK"), Some(&10));
    assert_eq!(s.stream.unwrap().messages, 50);
    // First message after 4 ms, then four more 2 ms apart: 12 ms (HdrHistogram reports the
    // highest value equivalent to it at 3 digits, 12.007 ms).
    assert!((s.latency_ms.e2e_ok.unwrap().max - 12.0).abs() < 0.01);

    let s = stream_run("fail_after = { message = 3, rate = 1.0, status = \"INTERNAL\" }");
    assert_eq!(s.status.get("INTERNAL"), Some(&10));
    let st = s.stream.unwrap();
    assert_eq!(
        (
            st.messages,
            st.failed_after_commit,
            st.messages_before_failure
        ),
        (30, 10, 30)
    );
    assert!(
        (s.latency_ms.e2e.unwrap().max - 8.0).abs() < 0.01,
        "failed right after message 3, at 8 ms"
    );

    let s = stream_run("fail_before_first = { rate = 1.0 }");
    assert_eq!(s.status.get("UNAVAILABLE"), Some(&10));
    assert_eq!(
        s.stream.unwrap(),
        resilbench::results::StreamFigures {
            messages: 0,
            failed_after_commit: 0,
            messages_before_failure: 0
        }
    );
}

// === review findings: each of these failed before its fix ===

/// When a brownout's capacity factor ends, waiting requests take the returned workers at
/// once; without the rebalance they would wait for a running request to finish.
#[test]
fn workers_return_the_moment_a_brownout_ends() {
    let toml = r#"
[load]
rate = 10
duration = "200ms"
deadline = "20s"
[backend]
latency = "3s"
workers = 2
[[phases]]
kind = "brownout"
start = "0s"
duration = "1s"
capacity_factor = 0.5
[[strategies]]
name = "s"
"#;
    // Calls at 0 and 100 ms: the first takes the one worker left; the second waits until the
    // brownout ends at 1 s, starts then, and ends at 4 s (not at 6 s, after the first).
    let s = run_virtual(&plan(toml)).strategies.remove(0);
    let ok = s.latency_ms.e2e_ok.unwrap();
    assert_eq!(s.counts.succeeded, 2);
    assert!(
        (ok.max - 3900.0).abs() < 4.0,
        "the second call ran 1 s → 4 s: {}",
        ok.max
    );
}

/// A keyed mutation whose first execution fails before its side effect releases the key: the
/// repeat executes (it does not wait for a result that will never come). Repeats answered
/// from the store still count as received.
#[test]
fn a_failed_first_execution_does_not_block_its_repeats() {
    let toml = r#"
[load]
rate = 1
method = "mutate"
[backend]
latency = "5ms"
[[backend.scripts]]
ids = ["1"]
steps = ["UNAVAILABLE", "OK"]
[backend.mutation]
dedup = true
[[strategies]]
name = "s"
"#;
    with_backend(toml, |backends, clock| async move {
        let b = &backends[0];
        let mut req = request(1, Method::Mutate);
        req.idempotency_key = Some(Arc::from("k"));
        assert_eq!(b.handle(req.clone()).await.code, Code::Unavailable);
        let t0 = clock.now();
        req.previous_attempts = Some(1);
        let second = b.handle(req.clone()).await;
        assert_eq!(second.code, Code::Ok);
        assert_eq!(
            clock.now() - t0,
            Duration::from_millis(5),
            "executed at once, not after a wait"
        );
        req.previous_attempts = Some(2);
        assert_eq!(
            b.handle(req).await.code,
            Code::Ok,
            "the third is answered from the store"
        );
        let stats = b.stats();
        assert_eq!(
            (stats.received, stats.executed, stats.duplicate_side_effects),
            (3, 2, 0)
        );
    });
}

/// A repeat that arrives while the first execution runs waits for its result.
#[test]
fn a_repeat_during_the_first_execution_gets_its_result() {
    let toml = r#"
[load]
rate = 1
method = "mutate"
[backend]
latency = "50ms"
[backend.mutation]
dedup = true
[[strategies]]
name = "s"
"#;
    with_backend(toml, |backends, clock| async move {
        let b = Arc::clone(&backends[0]);
        let mut req = request(7, Method::Mutate);
        req.idempotency_key = Some(Arc::from("k7"));
        let first = {
            let (b, req) = (Arc::clone(&b), req.clone());
            tokio::spawn(async move { b.handle(req).await })
        };
        clock.sleep(Duration::from_millis(10)).await;
        req.previous_attempts = Some(1);
        let t0 = clock.now();
        let repeat = b.handle(req).await;
        assert_eq!(repeat.code, Code::Ok);
        assert_eq!(
            clock.now() - t0,
            Duration::from_millis(40),
            "it waited for the first to end"
        );
        assert_eq!(first.await.unwrap().code, Code::Ok);
        assert_eq!(
            (b.stats().executed, b.stats().duplicate_side_effects),
            (1, 0)
        );
    });
}

/// A stream whose caller goes away stops at once with on_cancel = "stop" (its worker is free
/// for the next request) and runs on, wasted, with "continue".
#[test]
fn a_cancelled_stream_stops_or_is_wasted() {
    // stop: the worker is free at 10 ms, the next request (10 ms of work) ends at 20 ms;
    // continue: the stream keeps the worker to its end (10 ms + 9 × 10 ms), the next ends at 110.
    for (on_cancel, next_ends_at, wasted) in [("stop", 20, 0), ("continue", 110, 1)] {
        let toml = format!(
            r#"
[load]
rate = 1
method = "stream"
[backend]
latency = "10ms"
workers = 1
on_cancel = "{on_cancel}"
[backend.stream]
messages = 10
interval = "10ms"
[[strategies]]
name = "s"
"#
        );
        with_backend(&toml, |backends, clock| async move {
            let b = Arc::clone(&backends[0]);
            let t0 = clock.now();
            let mut events = b.stream(request(1, Method::Stream));
            // Read the first message (at 10 ms), then hang up.
            assert_eq!(
                events.recv().await,
                Some(resilbench::backend::StreamEvent::Message(1))
            );
            drop(events);
            let next = b.handle(request(2, Method::Unary)).await;
            assert_eq!(next.code, Code::Ok);
            let took = (clock.now() - t0).as_millis();
            assert_eq!(
                took, next_ends_at,
                "{on_cancel}: the next request ended at {took} ms"
            );
            b.drained().await;
            assert_eq!(b.stats().wasted, wasted, "{on_cancel}");
        });
    }
}

/// A request held by one stall is let go only when no stall holds it any more.
#[test]
fn overlapping_stalls_hold_until_the_last_one_ends() {
    let toml = r#"
[load]
rate = 1
[backend]
latency = "1ms"
[[phases]]
kind = "stall"
start = "0s"
duration = "1s"
[[phases]]
kind = "stall"
start = "500ms"
duration = "2s"
[[phases]]
kind = "outage"
start = "2500ms"
duration = "1s"
[[strategies]]
name = "s"
"#;
    with_backend(toml, |backends, clock| async move {
        let t0 = clock.now();
        // Held by the first stall until 1 s, by the second until 2.5 s, then the outage that
        // began at 2.5 s answers it.
        let a = backends[0].handle(request(1, Method::Unary)).await;
        assert_eq!(a.code, Code::Unavailable);
        assert_eq!(clock.now() - t0, Duration::from_millis(2500));
    });
}
