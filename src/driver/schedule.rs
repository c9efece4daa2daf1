//! Arrival schedules: when each call of an open-loop run is meant to start.
//!
//! The schedule is fixed by the plan before the run and never looks at completions. It is an
//! iterator of offsets from the run's start. Constant arrivals are computed on absolute terms
//! (`segment start + k / rate`), so no rounding error accumulates however long the run; Poisson
//! arrivals are by nature a running sum of random gaps (kept in f64 nanoseconds: sub-microsecond
//! over decades). Nothing is stored per call: a 30-year schedule costs no memory.
//!
//! Rate steps and load spikes make the rate piecewise constant ([`LoadPlan::segments`](crate::profile::LoadPlan::segments)). Constant
//! arrivals keep their phase across a change of rate: call k is due when the integral of the
//! rate reaches k, so a boundary neither adds nor drops a call. For Poisson arrivals a
//! segment's process restarts at the segment's start, which is exact for a piecewise-constant
//! rate because the exponential distribution is memoryless.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::profile::phases::PhasePlan;
use crate::profile::{Arrival, LoadPlan};

/// Distinguishes the arrival stream from every other use of the plan's seed.
const ARRIVAL_STREAM: u64 = 0x6172_7269_7661_6c73; // "arrivals"

/// The offsets, from the run's start, of every call of a plan, in order.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrival: Arrival,
    /// (segment start, rate) in nanoseconds and calls per second, with the schedule's end last.
    segments: Vec<(u64, f64)>,
    end: u64,
    segment: usize,
    /// Constant arrivals: index of the next call.
    k: u64,
    /// Constant arrivals: calls due before the current segment (the integral of the rate up
    /// to its start).
    before: f64,
    /// Poisson arrivals: time of the previous arrival, in nanoseconds (fractional).
    t: f64,
    rng: ChaCha8Rng,
}

/// Expected number of calls with intended start in `[from, to)` (exact for constant arrivals).
pub fn expected_calls(load: &LoadPlan, phases: &[PhasePlan], from: Duration, to: Duration) -> f64 {
    let segs = load.segments(phases);
    segs.iter()
        .enumerate()
        .map(|(i, &(start, rate))| {
            let end = segs.get(i + 1).map_or(load.duration, |s| s.0);
            let (a, b) = (start.max(from), end.min(to));
            if b > a {
                rate * (b - a).as_secs_f64()
            } else {
                0.0
            }
        })
        .sum()
}

