//! From a recorder's aggregates to the figures of `results.json`: percentiles, rates,
//! amplification.
//!
//! Every derived figure is computed here, in one place, from the histograms and counters, so
//! the definitions (what "achieved rate" or "goodput" means) are written down once. The
//! recorder ([`crate::record`]) only aggregates; it knows nothing of the results file.

use std::time::Duration;

use tonic::Code;

use super::{
    Amplification, Attempts, BreakerFigures, Counts, FanOutFigures, Generator, Goodput, Histograms,
    Lag, Latencies, NotProcessedCounts, StrategyResult, StreamFigures, TimerFloor, Transition,
};
use crate::backend::BackendStats;
use crate::protocol::status::code_name;
use crate::record::histogram::Hist;
use crate::record::{RecorderConfig, RunEnd, State, measured_window};

/// Generator figures. The achieved rate counts the calls actually sent over the measured
/// window stretched by the lateness of the last send: a generator that falls behind by a
/// second over a ten-second window achieves at most 10/11 of the offered rate.
pub fn generator(state: &State, window: Duration) -> Generator {
    let secs = window.as_secs_f64();
    let sent = state.offered - state.dropped;
    let late = state
        .last_dispatch
        .map_or(Duration::ZERO, |(intended, sent)| {
            sent.saturating_duration_since(intended)
        });
    let rate = |n: u64, over: f64| if over > 0.0 { n as f64 / over } else { 0.0 };
    Generator {
        lag_ms: lag(&state.lag),
        interval_error_ms: Some(lag(&state.interval_error)),
        offered_rate: rate(state.offered, secs),
        achieved_rate: rate(sent, secs + late.as_secs_f64()),
    }
}

/// The machine's wake-up floor as results.json keeps it: the calibration's lateness and the
/// driver's quantum, ms to the microsecond.
pub fn timer_floor(o: &crate::clock::calibrate::Overshoot, quantum: Duration) -> TimerFloor {
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    TimerFloor {
        wake_overshoot_ms: Lag {
            p50: ms(o.p50),
            p99: ms(o.p99),
            max: ms(o.max),
        },
        samples: o.samples as u64,
        calibrated_s: (o.span.as_secs_f64() * 1e3).round() / 1e3,
        wake_quantum_ms: ms(quantum),
    }
}

/// p50, p99 and max of a lag histogram, ms (zeros when empty).
pub fn lag(h: &Hist) -> Lag {
    match h.summary() {
        Some(s) => Lag {
            p50: s.p50,
            p99: s.p99,
            max: s.max,
        },
        None => Lag {
            p50: 0.0,
            p99: 0.0,
            max: 0.0,
        },
    }
}

fn by_name(map: &std::collections::BTreeMap<i32, u64>) -> std::collections::BTreeMap<String, u64> {
    map.iter()
        .map(|(code, n)| (code_name(Code::from_i32(*code)).to_string(), *n))
        .collect()
}

/// Goodput of `good` calls (succeeded within their deadline) of `offered`, over `secs`.
pub fn goodput(good: u64, offered: u64, secs: f64) -> Goodput {
    Goodput {
        per_second: if secs > 0.0 { good as f64 / secs } else { 0.0 },
        fraction: if offered > 0 {
            good as f64 / offered as f64
        } else {
            0.0
        },
    }
}

