//! The open-loop driver, checked exactly on a paused clock with hand-made transports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilbench::call::{Call, Failure, Reply};
use resilbench::clock::Clock;
use resilbench::clock::sim::SimClock;
use resilbench::driver::{DriveSpec, drive};
use resilbench::record::RunEnd;
use resilbench::record::{Recorder, RecorderConfig};
use resilbench::results::StrategyResult;
use resilbench::results::figures as summary;
use resilbench::strategy;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::Service;

use crate::common::{plan, virtual_runtime};

/// Drives the first strategy of `toml` through the transport `make(start, clock)` returns, on
/// a simulated clock.
fn drive_with<T, F>(toml: &str, make: F) -> (StrategyResult, RunEnd)
where
    F: FnOnce(Instant, Clock) -> T,
    T: Service<Call, Response = Reply, Error = Failure> + Clone + Send + 'static,
    T::Future: Send + 'static,
{
    drive_full(toml, Duration::ZERO, Duration::ZERO, make)
}

/// [`drive_with`], the driver waking at most once per `wake_quantum`, its schedule started
/// `behind` before now.
fn drive_full<T, F>(
    toml: &str,
    wake_quantum: Duration,
    behind: Duration,
    make: F,
) -> (StrategyResult, RunEnd)
where
    F: FnOnce(Instant, Clock) -> T,
    T: Service<Call, Response = Reply, Error = Failure> + Clone + Send + 'static,
    T::Future: Send + 'static,
{
    let plan = plan(toml);
    virtual_runtime().block_on(async {
        let clock = Clock::Sim(SimClock::start());
        let start = clock
            .now()
            .checked_sub(behind)
            .expect("the clock is past `behind`");
        let s = &plan.strategies[0];
        let config = RecorderConfig {
            start,
            warmup: plan.load.warmup,
            duration: plan.load.duration,
            deadline: s.deadline,
        };
        let recorder = Arc::new(Recorder::new(config));
        let stack = strategy::build(
            s,
            make(start, clock.clone()),
            Arc::clone(&recorder) as _,
            &clock,
            plan.seed,
        );
        let spec = DriveSpec {
            load: &plan.load,
            phases: &plan.phases,
            seed: plan.seed,
            start,
            clock,
            shard: None,
            wake_quantum,
        };
        // The strategy's call settings as these runs have always used them.
        let lane = resilbench::driver::Lane {
            stack,
            recorder: Arc::clone(&recorder),
            deadline: s.deadline,
            idempotency_keys: false,
            propagate_deadline: true,
            deadline_margin: Duration::ZERO,
            transparent: resilbench::profile::flavor::Transparent::A6,
        };
        let end = drive(spec, lane, CancellationToken::new()).await;
        let state = recorder.finish().unwrap();
        (
            summary::strategy_result(&s.name, 0, &config, state, end, None, false),
            end,
        )
    })
}

fn ok() -> Result<Reply, Failure> {
    Ok(Reply {
        backend_attempt: 1,
        messages: 0,
        fallback: false,
    })
}

const STALL_PROFILE: &str = r#"
[load]
rate = 100
duration = "6s"
deadline = "10s"
[[strategies]]
name = "baseline"
"#;

