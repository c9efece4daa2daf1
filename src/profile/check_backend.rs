//! Checks of `[backend]` and `[[phases]]`. Status codes were checked as they were read
//! ([`super::codes`]); what is left is where OK makes no sense, probabilities, and the
//! settings that only make sense together.

use std::collections::{BTreeMap, HashSet};

use super::backend::{BackendPlan, LostFail, StreamPlan};
use super::error::Num;
use super::phases::{PhaseKind, PhasePlan};
use super::validate::{Invalid, MAX_REPLICAS, check_probability, invalid};
use crate::profile::latency::Latency;
use crate::protocol::StatusCode;

/// The status at `field` must be a failure.
fn not_ok(field: &str, code: StatusCode) -> Result<(), Invalid> {
    if code == StatusCode::OK {
        return invalid(field, "OK is not an error; list only failure codes");
    }
    Ok(())
}

/// A table of error probabilities: failures only, each a probability, their sum at most 1.
fn error_table(field: &str, table: &BTreeMap<StatusCode, f64>) -> Result<(), Invalid> {
    for (code, p) in table {
        let f = format!("{field}.{code}");
        not_ok(&f, *code)?;
        check_probability(&f, *p)?;
    }
    let total: f64 = table.values().sum();
    if total > 1.0 + 1e-9 {
        return invalid(
            field,
            format!("the error probabilities add up to {total}, more than 1"),
        );
    }
    Ok(())
}

fn latency(field: &str, l: &Latency) -> Result<(), Invalid> {
    l.validate()
        .or_else(|(f, m)| invalid(&format!("{field}.{f}"), m))
}

/// Reads what the backend takes from recorded runs: every measured latency's histogram and
/// `errors_from`'s error mix, paths relative to `base` (the profile's folder). Returns what
/// the user must be told of them (a source strategy marked partial), one sentence each
/// beginning with the field.
pub fn read_measured(b: &mut BackendPlan, base: &std::path::Path) -> Result<Vec<String>, Invalid> {
    let mut caveats = Vec::new();
    let mut read = |field: &str, l: &mut Latency| {
        let mut said = Vec::new();
        let read = l
            .read_measured(base, &mut said)
            .or_else(|(f, m)| invalid(&format!("{field}.{f}"), m));
        caveats.extend(said.into_iter().map(|c| format!("{field}: {c}")));
        read
    };
    read("backend.latency", &mut b.latency)?;
    for (code, l) in b.latency_by_status.iter_mut() {
        read(&format!("backend.latency_by_status.{code}"), l)?;
    }
    for (i, s) in b.scripts.iter_mut().enumerate() {
        for (j, step) in s.steps.iter_mut().enumerate() {
            if let Some(l) = &mut step.latency {
                read(&format!("backend.scripts[{i}].steps[{j}].latency"), l)?;
            }
        }
    }
    read("backend.stream.interval", &mut b.stream.interval)?;
    for (i, r) in b.replicas.iter_mut().enumerate() {
        if let Some(l) = &mut r.latency {
            read(&format!("backend.replicas[{i}].latency"), l)?;
        }
    }
    if let Some(from) = &b.errors_from {
        if !b.errors.is_empty() {
            return invalid(
                "backend.errors_from",
                "set `errors` or `errors_from`, not both (errors_from fills errors)",
            );
        }
        let mut said = Vec::new();
        b.errors = from
            .error_mix(base, &mut said)
            .or_else(|(f, m)| invalid(&format!("backend.errors_from.{f}"), m))?;
        caveats.extend(
            said.into_iter()
                .map(|c| format!("backend.errors_from: {c}")),
        );
    }
    Ok(caveats)
}

