//! From [`Profile`] to [`Plan`]: defaults, resolution, and every check parsing cannot make.
//!
//! Checks run on the plan after command-line overrides are applied, so `--rate 0` is refused
//! exactly like `rate = 0` in the file. Each failed check names the field it concerns; the
//! caller turns that into a file position (or a flag).

use std::collections::HashSet;
use std::time::Duration;

use super::check_backend;
use super::check_layers;
use super::error::FieldPath;
use super::error::Num;
use super::plan::{Arrival, LoadPlan, Plan, RateStep, StrategyPlan};
use super::schema::Profile;

/// Highest offered rate accepted: far beyond what one process can send, low enough that the
/// schedule's arithmetic stays exact.
pub const MAX_RATE: f64 = 10_000_000.0;

/// Most strategies in one profile.
pub const MAX_STRATEGIES: usize = 100;

/// Longest strategy name (it appears in tables, charts and file names).
pub const MAX_NAME: usize = 64;

/// Most layers in one strategy's stack (real stacks have a handful).
pub const MAX_LAYERS: usize = 32;

/// Lowest offered rate accepted (one call every 1,000 s).
pub const MIN_RATE: f64 = 0.001;

/// Largest request payload: gRPC's default message limit is 4 MiB, framing included.
pub const MAX_PAYLOAD: u32 = crate::protocol::message::MAX_MESSAGE as u32 - 1024;

/// Longest `load.wake_quantum`: every call may leave up to this much late.
pub const MAX_WAKE_QUANTUM: Duration = Duration::from_millis(10);

/// Longest `load.cooldown` (or `--cooldown`).
pub const MAX_COOLDOWN: Duration = Duration::from_secs(3600);

/// Most HTTP/2 connections per replica (`load.connections`).
pub const MAX_CONNECTIONS: u32 = 64;

/// Most replicas (`[[backend.replicas]]`): each has its own backend, its own figures and, on a
/// real clock, its own connections.
pub const MAX_REPLICAS: usize = 256;

/// Most HTTP/2 connections a run opens (replicas × `load.connections`): each is a socket, and
/// a process's default limit on open files is 1,024.
pub const MAX_TOTAL_CONNECTIONS: usize = 1024;

/// A failed check: the field and the message.
pub type Invalid = (FieldPath, String);

pub(super) fn invalid<T>(field: &str, message: impl Into<String>) -> Result<T, Invalid> {
    Err((FieldPath::parse(field), message.into()))
}

/// Values given on the command line that replace the profile's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--rate`.
    pub rate: Option<f64>,
    /// `--seed`.
    pub seed: Option<u64>,
}