/// The coordinated-omission test. The backend answers in 1 ms, except that every call arriving
/// in [2 s, 4 s) is held until 4 s. An open-loop driver keeps sending during the stall, and each
/// of those 200 calls waits from its intended start to 4 s: the stall shows in full. A closed-loop
/// driver would have sent one call into the stall and recorded one slow sample.
#[test]
fn a_stall_shows_in_every_call_scheduled_during_it() {
    let (r, _) = drive_with(STALL_PROFILE, |start, clock| {
        let (from, to) = (
            start + Duration::from_secs(2),
            start + Duration::from_secs(4),
        );
        tower::service_fn(move |_call: Call| {
            let clock = clock.clone();
            async move {
                let now = clock.now();
                if now >= from && now < to {
                    clock.sleep_until(to).await;
                } else {
                    clock.sleep(Duration::from_millis(1)).await;
                }
                ok()
            }
        })
    });
    assert_eq!(r.counts.offered, 600);
    assert_eq!(r.counts.succeeded, 600);
    // The driver sent every call exactly on time, stall or not.
    assert_eq!(r.generator.lag_ms.max, 0.0);
    let e2e = r.latency_ms.e2e.unwrap();
    // The first call of the stall (t = 2.00 s) waited the whole 2 s.
    assert!((e2e.max - 2000.0).abs() <= 2.0, "max {}", e2e.max);
    // 400 calls took 1 ms and 200 were stalled (10 ms … 2 s, in steps of 10 ms). The p90 is
    // the 540th of 600: the 140th stalled call from the fast end, 1.4 s. A closed-loop
    // generator would report a p90 of 1 ms.
    assert!((e2e.p90 - 1400.0).abs() < 10.0, "p90 {}", e2e.p90);
    // Per second: calls offered in seconds 2 and 3 waited 1.5 s and 0.5 s at the median.
    let row = |t| r.timeline.iter().find(|row| row.t == t).unwrap();
    assert!(
        (row(2).p50_ms.unwrap() - 1505.0).abs() < 10.0,
        "{:?}",
        row(2)
    );
    assert!(
        (row(3).p50_ms.unwrap() - 505.0).abs() < 10.0,
        "{:?}",
        row(3)
    );
    for t in [0, 1, 4, 5] {
        assert!(
            row(t).p99_ms.unwrap() < 1.1,
            "second {t} is unaffected: {:?}",
            row(t)
        );
    }
    // Exactly the 100 calls of second 2 waited more than a second.
    let h = resilbench::record::histogram::Hist::decode(&r.histograms.e2e).unwrap();
    let over_1s = h
        .inner()
        .iter_recorded()
        .filter(|v| v.value_iterated_to() > 1_001_000)
        .map(|v| v.count_at_value())
        .sum::<u64>();
    assert_eq!(
        over_1s, 100,
        "the calls of 2.00 … 2.99 s waited more than 1.001 s"
    );
}

/// `max_in_flight` drops what does not fit and leaves the schedule of later calls unchanged.
#[test]
fn overflow_is_dropped_and_the_schedule_is_unchanged() {
    let toml = r#"
[load]
rate = 100
duration = "1s"
deadline = "1s"
max_in_flight = 5
[[strategies]]
name = "capped"
"#;
    let sent_ids = Arc::new(Mutex::new(Vec::new()));
    let ids = Arc::clone(&sent_ids);
    let (r, _) = drive_with(toml, move |start, clock| {
        tower::service_fn(move |call: Call| {
            let (ids, clock) = (Arc::clone(&ids), clock.clone());
            async move {
                ids.lock()
                    .unwrap()
                    .push((call.id, call.intended.duration_since(start)));
                // Each call takes 95 ms: five fit in every 100 ms, the next five are dropped.
                clock.sleep(Duration::from_millis(95)).await;
                ok()
            }
        })
    });
    assert_eq!(
        (r.counts.offered, r.counts.sent, r.counts.dropped),
        (100, 50, 50)
    );
    assert_eq!(r.generator.lag_ms.max, 0.0, "no call was delayed");
    let ids = sent_ids.lock().unwrap();
    assert_eq!(ids.len(), 50);
    for (id, intended) in ids.iter() {
        assert!(id % 10 < 5, "call {id} should have been dropped");
        assert_eq!(
            *intended,
            Duration::from_millis(10 * id),
            "call {id} kept its intended start"
        );
    }
    assert_eq!(r.timeline.len(), 1);
    assert_eq!((r.timeline[0].offered, r.timeline[0].dropped), (100, 50));
}

