//! The fault model: what an attempt gets (service time, status), decided by keyed draws.
//!
//! The decision for an attempt depends only on (seed, request id, attempt number): the same
//! call's second attempt meets the same fate under every strategy, so differences between
//! strategies come from the strategies alone.

use std::time::Duration;

use tonic::Code;

use super::latency::Latency;
use crate::keyed::{KeyedStream, Purpose};
use crate::profile::BackendPlan;
use crate::status::parse_code;

/// What the model decided for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    /// Service time, once a worker takes the request.
    pub latency: Duration,
    /// The status to answer with.
    pub code: Code,
}

/// Latency distribution and error rates of a backend, with the run's seed.
#[derive(Debug, Clone)]
pub struct FaultModel {
    seed: u64,
    latency: Latency,
    /// Status codes with cumulative probabilities, in the plan's (name) order.
    errors: Vec<(f64, Code)>,
}

impl FaultModel {
    /// The model of a plan's backend.
    pub fn new(seed: u64, plan: &BackendPlan) -> Self {
        let mut cumulative = 0.0;
        let errors = plan
            .errors
            .iter()
            .filter_map(|(name, p)| {
                cumulative += p;
                parse_code(name).map(|code| (cumulative, code))
            })
            .collect();
        Self {
            seed,
            latency: plan.latency.clone(),
            errors,
        }
    }

    /// The draw for attempt `attempt` (0 = the first) of the request with key `request_key`.
    pub fn draw(&self, request_key: u64, attempt: u32) -> Draw {
        let mut rng = KeyedStream::new(self.seed, request_key, attempt, Purpose::Latency);
        let latency = self.latency.sample(&mut rng);
        let code = if self.errors.is_empty() {
            Code::Ok
        } else {
            let u = KeyedStream::new(self.seed, request_key, attempt, Purpose::Status).open01();
            self.errors
                .iter()
                .find(|(upto, _)| u < *upto)
                .map_or(Code::Ok, |(_, code)| *code)
        };
        Draw { latency, code }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan(errors: &[(&str, f64)]) -> BackendPlan {
        BackendPlan {
            latency: Latency::default(),
            errors: errors
                .iter()
                .map(|(n, p)| (n.to_string(), *p))
                .collect::<BTreeMap<_, _>>(),
            workers: None,
            queue: None,
        }
    }

    #[test]
    fn error_rates_are_honoured() {
        let model = FaultModel::new(3, &plan(&[("UNAVAILABLE", 0.01), ("INTERNAL", 0.05)]));
        let n = 200_000u64;
        let (mut unavailable, mut internal) = (0, 0);
        for id in 0..n {
            match model.draw(id, 0).code {
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
    fn draws_depend_on_request_and_attempt_only() {
        let model = FaultModel::new(3, &plan(&[("UNAVAILABLE", 0.5)]));
        assert_eq!(model.draw(10, 1), model.draw(10, 1));
        let firsts: Vec<_> = (0..64).map(|id| model.draw(id, 0).code).collect();
        let seconds: Vec<_> = (0..64).map(|id| model.draw(id, 1).code).collect();
        assert_ne!(firsts, seconds, "a retry gets a fresh draw");
        let other_seed = FaultModel::new(4, &plan(&[("UNAVAILABLE", 0.5)]));
        let reseeded: Vec<_> = (0..64).map(|id| other_seed.draw(id, 0).code).collect();
        assert_ne!(firsts, reseeded, "another seed is other luck");
    }

    #[test]
    fn certain_errors_always_fail() {
        let model = FaultModel::new(9, &plan(&[("UNAVAILABLE", 1.0)]));
        assert!((0..1000).all(|id| model.draw(id, 0).code == Code::Unavailable));
    }
}