/// The figures of one strategy.
pub fn strategy_result(
    name: &str,
    start_ms: u64,
    config: &RecorderConfig,
    state: State,
    end: RunEnd,
    backend: Option<BackendStats>,
    streaming: bool,
) -> StrategyResult {
    let window = measured_window(config, end);
    let generator = generator(&state, window);
    let sent = state.offered - state.dropped;
    let per_sent = |n: u64| {
        if sent > 0 {
            n as f64 / sent as f64
        } else {
            0.0
        }
    };
    let secs = window.as_secs_f64();
    let (timeline, intervals) = state.timeline.finish();
    StrategyResult {
        backend_gap: None,
        name: name.to_string(),
        partial: end.interrupted,
        start_ms,
        duration_s: secs,
        counts: Counts {
            offered: state.offered,
            sent,
            succeeded: state.succeeded,
            failed: state.failed,
            dropped: state.dropped,
            unfinished: sent.saturating_sub(state.succeeded + state.failed),
        },
        status: by_name(&state.status),
        attempts: Attempts {
            total: state.attempts,
            retries: state.retries,
            hedges: state.hedges,
            hedges_won: state.hedges_won,
            hedges_cancelled: state.hedges_cancelled,
            per_call: state.per_call,
            status: by_name(&state.attempt_status),
            retry_denied: state
                .retry_denied
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            pushback_waits: state.pushback_waits,
            rejected_locally: state.rejected_locally,
            transparent: state.transparent,
            not_processed: NotProcessedCounts {
                refused: state.not_processed[0],
                goaway: state.not_processed[1],
                unsent: state.not_processed[2],
            },
            slot_waits: state.slot_waits,
        },
        amplification: Amplification {
            client: per_sent(state.attempts),
            backend: backend.as_ref().map(|b| per_sent(b.received)),
        },
        latency_ms: Latencies {
            e2e: state.e2e.summary(),
            e2e_ok: state.e2e_ok.summary(),
            attempt: state.attempt.summary(),
        },
        goodput: goodput(state.good, state.offered, secs),
        generator,
        histograms: Histograms {
            e2e: state.e2e.encode(),
            e2e_ok: state.e2e_ok.encode(),
            attempt: state.attempt.encode(),
            lag: state.lag.encode(),
            interval_error: Some(state.interval_error.encode()),
            sub_call: state.sub_calls.as_ref().map(|s| s.latency.encode()),
        },
        timeline,
        backend,
        stream: streaming.then_some(StreamFigures {
            messages: state.messages,
            failed_after_commit: state.failed_after_commit,
            messages_before_failure: state.messages_before_failure,
        }),
        fan_out: state.sub_calls.as_ref().map(|subs| FanOutFigures {
            sub_calls: subs.status.values().sum(),
            status: by_name(&subs.status),
            latency_ms: subs.latency.summary(),
        }),
        breaker: state.breaker_state.map(|_| BreakerFigures {
            short_circuited: state.short_circuited,
            fallback: state.fallback,
            opened: state
                .breaker_transitions
                .iter()
                .filter(|(_, s)| *s == crate::strategy::breaker::State::Open)
                .count() as u64,
            transitions: state
                .breaker_transitions
                .iter()
                .map(|(at, to)| Transition {
                    at_s: (at.as_secs_f64() * 1e6).round() / 1e6,
                    to: *to,
                })
                .collect(),
        }),
        intervals,
    }
}

/// The generator's figures over all strategies: lag from the merged histograms, rates from the
/// summed counts and windows.
pub fn overall_generator(strategies: &[StrategyResult]) -> Generator {
    let mut lag_hist = Hist::new();
    let mut interval_error: Option<Hist> = None;
    let (mut offered, mut sent, mut window, mut effective) = (0.0, 0.0, 0.0, 0.0);
    for s in strategies {
        if let Ok(h) = Hist::decode(&s.histograms.lag) {
            lag_hist.add(&h);
        }
        if let Some(Ok(h)) = s.histograms.interval_error.as_deref().map(Hist::decode) {
            interval_error.get_or_insert_with(Hist::new).add(&h);
        }
        offered += s.counts.offered as f64;
        sent += s.counts.sent as f64;
        window += s.duration_s;
        if s.generator.achieved_rate > 0.0 {
            effective += s.counts.sent as f64 / s.generator.achieved_rate;
        }
    }
    Generator {
        lag_ms: lag(&lag_hist),
        interval_error_ms: interval_error.as_ref().map(lag),
        offered_rate: if window > 0.0 { offered / window } else { 0.0 },
        achieved_rate: if effective > 0.0 {
            sent / effective
        } else {
            0.0
        },
    }
}