/// Warmup calls are sent but appear in no figure, even those that end after warmup.
#[test]
fn warmup_calls_are_sent_but_not_counted() {
    let toml = r#"
[load]
rate = 50
duration = "3s"
warmup = "1s"
[[strategies]]
name = "w"
"#;
    let sent = Arc::new(Mutex::new(0u32));
    let counter = Arc::clone(&sent);
    let (r, _) = drive_with(toml, move |_, clock| {
        tower::service_fn(move |_call: Call| {
            *counter.lock().unwrap() += 1;
            let clock = clock.clone();
            // 300 ms per call: the last warmup calls end well inside the measured window.
            async move {
                clock.sleep(Duration::from_millis(300)).await;
                ok()
            }
        })
    });
    assert_eq!(*sent.lock().unwrap(), 150, "all calls were sent");
    assert_eq!(
        r.counts.offered, 100,
        "only the 2 s after warmup are measured"
    );
    assert_eq!(r.attempts.total, 100);
    assert_eq!(r.timeline.first().unwrap().t, 1);
    assert_eq!(r.timeline.len(), 2);
    assert_eq!(r.generator.offered_rate, 50.0);
}

/// The call deadline counts from the intended start and covers the whole call.
#[test]
fn deadlines_fail_slow_calls_at_exactly_the_deadline() {
    let toml = r#"
[load]
rate = 10
duration = "1s"
deadline = "1s"
[[strategies]]
name = "tight"
deadline = "50ms"
"#;
    let (r, _) = drive_with(toml, |_, clock| {
        tower::service_fn(move |call: Call| {
            let clock = clock.clone();
            async move {
                // Odd calls take 80 ms, even ones 20 ms.
                clock
                    .sleep(Duration::from_millis(if call.id % 2 == 1 {
                        80
                    } else {
                        20
                    }))
                    .await;
                ok()
            }
        })
    });
    assert_eq!(r.status.get("OK"), Some(&5));
    assert_eq!(r.status.get("DEADLINE_EXCEEDED"), Some(&5));
    let e2e = r.latency_ms.e2e.unwrap();
    assert!(
        (e2e.max - 50.0).abs() < 0.1,
        "failed calls end at the deadline: {}",
        e2e.max
    );
    assert!((r.latency_ms.e2e_ok.unwrap().max - 20.0).abs() < 0.1);
    // The abandoned attempts are still counted, as DEADLINE_EXCEEDED.
    assert_eq!(r.attempts.status.get("DEADLINE_EXCEEDED"), Some(&5));
    assert_eq!(r.goodput.fraction, 0.5);
}

/// The wake quantum: with calls due every 20 µs and a 100 µs quantum, the driver wakes once
/// per 100 µs and sends what fell due since together. No call leaves early, none later than
/// the quantum, and the lateness is counted as generator lag.
#[test]
fn calls_falling_due_within_the_wake_quantum_leave_together_never_early() {
    let profile = r#"
[load]
rate = 50000
arrival = "constant"
duration = "100ms"
warmup = "0s"
deadline = "1s"
[[strategies]]
name = "baseline"
"#;
    let quantum = Duration::from_micros(100);
    let sent: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let lateness = Arc::clone(&sent);
    let (r, _) = drive_full(profile, quantum, Duration::ZERO, |_, clock| {
        tower::service_fn(move |call: Call| {
            let late = clock.now().checked_duration_since(call.intended);
            lateness
                .lock()
                .unwrap()
                .push(late.expect("no call leaves before its intended time"));
            async { ok() }
        })
    });
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 5000);
    assert_eq!(r.counts.offered, 5000);
    assert!(
        sent.iter().all(|late| *late < quantum),
        "{:?}",
        sent.iter().max()
    );
    // Within each 100 µs, calls due 0, 20, 40, 60 and 80 µs before the wake-up.
    let late = |us| {
        sent.iter()
            .filter(|l| **l == Duration::from_micros(us))
            .count()
    };
    assert!(
        late(80) >= 990 && late(0) >= 990,
        "80 µs: {}, 0 µs: {}",
        late(80),
        late(0)
    );
    assert!(
        (r.generator.lag_ms.max - 0.08).abs() < 0.001,
        "{:?}",
        r.generator.lag_ms
    );
    // The inter-send interval error: 20 µs within a batch (sent together, due 20 µs apart),
    // 80 µs from one batch to the next (100 µs apart, due 20 µs apart).
    let e = r.generator.interval_error_ms.unwrap();
    assert!(
        (e.p50 - 0.02).abs() < 0.001 && (e.max - 0.08).abs() < 0.001,
        "{e:?}"
    );
}

