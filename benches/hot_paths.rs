//! Micro-benchmarks of the per-call hot paths, as they are today.
//!
//! - `recorder/*`: what the driver and the instrument layer report for every call and attempt.
//! - `schedule/*`: one arrival offset of the open-loop schedule.
//! - `fault_model/draw`: the backend's keyed draw for one attempt.
//! - `decision/*`: what a strategy decides per call or retry: a backoff wait with its keyed
//!   jitter draw, gRPC retry throttling, Finagle's and Envoy's retry budgets, a pybreaker and a
//!   resilience4j breaker admitting a call and recording its outcome.
//! - `results/to_json`: serialising the results of a short virtual run (once per run, not per
//!   call, but it carries every histogram and timeline row).
//!
//! Run with `cargo bench --bench hot_paths` (add `-- recorder` to run one group).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use resilbench::backend::latency::Latency;
use resilbench::backend::model::FaultModel;
use resilbench::call::{AttemptKind, Call, CallMeter, Failure, Outcome, Reply};
use resilbench::clock::Clock;
use resilbench::driver::Schedule;
use resilbench::keyed::call_key;
use resilbench::profile::{self, Arrival, BackendPlan, LoadPlan, Overrides};
use resilbench::progress::Progress;
use resilbench::record::{Recorder, RecorderConfig};
use resilbench::results::Results;
use resilbench::runner::{self, ClockMode, RunOptions};
use resilbench::strategy::{Event, EventSink};
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// Nanoseconds between calls of a 20,000 calls/s schedule.
const GAP_NS: u64 = 50_000;

fn recorder_config() -> RecorderConfig {
    RecorderConfig {
        // Any instant will do: the recorder only measures from it.
        start: Clock::Precise.now(),
        warmup: Duration::ZERO,
        duration: Duration::from_secs(3600),
        deadline: Duration::from_secs(1),
    }
}

/// A service time that walks over a few histogram buckets, 1.000 to 4.071 ms.
fn e2e_of(i: u64) -> Duration {
    Duration::from_micros(1_000 + (i * 37) % 3_072)
}

fn recorder(c: &mut Criterion) {
    let mut group = c.benchmark_group("recorder");
    group.throughput(Throughput::Elements(1));

    // One measured call as the driver reports it: dispatched, started on time, completed OK.
    // Intended starts advance at 20,000 calls/s, so each second of the timeline closes (and
    // serialises its histogram) as in a run: that cost is included, spread over the second's
    // calls.
    group.bench_function("dispatched+started+completed", |b| {
        let config = recorder_config();
        let recorder = Recorder::new(config);
        let ok: Outcome = Ok(Reply {
            backend_attempt: 1,
            messages: 0,
            fallback: false,
        });
        let mut i = 0u64;
        b.iter(|| {
            let intended = config.start + Duration::from_nanos(i * GAP_NS);
            recorder.dispatched(black_box(intended));
            recorder.started(intended, black_box(intended));
            recorder.completed(intended, 1, black_box(&ok), e2e_of(i));
            i += 1;
        });
    });

    // One attempt ending, as the instrument layer reports it (a failure, half the time).
    group.bench_function("attempt_finished", |b| {
        let config = recorder_config();
        let recorder = Recorder::new(config);
        let call = Call {
            id: 1,
            intended: config.start,
            deadline: config.start + config.deadline,
            previous_attempts: 0,
            ordinal: 0,
            kind: AttemptKind::Original,
            warmup: false,
            payload_bytes: 0,
            method: resilbench::profile::Method::Unary,
            idempotency_key: false,
            sent_deadline: Some(config.start + config.deadline),
            meter: Arc::new(CallMeter::default()),
            commit: None,
            transparent: resilbench::profile::flavor::Transparent::A6,
        };
        let outcomes: [Outcome; 2] = [
            Ok(Reply {
                backend_attempt: 1,
                messages: 0,
                fallback: false,
            }),
            Err(Failure::local(Code::Unavailable)),
        ];
        let mut i = 0u64;
        b.iter(|| {
            // Within the first second: attempts alone never close a second.
            let started = config.start + Duration::from_nanos((i % 20_000) * GAP_NS);
            recorder.record(Event::AttemptFinished {
                call: black_box(&call),
                started,
                ended: started + e2e_of(i),
                outcome: &outcomes[(i % 2) as usize],
                unprocessed: Default::default(),
                slot_waits: 0,
            });
            i += 1;
        });
    });
    group.finish();
}