impl Overrides {
    /// Every override given, as the flags were written.
    pub fn flags(&self) -> Vec<String> {
        [
            self.duration
                .map(|d| format!("--duration {}", super::duration::format(d))),
            self.rate.map(|r| format!("--rate {r}")),
            self.seed.map(|s| format!("--seed {s}")),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The flag that supplied the value at `field`, if one did.
    pub fn flag_for(&self, field: &FieldPath) -> Option<String> {
        match field.to_string().as_str() {
            "load.duration" => self
                .duration
                .map(|d| format!("--duration {}", super::duration::format(d))),
            "load.rate" => self.rate.map(|r| format!("--rate {r}")),
            "seed" => self.seed.map(|s| format!("--seed {s}")),
            _ => None,
        }
    }
}

/// Resolves defaults, applies overrides and checks every value.
pub fn resolve(
    profile: Profile,
    default_name: &str,
    overrides: &Overrides,
    base: &std::path::Path,
) -> Result<Plan, Invalid> {
    let load = profile.load;
    let load_wake_quantum = load.wake_quantum;
    let mut target = profile.target;
    if let Some(t) = &mut target {
        super::settle_target::settle(t, base)?;
        // The method and the request are the target's.
        if load.method.is_some() {
            return invalid(
                "load.method",
                "with [target], the calls use target.method; remove load.method",
            );
        }
        if load.payload_bytes.is_some() {
            return invalid(
                "load.payload_bytes",
                "with [target], the request is target.request; remove load.payload_bytes",
            );
        }
    }
    let mut plan = Plan {
        name: profile.name.unwrap_or_else(|| default_name.to_string()),
        description: profile.description.unwrap_or_default(),
        seed: profile.seed.unwrap_or(1),
        load: LoadPlan {
            arrival: load.arrival.unwrap_or(Arrival::Constant),
            method: load.method.unwrap_or_default(),
            rate: load.rate,
            steps: load
                .steps
                .into_iter()
                .map(|s| RateStep {
                    at: s.at.0,
                    rate: s.rate,
                })
                .collect(),
            duration: load.duration.map_or(Duration::from_secs(10), |d| d.0),
            warmup: load.warmup.map_or(Duration::ZERO, |d| d.0),
            deadline: load.deadline.map_or(Duration::from_secs(1), |d| d.0),
            max_in_flight: load.max_in_flight.unwrap_or(10_000),
            payload_bytes: load.payload_bytes.unwrap_or(0),
            target_may_be_down: load.target_may_be_down.unwrap_or(false),
            connections: load.connections.unwrap_or_else(super::plan::one_connection),
            // Set from the rate below, once `--rate` is applied, unless the profile sets it.
            wake_quantum: load.wake_quantum.map_or(Duration::ZERO, |d| d.0),
            order: load.order.unwrap_or_default(),
            cooldown: load.cooldown,
        },
        backend: profile.backend,
        phases: profile.phases,
        strategies: Vec::new(),
        gate: profile.gate,
        target,
        caveats: Vec::new(),
    };
    let default_deadline = plan.load.deadline;
    let called = {
        let (service, method) = plan.called_method();
        (service.to_string(), method.to_string())
    };
    for (i, s) in profile.strategies.into_iter().enumerate() {
        let mut strategy = StrategyPlan {
            name: s.name,
            description: s.description.unwrap_or_default(),
            deadline: s.deadline.map_or(default_deadline, |d| d.0),
            layers: s.layers,
            propagate_deadline: s.propagate_deadline.unwrap_or(true),
            deadline_margin: s.deadline_margin.map_or(Duration::ZERO, |d| d.0),
            idempotency_keys: s.idempotency_keys.unwrap_or(false),
            client: s.client.unwrap_or_default(),
        };
        if let Some(source) = &s.service_config {
            let field = format!("strategies[{i}].service_config");
            check_layers::apply_service_config(
                &field,
                source,
                &mut strategy,
                (&called.0, &called.1),
                base,
            )?;
        }
        check_layers::layers(&format!("strategies[{i}]"), &mut strategy)?;
        check_layers::client(
            &format!("strategies[{i}]"),
            &strategy,
            s.service_config.is_some(),
        )?;
        plan.strategies.push(strategy);
    }
    if let Some(d) = overrides.duration {
        plan.load.duration = d;
    }
    if let Some(r) = overrides.rate {
        plan.load.rate = r;
    }
    if let Some(s) = overrides.seed {
        plan.seed = s;
    }
    if load_wake_quantum.is_none() {
        plan.load.wake_quantum = super::plan::auto_wake_quantum(&plan.load);
    }
    plan.caveats = check_backend::read_measured(&mut plan.backend, base)?;
    check_backend::backend(&mut plan.backend)?;
    check_backend::phases(&mut plan.phases, &plan.backend)?;
    let sockets = plan.backend.replica_count() * plan.load.connections as usize;
    if sockets > MAX_TOTAL_CONNECTIONS {
        return invalid(
            "load.connections",
            format!(
                "{} connections to each of {} replicas make {sockets}; at most \
                 {MAX_TOTAL_CONNECTIONS} in all",
                plan.load.connections,
                plan.backend.replica_count()
            ),
        );
    }
    check(&plan)?;
    if plan.target.is_some() && plan.backend.replica_count() > 1 {
        return invalid(
            "backend.replicas",
            "[[backend.replicas]] are the embedded backend's; a [target] is one address",
        );
    }
    super::check_target::with_schema(&mut plan)?;
    Ok(plan)
}

pub(super) fn check_probability(field: &str, p: f64) -> Result<(), Invalid> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        invalid(
            field,
            format!("expected a probability between 0 and 1, got {}", Num(p)),
        )
    }
}

fn check_rate(field: &str, rate: f64, allow_zero: bool) -> Result<(), Invalid> {
    let low_ok = (allow_zero && rate == 0.0) || rate >= MIN_RATE;
    if rate.is_finite() && low_ok && rate <= MAX_RATE {
        Ok(())
    } else {
        let floor = if allow_zero {
            "0, or at least"
        } else {
            "at least"
        };
        invalid(
            field,
            format!(
                "expected calls per second: {floor} {MIN_RATE} and at most {MAX_RATE:.0}, got {}",
                Num(rate)
            ),
        )
    }
}

