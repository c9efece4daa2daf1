//! Client flavors in virtual time: each departure of a gRPC library from gRFC A6, reproduced
//! by its flavor alone, on the scripted scenario the client-flavors issue measured against the
//! real library (docs/strategies.md, "Client flavors", names the source line of each).
//!
//! Every scenario runs the profile's own backend (its `[[backend.scripts]]`: a status, a
//! latency and raw `grpc-retry-pushback-ms` values per attempt), so the pushback text is read
//! as a client reads it off the wire.
//!
//! - `retry`: backoff jitter, the throttle's bookkeeping and when it is read;
//! - `pushback`: how each library reads `grpc-retry-pushback-ms`;
//! - `hedge`: hedging timers, and the libraries without hedging.

mod hedge;
mod pushback;
mod retry;

use std::time::Duration;

use resilbench::strategy::retry::grpc::jitter_draw;
use tonic::Code;

use crate::common::scripted::{Run, SEED, drive_backend};

const ALONE: [(u64, Duration); 1] = [(0, Duration::ZERO)];

/// A service config with a retry policy (maxAttempts 5, 0.1 s × 2 up to 1 s, UNAVAILABLE),
/// with `throttling` (JSON, or empty).
fn retry_config(throttling: &str) -> String {
    let throttle = if throttling.is_empty() {
        String::new()
    } else {
        format!(r#", "retryThrottling": {throttling}"#)
    };
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "resilbench.v1.Backend"}}],
        "retryPolicy": {{"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "1s",
          "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}}}]{throttle}}}"#
    )
}

/// A service config with a hedging policy: 3 attempts, `delay` apart, UNAVAILABLE non-fatal.
fn hedge_config(delay: &str, throttling: &str) -> String {
    let throttle = if throttling.is_empty() {
        String::new()
    } else {
        format!(r#", "retryThrottling": {throttling}"#)
    };
    format!(
        r#"{{"methodConfig": [{{"name": [{{"service": "resilbench.v1.Backend"}}],
        "hedgingPolicy": {{"maxAttempts": 3, "hedgingDelay": "{delay}",
          "nonFatalStatusCodes": ["UNAVAILABLE"]}}}}]{throttle}}}"#
    )
}

/// A profile with one strategy per client in `clients`, each with `config`, against a 1 ms
/// backend with `backend` (its scripts), calls' deadline 10 s.
fn profile(config: &str, backend: &str, clients: &[&str]) -> String {
    let mut text = format!(
        "seed = {SEED}\n[load]\nrate = 1\nduration = \"10s\"\ndeadline = \"10s\"\n\
         [backend]\nlatency = \"1ms\"\n{backend}\n"
    );
    for c in clients {
        text.push_str(&format!(
            "[[strategies]]\nname = \"{c}\"\nclient = \"{c}\"\nservice_config = '''{config}'''\n"
        ));
    }
    text
}

/// Drives each of `clients` through the same scenario.
fn each(config: &str, backend: &str, clients: &[&str], calls: &[(u64, Duration)]) -> Vec<Run> {
    let text = profile(config, backend, clients);
    (0..clients.len())
        .map(|i| drive_backend(&text, i, calls))
        .collect()
}

fn end(run: &Run, id: u64) -> (Code, Duration) {
    let e = run.ended(id);
    (e.code, e.at)
}

/// A grpc-js wait as Node's `setTimeout` waits it: truncated to whole milliseconds, at least 1.
fn node(wait: Duration) -> Duration {
    Duration::from_millis((wait.as_millis() as u64).max(1))
}

/// The wait of retry `n` (from 1) of call `id`: `base × (low + span × u)`, u its keyed draw.
fn jittered(id: u64, n: u32, base: f64, low: f64, span: f64) -> Duration {
    Duration::from_secs_f64(base * (low + span * jitter_draw(SEED, id, n)))
}
