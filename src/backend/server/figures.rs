//! The backend's figures as the `Control` service sends them and as a run reads them back.

use crate::backend::timeline::BackendSecond;
use crate::backend::{BackendStats, ReplicaStats};
use crate::pb;

/// Figures as a `Control` reply carries them (the served plan and the instance are the
/// service's to add).
pub(super) fn to_pb(s: BackendStats) -> pb::BackendStats {
    pb::BackendStats {
        received: s.received,
        executed: s.executed,
        rejected: s.rejected,
        queue_high_water: s.queue_high_water,
        wasted: s.wasted,
        duplicate_side_effects: s.duplicate_side_effects,
        replicas: s
            .replicas
            .into_iter()
            .map(|r| pb::ReplicaStats {
                name: r.name,
                received: r.received,
                executed: r.executed,
                rejected: r.rejected,
                wasted: r.wasted,
            })
            .collect(),
        timeline: s
            .timeline
            .into_iter()
            .map(|r| pb::BackendSecond {
                t: r.t,
                received: r.received,
                executed: r.executed,
                rejected: r.rejected,
                queue_max: r.queue_max,
                in_service_max: r.in_service_max,
            })
            .collect(),
        served_json: String::new(),
        instance: 0,
        refused_at_limit: s.refused_at_limit,
    }
}

/// Converts figures received from a `Control` call.
pub fn from_pb(s: pb::BackendStats) -> BackendStats {
    BackendStats {
        received: s.received,
        executed: s.executed,
        rejected: s.rejected,
        wasted: s.wasted,
        duplicate_side_effects: s.duplicate_side_effects,
        queue_high_water: s.queue_high_water,
        replicas: s
            .replicas
            .into_iter()
            .map(|r| ReplicaStats {
                name: r.name,
                received: r.received,
                executed: r.executed,
                rejected: r.rejected,
                wasted: r.wasted,
            })
            .collect(),
        timeline: s
            .timeline
            .into_iter()
            .map(|r| BackendSecond {
                t: r.t,
                received: r.received,
                executed: r.executed,
                rejected: r.rejected,
                queue_max: r.queue_max,
                in_service_max: r.in_service_max,
            })
            .collect(),
        // A server that says nothing (an older build) says nothing here either.
        served: serde_json::from_str(&s.served_json).ok(),
        refused_at_limit: s.refused_at_limit,
    }
}