/// A driver that starts behind its schedule (every call already due) sends the backlog at
/// once but lets the calls it sent run meanwhile: on one thread, a loop that never yielded
/// would fill `max_in_flight` with calls that never got to start and drop the rest.
#[test]
fn a_backlog_is_sent_not_dropped_while_earlier_calls_finish() {
    let profile = r#"
[load]
rate = 1000
duration = "5s"
warmup = "0s"
deadline = "60s"
max_in_flight = 500
[[strategies]]
name = "baseline"
"#;
    let (r, _) = drive_full(profile, Duration::ZERO, Duration::from_secs(10), |_, _| {
        tower::service_fn(|_call: Call| async { ok() })
    });
    assert_eq!(r.counts.offered, 5000);
    assert_eq!(r.counts.dropped, 0, "{:?}", r.counts);
    assert_eq!(r.counts.succeeded, 5000);
}

/// With no `load.wake_quantum`, the quantum grows with the highest rate asked for (rate × 25 ns,
/// from 100 µs to 500 µs), `--rate` and rate steps included; a quantum the profile sets is kept.
#[test]
fn the_default_wake_quantum_grows_with_the_rate() {
    use resilbench::profile::{Overrides, parse};
    let quantum = |load: &str, rate: Option<f64>| {
        let text = format!("[load]\n{load}\nduration = \"2s\"\n[[strategies]]\nname = \"a\"\n");
        let overrides = Overrides {
            rate,
            ..Overrides::default()
        };
        parse(&text, "p.toml", "p", &overrides)
            .expect("the profile is valid")
            .load
            .wake_quantum
    };
    let us = Duration::from_micros;
    assert_eq!(quantum("rate = 500", None), us(100));
    assert_eq!(quantum("rate = 4000", None), us(100));
    assert_eq!(quantum("rate = 10000", None), us(250));
    assert_eq!(quantum("rate = 20000", None), us(500));
    assert_eq!(quantum("rate = 200000", None), us(500));
    assert_eq!(quantum("rate = 500", Some(12_000.0)), us(300));
    let steps = "rate = 1000\nsteps = [{ at = \"1s\", rate = 16000 }]";
    assert_eq!(quantum(steps, None), us(400));
    assert_eq!(
        quantum("rate = 40000\nwake_quantum = \"100us\"", None),
        us(100)
    );
}

/// What a `{{call}}` can reach (`check_target::last_call`) is the schedule's last index for
/// constant arrivals, rate steps and spikes included, and above every seed's for Poisson.
#[test]
fn the_checked_last_call_is_the_schedules_own() {
    use resilbench::driver::schedule::Schedule;
    use resilbench::profile::check_target::last_call;
    let loads = [
        "rate = 7\nduration = \"1s\"",
        "rate = 333\nduration = \"3s\"\n[[load.steps]]\nat = \"1s\"\nrate = 1000\n\
         [[load.steps]]\nat = \"2.5s\"\nrate = 10",
        "rate = 250\nduration = \"4s\"\n[[phases]]\nkind = \"load_spike\"\nstart = \"1s\"\n\
         duration = \"1s\"\nfactor = 3",
    ];
    for load in loads {
        let p = plan(&format!("[load]\n{load}\n[[strategies]]\nname = \"a\"\n"));
        let count = Schedule::new(&p.load, &p.phases, p.seed).count() as u64;
        assert_eq!(last_call(&p), count - 1, "{load}");
    }
    for (load, seeds) in [(loads[0], 0..400u64), (loads[1], 0..100)] {
        let mut most = 0;
        for seed in seeds {
            let p = plan(&format!(
                "seed = {seed}\n[load]\narrival = \"poisson\"\n{load}\n[[strategies]]\nname = \"a\"\n"
            ));
            let count = Schedule::new(&p.load, &p.phases, p.seed).count() as u64;
            assert!(
                count.saturating_sub(1) <= last_call(&p),
                "{load} seed {seed}"
            );
            most = most.max(count);
        }
        assert!(most > 0);
    }
}