impl Schedule {
    /// The schedule of `load` under `phases` (load spikes), with Poisson gaps drawn from `seed`.
    pub fn new(load: &LoadPlan, phases: &[PhasePlan], seed: u64) -> Self {
        let segments = load
            .segments(phases)
            .into_iter()
            .map(|(at, rate)| (at.as_nanos() as u64, rate))
            .collect();
        let end = load.duration.as_nanos() as u64;
        Self {
            arrival: load.arrival,
            segments,
            end,
            segment: 0,
            k: 0,
            before: 0.0,
            t: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ ARRIVAL_STREAM),
        }
    }

    fn segment_end(&self) -> u64 {
        self.segments
            .get(self.segment + 1)
            .map_or(self.end, |s| s.0)
            .min(self.end)
    }

    fn next_segment(&mut self) -> bool {
        let (start, rate) = self.segments[self.segment];
        self.before += rate * (self.segment_end() - start) as f64 / 1e9;
        self.segment += 1;
        match self.segments.get(self.segment) {
            Some(&(start, _)) if start < self.end => {
                self.t = start as f64;
                true
            }
            _ => false,
        }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        loop {
            let (start, rate) = *self.segments.get(self.segment)?;
            let end = self.segment_end();
            if rate > 0.0 {
                let at = match self.arrival {
                    Arrival::Constant => start as f64 + (self.k as f64 - self.before) * 1e9 / rate,
                    Arrival::Poisson => {
                        let u: f64 = 1.0 - self.rng.random::<f64>(); // (0, 1]
                        self.t - u.ln() * 1e9 / rate
                    }
                };
                if at < end as f64 {
                    self.k += 1;
                    self.t = at;
                    return Some(Duration::from_nanos(at.round() as u64));
                }
            }
            if !self.next_segment() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::RateStep;
    use crate::profile::phases::PhaseKind;

    fn load(arrival: Arrival, rate: f64, secs: u64) -> LoadPlan {
        LoadPlan {
            arrival,
            method: crate::profile::Method::Unary,
            rate,
            steps: vec![],
            duration: Duration::from_secs(secs),
            warmup: Duration::ZERO,
            deadline: Duration::from_secs(1),
            max_in_flight: 1,
            payload_bytes: 0,
            target_may_be_down: false,
            connections: 1,
            wake_quantum: crate::clock::REAL_WAKE_QUANTUM,
            order: Default::default(),
            cooldown: None,
        }
    }

    #[test]
    fn constant_sends_exactly_rate_times_duration_at_the_intended_times() {
        let offsets: Vec<Duration> =
            Schedule::new(&load(Arrival::Constant, 1000.0, 60), &[], 1).collect();
        assert_eq!(offsets.len(), 60_000);
        for (i, at) in offsets.iter().enumerate() {
            assert_eq!(*at, Duration::from_micros(1000 * i as u64));
        }
    }

    #[test]
    fn constant_does_not_drift_at_awkward_rates() {
        let offsets: Vec<Duration> =
            Schedule::new(&load(Arrival::Constant, 3.0, 3600), &[], 1).collect();
        assert_eq!(offsets.len(), 10_800);
        // Call 10,799 of a 3/s schedule is due at 3599.666…s, to the nanosecond.
        assert_eq!(offsets[10_799], Duration::from_nanos(3_599_666_666_667));
    }

    #[test]
    fn poisson_mean_gap_is_one_over_rate() {
        let n = 100_000usize;
        let offsets: Vec<Duration> = Schedule::new(&load(Arrival::Poisson, 1000.0, 1000), &[], 42)
            .take(n)
            .collect();
        assert_eq!(offsets.len(), n);
        let mean_gap = offsets[n - 1].as_secs_f64() / (n - 1) as f64;
        assert!(
            (mean_gap - 0.001).abs() / 0.001 < 0.02,
            "mean gap {mean_gap}"
        );
        assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
        // Exponential gaps: the share of gaps longer than the mean is e^-1.
        let longer = offsets
            .windows(2)
            .filter(|w| (w[1] - w[0]).as_secs_f64() > 0.001)
            .count();
        let share = longer as f64 / (n - 1) as f64;
        assert!(
            (share - (-1f64).exp()).abs() < 0.01,
            "share of long gaps {share}"
        );
    }

    #[test]
    fn poisson_is_reproducible_from_the_seed() {
        let a: Vec<_> = Schedule::new(&load(Arrival::Poisson, 500.0, 2), &[], 7).collect();
        let b: Vec<_> = Schedule::new(&load(Arrival::Poisson, 500.0, 2), &[], 7).collect();
        let c: Vec<_> = Schedule::new(&load(Arrival::Poisson, 500.0, 2), &[], 8).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn steps_change_the_rate_and_zero_pauses() {
        let mut plan = load(Arrival::Constant, 10.0, 3);
        plan.steps = vec![
            RateStep {
                at: Duration::from_secs(1),
                rate: 0.0,
            },
            RateStep {
                at: Duration::from_secs(2),
                rate: 100.0,
            },
        ];
        let offsets: Vec<Duration> = Schedule::new(&plan, &[], 1).collect();
        assert_eq!(offsets.len(), 110);
        assert_eq!(offsets[9], Duration::from_millis(900));
        assert_eq!(offsets[10], Duration::from_secs(2));
        assert_eq!(offsets[109], Duration::from_millis(2990));
        assert_eq!(
            expected_calls(&plan, &[], Duration::ZERO, plan.duration),
            110.0
        );
    }

    #[test]
    fn a_load_spike_multiplies_the_rate_inside_its_window_only() {
        let plan = load(Arrival::Constant, 10.0, 4);
        let spike = PhasePlan {
            kind: PhaseKind::LoadSpike,
            start: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            replica: None,
            status: None,
            latency_factor: None,
            capacity_factor: None,
            errors: Default::default(),
            factor: Some(3.0),
        };
        let offsets: Vec<Duration> =
            Schedule::new(&plan, std::slice::from_ref(&spike), 1).collect();
        // 10 calls in [0, 1), 60 in [1, 3), 10 in [3, 4).
        assert_eq!(offsets.len(), 80);
        let in_window = offsets.iter().filter(|o| spike.contains(**o)).count();
        assert_eq!(in_window, 60);
        assert_eq!(offsets[10], Duration::from_secs(1));
        assert_eq!(offsets[70], Duration::from_secs(3));
        assert_eq!(
            expected_calls(&plan, &[spike], Duration::ZERO, plan.duration),
            80.0
        );
    }

    /// Review finding: restarting each segment at its start added a call per boundary (3/s
    /// for 2 s with a ×1 spike from 0.5 s to 1.5 s gave 7 calls, not 6).
    #[test]
    fn constant_arrivals_keep_their_phase_across_boundaries() {
        let plan = load(Arrival::Constant, 3.0, 2);
        let mut spike = PhasePlan {
            kind: PhaseKind::LoadSpike,
            start: Duration::from_millis(500),
            duration: Duration::from_secs(1),
            replica: None,
            status: None,
            latency_factor: None,
            capacity_factor: None,
            errors: Default::default(),
            factor: Some(1.0),
        };
        let offsets: Vec<Duration> =
            Schedule::new(&plan, std::slice::from_ref(&spike), 1).collect();
        let thirds: Vec<Duration> = (0..6)
            .map(|k| Duration::from_nanos((k as f64 * 1e9 / 3.0).round() as u64))
            .collect();
        assert_eq!(offsets, thirds);
        // A ×2 spike over [0.5 s, 1.5 s): 1.5 calls before it, 6 in it, 1.5 after: 9 in all.
        spike.factor = Some(2.0);
        let offsets: Vec<Duration> = Schedule::new(&plan, &[spike], 1).collect();
        assert_eq!(offsets.len(), 9);
        // 1.5 calls are due by 0.5 s; then one every 1/6 s: call 2 is due half a gap later,
        // at 0.5 + 0.5/6 s, call 3 at 0.75 s.
        assert_eq!(offsets[2], Duration::from_nanos(583_333_333));
        assert_eq!(offsets[3], Duration::from_millis(750));
    }
}
