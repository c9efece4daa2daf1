//! The fault model: what an attempt gets (status, service time, pushback), decided by keyed
//! draws, scripts and the phases in force.
//!
//! Random decisions depend only on (seed, request id, attempt number): the same call's second
//! attempt meets the same fate under every strategy, so differences between strategies come
//! from the strategies alone. A scripted request instead gets the step of its script that its
//! attempt count (the backend's own count for that request id) points at.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tonic::Code;

use super::latency::{Latency, MAX_SAMPLE};
use super::phases::Effects;
use crate::keyed::{KeyedStream, Purpose};
use crate::profile::BackendPlan;
use crate::profile::backend::{PushbackValues, ScriptPlan, StepPlan};

/// What the model decided for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    /// Service time, once a worker takes the request.
    pub latency: Duration,
    /// The status to answer with.
    pub code: Code,
    /// `grpc-retry-pushback-ms` values to send with it.
    pub pushback: Option<PushbackValues>,
}

/// A request's id as the backend sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId<'a> {
    /// The id as a number, when it is one (resilbench sends call indices).
    pub number: Option<u64>,
    /// The id's text, when it is not simply the decimal form of `number`.
    pub text: Option<&'a str>,
}

/// A script ready to match requests.
#[derive(Debug, Clone)]
struct Script {
    numbers: HashSet<u64>,
    texts: HashSet<String>,
    every: Option<(u64, u64)>,
    steps: Vec<StepPlan>,
}

impl Script {
    fn new(plan: &ScriptPlan) -> Self {
        let (numeric, texts): (Vec<&String>, Vec<&String>) = plan
            .ids
            .iter()
            .partition(|id| id.parse::<u64>().is_ok_and(|n| n.to_string() == **id));
        Self {
            numbers: numeric.iter().filter_map(|id| id.parse().ok()).collect(),
            texts: texts.into_iter().cloned().collect(),
            every: plan.every.map(|n| (n, plan.offset % n)),
            steps: plan.steps.clone(),
        }
    }

    fn matches(&self, id: RequestId<'_>) -> bool {
        id.number.is_some_and(|n| {
            self.numbers.contains(&n) || self.every.is_some_and(|(e, k)| n % e == k)
        }) || id.text.is_some_and(|t| self.texts.contains(t))
    }
}

/// `d × factor`, cut to [0, MAX_SAMPLE] (overlapping brownouts multiply their factors).
fn scale(d: Duration, factor: f64) -> Duration {
    if factor == 1.0 {
        return d;
    }
    let secs = d.as_secs_f64() * factor;
    if secs.is_finite() && secs > 0.0 {
        Duration::from_secs_f64(secs.min(MAX_SAMPLE.as_secs_f64()))
    } else if secs > 0.0 {
        MAX_SAMPLE
    } else {
        Duration::ZERO
    }
}

/// Latency, error rates and scripts of one backend, with the run's seed.
#[derive(Debug, Clone)]
pub struct FaultModel {
    seed: u64,
    latency: Latency,
    by_status: HashMap<Code, Latency>,
    /// Status codes with cumulative probabilities, in the plan's (name) order.
    errors: Vec<(f64, Code)>,
    scripts: Vec<Script>,
}

impl FaultModel {
    /// The model of a backend plan.
    pub fn new(seed: u64, plan: &BackendPlan) -> Self {
        let mut cumulative = 0.0;
        let errors = plan
            .errors
            .iter()
            .map(|(code, p)| {
                cumulative += p;
                (cumulative, code.code())
            })
            .collect();
        let by_status = plan
            .latency_by_status
            .iter()
            .map(|(code, l)| (code.code(), l.clone()))
            .collect();
        Self {
            seed,
            latency: plan.latency.clone(),
            by_status,
            errors,
            scripts: plan.scripts.iter().map(Script::new).collect(),
        }
    }

    /// The steps of the first script that names this request, if any.
    pub fn script(&self, id: RequestId<'_>) -> Option<&[StepPlan]> {
        self.scripts
            .iter()
            .find(|s| s.matches(id))
            .map(|s| s.steps.as_slice())
    }

    /// Whether any script exists (the backend then counts attempts per request).
    pub fn has_scripts(&self) -> bool {
        !self.scripts.is_empty()
    }

    /// The service time of an attempt answered with `code`.
    fn latency_for(&self, code: Code, key: u64, attempt: u32, factor: f64) -> Duration {
        let dist = self.by_status.get(&code).unwrap_or(&self.latency);
        scale(
            dist.sample(&mut KeyedStream::new(
                self.seed,
                key,
                attempt,
                Purpose::Latency,
            )),
            factor,
        )
    }

