//! What kind of number each figure is, and so which sampling model judges it: the one place
//! that says so.
//!
//! | kind | figures | model |
//! |---|---|---|
//! | share of the calls | `success_rate`, `failure_rate`, `drop_rate`, `goodput.*`, `counts.{succeeded,failed,dropped,unfinished}`, `status.*`, `attempts.per_call.*`, `latency_ms.{e2e,e2e_ok}.count` | binomial on the calls, or per second where the timeline counts it |
//! | attempts per call | `amplification.*`, `attempts.total`, `backend.{received,executed}`, `latency_ms.attempt.count` | the spread of attempts per call, or per second |
//! | events | `backend.rejected`, `backend.duplicate_side_effects`, `backend.wasted…` and other counts a newer build adds under `backend`, `attempts.{retries,hedges,…}`, `attempts.status.*`, `breaker.{short_circuited,fallback,opened}`, `stream.*`, `fan_out.sub_calls`, `fan_out.status.*` | Poisson per call offered, or per second where the timeline counts it |
//! | latency quantile | `latency_ms.*.{p50,p90,p99,p999}`, `fan_out.latency_ms.*` of those | the quantile's confidence interval from the full histogram |
//! | no model | gauges (`backend.queue_high_water`, `generator.*`), what the schedule fixes (`counts.offered`, `counts.sent`, `duration_s`), `max`, `mean`, timelines and anything else | none: the relative threshold alone |
//!
//! A count near the number of calls is a share, never a Poisson count: 99,000 successes of
//! 100,000 calls vary like the 1,000 failures, not like 99,000 rare events. A count of events
//! is a rate per call offered, so that a run that happened to be offered 2% more calls (Poisson
//! arrivals) does not look 2% worse.

use super::seconds::{Column, Per};

/// How a figure's value is put on the scale its model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The value as it is (already a share or a per-call figure).
    AsIs,
    /// A count: divided by the calls offered.
    PerOffered,
    /// A count: divided by the calls sent.
    PerSent,
    /// Goodput per second: the model reads the strategy's `goodput.fraction` instead.
    GoodputFraction,
}

/// Which histogram a quantile is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Histogram {
    /// Every completed call.
    E2e,
    /// Successful calls.
    E2eOk,
    /// Every attempt.
    Attempt,
    /// Fan-out sub-calls.
    SubCall,
}

/// The sampling model of a figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// A share of the calls offered (or sent); `column`: the timeline's count of it per second.
    Share {
        /// How the value becomes a share.
        scale: Scale,
        /// Its per-second column, if the timeline has one.
        column: Option<Column>,
    },
    /// Attempts per call sent; `column`: the timeline's count of them per second.
    Attempts {
        /// How the value becomes attempts per call.
        scale: Scale,
        /// Its per-second column.
        column: Column,
    },
    /// A count of events, per call offered.
    Events {
        /// Its per-second column, if a timeline has one.
        column: Option<Column>,
    },
    /// A latency quantile.
    Quantile {
        /// Its histogram.
        of: Histogram,
        /// The quantile, 0 to 1.
        q: f64,
    },
    /// No sampling model.
    None,
}

impl Model {
    /// What a share's or an event count's rate is per.
    pub fn per(scale: Scale) -> Per {
        if scale == Scale::PerSent {
            Per::Sent
        } else {
            Per::Offered
        }
    }
}

