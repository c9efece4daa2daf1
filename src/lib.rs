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
//! | concept | where |
//! |---|---|
//! | what a profile file says, its errors with file/line/field, and the resolved [`profile::Plan`] | [`profile`] |
//! | the call the strategies see ([`call::Call`]) and its outcome | [`call`] |
//! | gRPC on the wire: headers, `grpc-timeout`, framing, paths, status codes | [`protocol`] |
//! | arrival schedules and the one open-loop driver | [`driver`] |
//! | strategies as tower layers, the event sink | [`strategy`] |
//! | how an attempt reaches the backend | [`transport`] |
//! | time: precise real-time waits, exact simulated time | [`clock`] |
//! | the degradable backend and its gRPC server | [`backend`] |
//! | histograms, timeline, per-strategy figures | [`record`] |
//! | the results file (schema v1), atomic writes | [`results`] |
//! | one whole run: clock, backends, strategies in turn, output | [`runner`] |
//! | the terminal: progress and the summary table | [`progress`], [`summary`] |
//! | the command line | [`cli`], and [`commands`] for those that read results files |
//! | a results file as readers hold it; figure names; headline figures; can it be trusted | [`document`], [`figure`], [`headline`], [`trust`] |
//! | `report.html`: verdict, profile in words, SVG charts | [`report`] |
//! | two runs side by side, differences beyond noise | [`compare`] |
//! | the CI gate: limits, budgets, JUnit and markdown | [`gate`] |
//! | plain-text tables | [`table`] |
//!
//! # Principles
//! - **Open loop.** Call *i* starts at a time fixed before the run; latency counts from that
//!   intended start, so a stalled backend cannot hide its stall by slowing the generator down.
//! - **Time comes from one place.** Every wait and clock read goes through [`clock::Clock`]: a
//!   precise timer thread on real runs, simulated nanosecond time on virtual ones (`--clock
//!   virtual`), where runs are exact and reproducible.
//! - **Randomness is keyed.** The backend's draw for an attempt is a hash of (seed, request id,
//!   attempt), so every strategy meets exactly the same backend luck.

pub mod backend;
pub mod call;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod compare;
pub mod document;
pub mod driver;
pub mod figure;
pub mod gate;
pub mod headline;
pub mod keyed;
pub mod merge;
pub mod profile;
pub mod progress;
pub mod protocol;
pub mod record;
pub mod report;
pub mod results;
pub mod runner;
pub mod strategy;
pub mod summary;
pub mod table;
pub mod transport;

/// Code generated from `proto/resilbench.proto` by tonic and prost.
#[allow(missing_docs)]
pub mod pb {
    tonic::include_proto!("resilbench.v1");
}
