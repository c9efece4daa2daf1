//! Integration tests, compiled into one binary (as ripgrep does) and grouped by topic.
//!
//! - `profile_errors`: bad profiles are refused with file, line, field and exit status 2.
//! - `open_loop`: the driver's schedule, in virtual time: coordinated omission, drops, warmup.
//! - `results_file`: results.json round-trips, histograms decode, interrupted runs are partial.
//! - `first_contact`: built-in profiles, and the small things a first run trips on.
//! - `fan_out`: scatter-gather sub-calls, completion on all or the first k.
//! - `flavors`: each client library's departures from gRFC A6, on the scenarios.
//! - `hedge`: gRFC A6 hedging and tower's latency-driven hedge, attempt times exact.
//! - `hostile_input`: arbitrary and mutated profiles, service configs and results files.
//! - `retry`: retry policies, throttles and budgets to the letter, attempt times exact.
//! - `sharding`: `run --shard K/N` and `merge`: the shards merged are the unsharded run.
//! - `shipped_profiles`: each profile under profiles/ runs as shipped; its story is checked.
//! - `sweep`: `resilbench sweep`: points are the hand-written profiles, bad grids refused, load
//!   curves, shards merged, interruption.
//! - `golden`: each shipped profile's results.json on the virtual clock, byte for byte.
//! - `layers`: the module graph runs one way, layer by layer (no upward or circular import).
//! - `virtual_runs`: whole runs on a paused clock are exact and reproducible.
//! - `end_to_end`: real runs over loopback TCP, embedded and against `serve` in another process.
//! - `report_page`: report.html from fixed results: sections, one SVG per chart, escaping.
//! - `chromium`: the report rendered by headless Chromium (skipped without it, unless CI).
//! - `breaker`: pybreaker and resilience4j state machines, which calls go and when.
//! - `check_gate`: `resilbench check` over a table of gates: exit status, failing rows, JUnit.
//! - `ci_doc`: every command of docs/ci.md, run as written.
//! - `deploy`: the Kubernetes manifests and the Dockerfile say what a sharded run needs.
//! - `compare_runs`: known differences are flagged, identical runs and noise are not.
//! - `seed_noise`: a seed change alone is noise on every shipped profile; real regressions
//!   (slower, lossier, a retry storm) are flagged.
//! - `verdict`: the answer: ★ only among strategies in the running, the sentence from the figures.
//! - `connections`: the client's HTTP/2 connections fail fast, come back, reconnect, close.
//! - `faults`: targets that die, restart or never answer; signals at chosen moments; kills
//!   while writing.
//! - `late_signals`: Ctrl-C once the results are written exits at once, the run on disk.
//! - `serve_limits`: `serve` against clients that never read, flood, or hold sockets silent.
//! - `run_folder`: the run folder reserved before the run (two runs racing, `--out .`, a mount
//!   point) and put in place whole each way, kills included.
//! - `transparent`: gRFC A6's transparent retries, each client library's bounds, through the
//!   real client against an h2 server that refuses streams.
//! - `grpcio`: against Python grpcio (C-core) servers: refused streams at its stream limit,
//!   GOAWAY mid-run (skipped without grpcio, unless CI).
//! - `interleaved`: `load.order = "interleaved"`: the split exact and reproducible, the
//!   figures those of a run in turn where a backend without shared state makes them so.
//! - `measured`: a run's histogram and statuses replayed as the backend's model, exactly.
//! - `limits`: input bounds (replicas, status keys, file sizes), checked by counting.
//! - `memory_bounds`: a results file at the bounds is read under an address-space limit, one
//!   past them refused before anything is built.
//! - `own_service`: a service that is not resilbench's, from a profile's [target] and the
//!   quick run: templates, metadata, TLS and mTLS, protoset and reflection.
//! - `target_errors`: each bad input for one's own service, its message, exit status 2.
//! - `target_checks`: unusable TLS files, reflection errors at their key, an address given as
//!   the profile, the `{{call}}` range, the quick run's wording, `validate` of a `[target]`.
//! - `target_unreachable`: missing or malformed files, a closed port, TLS to a plaintext
//!   server, a silent peer: exit status 2 within seconds, naming the file or the address.
//! - `grpcio_interop`: one's own service on Python grpcio (C-core), mTLS and reflection
//!   (skipped without grpcio, unless CI).
//! - `proxy`, `proxy_bounds`: `resilbench proxy` in front of a tonic service and `serve`:
//!   the same faults as `serve`, counts, cancellation, an unreachable upstream; its bounds on
//!   streams, request bytes and calls against a client that never reads.
//! - `proxy_faults`: the proxy's outage modes (reset, refuse), Envoy's fault headers.
//! - `proxy_upstream`: an upstream that goes away (GOAWAY) or refuses streams under the
//!   proxy: streams it did not process sent again once; the proxy's stopped line.
//! - `proxy_memory`: the proxy's resident memory, read from /proc, with streams held open
//!   whose bytes have left it.
//! - `proxy_grpcio`: the proxy between grpcio's server and a grpcio client with a retry
//!   service config (skipped without grpcio, unless CI).
//! - `docs_cite`: every test the docs cite exists.

mod backend;
mod breaker;
mod check_gate;
mod chromium;
mod ci_doc;
mod common;
mod compare_runs;
mod connections;
mod deploy;
mod docs_cite;
mod end_to_end;
mod fan_out;
mod faults;
mod first_contact;
mod flavors;
mod golden;
mod grpcio;
mod grpcio_interop;
mod hedge;
mod hostile_input;
mod interleaved;
mod late_signals;
mod layers;
mod limits;
mod measured;
mod memory_bounds;
mod open_loop;
mod own_service;
mod profile_errors;
mod proxy;
mod proxy_bounds;
mod proxy_faults;
mod proxy_grpcio;
mod proxy_memory;
mod proxy_streams;
mod proxy_upstream;
mod report_page;
mod results_file;
mod retry;
mod run_folder;
mod seed_noise;
mod serve_limits;
mod sharding;
mod shipped_profiles;
mod sweep;
mod target_checks;
mod target_errors;
mod target_unreachable;
mod tls_silent_refusal;
mod transparent;
mod verdict;
mod virtual_runs;