fn endless_load(arrival: Arrival) -> LoadPlan {
    LoadPlan {
        arrival,
        method: resilbench::profile::Method::Unary,
        rate: 20_000.0,
        steps: vec![],
        // Long enough never to end while measured.
        duration: Duration::from_secs(100 * 365 * 24 * 3600),
        warmup: Duration::ZERO,
        deadline: Duration::from_secs(1),
        max_in_flight: 10_000,
        payload_bytes: 0,
        target_may_be_down: false,
        connections: 1,
        wake_quantum: resilbench::clock::REAL_WAKE_QUANTUM,
        order: Default::default(),
        cooldown: None,
    }
}

fn schedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule");
    group.throughput(Throughput::Elements(1));
    for (name, arrival) in [
        ("constant", Arrival::Constant),
        ("poisson", Arrival::Poisson),
    ] {
        group.bench_function(name, |b| {
            let mut offsets = Schedule::new(&endless_load(arrival), &[], 7);
            b.iter(|| black_box(offsets.next()));
        });
    }
    group.finish();
}

fn fault_model(c: &mut Criterion) {
    let plan = BackendPlan {
        latency: Latency::Lognormal {
            median: Duration::from_millis(2),
            p99: Duration::from_millis(20),
        },
        errors: BTreeMap::from([(resilbench::protocol::StatusCode::UNAVAILABLE, 0.01)]),
        ..BackendPlan::default()
    };
    let model = FaultModel::new(7, &plan);
    let calm = resilbench::backend::phases::Effects {
        latency_factor: 1.0,
        ..Default::default()
    };
    let mut group = c.benchmark_group("fault_model");
    group.throughput(Throughput::Elements(1));
    // Request keys as the transports compute them, made beforehand: only the draw is timed.
    let keys: Vec<u64> = (0..4096).map(call_key).collect();
    group.bench_function("draw", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(model.draw(black_box(keys[i]), 0, &calm))
        });
    });
    group.finish();
}

/// Two strategies, 10 s at 1,000 calls/s: a results file of the usual shape (timeline rows,
/// base64 histograms, the plan).
const SHORT_RUN: &str = r#"
name = "bench"
seed = 3
[load]
rate = 1000
duration = "10s"
deadline = "200ms"
[backend]
latency = { dist = "lognormal", median = "2ms", p99 = "20ms" }
errors = { UNAVAILABLE = 0.01 }
[[strategies]]
name = "baseline"
[[strategies]]
name = "attempt-timeout"
layers = [{ kind = "timeout", timeout = "10ms" }]
"#;

