//! A strategy stack over a scripted transport, in virtual time.
//!
//! The script decides each attempt's latency and outcome; the transport writes down when every
//! attempt was sent, with the headers it would carry. On the paused clock those times are
//! exact, so a test can state them to the nanosecond.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilbench::call::{AttemptKind, Call, CallMeter, Failure, FailureSource, Outcome, Reply};
use resilbench::clock::{Clock, sim::SimClock};
use resilbench::profile::{Method, StrategyPlan};
use resilbench::protocol::Pushback;
use resilbench::strategy::{self, Event, EventSink};
use tokio::time::Instant;
use tonic::Code;
use tower::ServiceExt;

use super::{plan, virtual_runtime};

/// One attempt, as the transport saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sent {
    pub id: u64,
    /// When it was sent, from the start of the test.
    pub at: Duration,
    /// `grpc-previous-rpc-attempts`.
    pub previous: u32,
    /// Attempts of the call sent before it, by any layer.
    pub ordinal: u32,
    pub kind: AttemptKind,
    /// The deadline it carried (`grpc-timeout`), from the start of the test.
    pub deadline: Duration,
}

/// What the strategy reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Retry {
        id: u64,
        wait: Duration,
        pushback: bool,
    },
    Denied {
        id: u64,
        reason: &'static str,
    },
    Tokens(f64),
    Rejected {
        id: u64,
    },
    Hedged {
        id: u64,
        won_by_hedge: bool,
        cancelled: u32,
    },
    Breaker(resilbench::strategy::breaker::State),
    SubCall {
        id: u64,
        latency: Duration,
        code: Code,
    },
    ShortCircuited {
        id: u64,
    },
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ended {
    pub id: u64,
    pub at: Duration,
    pub code: Code,
}

#[derive(Debug, Default)]
pub struct Run {
    pub sent: Vec<Sent>,
    pub seen: Vec<Seen>,
    pub ended: Vec<Ended>,
}

impl Run {
    pub fn of(&self, id: u64) -> Vec<Sent> {
        self.sent.iter().filter(|s| s.id == id).copied().collect()
    }

    pub fn times(&self, id: u64) -> Vec<Duration> {
        self.of(id).iter().map(|s| s.at).collect()
    }

    pub fn ended(&self, id: u64) -> Ended {
        *self.ended.iter().find(|e| e.id == id).unwrap()
    }

    pub fn retries(&self) -> usize {
        self.seen
            .iter()
            .filter(|s| matches!(s, Seen::Retry { .. }))
            .count()
    }

    pub fn denied(&self, reason: &str) -> usize {
        self.seen
            .iter()
            .filter(|s| matches!(s, Seen::Denied { reason: r, .. } if *r == reason))
            .count()
    }

    pub fn waits(&self, id: u64) -> Vec<Duration> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Retry { id: i, wait, .. } if *i == id => Some(*wait),
                _ => None,
            })
            .collect()
    }

    pub fn last_tokens(&self) -> f64 {
        self.seen
            .iter()
            .rev()
            .find_map(|s| match s {
                Seen::Tokens(t) => Some(*t),
                _ => None,
            })
            .unwrap()
    }
}

pub struct Sink(Mutex<Vec<Seen>>);

impl EventSink for Sink {
    fn record(&self, event: Event<'_>) {
        let seen = match event {
            Event::Retry { call, wait } => Seen::Retry {
                id: call.id,
                wait: wait.delay,
                pushback: wait.pushback,
            },
            Event::RetryDenied { call, reason } => Seen::Denied {
                id: call.id,
                reason: reason.name(),
            },
            Event::Tokens { tokens, .. } => Seen::Tokens(tokens),
            Event::Rejected { call, .. } => Seen::Rejected { id: call.id },
            Event::BreakerState { state, .. } => Seen::Breaker(state),
            Event::SubCall {
                call,
                latency,
                outcome,
            } => Seen::SubCall {
                id: call.id,
                latency,
                code: resilbench::call::outcome_code(outcome),
            },
            Event::ShortCircuited { call, .. } => Seen::ShortCircuited { id: call.id },
            Event::HedgeOutcome {
                call,
                won_by_hedge,
                cancelled,
            } => Seen::Hedged {
                id: call.id,
                won_by_hedge,
                cancelled,
            },
            Event::AttemptStarted { .. } | Event::AttemptFinished { .. } => return,
        };
        self.0.lock().unwrap().push(seen);
    }
}

/// A failure answered by the backend.
pub fn status(code: Code) -> Outcome {
    Err(Failure {
        code,
        pushback: None,
        source: FailureSource::Backend,
        messages: 0,
        committed: false,
    })
}

/// A failure with `grpc-retry-pushback-ms`.
pub fn pushback(code: Code, pushback: Pushback) -> Outcome {
    Err(Failure {
        code,
        pushback: Some(pushback),
        source: FailureSource::Backend,
        messages: 0,
        committed: false,
    })
}

pub fn ok() -> Outcome {
    Ok(Reply {
        backend_attempt: 1,
        messages: 0,
        fallback: false,
    })
}

