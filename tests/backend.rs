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
            seen.push((a.code, a.attempt, a.pushback, clock.now() - t0));
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
        other.previous_attempts = 2;
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
            status: "ABORTED".into(),
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
            assert_eq!(rejected.pushback.as_deref(), Some("60"), "3 queued × 20 ms");
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
                    req.previous_attempts = 1;
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
    assert_eq!((st.messages, st.failed_after_first_message), (30, 10));
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
            failed_after_first_message: 0
        }
    );
}
