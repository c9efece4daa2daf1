//! resilbench: an open-loop gRPC load generator that measures client resilience strategies.
//!
//! It sends a fixed, open-loop schedule of calls through several strategies (retries, hedging,
//! breakers, budgets, deadlines), one after another, against the same degradable backend, records
//! every attempt, and reports per strategy: tail latency, success and goodput, and amplification.
//!
//! # How the parts fit
//!
//! ```text
//! profile.toml ──[profile]──▶ Plan ──[runner]──┬───────────────────────────────┐
//!                                              ▼                               ▼
//!                                  [driver] open-loop arrivals       [backend] degradable server
//!                                    intended start, deadline,         latency · errors · capacity
//!                                    request id per call                         ▲
//!                                              ▼                                 │
//!                                  [strategy] tower layers over a typed Call     │
//!                                    deadline → user layers → instrument ──▶ [transport]
//!                                              │ events (attempt start/end)      gRPC over TCP, or the
//!                                              ▼                                 backend called directly
//!                                  [record] HdrHistograms + 1 s timeline         (virtual clock)
//!                                              ▼
//!                                  [results] results.json + .hlog ──▶ summary table, [report],
//!                                                                     [compare], [gate]
//! ```
//!
//! # Layers
//!
//! The modules form layers along that flow; a module imports only from its own layer or the
//! ones below, and never in a circle (`tests/layers.rs` reads every `crate::` path and holds
//! this map true):
//!
//! | layer | modules | holds |
//! |---|---|---|
//! | 0 vocabulary | [`clock`], [`keyed`], [`template`], [`protocol`], [`table`], [`pb`], [`hdr`] | time, keyed randomness, request templates keyed by it, gRPC on the wire (headers, `grpc-timeout`, framing, paths, [`protocol::StatusCode`]), plain-text tables, the generated proto types, latency histograms and their checked encoding |
//! | 1 data | [`call`], [`schema`], [`profile`] | the call the strategies see and its outcome; the user's own service's schema (`.proto`, protoset, reflected descriptors), its method and the request template encoded per call; what a profile file says, its errors with file/line/field, the resolved [`profile::Plan`] and a gate's spec |
//! | 2 mechanisms | [`strategy`], [`backend`], [`transport`], [`record`] | strategies as tower layers and their event sink; the degradable backend and its server; how an attempt reaches it; histograms and the timeline |
//! | 3 orchestration | [`results`], [`driver`], [`progress`], [`runner`], [`sweep`], [`proxy`] | the results file (schema v1), its figures and its trust rules; the one open-loop driver; the terminal's progress; one whole run; many runs over a grid of settings, in parallel; the fault model in front of a real service |
//! | 4 readers | [`figure`], [`document`], [`headline`], [`noise`], [`answer`], [`gate`], [`report`], [`compare`], [`merge`], [`summary`], [`export`], [`choose`] | figure names; a results file as readers hold it; headline figures; whether a difference is more than noise; the verdict (who is in the running, the best of each column, one sentence); the CI gate; `report.html`; two runs side by side; shards merged; the summary table; the CSV export; what a sweep's points say (frontier, load curves, recommendation, `sweep.json`, `sweep.html`) |
//! | 5 edge | [`cli`], [`commands`] | the command line as clap reads it; what each command does, and its exit status |
//!
//! # Principles
//! - **Open loop.** Call *i* starts at a time fixed before the run; latency counts from that
//!   intended start, so a stalled backend cannot hide its stall by slowing the generator down.
//! - **Time comes from one place.** Every wait and clock read goes through [`clock::Clock`]: a
//!   precise timer thread on real runs, simulated nanosecond time on virtual ones (`--clock
//!   virtual`), where runs are exact and reproducible.
//! - **Randomness is keyed.** The backend's draw for an attempt is a hash of (seed, request id,
//!   attempt), so every strategy meets exactly the same backend luck.

pub mod answer;
pub mod backend;
pub mod call;
pub mod choose;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod compare;
pub mod document;
pub mod driver;
pub mod export;
pub mod figure;
pub mod gate;
pub mod hdr;
pub mod headline;
pub mod keyed;
pub mod merge;
pub mod noise;
pub mod profile;
pub mod progress;
pub mod protocol;
pub mod proxy;
pub mod record;
pub mod report;
pub mod results;
pub mod runner;
pub mod schema;
pub mod strategy;
pub mod summary;
pub mod sweep;
pub mod table;
pub mod template;
pub mod transport;

/// Code generated from `proto/resilbench.proto` by tonic and prost.
#[allow(missing_docs)]
pub mod pb {
    tonic::include_proto!("resilbench.v1");
}