/// Checks the backend.
pub fn backend(b: &mut BackendPlan) -> Result<(), Invalid> {
    latency("backend.latency", &b.latency)?;
    error_table("backend.errors", &b.errors)?;
    for (code, l) in &b.latency_by_status {
        latency(&format!("backend.latency_by_status.{code}"), l)?;
    }
    if b.workers == Some(0) {
        return invalid(
            "backend.workers",
            "must be at least 1 (omit it for unlimited)",
        );
    }
    if b.queue.is_some() && b.workers.is_none() {
        return invalid(
            "backend.queue",
            "a queue needs a worker limit: set backend.workers too",
        );
    }
    if let Some(p) = &b.pushback {
        if p.fixed.is_some() == p.per_queued.is_some() {
            return invalid(
                "backend.pushback",
                "set exactly one of `fixed` or `per_queued`",
            );
        }
        if b.workers.is_none() && b.quota.is_none_or(|q| !q.pushback) {
            return invalid(
                "backend.pushback",
                "pushback is sent when the queue is full: set backend.workers",
            );
        }
    }
    if let Some(q) = &b.quota {
        if !(q.rate.is_finite() && (0.001..=1e9).contains(&q.rate)) {
            return invalid(
                "backend.quota.rate",
                format!(
                    "expected requests per second from 0.001 to 1e9, got {}",
                    Num(q.rate)
                ),
            );
        }
        if q.burst == 0 {
            return invalid("backend.quota.burst", "must be at least 1");
        }
    }
    for (i, s) in b.scripts.iter_mut().enumerate() {
        let field = format!("backend.scripts[{i}]");
        if s.ids.is_empty() && s.every.is_none() {
            return invalid(&field, "name the requests: `ids = [...]` or `every = N`");
        }
        if s.every == Some(0) {
            return invalid(&format!("{field}.every"), "must be at least 1");
        }
        if s.steps.is_empty() {
            return invalid(
                &format!("{field}.steps"),
                "a script needs at least one step",
            );
        }
        for (j, step) in s.steps.iter_mut().enumerate() {
            let f = format!("{field}.steps[{j}]");
            if let Some(l) = &step.latency {
                latency(&format!("{f}.latency"), l)?;
            }
            if step.pushback.as_ref().is_some_and(|p| p.is_empty()) {
                return invalid(
                    &format!("{f}.pushback"),
                    "an empty list sends no pushback: write one value or more, or leave it out",
                );
            }
        }
    }
    let m = &mut b.mutation;
    if let Some(lost) = &mut m.lost_response {
        check_probability("backend.mutation.lost_response.rate", lost.rate)?;
        if let LostFail::Status(code) = lost.fail {
            not_ok("backend.mutation.lost_response.fail", code)?;
        }
    }
    if m.dedup && (m.dedup_ttl.is_zero() || m.dedup_capacity == 0) {
        return invalid(
            "backend.mutation",
            "with dedup, dedup_ttl and dedup_capacity must be above 0",
        );
    }
    stream(&mut b.stream)?;
    if b.replicas.len() > MAX_REPLICAS {
        return invalid(
            "backend.replicas",
            format!("at most {MAX_REPLICAS} replicas, got {}", b.replicas.len()),
        );
    }
    let mut names = HashSet::new();
    let base_workers = b.workers;
    for (i, r) in b.replicas.iter_mut().enumerate() {
        let field = format!("backend.replicas[{i}]");
        if r.name.trim().is_empty() || !names.insert(r.name.clone()) {
            return invalid(
                &format!("{field}.name"),
                "replica names must be unique and not empty",
            );
        }
        if let Some(l) = &r.latency {
            latency(&format!("{field}.latency"), l)?;
        }
        if let Some(e) = &r.errors {
            error_table(&format!("{field}.errors"), e)?;
        }
        if r.workers == Some(0) {
            return invalid(&format!("{field}.workers"), "must be at least 1");
        }
        if r.queue.is_some() && r.workers.or(base_workers).is_none() {
            return invalid(
                &format!("{field}.queue"),
                "a queue needs a worker limit: set workers too",
            );
        }
    }
    Ok(())
}

fn stream(s: &mut StreamPlan) -> Result<(), Invalid> {
    if s.messages == 0 {
        return invalid(
            "backend.stream.messages",
            "a stream sends at least one message",
        );
    }
    latency("backend.stream.interval", &s.interval)?;
    if let Some(f) = &mut s.fail_before_first {
        check_probability("backend.stream.fail_before_first.rate", f.rate)?;
        not_ok("backend.stream.fail_before_first.status", f.status)?;
    }
    if let Some(f) = &mut s.fail_after {
        check_probability("backend.stream.fail_after.rate", f.rate)?;
        not_ok("backend.stream.fail_after.status", f.status)?;
        if f.message == 0 || f.message >= s.messages {
            return invalid(
                "backend.stream.fail_after.message",
                format!(
                    "expected a message from 1 to {} (the last message ends the stream)",
                    s.messages - 1
                ),
            );
        }
    }
    Ok(())
}

