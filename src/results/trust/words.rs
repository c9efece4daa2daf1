//! The words a run's readers get for what its figures lack: backend figures unknown and why,
//! streams the server never processed, streams that waited for a slot under the server's
//! limit, calls that all failed UNIMPLEMENTED, and whose lag it is.

use super::{BackendGap, LAG_P99_LIMIT_MS};
use crate::results::{StrategyResult, TimerFloor};

/// Which strategies have no backend figures and why, in one sentence for the readers (the
/// summary under its table, the report under its tables), or none when every strategy has
/// them: figures only the backend can know are never made up, and a reader must not take a
/// "–" for a zero.
pub fn backend_unknown(strategies: &[StrategyResult]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let names = |gaps: &[Option<BackendGap>]| -> Vec<&str> {
        strategies
            .iter()
            .filter(|s| s.backend.is_none() && gaps.contains(&s.backend_gap))
            .map(|s| s.name.as_str())
            .collect()
    };
    let all = |n: &[&str]| n.len() == strategies.len();
    let who = |n: &[&str]| {
        if all(n) {
            String::new()
        } else {
            format!(" (for {})", n.join(", "))
        }
    };
    let no_control = names(&[Some(BackendGap::NoControl), None]);
    if !no_control.is_empty() {
        parts.push(format!(
            "the target does not report what it received{}: it has no Control service, so \
             attempts received and executed, backend amplification, wasted work and duplicate \
             side effects are unknown (– here, null in results.json)",
            who(&no_control)
        ));
    }
    let not_asked = names(&[Some(BackendGap::NotAsked)]);
    if !not_asked.is_empty() {
        parts.push(format!(
            "the target is your own service{}: resilbench sends it nothing but the calls, so \
             what it received and executed, backend amplification, wasted work and duplicate \
             side effects are unknown (– here, null in results.json); `resilbench proxy` in \
             front of it, with target.control = true, counts them (docs/proxy.md)",
            who(&not_asked)
        ));
    }
    let shared = names(&[Some(BackendGap::Shared)]);
    if !shared.is_empty() {
        parts.push(
            "the strategies ran interleaved against one backend, so what it received is the \
             run's, not one strategy's (the warnings give the run's totals)"
                .into(),
        );
    }
    let other = names(&[
        Some(BackendGap::Unreachable),
        Some(BackendGap::Lost),
        Some(BackendGap::Interrupted),
    ]);
    if !other.is_empty() {
        parts.push(format!(
            "the target reported nothing{} (see the warnings)",
            who(&other)
        ));
    }
    if parts.is_empty() {
        return None;
    }
    let mut text = parts.join("; ");
    if let Some(first) = text.get(..1) {
        text.replace_range(..1, &first.to_uppercase());
    }
    Some(format!("{text}."))
}

/// Streams that waited in the client for a slot under the server's limit of concurrent
/// streams, or none: their wait is latency the server did not add, and one connection at its
/// limit makes client and server take turns with whole batches (docs/PERFORMANCE.md, "One
/// connection and two").
pub fn slot_waits(s: &StrategyResult) -> Option<String> {
    let n = s.attempts.slot_waits;
    if n == 0 {
        return None;
    }
    // Per stream opened or waited for: attempts, and the streams sent again inside them.
    let streams = s.attempts.total + s.attempts.transparent;
    let share = 100.0 * n as f64 / streams.max(1) as f64;
    Some(format!(
        "{}: {n} streams ({share:.1}% of them) waited in the client for a free slot: their \
         connection had as many streams open as the server allows \
         (SETTINGS_MAX_CONCURRENT_STREAMS), and their wait is in their attempt latency; more \
         `load.connections` raise the limit (docs/profiles.md)",
        s.name
    ))
}

/// What became of the streams a strategy's server did not process, in a sentence (none if
/// there were none): they explain UNAVAILABLE failures that no application answered.
pub fn not_processed(s: &StrategyResult) -> Option<String> {
    let a = &s.attempts;
    let n = a.not_processed;
    if n.total() == 0 {
        return None;
    }
    let mut how = Vec::new();
    if n.refused > 0 {
        how.push(format!(
            "{} refused with RST_STREAM(REFUSED_STREAM)",
            n.refused
        ));
    }
    if n.goaway > 0 {
        how.push(format!("{} above a GOAWAY's last stream id", n.goaway));
    }
    if n.unsent > 0 {
        how.push(format!(
            "{} never sent before their connection ended",
            n.unsent
        ));
    }
    let failed = n.total().saturating_sub(a.transparent);
    let mut text = format!(
        "{}: the server did not process {} streams ({}): {} were sent again at once \
         (transparent retries, not counted as attempts) and {failed} failed their attempt \
         with UNAVAILABLE without reaching the server's application",
        s.name,
        n.total(),
        how.join(", "),
        a.transparent
    );
    if n.refused > 0 {
        text.push_str(
            "; a gRPC C-core server (grpcio) refuses streams at its max_concurrent_streams even \
             when fewer are open (docs/targets.md, \"Why a server refuses streams\")",
        );
    }
    Some(text)
}

/// The lag warning: whose lateness it is (the generator's, or the machine's floor when the
/// lag is within it), and by how much it moves the latencies (as a share of the e2e p50).
pub(super) fn lag_warning(s: &StrategyResult, timer: Option<&TimerFloor>) -> String {
    let lag = s.generator.lag_ms.p99;
    let head = format!(
        "{}: generator lag p99 was {lag:.2} ms (limit {LAG_P99_LIMIT_MS} ms)",
        s.name
    );
    let cause = match timer {
        Some(t) if lag <= t.lag_floor_ms() => format!(
            "within this machine's floor of {:.2} ms (its wake-ups were {:.2} ms late at p99 \
             over {} calibrated before the run, plus the driver's {} ms quantum): the \
             generator kept its schedule as closely as this machine can wake it",
            t.lag_floor_ms(),
            t.wake_overshoot_ms.p99,
            t.samples,
            t.wake_quantum_ms
        ),
        Some(t) => format!(
            "the load generator fell behind its schedule (this machine's own floor is {:.2} ms: \
             wake-ups {:.2} ms late at p99 plus the driver's {} ms quantum)",
            t.lag_floor_ms(),
            t.wake_overshoot_ms.p99,
            t.wake_quantum_ms
        ),
        None => "the load generator fell behind its schedule".to_string(),
    };
    let share = s
        .latency_ms
        .e2e
        .as_ref()
        .filter(|e| e.p50 > 0.0)
        .map_or(String::new(), |e| {
            format!(
                "; the lag p99 is {:.0}% of the e2e p50 ({:.2} ms)",
                100.0 * lag / e.p50,
                e.p50
            )
        });
    format!("{head}: {cause}{share}")
}

/// A strategy whose every call ended UNIMPLEMENTED measured no strategy: the target does not
/// serve the method called (a wrong address, service, method or package), and nothing of the
/// run is about retries. Said, so that a 0% success is not read as the service's.
pub(super) fn all_unimplemented(s: &StrategyResult) -> Option<String> {
    let calls: u64 = s.status.values().sum();
    let unimplemented = s.status.get("UNIMPLEMENTED").copied().unwrap_or(0);
    (calls > 0 && unimplemented == calls).then(|| {
        format!(
            "{}: every call ({calls}) failed UNIMPLEMENTED: the target does not serve the \
             method called (check the address, and the package, service and method names); \
             these figures say nothing of the strategy",
            s.name
        )
    })
}