fn short_virtual_run() -> Results {
    let plan = profile::parse(SHORT_RUN, "bench.toml", "bench", &Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        clock: ClockMode::Virtual,
        target: None,
        progress: Progress::Quiet,
        shard: None,
        start_at: None,
        connect_timeout: resilbench::runner::CONNECT_TIMEOUT,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused current-thread runtime")
        .block_on(async {
            let clock = opts.clock.start();
            runner::execute(&plan, &opts, &clock, CancellationToken::new()).await
        })
        .expect("the short run")
}

fn results(c: &mut Criterion) {
    let results = short_virtual_run();
    let bytes = results.to_json().len();
    let mut group = c.benchmark_group("results");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("to_json", |b| b.iter(|| black_box(&results).to_json()));
    group.finish();
}

fn decision(c: &mut Criterion) {
    use resilbench::strategy::breaker::Machine;
    use resilbench::strategy::breaker::pybreaker::{self, PyBreaker};
    use resilbench::strategy::breaker::resilience4j::{self, Resilience4j, WindowType};
    use resilbench::strategy::retry::backoff::{Backoff, BackoffState, jitter_draw};
    use resilbench::strategy::retry::budget::{EnvoyBudget, TpsBudget};
    use resilbench::strategy::retry::throttle::Throttle;

    let mut group = c.benchmark_group("decision");
    group.throughput(Throughput::Elements(1));
    let a6 = Backoff::GrpcA6 {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        multiplier: 2.0,
    };
    let mut id = 0u64;
    group.bench_function("backoff_a6_with_keyed_jitter", |b| {
        b.iter(|| {
            id += 1;
            let mut state = BackoffState {
                n: 2,
                previous: 0.0,
            };
            black_box(a6.next(&mut state, jitter_draw(7, id, 2)))
        })
    });
    // gRFC A6 throttling: a failure and a success each move the tokens; a retry asks.
    let throttle = Throttle::new(10.0, 0.1);
    group.bench_function("throttle_failure_success_allows", |b| {
        b.iter(|| {
            black_box(throttle.on_failure());
            throttle.on_success();
            black_box(throttle.allows())
        })
    });
    // Finagle's budget: one deposit per call, one withdrawal per retry.
    let tps = TpsBudget::new(Clock::Precise, Duration::from_secs(10), 10, 0.2);
    group.bench_function("finagle_budget_deposit_withdraw", |b| {
        b.iter(|| {
            tps.deposit();
            black_box(tps.withdraw())
        })
    });
    // Envoy's budget: a request is active while its retry asks for room.
    let envoy = EnvoyBudget::new(20.0, 3);
    group.bench_function("envoy_budget_request_retry", |b| {
        b.iter(|| {
            let active = envoy.request();
            let retry = envoy.retry();
            black_box(retry.is_some());
            drop(retry);
            drop(active);
        })
    });
    let origin = Clock::Precise.now();
    let mut py = PyBreaker::new(pybreaker::Settings {
        fail_max: 5,
        reset_timeout: Duration::from_secs(30),
        success_threshold: 1,
    });
    let mut r4j = Resilience4j::new(
        resilience4j::Settings {
            window_type: WindowType::TimeBased,
            window_size: 60,
            minimum_number_of_calls: 100,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_secs(60),
            wait_duration_in_open_state: Duration::from_secs(60),
            permitted_calls_in_half_open: 10,
        },
        origin,
    );
    // One call in every 10 fails, 20,000 calls/s: both stay closed, as in a healthy run.
    let mut i = 0u64;
    let mut tick = move || {
        i += 1;
        healthy(origin, i)
    };
    group.bench_function("pybreaker_admit_record", |b| {
        b.iter(|| {
            let (now, verdict) = tick();
            black_box(py.admit(now));
            py.record(now, verdict, Duration::from_millis(2));
        })
    });
    let mut i = 0u64;
    let mut tick = move || {
        i += 1;
        healthy(origin, i)
    };
    group.bench_function("resilience4j_time_window_admit_record", |b| {
        b.iter(|| {
            let (now, verdict) = tick();
            black_box(r4j.admit(now));
            r4j.record(now, verdict, Duration::from_millis(2));
        })
    });
    group.finish();
}

/// Call `i` of a healthy run: 50 µs after the one before, one in ten failing.
fn healthy(
    origin: tokio::time::Instant,
    i: u64,
) -> (tokio::time::Instant, resilbench::strategy::breaker::Verdict) {
    use resilbench::strategy::breaker::Verdict;
    let verdict = if i.is_multiple_of(10) {
        Verdict::Failure
    } else {
        Verdict::Success
    };
    (origin + Duration::from_micros(i * GAP_NS / 1_000), verdict)
}

/// Short runs, and no plots (drawing them takes longer than measuring), so that the whole file
/// runs in about 20 s on two cores.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .without_plots()
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = recorder, schedule, fault_model, decision, results
}
criterion_main!(hot_paths);