/// Every check of a resolved plan.
pub fn check(plan: &Plan) -> Result<(), Invalid> {
    // Printed on the terminal and in file names: no control characters, as strategy names.
    if plan.name.chars().any(crate::table::is_hostile) {
        return invalid(
            "name",
            "expected printable characters (no control characters, nor the Unicode \
             characters that reorder text)",
        );
    }
    let load = &plan.load;
    check_rate("load.rate", load.rate, false)?;
    if load.duration.is_zero() {
        return invalid("load.duration", "must be above 0");
    }
    if load.warmup >= load.duration {
        return invalid(
            "load.warmup",
            format!(
                "must be shorter than load.duration ({}), got {}",
                super::duration::format(load.duration),
                super::duration::format(load.warmup)
            ),
        );
    }
    if load.deadline.is_zero() {
        return invalid("load.deadline", "must be above 0");
    }
    if load.max_in_flight == 0 {
        return invalid("load.max_in_flight", "must be at least 1");
    }
    if !(1..=MAX_CONNECTIONS).contains(&load.connections) {
        return invalid(
            "load.connections",
            format!("from 1 to {MAX_CONNECTIONS}, got {}", load.connections),
        );
    }
    if load.wake_quantum > MAX_WAKE_QUANTUM {
        return invalid(
            "load.wake_quantum",
            format!(
                "from 0s to {} (each call up to this much late), got {}",
                super::duration::format(MAX_WAKE_QUANTUM),
                super::duration::format(load.wake_quantum)
            ),
        );
    }
    if let Some(c) = load.cooldown
        && c.0 > MAX_COOLDOWN
    {
        return invalid(
            "load.cooldown",
            format!(
                "at most {}, got {}",
                super::duration::format(MAX_COOLDOWN),
                super::duration::format(c.0)
            ),
        );
    }
    if load.payload_bytes > MAX_PAYLOAD {
        return invalid(
            "load.payload_bytes",
            format!(
                "at most {MAX_PAYLOAD} (gRPC's 4 MiB message limit), got {}",
                load.payload_bytes
            ),
        );
    }
    let mut previous = Duration::ZERO;
    for (i, step) in load.steps.iter().enumerate() {
        let field = format!("load.steps[{i}]");
        check_rate(&format!("{field}.rate"), step.rate, true)?;
        if step.at.is_zero() || (i > 0 && step.at <= previous) {
            return invalid(
                &format!("{field}.at"),
                "steps must be above 0 and in increasing order of `at`",
            );
        }
        if step.at >= load.duration {
            return invalid(&format!("{field}.at"), "must fall inside load.duration");
        }
        previous = step.at;
    }
    for (at, rate) in load.segments(&plan.phases) {
        if rate > MAX_RATE {
            return invalid(
                "phases",
                format!(
                    "the offered rate reaches {rate:.0} calls/s at {} (steps × load spikes), above {MAX_RATE:.0}",
                    super::duration::format(at)
                ),
            );
        }
    }
    check_strategies(&plan.strategies)?;
    if let Some(gate) = &plan.gate {
        let names: Vec<&str> = plan.strategies.iter().map(|s| s.name.as_str()).collect();
        super::gate::check(gate, Some(&names))?;
    }
    Ok(())
}

fn check_strategies(strategies: &[StrategyPlan]) -> Result<(), Invalid> {
    if strategies.is_empty() {
        return invalid(
            "strategies",
            "the profile defines no strategy; add at least one [[strategies]] with a name",
        );
    }
    if strategies.len() > MAX_STRATEGIES {
        return invalid(
            "strategies",
            format!(
                "at most {MAX_STRATEGIES} strategies, got {}",
                strategies.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for (i, s) in strategies.iter().enumerate() {
        let field = format!("strategies[{i}]");
        if s.name.trim().is_empty()
            || s.name.chars().count() > MAX_NAME
            || s.name.chars().any(crate::table::is_hostile)
        {
            return invalid(
                &format!("{field}.name"),
                format!("expected a name of 1 to {MAX_NAME} printable characters"),
            );
        }
        if !seen.insert(s.name.as_str()) {
            return invalid(
                &format!("{field}.name"),
                format!(
                    "`{}` is used by an earlier strategy; names must be unique",
                    s.name
                ),
            );
        }
        if s.deadline.is_zero() {
            return invalid(&format!("{field}.deadline"), "must be above 0");
        }
        if !s.propagate_deadline && !s.deadline_margin.is_zero() {
            return invalid(
                &format!("{field}.deadline_margin"),
                "needs propagate_deadline = true (the margin shortens the deadline sent)",
            );
        }
        if s.deadline_margin >= s.deadline {
            return invalid(
                &format!("{field}.deadline_margin"),
                format!(
                    "must be shorter than the call deadline ({})",
                    humantime::format_duration(s.deadline)
                ),
            );
        }
        if s.layers.len() > MAX_LAYERS {
            return invalid(
                &format!("{field}.layers"),
                format!("at most {MAX_LAYERS} layers, got {}", s.layers.len()),
            );
        }
    }
    Ok(())
}