/// Sends call `id` at `at` for each `(id, at)` through `strategy` (its jitter keyed by `seed`), with
/// `answer` deciding each attempt's latency and outcome; returns what happened once every call
/// has ended.
pub fn drive(
    strategy: &StrategyPlan,
    seed: u64,
    calls: &[(u64, Duration)],
    answer: impl Fn(&Call) -> (Duration, Outcome) + Send + Sync + 'static,
) -> Run {
    let answer = Arc::new(answer);
    drive_with(strategy, seed, calls, move |clock: &Clock| {
        let clock = clock.clone();
        let answer = Arc::clone(&answer);
        tower::service_fn(move |call: Call| {
            let (latency, outcome) = answer(&call);
            let clock = clock.clone();
            async move {
                clock.sleep(latency).await;
                outcome
            }
        })
    })
}

/// [`drive`] over the transport `make` builds on the run's clock.
pub fn drive_with<T>(
    strategy: &StrategyPlan,
    seed: u64,
    calls: &[(u64, Duration)],
    make: impl FnOnce(&Clock) -> T + Send + 'static,
) -> Run
where
    T: tower::Service<Call, Response = Reply, Error = Failure> + Clone + Send + 'static,
    T::Future: Send + 'static,
{
    let s = strategy.clone();
    let calls = calls.to_vec();
    virtual_runtime().block_on(async move {
        let clock = Clock::Sim(SimClock::start());
        let start = clock.now();
        let since = move |t: Instant| t.saturating_duration_since(start);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::new(Sink(Mutex::new(Vec::new())));
        let inner = make(&clock);
        let transport = {
            let (sent, clock) = (Arc::clone(&sent), clock.clone());
            tower::service_fn(move |call: Call| {
                let now = clock.now();
                sent.lock().unwrap().push(Sent {
                    id: call.id,
                    at: since(now),
                    previous: call.previous_attempts,
                    ordinal: call.ordinal,
                    kind: call.kind,
                    deadline: since(call.sent_deadline.unwrap_or(call.deadline)),
                });
                inner.clone().oneshot(call)
            })
        };
        let stack = strategy::build(&s, transport, Arc::clone(&sink) as _, &clock, seed);
        let mut tasks = Vec::new();
        for (id, at) in calls {
            let (stack, clock) = (stack.clone(), clock.clone());
            let deadline = s.deadline;
            tasks.push(tokio::spawn(async move {
                clock.sleep_until(start + at).await;
                let intended = clock.now();
                let call = Call {
                    id,
                    intended,
                    deadline: intended + deadline,
                    previous_attempts: 0,
                    ordinal: 0,
                    kind: AttemptKind::Original,
                    warmup: false,
                    payload_bytes: 0,
                    method: Method::Unary,
                    idempotency_key: false,
                    sent_deadline: s
                        .propagate_deadline
                        .then(|| intended + deadline.saturating_sub(s.deadline_margin)),
                    meter: Arc::new(CallMeter::default()),
                    commit: None,
                    transparent: resilbench::profile::flavor::Transparent::A6,
                };
                let outcome = stack.oneshot(call).await;
                Ended {
                    id,
                    at: since(clock.now()),
                    code: match outcome {
                        Ok(_) => Code::Ok,
                        Err(f) => f.code,
                    },
                }
            }));
        }
        let mut ended = Vec::new();
        for t in tasks {
            ended.push(t.await.unwrap());
        }
        let mut sent = std::mem::take(&mut *sent.lock().unwrap());
        sent.sort_by_key(|s| (s.at, s.id, s.ordinal));
        let seen = std::mem::take(&mut *sink.0.lock().unwrap());
        Run { sent, seen, ended }
    })
}

/// The seed of every profile [`profile`] writes.
pub const SEED: u64 = 7;

/// `v` milliseconds.
pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A profile with one strategy made of `layers` (TOML array-of-tables text) and a call
/// deadline.
pub fn profile(deadline: &str, layers: &str) -> String {
    format!(
        r#"
seed = {SEED}
[load]
rate = 1
duration = "10s"
deadline = "{deadline}"
[backend]
[[strategies]]
name = "s"
{layers}
"#
    )
}

/// Drives the strategy of `profile_text` (see [`drive`]).
pub fn drive_profile(
    profile_text: &str,
    calls: &[(u64, Duration)],
    answer: impl Fn(&Call) -> (Duration, Outcome) + Send + Sync + 'static,
) -> Run {
    let p = plan(profile_text);
    drive(&p.strategies[0], p.seed, calls, answer)
}

/// `count` calls, one every `every`, ids from 0.
pub fn every(count: u64, every: Duration) -> Vec<(u64, Duration)> {
    (0..count).map(|i| (i, every * i as u32)).collect()
}

/// Drives the strategy of `profile_text` against the profile's own backend (its scripts,
/// latency and phases) called in process, as a virtual run calls it: each attempt reaches the
/// backend with what the wire would carry, and its answer (pushback text included) is read
/// back as a gRPC client reads it.
pub fn drive_backend(profile_text: &str, strategy: usize, calls: &[(u64, Duration)]) -> Run {
    use resilbench::backend::Backend;
    use resilbench::transport::direct::DirectTransport;
    let p = plan(profile_text);
    let backend_plan = p.clone();
    let make = move |clock: &Clock| {
        let backend = Backend::new(&backend_plan, 0, clock.clone());
        backend.begin(clock.now());
        DirectTransport::new(backend)
    };
    drive_with(&p.strategies[strategy], p.seed, calls, make)
}
