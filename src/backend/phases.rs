//! The backend's phases at a given moment: what an attempt arriving then meets.
//!
//! Overlapping phases combine: an outage wins over everything; a stall holds the attempt until
//! the latest stall ends; brownout factors multiply; error bursts add their probabilities
//! (capped so the total stays at most 1).

use std::time::Duration;

use tonic::Code;

use crate::profile::phases::{PhaseKind, PhasePlan};

/// The phases that apply to one backend (replica), with status names parsed.
#[derive(Debug, Clone, Default)]
pub struct Phases {
    phases: Vec<(PhasePlan, Option<Code>)>,
}

/// What the phases do to an attempt arriving at a given moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Fail at once with this status.
    pub outage: Option<Code>,
    /// Hold the attempt until this moment (from the backend's start).
    pub stall_until: Option<Duration>,
    /// Multiply the service time.
    pub latency_factor: f64,
    /// Extra error probabilities, cumulative, in order.
    pub burst: Vec<(f64, Code)>,
}

impl Phases {
    /// The phases of `plan` that apply to the replica called `replica`.
    pub fn new(plan: &[PhasePlan], replica: &str) -> Self {
        let phases = plan
            .iter()
            .filter(|p| p.kind != PhaseKind::LoadSpike && p.targets(replica))
            .map(|p| (p.clone(), p.status.map(|s| s.code())))
            .collect();
        Self { phases }
    }

    /// The effects at `t` from the backend's start.
    pub fn at(&self, t: Duration) -> Effects {
        let mut fx = Effects {
            latency_factor: 1.0,
            ..Effects::default()
        };
        let mut burst_total = 0.0;
        for (p, code) in self.phases.iter().filter(|(p, _)| p.contains(t)) {
            match p.kind {
                PhaseKind::Outage => {
                    fx.outage = fx.outage.or(Some(code.unwrap_or(Code::Unavailable)))
                }
                PhaseKind::Stall => fx.stall_until = fx.stall_until.max(Some(p.end())),
                PhaseKind::Brownout => fx.latency_factor *= p.latency_factor.unwrap_or(1.0),
                PhaseKind::ErrorBurst => {
                    for (code, rate) in &p.errors {
                        burst_total = (burst_total + rate).min(1.0);
                        fx.burst.push((burst_total, code.code()));
                    }
                }
                PhaseKind::LoadSpike => {}
            }
        }
        fx
    }

    /// The worker multiplier at `t` (brownouts' capacity factors multiplied).
    pub fn capacity_factor(&self, t: Duration) -> f64 {
        self.phases
            .iter()
            .filter(|(p, _)| p.kind == PhaseKind::Brownout && p.contains(t))
            .map(|(p, _)| p.capacity_factor.unwrap_or(1.0))
            .product()
    }

    /// Every moment a brownout's capacity factor starts or stops applying, in order.
    pub fn capacity_changes(&self) -> Vec<Duration> {
        let mut at: Vec<Duration> = self
            .phases
            .iter()
            .filter(|(p, _)| p.kind == PhaseKind::Brownout && p.capacity_factor.is_some())
            .flat_map(|(p, _)| [p.start, p.end()])
            .collect();
        at.sort();
        at.dedup();
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(kind: PhaseKind, start: u64, len: u64) -> PhasePlan {
        PhasePlan {
            kind,
            start: Duration::from_secs(start),
            duration: Duration::from_secs(len),
            replica: None,
            status: None,
            latency_factor: None,
            capacity_factor: None,
            errors: Default::default(),
            factor: None,
        }
    }

    #[test]
    fn overlapping_phases_combine() {
        let mut outage = phase(PhaseKind::Outage, 10, 2);
        outage.status = Some(Code::Internal.into());
        let mut slow = phase(PhaseKind::Brownout, 0, 20);
        slow.latency_factor = Some(3.0);
        slow.capacity_factor = Some(0.5);
        let mut slower = phase(PhaseKind::Brownout, 5, 10);
        slower.latency_factor = Some(2.0);
        let mut burst = phase(PhaseKind::ErrorBurst, 5, 2);
        burst.errors = [(Code::Unavailable.into(), 0.3)].into();
        let stall = phase(PhaseKind::Stall, 6, 3);
        let p = Phases::new(&[outage, slow, slower, burst, stall], "backend");
        let s = Duration::from_secs;
        assert_eq!(p.at(s(1)).latency_factor, 3.0);
        let six = p.at(s(6));
        assert_eq!(
            (six.latency_factor, six.stall_until, six.outage),
            (6.0, Some(s(9)), None)
        );
        assert_eq!(six.burst, vec![(0.3, Code::Unavailable)]);
        assert_eq!(p.at(s(11)).outage, Some(Code::Internal));
        assert_eq!(
            p.at(s(12)).outage,
            None,
            "phases end before their end instant"
        );
        assert_eq!(p.capacity_factor(s(19)), 0.5);
        assert_eq!(p.capacity_factor(s(20)), 1.0);
        assert_eq!(p.capacity_changes(), vec![s(0), s(20)]);
    }

    #[test]
    fn a_phase_for_another_replica_does_not_apply() {
        let mut outage = phase(PhaseKind::Outage, 0, 10);
        outage.replica = Some("b".into());
        assert_eq!(
            Phases::new(std::slice::from_ref(&outage), "a")
                .at(Duration::from_secs(1))
                .outage,
            None
        );
        assert!(
            Phases::new(&[outage], "b")
                .at(Duration::from_secs(1))
                .outage
                .is_some()
        );
    }
}