/// Checks the phases against the backend's replicas; an outage without a status fails
/// UNAVAILABLE.
pub fn phases(phases: &mut [PhasePlan], backend: &BackendPlan) -> Result<(), Invalid> {
    for (i, p) in phases.iter_mut().enumerate() {
        let field = format!("phases[{i}]");
        let f = |k: &str| format!("{field}.{k}");
        if p.duration.is_zero() {
            return invalid(&f("duration"), "must be above 0");
        }
        if let Some(r) = &p.replica {
            if p.kind == PhaseKind::LoadSpike {
                return invalid(
                    &f("replica"),
                    "a load spike acts on the driver, not on a replica",
                );
            }
            if !backend.replicas.iter().any(|x| &x.name == r) {
                let known: Vec<_> = backend.replicas.iter().map(|x| x.name.as_str()).collect();
                return invalid(
                    &f("replica"),
                    format!(
                        "no replica is called `{r}` (replicas: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
        let given = [
            ("status", p.status.is_some(), PhaseKind::Outage),
            (
                "latency_factor",
                p.latency_factor.is_some(),
                PhaseKind::Brownout,
            ),
            (
                "capacity_factor",
                p.capacity_factor.is_some(),
                PhaseKind::Brownout,
            ),
            ("errors", !p.errors.is_empty(), PhaseKind::ErrorBurst),
            ("factor", p.factor.is_some(), PhaseKind::LoadSpike),
        ];
        for (key, present, owner) in given {
            if present && p.kind != owner {
                return invalid(
                    &f(key),
                    format!("only {} phases take `{key}`", kind_name(owner)),
                );
            }
        }
        match p.kind {
            PhaseKind::Outage => {
                let status = p.status.unwrap_or(StatusCode::UNAVAILABLE);
                not_ok(&f("status"), status)?;
                p.status = Some(status);
            }
            PhaseKind::Brownout => {
                if p.latency_factor.is_none() && p.capacity_factor.is_none() {
                    return invalid(
                        &field,
                        "a brownout needs latency_factor, capacity_factor or both",
                    );
                }
                if let Some(k) = p.latency_factor
                    && !(k.is_finite() && k > 0.0 && k <= 1000.0)
                {
                    return invalid(
                        &f("latency_factor"),
                        format!(
                            "expected a multiplier above 0 and at most 1000, got {}",
                            Num(k)
                        ),
                    );
                }
                if let Some(k) = p.capacity_factor
                    && !(k > 0.0 && k <= 1.0)
                {
                    return invalid(
                        &f("capacity_factor"),
                        format!("expected a fraction in (0, 1], got {}", Num(k)),
                    );
                }
            }
            PhaseKind::Stall => {}
            PhaseKind::ErrorBurst => {
                if p.errors.is_empty() {
                    return invalid(
                        &f("errors"),
                        "an error burst needs errors = { STATUS = probability }",
                    );
                }
                error_table(&f("errors"), &p.errors)?;
            }
            PhaseKind::LoadSpike => match p.factor {
                Some(k) if k.is_finite() && k > 0.0 && k <= 1000.0 => {}
                Some(k) => {
                    return invalid(
                        &f("factor"),
                        format!(
                            "expected a multiplier above 0 and at most 1000, got {}",
                            Num(k)
                        ),
                    );
                }
                None => return invalid(&f("factor"), "a load spike needs a factor"),
            },
        }
    }
    Ok(())
}

fn kind_name(kind: PhaseKind) -> &'static str {
    match kind {
        PhaseKind::Outage => "outage",
        PhaseKind::Brownout => "brownout",
        PhaseKind::Stall => "stall",
        PhaseKind::ErrorBurst => "error_burst",
        PhaseKind::LoadSpike => "load_spike",
    }
}