    /// The draw for attempt `attempt` (0 = the first) of the request with key `key`, under the
    /// phase effects `fx`.
    pub fn draw(&self, key: u64, attempt: u32, fx: &Effects) -> Draw {
        let mut code = Code::Ok;
        if !fx.burst.is_empty() {
            let u = KeyedStream::new(self.seed, key, attempt, Purpose::Burst).open01();
            if let Some((_, c)) = fx.burst.iter().find(|(upto, _)| u < *upto) {
                code = *c;
            }
        }
        if code == Code::Ok && !self.errors.is_empty() {
            let u = KeyedStream::new(self.seed, key, attempt, Purpose::Status).open01();
            if let Some((_, c)) = self.errors.iter().find(|(upto, _)| u < *upto) {
                code = *c;
            }
        }
        Draw {
            latency: self.latency_for(code, key, attempt, fx.latency_factor),
            code,
            pushback: None,
        }
    }

    /// The draw for a scripted attempt: step `count - 1` of `steps` (OK past the end), the
    /// step's latency or the usual one.
    pub fn scripted(
        &self,
        steps: &[StepPlan],
        count: u32,
        key: u64,
        attempt: u32,
        fx: &Effects,
    ) -> Draw {
        let step = steps.get(count.saturating_sub(1) as usize);
        let code = step.map_or(Code::Ok, |s| s.status.code());
        let latency = match step.and_then(|s| s.latency.as_ref()) {
            Some(l) => scale(
                l.sample(&mut KeyedStream::new(
                    self.seed,
                    key,
                    attempt,
                    Purpose::Latency,
                )),
                fx.latency_factor,
            ),
            None => self.latency_for(code, key, attempt, fx.latency_factor),
        };
        Draw {
            latency,
            code,
            pushback: step.and_then(|s| s.pushback.clone()),
        }
    }

    /// A keyed draw in (0, 1) for `purpose` (lost responses, stream faults).
    pub fn chance(&self, key: u64, attempt: u32, purpose: Purpose) -> f64 {
        KeyedStream::new(self.seed, key, attempt, purpose).open01()
    }

    /// A keyed stream of draws for `purpose` (a stream's message intervals).
    pub fn stream_of(&self, key: u64, attempt: u32, purpose: Purpose) -> KeyedStream {
        KeyedStream::new(self.seed, key, attempt, purpose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan(errors: &[(&str, f64)]) -> BackendPlan {
        BackendPlan {
            errors: errors
                .iter()
                .map(|(n, p)| (n.parse().unwrap(), *p))
                .collect::<BTreeMap<_, _>>(),
            ..BackendPlan::default()
        }
    }

    fn calm() -> Effects {
        Effects {
            latency_factor: 1.0,
            ..Effects::default()
        }
    }

    #[test]
    fn error_rates_are_honoured() {
        let model = FaultModel::new(3, &plan(&[("UNAVAILABLE", 0.01), ("INTERNAL", 0.05)]));
        let n = 200_000u64;
        let (mut unavailable, mut internal) = (0, 0);
        for id in 0..n {
            match model.draw(id, 0, &calm()).code {
                Code::Unavailable => unavailable += 1,
                Code::Internal => internal += 1,
                Code::Ok => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let (u, i) = (unavailable as f64 / n as f64, internal as f64 / n as f64);
        assert!((u - 0.01).abs() < 0.001, "UNAVAILABLE share {u}");
        assert!((i - 0.05).abs() < 0.002, "INTERNAL share {i}");
    }

    #[test]
    fn draws_depend_on_seed_request_and_attempt_only() {
        let model = FaultModel::new(3, &plan(&[("UNAVAILABLE", 0.5)]));
        assert_eq!(model.draw(10, 1, &calm()), model.draw(10, 1, &calm()));
        let firsts: Vec<_> = (0..64).map(|id| model.draw(id, 0, &calm()).code).collect();
        let seconds: Vec<_> = (0..64).map(|id| model.draw(id, 1, &calm()).code).collect();
        assert_ne!(firsts, seconds, "a retry gets a fresh draw");
        let other_seed = FaultModel::new(4, &plan(&[("UNAVAILABLE", 0.5)]));
        let reseeded: Vec<_> = (0..64)
            .map(|id| other_seed.draw(id, 0, &calm()).code)
            .collect();
        assert_ne!(firsts, reseeded, "another seed is other luck");
    }

    #[test]
    fn errors_can_be_fast_and_bursts_add_errors() {
        let mut p = plan(&[("UNAVAILABLE", 0.5)]);
        p.latency = Latency::Fixed {
            value: Duration::from_millis(50),
        };
        p.latency_by_status.insert(
            crate::protocol::StatusCode::UNAVAILABLE,
            Latency::Fixed {
                value: Duration::from_millis(1),
            },
        );
        let model = FaultModel::new(1, &p);
        for id in 0..100 {
            let d = model.draw(id, 0, &calm());
            let want = if d.code == Code::Ok { 50 } else { 1 };
            assert_eq!(d.latency, Duration::from_millis(want));
        }
        let burst = Effects {
            latency_factor: 2.0,
            burst: vec![(1.0, Code::Internal)],
            ..Effects::default()
        };
        let d = model.draw(7, 0, &burst);
        assert_eq!(
            (d.code, d.latency),
            (Code::Internal, Duration::from_millis(100))
        );
    }
}