/// The model of `figure` (a name as [`crate::figure`] resolves it).
pub fn model(figure: &str) -> Model {
    use Column::*;
    let share = |scale, column| Model::Share { scale, column };
    let attempts = |scale, column| Model::Attempts { scale, column };
    let events = |column| Model::Events { column };
    let (head, rest) = figure.split_once('.').unwrap_or((figure, ""));
    match (head, rest) {
        ("success_rate", "") => share(Scale::AsIs, Some(Succeeded)),
        ("failure_rate", "") => share(Scale::AsIs, Some(Failed)),
        ("drop_rate", "") => share(Scale::AsIs, Some(Dropped)),
        ("goodput", "fraction") => share(Scale::AsIs, Some(Succeeded)),
        ("goodput", "per_second") => share(Scale::GoodputFraction, Some(Succeeded)),
        ("counts", "succeeded") => share(Scale::PerOffered, Some(Succeeded)),
        ("counts", "failed") => share(Scale::PerOffered, Some(Failed)),
        ("counts", "dropped") => share(Scale::PerOffered, Some(Dropped)),
        ("counts", "unfinished") => share(Scale::PerOffered, None),
        ("status", "OK") => share(Scale::PerOffered, Some(Succeeded)),
        ("status", _) => share(Scale::PerOffered, None),
        ("amplification", "client") => attempts(Scale::AsIs, Attempts),
        ("amplification", "backend") => attempts(Scale::AsIs, Received),
        ("attempts", "total") => attempts(Scale::PerSent, Attempts),
        ("attempts", r) if r.starts_with("per_call.") => share(Scale::PerSent, None),
        ("attempts", _) => events(None),
        ("backend", "received") => attempts(Scale::PerSent, Received),
        ("backend", "executed") => attempts(Scale::PerSent, Executed),
        ("backend", "rejected") => events(Some(Rejected)),
        ("backend", "queue_high_water") => Model::None,
        ("backend", r)
            if ["replicas", "timeline", "served"]
                .iter()
                .any(|p| r.starts_with(p)) =>
        {
            Model::None
        }
        ("backend", _) => events(None),
        ("breaker", "short_circuited" | "fallback" | "opened") => events(None),
        ("stream", _) => events(None),
        ("fan_out", "sub_calls") => events(None),
        ("fan_out", r) if r.starts_with("status.") => events(None),
        ("fan_out", r) => match r.strip_prefix("latency_ms.").and_then(quantile) {
            Some(q) => Model::Quantile {
                of: Histogram::SubCall,
                q,
            },
            None => Model::None,
        },
        ("latency_ms", r) => {
            let (which, stat) = r.split_once('.').unwrap_or((r, ""));
            let of = match which {
                "e2e" => Histogram::E2e,
                "e2e_ok" => Histogram::E2eOk,
                "attempt" => Histogram::Attempt,
                _ => return Model::None,
            };
            match (of, stat) {
                (Histogram::E2eOk, "count") => share(Scale::PerOffered, Some(Succeeded)),
                (Histogram::E2e, "count") => share(Scale::PerOffered, None),
                (Histogram::Attempt, "count") => attempts(Scale::PerSent, Attempts),
                _ => quantile(stat).map_or(Model::None, |q| Model::Quantile { of, q }),
            }
        }
        _ => Model::None,
    }
}

/// The quantile a latency statistic names (`p99` → 0.99).
fn quantile(stat: &str) -> Option<f64> {
    match stat {
        "p50" => Some(0.5),
        "p90" => Some(0.9),
        "p99" => Some(0.99),
        "p999" => Some(0.999),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_near_the_calls_are_shares_and_gauges_have_no_model() {
        assert!(matches!(model("counts.succeeded"), Model::Share { .. }));
        assert!(matches!(model("status.OK"), Model::Share { .. }));
        assert!(matches!(model("status.UNAVAILABLE"), Model::Share { .. }));
        assert!(matches!(model("attempts.per_call.2"), Model::Share { .. }));
        assert!(matches!(model("backend.received"), Model::Attempts { .. }));
        assert!(matches!(
            model("amplification.backend"),
            Model::Attempts { .. }
        ));
        assert_eq!(model("backend.queue_high_water"), Model::None);
        assert_eq!(model("generator.lag_ms.p99"), Model::None);
        assert_eq!(model("counts.offered"), Model::None);
        assert_eq!(model("latency_ms.e2e.max"), Model::None);
        assert_eq!(model("backend.timeline.3.received"), Model::None);
        assert_eq!(
            model("backend.duplicate_side_effects"),
            Model::Events { column: None }
        );
        assert_eq!(model("backend.wasted"), Model::Events { column: None });
        assert_eq!(
            model("latency_ms.e2e_ok.p999"),
            Model::Quantile {
                of: Histogram::E2eOk,
                q: 0.999
            }
        );
        assert_eq!(
            model("fan_out.latency_ms.p99"),
            Model::Quantile {
                of: Histogram::SubCall,
                q: 0.99
            }
        );
    }
}
